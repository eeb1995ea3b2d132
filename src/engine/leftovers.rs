//! What an agent leaves running when it exits (see [`crate::agent_process::leftovers`]): journaled at once,
//! then stopped off the loop (`limits.leftovers: stop`, the default) or left running (`keep`),
//! listed in `orch status` and the report. Either way what they write is blamed on their task
//! for as long as they may be running ([`Engine::leftovers_active`], used by the ownership
//! watcher's `active_at`).

use std::path::Path;
use std::time::Duration;

use super::core::Engine;
use crate::config::LeftoverPolicy;
use crate::plan::TaskId;
use crate::state::Event;

/// How long a leftover gets between TERM and KILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long after being found stopped leftovers may still write: a grace, and some slack.
const STOPPING_MS: u64 = STOP_GRACE.as_millis() as u64 + 2_000;

impl Engine {
    /// The agent of the attempt in `dir` has ended (or is being stopped, with its process
    /// group `agent_group`, whose members are not leftovers): journals what else of it still
    /// runs, and stops it or keeps it.
    pub(super) fn on_leftovers(
        &mut self,
        dir: &Path,
        task: Option<TaskId>,
        agent_group: Option<u32>,
    ) -> anyhow::Result<()> {
        // A sandboxed agent's processes ended with its box (its own pid namespace): nothing
        // to look for, and the box said what it ended. That saves a walk of /proc, on the
        // loop, between an exit and its journal line.
        let boxed = crate::agent_process::launcher::LaunchSpec::read(
            &dir.join(crate::agent_process::launcher::SPEC_FILE),
        )
        .is_ok_and(|spec| spec.sandbox.is_some());
        if boxed && agent_group.is_none() {
            return self.on_left_in_box(dir, task);
        }
        let run_dir = self.dir.path().to_path_buf();
        let found: Vec<_> = crate::agent_process::leftovers::find(&run_dir, dir)
            .into_iter()
            // SAFETY: getpgid(2) only reads another process's group id.
            .filter(|l| agent_group.is_none_or(|g| unsafe { libc::getpgid(l.pid) } != g as i32))
            .collect();
        if found.is_empty() {
            return self.on_left_in_box(dir, task);
        }
        let kept = self.config.limits.leftovers == LeftoverPolicy::Keep;
        let attempt_dir = dir
            .strip_prefix(&run_dir)
            .unwrap_or(dir)
            .display()
            .to_string();
        let count = found.len();
        self.record(Event::Leftovers {
            task,
            attempt_dir,
            kept,
            in_box: false,
            count,
            processes: found
                .into_iter()
                .take(crate::agent_process::leftovers::LISTED_MAX)
                .collect(),
        })?;
        if !kept {
            let dir = dir.to_path_buf();
            self.stopping.retain(|h| !h.is_finished());
            self.stopping.push(std::thread::spawn(move || {
                crate::agent_process::leftovers::stop(&run_dir, &dir, STOP_GRACE)
            }));
        }
        Ok(())
    }

    /// What the agent left in its sandbox, which ended with it: journaled, once.
    fn on_left_in_box(&mut self, dir: &Path, task: Option<TaskId>) -> anyhow::Result<()> {
        let left = crate::agent_process::leftovers::left_in_box(dir);
        let _ = std::fs::remove_file(crate::agent_process::leftovers::box_file(dir));
        if left.is_empty() {
            return Ok(());
        }
        let attempt_dir = dir
            .strip_prefix(self.dir.path())
            .unwrap_or(dir)
            .display()
            .to_string();
        self.record(Event::Leftovers {
            task,
            attempt_dir,
            kept: false,
            in_box: true,
            count: left.len(),
            processes: left
                .into_iter()
                .take(crate::agent_process::leftovers::LISTED_MAX)
                .collect(),
        })?;
        Ok(())
    }

    /// Waits for the leftovers being stopped: once the loop is over, nothing else waits.
    pub(super) fn finish_stopping(&mut self) {
        for handle in self.stopping.drain(..) {
            let _ = handle.join();
        }
    }

    /// Whether something task `id` left behind may have written at `at`: a kept leftover that
    /// still runs, or any leftover up to the time stopping it takes.
    pub(super) fn leftovers_active(&self, id: &TaskId, at: u64) -> bool {
        self.state
            .leftovers
            .iter()
            .filter(|l| l.task.as_ref() == Some(id))
            .any(|l| {
                at <= l.at_ms + STOPPING_MS
                    || (l.kept
                        && l.processes
                            .iter()
                            .any(|p| crate::agent_process::leftovers::alive(p.pid)))
            })
    }
}
