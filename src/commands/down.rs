//! `orch down`: stop the run's agents and engine, close its tmux session, and mark the run
//! stopped. Its files stay. Works whether or not the engine is still alive. Only the run
//! picked (`--run`, else the latest) is touched: other runs of the project go on.

use std::time::{Duration, Instant};

use super::{Global, runs};
use crate::error::EXIT_OK;
use crate::state::{self, CommandLock, Event, Journal, Outcome};
use crate::tmux::Tmux as _;

/// How long agents get between TERM and KILL.
const GRACE: Duration = Duration::from_secs(5);

pub(crate) fn run(global: &Global, run: Option<&str>) -> anyhow::Result<u8> {
    let loaded = runs::load(global, run)?;
    let state_dir = loaded.project.state_dir();
    let run_id = loaded.info.run_id.clone();

    // A live engine stops its agents itself and records the run as stopped.
    // (A pid of 0 is a holder caught before it wrote its name: kill(2) of 0 would signal
    // our own process group.)
    if let Some(pid) = loaded.engine_pid.filter(|&pid| pid > 0) {
        std::fs::write(loaded.dir.stop_request(), b"orch down\n")?;
        // SAFETY: kill(2) only sends a signal.
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + GRACE * 3;
        let mut pause = Duration::from_millis(5);
        while state::run_holder(&state_dir, &loaded.dir).is_some_and(|h| h.is_engine()) {
            if Instant::now() > deadline {
                eprintln!("warning: the engine (pid {pid}) did not stop in time; killing it");
                // SAFETY: as above.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
                break;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    // Whatever is left in the session (all of it, when the engine was already gone): every
    // pane's process group, then the session.
    let tmux = loaded.tmux();
    let mut stopped = 0;
    let session_open = tmux.has_session(&loaded.info.session).unwrap_or(false);
    if session_open {
        let panes = tmux.list_panes(&loaded.info.session).unwrap_or_default();
        let workers: Vec<_> = panes
            .iter()
            .filter(|p| !p.dead && p.pid > 1)
            .map(|p| {
                let pid = p.pid as i32;
                std::thread::spawn(move || crate::agent_process::subprocess::kill_group(pid, GRACE))
            })
            .collect();
        stopped = workers.len();
        for worker in workers {
            let _ = worker.join();
        }
        tmux.kill_session(&loaded.info.session)?;
    }
    // Agents that outlived their panes (one that ignored the hangup of a dead tmux server, or
    // lost its `agent-run`) are found by the variables they carry.
    let orphans = crate::agent_process::orphans::find(loaded.dir.path());
    if !orphans.is_empty() {
        stopped += crate::agent_process::orphans::stop(&orphans, GRACE);
    }

    let journal = state::read_journal(&loaded.dir.events())?;
    let finished = state::RunState::replay(&journal.records);
    if !finished.is_finished() {
        // No engine of this run may start (or journal) while the end is written.
        let _lock = CommandLock::acquire(&state_dir, &loaded.dir, "down", false)?;
        Journal::open(&loaded.dir.events())?.append(Event::RunFinished {
            outcome: Outcome::Stopped,
            reason: Some("stopped by `orch down`".into()),
        })?;
    } else if loaded.engine_pid.is_none() && !session_open && stopped == 0 {
        // Nothing was running and nothing changed: say so, rather than "is down" again.
        println!(
            "run {run_id} is already down ({}): no engine, no tmux session {}, no agent left; \
             its files stay in {} (`{} report` shows what it did)",
            finished.phase.name(),
            loaded.info.session,
            loaded.project.display(loaded.dir.path()),
            crate::invocation::orch()
        );
        return Ok(EXIT_OK);
    }
    // Every agent is stopped: no one reads the caller's environment again (a resume writes it
    // anew), so the keys do not stay behind in the run.
    let _ = std::fs::remove_file(loaded.dir.environ());
    println!(
        "run {run_id} is down: session {} closed{}; its files stay in {}",
        loaded.info.session,
        if stopped > 0 {
            format!(", {stopped} process group(s) stopped")
        } else {
            String::new()
        },
        loaded.project.display(loaded.dir.path())
    );
    Ok(EXIT_OK)
}
