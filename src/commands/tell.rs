//! `orch tell planner MESSAGE [--run ID]` (or `-f FILE`, or `-`: standard input): feedback on
//! a plan that waits for approval. The plan held is dropped and the planner plans again with
//! the message (and the plan it gave) in its prompt; the new plan waits for approval in turn.
//! The message goes to the engine as a request file in the run directory (see
//! [`crate::approval`]), never typed into a pane; this command waits for the engine to take it.
//! Steering a task (`orch tell TASK`) is not there yet, and says so.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{Global, runs};
use crate::approval::{ApproveRequest, request};
use crate::error::{EXIT_OK, usage};
use crate::state::{Outcome, Phase};

/// How long a live engine gets to take the message (it looks at every tick, once a second).
const TAKEN_WITHIN: Duration = Duration::from_secs(10);

pub(crate) fn run(
    global: &Global,
    run: Option<&str>,
    target: &str,
    message: Option<String>,
    file: Option<&Path>,
) -> anyhow::Result<u8> {
    let orch = crate::invocation::orch();
    if target != "planner" {
        return Err(usage(format!(
            "`{orch} tell {target}`: steering a task is not available yet; only `{orch} tell \
             planner \"...\"` exists, for a plan that waits for approval. A task that failed \
             is tried again with a message by `{orch} retry {target} --message \"...\"`"
        )));
    }
    let Some(message) = super::request::read(&global.cwd, message, file)? else {
        return Err(usage(format!(
            "give the planner a message: `{orch} tell planner \"...\"`, `-f FILE`, or `-` \
             (standard input)"
        )));
    };
    if message.trim().is_empty() {
        return Err(usage(
            "the message is empty: say what the plan should change",
        ));
    }
    let loaded = runs::load(global, run)?;
    let run_id = loaded.info.run_id.clone();
    if let Phase::Finished(outcome @ (Outcome::Succeeded | Outcome::Failed)) = loaded.state.phase {
        return Err(usage(format!(
            "run {run_id} is over ({outcome}): its planner takes no more feedback; start a new \
             run with `{orch} up --review`"
        )));
    }
    if !loaded.state.approval.waiting() {
        return Err(usage(format!(
            "run {run_id} has no plan waiting for approval: the planner takes feedback on a \
             plan held with `{orch} up --review` (or `plan_approval: ask`), before it runs ({})",
            if loaded.state.plan().is_some() {
                "this run's plan runs already".to_string()
            } else {
                format!(
                    "this run is {}; `{orch} wait` exits 5 once its plan waits",
                    loaded.state.phase.name()
                )
            }
        )));
    }
    let request_id = format!("{}-{}", crate::state::now_ms(), std::process::id());
    request(
        &loaded.dir,
        &ApproveRequest {
            id: request_id.clone(),
            feedback: Some(message),
        },
    )?;
    if !loaded.engine_alive {
        println!(
            "run {run_id}: your message is recorded; it has no engine now, and `{orch} resume \
             --run {run_id}` has the planner plan again with it"
        );
        return Ok(EXIT_OK);
    }
    let deadline = Instant::now() + TAKEN_WITHIN;
    loop {
        let now = runs::load(global, Some(&run_id))?;
        if now.state.approval.answered(&request_id) {
            println!(
                "run {run_id}: the planner plans again with your message (attempt {}); the new \
                 plan waits for approval too (`{orch} wait --run {run_id}` exits 5 then)",
                now.state
                    .planning_attempt()
                    .max(loaded.state.planning_attempt() + 1)
            );
            return Ok(EXIT_OK);
        }
        if now.state.plan().is_some() {
            // An `orch approve` was answered first: the engine drops the message.
            println!(
                "run {run_id}: the plan was approved before your message was taken, and it \
                 runs: the planner was not asked again"
            );
            return Ok(crate::error::EXIT_FAILED);
        }
        if !now.engine_alive || Instant::now() >= deadline {
            println!(
                "run {run_id}: your message is recorded; its engine has not taken it yet \
                 (`{orch} status --run {run_id}` shows when it has; `{orch} resume --run \
                 {run_id}` passes it on if the engine is gone)"
            );
            return Ok(EXIT_OK);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
