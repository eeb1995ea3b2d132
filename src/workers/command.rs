//! `kind: command`: any program. It gets its argv from the config (placeholders filled, no
//! shell), the `ORCH_*` variables, and its stdout is its answer.

use super::{Adapter, AgentCall, fill};

pub struct Command;

impl Adapter for Command {
    fn argv(&self, call: &AgentCall, _prompt: &str) -> anyhow::Result<Vec<String>> {
        let command = call
            .agent
            .command
            .as_ref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| anyhow::anyhow!("agent `{}` has no `command` to run", call.name))?;
        Ok(command.iter().map(|a| fill(a, call)).collect())
    }

    fn install_hint(&self) -> &'static str {
        "check the agent's `command` in orch.yaml: its first element must be a program on PATH \
         or a path relative to the project root"
    }
}
