//! `kind: command`: any program. It gets its argv from the config (placeholders filled, no
//! shell), the `ORCH_*` variables, and its stdout is its answer. A line `ORCH_SESSION <id>` on
//! its stdout names a session of its own: when the attempt is interrupted, the next one gets
//! `ORCH_RESUME_SESSION=<id>` to continue it.

use super::{Adapter, AgentCall, Assessment, fill};

/// What starts the line naming the agent's session.
pub(super) const SESSION_MARKER: &str = "ORCH_SESSION ";

pub(super) struct Command;

impl Adapter for Command {
    fn argv(&self, call: &AgentCall) -> anyhow::Result<Vec<String>> {
        let command = call
            .agent
            .command
            .as_ref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| anyhow::anyhow!("agent `{}` has no `command` to run", call.name))?;
        Ok(command.iter().map(|a| fill(a, call)).collect())
    }

    fn assess(&self, stdout: &str) -> Assessment {
        // The latest line wins: an agent may start over in a new session.
        let session_id = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(SESSION_MARKER))
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(String::from);
        Assessment {
            session_id,
            ..Assessment::default()
        }
    }

    fn install_hint(&self) -> &'static str {
        "check the agent's `command` in orch.yaml: its first element must be a program on PATH \
         or a path relative to the project root"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_line_names_the_session_to_continue() {
        let out = "working\nORCH_SESSION s-1\nmore\nORCH_SESSION  s-2 \ndone\n";
        assert_eq!(Command.assess(out).session_id.as_deref(), Some("s-2"));
        assert_eq!(Command.assess("ORCH_SESSION \nx").session_id, None);
        assert_eq!(Command.assess("no session").session_id, None);
        assert_eq!(Command.assess(out).failure, None);
    }
}
