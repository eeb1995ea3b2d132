//! `Up`: the one harness for a test of a run. A throwaway project, the private tmux server its
//! runs use (killed when the test ends) and, for the real agent CLIs, the scripted model server
//! and the CLIs' homes; the commands a test of a run needs (`up`, `wait`, `resume`,
//! `status --json`, the journal, the run directory) and, on every failure, the diagnostics:
//! every pane's screen, the journal, the agents' `counts/` and the model server's transcript.
//!
//! What differs between tests is said with [`Options`](super::Options).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::agent_clis::Homes;
use super::model_server::ModelServer;
use super::{Options, Orch, Output, PrivateServer, TestProject, Tmux as _};

/// Long enough for anything on a loaded machine; a passing test never waits for it.
pub(crate) const LONG: Duration = Duration::from_secs(60);

/// A project, the private tmux server its runs use, and what the options said.
pub(crate) struct Up {
    pub p: TestProject,
    pub server: PrivateServer,
    model: Option<ModelServer>,
    _homes: Option<Homes>,
    env: Vec<(String, OsString)>,
    request: String,
    wait_timeout: Duration,
}

impl Up {
    pub(super) fn from_parts(
        p: TestProject,
        server: PrivateServer,
        real_clis: Option<(ModelServer, Homes)>,
        env: Vec<(String, OsString)>,
        request: String,
        wait_timeout: Duration,
    ) -> Up {
        let (model, homes) = real_clis.unzip();
        Up {
            p,
            server,
            model,
            _homes: homes,
            env,
            request,
            wait_timeout,
        }
    }

    /// A project with `config` as its `orch.yaml` (`Options::new(name).config(config)`).
    pub(crate) fn new(name: &str, config: &str) -> Up {
        Options::new(name).config(config).start()
    }

    /// `orch` in the project, on its tmux server, with the options' environment.
    pub(crate) fn orch(&self) -> Orch {
        let mut orch = self
            .p
            .orch()
            .env_remove("ORCH_ENGINE_CRASH")
            .env("ORCH_TMUX_SOCKET", self.server.socket_name())
            .env("ORCH_TMUX_CONFIG", "/dev/null");
        for (key, value) in &self.env {
            orch = orch.env(key, value);
        }
        orch
    }

    /// `orch up ARGS --detach`, with `ORCH_SCRIPTED_FAULT` set to `fault` if given.
    pub(crate) fn up(&self, args: &[&str], fault: Option<&str>) -> Output {
        let mut orch = self.orch().args(["up"]).args(args).args(["--detach"]);
        if let Some(fault) = fault {
            orch = orch.env("ORCH_SCRIPTED_FAULT", fault);
        }
        orch.run()
    }

    /// `orch up REQUEST --plan plan.json --detach`, which must start the run.
    pub(crate) fn start(&self) {
        self.start_with(true, &[]);
    }

    /// `orch up REQUEST --detach`, given `plan.json` or not (then the planner plans), with
    /// `env` too; it must start the run.
    pub(crate) fn start_with(&self, plan: bool, env: &[(&str, &str)]) {
        let mut orch = self.orch().args(["up", self.request.as_str(), "--detach"]);
        if plan {
            orch = orch.args(["--plan", "plan.json"]);
        }
        for (k, v) in env {
            orch = orch.env(k, v);
        }
        let up = orch.run();
        assert!(
            up.code() == 0 && up.stdout().contains("started in tmux session"),
            "orch up: {}{}\n{}",
            up.stdout(),
            up.stderr(),
            self.diagnostics()
        );
    }

    /// `orch resume --detach`, which must succeed.
    pub(crate) fn resume(&self) -> Output {
        let run = self.orch().args(["resume", "--detach"]).run();
        assert_eq!(
            run.code(),
            0,
            "orch resume: {}{}\n{}",
            run.stdout(),
            run.stderr(),
            self.diagnostics()
        );
        run
    }

    /// `orch wait`, which must exit with `code`; returns how long it took.
    pub(crate) fn wait(&self, code: i32) -> Duration {
        let start = Instant::now();
        self.wait_until_exit(|got| got == code, &format!("exit {code}"));
        start.elapsed()
    }

    /// `orch wait`, which must say the run ended (succeeded or failed); returns its exit code.
    pub(crate) fn wait_for_end(&self) -> i32 {
        self.wait_until_exit(|got| got == 0 || got == 1, "exit 0 or 1")
    }

    fn wait_until_exit(&self, expected: impl Fn(i32) -> bool, what: &str) -> i32 {
        let timeout = self.wait_timeout.as_secs().to_string();
        let run = self.orch().args(["wait", "--timeout", &timeout]).run();
        assert!(
            expected(run.code()),
            "orch wait: exit {}, expected {what}\n{}{}\n{}",
            run.code(),
            run.stdout(),
            run.stderr(),
            self.diagnostics()
        );
        run.code()
    }

    /// `start` then `wait(code)`.
    pub(crate) fn run(&self, code: i32) {
        self.start();
        self.wait(code);
    }

    pub(crate) fn session(&self) -> String {
        self.p.session()
    }

    /// The run's directory (the current run's, or the only one).
    pub(crate) fn run_dir(&self) -> PathBuf {
        if let Ok(id) = std::fs::read_to_string(self.p.path(".orch/current")) {
            return self.p.path(&format!(".orch/runs/{}", id.trim()));
        }
        std::fs::read_dir(self.p.path(".orch/runs"))
            .unwrap_or_else(|e| panic!("no run directory: {e}\n{}", self.diagnostics()))
            .next()
            .expect("a run directory")
            .unwrap()
            .path()
    }

    /// Where the run's agents work: its worktree (a run on a branch, as `run.json` says), else
    /// the project itself.
    pub(crate) fn work_dir(&self) -> PathBuf {
        let info = std::fs::read_to_string(self.run_dir().join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        match info.as_ref().and_then(|i| i["workspace"]["path"].as_str()) {
            Some(path) => PathBuf::from(path),
            None => self.p.root(),
        }
    }

    /// A path where the run's agents work (`rel` to it).
    pub(crate) fn work_path(&self, rel: &str) -> PathBuf {
        self.work_dir().join(rel)
    }

    /// The run's `workspace` record of `run.json` (null for a run in place).
    pub(crate) fn workspace(&self) -> Value {
        let text = self.run_file("run.json");
        serde_json::from_str::<Value>(&text).unwrap()["workspace"].clone()
    }

    /// The directory of attempt `n` of task `task`.
    pub(crate) fn attempt(&self, task: &str, n: u32) -> PathBuf {
        self.run_dir().join(format!("tasks/{task}/{n}"))
    }

    /// A file of the run directory (`rel` to it), which must exist.
    pub(crate) fn run_file(&self, rel: &str) -> String {
        let path = self.run_dir().join(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}\n{}",
                path.display(),
                self.diagnostics()
            )
        })
    }

    /// How many runs the project has had.
    pub(crate) fn run_count(&self) -> usize {
        std::fs::read_dir(self.p.path(".orch/runs")).map_or(0, std::iter::Iterator::count)
    }

    /// Every run's journal, one after the other.
    pub(crate) fn journal(&self) -> String {
        let runs = self.p.path(".orch/runs");
        let mut out = String::new();
        for run in std::fs::read_dir(runs).into_iter().flatten().flatten() {
            out.push_str(
                &std::fs::read_to_string(run.path().join("events.jsonl")).unwrap_or_default(),
            );
        }
        out
    }

    /// The journal's events, in order.
    pub(crate) fn journal_events(&self) -> Vec<Value> {
        self.journal()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// Events in journal order, as (event name, task id).
    pub(crate) fn events(&self) -> Vec<(String, String)> {
        self.journal_events()
            .iter()
            .map(|v| {
                (
                    v["event"].as_str().unwrap_or("").to_string(),
                    v["task"].to_string().trim_matches('"').to_string(),
                )
            })
            .collect()
    }

    /// The journal's event names, in order.
    pub(crate) fn event_names(&self) -> Vec<String> {
        self.events().into_iter().map(|(event, _)| event).collect()
    }

    /// The model server of a run of the real CLIs.
    pub(crate) fn model(&self) -> &ModelServer {
        self.model
            .as_ref()
            .expect("a model server: Options::real_clis")
    }

    /// Every pane's screen, the agents' `counts/`, the journal and the model server's
    /// transcript: what a failure message shows.
    pub(crate) fn diagnostics(&self) -> String {
        let mut out = super::session_diagnostics(self.server.tmux(), &self.session());
        let counts = self.p.path("counts");
        if counts.is_dir() {
            out.push_str("\n--- counts\n");
            for entry in std::fs::read_dir(counts).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                out.push_str(&format!("{:?}: {}", entry.file_name(), text));
            }
        }
        out.push_str(&format!("\n--- journal\n{}", self.journal()));
        if let Some(model) = &self.model {
            out.push_str(&format!("\n--- model server\n{}", model.transcript()));
        }
        out
    }

    /// Waits until `cond` holds (for at most [`LONG`]), showing the diagnostics if it never does.
    pub(crate) fn wait_until(&self, what: &str, cond: impl FnMut() -> bool) {
        super::wait_until(what, LONG, cond, || self.diagnostics());
    }

    pub(crate) fn status(&self) -> Value {
        let run = self.orch().args(["status", "--json"]).run().expect(0);
        serde_json::from_str(&run.stdout()).unwrap()
    }

    /// Task `id` of a `status --json`.
    pub(crate) fn task<'a>(status: &'a Value, id: &str) -> &'a Value {
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"].to_string().trim_matches('"') == id)
            .unwrap_or_else(|| panic!("no task {id} in {status:#}"))
    }

    /// Each task's (id, state, attempts) and the run's phase, for a compact assertion.
    pub(crate) fn outcome(&self) -> (String, Vec<(String, String, u64)>) {
        let status = self.status();
        let tasks = status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap().to_string(),
                    t["state"].as_str().unwrap().to_string(),
                    t["attempts"].as_u64().unwrap(),
                )
            })
            .collect();
        (status["phase"].as_str().unwrap().to_string(), tasks)
    }

    /// What the pane of window `window` shows.
    pub(crate) fn pane(&self, window: &str) -> String {
        let tmux = self.server.tmux();
        let panes = tmux.list_panes(&self.session()).unwrap();
        let pane = panes
            .iter()
            .find(|p| p.window_name == window)
            .unwrap_or_else(|| panic!("no window {window}\n{}", self.diagnostics()));
        tmux.capture_pane(&pane.pane_id).unwrap()
    }

    /// The pane running the engine (the `control` window's first pane).
    pub(crate) fn control_pane(&self) -> String {
        let panes = self.server.tmux().list_panes(&self.session()).unwrap();
        panes
            .iter()
            .find(|p| p.window_name == "control" && p.start_command.contains(" engine "))
            .unwrap_or_else(|| panic!("no control pane in {panes:?}"))
            .pane_id
            .clone()
    }

    /// Runs a tmux command on the project's server.
    pub(crate) fn tmux(&self, args: &[&str]) {
        let status = std::process::Command::new("tmux")
            .args(["-L", self.server.socket_name()])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "tmux {args:?}");
    }

    /// The live engine's pid.
    pub(crate) fn engine_pid(&self) -> i32 {
        let status = self.status();
        assert_eq!(
            status["engine_alive"],
            true,
            "{status:#}\n{}",
            self.diagnostics()
        );
        status["engine_pid"].as_i64().unwrap() as i32
    }

    /// SIGKILLs the engine and waits until the project lock says it is gone.
    pub(crate) fn kill_engine(&self) {
        let pid = self.engine_pid();
        // SAFETY: kill(2) only sends a signal.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        self.wait_for_engine_gone();
    }

    pub(crate) fn wait_for_engine_gone(&self) {
        self.wait_until("the engine to be gone", || {
            let status = self.status();
            status["engine_alive"] == false && status["resumable"] == true
        });
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // Stop whatever is left (agents included) before the server goes.
        let _ = self.orch().args(["down"]).run();
    }
}
