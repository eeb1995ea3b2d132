//! The engine's state and its loop. Everything that changes the run goes through `record`,
//! which journals an event (flushed) and only then applies it to the in-memory state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::agents::Agents;
use super::barrier::Barriers;
use super::crash::{CrashPoint, When};
use super::event_loop::{Inputs, Stop};
use super::gates::Checks;
use super::judging::Judging;
use super::launch::{Launcher, Launching};
use super::panes::Panes;
use super::planning::PlanningState;
use super::sched::Sched;
use super::watching::Watching;
use crate::config::Config;
use crate::paths::ProjectPath;
use crate::plan::{Plan, TaskId};
use crate::project::Project;
use crate::snapshot::Snapshot;
use crate::state::WarningKind;
use crate::state::{EngineLock, Event, Journal, Outcome, Record, RunDir, RunInfo, RunState};
use crate::tmux::{RealTmux, Tmux};

/// Gate results, sent back to the loop by the background task that ran them.
#[derive(Debug)]
pub(super) struct GateDone {
    /// None for the run-level gates.
    pub task: Option<TaskId>,
    pub attempt: u32,
    pub outcomes: Vec<crate::judge::GateOutcome>,
}

/// The engine's state, by concern: the run and its record; what watches the project and the
/// run directory; the agents running and how they are launched; the checks, the judge's
/// rounds, planning; work left for later turns of the loop. Each concern's own state is a
/// type of its own module, which keeps its invariants; the engine's methods, in the module of
/// their concern, tie them together.
pub(super) struct Engine {
    // The run, and its record.
    /// The user's project: where `.orch/` and the run's record live.
    pub project: Project,
    /// Where the run's agents work, and what the engine watches, snapshots, checks and
    /// commits: the run's worktree (a run on a branch), else the project itself.
    pub work: Project,
    pub config: Config,
    pub info: RunInfo,
    pub dir: RunDir,
    pub journal: Journal,
    pub state: RunState,
    pub plan: Option<Plan>,
    pub snapshot: Option<Snapshot>,
    pub exe: PathBuf,
    /// The run's small files, written back if `.orch/` goes (see keeper.rs).
    pub kept: Vec<(PathBuf, Vec<u8>)>,
    /// Where to crash on purpose (`ORCH_ENGINE_CRASH`, for tests).
    pub crash: Option<CrashPoint>,
    pub _lock: EngineLock,

    /// The watchers of the project, its `.git/` and the run directory (see watching.rs).
    pub watching: Watching,
    /// The watchers of the task worktrees, under `isolation: task` (see isolation.rs).
    pub task_trees: super::isolation::TaskTrees,

    // Agents (agents.rs, launch.rs) and tmux.
    pub tmux: Arc<dyn Tmux>,
    pub agents: Agents,
    pub launcher: Launcher,
    /// Accepted tasks' commits, made off the loop (see committer.rs).
    pub commits: super::committer::Commits,
    /// Leftover processes being stopped off the loop (see leftovers.rs): waited for when the
    /// engine ends, or a KILL due after its grace would never be sent.
    pub stopping: Vec<std::thread::JoinHandle<usize>>,

    // Checks (gates.rs, barrier.rs), the judge (judging.rs), planning (planning.rs).
    pub checks: Checks,
    pub barriers: Barriers,
    pub judging: Judging,
    pub planning_state: PlanningState,

    // The loop.
    /// Work left for later turns of the loop (see sched.rs).
    pub sched: Sched,
    /// Set when `orch down` asked the engine to stop (rather than an interrupt).
    pub stop_requested: bool,
    /// Set once the engine left the run to a later `orch resume` (see `detach`).
    pub detached: bool,
    /// Whether `render` draws the table on stdout (the control window); not in unit tests.
    pub draw: bool,
    /// Warnings not journaled (yet): see warnings.rs.
    pub warnings: super::warnings::Pending,
    /// Tells the user what needs them, made at the first notice (see notices.rs).
    pub notifier: Option<crate::notify::Notifier>,
    /// When the budget was last looked at before a launch, and how many agents had ended
    /// then (see budget.rs).
    pub budget_look: Option<(std::time::Instant, u64)>,
}

/// How an engine is opened: for a run (a launcher thread, real watchers), or for a unit test
/// that drives it input by input (launches answered inline, no watchers).
#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    pub launching: Launching,
    pub watchers: bool,
    pub committing: super::committer::Committing,
}

impl Options {
    pub(super) const RUN: Options = Options {
        launching: Launching::Thread,
        watchers: true,
        committing: super::committer::Committing::Thread,
    };
}

/// Runs the engine for the run in `run_dir` until the run ends or is interrupted.
pub fn start(run_dir: &Path) -> anyhow::Result<u8> {
    // Everything the engine writes into the run is this user's alone (see private.rs).
    crate::private::restrict();
    // The caller's environment comes from the run's file, not from tmux (see state::environ).
    // SAFETY: first thing, before the runtime or anything else starts a thread.
    unsafe { crate::state::environ::load_into_process(&RunDir::open(run_dir)?.environ())? };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the engine's runtime")?;
    runtime.block_on(async {
        let stops = super::event_loop::os_stops()?;
        // One control-mode client for all of the engine's tmux commands, not a process per
        // command: it keeps the loop free (see tmux/control.rs and BENCHMARKS.md).
        let real_tmux = |info: &RunInfo| -> Arc<dyn Tmux> {
            Arc::new(
                RealTmux::new(info.tmux_socket(), info.tmux_config.clone())
                    .with_control_mode(&info.session),
            )
        };
        let (mut engine, inputs) = Engine::open(run_dir, real_tmux, stops)?;
        let result = engine.run(inputs).await;
        // Nothing may still be coming up in a pane unknown to the run once the engine is
        // gone (see launch.rs): an agent given up on is stopped. Detached, the journal is
        // left as it is: `orch resume` finds the agents by their panes' commands.
        let late = engine.launcher.settle();
        if !engine.detached {
            for launched in late {
                if let Err(e) = engine.on_launched(launched) {
                    let what =
                        format!("cannot record an agent launched as the engine ended: {e:#}");
                    engine.warn(WarningKind::Agents, what);
                }
            }
        }
        // An exit handled in the loop's last turn: what it left is still looked for.
        if let Err(e) = engine.look_for_leftovers() {
            engine.warn(
                WarningKind::Agents,
                format!("cannot look for what the last agents left running: {e:#}"),
            );
        }
        engine.finish_stopping(); // see leftovers.rs
        engine.commits.finish(); // see committer.rs
        engine.finish_notices(); // see notices.rs
        match &result {
            // Detached: the run goes on without an engine, and the window is gone.
            Ok(None) => engine.render(),
            Ok(Some(outcome)) => {
                // Over: its agents are done or stopped, and a resume writes the caller's
                // environment again, so no copy of the keys is left lying in the run.
                let _ = std::fs::remove_file(engine.dir.environ());
                engine.render_final(Ok(*outcome));
            }
            Err(e) => engine.render_final(Err(e)),
        }
        match result {
            Ok(Some(Outcome::Succeeded)) => Ok(0),
            Ok(_) => Ok(1),
            Err(e) => Err(e),
        }
    })
}

impl Engine {
    /// Opens the run in `run_dir` for its engine, with the tmux that `tmux` makes for it (a
    /// fake in unit tests) and the stop requests of `stops` (the OS's signals, or a test's).
    pub(super) fn open(
        run_dir: &Path,
        tmux: impl FnOnce(&RunInfo) -> Arc<dyn Tmux>,
        stops: UnboundedReceiver<Stop>,
    ) -> anyhow::Result<(Engine, Inputs)> {
        Self::open_with(run_dir, tmux, stops, Options::RUN)
    }

    /// `open`, with `options`.
    pub(super) fn open_with(
        run_dir: &Path,
        tmux: impl FnOnce(&RunInfo) -> Arc<dyn Tmux>,
        stops: UnboundedReceiver<Stop>,
        options: Options,
    ) -> anyhow::Result<(Engine, Inputs)> {
        let dir = RunDir::open(run_dir)?;
        let info = RunInfo::read(&dir.run_json())?;
        let project = Project::discover(&info.project_root, None)?;
        let work = match &info.workspace {
            Some(ws) => {
                if !ws.path.is_dir() {
                    anyhow::bail!(
                        "the run's worktree {} is gone: nothing is left to work in; its branch                          {} keeps what was committed",
                        ws.path.display(),
                        ws.branch
                    );
                }
                Project {
                    root: ws.path.canonicalize().unwrap_or_else(|_| ws.path.clone()),
                    config_path: project.config_path.clone(),
                    is_git: true,
                }
            }
            None => project.clone(),
        };
        let config = crate::config::load(&dir.config())?;
        // A run in place also takes the checkout: runs in place exclude each other.
        let lock = EngineLock::acquire(&project.state_dir(), &dir, info.workspace.is_none())?;
        // Only the engine holding the run commits: an index left by one that died is no one's.
        crate::workspace::remove_left_indexes(dir.path());
        // Opened first: a torn last line is cut off (and said so) before the journal is read,
        // rather than said twice, once as unreadable and once as cut off.
        let journal = Journal::open(&dir.events())?;
        let records = crate::state::read_journal(&dir.events())?;
        let mut early: Vec<_> = records
            .warnings
            .iter()
            .map(|w| super::warnings::early(WarningKind::Unrecorded, w))
            .collect();
        let state = RunState::replay(&records.records);
        if let Some(repaired) = journal.repaired() {
            early.push(super::warnings::early(WarningKind::Unrecorded, repaired));
        }
        let crash = CrashPoint::from_env(state.engine_pid.is_none())?;
        let tmux = tmux(&info);
        let layout = crate::layout::Layout::load(&info.layout, &project.root)?;
        let own_ref = info
            .workspace
            .as_ref()
            .map(|ws| format!("refs/heads/{}", ws.branch));
        let (fs_tx, fs_rx) = unbounded_channel();
        let (dir_tx, dir_rx) = unbounded_channel();
        let (gate_tx, gate_rx) = unbounded_channel();
        let (task_fs_tx, task_fs_rx) = unbounded_channel();
        let (watching, barriers, unwatched) = Watching::open(
            super::watching::WorkTree {
                root: &work.root,
                own_ref: own_ref.as_deref(),
            },
            &dir,
            &state,
            &config,
            options.watchers,
            fs_tx,
            dir_tx,
        )?;
        early.extend(unwatched);
        let plan = state.plan().cloned();
        let judge_attempts = std::fs::read_dir(run_dir.join("judge"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        let panes = Panes::new(layout, info.session.clone());
        let engine = Engine {
            exe: std::env::current_exe().context("failed to find orch's own executable")?,
            project,
            work,
            config,
            info,
            dir,
            launcher: Launcher::new(options.launching, tmux.clone(), panes),
            commits: super::committer::Commits::new(options.committing),
            tmux,
            journal,
            state,
            plan,
            snapshot: None,
            watching,
            task_trees: super::isolation::TaskTrees::new(options.watchers.then_some(task_fs_tx)),
            barriers: Barriers::new(barriers),
            agents: Agents::default(),
            checks: Checks::new(gate_tx),
            // Numbers continue after a resume, so a new judge never reuses a directory.
            judging: Judging::new(judge_attempts),
            planning_state: PlanningState::default(),
            sched: Sched::default(),
            stop_requested: false,
            stopping: Vec::new(),
            crash,
            detached: false,
            draw: true,
            kept: Vec::new(),
            warnings: super::warnings::Pending::new(early),
            notifier: None,
            budget_look: None,
            _lock: lock,
        };
        // The run's commits an earlier engine made are the engine's too (see committer.rs).
        engine
            .commits
            .know(engine.state.commits.iter().map(|c| c.commit.as_str()));
        let inputs = Inputs {
            fs: fs_rx,
            task_fs: task_fs_rx,
            run_files: dir_rx,
            gates: gate_rx,
            stops,
        };
        Ok((engine, inputs))
    }

    /// Writes an agent run's launcher into `dir` (its logs and exit record go there too),
    /// watches `dir` for the exit record, and returns the pane to create, named `window`.
    pub(super) fn prepare_pane(
        &mut self,
        root: &Path,
        dir: &Path,
        prompt: String,
        title: String,
        invocation: crate::workers::Invocation,
        window: String,
    ) -> anyhow::Result<(super::launch::Files, crate::tmux::WindowSpec)> {
        let mut env = invocation.env;
        // How much of its output agent-run keeps on disk (see agent_process::run::capped).
        env.push((
            crate::agent_process::run::OUTPUT_CAP_ENV.into(),
            self.config.limits.output_cap.to_string(),
        ));
        let spec = crate::agent_process::launcher::LaunchSpec {
            title,
            argv: invocation.argv,
            env,
            // Written by `orch up` and `orch resume`; absent only where no caller's environment
            // is to be passed on (the engine's unit tests).
            env_file: Some(self.dir.environ()).filter(|p| p.exists()),
            stdin: invocation.stdin,
            cwd: invocation.cwd,
            output_log: dir.join("output.log"),
            stdout_log: dir.join("stdout.log"),
            exit_file: dir.join("exit.json"),
            sandbox: invocation.sandbox,
            notice: None,
        };
        // Written with the launcher's files, off the loop (see launch.rs).
        let script = std::path::absolute(dir)
            .with_context(|| format!("cannot make {} an absolute path", dir.display()))?
            .join(crate::agent_process::launcher::SCRIPT_FILE);
        let files = super::launch::Files {
            prompt,
            spec,
            exe: self.exe.clone(),
        };
        let window = crate::tmux::WindowSpec {
            name: window,
            cwd: root.to_path_buf(),
            argv: vec!["/bin/sh".into(), script.display().to_string()],
            env: vec![],
        };
        Ok((files, window))
    }

    /// Journals `event`, then applies it to the state.
    pub(super) fn record(&mut self, event: Event) -> anyhow::Result<Record> {
        self.keep_record()?; // the journal is where readers look for it (see keeper.rs)
        if let Some(crash) = &mut self.crash {
            crash.check(When::Before, &event);
        }
        let record = self.journal.append(event.bounded())?;
        if let Some(crash) = &mut self.crash {
            crash.check(When::After, &record.event);
        }
        self.state.apply(&record);
        self.notice_for(&record.event); // see notices.rs
        Ok(record)
    }

    /// Journals `event` without a sync of its own (see `Journal::append_unsynced`), then
    /// applies it: for evidence that is cheap to lose in a machine crash, such as first writes.
    pub(super) fn record_unsynced(&mut self, event: Event) -> anyhow::Result<()> {
        self.keep_record()?;
        if let Some(crash) = &mut self.crash {
            crash.check(When::Before, &event);
        }
        let record = self.journal.append_unsynced(event.bounded())?;
        if let Some(crash) = &mut self.crash {
            crash.check(When::After, &record.event);
        }
        self.state.apply(&record);
        self.notice_for(&record.event); // see notices.rs
        Ok(())
    }

    /// Journals several events with one write and one sync (a group commit), then applies
    /// them in order. For events that follow each other with nothing done in between, such
    /// as a task's gate results: each sync costs the loop 0.2–0.7 ms (see BENCHMARKS.md).
    /// With a crash point set, one at a time, so that it can fall between any two.
    pub(super) fn record_all(&mut self, events: Vec<Event>) -> anyhow::Result<()> {
        self.keep_record()?;
        if self.crash.is_some() {
            for event in events {
                self.record(event)?;
            }
            return Ok(());
        }
        let events = events.into_iter().map(Event::bounded).collect();
        for record in self.journal.append_all(events)? {
            self.state.apply(&record);
            self.notice_for(&record.event); // see notices.rs
        }
        Ok(())
    }

    pub(super) fn begin(&mut self) -> anyhow::Result<()> {
        let resuming = self.check_resumable()?;
        // Resumed first: whoever sees this engine's start sees the run resumed too.
        if resuming {
            self.record(Event::RunResumed {})?;
        }
        self.record(Event::EngineStarted {
            pid: std::process::id(),
        })?;
        self.journal_early_warnings(); // see warnings.rs
        self.take_snapshot()?;
        self.say_if_unconfined()?;
        self.say_if_budget_leaks(); // see budget.rs
        self.keep_run_files();
        self.set_hooks();
        if resuming {
            self.resume()
        } else {
            self.start_run()
        }
    }

    /// Journals, once per run, that agents on `sandbox: auto` run unconfined, and why.
    fn say_if_unconfined(&mut self) -> anyhow::Result<()> {
        if self.state.sandbox_off.is_some() {
            return Ok(());
        }
        if let Some(reason) = crate::sandbox::check(&self.config)? {
            self.record(Event::SandboxOff { reason })?;
        }
        Ok(())
    }

    /// Starts the run from the beginning: its plan's tasks, or planning.
    pub(super) fn start_run(&mut self) -> anyhow::Result<()> {
        if self.plan.is_some() {
            self.dispatch()
        } else if let Some(held) = self.state.approval.held.clone() {
            self.hold_plan(held) // it waits again (see approval.rs)
        } else if self.info.plan_given {
            let plan = self.read_given_plan()?;
            if self.approval_asked() {
                return self.hold_plan(plan);
            }
            self.accept_plan(plan)
        } else {
            self.start_planning(self.state.planning_attempt() + 1)
        }
    }

    fn take_snapshot(&mut self) -> anyhow::Result<()> {
        let store = self.dir.snapshot();
        let snapshot = match self.state.snapshot_tree.clone() {
            Some(tree) => Snapshot::load(&self.work.root, &store, &tree)?,
            None => {
                let snapshot = Snapshot::take(&self.work.root, &store)?;
                self.record(Event::SnapshotTaken {
                    tree: snapshot.tree_id().to_string(),
                })?;
                snapshot
            }
        };
        // From now on, what is ignored is what was ignored at the start.
        let (gitignore, exclude) = snapshot.start_rules();
        self.watching.freeze(gitignore, exclude.as_deref());
        self.snapshot = Some(snapshot);
        Ok(())
    }

    /// The pane-died hook makes a marker file that the directory watcher reports, so the
    /// engine hears of a dead pane at once; reconciliation covers what the hook misses.
    fn set_hooks(&mut self) {
        let signals = self.dir.signals();
        if std::fs::create_dir_all(&signals).is_err() {
            return;
        }
        let _ = self.watch_dir(&signals);
        let path = signals.display().to_string();
        // tmux single quotes have no escapes: a path with a quote gets no hook, and relies
        // on reconciliation alone.
        if path.contains('\'') {
            return;
        }
        let Ok(quoted) = shlex::try_quote(&path) else {
            return;
        };
        // A redirection, not `touch`: the shell that tmux starts anyway makes the file, with
        // no program of its own to start at every agent's end.
        let shell = format!(": > {quoted}/pane-#{{hook_pane}}");
        if shell.contains('\'') {
            return;
        }
        let command = format!("run-shell -b '{shell}'");
        if let Err(e) = self
            .tmux
            .set_hook(&self.info.session, "pane-died", &command)
        {
            let cost = format!(
                "an agent's end is {}",
                super::event_loop::found_by_the_listing()
            );
            self.warn(
                WarningKind::Agents,
                format!("could not set the pane-died hook ({e}); {cost}"),
            );
        }
    }

    /// A file changed under the run directory: an exit record, a log growing, a hook marker.
    pub(super) fn on_run_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.parent() == Some(self.dir.signals().as_path()) {
            // The marker names the pane that died (`pane-%N`). When no running agent is in
            // it, its agent was settled already (its exit record normally comes first), so
            // there is nothing to reconcile: skipping the pane listing frees the loop
            // sooner after every exit (see BENCHMARKS.md).
            if let Some(pane) = name.strip_prefix("pane-")
                && !self.agents.in_pane(pane)
            {
                return Ok(());
            }
            return self.reconcile_if_tmux();
        }
        if name == "exit.json" {
            return self.on_exit_file(path);
        }
        // An event stream goes to stdout.log alone (see agent_process::run::pump).
        if name == "output.log" || name == "stdout.log" {
            self.agents.touch(path.parent().unwrap_or(path));
        }
        Ok(())
    }

    /// Reconciles with tmux, unless tmux is gone: then nothing it shows is the agents' doing,
    /// and the engine detaches (see `detach`).
    pub(super) fn reconcile_if_tmux(&mut self) -> anyhow::Result<()> {
        if self.tmux_lost() {
            return self.detach("its tmux session is gone");
        }
        self.reconcile()
    }

    /// Stops everything on Ctrl-C or SIGTERM: no more dispatching, every agent journaled as
    /// interrupted and its process group stopped, the run recorded as interrupted (or stopped,
    /// when `orch down` asked). `orch resume` continues it.
    pub(super) fn interrupt(&mut self, why: &str) -> anyhow::Result<()> {
        self.stop_requested |= self.dir.stop_request().exists();
        let (outcome, reason) = if self.stop_requested {
            (Outcome::Stopped, "stopped by `orch down`".to_string())
        } else {
            (Outcome::Interrupted, why.to_string())
        };
        self.stop_agents(&reason)?;
        self.record(Event::RunFinished {
            outcome,
            reason: Some(reason),
        })?;
        Ok(())
    }

    /// The control window closed, or the tmux session or server is gone: the engine leaves
    /// the run as it is, and the agents keep working in their windows (where those still
    /// exist). Nothing is judged from what tmux's end looks like: `orch resume` starts an
    /// engine that adopts the agents still running and relaunches the others.
    pub(super) fn detach(&mut self, why: &str) -> anyhow::Result<()> {
        if self.detached {
            return Ok(());
        }
        self.detached = true;
        self.record(Event::EngineStopped {
            reason: why.to_string(),
        })?;
        Ok(())
    }

    /// Watches an attempt's directory for its exit record and logs.
    pub(super) fn watch_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        self.watching.watch(dir)
    }

    pub(super) fn unwatch_dir(&mut self, dir: &Path) {
        self.watching.unwatch(dir);
    }

    /// The context of an agent's prompt (see `prompt::Context`), as every role shares it; the
    /// role's own parts are the caller's.
    pub(super) fn prompt_context(
        &self,
        role: crate::prompt::Role,
        task: Option<&TaskId>,
        attempt: u32,
    ) -> crate::prompt::Context {
        let root = task.map_or_else(|| self.work.root.clone(), |id| self.task_root(id));
        let mut ctx = crate::prompt::Context::new(
            role,
            &self.info.request,
            &root,
            &self.config.gates.test_pattern,
            self.spec_files(),
            attempt,
        );
        ctx.task = task.cloned();
        ctx
    }

    /// The plan's spec files (none before a plan).
    pub(super) fn spec_files(&self) -> Vec<ProjectPath> {
        self.plan
            .as_ref()
            .map(crate::plan::Plan::spec_files)
            .unwrap_or_default()
    }
}
