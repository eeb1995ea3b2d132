//! `orch wait [--timeout DURATION]`: block until the run ends. Exit 0 when it succeeded, 1 when
//! it failed or stopped, 3 when it cannot progress (its engine never started or is gone, or
//! its tmux session is gone: nothing would ever end it), 4 when it stopped at its budget
//! (nothing runs, and it waits for `orch budget +AMOUNT`), 5 when its plan waits for approval
//! (nothing runs until `orch approve`), 124 when the timeout ran out.

use std::time::{Duration, Instant};

use super::follow::Follower;
use super::runs::Loaded;
use super::{Global, runs};
use crate::error::{EXIT_APPROVAL, EXIT_BUDGET, EXIT_FAILED, EXIT_OK, EXIT_STALLED, EXIT_TIMEOUT};
use crate::state::{Outcome, Phase, UpLock};
use crate::tmux::Tmux as _;

/// How long after its creation a run may go without an engine before `orch wait` calls it
/// stalled: `orch up` gives its engine 15 s to start, so this is well past any engine that is
/// merely slow.
const START_GRACE: Duration = Duration::from_secs(30);
/// How long an engine that outlived its tmux session gets to end the run by itself.
const SESSION_GRACE: Duration = Duration::from_secs(10);

pub(crate) fn run(
    global: &Global,
    run: Option<&str>,
    timeout: Option<Duration>,
) -> anyhow::Result<u8> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let first = runs::load(global, run)?;
    let run_id = first.info.run_id.clone();
    let mut follower = Follower::new(&[first.dir.path()])?;
    let mut session_gone_since = None;
    loop {
        // Raises not read yet, looked for before the journal: one the engine takes meanwhile
        // is in the journal read next, so a run about to go on never looks held.
        let unread_raises = !crate::budget::read_requests(&first.dir).is_empty();
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
            if let Some(hint) = crate::engine::retry::hint(&loaded.state) {
                println!("{hint}");
            }
            if let Some(line) = warnings_line(&loaded.state.warnings) {
                println!("{line}");
            }
            return Ok(if outcome == Outcome::Succeeded {
                EXIT_OK
            } else {
                EXIT_FAILED
            });
        }
        if loaded.engine_alive
            && held_by_budget(&loaded.state)
            // A raise its engine has not read yet: it is about to go on.
            && !unread_raises
        {
            let config = crate::config::load(&loaded.dir.config())?;
            let view = crate::budget::View::of(&loaded.dir, &loaded.state, &config);
            println!("run {run_id}: stopped at its budget: {}", view.line());
            return Ok(EXIT_BUDGET);
        }
        if loaded.engine_alive
            && loaded.state.approval.waiting()
            // An approval its engine has not answered yet: it may be about to go on.
            && crate::approval::read_requests(&loaded.dir).is_empty()
        {
            println!(
                "run {run_id}: {}",
                crate::approval::how_to_go_on(&loaded.dir, &run_id)
            );
            return Ok(EXIT_APPROVAL);
        }
        if let Some(reason) = stalled(global, &loaded, &mut session_gone_since)? {
            eprintln!(
                "error: run {run_id} cannot progress: {reason}. `orch status` shows where it \
                 stopped, `orch resume` continues it, `orch down` cleans up"
            );
            return Ok(EXIT_STALLED);
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

/// Whether the run's budget is used up and nothing of it runs any more: it waits for `orch
/// budget` (with `on_budget: finish`, once the agents that were running finished their turn).
fn held_by_budget(state: &crate::state::RunState) -> bool {
    state.budget.reached()
        && state.phase == Phase::Running
        && state.judging.is_none()
        // An agent still at work (a task whose agent exited waits for its checks, or for a
        // judge that will not launch until the budget is raised).
        && !state
            .tasks_in_order()
            .any(|t| t.state == crate::state::TaskStatus::Running && t.ended_at_ms.is_none())
}

/// Why a run that has not ended never will by itself, if so: its engine is gone, never
/// started, or lost its tmux session. `None` while it may still progress.
fn stalled(
    global: &Global,
    loaded: &Loaded,
    session_gone_since: &mut Option<Instant>,
) -> anyhow::Result<Option<String>> {
    let session = &loaded.info.session;
    // Unknown (tmux itself failing) counts as present: only a sure absence is a reason.
    let session_gone = || !loaded.tmux().has_session(session).unwrap_or(true);
    if loaded.engine_alive {
        if !session_gone() {
            *session_gone_since = None;
            return Ok(None);
        }
        let since = *session_gone_since.get_or_insert_with(Instant::now);
        return Ok((since.elapsed() >= SESSION_GRACE).then(|| {
            format!(
                "its tmux session {session} is gone (its agents with it) and its engine \
                 (pid {}) has not ended the run",
                loaded.engine_pid.unwrap_or_default()
            )
        }));
    }
    *session_gone_since = None;
    // An `orch up` or `orch resume` is starting an engine for it (or another run).
    if UpLock::held(&loaded.project.state_dir()) {
        return Ok(None);
    }
    let session_note = || {
        if session_gone() {
            format!(", and its tmux session {session} is gone")
        } else {
            String::new()
        }
    };
    if let Some(pid) = loaded.state.engine_pid {
        // Give a just-finished engine's last journal line a moment to be read.
        let again = runs::load(global, Some(&loaded.info.run_id))?;
        if again.state.is_finished() || again.engine_alive {
            return Ok(None);
        }
        let why = again
            .state
            .engine_stopped
            .as_deref()
            .map(|r| format!(" (it said: {r})"))
            .unwrap_or_default();
        return Ok(Some(format!(
            "its engine (pid {pid}) is gone before the run ended{why}{}",
            session_note()
        )));
    }
    let age =
        Duration::from_millis(crate::state::now_ms().saturating_sub(loaded.info.created_at_ms));
    if age < START_GRACE {
        return Ok(None);
    }
    Ok(Some(format!(
        "its engine never started ({} s after the run was created, no engine holds it){}",
        age.as_secs(),
        session_note()
    )))
}

/// `succeeded`, `failed: task(s) not done: 3`, `stopped by `orch down``: the outcome, then
/// the reason, without saying the outcome twice nor leaving a trailing space.
/// That the engine warned, and of which kinds, when it did: a run that succeeded with part of
/// its project unpoliced must not read as a clean success.
fn warnings_line(warnings: &[crate::state::WarningRecord]) -> Option<String> {
    if warnings.is_empty() {
        return None;
    }
    let mut kinds: Vec<&str> = warnings.iter().map(|w| w.kind.name()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    Some(format!(
        "the engine warned {} time(s) ({}): `{} status` lists them",
        warnings.len(),
        kinds.join(", "),
        crate::invocation::orch()
    ))
}

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
