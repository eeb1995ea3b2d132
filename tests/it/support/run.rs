//! `Up`: a project and the private tmux server its runs use, with the commands a test of a
//! run needs (`up`, `wait`, `status --json`, the journal) and diagnostics for failures.

use serde_json::Value;

use super::{Orch, PrivateServer, Run, TestProject, private_server, session_diagnostics};

/// A project plus the private tmux server its runs use.
pub struct Up {
    pub p: TestProject,
    pub server: PrivateServer,
}

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

impl Up {
    pub fn new(name: &str, config: &str) -> Up {
        let p = TestProject::new();
        p.file("orch.yaml", config);
        p.file(".gitignore", ".orch/\n");
        p.file("README.md", "# the project\n");
        Up {
            p,
            server: private_server(name),
        }
    }

    pub fn orch(&self) -> Orch {
        self.p
            .orch()
            .env("ORCH_TMUX_SOCKET", self.server.socket_name())
            .env("ORCH_TMUX_CONFIG", "/dev/null")
    }

    pub fn up(&self, args: &[&str], fault: Option<&str>) -> Run {
        let mut orch = self.orch().args(["up"]).args(args).args(["--detach"]);
        if let Some(fault) = fault {
            orch = orch.env("ORCH_SCRIPTED_FAULT", fault);
        }
        orch.run()
    }

    pub fn session(&self) -> String {
        self.p.session()
    }

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

    pub fn diagnostics(&self) -> String {
        format!(
            "{}\n--- journal\n{}",
            session_diagnostics(self.server.tmux(), &self.session()),
            self.journal()
        )
    }

    /// `orch wait`, which must exit with `code`.
    pub fn wait(&self, code: i32) {
        let run = self.orch().args(["wait", "--timeout", "90"]).run();
        assert_eq!(
            run.code(),
            code,
            "orch wait: {}{}\n{}",
            run.stdout(),
            run.stderr(),
            self.diagnostics()
        );
    }

    pub fn status(&self) -> Value {
        let run = self.orch().args(["status", "--json"]).run().expect(0);
        serde_json::from_str(&run.stdout()).unwrap()
    }

    pub fn task<'a>(status: &'a Value, id: &str) -> &'a Value {
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"].to_string().trim_matches('"') == id)
            .unwrap_or_else(|| panic!("no task {id} in {status:#}"))
    }

    /// Events in journal order, as (event name, task id).
    pub fn events(&self) -> Vec<(String, String)> {
        self.journal()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| {
                (
                    v["event"].as_str().unwrap_or("").to_string(),
                    v["task"].to_string().trim_matches('"').to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // Stop whatever is left (agents included) before the server goes.
        let _ = self.orch().args(["down"]).run();
    }
}
