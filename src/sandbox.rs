//! The box an agent runs in. An agent CLI's own rules cover its edit tools, not the shell it may
//! run (it must, for TDD), so on Linux every agent runs under bubblewrap (`bwrap`): the project,
//! the CLI's own state directories and a private `/tmp` are writable, the rest of the file
//! system (orch's run directory included) is read-only, and the user's homes are hidden behind an empty,
//! read-only tmpfs with only what the agent needs bound back (see [`mounts`]); the parts of
//! the project's `.git/` that the guard watches are read-only (see [`repo`]).
//!
//! A run's agents share one box per mount plan, which bwrap makes once and each agent enters
//! in a private copy ([`shared`], [`enter`]): making a box is most of a boxed start's cost.
//! An agent gets a bwrap of its own where there is no shared box to be had.
//!
//! `sandbox: auto | bwrap | off` (in `orch.yaml`, per agent overridable) decides;
//! [`confine`] gives an agent's invocation its [`Jail`] (the one place that is decided), and
//! [`command`] turns the jail into the `bwrap` command line at the one place an agent is
//! executed ([`crate::agent_process::run`], and [`crate::agent_process::subprocess`] for `orch plan`). Run as root, the
//! box keeps no capability (with them the agent could unmount what hides the home), and the
//! judge and the oracle get the project read-only whatever their CLI's own rules.
//!
//! Stopping: orch stops an agent by signalling the pane's process group. In a shared box, the
//! launcher's child and the box's init ignore the stop signals and the agent has them at their
//! default (see [`enter`]). In a bwrap of the agent's own, bwrap is run without
//! `--new-session`, so the whole box stays in that group, and with `--unshare-pid` (a fresh
//! `/proc`, so that `/proc/<pid>/root` of a process outside cannot be a way out). bwrap itself
//! does not pass signals on, and dies of a TERM at once, which (with `--die-with-parent`) would
//! kill the agent before it could end its turn cleanly; so bwrap runs with the stop signals
//! ignored, and `orch sandbox-exec` inside the box starts the agent with them back at their
//! default, waits for it and records how it ended ([`exec`], read back by [`ended`]: bwrap
//! itself reports a signal as 128 + N, which an agent's own exit status could be). The agent
//! then gets the group's TERM as it did without a box, and a KILL reaches everything. A pid
//! inside the box is not the same as outside: orch finds the box's processes by their
//! environment ([`crate::agent_process::orphans`]), never by a pid an agent reports.

mod enter;
mod hold;
mod inside;
mod launch;
mod mounts;
mod repo;
mod shared;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use enter::{Ended, Said, Status};
pub use hold::{Hold, Info};
pub use inside::{exec, parse_signals};
pub use launch::{
    Agent, Ending, Prepared, STOP_SIGNALS, bwrap_args, command, command_holding, command_with,
    ended, from_status,
};
pub use mounts::{Env, Mount, plan};
pub use shared::hold as hold_shared;

/// `sandbox:` in `orch.yaml`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// bubblewrap where it works here; otherwise none, said once per run.
    #[default]
    Auto,
    /// bubblewrap, or no run at all.
    Bwrap,
    /// No sandbox: the agent can write wherever the user can.
    Off,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Bwrap => "bwrap",
            Mode::Off => "off",
        }
    }
}

/// `network:` in `orch.yaml`: whether a sandboxed agent may use the network (the model APIs
/// need it, unless the model runs on this machine).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    #[default]
    On,
    Off,
}

/// How one agent run is confined, decided when it is invoked and carried in its launch spec.
/// What is bound into the box is worked out at exec time ([`plan`]), from the environment the
/// agent really gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jail {
    /// The project root (or the run's work tree): writable.
    pub project: PathBuf,
    /// The run's directory: read-only in the box (see mounts.rs).
    pub run_dir: PathBuf,
    /// The agent's kind, for the state directories its CLI needs.
    pub kind: crate::config::AgentKind,
    /// `--unshare-net`: no network but the box's own loopback.
    #[serde(default)]
    pub no_network: bool,
    /// The project read-only (the judge, the oracle); the run directory stays writable.
    #[serde(default)]
    pub read_only_project: bool,
    /// More paths the config binds in (`sandbox_paths`), writable or read-only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<PathBuf>,
}

/// What the config says for one agent: the agent's own `sandbox`/`network`, else the top
/// level's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub mode: Mode,
    pub network: Network,
}

/// The jail for an agent run with `setting`, or `None` when it runs unconfined (`off`, or
/// `auto` where bubblewrap does not work: [`availability`] says why, and the engine says it
/// once per run).
pub fn jail(
    setting: Setting,
    kind: crate::config::AgentKind,
    project: &Path,
    run_dir: &Path,
    extra: &crate::config::SandboxPaths,
) -> Option<Jail> {
    match setting.mode {
        Mode::Off => return None,
        Mode::Auto if availability().is_err() => return None,
        Mode::Auto | Mode::Bwrap => {}
    }
    Some(Jail {
        project: project.to_path_buf(),
        run_dir: run_dir.to_path_buf(),
        kind,
        no_network: setting.network == Network::Off,
        read_only_project: false,
        write: extra.write.iter().map(|p| expand_home(p)).collect(),
        read: extra.read.iter().map(|p| expand_home(p)).collect(),
    })
}

/// The jail for `agent` of `config`, run in `project` for the run (or planning) in
/// `run_dir`.
pub fn jail_for(
    config: &crate::config::Config,
    agent: &crate::config::AgentConfig,
    project: &Path,
    run_dir: &Path,
) -> Option<Jail> {
    jail(
        config.sandbox_for(agent),
        agent.kind,
        project,
        run_dir,
        &config.sandbox_paths,
    )
}

/// What the config's sandbox comes to here, checked before a run (or `orch plan`) starts:
/// `Ok(None)` when every agent runs as configured; `Ok(Some(why))` when agents on `auto`
/// will run unconfined because the sandbox does not work here (to be said once); an error
/// saying what to do when an agent asks for `bwrap` and it does not work.
pub fn check(config: &crate::config::Config) -> anyhow::Result<Option<String>> {
    let Err(why) = availability() else {
        return Ok(None);
    };
    let mut auto = false;
    for (name, agent) in &config.agents {
        match config.sandbox_for(agent).mode {
            Mode::Bwrap => {
                return Err(crate::error::usage(format!(
                    "agent `{name}` is to run in the sandbox (`sandbox: bwrap`), but {why}"
                )));
            }
            Mode::Auto => auto = true,
            Mode::Off => {}
        }
    }
    Ok(auto.then_some(why.0))
}

/// Puts `invocation` (of `agent` of `config` in `role`, run in `project` for the run or
/// planning in `run_dir`) in its sandbox, when it gets one: the one place where that is
/// decided.
pub fn confine(
    invocation: &mut crate::workers::Invocation,
    role: crate::prompt::Role,
    config: &crate::config::Config,
    agent: &crate::config::AgentConfig,
    project: &Path,
    run_dir: &Path,
) {
    invocation.sandbox = jail_for(config, agent, project, run_dir);
    if let Some(jail) = &mut invocation.sandbox {
        // The judge and the oracle change nothing: the box holds them to it, whatever their
        // CLI's own rules.
        jail.read_only_project = matches!(
            role,
            crate::prompt::Role::Judge | crate::prompt::Role::Oracle
        );
        // The run's directory is read-only in the box; the planner writes its plan file in
        // its attempt's directory, where its prompt is.
        if role == crate::prompt::Role::Planner
            && let Some(attempt) = invocation
                .env
                .iter()
                .find(|(k, _)| k == "ORCH_PROMPT_FILE")
                .and_then(|(_, v)| Path::new(v).parent())
        {
            jail.write.push(attempt.to_path_buf());
        }
        let extra = crate::workers::adapter(agent.kind).sandboxed_args(!launch::as_root());
        invocation
            .argv
            .extend(extra.iter().map(std::string::ToString::to_string));
    }
}

/// `~/x` as the user's home joined with `x`; anything else as it is.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Why the sandbox cannot be used here, in one sentence with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Whether bubblewrap works here: found, and able to make the box orch makes (a quick
/// `bwrap ... true`, once per process).
pub fn availability() -> Result<(), Unavailable> {
    static CHECKED: OnceLock<Result<(), Unavailable>> = OnceLock::new();
    CHECKED.get_or_init(probe).clone()
}

fn probe() -> Result<(), Unavailable> {
    if !cfg!(target_os = "linux") {
        return Err(Unavailable(
            "the sandbox uses bubblewrap, which is Linux only; on this system agents run \
             unconfined (set `sandbox: off` to say so, see the README's Sandbox section)"
                .into(),
        ));
    }
    let Ok(bwrap) = which::which("bwrap") else {
        return Err(Unavailable(
            "bubblewrap (`bwrap`) is not installed: install it (`sudo apt-get install \
             bubblewrap`, `sudo dnf install bubblewrap`) or set `sandbox: off`"
                .into(),
        ));
    };
    let mut probe = Command::new(&bwrap);
    if launch::as_root() {
        probe.args(["--cap-drop", "ALL"]);
    }
    let output = probe
        .args([
            "--die-with-parent",
            "--unshare-pid",
            "--as-pid-1",
            "--unshare-ipc",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            "--remount-ro",
            "/tmp",
            "--",
            "true",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match output {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let said = if said.is_empty() {
                format!("it {}", out.status)
            } else {
                said
            };
            Err(Unavailable(format!(
                "bubblewrap ({}) cannot make a sandbox here: {said}; it needs unprivileged user \
                 namespaces (`sysctl kernel.unprivileged_userns_clone=1`; on Ubuntu 24.04 \
                 also `sysctl kernel.apparmor_restrict_unprivileged_userns=0` or an AppArmor \
                 profile for bwrap), or a container that allows them; else set `sandbox: off`",
                bwrap.display()
            )))
        }
        Err(e) => Err(Unavailable(format!(
            "cannot run bubblewrap ({}): {e}; reinstall it or set `sandbox: off`",
            bwrap.display()
        ))),
    }
}

/// Lines of an agent's output that show the sandbox refusing something: a write to a
/// read-only place, or the renaming or removal of one of the box's mount points (`mv .git x`,
/// or `git config`, which renames its new config over the read-only one: both fail with
/// EBUSY). At most `max`, each cut to 200 characters.
pub fn refusals(output: &str, max: usize) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.contains("Read-only file system") || l.contains("Device or resource busy"))
        .map(|l| crate::transcript::truncate(l.trim(), 200))
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests;
