//! `Options`: how a test's project and its run are set up. The config (written out, a `kind:
//! command` worker made from a few knobs, or the real agent CLIs on the tests' model server),
//! the project's files and `.gitignore`, what every `orch` command of the test gets in its
//! environment, the request and how long `orch wait` may take. `start` makes the [`Up`].

use std::ffi::OsString;
use std::time::Duration;

use super::agent_clis::Homes;
use super::model_server::ModelServer;
use super::{TestProject, Up, private_server};

/// A config of `agents:`, `roles:` and `limits:` with the sample scripted agent in every role.
pub(crate) const SCRIPTED: &str = "\
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
pub(crate) struct Options {
    name: String,
    config: Config,
    yaml: String,
    ignore: String,
    files: Vec<(String, String, bool)>,
    env: Vec<(String, OsString)>,
    request: String,
    wait_timeout: Duration,
    commit: bool,
    /// Made under `target/tmp` rather than the system's temp directory.
    in_target: bool,
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
    pub(crate) fn new(name: &str) -> Options {
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
            in_target: false,
        }
    }

    /// The whole `orch.yaml`.
    pub(crate) fn config(mut self, yaml: &str) -> Self {
        self.config = Config::Written(yaml.to_string());
        self
    }

    /// A `kind: command` agent `mine` that runs `script` (as `./worker.sh`) for every task, and
    /// the sample scripted agent as planner and judge; with no retries and a 60 s timeout
    /// until said otherwise (`limit`).
    pub(crate) fn worker(mut self, script: &str) -> Self {
        self.config = Config::Worker {
            agent: Vec::new(),
            planner_is_worker: false,
            limits: Vec::new(),
            on_violation: None,
        };
        self.script("worker.sh", script)
    }

    /// A line under the worker agent `mine` (e.g. `sandbox: off`).
    pub(crate) fn agent(mut self, line: &str) -> Self {
        self.worker_config(|agent, _, _, _| agent.push(line.to_string()));
        self
    }

    /// The worker agent plans too (it is then asked for a plan; runs given `--plan` never ask).
    pub(crate) fn worker_plans(mut self) -> Self {
        self.worker_config(|_, plans, _, _| *plans = true);
        self
    }

    /// A line under `limits:` (e.g. `retries: 1`), in place of the default of the same key.
    pub(crate) fn limit(mut self, line: &str) -> Self {
        let key = limit_key(line);
        self.worker_config(|_, _, limits, _| {
            limits.retain(|l| limit_key(l) != key);
            limits.push(line.to_string());
        });
        self
    }

    /// `ownership.on_violation`.
    pub(crate) fn on_violation(mut self, policy: &str) -> Self {
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
    pub(crate) fn yaml(mut self, more: &str) -> Self {
        self.yaml.push_str(more);
        self
    }

    /// The real agent CLIs as agents (one per CLI, named after it, each in a home of its own
    /// and pointed at a model server of the test's), and `rest` (roles, limits) after them.
    pub(crate) fn real_clis(mut self, rest: &str) -> Self {
        self.config = Config::RealClis(rest.to_string());
        self.wait_timeout = Duration::from_secs(240);
        self
    }

    /// More lines for `.gitignore` (which has `.orch/`): files of the test that are no one's.
    pub(crate) fn ignore(mut self, lines: &str) -> Self {
        self.ignore.push_str(lines);
        self
    }

    pub(crate) fn file(mut self, rel: &str, content: &str) -> Self {
        self.files
            .push((rel.to_string(), content.to_string(), false));
        self
    }

    /// An executable file.
    pub(crate) fn script(mut self, rel: &str, content: &str) -> Self {
        self.files
            .push((rel.to_string(), content.to_string(), true));
        self
    }

    /// The plan `start` gives `orch up` (`plan.json`).
    pub(crate) fn plan(self, json: &str) -> Self {
        self.file("plan.json", json)
    }

    /// A variable every `orch` command of the test gets (e.g. a fake `HOME`).
    pub(crate) fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// The request `start` gives `orch up` ("go" by default).
    pub(crate) fn request(mut self, text: &str) -> Self {
        self.request = text.to_string();
        self
    }

    /// The project's files are committed before the run (so that refs and HEAD exist).
    pub(crate) fn committed(mut self) -> Self {
        self.commit = true;
        self
    }

    /// The project is made under `target/tmp`: where the sandbox shows it as it is (it hides
    /// `/tmp` whole, and with it a project there).
    pub(crate) fn in_target(mut self) -> Self {
        self.in_target = true;
        self
    }

    /// Writes the project and starts its private tmux server (no run yet: see `Up::start`).
    pub(crate) fn start(self) -> Up {
        let p = if self.in_target {
            TestProject::new_in(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")))
        } else {
            TestProject::new()
        };
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
        // `@ROOT@` in the config: the project's directory, known only now.
        let root = p.root().display().to_string();
        p.file("orch.yaml", &(config + &self.yaml).replace("@ROOT@", &root));
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
        Up::from_parts(
            p,
            private_server(&self.name),
            model.zip(homes),
            self.env,
            self.request,
            self.wait_timeout,
        )
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
