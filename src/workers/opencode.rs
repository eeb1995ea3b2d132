//! OpenCode, headless: `opencode run PROMPT` (`opencode -m` would open the TUI).

use super::{Adapter, AgentCall, prompt_argument};

pub struct Opencode;

impl Adapter for Opencode {
    fn wants_prompt_text(&self) -> bool {
        true
    }

    fn argv(&self, call: &AgentCall, prompt: &str) -> anyhow::Result<Vec<String>> {
        let mut argv = vec!["opencode".to_string(), "run".into()];
        if let Some(model) = &call.agent.model {
            argv.extend(["-m".into(), model.clone()]);
        }
        argv.push(prompt_argument(call, prompt));
        Ok(argv)
    }

    fn install_hint(&self) -> &'static str {
        "npm install -g opencode-ai"
    }
}
