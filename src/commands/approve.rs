//! `orch approve [--run ID]`: dispatches a plan that waits for approval (`orch up --review`,
//! `plan_approval: ask`). The plan file (`plan.json` in the run directory), edited or not,
//! is checked here first, so that its problems are listed at once and nothing is asked of
//! the engine; then the request goes to the engine as a file in the run directory (see
//! [`crate::approval`]), which checks it again and journals its answer: this command waits
//! for it and says what happened. A run without an engine gets it at `orch resume`.

use std::time::{Duration, Instant};

use super::{Global, runs};
use crate::approval::{ApproveRequest, check_file, request};
use crate::error::{EXIT_FAILED, EXIT_OK, usage};
use crate::state::{Outcome, Phase};

/// How long a live engine gets to answer (it looks at every tick, once a second).
const ANSWERED_WITHIN: Duration = Duration::from_secs(10);

pub(crate) fn run(global: &Global, run: Option<&str>) -> anyhow::Result<u8> {
    let loaded = runs::load(global, run)?;
    let run_id = loaded.info.run_id.clone();
    let orch = crate::invocation::orch();
    if let Phase::Finished(outcome @ (Outcome::Succeeded | Outcome::Failed)) = loaded.state.phase {
        return Err(usage(format!(
            "run {run_id} is over ({outcome}): there is no plan to approve; start a new run \
             with `{orch} up --review`"
        )));
    }
    if !loaded.state.approval.waiting() {
        let why = if let Some(approved) = &loaded.state.approval.approved {
            format!(
                "its plan was approved already{}, and it runs: `{orch} status --run {run_id}` \
                 shows how far it is",
                if approved.edited { " (edited)" } else { "" }
            )
        } else if loaded.state.plan().is_some() {
            format!(
                "its plan was accepted without waiting (it was not started with `--review`, \
                 and `plan_approval` is not `ask`): `{orch} status --run {run_id}` shows it"
            )
        } else {
            format!(
                "no plan waits yet (it is {}); `{orch} wait --run {run_id}` returns (exit 5) \
                 once one does",
                loaded.state.phase.name()
            )
        };
        return Err(usage(format!("nothing to approve in run {run_id}: {why}")));
    }
    let config = crate::config::load(&loaded.dir.config())?;
    let root = loaded
        .info
        .workspace
        .as_ref()
        .map_or_else(|| loaded.info.project_root.clone(), |ws| ws.path.clone());
    let file = loaded.dir.plan();
    if let Err(problems) = check_file(&file, &root, &config) {
        say_problems(&run_id, &file, &problems);
        return Ok(EXIT_FAILED);
    }
    let request_id = format!("{}-{}", crate::state::now_ms(), std::process::id());
    request(
        &loaded.dir,
        &ApproveRequest {
            id: request_id.clone(),
            feedback: None,
        },
    )?;
    if !loaded.engine_alive {
        println!(
            "run {run_id}: approval recorded; it has no engine now, and `{orch} resume --run \
             {run_id}` dispatches the plan"
        );
        return Ok(EXIT_OK);
    }
    let deadline = Instant::now() + ANSWERED_WITHIN;
    loop {
        let now = runs::load(global, Some(&run_id))?;
        if let Some(refused) = now.state.approval.refusal(&request_id) {
            say_problems(&run_id, &file, &refused.problems);
            return Ok(EXIT_FAILED);
        }
        if now.state.approval.answered(&request_id) {
            let tasks = now.state.plan().map_or(0, |p| p.tasks.len());
            let edited = now
                .state
                .approval
                .approved
                .as_ref()
                .is_some_and(|a| a.edited);
            println!(
                "run {run_id}: plan approved{}: {tasks} task(s) dispatched; `{orch} wait --run \
                 {run_id}` waits for the end",
                if edited { " as edited" } else { "" }
            );
            return Ok(EXIT_OK);
        }
        if !now.engine_alive || Instant::now() >= deadline {
            println!(
                "run {run_id}: approval recorded; its engine has not answered yet (`{orch} \
                 status --run {run_id}` shows when it has; `{orch} resume --run {run_id}` \
                 answers it if the engine is gone)"
            );
            return Ok(EXIT_OK);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn say_problems(run_id: &str, file: &std::path::Path, problems: &[String]) {
    let orch = crate::invocation::orch();
    eprintln!(
        "run {run_id}: the plan was not approved: {} has {} problem(s):",
        file.display(),
        problems.len()
    );
    for problem in problems {
        eprintln!("  - {problem}");
    }
    eprintln!(
        "nothing was dispatched and the plan still waits: fix the file, then `{orch} approve \
         --run {run_id}` again"
    );
}
