//! `kind: scripted`: orch's built-in deterministic agent (`orch scripted-agent PROMPT_FILE`),
//! for the demo and the tests.

use super::{Adapter, AgentCall};

pub(super) struct Scripted;

impl Adapter for Scripted {
    fn argv(&self, call: &AgentCall) -> anyhow::Result<Vec<String>> {
        let exe = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("failed to find orch's own executable: {e}"))?;
        Ok(vec![
            exe.display().to_string(),
            "scripted-agent".into(),
            call.prompt_file.display().to_string(),
        ])
    }
}
