//! The engine's state and its loop. Everything that changes the run goes through `record`,
//! which journals an event (flushed) and only then applies it to the in-memory state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::barrier::Barriers;
use super::crash::{CrashPoint, When};
use super::event_loop::{Inputs, Stop};
use super::panes::Panes;
use crate::config::Config;
use crate::plan::{Plan, TaskId};
use crate::project::Project;
use crate::snapshot::Snapshot;
use crate::state::WarningKind::{Agents, Unpoliced, Unrecorded};
use crate::state::{EngineLock, Event, Journal, Outcome, Phase, Record, RunDir, RunInfo, RunState};
use crate::tmux::{RealTmux, Tmux};
use crate::watch::{DirWatcher, TreeWatcher};

/// One agent running in a pane: a task's attempt, or the planner's.
#[derive(Debug, Clone)]
pub(super) struct Live {
    pub attempt: u32,
    pub dir: PathBuf,
    pub pane: String,
    pub pid: u32,
    pub last_activity: Instant,
}

/// Gate results, sent back to the loop by the background task that ran them.
pub(super) struct GateDone {
    /// None for the run-level gates.
    pub task: Option<TaskId>,
    pub attempt: u32,
    pub outcomes: Vec<crate::judge::GateOutcome>,
}

pub(super) struct Engine {
    pub project: Project,
    pub config: Config,
    pub info: RunInfo,
    pub dir: RunDir,
    pub tmux: Arc<dyn Tmux>,
    pub panes: Panes,
    pub journal: Journal,
    pub state: RunState,
    pub plan: Option<Plan>,
    pub snapshot: Option<Snapshot>,
    pub dir_watcher: DirWatcher,
    /// What the ownership watcher ignores; the final sweep ignores the same.
    pub ignore: crate::watch::Ignore,
    /// Kept alive for the run: dropping it stops the watching.
    pub _tree_watcher: Option<TreeWatcher>,
    /// The guarded parts of the project's `.git/` (None outside a git work tree).
    pub git_guard: Option<crate::watch::GitGuard>,
    /// Running task attempts.
    pub live: HashMap<TaskId, Live>,
    /// The planner's running attempt.
    pub planner: Option<Live>,
    /// Problems of the last refused plan, for the next attempt's prompt.
    pub planner_feedback: Vec<String>,
    /// Files written during planning, checked against the specs once the plan is known.
    pub planning_writes: BTreeMap<String, ChangeSeen>,
    /// The planner's valid plan, waiting for its barrier to be accepted (see barrier.rs).
    pub plan_waiting: Option<crate::plan::Plan>,
    pub exe: PathBuf,
    /// Set when `orch down` asked the engine to stop (rather than an interrupt).
    pub stop_requested: bool,
    pub gate_tx: UnboundedSender<GateDone>,
    /// Gate runs in flight, and checks waiting for their barrier.
    pub checks_running: usize,
    pub barriers: Barriers,
    /// Tasks or the judge wait to be launched: the loop launches them one at a time when no
    /// event is waiting (`launch_step`).
    pub launch_wanted: bool,
    /// Leftover processes being stopped off the loop (see leftovers.rs): waited for when the
    /// engine ends, or a KILL due after its grace would never be sent.
    pub stopping: Vec<std::thread::JoinHandle<usize>>,
    /// Attempts whose agent ended and whose leftovers are still to be looked for (a walk of
    /// /proc, done once the exit is journaled: see leftovers.rs), with their task.
    pub leftovers_due: Vec<(std::path::PathBuf, Option<crate::plan::TaskId>)>,
    /// Tasks whose lint or tests failed while other agents worked: checked again when quiet.
    pub parked: Vec<TaskId>,
    /// Task attempts already checked a second time.
    pub rechecked: HashSet<(TaskId, u32)>,
    /// Tasks whose gates passed, waiting for the judge.
    pub judge_queue: Vec<TaskId>,
    /// The judge's running attempt and the tasks it judges.
    pub judge: Option<(Live, Vec<TaskId>)>,
    /// Judge attempts so far (numbers its directories), and tries for the current batch.
    pub judge_attempts: u32,
    pub judge_tries: u32,
    /// Oracles at work, per task, with the reasons the task's next attempt will carry.
    pub oracles: HashMap<TaskId, (Live, Vec<String>)>,
    pub run_gates_started: bool,
    /// The judge's last pane, closed when the next judge starts.
    pub last_judge_pane: Option<String>,
    /// Where to crash on purpose (`ORCH_ENGINE_CRASH`, for tests).
    pub crash: Option<CrashPoint>,
    /// Set once the engine left the run to a later `orch resume` (see `detach`).
    pub detached: bool,
    /// Attempt directories whose pane was seen gone without an exit record, and since when.
    pub gone_since: HashMap<PathBuf, Instant>,
    /// Whether `render` draws the table on stdout (the control window); not in unit tests.
    pub draw: bool,
    /// The run's small files, written back if `.orch/` goes (see keeper.rs).
    pub kept: Vec<(PathBuf, Vec<u8>)>,
    /// Warnings not journaled (yet): see warnings.rs.
    pub warnings: super::warnings::Pending,
    pub _lock: EngineLock,
}

#[derive(Debug, Clone)]
pub(super) struct ChangeSeen {
    pub change: &'static str,
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
        // An exit handled in the loop's last turn: what it left is still looked for.
        if let Err(e) = engine.look_for_leftovers() {
            engine.warn(
                Agents,
                format!("cannot look for what the last agents left running: {e:#}"),
            );
        }
        engine.finish_stopping(); // see leftovers.rs
        match &result {
            // Detached: the run goes on without an engine, and the window is gone.
            Ok(None) => engine.render(),
            Ok(Some(outcome)) => {
                // Over: its agents are done or stopped, and a resume writes the caller's
                // environment again, so no copy of the keys is left lying in the run.
                let _ = std::fs::remove_file(engine.dir.environ());
                engine.render_final(Ok(*outcome))
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
        let dir = RunDir::open(run_dir)?;
        let info = RunInfo::read(&dir.run_json())?;
        let project = Project::discover(&info.project_root, None)?;
        let config = crate::config::load(&dir.config())?;
        let lock = EngineLock::acquire(&project.state_dir(), &info.run_id)?;
        // Opened first: a torn last line is cut off (and said so) before the journal is read,
        // rather than said twice, once as unreadable and once as cut off.
        let journal = Journal::open(&dir.events())?;
        let records = crate::state::read_journal(&dir.events())?;
        let mut early: Vec<_> = records
            .warnings
            .iter()
            .map(|w| super::warnings::early(Unrecorded, w))
            .collect();
        let state = RunState::replay(&records.records);
        if let Some(repaired) = journal.repaired() {
            early.push(super::warnings::early(Unrecorded, repaired));
        }
        let crash = CrashPoint::from_env(state.engine_pid.is_none())?;
        let tmux = tmux(&info);
        let layout = crate::layout::Layout::load(&info.layout, &project.root)?;
        let (fs_tx, fs_rx) = unbounded_channel();
        let (dir_tx, dir_rx) = unbounded_channel();
        let (gate_tx, gate_rx) = unbounded_channel();
        let dir_watcher = DirWatcher::new(dir_tx)?;
        let ignore = crate::watch::Ignore::new(&project.root, &config.ownership.ignore)?;
        let git_guard = open_git_guard(&project.root, &dir, &state, &fs_tx, &mut early);
        // Without barriers (their directory cannot be made or watched) the engine still
        // runs, its checks starting at each exit (see barrier.rs).
        let mut barriers = Some(dir.barriers()).filter(|d| std::fs::create_dir_all(d).is_ok());
        let tree_watcher = match TreeWatcher::with_barriers(
            &project.root,
            ignore.clone(),
            fs_tx.clone(),
            barriers.as_deref(),
        ) {
            Ok(watcher) => watcher,
            Err(e) if barriers.is_some() => {
                // Only the barriers' fault if the tree alone can be watched.
                let watcher = TreeWatcher::start(&project.root, ignore.clone(), fs_tx)?;
                early.push(super::warnings::early(
                    Unpoliced,
                    format!(
                        "{e}; a task's checks start at its exit, and may miss the writes \
                         its agent made just before"
                    ),
                ));
                barriers = None;
                watcher
            }
            Err(e) => return Err(e.into()),
        };
        let tree_watcher = Some(tree_watcher);
        let plan = state.plan().cloned();
        let engine = Engine {
            panes: Panes::new(layout, info.session.clone()),
            exe: std::env::current_exe().context("failed to find orch's own executable")?,
            project,
            config,
            info,
            dir,
            tmux,
            journal,
            state,
            plan,
            snapshot: None,
            dir_watcher,
            _tree_watcher: tree_watcher,
            git_guard,
            barriers: Barriers::new(barriers),
            ignore,
            live: HashMap::new(),
            planner: None,
            planner_feedback: Vec::new(),
            planning_writes: BTreeMap::new(),
            plan_waiting: None,
            stop_requested: false,
            gate_tx,
            checks_running: 0,
            launch_wanted: false,
            stopping: Vec::new(),
            leftovers_due: Vec::new(),
            parked: Vec::new(),
            rechecked: HashSet::new(),
            judge_queue: Vec::new(),
            judge: None,
            // Numbers continue after a resume, so a new judge never reuses a directory.
            judge_attempts: std::fs::read_dir(run_dir.join("judge"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .max()
                .unwrap_or(0),
            judge_tries: 0,
            oracles: HashMap::new(),
            run_gates_started: false,
            last_judge_pane: None,
            crash,
            detached: false,
            gone_since: HashMap::new(),
            draw: true,
            kept: Vec::new(),
            warnings: super::warnings::Pending::new(early),
            _lock: lock,
        };
        let inputs = Inputs {
            fs: fs_rx,
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
        dir: &Path,
        title: String,
        invocation: crate::workers::Invocation,
        window: String,
    ) -> anyhow::Result<crate::tmux::WindowSpec> {
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
        };
        let script = crate::agent_process::launcher::write_launcher(dir, &spec, &self.exe)?;
        // A directory used before (a judge or an oracle asked again after a resume) may hold
        // an old exit record: it must not pass for this run's.
        match std::fs::remove_file(dir.join("exit.json")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context("failed to clear an old exit record"),
        }
        self.dir_watcher.watch(dir)?;
        Ok(crate::tmux::WindowSpec {
            name: window,
            cwd: self.project.root.clone(),
            argv: vec!["/bin/sh".into(), script.display().to_string()],
            env: vec![],
        })
    }

    /// Journals `event`, then applies it to the state.
    pub fn record(&mut self, event: Event) -> anyhow::Result<Record> {
        self.keep_record()?; // the journal is where readers look for it (see keeper.rs)
        if let Some(crash) = &mut self.crash {
            crash.check(When::Before, &event);
        }
        let record = self.journal.append(event.bounded())?;
        if let Some(crash) = &mut self.crash {
            crash.check(When::After, &record.event);
        }
        self.state.apply(&record);
        Ok(record)
    }

    /// Journals `event` without a sync of its own (see `Journal::append_unsynced`), then
    /// applies it: for evidence that is cheap to lose in a machine crash, such as first writes.
    pub fn record_unsynced(&mut self, event: Event) -> anyhow::Result<()> {
        self.keep_record()?;
        if let Some(crash) = &mut self.crash {
            crash.check(When::Before, &event);
        }
        let record = self.journal.append_unsynced(event.bounded())?;
        if let Some(crash) = &mut self.crash {
            crash.check(When::After, &record.event);
        }
        self.state.apply(&record);
        Ok(())
    }

    /// Journals several events with one write and one sync (a group commit), then applies
    /// them in order. For events that follow each other with nothing done in between, such
    /// as a task's gate results: each sync costs the loop 0.2–0.7 ms (see BENCHMARKS.md).
    /// With a crash point set, one at a time, so that it can fall between any two.
    pub fn record_all(&mut self, events: Vec<Event>) -> anyhow::Result<()> {
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
        } else if self.info.plan_given {
            let plan = self.read_given_plan()?;
            self.accept_plan(plan)
        } else {
            self.start_planning(self.state.planning_attempt() + 1)
        }
    }

    fn take_snapshot(&mut self) -> anyhow::Result<()> {
        let store = self.dir.snapshot();
        let snapshot = match self.state.snapshot_tree.clone() {
            Some(tree) => Snapshot::load(&self.project.root, &store, &tree)?,
            None => {
                let snapshot = Snapshot::take(&self.project.root, &store)?;
                self.record(Event::SnapshotTaken {
                    tree: snapshot.tree_id().to_string(),
                })?;
                snapshot
            }
        };
        // From now on, what is ignored is what was ignored at the start.
        let (gitignore, exclude) = snapshot.start_rules();
        self.ignore.freeze(gitignore, exclude.as_deref());
        self.snapshot = Some(snapshot);
        Ok(())
    }

    /// The pane-died hook touches a marker file that the directory watcher reports, so the
    /// engine hears of a dead pane at once; reconciliation covers what the hook misses.
    fn set_hooks(&mut self) {
        let signals = self.dir.signals();
        if std::fs::create_dir_all(&signals).is_err() {
            return;
        }
        let _ = self.dir_watcher.watch(&signals);
        let path = signals.display().to_string();
        // tmux single quotes have no escapes: a path with a quote gets no hook, and relies
        // on reconciliation alone.
        if path.contains('\'') {
            return;
        }
        let Ok(quoted) = shlex::try_quote(&path) else {
            return;
        };
        let shell = format!("touch {quoted}/pane-#{{hook_pane}}");
        if shell.contains('\'') {
            return;
        }
        let command = format!("run-shell -b '{shell}'");
        if let Err(e) = self
            .tmux
            .set_hook(&self.info.session, "pane-died", &command)
        {
            let cost = "an agent's end is found by the check of the panes every 2 s";
            self.warn(
                Agents,
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
            let pane = name.strip_prefix("pane-");
            let running = self
                .live
                .values()
                .chain(self.planner.iter())
                .chain(self.judge.iter().map(|(l, _)| l))
                .chain(self.oracles.values().map(|(l, _)| l))
                .any(|l| Some(l.pane.as_str()) == pane);
            if pane.is_some() && !running {
                return Ok(());
            }
            return self.reconcile_if_tmux();
        }
        if name == "exit.json" {
            return self.on_exit_file(path);
        }
        // An event stream goes to stdout.log alone (see agent_process::run::pump).
        if name == "output.log" || name == "stdout.log" {
            self.touch_activity(path.parent().unwrap_or(path));
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

    fn touch_activity(&mut self, attempt_dir: &Path) {
        let now = Instant::now();
        let lives = self
            .live
            .values_mut()
            .chain(self.judge.as_mut().map(|(l, _)| l))
            .chain(self.oracles.values_mut().map(|(l, _)| l));
        for live in lives {
            if live.dir == attempt_dir {
                live.last_activity = now;
            }
        }
        if let Some(planner) = &mut self.planner
            && planner.dir == attempt_dir
        {
            planner.last_activity = now;
        }
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

    /// Ends the run once nothing is left to do: a final sweep for changes the watcher missed,
    /// then the outcome.
    pub fn finish_if_settled(&mut self) -> anyhow::Result<()> {
        let busy = self.judge.is_some() || !self.oracles.is_empty() || self.checks_running > 0;
        if self.state.phase != Phase::Running || !self.settled() || busy || self.run_gates_started {
            return Ok(());
        }
        self.run_gates_started = true;
        self.sweep()?;
        let root = self.project.root.clone();
        let specs = self
            .plan
            .as_ref()
            .map(|p| p.spec_files())
            .unwrap_or_default();
        let lint = self.config.gates.lint.clone();
        let test = self.config.gates.test.clone();
        let timeout = self.config.limits.task_timeout;
        let logs = self.dir.path().join("gates");
        let tx = self.gate_tx.clone();
        self.checks_running += 1;
        tokio::spawn(async move {
            let mut outcomes = vec![crate::judge::spec_gate(&root, &specs)];
            for (gate, command) in [("lint", lint), ("test", test)] {
                let log = logs.join(format!("run-{gate}.log"));
                outcomes.push(
                    crate::judge::command_gate(gate, command.as_deref(), &root, &log, timeout)
                        .await,
                );
            }
            let _ = tx.send(GateDone {
                task: None,
                attempt: 0,
                outcomes,
            });
        });
        Ok(())
    }

    /// The run-level gates are in: the outcome, the report, the end.
    pub(super) fn on_run_gates_done(&mut self, mut done: GateDone) -> anyhow::Result<()> {
        done.outcomes.push(crate::judge::violation_gate(
            None,
            &self.state.violations,
            0,
            &self.dir.gates().join("run-ownership.txt"),
        ));
        self.record_gates(None, 0, &done.outcomes)?;
        let mut reasons: Vec<String> = done
            .outcomes
            .iter()
            .filter(|o| o.failed())
            .map(|o| {
                format!(
                    "run gate `{}` failed: {}",
                    o.gate,
                    o.detail.lines().next().unwrap_or("")
                )
            })
            .collect();
        let failed: Vec<String> = self
            .state
            .tasks_in_order()
            .filter(|t| t.state != crate::state::TaskStatus::Done)
            .map(|t| t.id.to_string())
            .collect();
        if !failed.is_empty() {
            reasons.insert(0, format!("task(s) not done: {}", failed.join(", ")));
        }
        let (outcome, reason) = if reasons.is_empty() {
            (Outcome::Succeeded, None)
        } else {
            (Outcome::Failed, Some(reasons.join("; ")))
        };
        self.record(Event::RunFinished { outcome, reason })?;
        if let Err(e) = crate::report::write(
            &self.project,
            &self.config,
            &self.dir,
            self.snapshot.as_ref(),
        ) {
            self.warn(
                Unrecorded,
                format!(
                    "could not write the report: {e:#}; `orch report` rebuilds it from the journal"
                ),
            );
        }
        Ok(())
    }
}

/// The guard of the project's `.git/`, its copy taken by the run's first engine (before any
/// agent starts), watched from now on. Without it the run goes on, saying what it costs.
fn open_git_guard(
    root: &Path,
    dir: &RunDir,
    state: &RunState,
    fs_tx: &tokio::sync::mpsc::UnboundedSender<crate::watch::FsChange>,
    warnings: &mut Vec<super::warnings::Unjournaled>,
) -> Option<crate::watch::GitGuard> {
    let mut guard = match crate::watch::GitGuard::open(root, &dir.path().join("git-meta")) {
        Ok(guard) => guard?,
        Err(e) => {
            warnings.push(super::warnings::early(
                Unpoliced,
                format!(
                    "cannot copy the guarded parts of the project's .git/ ({e}): writes \
                 there by agents will not be detected in this run"
                ),
            ));
            return None;
        }
    };
    guard.already_reported(state.violations.iter().map(|v| v.path.as_str()));
    if let Err(e) = guard.watch(fs_tx.clone()) {
        warnings.push(super::warnings::early(
            Unpoliced,
            format!(
                "cannot watch the project's .git/ ({e}): writes there are still found \
             before each task's checks and at the end of the run"
            ),
        ));
    }
    Some(guard)
}
