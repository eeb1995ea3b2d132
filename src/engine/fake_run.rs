//! `FakeRun`: the engine on a `FakeTmux`, for unit tests of the engine. Nothing runs in the
//! fake's panes: the test plays every agent, writing its files, its answer and its exit
//! record as `orch agent-run` would. The project, the run directory and the file watchers
//! are real (in a temporary directory), so the engine sees what it sees in production.
//!
//! Waits are on conditions with a deadline; on timeout they panic with the fake's panes
//! and the run's journal.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::core::Engine;
use super::event_loop::Stop;
use crate::agent_process::run::ExitRecord;
use crate::state::{Event, Outcome, Record, RunDir, RunInfo};
use crate::tmux::{FakePane, FakeTmux, Tmux};
use crate::watch::FsChange;

/// How long any wait of a test may take before it fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// An agent the engine started in a pane of the fake: the test decides what it does.
#[derive(Debug, Clone)]
pub(super) struct Agent {
    pub pane: FakePane,
    /// Its attempt directory (launcher, logs, exit record).
    pub dir: PathBuf,
    /// `planner`, `worker`, `judge` or `oracle`.
    pub role: String,
    /// Its task, for a worker or an oracle.
    pub task: String,
}

pub(super) struct FakeRun {
    pub project: tempfile::TempDir,
    pub dir: RunDir,
    pub tmux: Arc<FakeTmux>,
    feeds: Feeds,
    engine: Option<EngineThread>,
    /// Panes already handed to the test by `next_agent`.
    seen: Vec<String>,
    /// Holds back the project watcher's changes while closed.
    watcher_gate: Gate,
}

impl FakeRun {
    /// Starts an engine on a new run of `plan` (JSON), in a project with `config` as its
    /// `orch.yaml` and `files` in it.
    pub(super) fn start(config: &str, plan: &str, files: &[(&str, &str)]) -> FakeRun {
        Self::start_with("build it", config, plan, files, |_| {})
    }

    /// `start`, with the run's request, and `prepare` called on the fake before the engine
    /// starts (to make a call fail, say).
    pub(super) fn start_with(
        request: &str,
        config: &str,
        plan: &str,
        files: &[(&str, &str)],
        prepare: impl FnOnce(&FakeTmux),
    ) -> FakeRun {
        Self::launch(request, config, Some(plan), files, prepare)
    }

    /// Starts an engine on a new run with no plan given: it starts with the planner.
    pub(super) fn start_planning(config: &str, files: &[(&str, &str)]) -> FakeRun {
        Self::launch("build it", config, None, files, |_| {})
    }

    fn launch(
        request: &str,
        config: &str,
        plan: Option<&str>,
        files: &[(&str, &str)],
        prepare: impl FnOnce(&FakeTmux),
    ) -> FakeRun {
        let (project, dir, tmux) = new_run(request, config, plan, files);
        prepare(&tmux);
        let watcher_gate = Gate::default();
        let (engine, feeds) = spawn_engine(dir.path(), tmux.clone(), watcher_gate.clone());
        FakeRun {
            project,
            dir,
            tmux,
            feeds,
            engine: Some(engine),
            seen: vec!["control".into()],
            watcher_gate,
        }
    }

    pub(super) fn root(&self) -> PathBuf {
        self.project.path().canonicalize().unwrap()
    }

    /// Asks the engine to stop, as a signal would.
    pub(super) fn stop(&self, stop: Stop) {
        let _ = self.feeds.stops.send(stop);
    }

    /// Starts a new engine on the run once the last one ended, as `orch resume` does.
    pub(super) fn resume(&mut self) {
        assert!(
            self.engine
                .as_ref()
                .is_none_or(std::thread::JoinHandle::is_finished),
            "the engine still runs"
        );
        let (engine, feeds) = spawn_engine(
            self.dir.path(),
            self.tmux.clone(),
            self.watcher_gate.clone(),
        );
        self.engine = Some(engine);
        self.feeds = feeds;
    }

    /// From now on, the project watcher's changes reach the engine only once released, as
    /// from a watcher that lags behind; the paths it reported meanwhile are returned by
    /// `held_changes`.
    pub(super) fn hold_project_changes(&self) {
        self.watcher_gate.set(true);
    }

    pub(super) fn release_project_changes(&self) {
        self.watcher_gate.set(false);
    }

    /// The paths of the changes held back so far.
    pub(super) fn held_changes(&self) -> Vec<String> {
        self.watcher_gate.0.lock().unwrap().held.clone()
    }

    /// Hands the engine a change in the project, as if its watcher had seen it.
    pub(super) fn inject(&self, change: FsChange) {
        self.feeds
            .fs
            .send(change)
            .expect("the engine's loop is gone");
    }

    /// Hands the engine a file of the run directory, as if its watcher had seen it change.
    pub(super) fn inject_run_file(&self, path: PathBuf) {
        let sent = self.feeds.run_files.send(path);
        sent.expect("the engine's loop is gone");
    }

    /// The next agent the engine starts (in the order it started them).
    pub(super) fn next_agent(&mut self) -> Agent {
        let seen = self.seen.clone();
        let pane = self.wait_for("the engine to start an agent", |run| {
            run.tmux
                .panes()
                .into_iter()
                .find(|p| !seen.contains(&p.pane_id) && p.spec.name != "control")
        });
        self.seen.push(pane.pane_id.clone());
        agent_in(pane)
    }

    /// Writes `files` into the project, as the agent would.
    pub(super) fn write(&self, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = self.root().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    /// The agent prints `stdout` and exits with `code`: its logs, then its exit record,
    /// renamed into place as `agent-run` does.
    pub(super) fn exit(&self, agent: &Agent, code: i32, stdout: &str) {
        let now = crate::state::now_ms();
        self.exit_at(agent, code, stdout, (now, now));
    }

    /// `exit`, with the agent's start and end times (ms since the epoch) in its record.
    pub(super) fn exit_at(&self, agent: &Agent, code: i32, stdout: &str, times: (u64, u64)) {
        write_exit(agent, code, stdout, times);
    }

    /// A judge that passes every task it was asked about.
    pub(super) fn pass(&self, judge: &Agent) {
        assert_eq!(judge.role, "judge", "{judge:?}");
        self.exit(judge, 0, r#"{"verdict": "pass", "tasks": []}"#);
    }

    /// The journal so far.
    pub(super) fn journal(&self) -> Vec<Record> {
        crate::state::read_journal(&self.dir.events())
            .map(|r| r.records)
            .unwrap_or_default()
    }

    /// Waits for a journal entry that `matches`, and returns it.
    pub(super) fn wait_event(&self, what: &str, matches: impl Fn(&Event) -> bool) -> Event {
        self.wait_for(what, |run| {
            run.journal().into_iter().map(|r| r.event).find(&matches)
        })
    }

    /// Waits until the engine's loop ends, and returns how the run ended.
    pub(super) fn outcome(&mut self) -> Option<Outcome> {
        let finished = |run: &FakeRun| {
            let engine = run.engine.as_ref().expect("the engine was already joined");
            engine.is_finished().then_some(())
        };
        self.wait_for("the engine to end", finished);
        let engine = self.engine.take().expect("the engine was already joined");
        engine
            .join()
            .expect("the engine panicked")
            .expect("the engine failed")
    }

    /// Polls `found` (an in-memory fake and a small journal: cheap) until it gives a value.
    pub(super) fn wait_for<T>(&self, what: &str, found: impl Fn(&FakeRun) -> Option<T>) -> T {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(value) = found(self) {
                return value;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}\n{}", self.dump());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The fake's panes and the journal, for a failure message.
    pub(super) fn dump(&self) -> String {
        dump(&self.tmux, &self.dir)
    }

    /// A file of the project.
    pub(super) fn read(&self, path: impl AsRef<Path>) -> Option<String> {
        std::fs::read_to_string(self.root().join(path)).ok()
    }
}

/// A new run of `plan` (JSON; `None`: the planner makes it) in a temporary project with
/// `config` as its `orch.yaml` and `files` in it, and its session on a new fake tmux, as
/// `orch up` leaves them for the engine.
pub(super) fn new_run(
    request: &str,
    config: &str,
    plan: Option<&str>,
    files: &[(&str, &str)],
) -> (tempfile::TempDir, RunDir, Arc<FakeTmux>) {
    let project = tempfile::tempdir().expect("a temporary project");
    let root = project.path().canonicalize().unwrap();
    std::fs::write(root.join("orch.yaml"), config).unwrap();
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let parsed = crate::config::parse(config, &root.join("orch.yaml")).expect("the config");
    let plan = plan.map(|plan| {
        let value = crate::plan::extract_plan(plan).expect("a plan");
        crate::plan::parse_and_validate(&value, &root, &parsed.roles.workers).expect("a valid plan")
    });
    let info = RunInfo {
        run_id: crate::project::new_id(),
        request: request.into(),
        session: "orch-fake".into(),
        socket: None,
        socket_path: None,
        tmux_config: None,
        layout: "windows".into(),
        project_root: root.clone(),
        created_at_ms: crate::state::now_ms(),
        plan_given: plan.is_some(),
        orch_version: "test".into(),
        workspace: None,
        review: false,
    };
    let dir = crate::state::create_run(&root.join(".orch"), &info, config, plan.as_ref())
        .expect("the run directory");

    // The session exists before the engine starts, as `orch up` makes it.
    let tmux = Arc::new(FakeTmux::new());
    let control = crate::tmux::WindowSpec {
        name: "control".into(),
        cwd: root.clone(),
        argv: vec!["orch".into(), "engine".into()],
        env: vec![],
    };
    tmux.new_session(&info.session, &control, (200, 50))
        .expect("the fake session");
    (project, dir, tmux)
}

/// What an agent whose pane is `pane` is (its role, its task, its directory), from its
/// launch spec.
pub(super) fn agent_in(pane: FakePane) -> Agent {
    let script = PathBuf::from(&pane.spec.argv[1]);
    let dir = script.parent().unwrap().to_path_buf();
    let spec = crate::agent_process::launcher::LaunchSpec::read(
        &dir.join(crate::agent_process::launcher::SPEC_FILE),
    )
    .expect("the agent's launch spec");
    let var = |name: &str| {
        spec.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Agent {
        role: var("ORCH_ROLE"),
        task: var("ORCH_TASK_ID"),
        pane,
        dir,
    }
}

/// What `orch agent-run` leaves when its agent printed `stdout` and exited with `code`
/// between `started` and `ended`: its logs, then its exit record, renamed into place.
pub(super) fn write_exit(agent: &Agent, code: i32, stdout: &str, (started, ended): (u64, u64)) {
    std::fs::write(agent.dir.join("stdout.log"), stdout).unwrap();
    std::fs::write(agent.dir.join("output.log"), stdout).unwrap();
    let record = ExitRecord {
        code: Some(code),
        signal: None,
        started_at_ms: started,
        ended_at_ms: ended,
        failure: None,
        usage: None,
        session_id: None,
        sandbox_refused: Vec::new(),
        stopped_by: None,
    };
    let tmp = agent.dir.join("exit.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&record).unwrap()).unwrap();
    std::fs::rename(tmp, agent.dir.join("exit.json")).unwrap();
}

type EngineThread = std::thread::JoinHandle<anyhow::Result<Option<Outcome>>>;

/// An engine on the run in `dir`, in a thread of its own, with the stop requests and the
/// project's changes (the watcher's, forwarded, and the test's) coming through our channels.
fn spawn_engine(dir: &Path, tmux: Arc<FakeTmux>, gate: Gate) -> (EngineThread, Feeds) {
    let (stops, stop_rx) = unbounded_channel();
    let (fs, fs_rx) = unbounded_channel();
    let (run_files, run_files_rx) = unbounded_channel();
    let feeds = Feeds {
        stops,
        fs: fs.clone(),
        run_files: run_files.clone(),
    };
    let engine_tmux: Arc<dyn Tmux> = tmux;
    let path = dir.to_path_buf();
    let engine = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let (mut engine, mut inputs) = Engine::open(&path, |_| engine_tmux, stop_rx)?;
            forward_through(std::mem::replace(&mut inputs.fs, fs_rx), fs, gate);
            forward(
                std::mem::replace(&mut inputs.run_files, run_files_rx),
                run_files,
            );
            engine.draw = false;
            // A crash point in the test's environment (ORCH_ENGINE_CRASH, set when the
            // tests run inside an orch session) would kill the test process.
            engine.crash = None;
            engine.run(inputs).await
        })
    });
    (engine, feeds)
}

/// What the watchers send on `from` goes on to `to`, beside what the test sends there.
fn forward<T: Send + 'static>(mut from: UnboundedReceiver<T>, to: UnboundedSender<T>) {
    std::thread::spawn(move || {
        while let Some(item) = from.blocking_recv() {
            let _ = to.send(item);
        }
    });
}

/// `forward` for the project watcher's changes, through `gate`.
fn forward_through(
    mut from: UnboundedReceiver<FsChange>,
    to: UnboundedSender<FsChange>,
    gate: Gate,
) {
    {
        let mut state = gate.0.lock().unwrap();
        // An earlier engine's barriers mean nothing to this one, whose names start over.
        state
            .queue
            .retain(|c| c.kind != crate::watch::ChangeKind::Barrier);
        state.to = Some(to);
    }
    std::thread::spawn(move || {
        while let Some(change) = from.blocking_recv() {
            let mut state = gate.0.lock().unwrap();
            if state.closed {
                state.held.push(change.path.clone());
            }
            state.queue.push(change);
            state.flush();
        }
    });
}

/// Where the project watcher's changes wait while it is closed, in order.
#[derive(Clone, Default)]
struct Gate(Arc<Mutex<GateState>>);

#[derive(Default)]
struct GateState {
    closed: bool,
    /// The paths of the changes that waited.
    held: Vec<String>,
    queue: Vec<FsChange>,
    /// The engine's end: the last engine's, after a resume.
    to: Option<UnboundedSender<FsChange>>,
}

impl Gate {
    fn set(&self, closed: bool) {
        let mut state = self.0.lock().unwrap();
        state.closed = closed;
        state.flush();
    }
}

impl GateState {
    fn flush(&mut self) {
        if self.closed {
            return;
        }
        if let Some(to) = &self.to {
            for change in self.queue.drain(..) {
                let _ = to.send(change);
            }
        }
    }
}

/// The test's ends of the engine's inputs.
struct Feeds {
    stops: UnboundedSender<Stop>,
    fs: UnboundedSender<FsChange>,
    run_files: UnboundedSender<PathBuf>,
}

impl Drop for FakeRun {
    fn drop(&mut self) {
        self.watcher_gate.set(false);
        // An engine still running (a failed test) is told to stop, so that the thread ends.
        if let Some(engine) = self.engine.take() {
            let _ = self.feeds.stops.send(Stop::Interrupt);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !engine.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// The fake's panes and the run's journal, for a failure message.
pub(super) fn dump(tmux: &FakeTmux, dir: &RunDir) -> String {
    let mut out = String::from("--- panes\n");
    for pane in tmux.panes() {
        out.push_str(&format!(
            "{} {} dead={} {:?}\n",
            pane.pane_id, pane.spec.name, pane.dead, pane.spec.argv
        ));
    }
    out.push_str("--- journal\n");
    out.push_str(&std::fs::read_to_string(dir.events()).unwrap_or_default());
    out
}
