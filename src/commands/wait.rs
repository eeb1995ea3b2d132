//! `orch wait [--timeout DURATION]`: block until the run ends. Exit 0 when it succeeded, 1 when
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
            println!(
                "run {run_id}: {}",
                outcome_line(outcome.name(), loaded.state.finish_reason.as_deref())
            );
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

/// `succeeded`, `failed: task(s) not done: 3`, `stopped by `orch down``: the outcome, then
/// the reason, without saying the outcome twice nor leaving a trailing space.
fn outcome_line(outcome: &str, reason: Option<&str>) -> String {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        None => outcome.to_string(),
        Some(reason) if reason.starts_with(outcome) => reason.to_string(),
        Some(reason) => format!("{outcome}: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::outcome_line;

    #[test]
    fn the_outcome_line_says_each_thing_once() {
        assert_eq!(outcome_line("succeeded", None), "succeeded");
        assert_eq!(outcome_line("succeeded", Some("")), "succeeded");
        assert_eq!(
            outcome_line("stopped", Some("stopped by `orch down`")),
            "stopped by `orch down`"
        );
        assert_eq!(
            outcome_line("failed", Some("task(s) not done: 3")),
            "failed: task(s) not done: 3"
        );
    }
}
