//! A project whose agents are ours: a planner and workers of `kind: command` that append a
//! line to `counts/starts-<id>` each time they start (so a test knows exactly how often each
//! agent ran), then wait for the test to let them finish (`counts/go-<id>` or
//! `counts/go-all`). `counts/` is git-ignored, so none of this is an ownership violation.
//! Every run uses the project's own private tmux server; nothing here sleeps a fixed time.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, PrivateServer, TestProject, Tmux as _, session_diagnostics};

/// Long enough for anything on a loaded machine; a passing test never waits for it.
pub const LONG: Duration = Duration::from_secs(60);

pub const WORKER: &str = r#"#!/bin/sh
# A worker of the resume tests: counts its start, waits to be let go, writes its files.
id="$ORCH_TASK_ID"
mkdir -p counts
# Task b ignores hangups when asked: it then outlives its tmux server.
if [ "$id" = b ] && [ -e counts/b-ignores-hup ]; then trap '' HUP; fi
# The pid first: a test that saw the start may read the pid at once.
echo $$ >> "counts/pids-$id"
echo "start $$ ${ORCH_RESUME_SESSION:-}" >> "counts/starts-$id"
echo "ORCH_SESSION sess-$id-$$"
while [ ! -e "counts/go-$id" ] && [ ! -e counts/go-all ]; do sleep 0.02; done
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$id done" > "$f"; done
echo "task $id finished"
"#;

pub const PLANNER: &str = r#"#!/bin/sh
# The planner of the resume tests: counts its start, waits to be let go, answers a plan.
mkdir -p counts
echo $$ >> counts/pids-planner
echo "start $$" >> counts/starts-planner
while [ ! -e counts/go-planner ] && [ ! -e counts/go-all ]; do sleep 0.02; done
# Asked for one bad answer: no plan at all.
if [ -e counts/bad-plan-once ]; then rm counts/bad-plan-once; echo "no plan today"; exit 0; fi
mkdir -p specs
echo '# the spec' > specs/s.md
cat plan.json
"#;

/// a and b run side by side; c needs both.
pub const PLAN: &str = r#"{"specs": [{"file": "specs/s.md"}],
 "tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"]},
  {"id": "c", "agent": "mine", "task": "write c", "files": ["tests/c_test.txt", "c.txt"], "depends_on": ["a", "b"]}
 ]}"#;

const CONFIG: &str = "\
agents:
  plan:
    kind: command
    command: [\"./planner.sh\"]
  mine:
    kind: command
    command: [\"./worker.sh\"]
  judge:
    kind: scripted
    sample: true
roles:
  planner: plan
  judge: judge
  workers: [mine]
limits:
  max_parallel: 4
  task_timeout: 600s
  planner_retries: 1
";

pub struct Project {
    pub p: TestProject,
    pub server: PrivateServer,
}

impl Project {
    pub fn new(name: &str) -> Project {
        let p = TestProject::new();
        p.file("orch.yaml", CONFIG);
        p.file(".gitignore", ".orch/\ncounts/\nplan.json\n");
        p.file("README.md", "# the project\n");
        // The spec exists from the start, so that a run given the plan passes its gates.
        p.file("specs/s.md", "# the spec\n");
        p.file("plan.json", PLAN);
        p.script("planner.sh", PLANNER);
        p.script("worker.sh", WORKER);
        std::fs::create_dir_all(p.path("counts")).unwrap();
        Project {
            p,
            server: support::private_server(name),
        }
    }

    pub fn orch(&self) -> support::Orch {
        let mut orch = self.p.orch();
        orch.cmd.env_remove("ORCH_ENGINE_CRASH");
        orch.env("ORCH_TMUX_SOCKET", self.server.socket_name())
            .env("ORCH_TMUX_CONFIG", "/dev/null")
    }

    /// `orch up --detach` with the given plan or none (the planner plans), plus `env`.
    pub fn up(&self, with_plan: bool, env: &[(&str, &str)]) {
        let mut orch = self.orch().args(["up", "Build a, b and c", "--detach"]);
        if with_plan {
            orch = orch.args(["--plan", "plan.json"]);
        }
        for (k, v) in env {
            orch = orch.env(k, v);
        }
        orch.run().expect(0).stdout_has("started in tmux session");
    }

    pub fn resume(&self) -> support::Run {
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

    pub fn session(&self) -> String {
        self.p.session()
    }

    pub fn run_dir(&self) -> PathBuf {
        let id = std::fs::read_to_string(self.p.path(".orch/current")).unwrap();
        self.p.path(&format!(".orch/runs/{}", id.trim()))
    }

    pub fn journal(&self) -> String {
        std::fs::read_to_string(self.run_dir().join("events.jsonl")).unwrap_or_default()
    }

    /// The journal's event names, in order.
    pub fn events(&self) -> Vec<String> {
        self.journal()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| v["event"].as_str().unwrap_or("").to_string())
            .collect()
    }

    pub fn diagnostics(&self) -> String {
        let mut counts = String::new();
        for entry in std::fs::read_dir(self.p.path("counts"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            counts.push_str(&format!("{:?}: {}", entry.file_name(), text));
        }
        format!(
            "{}\n--- counts\n{counts}\n--- journal\n{}",
            session_diagnostics(self.server.tmux(), &self.session()),
            self.journal()
        )
    }

    pub fn status(&self) -> Value {
        let run = self.orch().args(["status", "--json"]).run().expect(0);
        serde_json::from_str(&run.stdout()).unwrap()
    }

    pub fn task(status: &Value, id: &str) -> Value {
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no task {id} in {status:#}"))
            .clone()
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

    pub fn wait_until(&self, what: &str, cond: impl FnMut() -> bool) {
        support::wait_until(what, LONG, cond, || self.diagnostics());
    }

    /// What each start of agent `id` was given to continue (`ORCH_RESUME_SESSION`), in order.
    pub fn resumed_sessions(&self, id: &str) -> Vec<String> {
        std::fs::read_to_string(self.p.path(&format!("counts/starts-{id}")))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(' ').nth(2).unwrap_or("").to_string())
            .collect()
    }

    /// How many times the agent `id` (a task id, or `planner`) started.
    pub fn starts(&self, id: &str) -> usize {
        std::fs::read_to_string(self.p.path(&format!("counts/starts-{id}")))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// The pids of the agent's starts, oldest first, as the agent saw them (`$$`): in a
    /// sandbox, a pid of its own pid namespace.
    pub fn inner_pids(&self, id: &str) -> Vec<i32> {
        std::fs::read_to_string(self.p.path(&format!("counts/pids-{id}")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The pids of the agent's starts, oldest first, as this test sees them: each agent is
    /// found by its pid in its own namespace and its variables (a sandboxed agent's `$$` is
    /// not its pid out here); 0 for one no longer running.
    pub fn pids(&self, id: &str) -> Vec<i32> {
        let root = self.p.root().display().to_string();
        self.inner_pids(id)
            .into_iter()
            .map(|inner| outer_pid(inner, id, &root).unwrap_or(0))
            .collect()
    }

    /// Lets agent `id` (or `all`) finish.
    pub fn release(&self, id: &str) {
        std::fs::write(self.p.path(&format!("counts/go-{id}")), "").unwrap();
    }

    pub fn wait_for_starts(&self, ids: &[&str]) {
        self.wait_until(&format!("{ids:?} to start"), || {
            ids.iter().all(|id| self.starts(id) >= 1)
        });
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
}

impl Drop for Project {
    fn drop(&mut self) {
        // Stop whatever is left (agents included) before the server goes.
        let _ = self.orch().args(["down"]).run();
    }
}

/// The pid out here of the live agent `id` (a task id, or `planner`) of the project at `root`
/// whose pid in its own namespace is `inner`.
fn outer_pid(inner: i32, id: &str, root: &str) -> Option<i32> {
    let var = |environ: &[u8], name: &str| -> Option<String> {
        environ.split(|&b| b == 0).find_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            entry
                .strip_prefix(name)?
                .strip_prefix('=')
                .map(String::from)
        })
    };
    support::process_by_inner_pid(inner, |environ| {
        let who = if id == "planner" {
            var(environ, "ORCH_ROLE")
        } else {
            var(environ, "ORCH_TASK_ID")
        };
        who.as_deref() == Some(id) && var(environ, "ORCH_PROJECT_DIR").as_deref() == Some(root)
    })
    .map(|(pid, _)| pid)
}

/// Whether `pid` is a live process (a zombie is not: nothing of it runs).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        // SAFETY: signal 0 only asks whether the process exists.
        Err(_) => {
            !std::path::Path::new("/proc/self").exists() && unsafe { libc::kill(pid, 0) } == 0
        }
    }
}
