//! `orch up "REQUEST"`: create the run, open the tmux session whose control window runs the
//! engine, and attach (or switch the client) unless told to stay detached.

use std::ffi::{OsStr, OsString};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::Global;
use crate::error::{EXIT_OK, usage};
use crate::layout::Layout;
use crate::plan;
use crate::project::{self, Project};
use crate::state::{self, RunDir, RunInfo, UpLock, environ};
use crate::tmux::{CONFIG_ENV, RealTmux, SOCKET_ENV, Tmux, TmuxError, WindowSpec};

pub(crate) struct UpArgs {
    pub request: String,
    pub plan: Option<PathBuf>,
    pub layout: String,
    pub detach: bool,
    pub socket: Option<String>,
    /// `--in-place`: work in the checkout whatever `workspace:` says.
    pub in_place: bool,
    /// `--uncommitted`, over the config's `uncommitted:`.
    pub uncommitted: Option<crate::workspace::Uncommitted>,
    /// `--review`: the plan waits for `orch approve` whatever `plan_approval:` says.
    pub review: bool,
}

/// What `up` started, for `demo` to follow.
pub(crate) struct Started {
    pub run_id: String,
    pub tmux: RealTmux,
    pub session: String,
    /// Where the run's agents work, when not in the checkout.
    pub workspace: Option<crate::workspace::WorkspaceInfo>,
    /// Other runs of the project are live: the hints name this one (`--run ID`), since a
    /// command without it picks the latest.
    pub beside: bool,
    /// The plan will wait for `orch approve` (`--review`, `plan_approval: ask`).
    pub review: bool,
}

impl Started {
    /// `run_id`'s engine has started in `session` on `tmux`, working in `workspace`; whether
    /// other runs of the project whose state lives in `state_dir` are live too.
    pub(super) fn new(
        run_id: String,
        tmux: RealTmux,
        session: String,
        workspace: Option<crate::workspace::WorkspaceInfo>,
        state_dir: &Path,
    ) -> Self {
        let beside = state::live_runs(state_dir)
            .iter()
            .any(|holder| holder.run_id != run_id);
        Started {
            run_id,
            tmux,
            session,
            workspace,
            beside,
            review: false,
        }
    }
}

pub(crate) fn run(global: &Global, args: UpArgs) -> anyhow::Result<u8> {
    run_with(global, args, &[])
}

/// `orch up` whose session (and so every agent) also gets `extra_env`, unless the caller's
/// environment already sets it: the demo's pace.
pub(crate) fn run_with(
    global: &Global,
    args: UpArgs,
    extra_env: &[(String, String)],
) -> anyhow::Result<u8> {
    let detach = args.detach || !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal();
    let started = start_with(global, args, extra_env)?;
    if detach {
        print_detached(&started);
        return Ok(EXIT_OK);
    }
    show(&started, "started", None)
}

/// Attaches the terminal to the run's session (switches the client inside tmux), then says
/// what to type next. Inside a tmux nobody is attached to there is no client to switch: the
/// run goes on all the same, and the user is told so and how to watch it. `cd` is the
/// project to run those commands in, when the user is not in it (the demo).
pub(super) fn show(started: &Started, verb: &str, cd: Option<&Path>) -> anyhow::Result<u8> {
    match started.tmux.attach(&started.session) {
        Ok(()) => {
            println!(
                "run {} in tmux session {}{}:",
                started.run_id,
                started.session,
                server_note(&started.tmux)
            );
        }
        Err(TmuxError::NoClient { .. }) => {
            println!(
                "run {} {verb} in tmux session {}{}; no tmux client is attached here to switch \
                 to it, and the run goes on all the same:",
                started.run_id,
                started.session,
                server_note(&started.tmux)
            );
        }
        Err(err) => return Err(err.into()),
    }
    print_hints(started, cd);
    Ok(EXIT_OK)
}

pub(crate) fn print_detached(started: &Started) {
    println!(
        "run {} started in tmux session {}{}",
        started.run_id,
        started.session,
        server_note(&started.tmux)
    );
    print_hints(started, None);
}

/// What to type next, each line as it can be pasted into a shell (after `cd`, when given).
/// Beside other live runs, each names this run: without `--run` a command picks the latest.
pub(super) fn print_hints(started: &Started, cd: Option<&Path>) {
    let orch = crate::invocation::orch();
    if let Some(ws) = &started.workspace {
        println!(
            "  on branch {} (worktree {}); your checkout is left as it is",
            ws.branch,
            ws.path.display()
        );
    }
    if let Some(dir) = cd {
        let dir = crate::invocation::shell_word(&dir.to_string_lossy());
        println!("  first:   cd {dir}");
    }
    let run = if started.beside {
        format!(" --run {}", started.run_id)
    } else {
        String::new()
    };
    if started.review {
        println!(
            "  the plan will wait for your approval (`{orch} wait{run}` exits 5 then): \
             `{orch} status{run}` shows it, `{orch} approve{run}` dispatches it"
        );
    }
    println!(
        "  watch:   {orch} attach{run}   (or from any terminal: {})\n  status:  {orch} \
         status{run}\n  wait:    {orch} wait{run}\n  report:  {orch} report{run}\n  stop:    \
         {orch} down{run}",
        started.tmux.attach_hint(&started.session)
    );
}

/// ` on tmux server PATH`, unless the run is on the user's default server.
pub(super) fn server_note(tmux: &RealTmux) -> String {
    let default = crate::tmux::expected_socket_path(Some("default"));
    match tmux.socket.as_deref() {
        Some(socket) if std::path::Path::new(socket) != default => {
            format!(" on tmux server {socket}")
        }
        _ => String::new(),
    }
}

pub(crate) fn start(global: &Global, args: UpArgs) -> anyhow::Result<Started> {
    start_with(global, args, &[])
}

/// `start` with variables for the session that the caller's environment does not set.
pub(crate) fn start_with(
    global: &Global,
    args: UpArgs,
    extra_env: &[(String, String)],
) -> anyhow::Result<Started> {
    // The run directory about to be made holds the caller's environment and the request.
    crate::private::restrict();
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
        .or_else(|| std::env::var(SOCKET_ENV).ok().filter(|s| !s.is_empty()));
    let tmux_config = std::env::var_os(CONFIG_ENV).map(PathBuf::from);
    let asked = RealTmux::new(socket.clone(), tmux_config.clone());
    asked.version().map_err(anyhow::Error::from)?;
    // Named by its path from here on, and recorded so: inside tmux, "no socket" is the
    // server of `$TMUX`, which `orch status` or `orch down` from a plain shell would not
    // find (see tmux::socket).
    let tmux = asked.pinned()?;
    let socket_path = tmux.socket.clone().map(PathBuf::from);
    // Its own session, so that runs side by side each have one.
    let run_id = project::new_id();
    let session = project.session_name(&run_id);

    let state_dir = project.state_dir();
    // Before anything starts: a run that cannot journal must not begin.
    state::check_writable(&state_dir)?;
    // A sandbox asked for and impossible stops the run here; one wished for (`auto`) is said
    // missing here, and in the run's journal and control window.
    if let Some(why) = crate::sandbox::check(&config)? {
        eprintln!("warning: the agents will run without a sandbox: {why}");
    }
    // Held until the new engine holds its locks, so that two `up`s started at the same
    // moment cannot both get past the check below.
    let _up = UpLock::acquire(&state_dir)?;
    let wanted = crate::workspace::Wanted {
        mode: if args.in_place {
            crate::workspace::Mode::InPlace
        } else {
            config.workspace
        },
        uncommitted: args.uncommitted.unwrap_or(config.uncommitted),
        isolation: config.isolation,
    };
    if wanted.mode == crate::workspace::Mode::InPlace
        && wanted.isolation == crate::workspace::Isolation::Task
    {
        let how = if args.in_place {
            "`--in-place`"
        } else {
            "`workspace: in-place`"
        };
        return Err(usage(format!(
            "`isolation: task` (in {}) gives each task a worktree of its own, which a run in \
             place ({how}) cannot have: its tasks would all write into your checkout. Drop one \
             of the two",
            project.config_path.display()
        )));
    }
    // Made before the run's record: a refusal (uncommitted changes) leaves nothing behind.
    let (workspace, in_place_note) =
        match crate::workspace::prepare(&project.root, &state_dir, &run_id, wanted)? {
            crate::workspace::Prepared::Worktree { info, left_out } => {
                if !left_out.is_empty() {
                    eprintln!(
                        "note: left out of the run's start, since a commit cannot hold a git \
                         repository inside another: {}",
                        left_out.join(", ")
                    );
                }
                (Some(info), None)
            }
            crate::workspace::Prepared::InPlace { note } => (None, note),
        };
    if let Some(note) = &in_place_note {
        eprintln!("note: {note}");
    }
    // Only a run in place can be refused here (a worktree run starts beside anything), and
    // for one nothing was made yet.
    super::admission::admit_up(&state_dir, &tmux, workspace.is_none())?;

    if let Some(notice) = crate::config::sample_notice(&sample) {
        eprintln!("{notice}");
    }
    let info = RunInfo {
        run_id: run_id.clone(),
        request: args.request.clone(),
        session: session.clone(),
        socket,
        socket_path,
        tmux_config,
        layout,
        project_root: project.root.clone(),
        created_at_ms: crate::state::now_ms(),
        plan_given: given_plan.is_some(),
        orch_version: env!("CARGO_PKG_VERSION").to_string(),
        workspace,
        review: args.review,
    };
    let dir = match state::create_run(&state_dir, &info, &config_text, given_plan.as_ref()) {
        Ok(dir) => dir,
        Err(e) => {
            remove_workspace(&project.root, info.workspace.as_ref());
            return Err(e);
        }
    };
    if let Some(note) = in_place_note {
        // Said once, in the run's record too.
        let journaled = state::Journal::open(&dir.events()).and_then(|mut journal| {
            journal.append(state::Event::Warning {
                kind: state::WarningKind::Workspace,
                message: note,
            })
        });
        if let Err(e) = journaled {
            return Err(never_started(&dir, &run_id, e));
        }
    }
    // The engine and the agents get our environment from this file, never from a command line
    // (see state::environ).
    if let Err(e) = environ::write(&dir.environ(), &with_defaults(environ::caller(), extra_env)) {
        return Err(never_started(&dir, &run_id, e));
    }
    let exe = match std::env::current_exe().context("failed to find orch's own executable") {
        Ok(exe) => exe,
        Err(e) => return Err(never_started(&dir, &run_id, e)),
    };
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
                env: vec![],
            },
            (200, 50),
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "tmux could not open the session {session}: {}",
                short_reason(&e)
            )
        })
        .and_then(|pane| {
            quiet_dead_pane(&tmux, &pane.pane_id);
            wait_for_engine(&tmux, &state_dir, &run_id, &session, &pane.pane_id, 0)
        });
    match opened {
        Err(err) if err.is::<EngineSlow>() => return Err(err),
        Err(err) => return Err(never_started(&dir, &run_id, err)),
        Ok(()) => {}
    }
    let mut started = Started::new(run_id, tmux, session, info.workspace, &state_dir);
    started.review = crate::approval::asked(&config, info.review);
    Ok(started)
}

/// `env` plus each of `defaults` it does not set: an explicit variable wins.
fn with_defaults(
    mut env: Vec<(OsString, OsString)>,
    defaults: &[(String, String)],
) -> Vec<(OsString, OsString)> {
    for (key, value) in defaults {
        if !env.iter().any(|(k, _)| k.as_os_str() == OsStr::new(key)) {
            env.push((key.into(), value.into()));
        }
    }
    env
}

/// The engine's final screen (the table and how the run ended) stays whole when the engine
/// exits: tmux's "Pane is dead" line, written at the bottom, would scroll the header off.
/// tmux before 3.3 has no such option; the line then stays, which is harmless.
pub(super) fn quiet_dead_pane(tmux: &RealTmux, pane: &str) {
    let _ = tmux.set_pane_option(pane, "remain-on-exit-format", "");
}

/// The run's engine could not start: the journal says so (the run ends `failed` with the
/// reason, so that `orch status` and `orch wait` tell it rather than a run forever
/// `starting`), and the error says what happened and what to do.
fn never_started(dir: &RunDir, run_id: &str, err: anyhow::Error) -> anyhow::Error {
    // No engine will ever read the caller's environment kept for it: not left lying there.
    let _ = std::fs::remove_file(dir.environ());
    // Nor will any agent work in the run's worktree: it and its branch (which holds nothing
    // but the start) go.
    if let Ok(info) = RunInfo::read(&dir.run_json()) {
        remove_workspace(&info.project_root, info.workspace.as_ref());
    }
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

/// Removes a worktree and branch `orch up` made for a run that never started (best effort:
/// `git worktree prune` and `git branch -D` by hand do the same).
fn remove_workspace(root: &Path, workspace: Option<&crate::workspace::WorkspaceInfo>) {
    let Some(ws) = workspace else { return };
    let git = crate::workspace::Git::at(root);
    let _ = git.run([
        "worktree".as_ref(),
        "remove".as_ref(),
        "--force".as_ref(),
        ws.path.as_os_str(),
    ]);
    let _ = git.run(["branch", "-D", "-q", &ws.branch]);
}

/// What tmux said, without the whole command it ran (which the error would quote).
fn short_reason(err: &crate::tmux::TmuxError) -> String {
    match err {
        crate::tmux::TmuxError::CommandFailed { stderr, .. } => {
            crate::transcript::truncate(stderr.trim(), 500)
        }
        other => other.to_string(),
    }
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
    state::read_journal(&dir.events()).map_or(0, |j| {
        j.records
            .iter()
            .filter(|r| matches!(r.event, state::Event::EngineStarted { .. }))
            .count()
    })
}

pub(super) fn run_finished(dir: &RunDir) -> bool {
    state::read_journal(&dir.events())
        .map_or(true, |j| state::RunState::replay(&j.records).is_finished())
}

/// Waits until the engine holds its run's lock and has journaled its start (`engines_before`
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
        let dir = RunDir::new(state_dir, run_id);
        if state::run_holder(state_dir, &dir).is_some_and(|h| h.is_engine()) && started() {
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
    Err(EngineSlow {
        run_id: run_id.to_string(),
        orch: crate::invocation::orch(),
    }
    .into())
}

/// The engine's pane lives but the engine has not started yet: it may still, so the run is
/// not recorded as failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "the engine of run {run_id} did not start within 15 s: see `{orch} attach`; `{orch} wait` \
     tells whether it starts"
)]
struct EngineSlow {
    run_id: String,
    /// How hints name orch (see invocation.rs).
    orch: &'static str,
}
