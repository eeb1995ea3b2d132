//! Taking over a run whose previous engine is gone: crashed, killed, its window or tmux server
//! lost, or the run interrupted or stopped (see `interrupted.rs` for that side).
//!
//! A resumed engine rebuilds the run from the journal, then looks at every agent the journal
//! says is running (the planner's current attempt, or each running task's):
//! - its exit record is there, and it ended of its own accord: adopted, and the record is
//!   handled as if it had just come (done, failed, judged), also when it was written while no
//!   engine was alive; the agent is not run again;
//! - its pane still runs the attempt's launcher (known by the pane's start command, also when
//!   the journal missed the pane): adopted, and it carries on;
//! - otherwise (stopped by a signal from outside, pane dead or gone, tmux restarted): the
//!   attempt is journaled as interrupted, and a new attempt is launched whose prompt says so.
//!
//! Agents of this run that nobody adopts (earlier attempts, agents orch had already given up
//! on) are stopped before anything is launched, so no two agents ever work on one task. Done,
//! failed and blocked tasks stay as they are.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::agents::{Agent, Pane, Role};
use super::core::Engine;
use super::interrupted::interruption;
use crate::agent_process::orphans::{self, AgentProcess};
use crate::agent_process::run::ExitRecord;
use crate::plan::TaskId;
use crate::state::{AttemptEnd, Event, Outcome, Phase};
use crate::tmux::PaneState;
use crate::workers;

/// How long stopped agents get between TERM and KILL.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(5);

/// What became of an agent while no engine watched it.
enum Found {
    /// Its exit record is there: handle it. The journal's pane and pid are not kept: after a
    /// tmux restart they may name another pane or process, which must never be signalled.
    Exited,
    /// Still running in this pane.
    Running(PaneState),
    /// Lost to an interruption, for this reason.
    Interrupted(String),
}

impl Engine {
    /// Whether a previous engine ran this run, so that this one takes it over. A run that
    /// ended for good (succeeded, failed) is not taken over, but for a failed run whose task
    /// `orch retry` asked to try again (see retry.rs).
    pub(super) fn check_resumable(&self) -> anyhow::Result<bool> {
        let retrying = self.state.phase == Phase::Finished(Outcome::Failed) && self.retry_waiting();
        if let Phase::Finished(outcome @ (Outcome::Succeeded | Outcome::Failed)) = self.state.phase
            && !retrying
        {
            anyhow::bail!(
                "run {} already {outcome}: there is nothing to resume; `orch status` shows it, \
                 `orch up` starts a new run",
                self.info.run_id
            );
        }
        Ok(self.state.engine_pid.is_some() || self.state.is_finished())
    }

    /// Takes the run over from where the journal and tmux say it is (see the module doc).
    pub(super) fn resume(&mut self) -> anyhow::Result<()> {
        // A stop request left by the `orch down` that stopped the run is answered.
        let _ = std::fs::remove_file(self.dir.stop_request());
        // On a branch: what was committed is done, journaled or not (see commits.rs).
        self.recover_commits()?;
        self.resume_task_trees()?; // see isolation.rs
        if self.plan.is_some() {
            self.commit_specs()?;
        }
        let panes = self.tmux.list_panes(&self.info.session).with_context(|| {
            format!(
                "cannot list the panes of tmux session {}, so orch cannot tell which agents \
                 still run; check tmux, then `orch resume` again",
                self.info.session
            )
        })?;
        let mut adopted = HashSet::new();
        // Planning is over, or starts again for the user's feedback (see approval.rs).
        let held = self.state.approval.waiting() || self.state.approval.replan.is_some();
        match self.state.phase {
            Phase::Planning if held => {}
            Phase::Planning => self.resume_planner(&panes, &mut adopted)?,
            Phase::Running => self.resume_tasks(&panes, &mut adopted)?,
            _ => {}
        }
        self.stop_strays(&panes, &adopted);
        // What changed while no engine watched is judged before anything new starts.
        self.sweep()?;
        // What `orch retry` asked for while no engine was live (see retry.rs).
        self.apply_retries()?;
        match self.state.phase {
            Phase::Planning if self.state.approval.replan.is_some() => self.start_replanning(),
            Phase::Planning if held => self.start_run(),
            Phase::Planning if self.agents.planner().is_none() => self.continue_planning(),
            Phase::Planning => Ok(()),
            Phase::Running => self.dispatch(),
            _ => self.start_run(),
        }
    }

    fn resume_planner(
        &mut self,
        panes: &[PaneState],
        adopted: &mut HashSet<PathBuf>,
    ) -> anyhow::Result<()> {
        if self.state.planning.ended.is_some() {
            return Ok(()); // its end is journaled; the next attempt had not started
        }
        let attempt = self.state.planning.attempt;
        let dir = self.dir.planner_attempt(attempt);
        match self.find_agent(&dir, panes, false) {
            Found::Interrupted(reason) => {
                self.record(Event::PlanningInterrupted { attempt, reason })?;
            }
            found => {
                let pane = match found {
                    Found::Running(p) => {
                        if self.state.planning.pane.as_deref() != Some(&p.pane_id) {
                            self.record(Event::PlanningAgentStarted {
                                attempt,
                                pane: p.pane_id.clone(),
                                pid: p.pid,
                            })?;
                        }
                        Some(Pane {
                            id: p.pane_id,
                            pid: p.pid,
                        })
                    }
                    // Ended: no pane or pid of its own any more (see `Found::Exited`).
                    _ => None,
                };
                self.adopt(Role::Planner, &dir, attempt, pane, adopted)?;
            }
        }
        Ok(())
    }

    /// After the current planning attempt ended (refused, or interrupted) with no next attempt
    /// started: go on as its end says.
    fn continue_planning(&mut self) -> anyhow::Result<()> {
        let attempt = self.state.planning.attempt;
        let problems = self.state.planning.problems.clone();
        if self.state.planning.ended == Some(AttemptEnd::Refused) {
            return self.after_refusal(attempt, problems);
        }
        // Interrupted: the next attempt gets the feedback the interrupted one had.
        self.planning_state.set_feedback(problems);
        self.start_planning(attempt + 1)
    }

    fn resume_tasks(
        &mut self,
        panes: &[PaneState],
        adopted: &mut HashSet<PathBuf>,
    ) -> anyhow::Result<()> {
        let running: Vec<_> = self
            .state
            .running()
            .map(|t| {
                (
                    t.id.clone(),
                    t.attempts,
                    t.pane.clone(),
                    t.pid,
                    t.ended_at_ms,
                )
            })
            .collect();
        for (id, attempt, pane, pid, ended) in running {
            let dir = self.dir.task_attempt(&id, attempt);
            // A journaled exit was taken as the agent's own: handled again, never rerun.
            match self.find_agent(&dir, panes, ended.is_some()) {
                Found::Interrupted(reason) => {
                    let session_id = self.session_of(&id, &dir);
                    let ended_at_ms = self.lost_at(&dir);
                    self.record(Event::TaskInterrupted {
                        task: id,
                        attempt,
                        reason,
                        session_id,
                        ended_at_ms,
                    })?;
                }
                Found::Running(p) => {
                    if pane.as_deref() != Some(&p.pane_id) || pid != Some(p.pid) {
                        // The window was made but not journaled before the engine died.
                        self.record(Event::TaskAgentStarted {
                            task: id.clone(),
                            attempt,
                            pane: p.pane_id.clone(),
                            window: p.window_id.clone(),
                            pid: p.pid,
                        })?;
                    }
                    let pane = Pane {
                        id: p.pane_id,
                        pid: p.pid,
                    };
                    self.adopt(Role::Task(id), &dir, attempt, Some(pane), adopted)?;
                }
                Found::Exited => {
                    self.adopt(Role::Task(id), &dir, attempt, None, adopted)?;
                }
            }
        }
        Ok(())
    }

    /// What became of the agent of the attempt in `dir`. `exit_accepted`: its exit was
    /// journaled already, so whatever its record says is the agent's own ending.
    fn find_agent(&self, dir: &Path, panes: &[PaneState], exit_accepted: bool) -> Found {
        let exit_file = dir.join("exit.json");
        if exit_file.exists() {
            return match ExitRecord::read(&exit_file) {
                Ok(exit) => match interruption(&exit) {
                    Some(reason) if !exit_accepted => Found::Interrupted(reason),
                    _ => Found::Exited,
                },
                Err(e) => Found::Interrupted(format!("its exit record is unreadable ({e:#})")),
            };
        }
        let tail = self.launcher_tail(dir);
        let mine: Vec<&PaneState> = panes
            .iter()
            .filter(|p| p.start_command.contains(&tail))
            .collect();
        if let Some(live) = mine.iter().find(|p| !p.dead) {
            return Found::Running((*live).clone());
        }
        // Its exit record could not be written (a full disk): the pane's status says how it
        // ended, and is now written as its record (see disk.rs).
        if let Some(dead) = mine.iter().find(|p| p.dead)
            && self.recover_exit(dir, dead).is_some()
            && exit_file.exists()
        {
            return Found::Exited;
        }
        Found::Interrupted(if mine.is_empty() {
            "its agent was gone (no pane runs it) when the engine resumed".to_string()
        } else {
            "its pane died without an exit record while no engine watched".to_string()
        })
    }

    /// When the agent of the attempt in `dir`, lost while no engine watched, stopped: its exit
    /// record's time, else its last sign of life (its last output, or the previous engine's
    /// last journal entry, whichever is later). Without it, the attempt would count the
    /// downtime up to this resume as its own running time.
    fn lost_at(&self, dir: &Path) -> Option<u64> {
        if let Ok(exit) = ExitRecord::read(&dir.join("exit.json")) {
            return Some(exit.ended_at_ms);
        }
        let output = std::fs::metadata(dir.join("output.log"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        output.max(self.state.quiet_since_ms)
    }

    /// `/runs/<run-id>/<attempt dir>/launch.sh`: how a pane's start command names the attempt
    /// it runs, whatever the project's path looks like once tmux quoted it.
    fn launcher_tail(&self, attempt_dir: &Path) -> String {
        let rel = attempt_dir
            .strip_prefix(self.dir.path())
            .unwrap_or(attempt_dir);
        format!(
            "/runs/{}/{}/{}",
            self.info.run_id,
            rel.display(),
            crate::agent_process::launcher::SCRIPT_FILE
        )
    }

    /// Registers the agent of the attempt in `dir` as running.
    fn adopt(
        &mut self,
        role: Role,
        dir: &Path,
        attempt: u32,
        pane: Option<Pane>,
        adopted: &mut HashSet<PathBuf>,
    ) -> anyhow::Result<()> {
        // Watching reports the files already there: an exit record written while no engine
        // lived is handled like one that comes now.
        self.watch_dir(dir)?;
        adopted.insert(dir.to_path_buf());
        self.agents
            .insert(Agent::new(role, attempt, dir.to_path_buf(), pane));
        Ok(())
    }

    /// Stops every agent of this run that was not adopted: panes still running a launcher of
    /// another attempt, and (on Linux) any process carrying the run's variables, such as an
    /// agent that outlived its pane. Waits until they are gone, so that nothing of theirs
    /// overlaps a new attempt.
    fn stop_strays(&mut self, panes: &[PaneState], adopted: &HashSet<PathBuf>) {
        let tails: Vec<String> = adopted.iter().map(|d| self.launcher_tail(d)).collect();
        let marker = format!("/runs/{}/", self.info.run_id);
        let mut strays: Vec<AgentProcess> = panes
            .iter()
            .filter(|p| !p.dead && p.start_command.contains(&marker))
            .filter(|p| {
                p.start_command
                    .contains(crate::agent_process::launcher::SCRIPT_FILE)
            })
            .filter(|p| !tails.iter().any(|t| p.start_command.contains(t)))
            .map(|p| AgentProcess {
                pid: p.pid as i32,
                pgid: p.pid as i32,
                attempt_dir: None,
            })
            .collect();
        // What agents left running and the config keeps (see leftovers.rs) runs on.
        let keeps = self.config.limits.leftovers == crate::config::LeftoverPolicy::Keep;
        let kept_leftovers = self
            .state
            .leftovers
            .iter()
            .filter(|l| keeps && l.kept)
            .map(|l| self.dir.path().join(&l.attempt_dir));
        let kept: HashSet<PathBuf> = adopted
            .iter()
            .cloned()
            .chain(kept_leftovers)
            .filter_map(|d| d.canonicalize().ok())
            .collect();
        strays.extend(
            orphans::find(self.dir.path())
                .into_iter()
                .filter(|p| !p.attempt_dir.as_ref().is_some_and(|d| kept.contains(d))),
        );
        if !strays.is_empty() {
            let groups = orphans::stop(&strays, STOP_GRACE);
            let message = format!(
                "stopped {groups} agent process group(s) of attempts nobody continues, found \
                 as the run was resumed"
            );
            self.warn(crate::state::WarningKind::Agents, message);
        }
    }

    /// The agent CLI's session id, if what the attempt printed names one.
    pub(super) fn session_of(&self, id: &TaskId, dir: &Path) -> Option<String> {
        let task = self.state.tasks.get(id)?;
        let agent = self.config.agents.get(&task.agent)?;
        let stdout = crate::agent_process::run::read_stdout(dir);
        workers::adapter(agent.kind).assess(&stdout).session_id
    }
}
