//! The real agent CLIs' test runs: a project whose agents are the four CLIs, each pointed
//! at the scripted model server (on 127.0.0.1) in a home of its own, and the private tmux
//! server its run uses. Offline: nothing leaves the machine.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::agent_clis::{CLIS, Homes};
use super::model_server::ModelServer;
use super::{PrivateServer, TestProject, Tmux, private_server, session_diagnostics};

/// The tests run one at a time: each starts up to four node programs at once, and the
/// machine has two cores.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A project whose agents are the four CLIs, the model server they talk to, and the private
/// tmux server its run uses.
pub struct Run {
    pub p: TestProject,
    pub server: PrivateServer,
    pub model: ModelServer,
    _homes: Homes,
}

impl Run {
    pub fn new(name: &str, rest_of_config: &str) -> Run {
        let model = ModelServer::start();
        let homes = Homes::new();
        let config = format!("{}{rest_of_config}", homes.agents_yaml(&model));
        let p = TestProject::new();
        p.file("orch.yaml", &config);
        p.file(".gitignore", ".orch/\n");
        p.file("README.md", "# the project\n");
        Run {
            p,
            server: private_server(name),
            model,
            _homes: homes,
        }
    }

    pub fn orch(&self) -> super::Orch {
        self.p
            .orch()
            .env("ORCH_TMUX_SOCKET", self.server.socket_name())
            .env("ORCH_TMUX_CONFIG", "/dev/null")
    }

    pub fn up(&self, args: &[&str]) {
        self.orch()
            .args(["up"])
            .args(args)
            .args(["--detach"])
            .run()
            .expect(0);
    }

    pub fn session(&self) -> String {
        self.p.session()
    }

    pub fn run_dir(&self) -> std::path::PathBuf {
        let runs = self.p.path(".orch/runs");
        std::fs::read_dir(runs)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    }

    pub fn diagnostics(&self) -> String {
        let journal =
            std::fs::read_to_string(self.run_dir().join("events.jsonl")).unwrap_or_default();
        format!(
            "{}\n--- journal\n{journal}\n--- model server\n{}",
            session_diagnostics(self.server.tmux(), &self.session()),
            self.model.transcript()
        )
    }

    /// `orch wait` for the run to end with `code`; returns how long it took.
    pub fn wait(&self, code: i32) -> Duration {
        let start = Instant::now();
        let run = self.orch().args(["wait", "--timeout", "240"]).run();
        assert_eq!(
            run.code(),
            code,
            "orch wait: {}{}\n{}",
            run.stdout(),
            run.stderr(),
            self.diagnostics()
        );
        start.elapsed()
    }

    pub fn status(&self) -> Value {
        let run = self.orch().args(["status", "--json"]).run().expect(0);
        serde_json::from_str(&run.stdout()).unwrap()
    }

    pub fn task(&self, status: &Value, id: &str) -> Value {
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"].to_string().trim_matches('"') == id)
            .cloned()
            .unwrap_or_else(|| panic!("no task {id} in {status:#}\n{}", self.diagnostics()))
    }

    /// What the pane of a task's window shows.
    pub fn pane(&self, window: &str) -> String {
        let tmux = self.server.tmux();
        let panes = tmux.list_panes(&self.session()).unwrap();
        let pane = panes
            .iter()
            .find(|p| p.window_name == window)
            .unwrap_or_else(|| panic!("no window {window}\n{}", self.diagnostics()));
        tmux.capture_pane(&pane.pane_id).unwrap()
    }

    /// A plan with one task per CLI, each owning a test and a script, with `extra` (a model
    /// directive) in its task text.
    pub fn plan_for_each_cli(&self, extra: impl Fn(&str) -> String) {
        let tasks: Vec<Value> = CLIS
            .iter()
            .map(|cli| {
                serde_json::json!({
                    "id": cli, "agent": cli,
                    "task": format!("Write src/{cli}.sh and its test. {}", extra(cli)),
                    "files": [format!("tests/{cli}_test.sh"), format!("src/{cli}.sh")]
                })
            })
            .collect();
        self.p.file(
            "plan.json",
            &serde_json::json!({"tasks": tasks}).to_string(),
        );
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.orch().args(["down"]).run();
    }
}

pub const ROLES: &str = "\
roles:
  planner: claude
  judge: codex
  workers: [claude, codex, opencode, gemini]
limits:
  max_parallel: 4
  task_timeout: 120s
";
