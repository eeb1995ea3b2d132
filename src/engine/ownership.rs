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
        match change.kind {
            ChangeKind::Rescan => self.sweep(),
            ChangeKind::Renamed { ref from } => {
                let from = from.clone();
                self.attribute(&from, "removed")?;
                self.attribute(&change.path, "created")
            }
            ChangeKind::Created => self.attribute(&change.path, "created"),
            ChangeKind::Modified => self.attribute(&change.path, "modified"),
            ChangeKind::Removed => self.attribute(&change.path, "removed"),
            ChangeKind::WatchFailed { reason } => {
                // Part of the tree is no longer watched: the final sweep still compares it.
                eprintln!("warning: {reason}");
                Ok(())
            }
        }
    }

    fn attribute(&mut self, path: &str, change: &'static str) -> anyhow::Result<()> {
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
            Phase::Running => {
                if let Some(owner) = self.running_owner(path) {
                    let now = super::ui::now_ms();
                    self.first_writes.entry(path.to_string()).or_insert(now);
                    if let Some(live) = self.live.get_mut(&owner) {
                        live.last_activity = Instant::now();
                    }
                    return Ok(());
                }
                if self.is_expected_content(path) {
                    return Ok(()); // our own revert, or a write that changed nothing
                }
                let suspects: Vec<TaskId> = self.live.keys().cloned().collect();
                self.violation(path, change, suspects)
            }
            _ => Ok(()),
        }
    }

    /// The running task that owns `path`, if any.
    fn running_owner(&self, path: &str) -> Option<TaskId> {
        self.state
            .tasks
            .values()
            .find(|t| t.state == TaskStatus::Running && t.files.iter().any(|f| f == path))
            .map(|t| t.id.clone())
    }

    /// Whether the file is as it should be: as a finished task left it, or as it was at the
    /// start of the run. Such a change is not a violation (it is, for one, our own revert).
    fn is_expected_content(&self, path: &str) -> bool {
        let current = std::fs::read(self.project.root.join(path)).ok();
        let baseline = self.dir.baseline().join(path);
        if baseline.exists() {
            return std::fs::read(&baseline).ok() == current;
        }
        match self.snapshot.as_ref().map(|s| s.original(path)) {
            Some(Ok(original)) => original.map(|(bytes, _)| bytes) == current,
            _ => false,
        }
    }

    fn violation(&mut self, path: &str, change: &str, suspects: Vec<TaskId>) -> anyhow::Result<()> {
        let n = self.state.violations.len() as u32 + 1;
        let policy = self.config.ownership.on_violation;
        // With nobody running, the change came from outside orch (the user): record only.
        let policy = if suspects.is_empty() {
            ViolationPolicy::Warn
        } else {
            policy
        };
        let mut saved = None;
        let action = match policy {
            ViolationPolicy::Warn => "recorded".to_string(),
            ViolationPolicy::Revert => {
                // Save first: nothing is lost, even if the restore fails.
                let dest = self.dir.violation_dir(n);
                saved = crate::watch::save_copy(&self.project.root, path, &dest)?
                    .map(|p| self.project.display(&p).to_string());
                self.revert(path)
            }
            ViolationPolicy::Stop => {
                let names: Vec<String> = suspects.iter().map(ToString::to_string).collect();
                format!("stopped {}", names.join(", "))
            }
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
            for id in suspects {
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
        let target = self.project.root.join(path);
        let baseline = self.dir.baseline().join(path);
        if baseline.exists() {
            return match std::fs::copy(&baseline, &target) {
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
                !owned.contains(path.as_str()) && !specs.contains(path) && !recorded.contains(path)
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
