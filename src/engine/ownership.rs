//! Ownership, watched live: every change in the project is attributed. A change to a file
//! owned by a running task is that task's work; any other change is a violation, recorded with
//! its suspects and handled by the configured policy. A final sweep against the start
//! snapshot catches what the watcher missed.

use std::collections::BTreeSet;
use std::time::Instant;

use super::core::{ChangeSeen, Engine};
use crate::config::ViolationPolicy;
use crate::plan::TaskId;
use crate::state::{Event, Phase, TaskStatus};
use crate::watch::{ChangeKind, FsChange, SnapshotChange};

impl Engine {
    pub(super) fn on_fs(&mut self, change: FsChange) -> anyhow::Result<()> {
        let at = change
            .at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_else(|_| super::ui::now_ms());
        match change.kind {
            ChangeKind::Rescan => {
                self.sweep()?;
                self.raise_barriers_again() // see barrier.rs
            }
            ChangeKind::Barrier => self.on_barrier(&change.path),
            ChangeKind::GitMeta => self.check_git_meta(),
            ChangeKind::Renamed { ref from } => {
                let from = from.clone();
                self.attribute(&from, "removed", at)?;
                self.attribute(&change.path, "created", at)
            }
            ChangeKind::Created => self.attribute(&change.path, "created", at),
            ChangeKind::Modified => self.attribute(&change.path, "modified", at),
            ChangeKind::Removed => self.attribute(&change.path, "removed", at),
            ChangeKind::WatchFailed { reason } => {
                // Part of the tree is no longer watched: the final sweep still compares it.
                eprintln!("warning: {reason}");
                Ok(())
            }
        }
    }

    /// `at` is when the change happened: the events of the project tree and those of the run
    /// directory come through different channels, so a task's exit may be handled before its
    /// last write is. Who could have made a change is judged at the time it was made.
    fn attribute(&mut self, path: &str, change: &'static str, at: u64) -> anyhow::Result<()> {
        match self.state.phase {
            Phase::Planning => {
                // The planner writes the specs; which files those are is only known once its
                // plan is accepted.
                self.planning_writes
                    .insert(path.to_string(), ChangeSeen { change });
                if let Some(planner) = &mut self.planner {
                    planner.last_activity = Instant::now();
                }
                Ok(())
            }
            // The planner's write, whose event came after its plan was accepted (the tree's
            // events and the run's come through different channels).
            Phase::Running if self.state.plan_accepted_at_ms.is_some_and(|t| at <= t) => {
                let planner = [TaskId::new("planner")];
                let seen = self
                    .state
                    .violations
                    .iter()
                    .any(|v| v.path == path && v.suspects == planner);
                if seen {
                    return Ok(());
                }
                self.planning_writes
                    .insert(path.to_string(), ChangeSeen { change });
                self.check_planning_writes()
            }
            Phase::Running => {
                let active = self.active_at(at);
                if let Some(owner) = active
                    .iter()
                    .find(|id| self.state.tasks[*id].files.iter().any(|f| f == path))
                {
                    // Its own file, made a way out of the project: whatever is written
                    // through it lands elsewhere.
                    if let Some(out) = crate::paths::link_out(&self.project.root, path) {
                        let owner = owner.clone();
                        let change = format!("made into {out}:");
                        let grave = Some(outside_note(&out));
                        return self.violation(path, &change, vec![owner], grave);
                    }
                    if !self.state.first_writes.contains_key(path) {
                        self.record_unsynced(Event::FirstWrite {
                            task: owner.clone(),
                            path: path.to_string(),
                            at_ms: at,
                        })?;
                    }
                    if let Some(live) = self.live.get_mut(owner) {
                        live.last_activity = Instant::now();
                    }
                    return Ok(());
                }
                if self.is_expected_content(path) {
                    return Ok(()); // our own revert, or a write that changed nothing
                }
                match crate::paths::link_out(&self.project.root, path) {
                    Some(out) => {
                        let change = format!("made into {out}:");
                        let grave = Some(outside_note(&out));
                        self.violation(path, &change, active, grave)
                    }
                    None => self.violation(path, change, active, None),
                }
            }
            _ => Ok(()),
        }
    }

    /// Compares the guarded parts of `.git/` with the start: each change not reported yet is
    /// a violation of whoever was running when it was made (its ctime, which no agent can set
    /// back), and fails the run even when reverted.
    pub(super) fn check_git_meta(&mut self) -> anyhow::Result<()> {
        let Some(guard) = self.git_guard.as_mut() else {
            return Ok(());
        };
        for change in guard.changes() {
            let at = change
                .at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_else(|_| super::ui::now_ms());
            let suspects = match self.state.phase {
                Phase::Planning => vec![TaskId::new("planner")],
                _ => self.active_at(at),
            };
            let grave = (!suspects.is_empty()).then(|| {
                ".git/ is not the agents' to change: a hook, config, attribute or ref \
                 planted there runs or acts at the user's next git command"
                    .to_string()
            });
            self.violation(&change.shown, change.change, suspects, grave)?;
        }
        Ok(())
    }

    /// The tasks whose agent was running at `at`: started before it, and still running or
    /// ended after it.
    fn active_at(&self, at: u64) -> Vec<TaskId> {
        self.state
            .tasks_in_order()
            .filter(|t| t.started_at_ms.is_some_and(|s| s <= at))
            .filter(|t| t.state == TaskStatus::Running || t.ended_at_ms.is_some_and(|e| e >= at))
            .map(|t| t.id.clone())
            .collect()
    }

    /// Whether the file is as it should be: as a finished task left it, or as it was at the
    /// start of the run. Such a change is not a violation (it is, for one, our own revert).
    fn is_expected_content(&self, path: &str) -> bool {
        if crate::paths::link_out(&self.project.root, path).is_some() {
            return false;
        }
        let current = match std::fs::symlink_metadata(self.project.root.join(path)) {
            Err(_) => None,
            Ok(_) => match crate::paths::read_inside(&self.project.root, path) {
                Ok(content) => Some(content),
                // There, but not a file to compare (a FIFO, a socket): unexpected.
                Err(_) => return false,
            },
        };
        let baseline = self.dir.baseline();
        if std::fs::symlink_metadata(baseline.join(path)).is_ok() {
            return crate::paths::read_inside(&baseline, path).ok() == current;
        }
        match self.snapshot.as_ref().map(|s| s.original(path)) {
            Some(Ok(original)) => original.map(|(bytes, _)| bytes) == current,
            _ => false,
        }
    }

    /// `grave`: why this violation cannot be undone by a revert (a file outside the project
    /// was reached), said after the action; such a violation stays unresolved, so it fails
    /// its task and the run whatever the policy.
    pub(super) fn violation(
        &mut self,
        path: &str,
        change: &str,
        suspects: Vec<TaskId>,
        grave: Option<String>,
    ) -> anyhow::Result<()> {
        let n = self.state.violations.len() as u32 + 1;
        let now = super::ui::now_ms();
        let policy = self.config.ownership.on_violation;
        // With nobody running, the change came from outside orch (the user): record only.
        let policy = if suspects.is_empty() {
            ViolationPolicy::Warn
        } else {
            policy
        };
        // One write can arrive as several events (created, then modified): the same file
        // changed by the same suspects moments apart is one violation. A revert needs no such care: after
        // it, the content is as expected and no event gets this far.
        if policy != ViolationPolicy::Revert
            && self
                .state
                .violations
                .iter()
                .any(|v| v.path == path && v.suspects == suspects && v.at_ms + 2_000 >= now)
        {
            return Ok(());
        }
        let mut saved = None;
        let action = match policy {
            ViolationPolicy::Warn => "recorded".to_string(),
            ViolationPolicy::Revert => {
                // Save first: nothing is lost, even if the restore fails.
                let dest = self.dir.violation_dir(n);
                let temp = self.dir.path().to_path_buf();
                let root = self.project.root.clone();
                let guard = self.git_guard.as_mut().filter(|g| g.guards(path));
                let copied = match &guard {
                    Some(guard) => guard.save(path, &dest),
                    None => crate::watch::save_copy(&root, path, &dest),
                };
                match copied {
                    // Nothing is reverted that could not be saved first.
                    Err(e) => format!("not reverted: it could not be saved first ({e:#})"),
                    Ok(copy) => {
                        saved = copy.map(|p| self.project.display(&p).to_string());
                        match guard {
                            Some(guard) => match guard.restore(path, &temp) {
                                Ok(crate::watch::Restored::Deleted) => "deleted".into(),
                                Ok(_) => "reverted".into(),
                                Err(e) => format!("revert failed: {e}"),
                            },
                            None => self.revert(path),
                        }
                    }
                }
            }
            ViolationPolicy::Stop => {
                let names: Vec<String> = suspects
                    .iter()
                    .filter(|id| self.live.contains_key(*id))
                    .map(ToString::to_string)
                    .collect();
                if names.is_empty() {
                    "recorded (the suspects had already ended)".to_string()
                } else {
                    format!("stopped {}", names.join(", "))
                }
            }
        };
        let action = match grave {
            Some(why) => format!("{action}; {why}"),
            None => action,
        };
        self.record(Event::Violation {
            n,
            path: path.to_string(),
            change: change.to_string(),
            suspects: suspects.clone(),
            action,
            saved,
        })?;
        if policy == ViolationPolicy::Stop {
            // Only an agent still running can be stopped; one that already ended keeps its
            // outcome, with the violation on record.
            let running: Vec<TaskId> = suspects
                .into_iter()
                .filter(|id| self.live.contains_key(id))
                .collect();
            for id in running {
                self.fail_task(
                    &id,
                    format!("stopped: changed {path}, which it does not own"),
                )?;
            }
        }
        Ok(())
    }

    /// Puts a file back as a finished task left it, else as it was when the run started
    /// (deleting it if it did not exist then).
    fn revert(&self, path: &str) -> String {
        let baseline = self.dir.baseline();
        if std::fs::symlink_metadata(baseline.join(path)).is_ok() {
            // Never written through: a link the agent put there is replaced, not followed.
            return match crate::watch::restore_copy(
                &self.project.root,
                path,
                &baseline,
                self.dir.path(),
            ) {
                Ok(_) => "reverted".into(),
                Err(e) => format!("revert failed: {e}"),
            };
        }
        let Some(snapshot) = &self.snapshot else {
            return "revert failed: no snapshot".into();
        };
        match snapshot.restore(path) {
            Ok(crate::watch::Restored::Deleted) => "deleted".into(),
            Ok(_) => "reverted".into(),
            Err(e) => format!("revert failed: {e}"),
        }
    }

    /// Once the plan is known: files the planner wrote that are not spec files were
    /// violations.
    pub(super) fn check_planning_writes(&mut self) -> anyhow::Result<()> {
        let specs: BTreeSet<String> = self
            .plan
            .as_ref()
            .map(|p| p.spec_files().into_iter().collect())
            .unwrap_or_default();
        let writes = std::mem::take(&mut self.planning_writes);
        for (path, seen) in writes {
            if !specs.contains(&path) {
                let n = self.state.violations.len() as u32 + 1;
                self.record(Event::Violation {
                    n,
                    path,
                    change: seen.change.to_string(),
                    suspects: vec![TaskId::new("planner")],
                    action: "recorded".into(),
                    saved: None,
                })?;
            }
        }
        Ok(())
    }

    /// Compares the tree with the start snapshot: every change that no task owns, that is no
    /// spec, and that was not recorded yet, is recorded now.
    pub(super) fn sweep(&mut self) -> anyhow::Result<()> {
        self.check_git_meta()?;
        let Some(snapshot) = &self.snapshot else {
            return Ok(());
        };
        let changed = match snapshot.changed_since() {
            Ok(changed) => changed,
            Err(e) => {
                eprintln!("warning: the final sweep could not compare the tree: {e}");
                return Ok(());
            }
        };
        let owned: BTreeSet<&str> = self
            .state
            .tasks
            .values()
            .flat_map(|t| t.files.iter().map(String::as_str))
            .collect();
        let specs: BTreeSet<String> = self
            .plan
            .as_ref()
            .map(|p| p.spec_files().into_iter().collect())
            .unwrap_or_default();
        let recorded: BTreeSet<String> = self
            .state
            .violations
            .iter()
            .map(|v| v.path.clone())
            .collect();
        let found: Vec<(String, String)> = changed
            .into_iter()
            .filter(|(path, _)| {
                !owned.contains(path.as_str())
                    && !specs.contains(path)
                    && !recorded.contains(path)
                    && !self.ignore.is_ignored(path, false)
            })
            .map(|(path, kind)| {
                let change = match kind {
                    SnapshotChange::Added => "created",
                    SnapshotChange::Modified => "modified",
                    SnapshotChange::Deleted => "removed",
                };
                (path, change.to_string())
            })
            .collect();
        // Owned files that lead out of the project, whoever made them so: what was written
        // through them changed a file elsewhere, which no snapshot shows.
        let linked: Vec<(String, crate::paths::LinkOut)> = owned
            .iter()
            .filter(|path| !recorded.contains(**path))
            .filter_map(|path| {
                crate::paths::link_out(&self.project.root, path).map(|out| (path.to_string(), out))
            })
            .collect();
        for (path, out) in linked {
            let owner: Vec<TaskId> = self
                .state
                .tasks
                .values()
                .filter(|t| t.files.contains(&path))
                .map(|t| t.id.clone())
                .collect();
            let n = self.state.violations.len() as u32 + 1;
            self.record(Event::Violation {
                n,
                path,
                change: format!("made into {out}:"),
                suspects: owner,
                action: format!("found-by-sweep; {}", outside_note(&out)),
                saved: None,
            })?;
        }
        for (path, change) in found {
            let n = self.state.violations.len() as u32 + 1;
            self.record(Event::Violation {
                n,
                path,
                change,
                suspects: vec![],
                action: "found-by-sweep".into(),
                saved: None,
            })?;
        }
        Ok(())
    }
}

/// What a link out of the project left behind, for the report: the outside file is named and
/// left as the agent left it.
fn outside_note(out: &crate::paths::LinkOut) -> String {
    match out {
        crate::paths::LinkOut::Symlink { target, .. } => format!(
            "{} is outside the project: orch leaves it as the agent left it, check it",
            target.display()
        ),
        crate::paths::LinkOut::HardLink { .. } => "the file's other names may be outside the \
             project: orch leaves them as the agent left them, check them"
            .to_string(),
    }
}
