//! Work the engine leaves itself for a later turn of the loop (see event_loop.rs): launches
//! waiting to be made one at a time, and ended attempts whose leftovers are still to be looked
//! for once their exit is journaled.

use std::path::{Path, PathBuf};

use crate::plan::TaskId;

#[derive(Debug, Default)]
pub(super) struct Sched {
    /// Tasks or the judge wait to be launched (`Input::LaunchStep`).
    launch_wanted: bool,
    /// Attempts whose agent ended, with their task, and whose leftovers are still to be
    /// looked for (`Input::LeftoversDue`).
    leftovers_due: Vec<(PathBuf, Option<TaskId>)>,
}

impl Sched {
    /// Asks for a launch step.
    pub(super) fn want_launch(&mut self) {
        self.launch_wanted = true;
    }

    pub(super) fn launch_wanted(&self) -> bool {
        self.launch_wanted
    }

    /// Takes the request for a launch step, which asks again while more may wait.
    pub(super) fn take_launch(&mut self) -> bool {
        std::mem::take(&mut self.launch_wanted)
    }

    /// The attempt in `dir` ended: its leftovers are to be looked for.
    pub(super) fn leftovers_of(&mut self, dir: &Path, task: Option<TaskId>) {
        self.leftovers_due.push((dir.to_path_buf(), task));
    }

    pub(super) fn leftovers_due(&self) -> bool {
        !self.leftovers_due.is_empty()
    }

    pub(super) fn take_leftovers(&mut self) -> Vec<(PathBuf, Option<TaskId>)> {
        std::mem::take(&mut self.leftovers_due)
    }
}
