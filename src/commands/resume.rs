//! `orch resume`: continue a run whose engine is gone (crashed, killed, its control window
//! closed), that was interrupted (Ctrl-C, SIGTERM) or stopped (`orch down`), or whose tmux
//! server died. It starts a new engine in the run's session (recreating the session when it
//! is gone); the engine rebuilds the run from its journal, adopts the agents still running and
//! relaunches the others (see `engine::resume`).

use std::io::IsTerminal as _;

use super::{Global, runs, up};
use crate::error::{EXIT_OK, usage};
use crate::state::{self, Outcome, Phase, RunDir, UpLock, environ};
use crate::tmux::{PaneState, RealTmux, Tmux, WindowSpec};

pub(crate) fn run(global: &Global, run: Option<&str>, detach: bool) -> anyhow::Result<u8> {
    let detach = detach || !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal();
    let started = start(global, run)?;
    if detach {
        println!(
            "run {} resumed in tmux session {}{}: its engine keeps the agents still running \
             and relaunches the others",
            started.run_id,
            started.session,
            up::server_note(&started.tmux)
        );
        up::print_hints(&started, None);
        return Ok(EXIT_OK);
    }
    up::show(&started, "resumed", None)
}

pub(crate) fn start(global: &Global, run: Option<&str>) -> anyhow::Result<up::Started> {
    start_loaded(runs::load(global, run)?, false)
}

/// Starts a new engine for the run `loaded`; `retrying`: for `orch retry`, whose request
/// waits in the run directory, so that a failed run is taken over too (see engine/retry.rs).
pub(super) fn start_loaded(loaded: runs::Loaded, retrying: bool) -> anyhow::Result<up::Started> {
    // Files written into the run (its environment) are this user's alone.
    crate::private::restrict();
    // A torn last line (a crash mid-write) is no reason to refuse: said, and skipped.
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let run_id = loaded.info.run_id.clone();
    let state_dir = loaded.project.state_dir();
    let failed = loaded.state.phase == Phase::Finished(Outcome::Failed);
    if !(retrying && failed) {
        refuse_unless_resumable(
            &run_id,
            loaded.engine_alive,
            loaded.engine_pid,
            &loaded.state,
        )?;
    }
    state::check_writable(loaded.dir.path())?;
    // A run on a branch works in its worktree: gone (`orch discard`, removed by hand), there
    // is nowhere to continue.
    if let Some(ws) = &loaded.info.workspace
        && !ws.path.is_dir()
    {
        return Err(usage(format!(
            "run {run_id} worked in the worktree {}, which is gone: it cannot be resumed; its              branch {} keeps what was committed (`git log {}`), `orch up` starts a new run",
            ws.path.display(),
            ws.branch,
            ws.branch
        )));
    }
    // The run's own config: a sandbox it requires and that does not work here stops the
    // resume now, rather than its new engine later.
    if let Ok(config) = crate::config::load(&loaded.dir.config())
        && let Some(why) = crate::sandbox::check(&config)?
    {
        eprintln!("warning: the agents will run without a sandbox: {why}");
    }
    raise_from_config(&loaded)?;
    // Held until the new engine holds its locks, like `orch up`: two resumes (or a resume
    // and an up) at the same moment cannot both start an engine. Other runs may be live: only
    // a run in place waits for the checkout.
    let _up = UpLock::acquire(&state_dir)?;
    super::admission::admit_resume(&state_dir, &loaded.dir, loaded.info.workspace.is_none())?;
    let tmux = loaded.tmux();
    tmux.version().map_err(anyhow::Error::from)?;
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("failed to find orch's own executable: {e}"))?;
    let engine = WindowSpec {
        name: "control".into(),
        cwd: loaded.project.root.clone(),
        argv: vec![
            exe.display().to_string(),
            "engine".into(),
            loaded.dir.path().display().to_string(),
        ],
        env: vec![],
    };
    // The new engine and the agents it launches get the environment of this resume, from
    // the run's file rather than a command line (see state::environ).
    environ::write(&loaded.dir.environ(), &environ::caller())?;
    let session = loaded.info.session.clone();
    let engines_before = up::engines_started(&loaded.dir);
    let pane = place_engine(&tmux, &loaded.dir, &state_dir, &session, &engine)?;
    up::quiet_dead_pane(&tmux, &pane);
    up::wait_for_engine(&tmux, &state_dir, &run_id, &session, &pane, engines_before)?;
    Ok(up::Started::new(
        run_id,
        tmux,
        session,
        loaded.info.workspace.clone(),
        &state_dir,
    ))
}

fn refuse_unless_resumable(
    run_id: &str,
    engine_alive: bool,
    engine_pid: Option<u32>,
    state: &state::RunState,
) -> anyhow::Result<()> {
    let orch = crate::invocation::orch();
    if engine_alive {
        return Err(usage(format!(
            "run {run_id} is live (engine pid {}): there is nothing to resume; watch it with \
             `{orch} attach`",
            engine_pid.unwrap_or(0)
        )));
    }
    if let Phase::Finished(outcome @ (Outcome::Succeeded | Outcome::Failed)) = state.phase {
        return Err(usage(format!(
            "run {run_id} already {outcome}: there is nothing to resume; `{orch} status` \
             shows it, `{orch} up` starts a new run"
        )));
    }
    Ok(())
}

/// Starts the engine in the run's session and returns its pane: in the old control pane when
/// it is still there (dead), in a new `control` window when it was closed, in a new session
/// when the session (or the whole tmux server) is gone.
fn place_engine(
    tmux: &RealTmux,
    dir: &RunDir,
    state_dir: &std::path::Path,
    session: &str,
    engine: &WindowSpec,
) -> anyhow::Result<String> {
    if !tmux.has_session(session)? {
        return Ok(tmux.new_session(session, engine, (200, 50))?.pane_id);
    }
    let panes = tmux.list_panes(session)?;
    let engines: Vec<(&PaneState, String)> = panes
        .iter()
        .filter_map(|p| engine_run_of(&p.start_command).map(|id| (p, id)))
        .collect();
    if let Some((_, other)) = engines.iter().find(|(_, id)| id != dir.id()) {
        // A later run took the session over; it may go only when that run is over.
        if !up::run_finished(&RunDir::new(state_dir, other)) {
            let orch = crate::invocation::orch();
            return Err(usage(format!(
                "tmux session {session} belongs to run {other}, which is not finished: `{orch} \
                 resume --run {other}` continues it, or `{orch} down --run {other}` closes it \
                 first"
            )));
        }
        tmux.kill_session(session)?;
        return Ok(tmux.new_session(session, engine, (200, 50))?.pane_id);
    }
    if let Some((pane, _)) = engines.iter().find(|(_, id)| id == dir.id()) {
        keep_last_screen(tmux, dir, pane);
        tmux.respawn_pane(&pane.pane_id, engine)?;
        return Ok(pane.pane_id.clone());
    }
    Ok(tmux.new_window(session, engine)?.pane_id)
}

/// The run id of an engine's start command (`<orch> engine <...>/runs/<id>`, maybe quoted by
/// tmux); `None` for any other command, agents' launchers included.
fn engine_run_of(start_command: &str) -> Option<String> {
    if !start_command.contains(" engine ") {
        return None;
    }
    let (_, rest) = start_command.rsplit_once("/runs/")?;
    let id = rest.trim_end().trim_end_matches(['"', '\'']);
    state::is_run_id(id).then(|| id.to_string())
}

/// What the dead engine's window last showed (a panic, an error) is kept in the run
/// directory before a new engine takes the window.
fn keep_last_screen(tmux: &RealTmux, dir: &RunDir, pane: &PaneState) {
    if !pane.dead {
        return;
    }
    let Ok(screen) = tmux.capture_pane(&pane.pane_id) else {
        return;
    };
    let path = dir.path().join("previous-engines.log");
    let entry = format!(
        "--- engine pane {} at {} ms (status {:?}, signal {:?})\n{}\n",
        pane.pane_id,
        state::now_ms(),
        pane.dead_status,
        pane.dead_signal,
        screen.trim_end()
    );
    use std::io::Write as _;
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(entry.as_bytes()));
}

/// A budget raised in the project's `orch.yaml` since the run started is the run's too: asked
/// for as `orch budget` asks (the new engine applies it), and said. A config that does not
/// load now changes nothing (the run keeps its own copy): said too.
fn raise_from_config(loaded: &runs::Loaded) -> anyhow::Result<()> {
    let Ok(started) = crate::config::load(&loaded.dir.config()) else {
        return Ok(());
    };
    let edited = match crate::config::load(&loaded.project.config_path) {
        Ok(edited) => edited,
        Err(e) => {
            eprintln!(
                "note: {} does not load now ({e:#}): the run goes on with the config it \
                 started with",
                loaded.project.config_path.display()
            );
            return Ok(());
        }
    };
    let (raise, notes) = crate::budget::raise_from_config(
        &loaded.dir,
        &started.limits.budget,
        &edited.limits.budget,
        &loaded.state,
    );
    for note in notes {
        eprintln!("note: {note}");
    }
    if let Some(raise) = raise {
        crate::budget::request_raise(&loaded.dir, &raise)?;
        let mut by = Vec::new();
        if let Some(usd) = raise.usd {
            by.push(format!("${usd:.2}"));
        }
        if let Some(tokens) = raise.tokens {
            by.push(format!("{tokens} tokens"));
        }
        println!(
            "budget raised by {} from {}",
            by.join(" and "),
            loaded.project.config_path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_panes_are_told_from_agents_by_their_start_command() {
        assert_eq!(
            engine_run_of("/usr/bin/orch engine /p/.orch/runs/20260101-000000-ab12").as_deref(),
            Some("20260101-000000-ab12")
        );
        assert_eq!(
            engine_run_of("/o/orch engine \"/my p/.orch/runs/r-1\"").as_deref(),
            Some("r-1")
        );
        assert_eq!(
            engine_run_of("/bin/sh /p/.orch/runs/r-1/tasks/a/1/launch.sh"),
            None
        );
        assert_eq!(
            engine_run_of("/o/orch engine /p/.orch/runs/r-1/tasks/x"),
            None
        );
        assert_eq!(engine_run_of("bash"), None);
    }

    #[test]
    fn only_a_run_without_engine_and_not_over_is_resumed() {
        let state = state::RunState::default();
        let err = refuse_unless_resumable("r", true, Some(7), &state).unwrap_err();
        assert!(err.to_string().contains("engine pid 7"), "{err}");
        refuse_unless_resumable("r", false, None, &state).unwrap();
        let done = state::RunState::replay(&[state::Record {
            t: 1,
            event: state::Event::RunFinished {
                outcome: Outcome::Succeeded,
                reason: None,
            },
        }]);
        let err = refuse_unless_resumable("r", false, None, &done).unwrap_err();
        assert!(
            err.to_string().contains("already succeeded")
                && err.to_string().contains(" up` starts a new run"),
            "{err}"
        );
    }
}
