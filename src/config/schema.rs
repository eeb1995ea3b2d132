//! The shape of `orch.yaml`. Every struct denies unknown fields: serde-saphyr then reports the
//! misspelled name, its line, and the names that are allowed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Named agents; roles and plans refer to them by name.
    pub agents: BTreeMap<String, AgentConfig>,
    pub roles: Roles,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub gates: Gates,
    #[serde(default)]
    pub ownership: Ownership,
    /// Whether agents run in a sandbox (see [`crate::sandbox`]); an agent's own wins.
    #[serde(default)]
    pub sandbox: SandboxMode,
    /// Whether a sandboxed agent may use the network; an agent's own wins.
    #[serde(default)]
    pub network: Network,
    /// More paths bound into every agent's sandbox.
    #[serde(default, skip_serializing_if = "SandboxPaths::is_empty")]
    pub sandbox_paths: SandboxPaths,
    /// Where the run's agents work: a worktree of its own (default) or the checkout.
    #[serde(default)]
    pub workspace: crate::workspace::Mode,
    /// Whether each task of a worktree run gets a worktree of its own.
    #[serde(default)]
    pub isolation: crate::workspace::Isolation,
    /// What a worktree run does with the checkout's uncommitted changes.
    #[serde(default)]
    pub uncommitted: crate::workspace::Uncommitted,
    /// How the user is told when something needs them (see [`crate::notify`]).
    #[serde(default)]
    pub notify: super::notify::Notify,
    /// Whether a valid plan waits for `orch approve` before anything is dispatched.
    #[serde(default)]
    pub plan_approval: PlanApproval,
}

/// `plan_approval:`: what happens to a valid plan (the planner's or `--plan`'s).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PlanApproval {
    /// It is dispatched at once.
    #[default]
    Auto,
    /// It waits for the user's `orch approve` (as `orch up --review` asks for one run).
    Ask,
}

impl Config {
    /// The sandbox setting for `agent`: its own, else the config's.
    pub fn sandbox_for(&self, agent: &AgentConfig) -> crate::sandbox::Setting {
        crate::sandbox::Setting {
            mode: agent.sandbox.unwrap_or(self.sandbox),
            network: agent.network.unwrap_or(self.network),
        }
    }
}

pub use crate::sandbox::{Mode as SandboxMode, Network};

/// `sandbox_paths:` more paths for the sandbox, `~/` for the user's home.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxPaths {
    /// Bound writable (a build cache, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<String>,
    /// Bound read-only (a toolchain under a home).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
}

impl SandboxPaths {
    pub fn is_empty(&self) -> bool {
        self.write.is_empty() && self.read.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub kind: AgentKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Extra arguments, appended to the adapter's own. Placeholders are filled in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment for the agent's process.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// For `kind: command`: the argv to run (no shell). Placeholders are filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Whether the agent CLI may run shell commands (so that a worker can run the tests it
    /// writes). Edits are always allowed, within the task's own files where the CLI can
    /// restrict them. Not used by `kind: command` and `kind: scripted`.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub allow_shell: bool,
    /// For `kind: scripted` only: the user's acknowledgement that this agent ignores the
    /// request and builds orch's sample project. Without it `orch up` and `orch plan` refuse
    /// to run it, so that a starter config cannot quietly build the wrong thing.
    #[serde(default, skip_serializing_if = "is_no")]
    pub sample: bool,
    /// This agent's sandbox, over the config's `sandbox`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxMode>,
    /// This agent's network in the sandbox, over the config's `network`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
}

fn yes() -> bool {
    true
}

fn is_yes(value: &bool) -> bool {
    *value
}

fn is_no(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    Claude,
    Codex,
    Opencode,
    Gemini,
    Command,
    Scripted,
}

impl AgentKind {
    pub const ALL: [AgentKind; 6] = [
        AgentKind::Claude,
        AgentKind::Codex,
        AgentKind::Opencode,
        AgentKind::Gemini,
        AgentKind::Command,
        AgentKind::Scripted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AgentKind::Claude => "claude",
            AgentKind::Codex => "codex",
            AgentKind::Opencode => "opencode",
            AgentKind::Gemini => "gemini",
            AgentKind::Command => "command",
            AgentKind::Scripted => "scripted",
        }
    }

    /// The executable a real agent CLI is installed as.
    pub fn binary(self) -> Option<&'static str> {
        match self {
            AgentKind::Claude => Some("claude"),
            AgentKind::Codex => Some("codex"),
            AgentKind::Opencode => Some("opencode"),
            AgentKind::Gemini => Some("gemini"),
            AgentKind::Command | AgentKind::Scripted => None,
        }
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    pub planner: String,
    pub judge: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle: Option<String>,
    /// The agents a plan may assign tasks to.
    pub workers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// How many task agents run at once.
    pub max_parallel: usize,
    /// A task with no output and no file activity for this long is killed.
    #[serde(with = "duration")]
    pub task_timeout: Duration,
    /// How many more attempts a task that failed its gates or the judge gets.
    pub retries: u32,
    /// How many more times the planner is asked when its plan is invalid.
    pub planner_retries: u32,
    /// How many more times the judge is asked when its answer holds no valid verdict.
    pub judge_retries: u32,
    /// The most each agent attempt's log keeps on disk (the first and the last half).
    #[serde(with = "size")]
    pub output_cap: u64,
    /// What happens to the processes an agent leaves running when it exits.
    pub leftovers: LeftoverPolicy,
    /// The most the whole run may use, in USD and/or tokens (none: no limit).
    #[serde(skip_serializing_if = "super::budget::Budget::is_empty")]
    pub budget: super::budget::Budget,
    /// What the agents still running do once the budget is used up.
    pub on_budget: super::budget::OnBudget,
}

/// `limits.leftovers`: processes an agent left running when it exited (background jobs,
/// `setsid`/`nohup` children, ones that ignore TERM).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LeftoverPolicy {
    /// Stopped (TERM, then KILL after a grace) and journaled.
    #[default]
    Stop,
    /// Left running, journaled, listed in `orch status` and the report; what they write is
    /// still attributed to their task.
    Keep,
}

impl LeftoverPolicy {
    pub fn name(self) -> &'static str {
        match self {
            LeftoverPolicy::Stop => "stop",
            LeftoverPolicy::Keep => "keep",
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parallel: 4,
            task_timeout: Duration::from_secs(30 * 60),
            retries: 2,
            planner_retries: 2,
            judge_retries: 2,
            output_cap: crate::agent_process::run::DEFAULT_OUTPUT_CAP,
            leftovers: LeftoverPolicy::Stop,
            budget: super::budget::Budget::default(),
            on_budget: super::budget::OnBudget::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Gates {
    /// Shell command that must exit 0 (run with `sh -c` in the project root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lint: Option<String>,
    /// Shell command that must exit 0 (run with `sh -c` in the project root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// Globs (relative to the project root) that mark a test file.
    pub test_pattern: Vec<String>,
    /// Whether tests written after their implementation fail the task.
    pub tdd: TddMode,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            lint: None,
            test: None,
            test_pattern: default_test_patterns(),
            tdd: TddMode::Warn,
        }
    }
}

pub(super) fn default_test_patterns() -> Vec<String> {
    [
        "tests/**",
        "test/**",
        "**/*_test.*",
        "**/*.test.*",
        "**/*_spec.*",
        "**/*.spec.*",
        "**/test_*",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TddMode {
    Off,
    Warn,
    Strict,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Ownership {
    pub on_violation: ViolationPolicy,
    /// Extra globs the ownership watcher ignores (besides `.git/`, `.orch/` and `.gitignore`).
    pub ignore: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ViolationPolicy {
    /// Record the violation and carry on.
    #[default]
    Warn,
    /// Save the violating content, then restore the file as it was when the run started.
    Revert,
    /// Stop the suspected tasks.
    Stop,
}

impl ViolationPolicy {
    pub fn name(self) -> &'static str {
        match self {
            ViolationPolicy::Warn => "warn",
            ViolationPolicy::Revert => "revert",
            ViolationPolicy::Stop => "stop",
        }
    }
}

/// Sizes are written as a number of bytes or with a unit: `512KB`, `10MB`, `1 GiB` (every
/// unit counts in 1024s: KB and KiB alike).
mod size {
    use serde::{Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(bytes: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*bytes)
    }

    pub(super) fn parse(text: &str) -> Result<u64, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let bad = || {
            format!(
                "{text:?} is not a size: write a number of bytes, or one with a unit such as \
                 `512KB`, `10MB`, `1GB`"
            )
        };
        let number: u64 = number.parse().map_err(|_| bad())?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            _ => return Err(bad()),
        };
        number.checked_mul(factor).ok_or_else(bad)
    }

    struct Visitor;

    impl serde::de::Visitor<'_> for Visitor {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a size such as `10MB` or `512KB`, or a number of bytes")
        }

        fn visit_u64<E: Error>(self, bytes: u64) -> Result<u64, E> {
            Ok(bytes)
        }

        fn visit_i64<E: Error>(self, bytes: i64) -> Result<u64, E> {
            u64::try_from(bytes).map_err(|_| E::custom("a size cannot be negative"))
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<u64, E> {
            parse(text).map_err(E::custom)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Visitor)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn sizes_read_the_human_way() {
            assert_eq!(super::parse("4096"), Ok(4096));
            assert_eq!(super::parse("512KB"), Ok(512 * 1024));
            assert_eq!(super::parse("10 MiB"), Ok(10 << 20));
            assert_eq!(super::parse("1g"), Ok(1 << 30));
            assert!(super::parse("ten MB").is_err());
            assert!(super::parse("10 parsecs").is_err());
        }
    }
}

/// Durations are written the human way (`90s`, `30m`, `1h 30m`) or as a number of seconds,
/// as on the command line ([`crate::duration`]).
pub(in crate::config) mod duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer, de::Error};

    pub(in crate::config) fn serialize<S: Serializer>(
        d: &Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    struct Visitor;

    impl serde::de::Visitor<'_> for Visitor {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration such as `90s`, `30m` or `1h`, or a number of seconds")
        }

        fn visit_u64<E: Error>(self, secs: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(secs))
        }

        fn visit_i64<E: Error>(self, secs: i64) -> Result<Duration, E> {
            u64::try_from(secs)
                .map(Duration::from_secs)
                .map_err(|_| E::custom("a duration cannot be negative"))
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<Duration, E> {
            crate::duration::parse(text).map_err(E::custom)
        }
    }

    pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Duration, D::Error> {
        d.deserialize_any(Visitor)
    }
}
