//! `isolation: task`: each task of a worktree run works in a linked worktree of its own (see
//! [`crate::workspace::task`]), so one task's tests never see another's half-written files.
//!
//! - Before a task's first agent launches, its worktree is made at the run branch's tip (which
//!   holds the commits of the tasks it depends on: they are done, so committed) and journaled
//!   (`task_worktree`); a retry continues in it. The task's agent, its gates, the judge of it and
//!   its oracle all work there ([`Engine::agent_root`]).
//! - A watcher per task worktree reports each change as the task's: its own files are its work
//!   (first writes, for TDD), anything else is a violation that only the task can have made.
//!   When its checks start, the worktree is compared with its start exactly
//!   (`TaskRepo::inspect`), which finds whatever the watcher missed.
//! - Once the judge passed it, its owned files (and nothing else) become one commit on the run
//!   branch (`TaskRepo::collect`, ownership checked exactly once more), the run's worktree
//!   follows the branch, and the task's worktree is removed (`task_worktree_removed`). A task
//!   that fails keeps its worktree, for `orch retry` and for a look, until `orch discard`.
//!
//! A violation in a task's worktree never reaches the run branch whatever the policy: `revert`
//! puts the file back as the task's start had it, `warn` leaves it there, uncommitted.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use super::agents::Role;
use super::core::Engine;
use crate::config::ViolationPolicy;
use crate::plan::TaskId;
use crate::state::{Event, Phase, TaskStatus, WarningKind};
use crate::watch::{ChangeKind, FsChange, TreeWatcher};
use crate::workspace::Isolation;
use crate::workspace::task::{TaskRepo, TaskWorktree};

/// The watchers of the task worktrees.
pub(super) struct TaskTrees {
    /// Where their changes go, with their task; None when nothing is watched (unit tests
    /// driven input by input).
    tx: Option<UnboundedSender<(TaskId, FsChange)>>,
    /// One per task worktree at work: dropping it stops the watching.
    watchers: BTreeMap<TaskId, TreeWatcher>,
}

impl TaskTrees {
    pub(super) fn new(tx: Option<UnboundedSender<(TaskId, FsChange)>>) -> TaskTrees {
        TaskTrees {
            tx,
            watchers: BTreeMap::new(),
        }
    }
}

impl Engine {
    /// Whether each task works in a worktree of its own.
    pub(super) fn isolated(&self) -> bool {
        self.info
            .workspace
            .as_ref()
            .is_some_and(|w| w.isolation == Isolation::Task)
    }

    fn task_repo(&self) -> Option<TaskRepo> {
        if !self.isolated() {
            return None;
        }
        let repo = TaskRepo::new(
            &self.work.root,
            &self.project.state_dir(),
            &self.info.run_id,
            self.dir.path(),
        );
        Some(repo.with_ignore(&self.config.ownership.ignore))
    }

    /// Where task `id` is worked on: its own worktree, else the run's.
    pub(super) fn task_root(&self, id: &TaskId) -> PathBuf {
        self.state
            .task_worktrees
            .get(id)
            .map_or_else(|| self.work.root.clone(), |tw| tw.path.clone())
    }

    /// Where an agent in `role` works: a task's agent and its oracle in the task's worktree,
    /// the judge of one isolated task in that task's, the rest in the run's.
    pub(super) fn agent_root(&self, role: &Role) -> PathBuf {
        match role {
            Role::Task(id) | Role::Oracle(id, _) => self.task_root(id),
            Role::Judge(tasks) if tasks.len() == 1 => self.task_root(&tasks[0]),
            Role::Judge(_) | Role::Planner => self.work.root.clone(),
        }
    }

    /// Before task `id`'s agent launches: its worktree, made now unless it has one (a retry
    /// continues in it), and watched.
    pub(super) fn ready_task_tree(&mut self, id: &TaskId) -> anyhow::Result<()> {
        let Some(repo) = self.task_repo() else {
            return Ok(());
        };
        if let Some(tw) = self.state.task_worktrees.get(id).cloned() {
            if tw.path.is_dir() {
                self.watch_task_tree(id);
                return Ok(());
            }
            // Removed by hand: git's record of it goes too, and it is made again, from the
            // run branch as it is now.
            repo.discard(&tw)?;
            self.record(Event::TaskWorktreeRemoved { task: id.clone() })?;
        }
        // One the journal does not know was made by an engine that died before journaling it:
        // no agent ever worked in it.
        let path = repo.task_path(id);
        if std::fs::symlink_metadata(&path).is_ok() {
            let stale = TaskWorktree {
                task: id.clone(),
                path,
                start: String::new(),
            };
            repo.discard(&stale)?;
        }
        let tw = repo.prepare(id)?;
        self.record(Event::TaskWorktree {
            task: id.clone(),
            path: tw.path,
            start: tw.start,
        })?;
        self.watch_task_tree(id);
        Ok(())
    }

    /// Watches task `id`'s worktree, unless it is watched already. Without a watcher its
    /// changes are still all found when its checks start.
    fn watch_task_tree(&mut self, id: &TaskId) {
        let Some(tx) = self.task_trees.tx.clone() else {
            return;
        };
        let (Some(repo), Some(tw)) = (self.task_repo(), self.state.task_worktrees.get(id)) else {
            return;
        };
        if self.task_trees.watchers.contains_key(id) {
            return;
        }
        // The run's barrier directory too: a task's checks wait for its own watcher's
        // barrier (see barrier.rs), behind its agent's last writes.
        let barriers = Some(self.dir.barriers()).filter(|d| d.is_dir());
        let watched = repo
            .start_rules(tw)
            .map_err(anyhow::Error::new)
            .and_then(|ignore| {
                let (each_tx, mut each_rx) = unbounded_channel();
                let watcher =
                    TreeWatcher::with_barriers(&tw.path, ignore, each_tx, barriers.as_deref())?;
                let task = id.clone();
                // Each change goes on with the task it is in.
                tokio::spawn(async move {
                    while let Some(change) = each_rx.recv().await {
                        if tx.send((task.clone(), change)).is_err() {
                            return;
                        }
                    }
                });
                Ok(watcher)
            });
        match watched {
            Ok(watcher) => {
                self.task_trees.watchers.insert(id.clone(), watcher);
            }
            Err(e) => {
                let message = format!(
                    "cannot watch task {id}'s worktree ({e:#}): its changes are found when its \
                     checks start"
                );
                self.warn(WarningKind::Unpoliced, message);
            }
        }
    }

    fn unwatch_task_tree(&mut self, id: &TaskId) {
        self.task_trees.watchers.remove(id);
    }

    /// Whether task `id`'s changes come through a watcher of its own (then so do the barriers
    /// its checks wait for).
    pub(super) fn watches_task_tree(&self, id: &TaskId) -> bool {
        self.task_trees.watchers.contains_key(id)
    }

    /// A change in task `id`'s worktree.
    pub(super) fn on_task_fs(&mut self, id: &TaskId, change: FsChange) -> anyhow::Result<()> {
        let at = change
            .at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or_else(|_| crate::state::now_ms(), |d| d.as_millis() as u64);
        match change.kind {
            ChangeKind::Created => self.task_write(id, &change.path, "created", at),
            ChangeKind::Modified => self.task_write(id, &change.path, "modified", at),
            ChangeKind::Removed => self.task_write(id, &change.path, "removed", at),
            ChangeKind::Renamed { ref from } => {
                self.task_write(id, from, "removed", at)?;
                self.task_write(id, &change.path, "created", at)
            }
            ChangeKind::WatchFailed { reason } => {
                let cost = "changes there are found when its checks start";
                let message = format!("task {id}'s worktree: {reason}; {cost}");
                self.warn(WarningKind::Unpoliced, message);
                Ok(())
            }
            // Only the barriers its own checks wait for (see barrier.rs).
            ChangeKind::Barrier => self.on_task_barrier(id, &change.path),
            // Lost events are found by the exact look when its checks start; `.git/` is the
            // run's watcher's.
            ChangeKind::Rescan | ChangeKind::GitMeta => Ok(()),
        }
    }

    fn task_write(&mut self, id: &TaskId, path: &str, change: &str, at: u64) -> anyhow::Result<()> {
        if path.is_empty() || self.state.phase != Phase::Running {
            return Ok(());
        }
        let Some(task) = self.state.tasks.get(id) else {
            return Ok(());
        };
        if task.state == TaskStatus::Done || self.commits.is_pending(id) {
            return Ok(()); // its worktree is on its way out (see committer.rs)
        }
        let root = self.task_root(id);
        if let Some(owned) = task.files.iter().find(|f| *f == path).cloned() {
            // Its own file made a way out of its worktree: whatever is written through it
            // lands elsewhere, and a commit would carry the link.
            if let Some(out) = crate::paths::link_out(&root, path) {
                let change = format!("made into {out}:");
                let grave = super::ownership::outside_note(&out);
                let suspects = self.writer_in_tree(id, path, at);
                return self.task_violation(id, path, &change, Some(grave), false, suspects);
            }
            if !self.state.first_writes.contains_key(&owned) {
                self.record_unsynced(Event::FirstWrite {
                    task: id.clone(),
                    path: owned,
                    at_ms: at,
                })?;
            }
            self.agents.touch_task(Some(id));
            return Ok(());
        }
        if self.as_at_start(id, path) {
            return Ok(()); // a revert of ours, or a write that changed nothing
        }
        let suspects = self.writer_in_tree(id, path, at);
        self.task_violation(id, path, change, None, false, suspects)
    }

    /// Who made a change in task `id`'s worktree seen at `at`: its agent (or what it left
    /// running) when it was at work then or when the file was last written; else nobody to
    /// blame (the task's gates, its judge).
    fn writer_in_tree(&self, id: &TaskId, path: &str, at: u64) -> Vec<TaskId> {
        let written = std::fs::symlink_metadata(self.task_root(id).join(path))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64);
        let at_work = |t: u64| {
            self.state.tasks.get(id).is_some_and(|task| {
                task.started_at_ms.is_some_and(|s| s <= t)
                    && (self.agents.has_task(id)
                        || task.ended_at_ms.is_some_and(|e| e >= t)
                        || self.leftovers_active(id, t))
            })
        };
        if at_work(at) || written.is_some_and(at_work) {
            vec![id.clone()]
        } else {
            Vec::new()
        }
    }

    /// Whether `path` in task `id`'s worktree is as its start had it (absent included).
    fn as_at_start(&self, id: &TaskId, path: &str) -> bool {
        let (Some(repo), Some(tw)) = (self.task_repo(), self.state.task_worktrees.get(id)) else {
            return false;
        };
        let current = match std::fs::symlink_metadata(tw.path.join(path)) {
            Err(_) => None,
            Ok(_) => match super::revert::read_as_git(&tw.path.join(path)) {
                Ok(content) => Some(content),
                Err(_) => return false,
            },
        };
        repo.original(tw, path)
            .is_ok_and(|original| original == current)
    }

    /// Whether a violation of `path` in task `id`'s worktree is on record and still as it left
    /// the file: one write can come as several events, and the exact look finds again what
    /// the watcher saw.
    fn open_in_tree(&self, id: &TaskId, path: &str) -> bool {
        self.state
            .violations
            .iter()
            .any(|v| v.worktree.as_ref() == Some(id) && v.path == path && v.is_open())
    }

    /// A change in task `id`'s worktree to `path`, which it does not own: journaled, the
    /// content saved, and handled by the policy, in that worktree alone (`swept`: found by
    /// the exact look rather than seen by the watcher).
    fn task_violation(
        &mut self,
        id: &TaskId,
        path: &str,
        change: &str,
        grave: Option<String>,
        swept: bool,
        suspects: Vec<TaskId>,
    ) -> anyhow::Result<()> {
        // One write can come as several events, and the exact look finds again what the
        // watcher saw: the same file of the same worktree, still as the violation left it,
        // is one violation.
        if self.open_in_tree(id, path) {
            return Ok(());
        }
        let root = self.task_root(id);
        let n = self.next_violation_number();
        let is_file = std::fs::symlink_metadata(root.join(path)).is_ok_and(|m| !m.is_dir());
        let policy = self.config.ownership.on_violation;
        let policy = if grave.is_some() && policy == ViolationPolicy::Revert {
            ViolationPolicy::Warn // a link out: what it reached is not ours to put back
        } else {
            policy
        };
        let action = match policy {
            ViolationPolicy::Revert => "reverting".to_string(),
            ViolationPolicy::Stop if self.agents.has_task(id) && !suspects.is_empty() => {
                format!("stopped {id}")
            }
            ViolationPolicy::Warn | ViolationPolicy::Stop => {
                "recorded (in the task's own worktree: never committed)".to_string()
            }
        };
        let action = match &grave {
            Some(why) => format!("{action}; {why}"),
            None => action,
        };
        let dest = self.dir.violation_dir(n);
        let saved = (policy == ViolationPolicy::Revert && is_file)
            .then(|| self.project.display(&dest.join(path)).to_string());
        self.record(Event::Violation {
            n,
            path: path.to_string(),
            change: change.to_string(),
            suspects: suspects.clone(),
            action,
            saved,
            swept,
            worktree: Some(id.clone()),
        })?;
        match policy {
            ViolationPolicy::Warn => Ok(()),
            ViolationPolicy::Revert => {
                let (action, saved) = self.task_revert(id, n, path);
                self.record(Event::ViolationSettled { n, action, saved })?;
                Ok(())
            }
            ViolationPolicy::Stop if self.agents.has_task(id) && !suspects.is_empty() => self
                .fail_task(
                    id,
                    format!("stopped: changed {path}, which it does not own"),
                ),
            ViolationPolicy::Stop => Ok(()),
        }
    }

    /// Saves `path` of task `id`'s worktree for violation `n`, then puts it back as the task's
    /// start had it: its action, and where the content was saved.
    fn task_revert(&self, id: &TaskId, n: u32, path: &str) -> (String, Option<String>) {
        let (Some(repo), Some(tw)) = (self.task_repo(), self.state.task_worktrees.get(id)) else {
            return ("revert failed: the task has no worktree".into(), None);
        };
        let dest = self.dir.violation_dir(n);
        let full = tw.path.join(path);
        if std::fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) {
            // A directory holds files of its own, each judged on its own.
            return ("recorded (a directory)".into(), None);
        }
        let saved = match crate::snapshot::save_copy(&tw.path, path, &dest) {
            Ok(copy) => copy.map(|p| self.project.display(&p).to_string()),
            Err(e) => {
                let action = format!(
                    "not reverted: its content could not be saved first ({e:#}); it is never \
                     committed"
                );
                return (action, None);
            }
        };
        let action = match repo.original(tw, path) {
            Ok(None) => match std::fs::remove_file(&full) {
                Ok(()) => "deleted".to_string(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "deleted".to_string(),
                Err(e) => format!("revert failed: {e}; it is never committed"),
            },
            Ok(Some((content, mode))) => {
                let parent = full.parent().map_or(Ok(()), std::fs::create_dir_all);
                match parent.and_then(|()| super::revert::write_as_git(&full, &content, mode)) {
                    Ok(()) => "reverted".to_string(),
                    Err(e) => format!("revert failed: {e}; it is never committed"),
                }
            }
            Err(e) => format!("revert failed: {e}; it is never committed"),
        };
        (action, saved)
    }

    /// Task `id`'s worktree compared with its start exactly, every change to a file it does
    /// not own a violation (if not one already): when its checks start (`at_exit`), and a
    /// last time before a resume removes a done task's worktree.
    pub(super) fn inspect_task_tree(&mut self, id: &TaskId, at_exit: bool) -> anyhow::Result<()> {
        let (Some(repo), Some(tw)) = (self.task_repo(), self.state.task_worktrees.get(id).cloned())
        else {
            return Ok(());
        };
        let owned = self
            .state
            .tasks
            .get(id)
            .map(|t| t.files.clone())
            .unwrap_or_default();
        match repo.inspect(&tw, &owned) {
            Ok(inspected) => self.task_findings(id, &inspected.findings, at_exit),
            // Its commit holds its own files alone whatever the worktree holds.
            Err(e) if at_exit => {
                let message = format!(
                    "cannot compare task {id}'s worktree with its start ({e:#}): only what its \
                     watcher saw counts; its commit still holds its own files alone"
                );
                self.warn(WarningKind::Unpoliced, message);
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    /// What the exact look found, as violations: `at_exit`, when its agent's attempt just
    /// ended (everything changed since its start is its doing, or an earlier attempt's); else
    /// (after its checks) the doing of whoever is at work then in its worktree: what its
    /// agent left running, or nobody (its gates, its judge).
    fn task_findings(
        &mut self,
        id: &TaskId,
        findings: &[crate::workspace::task::Finding],
        at_exit: bool,
    ) -> anyhow::Result<()> {
        for finding in findings {
            let suspects = if at_exit {
                vec![id.clone()]
            } else {
                self.writer_in_tree(id, &finding.path, crate::state::now_ms())
            };
            let change = change_name(finding.change);
            self.task_violation(id, &finding.path, change, None, true, suspects)?;
        }
        Ok(())
    }

    /// The job that takes task `id`'s work from its own worktree (see committer.rs); None
    /// when the run is not isolated or the task has no worktree on record.
    pub(super) fn isolated_job(&mut self, id: &TaskId) -> Option<super::committer::How> {
        let repo = self.task_repo()?;
        let tw = self.state.task_worktrees.get(id)?.clone();
        let now = crate::state::now_ms().to_string();
        // Its work is being taken, then its worktree removed: nobody's doing any more.
        self.unwatch_task_tree(id);
        Some(super::committer::How::Isolated {
            repo,
            tw,
            run_root: self.work.root.clone(),
            save: self.dir.path().join("synced").join(&now),
            keep: self.dir.path().join("collected").join(id.as_str()),
        })
    }

    /// Task `id`'s work was collected as its commit (see committer.rs): what its worktree held
    /// that is not its own is journaled as violations (copied into the run directory, never
    /// committed), a change the run's worktree had is said, and the worktree's removal
    /// journaled.
    pub(super) fn collected(
        &mut self,
        id: &TaskId,
        findings: &[crate::workspace::task::Finding],
        saved: &[String],
        removed: bool,
    ) -> anyhow::Result<()> {
        if !self.isolated() {
            return Ok(());
        }
        let keep = self.dir.path().join("collected").join(id.as_str());
        for finding in findings {
            if self.open_in_tree(id, &finding.path) {
                continue;
            }
            let copy = keep.join(&finding.path);
            let saved = std::fs::symlink_metadata(&copy)
                .is_ok()
                .then(|| self.project.display(&copy).to_string());
            let n = self.next_violation_number();
            let suspects = self.writer_in_tree(id, &finding.path, crate::state::now_ms());
            self.record(Event::Violation {
                n,
                path: finding.path.clone(),
                change: change_name(finding.change).to_string(),
                suspects,
                action: "recorded (in the task's own worktree, found as its work was taken: \
                         never committed)"
                    .into(),
                saved,
                swept: true,
                worktree: Some(id.clone()),
            })?;
        }
        self.say_synced(saved, &self.dir.path().join("synced"));
        // (Unwatched already: see `isolated_job`.)
        if removed {
            self.record(Event::TaskWorktreeRemoved { task: id.clone() })?;
        }
        Ok(())
    }

    /// The run's worktree (its index and its files) brought up to the run branch, which the
    /// tasks' commits moved: what the run's gates see. Only what differs is written; a file
    /// changed there by someone is saved first (`synced/` in the run directory), and said.
    pub(super) fn update_run_tree(&mut self) {
        let Some(repo) = self.task_repo() else {
            return;
        };
        let save = self
            .dir
            .path()
            .join("synced")
            .join(crate::state::now_ms().to_string());
        match repo.sync_checkout(&self.work.root, &save) {
            Ok(saved) => self.say_synced(&saved, &save),
            Err(e) => {
                let message = format!(
                    "cannot bring the run's worktree up to its branch ({e}): the commits hold \
                     the tasks' work; `git -C {} checkout -f` shows it there",
                    self.work.root.display()
                );
                self.warn(WarningKind::Workspace, message);
            }
        }
    }

    /// Says which changes the run's worktree had of its own, saved under `dir` before it was
    /// brought up to its branch (nothing, when none).
    fn say_synced(&mut self, saved: &[String], dir: &std::path::Path) {
        if saved.is_empty() {
            return;
        }
        let message = format!(
            "the run's worktree had changes of its own to {} (no task works there): saved \
             under {} before it was brought up to its branch",
            saved.join(", "),
            self.project.display(dir)
        );
        self.warn(WarningKind::Workspace, message);
    }

    /// Whether `path` in the run's worktree is as its branch has it, under `isolation: task`
    /// (always false otherwise).
    pub(super) fn run_tree_at_tip(&self, path: &str) -> bool {
        self.task_repo()
            .is_some_and(|repo| repo.matches_tip(&self.work.root, path))
    }

    fn remove_task_tree(&mut self, id: &TaskId) -> anyhow::Result<()> {
        self.unwatch_task_tree(id);
        let (Some(repo), Some(tw)) = (self.task_repo(), self.state.task_worktrees.get(id).cloned())
        else {
            return Ok(());
        };
        match repo.discard(&tw) {
            Ok(()) => {
                self.record(Event::TaskWorktreeRemoved { task: id.clone() })?;
            }
            Err(e) => {
                let message = format!(
                    "cannot remove task {id}'s worktree {} ({e}): its work is committed; \
                     `orch discard` removes it with the run's",
                    tw.path.display()
                );
                self.warn(WarningKind::Workspace, message);
            }
        }
        Ok(())
    }

    /// A task that failed for good: its worktree is kept (for `orch retry`, and a look) but no
    /// longer watched.
    pub(super) fn task_tree_failed(&mut self, id: &TaskId) {
        self.unwatch_task_tree(id);
    }

    /// On resume: a revert in a task's worktree journaled but not done (the engine died in
    /// between) is done; the worktrees of tasks done (the engine died between their commit and
    /// the removal) are looked at a last time, then go; the run's worktree follows its branch;
    /// the others are watched again.
    pub(super) fn resume_task_trees(&mut self) -> anyhow::Result<()> {
        if !self.isolated() {
            return Ok(());
        }
        let unfinished: Vec<(u32, String, TaskId)> = self
            .state
            .violations
            .iter()
            .filter(|v| {
                v.action.starts_with("reverting")
                    || v.action.starts_with("revert failed")
                    || v.action.starts_with("not reverted")
            })
            .filter_map(|v| Some((v.n, v.path.clone(), v.worktree.clone()?)))
            .filter(|(_, _, id)| self.state.task_worktrees.contains_key(id))
            .collect();
        for (n, path, id) in unfinished {
            let (action, saved) = self.task_revert(&id, n, &path);
            self.record(Event::ViolationSettled { n, action, saved })?;
        }
        let trees: Vec<(TaskId, TaskStatus)> = self
            .state
            .task_worktrees
            .keys()
            .filter_map(|id| Some((id.clone(), self.state.tasks.get(id)?.state)))
            .collect();
        for (id, status) in trees {
            match status {
                TaskStatus::Done => {
                    // What changed after its checks (its judge, what its agent left) is on
                    // record before the worktree goes.
                    self.inspect_task_tree(&id, false)?;
                    self.remove_task_tree(&id)?;
                }
                TaskStatus::Failed | TaskStatus::Blocked => {}
                _ => self.watch_task_tree(&id),
            }
        }
        self.update_run_tree();
        Ok(())
    }
}

fn change_name(change: crate::workspace::task::Change) -> &'static str {
    match change {
        crate::workspace::task::Change::Added => "created",
        crate::workspace::task::Change::Modified => "modified",
        crate::workspace::task::Change::Deleted => "removed",
        crate::workspace::task::Change::TypeChanged => "changed type",
    }
}
