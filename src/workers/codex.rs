//! Codex CLI, headless: `codex exec --json -s workspace-write --skip-git-repo-check -`, the
//! prompt on stdin (`-`), never on the command line.
//!
//! Permissions: Codex's own sandbox. `exec` never asks for approval; in `workspace-write` it
//! may write anywhere in the project (and run commands there), in `read-only`, which the
//! judge and the oracle get, nowhere. Codex has no per-file rules, so a worker's writes
//! outside its files are caught by the ownership watcher, not prevented. Codex edits files
//! through its shell, so `allow_shell: false` cannot apply to it and is refused.
//!
//! `--skip-git-repo-check`: orch also runs in projects that are not git repositories.
//!
//! An interrupted attempt's session is continued with `codex exec ... resume ID -` when
//! Codex has it on record (`$CODEX_HOME`, else `~/.codex`: `sessions/Y/M/D/rollout-*-ID.jsonl`).
//! A resumed session keeps the sandbox it started with (checked by hand with 0.169: `-s`
//! before `resume` does not change it), which for a worker is `workspace-write`.

mod events;

use super::readiness::{Check, Setting, needs_node};
use super::{Adapter, AgentCall, Assessment, Edits};
use crate::transcript::Entry;

pub(super) struct Codex;

/// Whether `args` are `-c key=value` overrides only (`-c` / `--config`, split or joined).
fn only_config_overrides(args: &[String]) -> bool {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-c" | "--config" => {
                if args.next().is_none() {
                    return false;
                }
            }
            a if a.starts_with("--config=") || (a.starts_with("-c") && a.len() > 2) => {}
            _ => return false,
        }
    }
    true
}

impl Adapter for Codex {
    fn prompt_on_stdin(&self) -> bool {
        true
    }

    fn argv(&self, call: &AgentCall) -> anyhow::Result<Vec<String>> {
        if !call.agent.allow_shell {
            anyhow::bail!(
                "agent `{}`: Codex edits files through its shell, so `allow_shell: false` \
                 cannot apply to it; remove that line (Codex's sandbox still keeps it in the \
                 project)",
                call.name
            );
        }
        let sandbox = match call.edits() {
            Edits::Anywhere | Edits::Only(_) => "workspace-write",
            Edits::Nothing => "read-only",
        };
        let mut argv = vec![
            "codex".to_string(),
            "exec".into(),
            "--json".into(),
            "-s".into(),
            sandbox.into(),
            "--skip-git-repo-check".into(),
        ];
        if let Some(model) = &call.agent.model {
            argv.extend(["-m".into(), model.clone()]);
        }
        if let Some(session) = call.session {
            argv.extend(["resume".into(), session.into()]);
        }
        // `-`: the prompt is read from stdin (also after `resume ID`).
        argv.push("-".into());
        Ok(argv)
    }

    fn sandboxed_args(&self, nests: bool) -> &'static [&'static str] {
        // Codex's own sandbox runs each shell command under bubblewrap (0.169 has no other
        // way for workspace-write), which works inside orch's box for a user, not for root.
        // Then orch's box is the sandbox, which is what Codex's flag is for; it keeps the
        // project read-only for the judge and the oracle (see `sandbox::confine`).
        if nests {
            &[]
        } else {
            &["--dangerously-bypass-approvals-and-sandbox"]
        }
    }

    fn can_continue(&self, setting: &Setting, session: &str) -> bool {
        // `exec resume` parses the config's `args` (they come after it) and takes fewer
        // options than `exec`: `-c` overrides, which it does take, and nothing else.
        if !only_config_overrides(&setting.agent.args) {
            return false;
        }
        let Some(sessions) = setting
            .dir("CODEX_HOME", ".codex")
            .map(|d| d.join("sessions"))
        else {
            return false;
        };
        // sessions/YYYY/MM/DD/rollout-<time>-<ID>.jsonl
        let suffix = format!("-{session}.jsonl");
        let below = |dir: std::path::PathBuf| {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect::<Vec<_>>()
        };
        below(sessions)
            .into_iter()
            .flat_map(below)
            .flat_map(below)
            .flat_map(below)
            .any(|f| {
                f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("rollout-") && n.ends_with(&suffix))
            })
    }

    fn answer(&self, stdout: &str) -> String {
        events::summarize(stdout).answer_or(stdout)
    }

    fn assess(&self, stdout: &str) -> Assessment {
        events::summarize(stdout).assess("codex", "turn.completed")
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
        "npm install -g @openai/codex"
    }

    fn readiness(&self, s: &Setting) -> Vec<Check> {
        let mut checks: Vec<Check> = needs_node(s, "codex").into_iter().collect();
        if !s.agent.allow_shell {
            checks.push(Check::fail(
                "allow_shell: false cannot apply to Codex, which edits through its shell",
                "remove `allow_shell: false` from this agent",
            ));
        }
        // A provider of one's own names the variable that holds its key.
        if let Some(key) = provider_env_key(&s.agent.args) {
            checks.push(match s.var(&key) {
                Some(_) => Check::Ok(format!("credentials: {key} is set (custom provider)")),
                None => Check::fail(
                    format!("the custom model provider reads its key from {key}, which is not set"),
                    format!("set {key} in the environment or in the agent's `env`"),
                ),
            });
            return checks;
        }
        let login = s
            .dir("CODEX_HOME", ".codex")
            .map(|d| d.join("auth.json"))
            .filter(|p| p.is_file());
        checks.push(
            match (s.first_var(&["OPENAI_API_KEY", "CODEX_API_KEY"]), login) {
                (Some(var), _) => Check::Ok(format!("credentials: {var} is set")),
                (None, Some(path)) => {
                    Check::Ok(format!("credentials: a login in {}", path.display()))
                }
                (None, None) => Check::fail(
                    "no credentials found: no OPENAI_API_KEY or CODEX_API_KEY, and no login in \
                 $CODEX_HOME/auth.json (~/.codex)",
                    "set OPENAI_API_KEY (in the environment or the agent's `env`), or run \
                 `codex login`",
                ),
            },
        );
        checks
    }
}

/// The `env_key` of a provider given in the args (`-c model_providers.x={...,env_key="K"}`).
fn provider_env_key(args: &[String]) -> Option<String> {
    let arg = args.iter().find(|a| a.contains("model_providers."))?;
    let at = arg.find("env_key")?;
    let rest = &arg[at + "env_key".len()..];
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value: String = rest[1..].chars().take_while(|c| *c != quote).collect();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentKind;
    use crate::prompt::Role;
    use crate::workers::testing::{agent, call};

    #[test]
    fn workers_write_in_the_workspace_and_the_judge_reads_only() {
        let a = agent(AgentKind::Codex);
        let worker = Codex.argv(&call(&a, Role::Worker, &[])).unwrap();
        assert_eq!(
            worker,
            [
                "codex",
                "exec",
                "--json",
                "-s",
                "workspace-write",
                "--skip-git-repo-check",
                "-m",
                "m1",
                "-"
            ]
        );
        let judge = Codex.argv(&call(&a, Role::Judge, &[])).unwrap();
        assert!(judge.windows(2).any(|w| w == ["-s", "read-only"]));
        let mut no_shell = a.clone();
        no_shell.allow_shell = false;
        let err = Codex.argv(&call(&no_shell, Role::Worker, &[]));
        assert!(format!("{:#}", err.unwrap_err()).contains("allow_shell"));
    }

    #[test]
    fn the_provider_key_is_read_from_the_args() {
        let args = vec![
            "-c".to_string(),
            r#"model_providers.stub={name="stub",base_url="http://x",env_key="STUB_KEY"}"#.into(),
        ];
        assert_eq!(provider_env_key(&args).as_deref(), Some("STUB_KEY"));
        assert_eq!(provider_env_key(&[]), None);
    }
}
