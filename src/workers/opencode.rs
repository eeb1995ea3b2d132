//! OpenCode, headless: `opencode run --format json`, the prompt on stdin (`run` reads stdin
//! when it is not a terminal), never on the command line (`opencode -m` alone would open the
//! TUI). It needs a model: the agent's `model` (`provider/model`) or its config's.
//!
//! Permissions: through `OPENCODE_PERMISSION`, a JSON object OpenCode merges over its config
//! last. A worker gets `edit: {"*": "deny", "<its file>": "allow", ...}`: OpenCode matches
//! each written path, relative to the work tree, against these patterns (the last match
//! wins) and refuses the others itself; the planner may edit anywhere, the judge and the
//! oracle nowhere. `bash` is allowed unless `allow_shell: false`. In `run` mode a permission
//! that would ask is refused, so everything the task needs is granted explicitly.
//!
//! An interrupted attempt's session is continued with `--session ID` when OpenCode has it on
//! record. Its records live in SQLite (`$XDG_DATA_HOME/opencode/opencode.db` and the
//! database's write-ahead log), which orch does not link: the id (`ses_` and 26 characters,
//! unique by construction) found in either file counts as the record. Should that ever be
//! wrong (a deleted session whose bytes linger), OpenCode exits 1 with "Session not found"
//! and the next attempt starts over, like any continuation that fails.

mod events;

use std::io::Read as _;
use std::path::Path;

use serde_json::Value;

use super::readiness::{Check, Setting};
use super::{Adapter, AgentCall, Assessment, Edits};
use crate::transcript::Entry;

pub(super) struct Opencode;

impl Adapter for Opencode {
    fn prompt_on_stdin(&self) -> bool {
        true
    }

    fn argv(&self, call: &AgentCall) -> anyhow::Result<Vec<String>> {
        let mut argv = vec![
            "opencode".to_string(),
            "run".into(),
            "--format".into(),
            "json".into(),
        ];
        if let Some(model) = &call.agent.model {
            argv.extend(["-m".into(), model.clone()]);
        }
        if let Some(session) = call.session {
            argv.extend(["--session".into(), session.into()]);
        }
        Ok(argv)
    }

    fn env(&self, call: &AgentCall) -> anyhow::Result<Vec<(String, String)>> {
        Ok(vec![("OPENCODE_PERMISSION".into(), permission(call))])
    }

    fn can_continue(&self, setting: &Setting, session: &str) -> bool {
        let Some(data) = setting
            .dir("XDG_DATA_HOME", ".local/share")
            .map(|d| d.join("opencode"))
        else {
            return false;
        };
        // The log first: a session of the last few minutes is usually not checkpointed yet.
        ["opencode.db-wal", "opencode.db"]
            .iter()
            .any(|file| contains(&data.join(file), session.as_bytes()))
    }

    fn answer(&self, stdout: &str) -> String {
        events::summarize(stdout).answer_or(stdout)
    }

    fn assess(&self, stdout: &str) -> Assessment {
        events::summarize(stdout).assess("opencode", "step_finish")
    }

    fn entries(&self, event: &Value) -> Option<Vec<Entry>> {
        events::entries(event)
    }

    fn tally(&self, tally: &mut super::summary::Tally, event: &serde_json::Value) {
        events::tally(tally, event);
    }

    fn streams_events(&self) -> bool {
        true
    }

    fn install_hint(&self) -> &'static str {
        "npm install -g opencode-ai"
    }

    fn readiness(&self, s: &Setting) -> Vec<Check> {
        let mut checks = Vec::new();
        let config = s
            .var("OPENCODE_CONFIG")
            .or(s.var("OPENCODE_CONFIG_CONTENT"));
        if s.agent.model.is_none() && config.is_none() {
            checks.push(Check::warn(
                "no model set: OpenCode uses the model of its own config, if it has one",
                "set `model: provider/model` on this agent (e.g. anthropic/claude-sonnet-4-5)",
            ));
        }
        let login = s
            .dir("XDG_DATA_HOME", ".local/share")
            .map(|d| d.join("opencode/auth.json"))
            .filter(|p| p.is_file());
        let keys = [
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "GEMINI_API_KEY",
            "GOOGLE_GENERATIVE_AI_API_KEY",
            "OPENROUTER_API_KEY",
        ];
        checks.push(match (s.first_var(&keys), login, config) {
            (Some(var), _, _) => Check::Ok(format!("credentials: {var} is set")),
            (None, Some(path), _) => Check::Ok(format!("credentials: {}", path.display())),
            (None, None, Some(_)) => {
                Check::Ok("credentials: left to the provider in OPENCODE_CONFIG".to_string())
            }
            (None, None, None) => Check::warn(
                "no credentials found: no provider API key in the environment and no \
                 ~/.local/share/opencode/auth.json",
                "run `opencode auth login`, or set the provider's key (e.g. \
                 ANTHROPIC_API_KEY) in the agent's `env`",
            ),
        });
        checks
    }
}

/// Whether the file at `path` contains `needle`, read in chunks: a database of many
/// sessions can be large.
fn contains(path: &Path, needle: &[u8]) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let finder = memchr::memmem::Finder::new(needle);
    let mut buf = vec![0u8; 1 << 20];
    // The chunk's last `needle.len() - 1` bytes are kept, so a match across two chunks is seen.
    let mut kept = 0;
    loop {
        let n = match file.read(&mut buf[kept..]) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        let filled = kept + n;
        if finder.find(&buf[..filled]).is_some() {
            return true;
        }
        kept = filled.min(needle.len().saturating_sub(1));
        buf.copy_within(filled - kept..filled, 0);
    }
}

/// The permissions of one call, as `OPENCODE_PERMISSION` takes them. Written by hand:
/// OpenCode applies the last rule that matches, so `"*": "deny"` must come first, and a JSON
/// map would sort its keys (a file named `(a).ts` sorts before `*`).
fn permission(call: &AgentCall) -> String {
    let quote = |s: &str| Value::String(s.to_string()).to_string();
    let edit = match call.edits() {
        Edits::Anywhere => quote("allow"),
        Edits::Nothing => quote("deny"),
        Edits::Only(files) => {
            let mut rules = vec![format!("{}:{}", quote("*"), quote("deny"))];
            for file in files {
                // Relative to the work tree, which is the project root in a git project;
                // outside git OpenCode takes `/` as the work tree. OpenCode's patterns have
                // no escape: a `*` or `?` in a file name matches a little more than itself.
                let abs = call.project_dir.join(file).display().to_string();
                for pattern in [file.as_str(), abs.trim_start_matches('/')] {
                    rules.push(format!("{}:{}", quote(pattern), quote("allow")));
                }
            }
            format!("{{{}}}", rules.join(","))
        }
    };
    let bash = quote(if call.agent.allow_shell {
        "allow"
    } else {
        "deny"
    });
    format!("{{\"edit\":{edit},\"bash\":{bash}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentKind;
    use crate::prompt::Role;
    use crate::workers::testing::{agent, call};
    use serde_json::json;

    #[test]
    fn argv_and_a_workers_permissions() {
        let a = agent(AgentKind::Opencode);
        let files = crate::paths::project_paths(&["src/a.ts"]);
        let c = call(&a, Role::Worker, &files);
        assert_eq!(
            Opencode.argv(&c).unwrap(),
            ["opencode", "run", "--format", "json", "-m", "m1"]
        );
        let env = Opencode.env(&c).unwrap();
        let perm: Value = serde_json::from_str(&env[0].1).unwrap();
        assert_eq!(
            perm,
            json!({"edit": {"*": "deny", "src/a.ts": "allow", "p/src/a.ts": "allow"},
                   "bash": "allow"})
        );
        // The order matters: OpenCode takes the last rule that matches.
        assert!(
            env[0].1.starts_with(r#"{"edit":{"*":"deny","#),
            "{}",
            env[0].1
        );
    }

    #[test]
    fn the_judge_edits_nothing_and_no_shell_means_no_bash() {
        let mut a = agent(AgentKind::Opencode);
        a.allow_shell = false;
        let perm: Value = serde_json::from_str(&permission(&call(&a, Role::Judge, &[]))).unwrap();
        assert_eq!(perm, json!({"edit": "deny", "bash": "deny"}));
    }

    #[test]
    fn a_session_on_record_is_continued() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("opencode");
        std::fs::create_dir_all(&dir).unwrap();
        let mut a = agent(AgentKind::Opencode);
        a.env
            .insert("XDG_DATA_HOME".into(), data.path().display().to_string());
        let setting = Setting::with_env(&a, Path::new("/p"), std::collections::BTreeMap::default());
        let id = "ses_df2639fefffeD76t9HcEN7CNOW";
        assert!(!Opencode.can_continue(&setting, id), "no database yet");
        // Somewhere in the write-ahead log, straddling the 1 MiB chunks it is read in.
        let mut wal = vec![7u8; (1 << 20) - 10];
        wal.extend_from_slice(id.as_bytes());
        wal.extend_from_slice(&[0; 100]);
        std::fs::write(dir.join("opencode.db"), b"SQLite format 3\0").unwrap();
        std::fs::write(dir.join("opencode.db-wal"), &wal).unwrap();
        assert!(Opencode.can_continue(&setting, id));
        assert!(!Opencode.can_continue(&setting, "ses_AAAAAAAAAAAAAAAAAAAAAAAAAA"));

        let files = crate::paths::project_paths(&["src/a.ts"]);
        let c = AgentCall {
            session: Some(id),
            ..call(&a, Role::Worker, &files)
        };
        assert_eq!(
            Opencode.argv(&c).unwrap(),
            [
                "opencode",
                "run",
                "--format",
                "json",
                "-m",
                "m1",
                "--session",
                id,
            ]
        );
    }

    #[test]
    fn contains_sees_a_needle_across_chunks_and_at_the_edges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        for at in [0, (1 << 20) - 3, 1 << 20, (2 << 20) - 1] {
            let mut bytes = vec![b'x'; at];
            bytes.extend_from_slice(b"needle");
            std::fs::write(&path, &bytes).unwrap();
            assert!(contains(&path, b"needle"), "at {at}");
            assert!(!contains(&path, b"needles"), "at {at}");
        }
        assert!(!contains(&dir.path().join("missing"), b"needle"));
    }
}
