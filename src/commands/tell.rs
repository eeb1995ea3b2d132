//! `orch tell planner MESSAGE [--run ID]` (or `-f FILE`, or `-`: standard input): feedback on
//! a plan that waits for approval. The plan held is dropped and the planner plans again with
//! the message (and the plan it gave) in its prompt; the new plan waits for approval in turn.
//! The message goes to the engine as a request file in the run directory (see
//! [`crate::approval`]), never typed into a pane; this command waits for the engine to take it.
//!
//! `orch tell TASK MESSAGE` steers a task of a live run (see [`crate::engine::tell`]): a
//! running task's turn is stopped and its next attempt continues with the message, a pending
//! task gets it in its first prompt, a done task whose dependents have not started is
//! reopened; anything else is refused with what it would take.

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
        return tell_task(global, run, target, message, file);
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

/// The longest message taken: the longest text the journal keeps whole.
const MESSAGE_MAX: usize = crate::state::TEXT_MAX;

/// `orch tell TASK`: the request file, then the engine's answer.
fn tell_task(
    global: &Global,
    run: Option<&str>,
    task: &str,
    message: Option<String>,
    file: Option<&Path>,
) -> anyhow::Result<u8> {
    use crate::engine::tell::{TellRequest, Telling, request, telling};
    let orch = crate::invocation::orch();
    let Some(message) = super::request::read(&global.cwd, message, file)? else {
        return Err(usage(format!(
            "give task {task} a message: `{orch} tell {task} \"...\"`, `-f FILE`, or `-` \
             (standard input)"
        )));
    };
    if message.trim().is_empty() {
        return Err(usage(format!(
            "the message is empty: say what task {task} should do"
        )));
    }
    if message.len() > MESSAGE_MAX {
        return Err(usage(format!(
            "the message is {} bytes, more than {MESSAGE_MAX}: it goes into the task's \
             prompts; put the long part in a file of the project and say in the message \
             where it is",
            message.len()
        )));
    }
    let loaded = runs::load(global, run)?;
    let run_id = loaded.info.run_id.clone();
    let id = crate::plan::TaskId::new(task);
    let what = telling(&loaded.state, &id).map_err(|why| usage(format!("run {run_id}: {why}")))?;
    if !loaded.engine_alive {
        let what = match loaded.state.phase {
            Phase::Finished(Outcome::Succeeded) => format!(
                "it succeeded and is over: a change now is a new run (`{orch} up`), or \
                 `{orch} diff` and your own edit"
            ),
            Phase::Finished(Outcome::Failed) => format!(
                "it failed: `{orch} retry TASK --message \"...\"` takes a failed task up \
                 again with your message"
            ),
            _ => format!("`{orch} resume --run {run_id}` first, then tell the task"),
        };
        return Err(usage(format!(
            "run {run_id} has no engine ({}), and a task is told while its run goes on: {what}",
            loaded.state.phase.name()
        )));
    }
    let interruptions_before = loaded.state.task(&id).map_or(0, |t| t.interruptions);
    let request_id = format!("{}-{}", crate::state::now_ms(), std::process::id());
    let written = request(
        &loaded.dir,
        &TellRequest {
            id: request_id.clone(),
            task: id.clone(),
            message,
        },
    )?;
    let deadline = Instant::now() + TAKEN_WITHIN;
    loop {
        let now = runs::load(global, Some(&run_id))?;
        if now.state.tell_requests.contains(&request_id) {
            if let Some(w) = now
                .state
                .warnings
                .iter()
                .rev()
                .find(|w| w.message.contains(&format!("message {request_id} ")))
            {
                return Err(usage(format!("run {run_id}: {}", w.message)));
            }
            // What the engine did, which may differ from what this command saw (a pending
            // task may have started meanwhile).
            let task_now = now.state.task(&id);
            let told = task_now.and_then(|t| t.told.as_ref());
            let reopened = told.is_some_and(|t| t.reopened);
            let stopped = task_now.is_some_and(|t| t.interruptions > interruptions_before);
            let what = if stopped { Telling::Stop } else { what };
            match (what, reopened) {
                (_, true) => println!(
                    "run {run_id}: task {task} is reopened with your message: it runs again, \
                     then is checked and judged again"
                ),
                (Telling::Stop, _) => println!(
                    "run {run_id}: task {task}'s turn is stopped (an interruption, not a \
                     failure); its agent goes on with your message, in its own session where \
                     its CLI can"
                ),
                _ => println!(
                    "run {run_id}: task {task} gets your message in its next attempt's prompt"
                ),
            }
            println!("  watch: {orch} attach --run {run_id}   wait: {orch} wait --run {run_id}");
            return Ok(EXIT_OK);
        }
        if let Some(w) = now
            .state
            .warnings
            .iter()
            .rev()
            .find(|w| w.message.contains(&format!("message {request_id} ")))
        {
            return Err(usage(format!("run {run_id}: {}", w.message)));
        }
        if !now.engine_alive {
            // Never applied by surprise later: the request goes with the engine.
            let _ = std::fs::remove_file(&written);
            return Err(usage(format!(
                "run {run_id}: its engine ended before it took your message, which was not \
                 applied; `{orch} status --run {run_id}` shows how the run is"
            )));
        }
        if Instant::now() >= deadline {
            println!(
                "run {run_id}: your message to task {task} is recorded; its engine has not \
                 taken it yet (`{orch} status --run {run_id}` shows when it has)"
            );
            return Ok(EXIT_OK);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
