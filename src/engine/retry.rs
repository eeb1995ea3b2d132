//! `orch retry`: a task that failed for good tried again. The command writes a request file in
//! the run directory (`retry/<id>.json`, like a budget raise); the live engine reads the
//! directory at every tick, and an engine that starts (the one `orch retry` starts for a run
//! whose engine is gone, the failed run's included) reads it before it dispatches anything.
//! Each request is journaled once (`task_retried`, or a warning naming its id when it cannot
//! be applied), then its file is removed.
//!
//! A retried task is pending again with a fresh set of attempts (`limits.retries` counts from
//! the retry), the tasks it blocked and nothing else blocks are pending again, done tasks stay
//! done, and the run goes on to succeed or fail as any run. The user's message, whole, goes
//! into the prompts of the retry's attempts.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::core::Engine;
use crate::plan::TaskId;
use crate::state::{Event, Phase, RunDir, RunState, TaskStatus, WarningKind};

/// A retry asked for with `orch retry`, as written into the run directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryRequest {
    pub id: String,
    pub task: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where retry requests wait for an engine.
pub fn requests_dir(dir: &RunDir) -> PathBuf {
    crate::state::requests::dir(dir, "retry")
}

/// Writes a retry request for the run in `dir` (atomically: an engine never reads half).
pub fn request(dir: &RunDir, request: &RetryRequest) -> anyhow::Result<PathBuf> {
    crate::state::requests::write(dir, "retry", &request.id, request)
}

/// The retry requests in `dir`, oldest first; an unreadable one is an error of its own, for
/// the engine to report.
pub fn read_requests(dir: &RunDir) -> Vec<(PathBuf, Result<RetryRequest, String>)> {
    crate::state::requests::read(dir, "retry")
}

/// Whether a retry request waits in `dir` that the journal has not seen.
pub fn waiting(dir: &RunDir, state: &RunState) -> bool {
    read_requests(dir)
        .into_iter()
        .any(|(_, r)| r.is_ok_and(|r| !state.retry_requests.contains(&r.id)))
}

/// Why `task` cannot be retried in `state`, if it cannot: said to the user as it is.
pub fn refusal(state: &RunState, task: &TaskId) -> Option<String> {
    if state.plan().is_none() {
        return Some("the run has no plan: only a task of a plan can be retried".into());
    }
    let Some(t) = state.task(task) else {
        let ids: Vec<String> = state.tasks_in_order().map(|t| t.id.to_string()).collect();
        return Some(format!(
            "the plan has no task {task} (its tasks: {})",
            ids.join(", ")
        ));
    };
    match t.state {
        TaskStatus::Failed => None,
        TaskStatus::Blocked => {
            let by: Vec<String> = failed_ancestors(state, task)
                .into_iter()
                .map(|t| t.to_string())
                .collect();
            Some(format!(
                "task {task} is blocked, not failed: retry the task it waits for ({}); it \
                 runs once that one is done",
                by.join(", ")
            ))
        }
        status => Some(format!(
            "task {task} is {status}: only a task that failed for good is retried"
        )),
    }
}

/// The failed tasks `task` depends on, directly or not.
fn failed_ancestors(state: &RunState, task: &TaskId) -> BTreeSet<TaskId> {
    let mut seen = BTreeSet::new();
    let mut failed = BTreeSet::new();
    let mut frontier = vec![task.clone()];
    while let Some(current) = frontier.pop() {
        let Some(t) = state.task(&current) else {
            continue;
        };
        for dep in &t.depends_on {
            if seen.insert(dep.clone()) {
                if state
                    .task(dep)
                    .is_some_and(|d| d.state == TaskStatus::Failed)
                {
                    failed.insert(dep.clone());
                }
                frontier.push(dep.clone());
            }
        }
    }
    failed
}

/// The blocked tasks that a retry of `task` frees: its dependents that no other failed task
/// blocks, in plan order.
pub fn unblocked_by(state: &RunState, task: &TaskId) -> Vec<TaskId> {
    state
        .dependents_of(task)
        .into_iter()
        .filter(|d| {
            state
                .task(d)
                .is_some_and(|t| t.state == TaskStatus::Blocked)
        })
        .filter(|d| failed_ancestors(state, d).iter().all(|f| f == task))
        .collect()
}

/// What to say when tasks failed for good: the command that tries them again (`None` when
/// none did).
pub fn hint(state: &RunState) -> Option<String> {
    let failed: Vec<String> = state
        .tasks_in_order()
        .filter(|t| t.state == TaskStatus::Failed)
        .map(|t| t.id.to_string())
        .collect();
    let first = failed.first()?;
    let orch = crate::invocation::orch();
    Some(format!(
        "`{orch} retry {first} [--message TEXT]` tries failed task {} again, and what it \
         blocked",
        failed.join(", ")
    ))
}

impl Engine {
    /// Journals each retry request not journaled yet, and removes its file; what a retry made
    /// pending is launched.
    pub(super) fn apply_retries(&mut self) -> anyhow::Result<()> {
        // Planning, or ended: a request waits for the engine that takes the run over.
        if self.state.phase != Phase::Running {
            return Ok(());
        }
        let mut retried = false;
        for (path, request) in read_requests(&self.dir) {
            match request {
                Ok(r) if self.state.retry_requests.contains(&r.id) => {}
                Ok(r) => match self.retry_refusal(&r.task) {
                    Some(why) => self.warn(
                        WarningKind::Retry,
                        format!(
                            "the retry {} of task {} was not applied: {why}",
                            r.id, r.task
                        ),
                    ),
                    None => {
                        let unblocked = unblocked_by(&self.state, &r.task);
                        self.record(Event::TaskRetried {
                            task: r.task,
                            id: r.id,
                            message: r.message,
                            unblocked,
                        })?;
                        retried = true;
                    }
                },
                Err(e) => self.warn(
                    WarningKind::Retry,
                    format!(
                        "a retry request ({}) cannot be read ({e}); it was set aside: run \
                         `orch retry` again",
                        path.display()
                    ),
                ),
            }
            // Applied, refused or unreadable: said in the journal, not read again.
            let _ = std::fs::remove_file(&path);
        }
        if retried {
            self.dispatch()?;
        }
        Ok(())
    }

    fn retry_refusal(&self, task: &TaskId) -> Option<String> {
        if self.state.phase != Phase::Running {
            return Some(format!("the run is {}", self.state.phase));
        }
        refusal(&self.state, task)
    }

    /// The worker prompt, with a section for a task that `orch retry` gave a fresh set of
    /// attempts: why it had failed, and the user's message (called by `launch`).
    pub(super) fn note_retry(&self, id: &TaskId, prompt: String) -> String {
        let Some(retried) = self.state.tasks.get(id).and_then(|t| t.retried.as_ref()) else {
            return prompt;
        };
        let section = crate::prompt::retry_section(
            retried.after_attempt,
            retried.reason.as_deref(),
            retried.message.as_deref(),
        );
        crate::prompt::insert_section(&prompt, &section)
    }

    /// For `check_resumable`: whether an ended run is taken over for a retry.
    pub(super) fn retry_waiting(&self) -> bool {
        waiting(&self.dir, &self.state)
    }
}

/// The task's attempts that count against `limits.retries`: those since its latest retry.
/// Attempts lost to an interruption (Ctrl-C, a budget stop, `orch tell`) are not the task's
/// doing and do not count.
pub(super) fn counted(state: &RunState, id: &TaskId, attempt: u32) -> u32 {
    let Some(task) = state.task(id) else {
        return attempt;
    };
    let interrupted = task
        .history
        .iter()
        .filter(|a| a.attempt > task.retry_base && a.attempt <= attempt)
        .filter(|a| a.outcome == crate::state::AttemptOutcome::Interrupted)
        .count() as u32;
    attempt
        .saturating_sub(task.retry_base)
        .saturating_sub(interrupted)
}
