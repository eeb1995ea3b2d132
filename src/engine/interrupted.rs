//! Agents stopped from outside. On Ctrl-C or SIGTERM the engine journals every running agent
//! as interrupted and stops it; when tmux itself goes away (its server dies, the session is
//! killed), what the agents' panes show is not the tasks' doing, so the engine detaches and
//! leaves the judging to the engine `orch resume` starts. A new attempt of an interrupted task
//! is told so in its prompt, and handed its agent's session to continue where known.

use std::path::Path;
use std::time::Duration;

use super::agents::Role;
use super::core::Engine;
use super::resume::STOP_GRACE;
use crate::agent_process::orphans::{self, AgentProcess};
use crate::agent_process::run::{ExitRecord, signal_name};
use crate::plan::TaskId;
use crate::prompt;
use crate::state::Event;

/// How long a pane may be gone without its exit record before its agent counts as lost: more
/// than `agent-run` takes to drain an agent's output and write the record.
const LOST_GRACE: Duration = Duration::from_secs(3);

impl Engine {
    /// Ctrl-C, SIGTERM or `orch down`: journals every running agent as interrupted (so that a
    /// later engine relaunches it, told so), then stops their process groups (TERM, then KILL
    /// after a grace period), all at once, and waits for them.
    pub(super) fn stop_agents(&mut self, reason: &str) -> anyhow::Result<()> {
        // Launches tmux has not answered yet are settled first: their panes are stopped too.
        self.settle_launches()?;
        let mut agents = self.agents.drain();
        // Tasks first (by id), then the planner, the judge, the oracles.
        agents.sort_by_key(|a| match &a.role {
            Role::Task(id) => (0, Some(id.clone())),
            Role::Planner => (1, None),
            Role::Judge(_) => (2, None),
            Role::Oracle(id, _) => (3, Some(id.clone())),
        });
        let mut groups = Vec::new();
        for agent in agents {
            self.unwatch_dir(&agent.dir);
            match &agent.role {
                Role::Task(id) => {
                    let session_id = self.session_of(id, &agent.dir);
                    self.record(Event::TaskInterrupted {
                        task: id.clone(),
                        attempt: agent.attempt,
                        reason: reason.to_string(),
                        session_id,
                        ended_at_ms: None,
                    })?;
                }
                Role::Planner => {
                    self.record(Event::PlanningInterrupted {
                        attempt: agent.attempt,
                        reason: reason.to_string(),
                    })?;
                }
                // The judge and the oracles: their tasks' exits are journaled, so a later
                // engine checks those tasks again from the start.
                Role::Judge(_) | Role::Oracle(..) => {}
            }
            groups.extend(agent.group());
        }
        let targets: Vec<AgentProcess> = groups
            .into_iter()
            .filter(|&pid| pid > 1)
            .map(|pid| AgentProcess {
                pid: pid as i32,
                pgid: pid as i32,
                attempt_dir: None,
            })
            .collect();
        orphans::stop(&targets, STOP_GRACE);
        Ok(())
    }

    /// Whether the run's tmux session is gone (its server died, or it was killed). Then agents
    /// hung up and windows cannot be made, through no fault of the tasks: the engine detaches
    /// instead of judging them.
    pub(super) fn tmux_lost(&self) -> bool {
        // An error other than "no such session or server" proves nothing.
        matches!(self.tmux.has_session(&self.info.session), Ok(false))
    }

    /// Whether the agent of the attempt in `dir`, whose pane is dead or gone without an exit
    /// record, is lost for good. Not at first sight: `agent-run` writes the record only after
    /// the agent's output drained (up to [`crate::agent_process::run`]'s grace), and a tmux server being
    /// torn down lists its panes half gone. When tmux is gone the engine detaches instead.
    pub(super) fn lost_for_good(&mut self, dir: &Path) -> anyhow::Result<bool> {
        if self.tmux_lost() {
            self.detach("its tmux session is gone")?;
            return Ok(false);
        }
        Ok(self.agents.gone_for(dir) >= LOST_GRACE)
    }

    /// Whether the exit record at `path` is an agent hung up because tmux went away.
    pub(super) fn hung_up_by_tmux(&self, path: &Path) -> bool {
        ExitRecord::read(path).is_ok_and(|exit| interruption(&exit).is_some()) && self.tmux_lost()
    }

    /// The worker prompt, with a section saying so when the task's previous attempt was
    /// interrupted (called by `launch`).
    pub(super) fn note_interruption(&self, id: &TaskId, prompt: String) -> String {
        let Some(task) = self.state.tasks.get(id) else {
            return prompt;
        };
        let Some(interrupted) = &task.interrupted else {
            return prompt;
        };
        let section = prompt::interrupted_section(
            interrupted.attempt,
            &interrupted.reason,
            task.session_id.as_deref(),
        );
        prompt::insert_section(&prompt, &section)
    }

    /// A task's agent failed. When the attempt continued an earlier CLI session, the
    /// continuation may be what failed (a session its CLI no longer knows): the attempt counts
    /// as interrupted and the next one starts a new session, once. Otherwise the task fails.
    pub(super) fn fail_or_start_over(
        &mut self,
        id: &TaskId,
        attempt: u32,
        reason: String,
    ) -> anyhow::Result<()> {
        let continued = self.state.tasks.get(id).and_then(|t| t.continuing.clone());
        let Some(session) = continued else {
            return self.fail_task(id, reason);
        };
        self.record(Event::TaskInterrupted {
            task: id.clone(),
            attempt,
            reason: format!(
                "continuing the agent's session {session} failed ({reason}); the next \
                 attempt starts a new session"
            ),
            session_id: None,
            ended_at_ms: None,
        })?;
        self.dispatch()
    }

    /// For a new attempt of an interrupted task: the agent CLI's session that the interrupted
    /// attempt left, if its output named one. The invocation continues it where the CLI can
    /// (see `workers::invocation`; called by `launch`).
    pub(super) fn session_to_continue(&self, id: &TaskId) -> Option<&str> {
        let task = self.state.tasks.get(id)?;
        task.interrupted.as_ref()?;
        task.session_id.as_deref()
    }
}

/// Why an exit record means the agent was stopped from outside rather than ending of its own
/// accord, if it does: `agent-run` got a stop signal, or the agent died of one.
pub(super) fn interruption(exit: &ExitRecord) -> Option<String> {
    if exit.code == Some(0) && exit.signal.is_none() {
        return None;
    }
    let name = |sig: i32| signal_name(sig).map_or_else(|| format!("signal {sig}"), String::from);
    if let Some(sig) = exit.stopped_by {
        return Some(format!(
            "its agent got {} from outside ({})",
            name(sig),
            exit.describe()
        ));
    }
    match exit.signal {
        Some(sig) if [libc::SIGHUP, libc::SIGINT, libc::SIGTERM].contains(&sig) => {
            Some(format!("its agent was {}", exit.describe()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: Option<i32>, signal: Option<i32>, stopped_by: Option<i32>) -> ExitRecord {
        ExitRecord {
            code,
            signal,
            started_at_ms: 1,
            ended_at_ms: 2,
            stopped_by,
            failure: None,
            usage: None,
            session_id: None,
            sandbox_refused: Vec::new(),
        }
    }

    #[test]
    fn only_a_stop_from_outside_is_an_interruption() {
        assert_eq!(interruption(&exit(Some(0), None, None)), None);
        // A stop the agent took well (it finished) is its own clean exit.
        assert_eq!(interruption(&exit(Some(0), None, Some(15))), None);
        assert_eq!(interruption(&exit(Some(3), None, None)), None);
        assert_eq!(interruption(&exit(None, Some(11), None)), None);
        let hup = interruption(&exit(None, Some(1), Some(1))).unwrap();
        assert!(hup.contains("SIGHUP"), "{hup}");
        assert!(interruption(&exit(Some(130), None, Some(2))).is_some());
        assert!(interruption(&exit(None, Some(15), None)).is_some());
    }
}
