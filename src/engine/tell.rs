//! `orch tell TASK`: the user's message to a task, as a request file in the run directory
//! (`tell/<id>.json`, like a retry or a budget raise) that the live engine reads at every tick.
//! Each request is journaled once (`task_told`, or a warning naming its id when it cannot be
//! applied), then its file is removed.
//!
//! A running task's current turn is stopped and journaled as stopped by the user: an
//! interruption, not a failure, and not counted against `limits.retries`. Its next attempt
//! continues the agent's own CLI session where the CLI can (as `orch resume` does), with the
//! prompt carrying the message; otherwise it is a new attempt whose prompt carries the message
//! and says the earlier work is in place. A pending task gets the message in its next prompt.
//! A done task whose dependents have not started is reopened: pending again, checked and
//! judged again. Anything else is refused, saying what it would take.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::core::Engine;
use crate::plan::TaskId;
use crate::state::{Event, Phase, RunDir, RunState, TaskStatus, WarningKind};

/// Why a running task's attempt was interrupted.
pub(super) const STOPPED_BY_USER: &str = "stopped by the user, to tell it something (orch tell)";

/// A message asked for with `orch tell TASK`, as written into the run directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TellRequest {
    pub id: String,
    pub task: TaskId,
    pub message: String,
}

/// What telling a task does, by its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Telling {
    /// Its agent runs: the turn is stopped, and the next attempt carries the message.
    Stop,
    /// It waits to start: its next attempt carries the message.
    Next,
    /// It is done and nothing depending on it started: reopened.
    Reopen,
}

/// Where tell requests wait for an engine.
pub fn requests_dir(dir: &RunDir) -> PathBuf {
    crate::state::requests::dir(dir, "tell")
}

/// Writes a tell request for the run in `dir` (atomically: an engine never reads half).
pub fn request(dir: &RunDir, request: &TellRequest) -> anyhow::Result<PathBuf> {
    crate::state::requests::write(dir, "tell", &request.id, request)
}

/// The tell requests in `dir`, oldest first; an unreadable one is an error of its own.
fn read_requests(dir: &RunDir) -> Vec<(PathBuf, Result<TellRequest, String>)> {
    crate::state::requests::read(dir, "tell")
}

/// What telling `task` in `state` does, or why it cannot be told (said to the user as it is).
pub fn telling(state: &RunState, task: &TaskId) -> Result<Telling, String> {
    let orch = crate::invocation::orch();
    if state.plan().is_none() {
        return Err(format!(
            "the run has no plan yet: a plan waiting for approval takes feedback with `{orch} \
             tell planner \"...\"`"
        ));
    }
    let Some(t) = state.task(task) else {
        let ids: Vec<String> = state.tasks_in_order().map(|t| t.id.to_string()).collect();
        return Err(format!(
            "the plan has no task {task} (its tasks: {})",
            ids.join(", ")
        ));
    };
    match t.state {
        TaskStatus::Running => Ok(Telling::Stop),
        TaskStatus::Pending => Ok(Telling::Next),
        TaskStatus::Done => {
            let started: Vec<String> = state
                .dependents_of(task)
                .into_iter()
                .filter(|d| state.task(d).is_some_and(|d| d.attempts > 0))
                .map(|d| d.to_string())
                .collect();
            if started.is_empty() {
                Ok(Telling::Reopen)
            } else {
                Err(format!(
                    "task {task} is done and tasks that depend on it have started ({}): \
                     reopening it would change what they build on. Tell them instead, or \
                     start a new run for the change",
                    started.join(", ")
                ))
            }
        }
        TaskStatus::Failed => Err(format!(
            "task {task} failed for good: `{orch} retry {task} --message \"...\"` tries it \
             again with your message"
        )),
        TaskStatus::Blocked => Err(format!(
            "task {task} is blocked ({}): it runs once what it waits for is done; retry the \
             failed task with `{orch} retry`, then tell this one",
            t.reason.as_deref().unwrap_or("a task it depends on failed")
        )),
    }
}

impl Engine {
    /// Journals each tell request not journaled yet and applies it, and removes its file.
    pub(super) fn apply_tells(&mut self) -> anyhow::Result<()> {
        // Planning, or ended: a request waits for the engine that takes the run over.
        if self.state.phase != Phase::Running {
            return Ok(());
        }
        let mut told = false;
        for (path, request) in read_requests(&self.dir) {
            match request {
                Ok(r) if self.state.tell_requests.contains(&r.id) => {}
                Ok(r) => match self.tell_refusal(&r.task) {
                    Err(why) => self.warn(
                        WarningKind::Tell,
                        format!(
                            "the message {} to task {} was not applied: {why}",
                            r.id, r.task
                        ),
                    ),
                    Ok(telling) => {
                        self.tell_task(r, telling)?;
                        told = true;
                    }
                },
                Err(e) => self.warn(
                    WarningKind::Tell,
                    format!(
                        "an `orch tell` request ({}) cannot be read ({e}); it was set aside: \
                         run `orch tell` again",
                        path.display()
                    ),
                ),
            }
            // Applied, refused or unreadable: said in the journal, not read again.
            let _ = std::fs::remove_file(&path);
        }
        if told {
            self.dispatch()?;
        }
        Ok(())
    }

    /// What telling `task` does now, or why not: a running task whose agent already ended
    /// its turn is being checked, and has no turn to stop.
    fn tell_refusal(&self, task: &TaskId) -> Result<Telling, String> {
        let telling = telling(&self.state, task)?;
        if telling == Telling::Stop && self.agents.task(task).is_none() {
            return Err(format!(
                "task {task}'s agent has ended its turn and its work is being checked: tell \
                 it again once it is done (a done task is reopened while nothing depending on \
                 it has started)"
            ));
        }
        Ok(telling)
    }

    fn tell_task(&mut self, r: TellRequest, telling: Telling) -> anyhow::Result<()> {
        let id = r.task.clone();
        self.record(Event::TaskTold {
            task: r.task,
            id: r.id,
            message: r.message,
            reopened: telling == Telling::Reopen,
        })?;
        if telling != Telling::Stop {
            return Ok(());
        }
        let Some(live) = self.agents.task(&id).cloned() else {
            return Ok(());
        };
        // What escaped the pane's group would outlive the stop (see leftovers.rs).
        self.on_leftovers(&live.dir, Some(id.clone()), live.group())?;
        self.agents.remove(&live.dir);
        self.unwatch_dir(&live.dir);
        let session_id = self.session_of(&id, &live.dir);
        self.record(Event::TaskInterrupted {
            task: id,
            attempt: live.attempt,
            reason: STOPPED_BY_USER.to_string(),
            session_id,
            ended_at_ms: None,
        })?;
        if let Some(group) = live.group() {
            super::tasks::stop_pane(group);
        }
        Ok(())
    }

    /// The worker prompt, with the user's latest message to the task, if any (called by
    /// `launch`).
    pub(super) fn note_tell(&self, id: &TaskId, prompt: String) -> String {
        let Some(told) = self.state.tasks.get(id).and_then(|t| t.told.as_ref()) else {
            return prompt;
        };
        let section = crate::prompt::tell_section(told.after_attempt, told.reopened, &told.message);
        crate::prompt::insert_section(&prompt, &section)
    }

    /// What the pane of `attempt` of task `id` shows under its title: the message told after
    /// the attempt before it (the agent's transcript has it as the prompt's, too).
    pub(super) fn tell_notice(&self, id: &TaskId, attempt: u32) -> Option<String> {
        let told = self.state.tasks.get(id)?.told.as_ref()?;
        (told.after_attempt + 1 == attempt).then(|| told.message.clone())
    }
}
