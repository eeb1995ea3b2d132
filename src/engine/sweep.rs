//! Sweeps: the tree compared with what the journal says should be there, for the changes no
//! watcher saw (made while no engine watched, between a crash and `orch resume`, or lost to
//! an inotify overflow). A file should be as it was at the start of the run, unless a task
//! owns it: a running task's files are its work in progress, a finished task's are as it
//! left them (`baseline/`). Each change found is attributed to the tasks that ran when it
//! was made (by the file's time, else its directory's), where the evidence allows, and
//! handled by the configured policy like any violation the watcher reports.
//!
//! New files are judged by the ignore rules of the run's start: a file hidden by a
//! `.gitignore` planted since is found too (git's own listing goes by today's rules).

use std::collections::BTreeMap;

use super::core::Engine;
use crate::snapshot::SnapshotChange;
use crate::state::WarningKind::Unpoliced;
use crate::state::{Phase, TaskStatus};

impl Engine {
    /// Records (and handles) every change the journal cannot account for. Only once the
    /// plan is known: while planning, the planner's writes are judged with its plan.
    pub(super) fn sweep(&mut self) -> anyhow::Result<()> {
        // `.git/`'s guarded files are compared with their start whatever the phase.
        self.check_git_meta(true)?;
        if self.state.phase != Phase::Running {
            return Ok(());
        }
        let Some(snapshot) = self.snapshot.clone() else {
            return Ok(());
        };
        self.finish_reverts()?;
        let mut found: BTreeMap<String, &'static str> = BTreeMap::new();
        match snapshot.changed_since() {
            Ok(changed) => {
                for (path, kind) in changed {
                    let change = match kind {
                        SnapshotChange::Added => "created",
                        SnapshotChange::Modified => "modified",
                        SnapshotChange::Deleted => "removed",
                    };
                    found.insert(path, change);
                }
            }
            Err(e) => {
                let cost = "changes made since are found by the next sweep, if it can look";
                self.warn(
                    Unpoliced,
                    format!("the sweep could not compare the tree with its start ({e}): {cost}"),
                );
                return Ok(());
            }
        }
        match snapshot.ignored_now() {
            Ok(entries) => {
                for entry in entries {
                    let is_dir = entry.ends_with('/');
                    let rel = entry.trim_end_matches('/');
                    if self.watching.ignore().is_ignored(rel, is_dir) {
                        continue; // ignored at the start too
                    }
                    if is_dir {
                        for file in
                            crate::watch::files_under(&self.work.root, rel, self.watching.ignore())
                        {
                            found.entry(file).or_insert("created");
                        }
                    } else {
                        found.entry(rel.to_string()).or_insert("created");
                    }
                }
            }
            Err(e) => self.warn(
                Unpoliced,
                format!(
                    "the sweep could not list what git ignores ({e}): files made there since \
                     the start were not looked at by this sweep"
                ),
            ),
        }
        for (path, change) in found {
            // A file made into a way out of the project, whoever made it so and even if its
            // task owns it: what was written through it changed a file elsewhere.
            if let Some(out) = crate::paths::link_out(&self.work.root, &path) {
                // Unless one still open already says so (a link reverted, then made again,
                // is a new violation).
                let open = self.state.violations.iter().any(|v| {
                    v.path == path
                        && v.change.starts_with("made into")
                        && v.is_open()
                        && v.worktree.is_none()
                });
                if !open {
                    let at = self.changed_at(&path);
                    let suspects = self.active_at(at);
                    let grave = Some(super::ownership::outside_note(&out));
                    self.violation(&path, &format!("made into {out}:"), suspects, grave, true)?;
                }
                continue;
            }
            if self.accounted_for(&path) {
                continue;
            }
            let at = self.changed_at(&path);
            let mut suspects = self.active_at(at);
            // Not those whose agent had ended by then (exit records no engine handled yet).
            suspects.retain(|id| self.ended_at(id).is_none_or(|end| end >= at));
            self.violation(&path, change, suspects, None, true)?;
        }
        Ok(())
    }

    /// Whether the journal explains `path` as it is now.
    fn accounted_for(&self, path: &str) -> bool {
        if self.watching.ignore().is_ignored(path, false) {
            return true;
        }
        let specs = self
            .plan
            .as_ref()
            .map(crate::plan::Plan::spec_files)
            .unwrap_or_default();
        if specs.iter().any(|s| s == path) && !self.dir.baseline().join(path).exists() {
            return true; // the planner's, with no copy to judge it against (an older run)
        }
        let owner = self
            .state
            .tasks
            .values()
            .find(|t| t.files.iter().any(|f| f == path));
        if let Some(task) = owner {
            if task.state == TaskStatus::Running && task.ended_at_ms.is_none() && !self.isolated() {
                // Its agent's work in progress, unless its exit record (written while no
                // engine watched) says it had ended before the change.
                let end = self.ended_at(&task.id);
                if end.is_none_or(|end| self.changed_at(path) <= end) {
                    return true;
                }
            } else if task.attempts > 0 && !self.dir.baseline().join(path).exists() {
                // It ran, and no version of its was kept (each exit keeps one).
                return true;
            }
        }
        if self.is_expected_content(path) {
            return true;
        }
        // Known already and not resolved: one record is enough (a revert left unfinished
        // was tried again first, see `finish_reverts`).
        self.state
            .violations
            .iter()
            .any(|v| v.path == path && v.is_open() && v.worktree.is_none())
    }

    /// Reverts journaled but not done (the engine died in between), or that failed: done
    /// again, under the same number. One whose file is as it should be by now is settled.
    fn finish_reverts(&mut self) -> anyhow::Result<()> {
        let unfinished: Vec<(u32, String, Option<String>, String)> = self
            .state
            .violations
            .iter()
            // A task's own worktree's are that worktree's (see isolation.rs).
            .filter(|v| v.worktree.is_none())
            .filter(|v| {
                v.action == "reverting"
                    || v.action.starts_with("reverting; ")
                    || v.action.starts_with("revert failed")
                    || v.action.starts_with("not reverted")
            })
            .map(|v| (v.n, v.path.clone(), v.saved.clone(), v.action.clone()))
            .collect();
        for (n, path, saved, was) in unfinished {
            let kept = self.dir.violation_dir(n).join(&path);
            if self.is_expected_content(&path) {
                let saved = saved.filter(|_| std::fs::symlink_metadata(&kept).is_ok());
                let action = if self.work.root.join(&path).exists() {
                    "reverted"
                } else {
                    "deleted"
                };
                // What a revert cannot undo (a file reached outside the project, `.git/`)
                // is still said: such a violation stays unresolved.
                let note = was
                    .strip_prefix("reverting")
                    .filter(|rest| rest.starts_with("; "))
                    .unwrap_or("");
                self.record(crate::state::Event::ViolationSettled {
                    n,
                    action: format!("{action}{note}"),
                    saved,
                })?;
            } else {
                self.save_and_revert(n, &path)?;
            }
        }
        Ok(())
    }

    /// When the agent of a task the journal says is running ended, by the exit record of
    /// its current attempt (one written while no engine watched).
    fn ended_at(&self, id: &crate::plan::TaskId) -> Option<u64> {
        let task = self.state.tasks.get(id)?;
        if task.state != TaskStatus::Running || task.ended_at_ms.is_some() {
            return None;
        }
        let exit = self.dir.task_attempt(id, task.attempts).join("exit.json");
        crate::agent_process::run::ExitRecord::read(&exit)
            .ok()
            .map(|e| e.ended_at_ms)
    }

    /// When `path` was changed, as far as the file system says: its modification time, or
    /// for a file gone, its directory's (or the nearest one's that is left). Now, if none.
    fn changed_at(&self, path: &str) -> u64 {
        let mut at = Some(std::path::Path::new(path));
        while let Some(rel) = at {
            if let Ok(meta) = std::fs::symlink_metadata(self.work.root.join(rel))
                && let Ok(time) = meta.modified()
                && let Ok(since) = time.duration_since(std::time::UNIX_EPOCH)
            {
                return since.as_millis() as u64;
            }
            at = rel.parent();
        }
        crate::state::now_ms()
    }
}
