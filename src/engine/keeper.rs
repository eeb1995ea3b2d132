//! The run's record outlives its project tree. Agents work in the project, and `.orch/` is
//! in it: an agent deleting or moving it (`rm -rf .orch`, `git clean -fdx`) must not lose
//! the run. The engine keeps the journal open and the run's small files in memory; when the
//! journal is no longer at its place (checked every tick), it writes back the journal (every
//! record: the open file still has them), the run's files, `current`, its locks, the
//! directories its agents write their exit records to, and the snapshot's store. `status`,
//! `wait`, `down` and `resume` then find the run where they look for it.
//!
//! What only the disk held is lost with it: saved violating contents, `baseline/` (finished
//! tasks' files are then no longer checked against their version), logs of agents that
//! ended. Agents still running keep writing their logs to the files they have open.

use std::path::PathBuf;

use super::core::Engine;
use crate::state::RunDir;
use crate::state::WarningKind::{Agents, Unrecorded};

impl Engine {
    /// Keeps the run's small files (once the snapshot exists), to write them back if needed.
    pub(super) fn keep_run_files(&mut self) {
        let store = self.dir.snapshot();
        let files: Vec<PathBuf> = vec![
            self.dir.run_json(),
            self.dir.config(),
            self.dir.request(),
            self.dir.plan(),
            store.join("kind"),
            store.join("exclude-at-start"),
        ];
        self.kept = files
            .into_iter()
            .filter_map(|path| Some((std::fs::read(&path).ok()?, path)))
            .map(|(bytes, path)| (path, bytes))
            .collect();
    }

    /// Writes the run's record back if `.orch/` or the run directory was deleted or moved.
    pub(super) fn keep_record(&mut self) -> anyhow::Result<()> {
        if self.journal.in_place() {
            return Ok(());
        }
        self.journal.restore()?;
        for (path, bytes) in &self.kept {
            if !path.exists() {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(path, bytes)?;
            }
        }
        let state_dir = self.project.state_dir();
        if !state_dir.join("current").exists() {
            RunDir::set_current(&state_dir, &self.info.run_id)?;
        }
        // A new `orch up` or `orch resume` must find the run (and, in place, the checkout)
        // taken.
        self._lock.restore(&state_dir, &self.dir)?;
        let mut dirs: Vec<PathBuf> = self.agents.iter().map(|a| a.dir.clone()).collect();
        dirs.push(self.dir.signals());
        for dir in dirs {
            std::fs::create_dir_all(&dir)?;
            // The old watch ended with the old directory.
            if let Err(e) = self.watch_dir(&dir) {
                let cost = super::event_loop::found_by_the_listing();
                let cost = format!("an agent's end there is {cost}");
                let dir = dir.display();
                self.warn(Agents, format!("cannot watch {dir} again ({e}): {cost}"));
            }
        }
        let _ = std::fs::create_dir_all(self.dir.barriers());
        // Warned once the journal is back in place, so the warning's own `record` finds it
        // there and does not come back here (see warnings.rs).
        let message = format!(
            "the run directory was deleted or moved (by an agent?): the journal and the run's \
             files are restored at {}; saved violations and finished tasks' copies kept there \
             are lost",
            self.project.display(self.dir.path())
        );
        self.warn(Unrecorded, message);
        Ok(())
    }
}
