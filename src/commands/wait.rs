//! `orch wait [--timeout SECS]`: block until the run ends. Exit 0 when it succeeded, 1 when
//! it failed or stopped, 124 when the timeout ran out.

use std::time::{Duration, Instant};

use super::follow::Follower;
use super::{Global, runs};
use crate::error::{EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT};
use crate::state::{Outcome, Phase};

pub fn run(global: &Global, run: Option<&str>, timeout: Option<Duration>) -> anyhow::Result<u8> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let first = runs::load(global, run)?;
    let run_id = first.info.run_id.clone();
    let mut follower = Follower::new(&[first.dir.path()])?;
    loop {
        let loaded = runs::load(global, Some(&run_id))?;
        if let Phase::Finished(outcome) = loaded.state.phase {
            if loaded.engine_alive && deadline.is_none_or(|d| Instant::now() < d) {
                // The engine writes the report after the last journal entry: give it the
                // moment it needs, so that what follows `orch wait` finds everything.
                follower.wait(Duration::from_millis(200), deadline);
                continue;
            }
            let reason = loaded.state.finish_reason.clone().unwrap_or_default();
            println!("run {run_id}: {} {reason}", outcome.name());
            if matches!(outcome, Outcome::Interrupted | Outcome::Stopped) {
                println!("`orch resume` continues it");
            }
            return Ok(if outcome == Outcome::Succeeded {
                EXIT_OK
            } else {
                EXIT_FAILED
            });
        }
        if !loaded.engine_alive && loaded.state.engine_pid.is_some() {
            // Give a just-finished engine's last journal line a moment to be read.
            let again = runs::load(global, Some(&run_id))?;
            if !again.state.is_finished() && !again.engine_alive {
                eprintln!(
                    "error: run {run_id}'s engine is gone before the run ended: `orch status` \
                     shows where it stopped, `orch resume` continues it, `orch down` cleans up"
                );
                return Ok(EXIT_FAILED);
            }
            continue;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            eprintln!(
                "run {run_id} is still {} after the timeout",
                loaded.state.phase.name()
            );
            return Ok(EXIT_TIMEOUT);
        }
        follower.wait(Duration::from_secs(1), deadline);
    }
}
