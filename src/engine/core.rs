//! The engine's state and its loop. Everything that changes the run goes through `record`,
//! which journals an event (flushed) and only then applies it to the in-memory state.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::crash::{CrashPoint, When};
use super::{panes::Panes, ui};
use crate::config::Config;
use crate::plan::{Plan, TaskId};
use crate::project::Project;
use crate::state::{EngineLock, Event, Journal, Outcome, Phase, Record, RunDir, RunInfo, RunState};
use crate::tmux::{RealTmux, Tmux};
use crate::watch::{DirWatcher, FsChange, Snapshot, TreeWatcher};

/// How often tmux is asked which panes are alive, besides the pane-died hook: tmux's own exit
/// report is not always reliable.
const RECONCILE_EVERY: Duration = Duration::from_secs(2);
/// How often the control window's table is redrawn and timeouts are checked.
const TICK_EVERY: Duration = Duration::from_secs(1);

/// One agent running in a pane: a task's attempt, or the planner's.
#[derive(Debug, Clone)]
pub(super) struct Live {
    pub attempt: u32,
    pub dir: PathBuf,
    pub pane: String,
    pub pid: u32,
    pub last_activity: Instant,
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
    /// Running task attempts.
    pub live: HashMap<TaskId, Live>,
    /// The planner's running attempt.
    pub planner: Option<Live>,
    /// Problems of the last refused plan, for the next attempt's prompt.
    pub planner_feedback: Vec<String>,
    /// Files written during planning, checked against the specs once the plan is known.
    pub planning_writes: BTreeMap<String, ChangeSeen>,
    /// First write of each owned file (ms), for TDD evidence.
    pub first_writes: BTreeMap<String, u64>,
    pub exe: PathBuf,
    /// Set when `orch down` asked the engine to stop (rather than an interrupt).
    pub stop_requested: bool,
    /// Where to crash on purpose (`ORCH_ENGINE_CRASH`, for tests).
    pub crash: Option<CrashPoint>,
    /// Set once the engine left the run to a later `orch resume` (see `detach`).
    pub detached: bool,
    /// Attempt directories whose pane was seen gone without an exit record, and since when.
    pub gone_since: HashMap<PathBuf, Instant>,
    _lock: EngineLock,
}

#[derive(Debug, Clone)]
pub(super) struct ChangeSeen {
    pub change: &'static str,
}

/// Runs the engine for the run in `run_dir` until the run ends or is interrupted.
pub fn start(run_dir: &Path) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the engine's runtime")?;
    runtime.block_on(async {
        let (mut engine, fs_rx, dir_rx) = Engine::open(run_dir)?;
        let result = engine.run(fs_rx, dir_rx).await;
        match &result {
            // Detached: the run goes on without an engine, and the window is gone.
            Ok(None) => {}
            Ok(Some(outcome)) => engine.render_final(Ok(*outcome)),
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
    fn open(
        run_dir: &Path,
    ) -> anyhow::Result<(
        Engine,
        UnboundedReceiver<FsChange>,
        UnboundedReceiver<PathBuf>,
    )> {
        let dir = RunDir::open(run_dir)?;
        let info = RunInfo::read(&dir.run_json())?;
        let project = Project::discover(&info.project_root, None)?;
        let config = crate::config::load(&dir.config())?;
        let lock = EngineLock::acquire(&project.state_dir(), &info.run_id)?;
        let records = crate::state::read_journal(&dir.events())?;
        for warning in &records.warnings {
            eprintln!("warning: {warning}");
        }
        let state = RunState::replay(&records.records);
        let journal = Journal::open(&dir.events())?;
        if let Some(repaired) = journal.repaired() {
            eprintln!("warning: {repaired}");
        }
        let crash = CrashPoint::from_env(state.engine_pid.is_none())?;
        let tmux: Arc<dyn Tmux> =
            Arc::new(RealTmux::new(info.socket.clone(), info.tmux_config.clone()));
        let layout = crate::layout::Layout::load(&info.layout, &project.root)?;
        let (fs_tx, fs_rx) = unbounded_channel();
        let (dir_tx, dir_rx) = unbounded_channel();
        let dir_watcher = DirWatcher::new(dir_tx)?;
        let ignore = crate::watch::Ignore::new(&project.root, &config.ownership.ignore)?;
        let tree_watcher = Some(TreeWatcher::start(&project.root, ignore.clone(), fs_tx)?);
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
            ignore,
            live: HashMap::new(),
            planner: None,
            planner_feedback: Vec::new(),
            planning_writes: BTreeMap::new(),
            first_writes: BTreeMap::new(),
            stop_requested: false,
            crash,
            detached: false,
            gone_since: HashMap::new(),
            _lock: lock,
        };
        Ok((engine, fs_rx, dir_rx))
    }

    /// Journals `event`, then applies it to the state.
    pub fn record(&mut self, event: Event) -> anyhow::Result<Record> {
        if let Some(crash) = &mut self.crash {
            crash.check(When::Before, &event);
        }
        let record = self.journal.append(event)?;
        if let Some(crash) = &mut self.crash {
            crash.check(When::After, &record.event);
        }
        self.state.apply(&record);
        Ok(record)
    }

    /// Runs the loop until the run ends (its outcome), or the engine detaches from it (`None`).
    async fn run(
        &mut self,
        mut fs_rx: UnboundedReceiver<FsChange>,
        mut dir_rx: UnboundedReceiver<PathBuf>,
    ) -> anyhow::Result<Option<Outcome>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let mut tick = tokio::time::interval(TICK_EVERY);
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);

        self.begin()?;
        loop {
            if self.detached {
                return Ok(None);
            }
            if let Phase::Finished(outcome) = self.state.phase {
                return Ok(Some(outcome));
            }
            tokio::select! {
                Some(change) = fs_rx.recv() => self.on_fs(change)?,
                Some(path) = dir_rx.recv() => self.on_run_file(&path)?,
                _ = tick.tick() => {
                    self.check_timeouts()?;
                    self.render();
                }
                _ = reconcile.tick() => self.reconcile_if_tmux()?,
                _ = sigint.recv() => self.interrupt("interrupted (Ctrl-C)")?,
                _ = sigterm.recv() => self.interrupt("terminated (SIGTERM)")?,
                _ = sighup.recv() => self.detach("its window was closed, or its tmux server died")?,
            }
        }
    }

    fn begin(&mut self) -> anyhow::Result<()> {
        let resuming = self.check_resumable()?;
        // Resumed first: whoever sees this engine's start sees the run resumed too.
        if resuming {
            self.record(Event::RunResumed {})?;
        }
        self.record(Event::EngineStarted {
            pid: std::process::id(),
        })?;
        self.take_snapshot()?;
        self.set_hooks();
        if resuming {
            self.resume()
        } else {
            self.start_run()
        }
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
            eprintln!("warning: could not set the pane-died hook ({e}); relying on reconciliation");
        }
    }

    /// A file changed under the run directory: an exit record, a log growing, a hook marker.
    fn on_run_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.parent() == Some(self.dir.signals().as_path()) {
            return self.reconcile_if_tmux();
        }
        if name == "exit.json" {
            return self.on_exit_file(path);
        }
        if name == "output.log" {
            self.touch_activity(path.parent().unwrap_or(path));
        }
        Ok(())
    }

    /// Reconciles with tmux, unless tmux is gone: then nothing it shows is the agents' doing,
    /// and the engine detaches (see `detach`).
    fn reconcile_if_tmux(&mut self) -> anyhow::Result<()> {
        if self.tmux_lost() {
            return self.detach("its tmux session is gone");
        }
        self.reconcile()
    }

    fn touch_activity(&mut self, attempt_dir: &Path) {
        let now = Instant::now();
        for live in self.live.values_mut() {
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
    fn interrupt(&mut self, why: &str) -> anyhow::Result<()> {
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
        if self.state.phase != Phase::Running || !self.settled() {
            return Ok(());
        }
        self.sweep()?;
        let failed: Vec<String> = self
            .state
            .tasks
            .values()
            .filter(|t| t.state != crate::state::TaskStatus::Done)
            .map(|t| t.id.to_string())
            .collect();
        let (outcome, reason) = if failed.is_empty() {
            (Outcome::Succeeded, None)
        } else {
            (
                Outcome::Failed,
                Some(format!("task(s) not done: {}", failed.join(", "))),
            )
        };
        self.record(Event::RunFinished { outcome, reason })?;
        Ok(())
    }

    pub fn render(&self) {
        let header = self.header();
        let table = ui::table(&self.state, &self.dir, ui::now_ms());
        // Clear the screen and home the cursor, then redraw: the control window is ours. A
        // window that is gone fails the write, which must not bring the engine down.
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\x1b[H\x1b[2J{header}\n{table}").and_then(|()| out.flush());
    }

    fn header(&self) -> String {
        let phase = match self.state.phase {
            Phase::Planning => format!("planning (attempt {})", self.state.planning_attempt()),
            other => other.name().to_string(),
        };
        format!(
            "orch · run {} · {} · {}\nattach: orch attach · detach: C-b d · stop: orch down\n",
            self.info.run_id, self.info.session, phase
        )
    }

    fn render_final(&self, outcome: Result<Outcome, &anyhow::Error>) {
        self.render();
        let message = match outcome {
            Ok(outcome @ (Outcome::Interrupted | Outcome::Stopped)) => format!(
                "run {}: {outcome}. `orch resume` continues it; `orch down` closes this session.",
                self.info.run_id
            ),
            Ok(outcome) => format!(
                "run {}: {}. Its files are in {}. `orch down` closes this session.",
                self.info.run_id,
                outcome.name(),
                self.project.display(self.dir.path())
            ),
            Err(e) => format!(
                "the engine stopped on an error: {e:#}\nthe agents keep running; once the cause \
                 is fixed, `orch resume` continues the run (`orch down` stops it)"
            ),
        };
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), "\n{message}");
    }
}
