//! Ownership, watched live: every change in the project is attributed. A change to a file
//! owned by a running task is that task's work; any other change is a violation, recorded with
//! its suspects and handled by the configured policy. Sweeps (`sweep.rs`) catch what the
//! watcher missed; reverts are in `revert.rs`.

use std::collections::BTreeSet;

use super::core::Engine;
use crate::config::ViolationPolicy;
use crate::paths::ProjectPath;
use crate::plan::TaskId;
use crate::state::{Event, Phase, TaskStatus, WarningKind};
use crate::watch::{ChangeKind, FsChange};

impl Engine {
    pub(super) fn on_fs(&mut self, change: FsChange) -> anyhow::Result<()> {
        let at = change
            .at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or_else(|_| crate::state::now_ms(), |d| d.as_millis() as u64);
        match change.kind {
            ChangeKind::Rescan => {
                self.sweep()?;
                self.raise_barriers_again() // see barrier.rs
            }
            ChangeKind::Barrier => self.on_barrier(&change.path),
            ChangeKind::GitMeta => self.check_git_meta(false),
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
                let cost = "changes there are found by sweeps only (on an overflow, a resume, \
                            and before the run's gates)";
                self.warn(WarningKind::Unpoliced, format!("{reason}; {cost}"));
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
                self.planning_state.note_write(path, change);
                self.agents.touch_task(None);
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
                self.planning_state.note_write(path, change);
                self.check_planning_writes()
            }
            // Under `isolation: task` the commits' thread is bringing the run's worktree up to
            // this file's task's commit (see committer.rs): a write it has not finished could
            // be seen half done. The file is looked at once the commit is in (see
            // `look_after_sync`).
            Phase::Running if self.isolated() && self.owner_committing(path) => Ok(()),
            Phase::Running => {
                let active = self.writers_at(path, at);
                // Under `isolation: task` no task works here: even its owner's write is not
                // its work (see isolation.rs).
                if let Some(owner) = active
                    .iter()
                    .filter(|_| !self.isolated())
                    .find(|id| self.state.tasks[*id].files.iter().any(|f| f == path))
                {
                    // Its own file, made a way out of the project: whatever is written
                    // through it lands elsewhere.
                    if let Some(out) = crate::paths::link_out(&self.work.root, path) {
                        let owner = owner.clone();
                        let change = format!("made into {out}:");
                        let grave = Some(outside_note(&out));
                        return self.violation(path, &change, vec![owner], grave, false);
                    }
                    // The plan's path, which this one equals (found above).
                    let owned = self.state.tasks[owner].files.iter().find(|f| *f == path);
                    if let Some(path) = owned.filter(|f| !self.state.first_writes.contains_key(*f))
                    {
                        let path = path.clone();
                        self.record_unsynced(Event::FirstWrite {
                            task: owner.clone(),
                            path,
                            at_ms: at,
                        })?;
                    }
                    let owner = owner.clone();
                    self.agents.touch_task(Some(&owner));
                    return Ok(());
                }
                if self.is_expected_content(path) {
                    return Ok(()); // our own revert, or a write that changed nothing
                }
                match crate::paths::link_out(&self.work.root, path) {
                    Some(out) => {
                        let change = format!("made into {out}:");
                        let grave = Some(outside_note(&out));
                        self.violation(path, &change, active, grave, false)
                    }
                    None => self.violation(path, change, active, None, false),
                }
            }
            _ => Ok(()),
        }
    }

    /// Compares the guarded parts of `.git/` with the start: each change not reported yet is
    /// a violation of whoever was running when it was made (its ctime, which no agent can set
    /// back), and fails the run even when reverted. All of them when `whole` (before checks,
    /// at the end), else those its watcher saw change.
    pub(super) fn check_git_meta(&mut self, whole: bool) -> anyhow::Result<()> {
        // A commit of the engine's made off the loop (see committer.rs) moves the run's own ref
        // before its result comes: the ref pointing at a commit the engine made is its doing,
        // taken into the guard's copy when the result comes. Anywhere else, it is reported.
        let Some(guard) = self.watching.git_guard_mut() else {
            return Ok(());
        };
        let look = if whole {
            guard.changes()
        } else {
            guard.changes_seen()
        };
        let own: Vec<bool> = look
            .changes
            .iter()
            .map(|c| guard.is_own_ref(&c.shown))
            .collect();
        // Read after the look: the ref as it is now, at least as new as what it saw.
        let ours = self.own_ref_is_ours();
        let changes: Vec<_> = look
            .changes
            .into_iter()
            .zip(own)
            .filter(|(_, own)| !(ours && *own))
            .map(|(change, _)| change)
            .collect();
        for warning in look.warnings {
            self.warn(WarningKind::Unpoliced, warning);
        }
        for change in changes {
            let at = change
                .at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or_else(|_| crate::state::now_ms(), |d| d.as_millis() as u64);
            let suspects = match self.state.phase {
                Phase::Planning => vec![TaskId::new("planner")],
                _ => self.active_at(at),
            };
            let grave = (!suspects.is_empty()).then(|| GIT_META_NOTE.to_string());
            self.violation(&change.shown, change.change, suspects, grave, false)?;
        }
        Ok(())
    }

    /// The tasks whose agent was running at `at`: started before it, and still running or
    /// ended after it.
    pub(super) fn active_at(&self, at: u64) -> Vec<TaskId> {
        self.state
            .tasks_in_order()
            .filter(|t| t.started_at_ms.is_some_and(|s| s <= at))
            .filter(|t| {
                t.state == TaskStatus::Running
                    || t.ended_at_ms.is_some_and(|e| e >= at)
                    // What its agent left running writes for it (see leftovers.rs).
                    || self.leftovers_active(&t.id, at)
            })
            .map(|t| t.id.clone())
            .collect()
    }

    /// Who could have made a change seen at `at`: the tasks running then, and those running
    /// when the file was last written (its mtime). Under a flood of events the watcher runs
    /// seconds behind, so a change can be seen after its writer ended; the mtime still names it.
    fn writers_at(&self, path: &str, at: u64) -> Vec<TaskId> {
        let mut writers = self.active_at(at);
        if let Some(written) = self.written_at(path).filter(|&w| w < at) {
            let earlier = self.active_at(written);
            // In plan order, as `active_at` gives them.
            writers = self
                .state
                .tasks_in_order()
                .map(|t| &t.id)
                .filter(|id| writers.contains(id) || earlier.contains(id))
                .cloned()
                .collect();
        }
        writers
    }

    /// Whether `path` is the file of a task whose commit is under way.
    fn owner_committing(&self, path: &str) -> bool {
        self.state
            .tasks
            .values()
            .any(|t| self.commits.is_pending(&t.id) && t.files.iter().any(|f| f == path))
    }

    /// Task `id`'s commit is in and the run's worktree brought up to it: its files there, whose
    /// changes were set aside meanwhile (see `attribute`), are as the branch has them, or a
    /// change of someone's.
    pub(super) fn look_after_sync(&mut self, id: &TaskId) -> anyhow::Result<()> {
        let files = self
            .state
            .tasks
            .get(id)
            .map(|t| t.files.clone())
            .unwrap_or_default();
        let now = crate::state::now_ms();
        for file in files {
            if !self.is_expected_content(&file) {
                let active = self.writers_at(&file, now);
                self.violation(&file, "modified", active, None, true)?;
            }
        }
        Ok(())
    }

    /// When the file was last written (its mtime, in ms), if it exists.
    fn written_at(&self, path: &str) -> Option<u64> {
        std::fs::symlink_metadata(self.work.root.join(path))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
    }

    /// Whether the file is as it should be: as a finished task left it, or as it was at the
    /// start of the run. Such a change is not a violation (it is, for one, our own revert).
    pub(super) fn is_expected_content(&self, path: &str) -> bool {
        if crate::paths::link_out(&self.work.root, path).is_some() {
            return false;
        }
        // Under `isolation: task`, the run's worktree as its branch has it: the engine's own
        // doing (see isolation.rs).
        if self.run_tree_at_tip(path) {
            return true;
        }
        let current = match std::fs::symlink_metadata(self.work.root.join(path)) {
            Err(_) => None,
            Ok(_) => match crate::paths::read_inside(&self.work.root, path) {
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

    /// Records a violation and handles it by the configured policy, whoever the suspects
    /// (nobody, for a change made while no agent ran: it still counts against the run). The
    /// journal comes first: under `revert` the violation is journaled `reverting` before its
    /// content is saved and the file touched, and how that went is journaled after.
    ///
    /// `grave`: why this violation cannot be undone by a revert (a file outside the project
    /// was reached, or `.git/` was changed), said after the action; such a violation stays
    /// unresolved, so it fails its task and the run whatever the policy. `swept`: found by a
    /// sweep rather than seen by the watcher.
    pub(super) fn violation(
        &mut self,
        path: &str,
        change: &str,
        suspects: Vec<TaskId>,
        grave: Option<String>,
        swept: bool,
    ) -> anyhow::Result<()> {
        let n = self.next_violation_number();
        let now = crate::state::now_ms();
        let policy = self.config.ownership.on_violation;
        // One write can arrive as several events (created, then modified): the same file
        // changed by the same suspects moments apart is one violation. A revert needs no such
        // care: after it, the content is as expected and no event gets this far.
        if policy != ViolationPolicy::Revert
            && self
                .state
                .violations
                .iter()
                .any(|v| v.path == path && v.suspects == suspects && v.at_ms + 2_000 >= now)
        {
            return Ok(());
        }
        // A file of a task that ran, of which no version was kept (or only an earlier
        // attempt's, while the journal says its agent still runs), cannot be put back as its
        // task left it, and the start's content would undo that task's work: recorded.
        // A link out of the project is no work of a task's to keep: it goes whatever was kept.
        let link_out = crate::paths::link_out(&self.work.root, path).is_some();
        let unknown_version = !link_out
            && self.state.tasks.values().any(|t| {
                t.attempts > 0
                    && t.files.iter().any(|f| f == path)
                    && (!self.dir.baseline().join(path).exists()
                        || (t.state == crate::state::TaskStatus::Running
                            && t.ended_at_ms.is_none()))
            });
        let policy = if policy == ViolationPolicy::Revert && unknown_version {
            ViolationPolicy::Warn
        } else {
            policy
        };
        let action = match policy {
            ViolationPolicy::Warn if unknown_version => {
                "recorded (not reverted: no version of its owner's was kept)".to_string()
            }
            ViolationPolicy::Warn if swept => "found-by-sweep".to_string(),
            ViolationPolicy::Warn => "recorded".to_string(),
            ViolationPolicy::Revert => "reverting".to_string(),
            ViolationPolicy::Stop => {
                let names: Vec<String> = suspects
                    .iter()
                    .filter(|id| self.agents.has_task(id))
                    .map(ToString::to_string)
                    .collect();
                if suspects.is_empty() {
                    "recorded (nobody to stop)".to_string()
                } else if names.is_empty() {
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
        let dest = self.dir.violation_dir(n);
        let exists =
            std::fs::symlink_metadata(self.work.root.join(path)).is_ok_and(|m| !m.is_dir());
        let saved = (policy == ViolationPolicy::Revert && exists)
            .then(|| self.project.display(&dest.join(path)).to_string());
        self.record(Event::Violation {
            n,
            path: path.to_string(),
            change: change.to_string(),
            suspects: suspects.clone(),
            action,
            saved,
            swept,
            worktree: None,
        })?;
        match policy {
            ViolationPolicy::Warn => Ok(()),
            ViolationPolicy::Revert => self.save_and_revert(n, path),
            ViolationPolicy::Stop => {
                // Only an agent still running can be stopped; one that already ended keeps
                // its outcome, with the violation on record.
                let running: Vec<TaskId> = suspects
                    .into_iter()
                    .filter(|id| self.agents.has_task(id))
                    .collect();
                for id in running {
                    self.fail_task(
                        &id,
                        format!("stopped: changed {path}, which it does not own"),
                    )?;
                }
                Ok(())
            }
        }
    }

    /// Saves the violating content of `path` (violation `n`) and reverts it, then journals
    /// how that went. Nothing is touched if the content cannot be saved first.
    pub(super) fn save_and_revert(&mut self, n: u32, path: &str) -> anyhow::Result<()> {
        let dest = self.dir.violation_dir(n);
        // A directory now where the file was holds files of its own, each judged on its own:
        // there is no content of this path to save.
        let is_dir = std::fs::symlink_metadata(self.work.root.join(path)).is_ok_and(|m| m.is_dir());
        let temp = self.dir.path().to_path_buf();
        let root = self.work.root.clone();
        // What a revert cannot undo, said again once it is done (see `violation`).
        let grave = match crate::paths::link_out(&root, path) {
            Some(out) => Some(outside_note(&out)),
            None => self
                .watching
                .git_guard()
                .filter(|g| g.guards(path))
                .map(|_| GIT_META_NOTE.to_string()),
        };
        // A guarded file of `.git/` is saved and put back from the guard's copy of the start.
        let guard = self.watching.git_guard_mut().filter(|g| g.guards(path));
        let copy = if is_dir {
            Ok(None)
        } else {
            match &guard {
                Some(guard) => guard.save(path, &dest),
                None => crate::snapshot::save_copy(&root, path, &dest),
            }
        };
        let (action, saved) = match copy {
            Ok(copy) => {
                let saved = copy.map(|p| self.project.display(&p).to_string());
                let action = match guard {
                    Some(guard) => match guard.restore(path, &temp) {
                        Ok(crate::snapshot::Restored::Deleted) => "deleted".into(),
                        Ok(_) => "reverted".into(),
                        Err(e) => format!("revert failed: {e}"),
                    },
                    None => self.revert(n, path),
                };
                (action, saved)
            }
            Err(e) => (
                format!(
                    "not reverted: its content could not be saved first ({e:#}); once that is \
                     fixed (a full disk: free space), the next sweep or `orch resume` tries again"
                ),
                None,
            ),
        };
        let action = match grave {
            Some(why) => format!("{action}; {why}"),
            None => action,
        };
        self.record(Event::ViolationSettled { n, action, saved })?;
        Ok(())
    }

    /// The next violation's number: after every number the journal knows and every
    /// `violations/<n>/` on disk, so that no number is ever used twice, even one whose
    /// journal line was lost.
    pub(super) fn next_violation_number(&self) -> u32 {
        let journaled = self.state.violations.iter().map(|v| v.n).max().unwrap_or(0);
        let on_disk = std::fs::read_dir(self.dir.violations())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        journaled.max(on_disk) + 1
    }

    /// Once the plan is known: files the planner wrote that are not spec files were
    /// violations.
    pub(super) fn check_planning_writes(&mut self) -> anyhow::Result<()> {
        let specs: BTreeSet<ProjectPath> = self
            .plan
            .as_ref()
            .map(|p| p.spec_files().into_iter().collect())
            .unwrap_or_default();
        let writes = self.planning_state.take_writes();
        for (path, seen) in writes {
            if !specs.contains(path.as_str()) {
                let n = self.next_violation_number();
                self.record(Event::Violation {
                    n,
                    path,
                    change: seen.to_string(),
                    suspects: vec![TaskId::new("planner")],
                    action: "recorded".into(),
                    saved: None,
                    swept: false,
                    worktree: None,
                })?;
            }
        }
        Ok(())
    }
}

/// Why a change in `.git/` stays a violation once reverted.
const GIT_META_NOTE: &str = ".git/ is not the agents' to change: a hook, config, attribute or \
                             ref planted there runs or acts at the user's next git command";

/// What a link out of the project left behind, for the report: the outside file is named and
/// left as the agent left it.
pub(super) fn outside_note(out: &crate::paths::LinkOut) -> String {
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
