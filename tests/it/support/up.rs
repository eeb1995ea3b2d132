//! `Up`: the one harness for a test of a run. A throwaway project, the private tmux server its
//! runs use (killed when the test ends) and, for the real agent CLIs, the scripted model server
//! and the CLIs' homes; the commands a test of a run needs (`up`, `wait`, `resume`,
//! `status --json`, the journal, the run directory) and, on every failure, the diagnostics:
//! every pane's screen, the journal, the agents' `counts/` and the model server's transcript.
//!
//! What differs between tests is said with [`Options`]: the config (written out, a `kind:
//! command` worker made from a few knobs, or the real CLIs), the project's files, what every
//! `orch` command gets in its environment, and how long `orch wait` may take.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::agent_clis::Homes;
use super::model_server::ModelServer;
use super::{Orch, Output, PrivateServer, TestProject, Tmux as _, private_server};

/// Long enough for anything on a loaded machine; a passing test never waits for it.
pub const LONG: Duration = Duration::from_secs(60);

/// A config of `agents:`, `roles:` and `limits:` with the sample scripted agent in every role.
pub const SCRIPTED: &str = "\
agents:
  bot:
    kind: scripted
    sample: true
roles:
  planner: bot
  judge: bot
  workers: [bot]
limits:
  max_parallel: 4
  task_timeout: 60s
";

/// How to set up a test's project and its run; `Options::new(name).….start()` makes the `Up`.
pub struct Options {
    name: String,
    config: Config,
    yaml: String,
    ignore: String,
    files: Vec<(String, String, bool)>,
    env: Vec<(String, OsString)>,
    request: String,
    wait_timeout: Duration,
    commit: bool,
}

enum Config {
    Written(String),
    /// One `kind: command` agent `mine` running `./worker.sh` (worker, and planner if asked),
    /// the sample scripted agent `judge` for the rest.
    Worker {
        agent: Vec<String>,
        planner_is_worker: bool,
        limits: Vec<String>,
        on_violation: Option<String>,
    },
    /// The four agent CLIs on the model server (the `agents:` section), then the rest as given.
    RealClis(String),
}

impl Options {
    /// `name` shows up in the tmux server's socket name. The config is [`SCRIPTED`] until said.
    pub fn new(name: &str) -> Options {
        Options {
            name: name.to_string(),
            config: Config::Written(SCRIPTED.to_string()),
            yaml: String::new(),
            ignore: ".orch/\n".to_string(),
            files: Vec::new(),
            env: Vec::new(),
            request: "go".to_string(),
            wait_timeout: Duration::from_secs(90),
            commit: false,
        }
    }

    /// The whole `orch.yaml`.
    pub fn config(mut self, yaml: &str) -> Self {
        self.config = Config::Written(yaml.to_string());
        self
    }

    /// A `kind: command` agent `mine` that runs `script` (as `./worker.sh`) for every task, and
    /// the sample scripted agent as planner and judge; with no retries and a 60 s timeout
    /// until said otherwise (`limit`).
    pub fn worker(mut self, script: &str) -> Self {
        self.config = Config::Worker {
            agent: Vec::new(),
            planner_is_worker: false,
            limits: Vec::new(),
            on_violation: None,
        };
        self.script("worker.sh", script)
    }

    /// A line under the worker agent `mine` (e.g. `sandbox: off`).
    pub fn agent(mut self, line: &str) -> Self {
        self.worker_config(|agent, _, _, _| agent.push(line.to_string()));
        self
    }

    /// The worker agent plans too (it is then asked for a plan; runs given `--plan` never ask).
    pub fn worker_plans(mut self) -> Self {
        self.worker_config(|_, plans, _, _| *plans = true);
        self
    }

    /// A line under `limits:` (e.g. `retries: 1`), in place of the default of the same key.
    pub fn limit(mut self, line: &str) -> Self {
        let key = limit_key(line);
        self.worker_config(|_, _, limits, _| {
            limits.retain(|l| limit_key(l) != key);
            limits.push(line.to_string());
        });
        self
    }

    /// `ownership.on_violation`.
    pub fn on_violation(mut self, policy: &str) -> Self {
        self.worker_config(|_, _, _, on| *on = Some(policy.to_string()));
        self
    }

    fn worker_config(
        &mut self,
        change: impl FnOnce(&mut Vec<String>, &mut bool, &mut Vec<String>, &mut Option<String>),
    ) {
        let Config::Worker {
            agent,
            planner_is_worker,
            limits,
            on_violation,
        } = &mut self.config
        else {
            panic!("the worker's knobs go after Options::worker");
        };
        change(agent, planner_is_worker, limits, on_violation);
    }

    /// More of the config, after what the other options make of it (e.g. `gates:`).
    pub fn yaml(mut self, more: &str) -> Self {
        self.yaml.push_str(more);
        self
    }

    /// The real agent CLIs as agents (one per CLI, named after it, each in a home of its own
    /// and pointed at a model server of the test's), and `rest` (roles, limits) after them.
    pub fn real_clis(mut self, rest: &str) -> Self {
        self.config = Config::RealClis(rest.to_string());
        self.wait_timeout = Duration::from_secs(240);
        self
    }

    /// More lines for `.gitignore` (which has `.orch/`): files of the test that are no one's.
    pub fn ignore(mut self, lines: &str) -> Self {
        self.ignore.push_str(lines);
        self
    }

    pub fn file(mut self, rel: &str, content: &str) -> Self {
        self.files
            .push((rel.to_string(), content.to_string(), false));
        self
    }

    /// An executable file.
    pub fn script(mut self, rel: &str, content: &str) -> Self {
        self.files
            .push((rel.to_string(), content.to_string(), true));
        self
    }

    /// The plan `start` gives `orch up` (`plan.json`).
    pub fn plan(self, json: &str) -> Self {
        self.file("plan.json", json)
    }

    /// A variable every `orch` command of the test gets (e.g. a fake `HOME`).
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// The request `start` gives `orch up` ("go" by default).
    pub fn request(mut self, text: &str) -> Self {
        self.request = text.to_string();
        self
    }

    /// The project's files are committed before the run (so that refs and HEAD exist).
    pub fn committed(mut self) -> Self {
        self.commit = true;
        self
    }

    /// Writes the project and starts its private tmux server (no run yet: see `Up::start`).
    pub fn start(self) -> Up {
        let p = TestProject::new();
        let (config, model, homes) = match &self.config {
            Config::Written(yaml) => (yaml.clone(), None, None),
            Config::Worker {
                agent,
                planner_is_worker,
                limits,
                on_violation,
            } => (
                worker_yaml(agent, *planner_is_worker, limits, on_violation.as_deref()),
                None,
                None,
            ),
            Config::RealClis(rest) => {
                let model = ModelServer::start();
                let homes = Homes::new();
                let config = format!("{}{rest}", homes.agents_yaml(&model));
                (config, Some(model), Some(homes))
            }
        };
        p.file("orch.yaml", &(config + &self.yaml));
        p.file(".gitignore", &self.ignore);
        p.file("README.md", "# the project\n");
        for (rel, content, executable) in &self.files {
            if *executable {
                p.script(rel, content);
            } else {
                p.file(rel, content);
            }
        }
        if self.commit {
            p.git(&["add", "-A"]);
            p.git(&[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                "start",
            ]);
        }
        Up {
            server: private_server(&self.name),
            p,
            model,
            _homes: homes,
            env: self.env,
            request: self.request,
            wait_timeout: self.wait_timeout,
        }
    }
}

fn worker_yaml(
    agent: &[String],
    planner_is_worker: bool,
    limits: &[String],
    on_violation: Option<&str>,
) -> String {
    let mut yaml =
        String::from("agents:\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\n");
    for line in agent {
        yaml.push_str(&format!("    {line}\n"));
    }
    let planner = if planner_is_worker { "mine" } else { "judge" };
    yaml.push_str(&format!(
        "  judge:\n    kind: scripted\n    sample: true\n\
         roles:\n  planner: {planner}\n  judge: judge\n  workers: [mine]\nlimits:\n"
    ));
    for default in ["retries: 0", "task_timeout: 60s"] {
        if !limits.iter().any(|l| limit_key(l) == limit_key(default)) {
            yaml.push_str(&format!("  {default}\n"));
        }
    }
    for line in limits {
        yaml.push_str(&format!("  {line}\n"));
    }
    if let Some(policy) = on_violation {
        yaml.push_str(&format!("ownership:\n  on_violation: {policy}\n"));
    }
    yaml
}

/// `retries` of `retries: 1`.
fn limit_key(line: &str) -> &str {
    line.split(':').next().unwrap_or("").trim()
}

/// A project, the private tmux server its runs use, and what the options said.
pub struct Up {
    pub p: TestProject,
    pub server: PrivateServer,
    model: Option<ModelServer>,
    _homes: Option<Homes>,
    env: Vec<(String, OsString)>,
    request: String,
    wait_timeout: Duration,
}

impl Up {
    /// A project with `config` as its `orch.yaml` (`Options::new(name).config(config)`).
    pub fn new(name: &str, config: &str) -> Up {
        Options::new(name).config(config).start()
    }

    /// `orch` in the project, on its tmux server, with the options' environment.
    pub fn orch(&self) -> Orch {
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
    pub fn up(&self, args: &[&str], fault: Option<&str>) -> Output {
        let mut orch = self.orch().args(["up"]).args(args).args(["--detach"]);
        if let Some(fault) = fault {
            orch = orch.env("ORCH_SCRIPTED_FAULT", fault);
        }
        orch.run()
    }

    /// `orch up REQUEST --plan plan.json --detach`, which must start the run.
    pub fn start(&self) {
        self.start_with(true, &[]);
    }

    /// `orch up REQUEST --detach`, given `plan.json` or not (then the planner plans), with
    /// `env` too; it must start the run.
    pub fn start_with(&self, plan: bool, env: &[(&str, &str)]) {
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
    pub fn resume(&self) -> Output {
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
    pub fn wait(&self, code: i32) -> Duration {
        let start = Instant::now();
        self.wait_until_exit(|got| got == code, &format!("exit {code}"));
        start.elapsed()
    }

    /// `orch wait`, which must say the run ended (succeeded or failed); returns its exit code.
    pub fn wait_for_end(&self) -> i32 {
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
    pub fn run(&self, code: i32) {
        self.start();
        self.wait(code);
    }

    pub fn session(&self) -> String {
        self.p.session()
    }

    /// The run's directory (the current run's, or the only one).
    pub fn run_dir(&self) -> PathBuf {
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

    /// The directory of attempt `n` of task `task`.
    pub fn attempt(&self, task: &str, n: u32) -> PathBuf {
        self.run_dir().join(format!("tasks/{task}/{n}"))
    }

    /// A file of the run directory (`rel` to it), which must exist.
    pub fn run_file(&self, rel: &str) -> String {
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
    pub fn run_count(&self) -> usize {
        std::fs::read_dir(self.p.path(".orch/runs")).map_or(0, |d| d.count())
    }

    /// Every run's journal, one after the other.
    pub fn journal(&self) -> String {
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
    pub fn journal_events(&self) -> Vec<Value> {
        self.journal()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// Events in journal order, as (event name, task id).
    pub fn events(&self) -> Vec<(String, String)> {
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
    pub fn event_names(&self) -> Vec<String> {
        self.events().into_iter().map(|(event, _)| event).collect()
    }

    /// The model server of a run of the real CLIs.
    pub fn model(&self) -> &ModelServer {
        self.model
            .as_ref()
            .expect("a model server: Options::real_clis")
    }

    /// Every pane's screen, the agents' `counts/`, the journal and the model server's
    /// transcript: what a failure message shows.
    pub fn diagnostics(&self) -> String {
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
    pub fn wait_until(&self, what: &str, cond: impl FnMut() -> bool) {
        super::wait_until(what, LONG, cond, || self.diagnostics());
    }

    pub fn status(&self) -> Value {
        let run = self.orch().args(["status", "--json"]).run().expect(0);
        serde_json::from_str(&run.stdout()).unwrap()
    }

    /// Task `id` of a `status --json`.
    pub fn task<'a>(status: &'a Value, id: &str) -> &'a Value {
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"].to_string().trim_matches('"') == id)
            .unwrap_or_else(|| panic!("no task {id} in {status:#}"))
    }

    /// Each task's (id, state, attempts) and the run's phase, for a compact assertion.
    pub fn outcome(&self) -> (String, Vec<(String, String, u64)>) {
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
    pub fn pane(&self, window: &str) -> String {
        let tmux = self.server.tmux();
        let panes = tmux.list_panes(&self.session()).unwrap();
        let pane = panes
            .iter()
            .find(|p| p.window_name == window)
            .unwrap_or_else(|| panic!("no window {window}\n{}", self.diagnostics()));
        tmux.capture_pane(&pane.pane_id).unwrap()
    }

    /// The pane running the engine (the `control` window's first pane).
    pub fn control_pane(&self) -> String {
        let panes = self.server.tmux().list_panes(&self.session()).unwrap();
        panes
            .iter()
            .find(|p| p.window_name == "control" && p.start_command.contains(" engine "))
            .unwrap_or_else(|| panic!("no control pane in {panes:?}"))
            .pane_id
            .clone()
    }

    /// Runs a tmux command on the project's server.
    pub fn tmux(&self, args: &[&str]) {
        let status = std::process::Command::new("tmux")
            .args(["-L", self.server.socket_name()])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "tmux {args:?}");
    }

    /// The live engine's pid.
    pub fn engine_pid(&self) -> i32 {
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
    pub fn kill_engine(&self) {
        let pid = self.engine_pid();
        // SAFETY: kill(2) only sends a signal.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        self.wait_for_engine_gone();
    }

    pub fn wait_for_engine_gone(&self) {
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
