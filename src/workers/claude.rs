//! Claude Code, headless: `claude -p PROMPT --output-format json`, edits allowed. Its JSON
//! result carries the answer text.

use super::{Adapter, AgentCall, prompt_argument};

pub struct Claude;

impl Adapter for Claude {
    fn wants_prompt_text(&self) -> bool {
        true
    }

    fn argv(&self, call: &AgentCall, prompt: &str) -> anyhow::Result<Vec<String>> {
        // The prompt goes first: `--allowedTools` would swallow a prompt placed after it.
        let mut argv = vec![
            "claude".to_string(),
            "-p".into(),
            prompt_argument(call, prompt),
            "--output-format".into(),
            "json".into(),
            "--permission-mode".into(),
            "acceptEdits".into(),
        ];
        if let Some(model) = &call.agent.model {
            argv.extend(["--model".into(), model.clone()]);
        }
        Ok(argv)
    }

    fn answer(&self, stdout: &str) -> String {
        serde_json::from_str::<serde_json::Value>(stdout.trim())
            .ok()
            .and_then(|v| v.get("result").and_then(|r| r.as_str()).map(String::from))
            .unwrap_or_else(|| stdout.to_string())
    }

    fn install_hint(&self) -> &'static str {
        "npm install -g @anthropic-ai/claude-code"
    }
}
