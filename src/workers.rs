//! Agent adapters: how each kind of agent is invoked headless, and how its answer is read from
//! what it printed. One module per kind; adding an agent CLI means adding one module (with
//! its `events` submodule), one line in [`adapter`] and its name in `config::AgentKind`.
//!
//! An agent CLI's module knows everything about that CLI: its invocation and how it confines
//! the agent to what its role may change ([`Edits`]), the events of its output stream (the
//! answer, the [`Assessment`] of the run, the live transcript's entries), and what
//! `orch doctor` checks for it ([`readiness`]). What is common to all CLIs is in
//! [`summary`] (the stream's meaning in one shape) and [`crate::transcript`].

mod claude;
mod codex;
pub mod command;
mod gemini;
mod opencode;
pub mod readiness;
mod scripted;
pub mod summary;
#[cfg(test)]
mod testing;

use std::path::{Path, PathBuf};

use crate::config::{AgentConfig, AgentKind};
use crate::paths::ProjectPath;
use crate::plan::TaskId;
use crate::prompt::Role;
use crate::transcript::Entry;

pub use readiness::{Check, Setting};

/// One run of an agent: who it is, what it is asked, where.
#[derive(Debug, Clone, Copy)]
pub struct AgentCall<'a> {
    /// The agent's name in the config.
    pub name: &'a str,
    pub agent: &'a AgentConfig,
    pub role: Role,
    pub task: Option<&'a TaskId>,
    /// Owned files, relative to the project root.
    pub files: &'a [ProjectPath],
    pub prompt_file: &'a Path,
    pub project_dir: &'a Path,
    /// The run's (or planning's) directory under `.orch/`.
    pub run_dir: &'a Path,
    /// The CLI session that an earlier, interrupted attempt of this task left: continued
    /// where the CLI can (see [`Adapter::can_continue`]), and given to every agent as
    /// `ORCH_RESUME_SESSION`.
    pub session: Option<&'a str>,
}

/// What to execute: no shell is involved anywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// Never the prompt's text, nor any value of the environment: a command line is visible to
    /// every user of the machine (`ps`).
    pub argv: Vec<String>,
    /// The CLI session this invocation continues (see [`Adapter::can_continue`]).
    pub continues: Option<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// The file to give the agent on stdin (its prompt, for the CLIs); `None`: /dev/null.
    pub stdin: Option<PathBuf>,
    /// The sandbox to run it in (see [`crate::sandbox::jail_for`]), none for unconfined.
    pub sandbox: Option<crate::sandbox::Jail>,
}

/// What differs between agent CLIs.
pub trait Adapter: Sync {
    /// The program and its arguments, before the config's `args` are appended. Never the
    /// prompt's text: a CLI reads it on stdin (see [`Adapter::prompt_on_stdin`]), a program
    /// gets its path.
    fn argv(&self, call: &AgentCall) -> anyhow::Result<Vec<String>>;

    /// Environment the CLI needs for this call (its permissions, say), before the config's
    /// `env`, which may override it.
    fn env(&self, _call: &AgentCall) -> anyhow::Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    /// Whether the CLI reads its prompt on stdin, which is then the prompt file. The prompt
    /// is never an argument: every user of the machine can read a process's arguments.
    fn prompt_on_stdin(&self) -> bool {
        false
    }

    /// The agent's answer, from what it printed on stdout.
    fn answer(&self, stdout: &str) -> String {
        stdout.to_string()
    }

    /// What the agent's structured output says about the run, beyond its exit status: a CLI
    /// can exit 0 after a denied edit or a failed turn.
    fn assess(&self, _stdout: &str) -> Assessment {
        Assessment::default()
    }

    /// What one event of the CLI's stdout stream shows in the live transcript; `None` when
    /// the CLI prints no event stream (its output is shown as it is) or the value is not one
    /// of its events.
    fn entries(&self, _event: &serde_json::Value) -> Option<Vec<Entry>> {
        None
    }

    /// Adds what one event of the CLI's stdout stream counts of its token use and cost, as
    /// the stream arrives (see [`summary::Tally`]).
    fn tally(&self, _tally: &mut summary::Tally, _event: &serde_json::Value) {}

    /// Whether the CLI prints an event stream that [`Adapter::entries`] reads.
    fn streams_events(&self) -> bool {
        false
    }

    /// Whether the CLI can continue its session `session` (recorded from an earlier,
    /// interrupted attempt), in the environment it will run in: then [`Adapter::argv`]
    /// is called with `call.session` set and continues it. A CLI asked to continue a session
    /// it has no record of fails, so an adapter says yes only when it finds the record; when
    /// it says no, the attempt starts over, told that the earlier work is in place.
    fn can_continue(&self, _setting: &Setting, _session: &str) -> bool {
        false
    }

    /// Arguments the CLI needs when orch runs it in its sandbox (see [`crate::sandbox`]),
    /// after all others. `nests`: whether a bubblewrap of the CLI's own can work inside orch's
    /// (not when orch runs as root: its box then keeps no capability to make namespaces with).
    fn sandboxed_args(&self, _nests: bool) -> &'static [&'static str] {
        &[]
    }

    /// How to install the CLI, for `orch doctor`.
    fn install_hint(&self) -> &'static str {
        ""
    }

    /// What `orch doctor` checks besides the binary and its version: credentials, first-run
    /// settings, options that cannot work together.
    fn readiness(&self, _setting: &Setting) -> Vec<Check> {
        Vec::new()
    }
}

/// What an agent may edit in one call, from its role: the planner writes the specs (their
/// names are its choice), a worker its own files only, the judge and the oracle nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Edits<'a> {
    Anywhere,
    Only(&'a [ProjectPath]),
    Nothing,
}

impl AgentCall<'_> {
    pub fn edits(&self) -> Edits<'_> {
        match self.role {
            Role::Planner => Edits::Anywhere,
            Role::Worker => Edits::Only(self.files),
            Role::Judge | Role::Oracle => Edits::Nothing,
        }
    }

    /// The directory of this call's prompt (the attempt's directory), where an adapter may
    /// keep files the CLI reads, such as a policy.
    pub fn attempt_dir(&self) -> &Path {
        self.prompt_file.parent().unwrap_or(self.run_dir)
    }
}

/// An agent run as its own output tells it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    /// Why the run failed although the agent exited 0 (one line), if it did.
    pub failure: Option<String>,
    pub usage: Option<Usage>,
    /// The CLI's session id, to continue the session later.
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

pub fn adapter(kind: AgentKind) -> &'static dyn Adapter {
    match kind {
        AgentKind::Claude => &claude::Claude,
        AgentKind::Codex => &codex::Codex,
        AgentKind::Opencode => &opencode::Opencode,
        AgentKind::Gemini => &gemini::Gemini,
        AgentKind::Command => &command::Command,
        AgentKind::Scripted => &scripted::Scripted,
    }
}

/// Set for a new attempt of an interrupted task whose agent session is known: the session to
/// continue, for agents (`kind: command` ones included) that can.
pub const RESUME_SESSION_ENV: &str = "ORCH_RESUME_SESSION";

/// A session id as the CLIs make them (UUIDs): anything else, read from an agent's output,
/// is not looked up on disk nor passed on as one. It starts with a letter or digit, so that
/// a CLI cannot read it as an option.
fn valid_session_id(id: &str) -> bool {
    id.len() <= 128
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The full invocation for a call: the adapter's argv, the config's `args` and `env`, and the
/// `ORCH_*` variables. Placeholders are filled in the config's `command` and `args`.
pub fn invocation(call: &AgentCall) -> anyhow::Result<Invocation> {
    let adapter = adapter(call.agent.kind);
    let mut env: Vec<(String, String)> = orch_env(call);
    env.extend(adapter.env(call)?);
    // Last, so that the config's env wins over the adapter's.
    env.extend(call.agent.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(session) = call.session {
        env.push((RESUME_SESSION_ENV.into(), session.into()));
    }
    let session = call.session.filter(|s| {
        valid_session_id(s) && adapter.can_continue(&Setting::new(call.agent, call.project_dir), s)
    });
    let call = &AgentCall { session, ..*call };
    let mut argv = adapter.argv(call)?;
    argv.extend(call.agent.args.iter().map(|a| fill(a, call)));
    Ok(Invocation {
        continues: call.session.map(String::from),
        argv,
        env,
        cwd: call.project_dir.to_path_buf(),
        stdin: adapter
            .prompt_on_stdin()
            .then(|| call.prompt_file.to_path_buf()),
        sandbox: None,
    })
}

/// The variables every agent gets, so that a `kind: command` agent needs no argument parsing.
pub fn orch_env(call: &AgentCall) -> Vec<(String, String)> {
    let path = |p: &Path| p.display().to_string();
    vec![
        ("ORCH_ROLE".into(), call.role.name().into()),
        (
            "ORCH_TASK_ID".into(),
            call.task.map(ToString::to_string).unwrap_or_default(),
        ),
        ("ORCH_PROMPT_FILE".into(), path(call.prompt_file)),
        ("ORCH_FILES".into(), call.files.join("\n")),
        ("ORCH_PROJECT_DIR".into(), path(call.project_dir)),
        ("ORCH_RUN_DIR".into(), path(call.run_dir)),
        ("ORCH_AGENT".into(), call.name.into()),
        (AGENT_KIND_VAR.into(), call.agent.kind.name().into()),
    ]
}

/// The variable that names the agent's kind. `orch agent-run` reads it from the launch
/// spec's env to render the CLI's event stream in the pane and to assess the run.
pub const AGENT_KIND_VAR: &str = "ORCH_AGENT_KIND";

/// The kind named by [`AGENT_KIND_VAR`] in an environment list.
pub fn kind_in_env(env: &[(String, String)]) -> Option<AgentKind> {
    let value = env.iter().rev().find(|(k, _)| k == AGENT_KIND_VAR)?;
    AgentKind::ALL
        .into_iter()
        .find(|kind| kind.name() == value.1.as_str())
}

/// Fills the placeholders `{prompt_file}`, `{task_id}`, `{role}`, `{project_dir}` in one
/// argument. Other braces are left alone: agent arguments often carry JSON or TOML.
pub fn fill(arg: &str, call: &AgentCall) -> String {
    arg.replace("{prompt_file}", &call.prompt_file.display().to_string())
        .replace(
            "{task_id}",
            &call.task.map(ToString::to_string).unwrap_or_default(),
        )
        .replace("{role}", call.role.name())
        .replace("{project_dir}", &call.project_dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn agent(kind: AgentKind, command: Option<Vec<&str>>) -> AgentConfig {
        AgentConfig {
            kind,
            model: Some("m1".into()),
            args: vec!["--flag={role}".into(), "{\"json\": {task_id}}".into()],
            env: BTreeMap::from([("MY_VAR".to_string(), "x y".to_string())]),
            command: command.map(|c| c.into_iter().map(String::from).collect()),
            allow_shell: true,
            sample: false,
            sandbox: None,
            network: None,
        }
    }

    fn with_call<T>(agent: &AgentConfig, f: impl FnOnce(AgentCall) -> T) -> T {
        let id = TaskId::new("7");
        let files = crate::paths::project_paths(&["src/a.rs", "tests/a.rs"]);
        f(AgentCall {
            name: "mine",
            agent,
            role: Role::Worker,
            task: Some(&id),
            files: &files,
            prompt_file: Path::new("/p/.orch/runs/r/tasks/7/1/prompt.md"),
            project_dir: Path::new("/p"),
            run_dir: Path::new("/p/.orch/runs/r"),
            session: None,
        })
    }

    #[test]
    fn command_agent_gets_its_argv_with_placeholders_and_env() {
        let a = agent(
            AgentKind::Command,
            Some(vec!["./agent", "{prompt_file}", "--in", "{project_dir}"]),
        );
        let inv = with_call(&a, |c| invocation(&c)).unwrap();
        assert_eq!(
            inv.argv,
            vec![
                "./agent",
                "/p/.orch/runs/r/tasks/7/1/prompt.md",
                "--in",
                "/p",
                "--flag=worker",
                "{\"json\": 7}"
            ]
        );
        let env: BTreeMap<_, _> = inv.env.into_iter().collect();
        assert_eq!(env["ORCH_ROLE"], "worker");
        assert_eq!(env["ORCH_TASK_ID"], "7");
        assert_eq!(env["ORCH_FILES"], "src/a.rs\ntests/a.rs");
        assert_eq!(
            env["ORCH_PROMPT_FILE"],
            "/p/.orch/runs/r/tasks/7/1/prompt.md"
        );
        assert_eq!(env["ORCH_PROJECT_DIR"], "/p");
        assert_eq!(env["ORCH_RUN_DIR"], "/p/.orch/runs/r");
        assert_eq!(env["MY_VAR"], "x y");
    }

    #[test]
    fn no_prompt_and_no_env_value_is_ever_an_argument() {
        let tmp = tempfile::tempdir().unwrap();
        let prompt = tmp.path().join("prompt.md");
        std::fs::write(&prompt, "build it ORCH-PROMPT-MARKER\nORCH_CONTEXT {}\n").unwrap();
        let id = TaskId::new("7");
        let files = crate::paths::project_paths(&["a.rs"]);
        for kind in AgentKind::ALL {
            let command = (kind == AgentKind::Command).then(|| vec!["./agent", "{prompt_file}"]);
            let mut a = agent(kind, command);
            a.args = vec![];
            a.env = BTreeMap::from([("KEY".to_string(), "ORCH-ENV-MARKER".to_string())]);
            let inv = invocation(&AgentCall {
                name: "mine",
                agent: &a,
                role: Role::Worker,
                task: Some(&id),
                files: &files,
                prompt_file: &prompt,
                project_dir: tmp.path(),
                run_dir: tmp.path(),
                session: None,
            })
            .unwrap();
            let line = inv.argv.join(" ");
            assert!(
                !line.contains("MARKER"),
                "{kind}: the command line holds a secret: {line}"
            );
            assert!(env_of(&inv, "KEY") == Some("ORCH-ENV-MARKER"), "{kind}");
            // The CLIs read the prompt on stdin; a program is given its path.
            let cli = !matches!(kind, AgentKind::Command | AgentKind::Scripted);
            assert_eq!(
                inv.stdin.as_deref(),
                cli.then_some(prompt.as_path()),
                "{kind}"
            );
        }
    }

    /// A Claude or Codex worker's call, with the CLI's state in `state` and the prompt in a
    /// real file; its invocation.
    fn continued(kind: AgentKind, state: &Path, session: &str) -> Invocation {
        continued_with(kind, &[], state, session)
    }

    fn continued_with(kind: AgentKind, args: &[&str], state: &Path, session: &str) -> Invocation {
        let mut a = agent(kind, None);
        a.args = args.iter().map(std::string::ToString::to_string).collect();
        a.env = BTreeMap::from([
            ("CLAUDE_CONFIG_DIR".to_string(), state.display().to_string()),
            ("CODEX_HOME".to_string(), state.display().to_string()),
        ]);
        let prompt = state.join("prompt.md");
        std::fs::write(&prompt, "do it").unwrap();
        let id = TaskId::new("7");
        let files = crate::paths::project_paths(&["a.rs"]);
        invocation(&AgentCall {
            name: "mine",
            agent: &a,
            role: Role::Worker,
            task: Some(&id),
            files: &files,
            prompt_file: &prompt,
            project_dir: Path::new("/p"),
            run_dir: Path::new("/p/.orch/runs/r"),
            session: Some(session),
        })
        .unwrap()
    }

    fn env_of<'a>(inv: &'a Invocation, name: &str) -> Option<&'a str> {
        inv.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn claude_continues_a_session_it_has_on_record_and_only_then() {
        let state = tempfile::tempdir().unwrap();
        let id = "5b2b37de-afde-46eb-847c-2b6f10c250ea";
        let fresh = continued(AgentKind::Claude, state.path(), id);
        assert!(
            !fresh.argv.contains(&"--resume".to_string()),
            "{:?}",
            fresh.argv
        );
        assert_eq!(env_of(&fresh, RESUME_SESSION_ENV), Some(id));

        let project = state.path().join("projects/-p");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join(format!("{id}.jsonl")), "{}\n").unwrap();
        let resumed = continued(AgentKind::Claude, state.path(), id);
        assert_eq!(resumed.argv[..4], ["claude", "-p", "--resume", id]);

        // An id that is not one (read from an agent's output) is never used, even when a
        // record of that name exists.
        for odd in ["../../etc/passwd", "--dangerously-skip-permissions", ""] {
            std::fs::write(project.join(format!("{odd}.jsonl")), "").ok();
            let inv = continued(AgentKind::Claude, state.path(), odd);
            assert!(!inv.argv.contains(&"--resume".to_string()), "{odd}");
        }
    }

    #[test]
    fn codex_continues_a_session_it_has_on_record_and_only_then() {
        let state = tempfile::tempdir().unwrap();
        let id = "01a20cb2-39a6-74c2-a0c9-e459c875a001";
        let fresh = continued(AgentKind::Codex, state.path(), id);
        assert!(
            !fresh.argv.contains(&"resume".to_string()),
            "{:?}",
            fresh.argv
        );

        let day = state.path().join("sessions/2026/11/24");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(
            day.join(format!("rollout-2026-11-24T08-35-36-{id}.jsonl")),
            "",
        )
        .unwrap();
        let overrides = [
            "-c",
            "model_provider=stub",
            "--config=analytics.enabled=false",
        ];
        let resumed = continued_with(AgentKind::Codex, &overrides, state.path(), id);
        assert_eq!(resumed.argv[1], "exec");
        let at = resumed.argv.iter().position(|a| a == "resume").unwrap();
        assert_eq!(resumed.argv[at..at + 3], ["resume", id, "-"]);
        assert_eq!(resumed.argv[at + 3..], overrides);

        // `exec resume` takes no `--profile`: with it in the args, the attempt starts over.
        let profile = continued_with(AgentKind::Codex, &["--profile", "p"], state.path(), id);
        assert!(
            !profile.argv.contains(&"resume".to_string()),
            "{:?}",
            profile.argv
        );
    }
}
