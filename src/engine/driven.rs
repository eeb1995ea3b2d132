//! `Driven`: the engine driven input by input, for its unit tests. The test hands
//! `Engine::handle` each input itself — an exit record, a change in the project, a stop —
//! on a `FakeTmux` whose launches are answered inline (see launch.rs), with no watcher and no
//! thread: what happens after an input is decided when `handle` returns. The work the engine
//! leaves itself (tmux's answers, launches, leftovers, gate results) is handed back to it by
//! `settle`, in the loop's order, unless the test takes those inputs one by one.
//!
//! A test reads as the run: `let a = run.next_agent(); run.work(&a); run.pass_judge();`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::core::{Engine, Options};
use super::event_loop::{Input, Inputs, Stop};
use super::fake_run::{Agent, agent_in, new_run, write_exit};
use super::launch::Launching;
use crate::state::{Event, Outcome, Phase, Record, RunDir};
use crate::tmux::{FakeTmux, Tmux};
use crate::watch::{ChangeKind, FsChange};

/// How long gate commands may take (they run in the background, as in a run).
const GATE_DEADLINE: Duration = Duration::from_secs(20);

pub(super) struct Driven {
    pub project: tempfile::TempDir,
    pub dir: RunDir,
    pub tmux: Arc<FakeTmux>,
    pub engine: Engine,
    gates: UnboundedReceiver<super::core::GateDone>,
    runtime: tokio::runtime::Runtime,
    /// Panes already handed to the test by `next_agent`.
    seen: Vec<String>,
    /// When the test's last write was made (ms), so that the next comes after it.
    last_write_ms: u64,
}

impl Driven {
    /// An engine begun on a new run of `plan` (JSON; `None`: it starts with the planner),
    /// everything it asked for done.
    pub(super) fn start(config: &str, plan: Option<&str>, files: &[(&str, &str)]) -> Driven {
        let (project, dir, tmux) = new_run("build it", config, plan, files);
        let mut run = Self::open(project, dir, tmux);
        run.engine.begin().expect("the engine begins");
        run.settle();
        run
    }

    pub(super) fn open(project: tempfile::TempDir, dir: RunDir, tmux: Arc<FakeTmux>) -> Driven {
        // Gate commands run as tokio tasks: on this runtime, while a test waits for them.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let engine_tmux: Arc<dyn Tmux> = tmux.clone();
        let (_stops, stop_rx) = unbounded_channel();
        let options = Options {
            launching: Launching::Inline,
            watchers: false,
            committing: super::committer::Committing::Inline,
        };
        let (mut engine, inputs) =
            Engine::open_with(dir.path(), |_| engine_tmux, stop_rx, options).expect("opened");
        engine.draw = false;
        engine.crash = None;
        let Inputs { gates, .. } = inputs;
        let seen = std::iter::once("control".to_string())
            .chain(tmux.panes().into_iter().map(|p| p.pane_id))
            .collect();
        Driven {
            project,
            dir,
            tmux,
            engine,
            gates,
            runtime,
            seen,
            last_write_ms: 0,
        }
    }

    /// The engine ended (a hangup, say), and `orch resume` starts another on the run.
    pub(super) fn resume(self) -> Driven {
        let Driven {
            project,
            dir,
            tmux,
            engine,
            ..
        } = self;
        drop(engine); // its lock
        let mut run = Self::open(project, dir, tmux);
        run.engine.begin().expect("the engine resumes");
        run.settle();
        run
    }

    pub(super) fn root(&self) -> PathBuf {
        self.project.path().canonicalize().unwrap()
    }

    /// Hands the engine one input.
    pub(super) fn handle(&mut self, input: Input) {
        let _runtime = self.runtime.enter();
        self.engine
            .handle(input)
            .expect("the engine handles the input");
    }

    /// The inputs the engine left itself, handed back until none is left, as the loop's
    /// chooser orders them: tmux's answers, leftovers, gate results (waited for), launches.
    pub(super) fn settle(&mut self) {
        loop {
            if self.engine.ended().is_some() {
                return;
            }
            if let Some(launched) = self.engine.launcher.try_answer() {
                self.handle(Input::Launched(launched));
            } else if self.engine.sched.leftovers_due() {
                self.handle(Input::LeftoversDue);
            } else if self.engine.checks.busy() {
                let done = self.runtime.block_on(async {
                    tokio::time::timeout(GATE_DEADLINE, self.gates.recv()).await
                });
                let done = done.expect("the gates to finish").expect("gates channel");
                self.handle(Input::GatesDone(done));
            } else if self.engine.sched.launch_wanted() {
                self.handle(Input::LaunchStep);
            } else {
                return;
            }
        }
    }

    /// The next agent the engine started, in the order it started them.
    pub(super) fn next_agent(&mut self) -> Agent {
        let pane = self
            .tmux
            .panes()
            .into_iter()
            .find(|p| !self.seen.contains(&p.pane_id))
            .unwrap_or_else(|| panic!("no new agent\n{}", self.dump()));
        self.seen.push(pane.pane_id.clone());
        agent_in(pane)
    }

    /// Writes `files` into the project and hands the engine each change, as its watcher
    /// would.
    pub(super) fn write(&mut self, files: &[(&str, &str)]) {
        for (path, text) in files {
            let full = self.root().join(path);
            let existed = full.exists();
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, text).unwrap();
            let kind = if existed {
                ChangeKind::Modified
            } else {
                ChangeKind::Created
            };
            let at = self.moment();
            std::fs::File::options()
                .write(true)
                .open(&full)
                .and_then(|f| f.set_modified(at))
                .unwrap();
            self.handle(Input::Fs(FsChange {
                path: path.to_string(),
                kind,
                at,
            }));
        }
        self.settle();
    }

    /// A moment for a change made now: after everything journaled and written so far, as a
    /// real agent's change would be. A change in the very millisecond the plan was accepted
    /// counts as the planner's (see ownership.rs), and two writes in one millisecond leave
    /// their order to chance (the tdd gate's first writes), which a fast test must not hit.
    pub(super) fn moment(&mut self) -> SystemTime {
        let last = self
            .journal()
            .last()
            .map_or(0, |r| r.t)
            .max(self.last_write_ms);
        let after = std::time::UNIX_EPOCH + std::time::Duration::from_millis(last + 1);
        let at = SystemTime::now().max(after);
        self.last_write_ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        at
    }

    /// The agent's exit record, written and handed to the engine; then what follows settled.
    pub(super) fn exit(&mut self, agent: &Agent, code: i32, stdout: &str) {
        let now = crate::state::now_ms();
        write_exit(agent, code, stdout, (now, now));
        self.handle(Input::RunFile(agent.dir.join("exit.json")));
        self.settle();
    }

    /// The worker writes its two files (`tests/<task>_test.txt`, `<task>.txt`) and exits 0.
    pub(super) fn work(&mut self, agent: &Agent) {
        assert_eq!(agent.role, "worker", "{agent:?}");
        let test = format!("tests/{}_test.txt", agent.task);
        let main = format!("{}.txt", agent.task);
        self.write(&[(&test, "test"), (&main, "done")]);
        self.exit(agent, 0, "wrote my files\n");
    }

    /// The next agent is the judge, and it passes every task it was asked about.
    pub(super) fn pass_judge(&mut self) {
        let judge = self.next_agent();
        assert_eq!(judge.role, "judge", "{judge:?}\n{}", self.dump());
        self.exit(&judge, 0, r#"{"verdict": "pass", "tasks": []}"#);
    }

    pub(super) fn stop(&mut self, stop: Stop) {
        self.handle(Input::Stop(stop));
        self.settle();
    }

    /// How the run ended, if it did.
    pub(super) fn outcome(&self) -> Option<Outcome> {
        match self.engine.state.phase {
            Phase::Finished(outcome) => Some(outcome),
            _ => None,
        }
    }

    pub(super) fn journal(&self) -> Vec<Record> {
        crate::state::read_journal(&self.dir.events())
            .map(|r| r.records)
            .unwrap_or_default()
    }

    /// The journal's events, by name (`task_started`, ...), in order.
    pub(super) fn names(&self) -> Vec<String> {
        self.journal()
            .iter()
            .map(|r| {
                serde_json::to_value(&r.event).unwrap()["event"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string()
            })
            .collect()
    }

    /// The first event that `matches`.
    pub(super) fn find(&self, matches: impl Fn(&Event) -> bool) -> Option<Event> {
        self.journal().into_iter().map(|r| r.event).find(matches)
    }

    pub(super) fn dump(&self) -> String {
        super::fake_run::dump(&self.tmux, &self.dir)
    }
}
