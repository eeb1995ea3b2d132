//! Codex CLI, headless: `codex exec`, in its own `workspace-write` sandbox (exec never asks
//! for approval). It prints its last message on stdout.

use super::{Adapter, AgentCall, prompt_argument};

pub struct Codex;

impl Adapter for Codex {
    fn wants_prompt_text(&self) -> bool {
        true
    }

    fn argv(&self, call: &AgentCall, prompt: &str) -> anyhow::Result<Vec<String>> {
        let mut argv = vec![
            "codex".to_string(),
            "exec".into(),
            "-s".into(),
            "workspace-write".into(),
        ];
        if let Some(model) = &call.agent.model {
            argv.extend(["-m".into(), model.clone()]);
        }
        argv.push(prompt_argument(call, prompt));
        Ok(argv)
    }

    fn install_hint(&self) -> &'static str {
        "npm install -g @openai/codex"
    }
}
