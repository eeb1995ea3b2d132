//! Whether a new engine may start beside the project's other runs: the checks `orch up` and
//! `orch resume` make while they hold `.orch/up.lock`. Runs in worktrees run side by side; a
//! run in place shares the user's checkout, so it waits for any other run in place (and for a
//! command writing the checkout, `orch merge`), and for the agents a dead run in place may
//! have left writing it.

use std::path::Path;

use crate::error::usage;
use crate::state::{self, LockError, RunDir, RunInfo};
use crate::tmux::{RealTmux, Tmux as _};

/// For `orch up` of a run `in_place` (or in a worktree) on `tmux`: refuses when the run would
/// be in place and the checkout is taken, or the latest run in place is unfinished with its
/// session still open (its agents may write the checkout). The latest run's session is closed
/// when that run is over (its final screen stays in `orch status` and `orch report`), so
/// that runs one after the other do not pile up sessions. A run that did not finish and has
/// nothing left running is said, with how to continue it.
pub(super) fn admit_up(state_dir: &Path, tmux: &RealTmux, in_place: bool) -> anyhow::Result<()> {
    if in_place {
        checkout_free(state_dir, None)?;
    }
    let orch = crate::invocation::orch();
    let latest = RunDir::latest(state_dir).and_then(|id| Previous::read(state_dir, &id, tmux));
    let latest_in_place = if in_place {
        latest_in_place(state_dir).and_then(|id| Previous::read(state_dir, &id, tmux))
    } else {
        None
    };
    if let Some(previous) = latest_in_place.filter(|p| !p.finished && p.open && !p.live) {
        return Err(usage(format!(
            "run {id} runs in place and did not finish: its engine is gone, but its tmux \
             session {session} is still open and its agents may still be writing the \
             checkout. `{orch} resume --run {id}` continues that run, `{orch} down --run {id}` \
             cleans it up",
            id = previous.id,
            session = previous.info.session,
        )));
    }
    let Some(previous) = latest else {
        return Ok(());
    };
    if previous.finished && previous.open && !previous.live {
        // Tidiness only: a session tmux would not close is no reason not to start.
        if let Err(e) = previous.tmux.kill_session(&previous.info.session) {
            eprintln!(
                "note: the session {} of run {} (over) stays open: {e}",
                previous.info.session, previous.id
            );
        }
    } else if !previous.finished && !previous.live {
        let id = &previous.id;
        let state = if previous.open {
            format!(
                "its engine is gone; its tmux session {} is open",
                previous.info.session
            )
        } else {
            "its engine and session are gone".to_string()
        };
        // Two runs in place cannot be live at once: that one waits for this one.
        let when = if in_place && previous.info.workspace.is_none() {
            "once this run is over, "
        } else {
            ""
        };
        eprintln!(
            "note: run {id} did not finish ({state}); {when}`{orch} resume --run {id}` can \
             continue it"
        );
    }
    Ok(())
}

/// For `orch resume` of run `dir` (`in_place` or not): refuses when its engine is live, or
/// when it is in place and the checkout is taken by another run or a command.
pub(super) fn admit_resume(state_dir: &Path, dir: &RunDir, in_place: bool) -> anyhow::Result<()> {
    if let Some(holder) = state::run_holder(state_dir, dir) {
        return Err(usage(LockError::RunLive(holder).to_string()));
    }
    if in_place {
        checkout_free(state_dir, Some(dir.id()))?;
    }
    Ok(())
}

/// Refuses when the checkout is taken by anyone but run `mine`.
fn checkout_free(state_dir: &Path, mine: Option<&str>) -> anyhow::Result<()> {
    match state::checkout_holder(state_dir) {
        Some(holder) if Some(holder.run_id.as_str()) != mine => {
            let worktree = if holder.is_engine() {
                "; or run this one in a worktree of its own (the default in a git project: \
                 `workspace: worktree` in orch.yaml), beside it"
            } else {
                ""
            };
            Err(usage(format!(
                "{}{worktree}",
                LockError::CheckoutBusy(holder)
            )))
        }
        _ => Ok(()),
    }
}

/// The latest run that runs in place, if any: the newest whose `run.json` has no workspace.
fn latest_in_place(state_dir: &Path) -> Option<String> {
    let mut ids: Vec<String> = std::fs::read_dir(state_dir.join("runs"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|id| state::is_run_id(id))
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.into_iter().find(|id| {
        RunInfo::read(&RunDir::new(state_dir, id).run_json())
            .is_ok_and(|info| info.workspace.is_none())
    })
}

/// An earlier run as admission sees it.
struct Previous {
    id: String,
    info: RunInfo,
    /// The tmux server it recorded.
    tmux: RealTmux,
    finished: bool,
    /// Its tmux session is open.
    open: bool,
    /// Its engine is live.
    live: bool,
}

impl Previous {
    fn read(state_dir: &Path, id: &str, ours: &RealTmux) -> Option<Previous> {
        let dir = RunDir::new(state_dir, id);
        let info = RunInfo::read(&dir.run_json()).ok()?;
        // On the server that run recorded, which may be another than ours.
        let tmux = if info.tmux_socket() == ours.socket {
            ours.clone()
        } else {
            RealTmux::new(info.tmux_socket(), info.tmux_config.clone())
        };
        Some(Previous {
            id: id.to_string(),
            finished: super::up::run_finished(&dir),
            open: tmux.has_session(&info.session).unwrap_or(false),
            live: state::run_holder(state_dir, &dir).is_some_and(|h| h.is_engine()),
            info,
            tmux,
        })
    }
}
