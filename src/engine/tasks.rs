//! Tasks in their panes: launching the ready ones, learning of their exit from the exit
//! record (or from tmux when the pane died without one), timeouts, and blocking dependents.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::agents::{Agent, Role};
use super::core::Engine;
use super::dispatcher::{self, TaskView};
use super::launch::{Launch, Placement};
use crate::agent_process::run::ExitRecord;
use crate::paths::ProjectPath;
use crate::plan::TaskId;
use crate::prompt::{self, Role as PromptRole};
use crate::state::{Event, Phase};
use crate::workers;

/// How long a stopped agent gets between TERM and KILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

impl Engine {
    fn views(&self) -> Vec<TaskView<'_>> {
        self.state
            .tasks_in_order()
            .map(|t| TaskView {
                id: &t.id,
                status: t.state,
                depends_on: &t.depends_on,
            })
            .collect()
    }

    pub(super) fn settled(&self) -> bool {
        dispatcher::settled(&self.views())
    }

    /// Asks for the tasks that may start now to be started. The loop does it between events,
    /// one launch at a time (`Input::LaunchStep`): a launch is the slowest thing the loop
    /// does, and must not hold up the journaling of an exit or a write (see BENCHMARKS.md).
    pub(super) fn dispatch(&mut self) -> anyhow::Result<()> {
        self.sched.want_launch();
        Ok(())
    }

    /// Starts one task that may start now, asking to be called again while others may,
    /// then ends the run if nothing is left.
    pub(super) fn dispatch_one(&mut self) -> anyhow::Result<()> {
        if self.state.phase != Phase::Running {
            return Ok(());
        }
        self.recheck_parked()?;
        if self.holding_for_rechecks() {
            return Ok(());
        }
        let ready: Vec<TaskId> = dispatcher::ready(&self.views(), self.config.limits.max_parallel)
            .into_iter()
            .cloned()
            .collect();
        if ready.len() > 1 {
            self.sched.want_launch();
        }
        if let Some(id) = ready.into_iter().next()
            && let Err(e) = self.launch(&id)
        {
            return self.task_not_launched(&id, &e); // see launch.rs
        }
        self.finish_if_settled()
    }

    fn launch(&mut self, id: &TaskId) -> anyhow::Result<()> {
        let task = self.state.tasks.get(id).context("no such task")?.clone();
        let attempt = task.attempts + 1;
        // Its own worktree first, where its prompt says it works (see isolation.rs).
        self.ready_task_tree(id)?;
        let mut ctx = self.prompt_context(PromptRole::Worker, Some(id), attempt);
        ctx.files = task.files.clone();
        ctx.task_text = Some(task.task_text.clone());
        ctx.feedback = task.feedback.clone();
        let text = self.note_interruption(id, prompt::worker_prompt(&ctx)); // see interrupted.rs
        let text = self.note_retry(id, text); // see retry.rs
        let text = self.note_tell(id, text); // see tell.rs
        self.launch_agent(Launch {
            role: Role::Task(id.clone()),
            attempt,
            dir: self.dir.task_attempt(id, attempt),
            title: format!("task {id} · agent {} · attempt {attempt}", task.agent),
            window: format!("{id}-{}", task.agent),
            agent: task.agent,
            prompt: text,
            files: task.files,
            session: self.session_to_continue(id).map(str::to_string), // see interrupted.rs
            placement: Placement::Layout,
        })
    }

    /// An exit record appeared (or was found by reconciliation).
    pub(super) fn on_exit_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let Some(dir) = path.parent() else {
            return Ok(());
        };
        if self.hung_up_by_tmux(path) {
            return self.detach("its tmux session is gone"); // see interrupted.rs
        }
        // Not complete yet: the launcher renames it into place, so this is someone else's
        // write; the rename will come.
        let Ok(exit) = ExitRecord::read(path) else {
            return Ok(());
        };
        self.on_exit(dir, &exit)
    }

    /// The agent of the attempt in `dir` ended as `exit` says.
    fn on_exit(&mut self, dir: &Path, exit: &ExitRecord) -> anyhow::Result<()> {
        let failed = exit.code != Some(0) || exit.signal.is_some();
        if failed && self.disk_full() {
            return self.stop_for_full_disk(); // see disk.rs
        }
        let Some(agent) = self.agents.remove(dir) else {
            return Ok(()); // an attempt already settled (timed out, stopped)
        };
        self.unwatch_dir(dir);
        // Looked for once this exit is journaled, so that the walk of /proc it takes does not
        // come between an exit and its journal line (see leftovers.rs, event_loop.rs).
        self.sched.leftovers_of(dir, agent.role.task().cloned());
        let code = if exit.signal.is_some() {
            None
        } else {
            exit.code
        };
        match agent.role.clone() {
            Role::Planner => self.on_planner_exit(agent, code),
            Role::Judge(tasks) => self.on_judge_exit(agent, tasks, code),
            Role::Oracle(id, reasons) => self.on_oracle_exit(agent, &id, reasons, code),
            Role::Task(id) => self.on_task_exit(&id, agent, exit),
        }
    }

    fn on_task_exit(&mut self, id: &TaskId, live: Agent, exit: &ExitRecord) -> anyhow::Result<()> {
        self.record(Event::TaskExited {
            task: id.clone(),
            attempt: live.attempt,
            code: exit.code,
            signal: exit.signal,
            ended_at_ms: Some(exit.ended_at_ms),
        })?;
        if !exit.sandbox_refused.is_empty() {
            self.record(Event::SandboxRefused {
                task: id.clone(),
                attempt: live.attempt,
                lines: exit.sandbox_refused.clone(),
            })?;
        }
        self.keep_baseline(id);
        if exit.code != Some(0) || exit.signal.is_some() {
            let reason = format!("the agent {}", exit.describe());
            return self.fail_or_start_over(id, live.attempt, reason); // see interrupted.rs
        }
        let agent_kind = self
            .state
            .tasks
            .get(id)
            .and_then(|t| self.config.agents.get(&t.agent))
            .map(|a| a.kind);
        if let Some(kind) = agent_kind {
            let stdout = crate::agent_process::run::read_stdout(&live.dir);
            if let Some(failure) = workers::adapter(kind).assess(&stdout).failure {
                return self.fail_or_start_over(id, live.attempt, failure);
            }
        }
        let files = self
            .state
            .tasks
            .get(id)
            .map(|t| t.files.clone())
            .unwrap_or_default();
        let root = self.task_root(id);
        let missing: Vec<ProjectPath> = files
            .into_iter()
            .filter(|f| !root.join(f).exists())
            .collect();
        if !missing.is_empty() {
            return self.fail_task(
                id,
                format!(
                    "the agent exited 0 but did not write: {}",
                    missing.join(", ")
                ),
            );
        }
        self.check_when_seen(id, live.attempt) // see barrier.rs
    }

    /// Marks a task failed for good, blocks what depends on it, and carries on with the rest.
    pub(super) fn fail_task(&mut self, id: &TaskId, reason: String) -> anyhow::Result<()> {
        let attempt = self.state.tasks.get(id).map_or(0, |t| t.attempts);
        if let Some(live) = self.agents.task(id).cloned() {
            // What escaped the pane's group would outlive the stop (see leftovers.rs).
            self.on_leftovers(&live.dir, Some(id.clone()), live.group())?;
            self.agents.remove(&live.dir);
            self.unwatch_dir(&live.dir);
            if let Some(group) = live.group() {
                stop_pane(group);
            }
        }
        self.keep_failed_files(id); // see commits.rs
        self.task_tree_failed(id); // see isolation.rs
        self.record(Event::TaskFailed {
            task: id.clone(),
            attempt,
            reason,
        })?;
        let blocked: Vec<(TaskId, String)> = dispatcher::blocked_by(&self.views(), id)
            .into_iter()
            .map(|(t, r)| (t.clone(), r))
            .collect();
        for (task, reason) in blocked {
            self.record(Event::TaskBlocked { task, reason })?;
        }
        self.dispatch()
    }

    /// Kills tasks (and the planner) that showed no output and no file activity for
    /// `limits.task_timeout`.
    pub(super) fn check_timeouts(&mut self) -> anyhow::Result<()> {
        let timeout = self.config.limits.task_timeout;
        let now = Instant::now();
        let reason = format!(
            "no output and no file activity for {}: stopped",
            humantime::format_duration(timeout)
        );
        for agent in self.agents.stale(now, timeout) {
            match &agent.role {
                Role::Task(id) => self.fail_task(id, reason.clone())?,
                Role::Planner => {
                    self.agents.remove(&agent.dir);
                    self.unwatch_dir(&agent.dir);
                    self.on_leftovers(&agent.dir, None, agent.group())?; // see leftovers.rs
                    if let Some(group) = agent.group() {
                        stop_pane(group);
                    }
                    self.refuse_plan(agent.attempt, vec![format!("the planner made {reason}")])?;
                }
                // The judge and the oracles: stopped, and handled as if they had died.
                Role::Judge(_) | Role::Oracle(..) => {
                    self.on_leftovers(&agent.dir, None, agent.group())?; // see leftovers.rs
                    if let Some(group) = agent.group() {
                        stop_pane(group);
                    }
                    self.on_agent_lost(&agent.dir, &reason)?;
                }
            }
        }
        self.give_up_on_barriers()
    }

    /// Asks tmux which panes are alive. An agent whose pane died or vanished without an exit
    /// record failed; an exit record the watcher missed is picked up here.
    pub(super) fn reconcile(&mut self) -> anyhow::Result<()> {
        if self.agents.is_empty() {
            return Ok(());
        }
        let panes = match self.tmux.list_panes(&self.info.session) {
            Ok(panes) => panes,
            Err(e) => {
                let every = super::event_loop::RECONCILE_EVERY.as_secs();
                let cost =
                    format!("agents whose end went unheard are looked for again in {every} s");
                let message = format!("could not list the session's panes ({e}): {cost}");
                self.warn(crate::state::WarningKind::Agents, message);
                return Ok(());
            }
        };
        // In the registry's order (by directory). An agent whose pane tmux has not answered
        // yet (see launch.rs) is only looked at for its exit record.
        let checks: Vec<(std::path::PathBuf, Option<String>)> = self
            .agents
            .iter()
            .map(|a| (a.dir.clone(), a.pane.as_ref().map(|p| p.id.clone())))
            .collect();
        for (dir, pane) in checks {
            // Detached on the way (tmux gone): what is left is for `orch resume` to see.
            if self.detached {
                return Ok(());
            }
            let exit_file = dir.join("exit.json");
            if exit_file.exists() {
                self.on_exit_file(&exit_file)?;
                continue;
            }
            let Some(pane) = pane else {
                continue;
            };
            let gone = match panes.iter().find(|p| p.pane_id == pane) {
                None => Some("its pane disappeared".to_string()),
                Some(p) if p.dead => Some(match (p.dead_status, p.dead_signal) {
                    (_, Some(sig)) => format!("its pane died (signal {sig})"),
                    (Some(code), _) => format!("its pane died (status {code})"),
                    _ => "its pane died".to_string(),
                }),
                Some(_) => None,
            };
            if let Some(why) = gone {
                // The exit record is written before the pane can die; look once more in case
                // it landed between the listing and now.
                if exit_file.exists() {
                    self.on_exit_file(&exit_file)?;
                } else if self.lost_for_good(&dir)? {
                    // (see interrupted.rs: its exit record may still come, or tmux be gone)
                    let dead = panes.iter().find(|p| p.pane_id == pane);
                    match dead.and_then(|p| self.recover_exit(&dir, p)) {
                        Some(exit) => self.on_exit(&dir, &exit)?, // see disk.rs
                        None => {
                            self.leftovers_of_ended(&dir)?;
                            self.on_agent_lost(&dir, &why)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// What the agent of the attempt in `dir`, now ended, left running, if the attempt is
    /// one the engine waits on (an exit seen twice is handled once).
    fn leftovers_of_ended(&mut self, dir: &Path) -> anyhow::Result<()> {
        if let Some(agent) = self.agents.get(dir) {
            let task = agent.role.task().cloned();
            self.on_leftovers(dir, task, None)?;
        }
        Ok(())
    }

    /// The leftovers of the attempts that ended, looked for now that their exits are
    /// journaled.
    pub(super) fn look_for_leftovers(&mut self) -> anyhow::Result<()> {
        for (dir, task) in self.sched.take_leftovers() {
            self.on_leftovers(&dir, task, None)?;
        }
        Ok(())
    }

    fn on_agent_lost(&mut self, dir: &Path, why: &str) -> anyhow::Result<()> {
        if self.disk_full() {
            return self.stop_for_full_disk(); // see disk.rs
        }
        let reason = format!("the agent stopped without an exit record: {why}");
        let Some(agent) = self.agents.get(dir).cloned() else {
            return Ok(());
        };
        if let Role::Task(id) = &agent.role {
            return self.fail_task(id, reason); // which stops what is left of it
        }
        self.agents.remove(dir);
        self.unwatch_dir(dir);
        match agent.role.clone() {
            Role::Planner => self.refuse_plan(agent.attempt, vec![reason]),
            Role::Judge(tasks) => self.on_judge_exit(agent, tasks, None),
            Role::Oracle(id, reasons) => self.on_oracle_exit(agent, &id, reasons, None),
            Role::Task(_) => Ok(()),
        }
    }

    /// Keeps a copy of a task's files as its agent left them (at each exit, and once done):
    /// a later violating write to one of them is judged against, and reverted to, this, not
    /// the start of the run. A file it left missing has no copy.
    pub(super) fn keep_baseline(&mut self, id: &TaskId) {
        let Some(files) = self.state.tasks.get(id).map(|t| t.files.clone()) else {
            return;
        };
        // Where the task works: the run's worktree, or its own (see isolation.rs).
        let root = self.task_root(id);
        for file in &files {
            // Never a copy of what a link out of the project points to (that is no file
            // of the task's, and reverting to it would write it back in).
            if crate::paths::link_out(&root, file).is_some() {
                continue;
            }
            let from = root.join(file);
            let kept = self.dir.baseline().join(file);
            match crate::snapshot::save_copy(&root, file, &self.dir.baseline()) {
                Ok(Some(_)) => {}
                // Left missing: no copy, not an older one that would say otherwise.
                Ok(None) => {
                    let _ = std::fs::remove_file(&kept);
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&kept);
                    if from.exists() {
                        let message = format!(
                            "cannot keep a copy of {file} as task {id} left it ({e:#}); a \
                             later change to it can only be judged against the start"
                        );
                        self.warn(crate::state::WarningKind::Unpoliced, message);
                    }
                }
            }
        }
    }
}

/// Stops an agent's whole process group (TERM, then KILL) without holding up the loop.
pub(super) fn stop_pane(pid: u32) {
    if pid <= 1 {
        return; // never the engine's own group, nor init's
    }
    std::thread::spawn(move || {
        crate::agent_process::subprocess::kill_group(pid as i32, STOP_GRACE);
    });
}
