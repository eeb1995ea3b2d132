//! Claude Code, headless: `claude -p --output-format stream-json --verbose`, the prompt on
//! stdin (`-p` without a prompt argument reads it there), never on the command line.
//!
//! Permissions: the default permission mode (never `acceptEdits`, which would override the
//! rules) with `--allowedTools` rules. A worker gets one `Edit(/path)` rule per owned file
//! (`Edit` rules govern the Write tool too; the leading `/` anchors the path at the project
//! root, without it `Edit(a.sh)` would match `a.sh` in any directory), so that a write to any
//! other file is refused by Claude Code itself and listed in the result's
//! `permission_denials`. The planner may edit anywhere; the judge and the oracle nowhere.
//! `Bash` is allowed unless the agent has `allow_shell: false`: a command can still write
//! anywhere, and the ownership watcher stays the net under it.
//!
//! An interrupted attempt's session is continued with `--resume ID` when Claude Code has it
//! on record (`$CLAUDE_CONFIG_DIR`, else `~/.claude`: `projects/<dir>/<ID>.jsonl`); it keeps
//! the conversation, tool results included, up to the interruption.

mod events;

use super::readiness::{Check, Setting};
use super::{Adapter, AgentCall, Assessment, Edits};
use crate::transcript::Entry;

pub(super) struct Claude;

impl Adapter for Claude {
    fn prompt_on_stdin(&self) -> bool {
        true
    }

    fn argv(&self, call: &AgentCall) -> anyhow::Result<Vec<String>> {
        let mut argv = vec!["claude".to_string(), "-p".into()];
        if let Some(session) = call.session {
            argv.extend(["--resume".into(), session.into()]);
        }
        let mut allowed: Vec<String> = match call.edits() {
            Edits::Anywhere => vec!["Edit".into(), "Write".into()],
            Edits::Only(files) => files
                .iter()
                .map(|f| format!("Edit(/{})", escape_rule_path(f)))
                .collect(),
            Edits::Nothing => vec![],
        };
        if call.agent.allow_shell {
            allowed.push("Bash".into());
        }
        if !allowed.is_empty() {
            argv.push("--allowedTools".into());
            argv.extend(allowed);
        }
        if !call.agent.allow_shell {
            argv.extend(["--disallowedTools".into(), "Bash".into()]);
        }
        argv.extend([
            "--output-format".into(),
            "stream-json".into(),
            "--verbose".into(),
        ]);
        if let Some(model) = &call.agent.model {
            argv.extend(["--model".into(), model.clone()]);
        }
        Ok(argv)
    }

    fn can_continue(&self, setting: &Setting, session: &str) -> bool {
        let Some(projects) = setting
            .dir("CLAUDE_CONFIG_DIR", ".claude")
            .map(|d| d.join("projects"))
        else {
            return false;
        };
        // Which directory Claude names after the project is its business: look in each.
        let record = format!("{session}.jsonl");
        std::fs::read_dir(projects)
            .into_iter()
            .flatten()
            .flatten()
            .any(|dir| dir.path().join(&record).is_file())
    }

    fn answer(&self, stdout: &str) -> String {
        events::summarize(stdout).answer_or(stdout)
    }

    fn assess(&self, stdout: &str) -> Assessment {
        events::summarize(stdout).assess("claude", "result")
    }

    fn entries(&self, event: &serde_json::Value) -> Option<Vec<Entry>> {
        events::entries(event)
    }

    fn tally(&self, tally: &mut super::summary::Tally, event: &serde_json::Value) {
        events::tally(tally, event);
    }

    fn streams_events(&self) -> bool {
        true
    }

    fn install_hint(&self) -> &'static str {
        "npm install -g @anthropic-ai/claude-code"
    }

    fn readiness(&self, s: &Setting) -> Vec<Check> {
        let mut checks = Vec::new();
        let keys = [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "CLAUDE_CODE_OAUTH_TOKEN",
            "CLAUDE_CODE_USE_BEDROCK",
            "CLAUDE_CODE_USE_VERTEX",
            "CLAUDE_CODE_USE_FOUNDRY",
        ];
        let login = s
            .dir("CLAUDE_CONFIG_DIR", ".claude")
            .map(|d| d.join(".credentials.json"))
            .filter(|p| p.is_file());
        match (s.first_var(&keys), login) {
            (Some(var), _) => checks.push(Check::Ok(format!("credentials: {var} is set"))),
            (None, Some(path)) => checks.push(Check::Ok(format!(
                "credentials: a login in {}",
                path.display()
            ))),
            // The login may be in the system keychain, which orch cannot see.
            (None, None) => checks.push(Check::warn(
                "no credentials found: no ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN or \
                 CLAUDE_CODE_OAUTH_TOKEN, and no login in ~/.claude",
                "set ANTHROPIC_API_KEY (in the environment or the agent's `env`), or run \
                 `claude` once and log in (`claude setup-token` prints a token for \
                 CLAUDE_CODE_OAUTH_TOKEN)",
            )),
        }
        if s.var("ANTHROPIC_BASE_URL").is_some() && s.var("CLAUDE_CODE_MAX_RETRIES").is_none() {
            checks.push(Check::warn(
                "ANTHROPIC_BASE_URL is set and CLAUDE_CODE_MAX_RETRIES is not: Claude Code \
                 retries a failing server for minutes before it gives up",
                "set CLAUDE_CODE_MAX_RETRIES (e.g. 2) in the agent's env to fail faster",
            ));
        }
        checks
    }
}

/// A path for a permission rule, which is a gitignore-style pattern: glob characters are
/// escaped so that they match themselves.
fn escape_rule_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '!' | '#' | '{' | '}') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentKind;
    use crate::prompt::Role;
    use crate::workers::testing::{agent, call};

    #[test]
    fn a_worker_may_edit_its_own_files_only_and_run_commands() {
        let a = agent(AgentKind::Claude);
        let files = crate::paths::project_paths(&["src/a.rs", "tests/we[ir]d*.rs"]);
        let argv = Claude.argv(&call(&a, Role::Worker, &files)).unwrap();
        assert_eq!(
            argv,
            [
                "claude",
                "-p",
                "--allowedTools",
                "Edit(/src/a.rs)",
                "Edit(/tests/we\\[ir\\]d\\*.rs)",
                "Bash",
                "--output-format",
                "stream-json",
                "--verbose",
                "--model",
                "m1"
            ]
        );
        assert!(!argv.iter().any(|a| a == "acceptEdits"));
    }

    #[test]
    fn roles_and_allow_shell_shape_the_rules() {
        let mut a = agent(AgentKind::Claude);
        a.allow_shell = false;
        let planner = Claude.argv(&call(&a, Role::Planner, &[])).unwrap();
        assert!(
            planner
                .windows(3)
                .any(|w| w == ["--allowedTools", "Edit", "Write"])
        );
        assert!(
            planner
                .windows(2)
                .any(|w| w == ["--disallowedTools", "Bash"])
        );
        let judge = Claude.argv(&call(&a, Role::Judge, &[])).unwrap();
        assert!(!judge.iter().any(|w| w == "--allowedTools"));
    }
}
