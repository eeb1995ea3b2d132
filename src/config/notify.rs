//! `notify:`: how the user is told that a run ended, a task failed for good, a budget
//! threshold was crossed, or a plan waits for approval (see [`crate::notify`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `notify:` in `orch.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// A message on the status line of every terminal attached to the run's session, the
    /// bell, and the task's window marked.
    pub tmux: bool,
    /// A desktop notification, where `notify-send` (Linux) or `osascript` (macOS) exists.
    pub desktop: bool,
    /// A command (argv, no shell) run with one JSON document on its standard input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<Vec<String>>,
    /// How long the hook may take before it is stopped (and that reported).
    #[serde(with = "super::schema::duration")]
    pub hook_timeout: Duration,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            tmux: true,
            desktop: true,
            hook: None,
            hook_timeout: Duration::from_secs(10),
        }
    }
}

impl Notify {
    /// What is wrong with it, for the config's check.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(hook) = &self.hook
            && hook.first().is_none_or(|p| p.trim().is_empty())
        {
            problems.push(
                "`notify.hook` must name a program to run, e.g. `hook: [\"./notify.sh\"]` \
                 (argv, no shell); remove it for no hook"
                    .to_string(),
            );
        }
        if let Some(hook) = &self.hook
            && hook.iter().any(|a| a.contains('\0'))
        {
            problems.push("`notify.hook` has an argument with a NUL byte".to_string());
        }
        if self.hook_timeout.is_zero() {
            problems.push("`notify.hook_timeout` must be longer than zero".to_string());
        }
        problems
    }
}
