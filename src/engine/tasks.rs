//! Tasks in their panes: launching the ready ones, learning of their exit from the exit
//! record (or from tmux when the pane died without one), timeouts, and blocking dependents.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::core::{Engine, Live};
use crate::agent_run::ExitRecord;
use crate::dispatcher::{self, Sched, TaskView};
use crate::plan::TaskId;
use crate::prompt::{self, Context, Role};
use crate::state::{Event, Phase, TaskStatus};
use crate::workers::{self, AgentCall};

/// How long a stopped agent gets between TERM and KILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How many tasks one launch turn starts at most when several may (their windows in one tmux
/// round trip): enough that 256 start in well under a second, few enough that an exit or a
/// write waits for one batch's files and journal lines at most.
const LAUNCH_BATCH: usize = 16;

/// A launch prepared but for its pane.
struct Prepared {
    window: crate::tmux::WindowSpec,
    attempt: u32,
    dir: std::path::PathBuf,
}

impl Engine {
    fn views(&self) -> Vec<TaskView<'_>> {
        self.state
            .tasks_in_order()
            .map(|t| TaskView {
                id: &t.id,
                sched: match t.state {
                    TaskStatus::Pending => Sched::Pending,
                    TaskStatus::Running => Sched::Running,
                    TaskStatus::Done => Sched::Done,
                    TaskStatus::Failed => Sched::Failed,
                    TaskStatus::Blocked => Sched::Blocked,
                },
                depends_on: &t.depends_on,
            })
            .collect()
    }

    pub(super) fn settled(&self) -> bool {
        dispatcher::settled(&self.views())
    }

    /// Asks for the tasks that may start now to be started. The loop does it between events,
    /// one launch at a time (`Engine::launch_step`): a launch is the slowest thing the loop
    /// does, and must not hold up the journaling of an exit or a write (see BENCHMARKS.md).
    pub(super) fn dispatch(&mut self) -> anyhow::Result<()> {
        self.launch_wanted = true;
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
        if ready.len() > 1 && self.panes.own_windows() {
            // Several at once, their windows in one pipelined tmux round trip (see
            // Tmux::new_windows): a bounded batch, so an exit waits for one batch at most.
            if ready.len() > LAUNCH_BATCH {
                self.launch_wanted = true;
            }
            let batch: Vec<TaskId> = ready.into_iter().take(LAUNCH_BATCH).collect();
            return self.launch_batch(&batch);
        }
        if ready.len() > 1 {
            self.launch_wanted = true;
        }
        if let Some(id) = ready.into_iter().next()
            && let Err(e) = self.launch(&id)
        {
            return self.launch_failed(&id, &e);
        }
        self.finish_if_settled()
    }

    fn launch_failed(&mut self, id: &TaskId, e: &anyhow::Error) -> anyhow::Result<()> {
        // No session to launch into is no fault of the task (see interrupted.rs).
        if self.tmux_lost() {
            return self.detach("its tmux session is gone");
        }
        self.fail_task(id, format!("could not be launched: {e:#}"))?;
        self.finish_if_settled()
    }

    /// Launches `ids`, each prepared as `launch` does, their windows made in one batch.
    fn launch_batch(&mut self, ids: &[TaskId]) -> anyhow::Result<()> {
        let mut prepared = Vec::new();
        for id in ids {
            match self.launch_prepare(id) {
                Ok(p) => prepared.push((id.clone(), p)),
                Err(e) => self.launch_failed(id, &e)?,
            }
            if self.detached {
                return Ok(());
            }
        }
        let specs: Vec<crate::tmux::WindowSpec> =
            prepared.iter().map(|(_, p)| p.window.clone()).collect();
        let panes = self.panes.windows(self.tmux.as_ref(), &specs);
        for ((id, p), pane) in prepared.into_iter().zip(panes) {
            let done = pane
                .map_err(anyhow::Error::from)
                .and_then(|pane| self.launch_started(&id, p, pane));
            if let Err(e) = done {
                self.launch_failed(&id, &e)?;
                if self.detached {
                    return Ok(());
                }
            }
        }
        self.finish_if_settled()
    }

    fn launch(&mut self, id: &TaskId) -> anyhow::Result<()> {
        let prepared = self.launch_prepare(id)?;
        let pane = self.panes.place(self.tmux.as_ref(), &prepared.window)?;
        self.launch_started(id, prepared, pane)
    }

    /// Everything of a launch but its pane: the attempt's directory, prompt, launcher, and
    /// the `task_started` entry.
    fn launch_prepare(&mut self, id: &TaskId) -> anyhow::Result<Prepared> {
        let task = self.state.tasks.get(id).context("no such task")?.clone();
        let attempt = task.attempts + 1;
        let dir = self.dir.task_attempt(id, attempt);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let specs = self
            .plan
            .as_ref()
            .map(|p| p.spec_files())
            .unwrap_or_default();
        let ctx = Context {
            role: Role::Worker,
            task: Some(id.clone()),
            files: task.files.clone(),
            specs,
            request: self.info.request.clone(),
            attempt,
            project_dir: self.project.root.display().to_string(),
            workers: vec![],
            plan_file: None,
            test_pattern: self.config.gates.test_pattern.clone(),
            task_text: Some(task.task_text.clone()),
            feedback: task.feedback.clone(),
        };
        let prompt_file = dir.join("prompt.md");
        let text = self.note_interruption(id, prompt::worker_prompt(&ctx)); // see interrupted.rs
        std::fs::write(&prompt_file, text)
            .with_context(|| format!("failed to write {}", prompt_file.display()))?;
        let agent = self
            .config
            .agents
            .get(&task.agent)
            .with_context(|| format!("agent `{}` is not in the config", task.agent))?;
        let mut invocation = workers::invocation(&AgentCall {
            name: &task.agent,
            agent,
            role: Role::Worker,
            task: Some(id),
            files: &task.files,
            prompt_file: &prompt_file,
            project_dir: &self.project.root,
            run_dir: self.dir.path(),
            session: self.session_to_continue(id), // see interrupted.rs
        })?;
        crate::sandbox::confine(
            &mut invocation,
            Role::Worker,
            &self.config,
            agent,
            &self.project.root,
            self.dir.path(),
        );
        self.record(Event::TaskStarted {
            task: id.clone(),
            attempt,
            continues: invocation.continues.clone(),
        })?;
        let title = format!("task {id} · agent {} · attempt {attempt}", task.agent);
        let window = self.prepare_pane(&dir, title, invocation, format!("{id}-{}", task.agent))?;
        Ok(Prepared {
            window,
            attempt,
            dir,
        })
    }

    /// A launch's pane is up: journaled, and its agent is live.
    fn launch_started(
        &mut self,
        id: &TaskId,
        prepared: Prepared,
        pane: crate::tmux::PaneInfo,
    ) -> anyhow::Result<()> {
        let Prepared { attempt, dir, .. } = prepared;
        self.record(Event::TaskAgentStarted {
            task: id.clone(),
            attempt,
            pane: pane.pane_id.clone(),
            window: pane.window_id.clone(),
            pid: pane.pid,
        })?;
        self.live.insert(
            id.clone(),
            Live {
                attempt,
                dir,
                pane: pane.pane_id,
                pid: pane.pid,
                last_activity: Instant::now(),
            },
        );
        Ok(())
    }

    /// An exit record appeared (or was found by reconciliation).
    pub(super) fn on_exit_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let Some(dir) = path.parent() else {
            return Ok(());
        };
        if self.hung_up_by_tmux(path) {
            return self.detach("its tmux session is gone"); // see interrupted.rs
        }
        let exit = match ExitRecord::read(path) {
            Ok(exit) => exit,
            // Not complete yet: the launcher renames it into place, so this is someone else's
            // write; the rename will come.
            Err(_) => return Ok(()),
        };
        self.on_exit(dir, &exit)
    }

    /// The agent of the attempt in `dir` ended as `exit` says.
    fn on_exit(&mut self, dir: &Path, exit: &ExitRecord) -> anyhow::Result<()> {
        let failed = exit.code != Some(0) || exit.signal.is_some();
        if failed && self.disk_full() {
            return self.stop_for_full_disk(); // see disk.rs
        }
        // Looked for once this exit is journaled, so that the walk of /proc it takes does not
        // come between an exit and its journal line (see leftovers.rs, event_loop.rs).
        if let Some(task) = self.attempt_of(dir) {
            self.leftovers_due.push((dir.to_path_buf(), task));
        }
        if self.planner.as_ref().is_some_and(|p| p.dir == dir) {
            return self.on_planner_exit(exit);
        }
        let code = if exit.signal.is_some() {
            None
        } else {
            exit.code
        };
        if self.judge.as_ref().is_some_and(|(l, _)| l.dir == dir) {
            return self.on_judge_exit(code);
        }
        if let Some(id) = self.oracle_at(dir) {
            return self.on_oracle_exit(&id, code);
        }
        let Some(id) = self
            .live
            .iter()
            .find(|(_, l)| l.dir == dir)
            .map(|(id, _)| id.clone())
        else {
            return Ok(()); // an attempt already settled (timed out, stopped)
        };
        self.on_task_exit(&id, exit)
    }

    fn on_task_exit(&mut self, id: &TaskId, exit: &ExitRecord) -> anyhow::Result<()> {
        let Some(live) = self.live.remove(id) else {
            return Ok(());
        };
        self.dir_watcher.unwatch(&live.dir);
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
            let stdout = crate::agent_run::read_stdout(&live.dir);
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
        let missing: Vec<String> = files
            .into_iter()
            .filter(|f| !self.project.root.join(f).exists())
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
        let attempt = self.state.tasks.get(id).map(|t| t.attempts).unwrap_or(0);
        if let Some(live) = self.live.get(id).cloned() {
            // What escaped the pane's group would outlive the stop (see leftovers.rs).
            self.on_leftovers(&live.dir, Some(id.clone()), Some(live.pid))?;
            self.live.remove(id);
            self.dir_watcher.unwatch(&live.dir);
            stop_pane(live.pid);
        }
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
        let stale: Vec<TaskId> = self
            .live
            .iter()
            .filter(|(_, l)| now.duration_since(l.last_activity) >= timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.fail_task(&id, reason.clone())?;
        }
        self.give_up_on_barriers()?;
        if self
            .planner
            .as_ref()
            .is_some_and(|p| now.duration_since(p.last_activity) >= timeout)
        {
            let live = self.planner.take().expect("checked");
            self.dir_watcher.unwatch(&live.dir);
            self.on_leftovers(&live.dir, None, Some(live.pid))?; // see leftovers.rs
            stop_pane(live.pid);
            self.refuse_plan(live.attempt, vec![format!("the planner made {reason}")])?;
        }
        // The judge and the oracles: stopped, and handled as if they had died.
        let stale: Vec<(std::path::PathBuf, u32)> = self
            .judge
            .iter()
            .map(|(l, _)| l)
            .chain(self.oracles.values().map(|(l, _)| l))
            .filter(|l| now.duration_since(l.last_activity) >= timeout)
            .map(|l| (l.dir.clone(), l.pid))
            .collect();
        for (dir, pid) in stale {
            self.on_leftovers(&dir, None, Some(pid))?; // see leftovers.rs
            stop_pane(pid);
            self.on_agent_lost(&dir, &reason)?;
        }
        Ok(())
    }

    /// Asks tmux which panes are alive. An agent whose pane died or vanished without an exit
    /// record failed; an exit record the watcher missed is picked up here.
    pub(super) fn reconcile(&mut self) -> anyhow::Result<()> {
        if self.live.is_empty()
            && self.planner.is_none()
            && self.judge.is_none()
            && self.oracles.is_empty()
        {
            return Ok(());
        }
        let panes = match self.tmux.list_panes(&self.info.session) {
            Ok(panes) => panes,
            Err(e) => {
                eprintln!("warning: could not list the session's panes: {e}");
                return Ok(());
            }
        };
        let mut checks: Vec<(std::path::PathBuf, String)> = self
            .live
            .values()
            .chain(self.planner.iter())
            .chain(self.judge.iter().map(|(l, _)| l))
            .chain(self.oracles.values().map(|(l, _)| l))
            .map(|l| (l.dir.clone(), l.pane.clone()))
            .collect();
        checks.sort();
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
                            self.on_agent_lost(&dir, &why)?
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
        if let Some(task) = self.attempt_of(dir) {
            self.on_leftovers(dir, task, None)?;
        }
        Ok(())
    }

    /// Whether the attempt in `dir` is one the engine waits on, and if so its task (`None`
    /// for the planner, the judge, an oracle).
    fn attempt_of(&self, dir: &Path) -> Option<Option<TaskId>> {
        let task = self
            .live
            .iter()
            .find(|(_, l)| l.dir == dir)
            .map(|(id, _)| id.clone());
        let known = task.is_some()
            || self.planner.as_ref().is_some_and(|p| p.dir == dir)
            || self.judge.as_ref().is_some_and(|(l, _)| l.dir == dir)
            || self.oracle_at(dir).is_some();
        known.then_some(task)
    }

    /// The leftovers of the attempts that ended, looked for now that their exits are
    /// journaled.
    pub(super) fn look_for_leftovers(&mut self) -> anyhow::Result<()> {
        for (dir, task) in std::mem::take(&mut self.leftovers_due) {
            self.on_leftovers(&dir, task, None)?;
        }
        Ok(())
    }

    fn on_agent_lost(&mut self, dir: &Path, why: &str) -> anyhow::Result<()> {
        if self.disk_full() {
            return self.stop_for_full_disk(); // see disk.rs
        }
        let reason = format!("the agent stopped without an exit record: {why}");
        if self.planner.as_ref().is_some_and(|p| p.dir == dir) {
            let live = self.planner.take().expect("checked");
            self.dir_watcher.unwatch(&live.dir);
            return self.refuse_plan(live.attempt, vec![reason]);
        }
        if self.judge.as_ref().is_some_and(|(l, _)| l.dir == dir) {
            return self.on_judge_exit(None);
        }
        if let Some(id) = self.oracle_at(dir) {
            return self.on_oracle_exit(&id, None);
        }
        let id = self
            .live
            .iter()
            .find(|(_, l)| l.dir == dir)
            .map(|(id, _)| id.clone());
        match id {
            Some(id) => self.fail_task(&id, reason),
            None => Ok(()),
        }
    }

    fn oracle_at(&self, dir: &Path) -> Option<TaskId> {
        self.oracles
            .iter()
            .find(|(_, (l, _))| l.dir == dir)
            .map(|(id, _)| id.clone())
    }

    /// Keeps a copy of a task's files as its agent left them (at each exit, and once done):
    /// a later violating write to one of them is judged against, and reverted to, this, not
    /// the start of the run. A file it left missing has no copy.
    pub(super) fn keep_baseline(&self, id: &TaskId) {
        let Some(task) = self.state.tasks.get(id) else {
            return;
        };
        for file in &task.files {
            // Never a copy of what a link out of the project points to (that is no file
            // of the task's, and reverting to it would write it back in).
            if crate::paths::link_out(&self.project.root, file).is_some() {
                continue;
            }
            let from = self.project.root.join(file);
            let kept = self.dir.baseline().join(file);
            match crate::watch::save_copy(&self.project.root, file, &self.dir.baseline()) {
                Ok(Some(_)) => {}
                // Left missing: no copy, not an older one that would say otherwise.
                Ok(None) => {
                    let _ = std::fs::remove_file(&kept);
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&kept);
                    if from.exists() {
                        eprintln!(
                            "warning: cannot keep a copy of {file} as task {id} left it \
                             ({e:#}); a later change to it can only be judged against the start"
                        );
                    }
                }
            }
        }
    }
}

/// Stops an agent's whole process group (TERM, then KILL) without holding up the loop.
pub(super) fn stop_pane(pid: u32) {
    std::thread::spawn(move || crate::process::kill_group(pid as i32, STOP_GRACE));
}
