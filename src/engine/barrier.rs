//! A task's checks wait for the writes made before its exit. The exit record comes through
//! the run directory's watcher and the agent's file changes through the project tree's: two
//! inotify queues, so an exit can be handled while the agent's last writes still wait in the
//! other queue. The TDD gate (which file was written first) and the ownership gate (a stray
//! write as the agent's last act) must see them: on exit, the engine creates a file in the
//! tree watcher's barrier directory and starts the checks when that barrier comes through,
//! behind everything the kernel queued before it (`TreeWatcher::with_barriers`).
//!
//! The planner's plan waits the same way: it is accepted once the specs the planner wrote
//! have been seen, while planning; a spec reported after the acceptance (a busy machine's
//! watcher can lag that much) looked like a write by nobody, a violation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::core::Engine;
use crate::plan::{Plan, TaskId};
use crate::state::Phase;

/// How long a barrier may take before the checks start without it. It normally passes in
/// well under a millisecond; it can only be lost with the whole queue (an overflow), or
/// with the watcher.
const PATIENCE: Duration = Duration::from_secs(2);

/// How a passed barrier's file is renamed, waiting to be the next one (the watcher never
/// reports a name starting with a dot as a barrier).
const SPARE: &str = ".spare-";

/// The barriers raised and not passed yet.
pub(super) struct Barriers {
    /// The tree watcher's barrier directory; `None` when it could not be made: the checks
    /// then start at once, as they did before barriers.
    dir: Option<PathBuf>,
    next: u64,
    waiting: BTreeMap<String, Waiting>,
    /// Files of barriers passed, renamed out of the way (`.spare-N`) to be renamed into the
    /// next ones: a rename costs no inode, and creating one is what costs on a busy disk.
    spares: Vec<String>,
}

struct Waiting {
    waiter: Waiter,
    since: Instant,
}

/// What waits for a barrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Waiter {
    /// The checks of a task's attempt.
    Checks(TaskId, u32),
    /// The accepting of the plan the planner gave (kept in `PlanningState`).
    Plan,
}

impl Barriers {
    /// Empties `dir` of an earlier engine's barriers: a name is only raised by creating it.
    pub(super) fn new(dir: Option<PathBuf>) -> Barriers {
        if let Some(dir) = &dir {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Barriers {
            dir,
            next: 0,
            waiting: BTreeMap::new(),
            spares: Vec::new(),
        }
    }

    /// Raises a barrier for `waiter`; false when none could be raised (then it goes on
    /// now).
    fn raise(&mut self, waiter: Waiter) -> bool {
        let waiting = Waiting {
            waiter,
            since: Instant::now(),
        };
        self.raise_for(waiting).is_ok()
    }

    fn raise_for(&mut self, waiting: Waiting) -> Result<(), Waiting> {
        let Some(dir) = &self.dir else {
            return Err(waiting);
        };
        self.next += 1;
        let name = self.next.to_string();
        // A spare renamed into place (the watcher reports it as it does a file created), or
        // a new file.
        let renamed = self
            .spares
            .pop()
            .is_some_and(|spare| std::fs::rename(dir.join(&spare), dir.join(&name)).is_ok());
        let raised = renamed
            || std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(&name))
                .is_ok();
        if !raised {
            return Err(waiting);
        }
        self.waiting.insert(name, waiting);
        Ok(())
    }

    /// Raises every waiting barrier again, under a new name: after an overflow, which lost
    /// them, and whose changes the watcher reports (walking the tree again) before it reads
    /// anything new. Returns those that could not be raised. Their patience runs on.
    fn raise_again(&mut self) -> Vec<Waiter> {
        let lost: Vec<String> = self.waiting.keys().cloned().collect();
        let mut failed = Vec::new();
        for name in lost {
            if let Some(dir) = &self.dir {
                let _ = std::fs::remove_file(dir.join(&name));
            }
            let Some(waiting) = self.waiting.remove(&name) else {
                continue;
            };
            if let Err(w) = self.raise_for(waiting) {
                failed.push(w.waiter);
            }
        }
        failed
    }

    /// What waits for barrier `name`, if anything still does.
    fn waiter(&self, name: &str) -> Option<&Waiter> {
        self.waiting.get(name).map(|w| &w.waiter)
    }

    fn pass(&mut self, name: &str) -> Option<Waiter> {
        let waiting = self.waiting.remove(name)?;
        if let Some(dir) = &self.dir {
            let spare = format!("{SPARE}{name}");
            if std::fs::rename(dir.join(name), dir.join(&spare)).is_ok() {
                self.spares.push(spare);
            } else {
                let _ = std::fs::remove_file(dir.join(name));
            }
        }
        Some(waiting.waiter)
    }

    /// The barriers raised before `before`.
    fn take_older(&mut self, before: Instant) -> Vec<Waiter> {
        let names: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.since < before)
            .map(|(name, _)| name.clone())
            .collect();
        names.iter().filter_map(|name| self.pass(name)).collect()
    }
}

impl Engine {
    /// The agent of `id` exited 0 with its files in place: its checks start once the
    /// changes it made before exiting have been seen.
    pub(super) fn check_when_seen(&mut self, id: &TaskId, attempt: u32) -> anyhow::Result<()> {
        if self.barriers.raise(Waiter::Checks(id.clone(), attempt)) {
            // Busy like a running check: the project is not quiet yet (see recheck_parked).
            self.checks.begun();
            return Ok(());
        }
        self.start_checks(id, attempt)
    }

    /// The planner gave a valid plan: it is accepted once the changes the planner made
    /// before exiting (its specs) have been seen, while still planning.
    pub(super) fn accept_when_seen(&mut self, plan: Plan) -> anyhow::Result<()> {
        if self.barriers.raise(Waiter::Plan) {
            self.planning_state.wait_with(plan);
            return Ok(());
        }
        self.accept_planned(plan)
    }

    /// The barrier `name` came through the run's tree's events. A task working in a
    /// worktree of its own, watched, waits for its own watcher's (see isolation.rs).
    pub(super) fn on_barrier(&mut self, name: &str) -> anyhow::Result<()> {
        if let Some(Waiter::Checks(id, _)) = self.barriers.waiter(name)
            && self.watches_task_tree(id)
        {
            return Ok(());
        }
        self.on_barrier_passed(name)
    }

    /// The barrier `name` came through task `task`'s own worktree's watcher: only its own
    /// checks' passes there.
    pub(super) fn on_task_barrier(&mut self, task: &TaskId, name: &str) -> anyhow::Result<()> {
        match self.barriers.waiter(name) {
            Some(Waiter::Checks(id, _)) if id == task => self.on_barrier_passed(name),
            _ => Ok(()),
        }
    }

    fn on_barrier_passed(&mut self, name: &str) -> anyhow::Result<()> {
        match self.barriers.pass(name) {
            Some(waiter) => self.after_barrier(waiter),
            None => Ok(()), // given up on already
        }
    }

    /// Starts the checks whose barrier is overdue: waiting longer would not help.
    pub(super) fn give_up_on_barriers(&mut self) -> anyhow::Result<()> {
        // None only in the first seconds after the machine booted: nothing is overdue yet.
        let Some(before) = Instant::now().checked_sub(PATIENCE) else {
            return Ok(());
        };
        for waiter in self.barriers.take_older(before) {
            self.after_barrier(waiter)?;
        }
        Ok(())
    }

    /// The tree's queue overflowed: its barriers were lost with the rest.
    pub(super) fn raise_barriers_again(&mut self) -> anyhow::Result<()> {
        for waiter in self.barriers.raise_again() {
            self.after_barrier(waiter)?;
        }
        Ok(())
    }

    fn after_barrier(&mut self, waiter: Waiter) -> anyhow::Result<()> {
        match waiter {
            Waiter::Checks(id, attempt) => self.checks_after_barrier(id, attempt),
            Waiter::Plan => match self.planning_state.take_waiting() {
                // Only if nothing ended the planning meanwhile (a stop, say): then the
                // planner's exit record is handled again by the engine `orch resume` starts.
                Some(plan) if self.state.phase == Phase::Planning && !self.detached => {
                    self.accept_planned(plan)
                }
                _ => Ok(()),
            },
        }
    }

    fn checks_after_barrier(&mut self, id: TaskId, attempt: u32) -> anyhow::Result<()> {
        self.checks.ended();
        // Only if nothing settled the attempt meanwhile (a stop, say).
        let current =
            self.state.tasks.get(&id).is_some_and(|t| {
                t.state == crate::state::TaskStatus::Running && t.attempts == attempt
            }) && !self.agents.has_task(&id);
        if current && !self.detached {
            return self.start_checks(&id, attempt);
        }
        Ok(())
    }
}
