//! What `orch doctor` asks of an agent CLI beyond its binary: credentials it can find, the
//! first-run settings it needs before it runs headless. Each adapter says what applies to its
//! CLI ([`super::Adapter::readiness`]); this module gives them the agent's environment as the
//! agent will see it (orch's own, with the agent's `env` from the config over it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::AgentConfig;

/// One finding, with the fix when something is missing.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Ok(String),
    /// Something that may be fine (a credential orch cannot see, say).
    Warn {
        what: String,
        fix: String,
    },
    /// Something without which the agent will not run.
    Fail {
        what: String,
        fix: String,
    },
}

impl Check {
    pub fn warn(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::Warn {
            what: what.into(),
            fix: fix.into(),
        }
    }

    pub fn fail(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::Fail {
            what: what.into(),
            fix: fix.into(),
        }
    }
}

/// An agent as `orch doctor` and the adapters see it: its config and the environment it
/// will run in.
pub struct Setting<'a> {
    pub agent: &'a AgentConfig,
    pub project_dir: &'a Path,
    /// The process environment (tests give their own).
    outer: BTreeMap<String, String>,
}

impl<'a> Setting<'a> {
    /// With orch's own environment under the agent's.
    pub fn new(agent: &'a AgentConfig, project_dir: &'a Path) -> Setting<'a> {
        // `vars()` would panic on a value that is not UTF-8, which no check here reads.
        let outer = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Setting::with_env(agent, project_dir, outer)
    }

    pub fn with_env(
        agent: &'a AgentConfig,
        project_dir: &'a Path,
        outer: BTreeMap<String, String>,
    ) -> Setting<'a> {
        Setting {
            agent,
            project_dir,
            outer,
        }
    }

    /// A variable as the agent sees it; an empty value counts as unset.
    pub fn var(&self, name: &str) -> Option<String> {
        self.agent
            .env
            .get(name)
            .or_else(|| self.outer.get(name))
            .filter(|v| !v.is_empty())
            .cloned()
    }

    /// The first of `names` that is set.
    pub fn first_var(&self, names: &[&'static str]) -> Option<&'static str> {
        names.iter().copied().find(|n| self.var(n).is_some())
    }

    /// The agent's home directory.
    pub fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }

    /// A path under the agent's home, or under `$VAR` when the agent has it set (as with
    /// `CODEX_HOME`, `CLAUDE_CONFIG_DIR`, `XDG_DATA_HOME`).
    pub fn dir(&self, var: &str, under_home: &str) -> Option<PathBuf> {
        self.var(var)
            .map(PathBuf::from)
            .or_else(|| self.home().map(|h| h.join(under_home)))
    }

    /// Whether the agent's `args` contain `needle` anywhere (a `-c key=value`, a flag).
    pub fn args_mention(&self, needle: &str) -> bool {
        self.agent.args.iter().any(|a| a.contains(needle))
    }
}

/// Whether `program` can be found on the agent's PATH (for the node that npm-installed CLIs
/// start with).
pub fn on_path(setting: &Setting, program: &str) -> bool {
    let path = setting.var("PATH").unwrap_or_default();
    which::which_in(program, Some(path), setting.project_dir).is_ok()
}

/// The usual check that a node-based CLI finds node.
pub fn needs_node(setting: &Setting, cli: &str) -> Option<Check> {
    (!on_path(setting, "node")).then(|| {
        Check::fail(
            format!("{cli} runs on node, which is not on the agent's PATH"),
            "install Node.js 20 or newer (https://nodejs.org) or put it on PATH",
        )
    })
}
