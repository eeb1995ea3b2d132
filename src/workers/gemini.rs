//! Gemini CLI, headless: `gemini -p PROMPT`, edits approved, the folder trusted.

use super::{Adapter, AgentCall, prompt_argument};

pub struct Gemini;

impl Adapter for Gemini {
    fn wants_prompt_text(&self) -> bool {
        true
    }

    fn argv(&self, call: &AgentCall, prompt: &str) -> anyhow::Result<Vec<String>> {
        let mut argv = vec![
            "gemini".to_string(),
            "-p".into(),
            prompt_argument(call, prompt),
            "--approval-mode".into(),
            "auto_edit".into(),
            "--skip-trust".into(),
        ];
        if let Some(model) = &call.agent.model {
            argv.extend(["-m".into(), model.clone()]);
        }
        Ok(argv)
    }

    fn install_hint(&self) -> &'static str {
        "npm install -g @google/gemini-cli"
    }
}
