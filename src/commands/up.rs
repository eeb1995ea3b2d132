//! `orch up "REQUEST"`: create the run, open the tmux session whose control window runs the
//! engine, and attach (or switch the client) unless told to stay detached.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::Global;
use crate::error::{EXIT_OK, usage};
use crate::layout::Layout;
use crate::plan;
use crate::project::{self, Project};
use crate::state::{self, RunDir, RunInfo, UpLock};
use crate::tmux::{RealTmux, Tmux, WindowSpec};

pub struct UpArgs {
    pub request: String,
    pub plan: Option<PathBuf>,
    pub layout: String,
    pub detach: bool,
    pub socket: Option<String>,
}

/// What `up` started, for `demo` to follow.
pub struct Started {
    pub run_id: String,
    pub tmux: RealTmux,
    pub session: String,
}

pub fn run(global: &Global, args: UpArgs) -> anyhow::Result<u8> {
    let detach = args.detach || !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal();
    let started = start(global, args)?;
    if detach {
        print_detached(&started);
        return Ok(EXIT_OK);
    }
    started.tmux.attach(&started.session)?;
    Ok(EXIT_OK)
}

pub fn print_detached(started: &Started) {
    let socket = started
        .tmux
        .socket
        .as_ref()
        .map(|s| format!(" on tmux socket `{s}`"))
        .unwrap_or_default();
    println!(
        "run {} started in tmux session {}{socket}\n  watch:   orch attach\n  \
         status:  orch status\n  wait:    orch wait\n  stop:    orch down",
        started.run_id, started.session
    );
}

pub fn start(global: &Global, args: UpArgs) -> anyhow::Result<Started> {
    if args.request.trim().is_empty() {
        return Err(usage(
            "the request is empty: say what to build, e.g. orch up \"Build a CLI that counts words\"",
        ));
    }
    let project = global.project()?;
    let config_text = std::fs::read_to_string(&project.config_path).map_err(|_| {
        crate::config::ConfigError::NotFound {
            path: project.config_path.clone(),
        }
    })?;
    let config = crate::config::parse(&config_text, &project.config_path)?;
    let scope = match args.plan {
        Some(_) => crate::config::SampleScope::RunWithPlan,
        None => crate::config::SampleScope::Run,
    };
    let sample = crate::config::check_sample(&config, &project.config_path, scope)?;
    // Checked now so that a bad layout fails before anything starts; the engine loads it
    // again from an absolute path when it is a file.
    Layout::load(&args.layout, &global.cwd)?;
    let layout = if Layout::is_path(&args.layout) {
        global.cwd.join(&args.layout).display().to_string()
    } else {
        args.layout.clone()
    };
    let given_plan = match &args.plan {
        Some(path) => Some(read_plan(
            &global.cwd.join(path),
            &project,
            &config.roles.workers,
        )?),
        None => None,
    };
    let socket = args
        .socket
        .clone()
        .or_else(|| std::env::var("ORCH_TMUX_SOCKET").ok());
    let tmux_config = std::env::var_os("ORCH_TMUX_CONFIG").map(PathBuf::from);
    let tmux = RealTmux::new(socket.clone(), tmux_config.clone());
    tmux.version().map_err(anyhow::Error::from)?;
    let session = format!("orch-{}", project.name());

    let state_dir = project.state_dir();
    // Before anything starts: a run that cannot journal must not begin.
    state::check_writable(&state_dir)?;
    // Held until the new engine holds the project lock, so that two `up`s started at the same
    // moment cannot both get past the check below.
    let _up = UpLock::acquire(&state_dir)?;
    if let Some((run_id, pid)) = state::holder(&state_dir) {
        return Err(usage(format!(
            "run {run_id} is still live in this project (engine pid {pid}, tmux session \
             {session}): watch it with `orch attach`, or stop it with `orch down`"
        )));
    }
    if tmux.has_session(&session)? {
        // The session of a run whose engine has ended: finished, or its engine died.
        let previous = RunDir::latest(&state_dir);
        let finished = previous
            .as_ref()
            .map(|id| run_finished(&RunDir::new(&state_dir, id)))
            .unwrap_or(true);
        if !finished {
            return Err(usage(format!(
                "tmux session {session} is still open for run {}, whose engine is gone: \
                 `orch resume` continues that run, `orch down` cleans it up",
                previous.unwrap_or_default()
            )));
        }
        tmux.kill_session(&session)?;
    } else if let Some(previous) =
        RunDir::latest(&state_dir).filter(|id| !run_finished(&RunDir::new(&state_dir, id)))
    {
        // Its session is gone (the tmux server died?): a new run is what was asked, but the
        // old one is not lost.
        eprintln!(
            "note: run {previous} did not finish (its engine and session are gone); once this \
             run is over, `orch resume --run {previous}` can continue it"
        );
    }

    if let Some(notice) = crate::config::sample_notice(&sample) {
        eprintln!("{notice}");
    }
    let run_id = project::new_id();
    let info = RunInfo {
        run_id: run_id.clone(),
        request: args.request.clone(),
        session: session.clone(),
        socket: socket.clone(),
        tmux_config,
        layout,
        project_root: project.root.clone(),
        created_at_ms: crate::engine::ui::now_ms(),
        plan_given: given_plan.is_some(),
        orch_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let dir = state::create_run(&state_dir, &info, &config_text, given_plan.as_ref())?;

    let exe = std::env::current_exe().context("failed to find orch's own executable")?;
    let opened = tmux
        .new_session(
            &session,
            &WindowSpec {
                name: "control".into(),
                cwd: project.root.clone(),
                argv: vec![
                    exe.display().to_string(),
                    "engine".into(),
                    dir.path().display().to_string(),
                ],
                env: caller_env(),
            },
            (200, 50),
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "tmux could not open the session {session}: {}",
                short_reason(&e)
            )
        })
        .and_then(|pane| wait_for_engine(&tmux, &state_dir, &run_id, &session, &pane.pane_id, 0));
    match opened {
        Err(err) if err.is::<EngineSlow>() => return Err(err),
        Err(err) => return Err(never_started(&dir, &run_id, err)),
        Ok(()) => {}
    }
    Ok(Started {
        run_id,
        tmux,
        session,
    })
}

/// The run's engine could not start: the journal says so (the run ends `failed` with the
/// reason, so that `orch status` and `orch wait` tell it rather than a run forever
/// `starting`), and the error says what happened and what to do.
fn never_started(dir: &RunDir, run_id: &str, err: anyhow::Error) -> anyhow::Error {
    let reason = format!("the engine never started: {err:#}");
    let recorded = state::Journal::open(&dir.events()).and_then(|mut journal| {
        journal.append(state::Event::RunFinished {
            outcome: state::Outcome::Failed,
            reason: Some(reason.clone()),
        })
    });
    let note = match recorded {
        Ok(_) => String::new(),
        Err(e) => format!(" (and recording that in the run failed: {e:#})"),
    };
    anyhow::anyhow!(
        "run {run_id} could not start: {err:#}{note}\nnothing ran; fix that, then start \
         again with `orch up`"
    )
}

/// What tmux said, without the command it ran: that holds the whole environment handed to
/// the engine, which can be huge and may hold secrets.
fn short_reason(err: &crate::tmux::TmuxError) -> String {
    match err {
        crate::tmux::TmuxError::CommandFailed { stderr, .. } => {
            let said = crate::transcript::truncate(stderr.trim(), 500);
            if said.contains("command too long") {
                format!(
                    "{said} (the environment orch hands the engine is too big for one tmux \
                     command, about 16 KB: unset the largest environment variables)"
                )
            } else {
                said
            }
        }
        other => other.to_string(),
    }
}

/// A pane gets the tmux server's environment, not ours: hand ours over explicitly. `TMUX`
/// and `TMUX_PANE` describe the caller's own tmux, not the new session.
pub(super) fn caller_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k != "TMUX" && k != "TMUX_PANE")
        .collect()
}

fn read_plan(path: &Path, project: &Project, workers: &[String]) -> anyhow::Result<plan::Plan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read the plan {}: {e}", path.display())))?;
    let value = plan::extract_plan(&text).ok_or_else(|| {
        usage(format!(
            "{} holds no plan (a JSON object with `tasks`)",
            path.display()
        ))
    })?;
    plan::parse_and_validate(&value, &project.root, workers).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        anyhow::Error::from(PlanInvalid(format!(
            "the plan {} has {} problem(s):\n{}\n`orch validate {}` shows them too",
            path.display(),
            problems.len(),
            lines.join("\n"),
            path.display()
        )))
    })
}

/// An invalid `--plan`: the thing checked is bad (exit 1), not a usage error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PlanInvalid(String);

/// How many engines have journaled their start in the run.
pub(super) fn engines_started(dir: &RunDir) -> usize {
    state::read_journal(&dir.events())
        .map(|j| {
            j.records
                .iter()
                .filter(|r| matches!(r.event, state::Event::EngineStarted { .. }))
                .count()
        })
        .unwrap_or(0)
}

pub(super) fn run_finished(dir: &RunDir) -> bool {
    state::read_journal(&dir.events())
        .map(|j| state::RunState::replay(&j.records).is_finished())
        .unwrap_or(true)
}

/// Waits until the engine holds the project lock and has journaled its start (`engines_before`
/// engines had started before it), so that what the caller reads next is the new engine's
/// run. When its pane dies first, its output is the best explanation there is, unless it had
/// journaled its start: then it started, and what became of it is the run's to tell.
pub(super) fn wait_for_engine(
    tmux: &RealTmux,
    state_dir: &Path,
    run_id: &str,
    session: &str,
    pane: &str,
    engines_before: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut pause = Duration::from_millis(5);
    while Instant::now() < deadline {
        let started = || engines_started(&RunDir::new(state_dir, run_id)) > engines_before;
        if state::holder(state_dir).is_some_and(|(id, _)| id == run_id) && started() {
            return Ok(());
        }
        let dead = tmux
            .list_panes(session)
            .ok()
            .and_then(|panes| panes.into_iter().find(|p| p.pane_id == pane))
            .is_none_or(|p| p.dead);
        if dead {
            if started() {
                return Ok(());
            }
            let screen = tmux.capture_pane(pane).unwrap_or_default();
            anyhow::bail!(
                "the engine of run {run_id} stopped at once; its window showed:\n{}",
                screen.trim_end()
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
    Err(EngineSlow(run_id.to_string()).into())
}

/// The engine's pane lives but the engine has not started yet: it may still, so the run is
/// not recorded as failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "the engine of run {0} did not start within 15 s: see `orch attach`; `orch wait` tells \
     whether it starts"
)]
struct EngineSlow(String);
