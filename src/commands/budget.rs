//! `orch budget [--run ID] [+AMOUNT]`: the run's budget and what its agents used against it,
//! or a raise. A raise is a request file in the run directory (see [`crate::budget`]): a live
//! engine journals it at once and launches what waited for it, and this command waits to say
//! so; a run without an engine gets it when `orch resume` starts one.

use std::time::{Duration, Instant};

use super::{Global, runs};
use crate::budget::{RaiseRequest, View, parse_amount, request_raise};
use crate::error::{EXIT_OK, usage};
use crate::state::{Outcome, Phase};

/// How long a live engine gets to journal a raise (it looks at every tick, once a second).
const APPLIED_WITHIN: Duration = Duration::from_secs(10);

pub(crate) fn run(global: &Global, run: Option<&str>, amount: Option<&str>) -> anyhow::Result<u8> {
    let loaded = runs::load(global, run)?;
    let run_id = loaded.info.run_id.clone();
    let config = crate::config::load(&loaded.dir.config())?;
    let orch = crate::invocation::orch();
    let Some(amount) = amount else {
        let view = View::of(&loaded.dir, &loaded.state, &config);
        println!("run {run_id}: {}", view.line());
        if view.limit.is_none() {
            println!(
                "set `limits.budget` (`usd`, `tokens`) in orch.yaml for the next run to have one"
            );
        }
        return Ok(EXIT_OK);
    };
    let (usd, tokens) = parse_amount(amount).map_err(usage)?;
    let budget = &config.limits.budget;
    if usd.is_some() && budget.usd.is_none() {
        return Err(usage(format!(
            "run {run_id} has no budget in USD to raise{}: `limits.budget.usd` was not set \
             when it started",
            if budget.tokens.is_some() {
                " (it has one in tokens: raise it with `+N tokens`)"
            } else {
                ""
            }
        )));
    }
    if tokens.is_some() && budget.tokens.is_none() {
        return Err(usage(format!(
            "run {run_id} has no budget in tokens to raise{}: `limits.budget.tokens` was not \
             set when it started",
            if budget.usd.is_some() {
                " (it has one in USD: raise it with `+5`)"
            } else {
                ""
            }
        )));
    }
    if let Phase::Finished(outcome @ (Outcome::Succeeded | Outcome::Failed)) = loaded.state.phase {
        return Err(usage(format!(
            "run {run_id} is over ({outcome}): a raise would change nothing; start a new run \
             with `{orch} up`"
        )));
    }
    let request = RaiseRequest {
        id: format!("{}-{}", crate::state::now_ms(), std::process::id()),
        usd,
        tokens,
    };
    request_raise(&loaded.dir, &request)?;
    let what = match (usd, tokens) {
        (Some(usd), _) => format!("${usd:.2}"),
        (_, Some(tokens)) => format!("{tokens} tokens"),
        _ => String::new(),
    };
    if !loaded.engine_alive {
        println!(
            "run {run_id}: {what} more budget recorded; it has no engine now, and `{orch} \
             resume` applies it"
        );
        return Ok(EXIT_OK);
    }
    let deadline = Instant::now() + APPLIED_WITHIN;
    loop {
        let now = runs::load(global, Some(&run_id))?;
        if now.state.budget.raised(&request.id) {
            let view = View::of(&now.dir, &now.state, &config);
            println!("run {run_id}: budget raised by {what}: {}", view.line());
            return Ok(EXIT_OK);
        }
        if !now.engine_alive || Instant::now() >= deadline {
            println!(
                "run {run_id}: {what} more budget recorded; its engine has not applied it yet \
                 (`{orch} status` shows when it has; `{orch} resume` applies it if the engine \
                 is gone)"
            );
            return Ok(EXIT_OK);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
