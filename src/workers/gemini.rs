//! Gemini CLI, headless: `gemini -p "" -o stream-json --skip-trust --approval-mode yolo`
//! (`auto_edit` when the agent may not run commands: edits are approved, and a command,
//! which would need approval, is refused headless). The prompt is read on stdin, never from
//! the command line: `-p`'s text is appended to what stdin holds, and is empty here.
//!
//! Permissions: a policy file (`--policy`, the user tier, above the built-in rules of every
//! approval mode) written next to the prompt. A worker's writes (`write_file`, `replace`) are
//! denied unless their `file_path` is one of its files, so Gemini CLI refuses the others
//! itself; the judge and the oracle may not write at all; `run_shell_command` is denied with
//! `allow_shell: false`. The folder is trusted for the session (`--skip-trust`): an untrusted
//! folder makes it exit 55.
//!
//! An interrupted attempt starts over rather than continuing its session: Gemini CLI 0.61
//! does take `--resume UUID`, but the history it rebuilds from a session cut mid-turn
//! answers the last tool call twice (two `functionResponse` parts for one `functionCall`;
//! seen in its requests), which Gemini's API refuses.

mod events;

use std::path::{Path, PathBuf};

use super::readiness::{Check, Setting, needs_node};
use super::{Adapter, AgentCall, Assessment, Edits};
use crate::paths::ProjectPath;
use crate::transcript::Entry;

pub(super) struct Gemini;

/// The policy file's name in the attempt's directory.
const POLICY_FILE: &str = "gemini-policy.toml";

impl Adapter for Gemini {
    fn prompt_on_stdin(&self) -> bool {
        true
    }

    fn argv(&self, call: &AgentCall) -> anyhow::Result<Vec<String>> {
        if own_sandbox(call.agent.env.get(SANDBOX_VAR).map(String::as_str)) {
            anyhow::bail!("agent `{}`: {OWN_SANDBOX}; {OWN_SANDBOX_FIX}", call.name);
        }
        let mode = if call.agent.allow_shell {
            "yolo"
        } else {
            "auto_edit"
        };
        let mut argv = vec![
            "gemini".to_string(),
            "-p".into(),
            String::new(),
            "-o".into(),
            "stream-json".into(),
            "--skip-trust".into(),
            "--approval-mode".into(),
            mode.into(),
        ];
        if let Some(model) = &call.agent.model {
            argv.extend(["-m".into(), model.clone()]);
        }
        let rules = policy(call);
        if !rules.is_empty() {
            let path = call.attempt_dir().join(POLICY_FILE);
            std::fs::create_dir_all(call.attempt_dir())
                .and_then(|()| std::fs::write(&path, rules))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot write Gemini CLI's policy file {}: {e}",
                        path.display()
                    )
                })?;
            argv.extend(["--policy".into(), path.display().to_string()]);
        }
        Ok(argv)
    }

    fn answer(&self, stdout: &str) -> String {
        events::summarize(stdout).answer_or(stdout)
    }

    fn assess(&self, stdout: &str) -> Assessment {
        events::summarize(stdout).assess("gemini", "result")
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
        "npm install -g @google/gemini-cli"
    }

    fn env(&self, _call: &AgentCall) -> anyhow::Result<Vec<(String, String)>> {
        // Over the sandbox of `-s` or the settings too (the variable decides first).
        Ok(vec![(SANDBOX_VAR.into(), "false".into())])
    }

    fn readiness(&self, s: &Setting) -> Vec<Check> {
        let mut checks: Vec<Check> = needs_node(s, "gemini").into_iter().collect();
        if own_sandbox(s.agent.env.get(SANDBOX_VAR).map(String::as_str)) {
            checks.push(Check::fail(OWN_SANDBOX, OWN_SANDBOX_FIX));
        }
        let settings_path = gemini_dir(s).map(|d| d.join("settings.json"));
        let settings: serde_json::Value = settings_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let selected = settings["security"]["auth"]["selectedType"]
            .as_str()
            .or(settings["selectedAuthType"].as_str())
            .map(String::from);
        let key = s.first_var(&["GEMINI_API_KEY", "GOOGLE_API_KEY"]);
        match &selected {
            Some(kind) => checks.push(Check::Ok(format!("auth type {kind} selected in settings"))),
            None => checks.push(Check::fail(
                format!(
                    "no auth type selected in {}: headless, Gemini CLI exits 41 without one",
                    settings_path.map_or("~/.gemini/settings.json".into(), |p| p
                        .display()
                        .to_string())
                ),
                if key.is_some() {
                    "add {\"security\": {\"auth\": {\"selectedType\": \"gemini-api-key\"}}} \
                     to that file"
                } else {
                    "run `gemini` once and choose how to log in, or set GEMINI_API_KEY and add \
                     {\"security\": {\"auth\": {\"selectedType\": \"gemini-api-key\"}}} to that file"
                },
            )),
        }
        let oauth = gemini_dir(s)
            .map(|d| d.join("oauth_creds.json"))
            .filter(|p| p.is_file());
        match (key, oauth, selected.as_deref()) {
            (Some(var), _, _) => checks.push(Check::Ok(format!("credentials: {var} is set"))),
            (None, Some(path), _) => {
                checks.push(Check::Ok(format!("credentials: {}", path.display())));
            }
            (None, None, Some("gemini-api-key") | None) => checks.push(Check::fail(
                "no credentials found: no GEMINI_API_KEY or GOOGLE_API_KEY, and no login in \
                 ~/.gemini",
                "set GEMINI_API_KEY (in the environment or the agent's `env`), or run `gemini` \
                 once and log in",
            )),
            (None, None, Some(other)) => checks.push(Check::warn(
                format!("auth type {other}: orch cannot check its credentials"),
                "run the agent once by hand to check that it can log in",
            )),
        }
        checks
    }
}

/// The variable that turns Gemini CLI's own sandbox on or off, over its `-s` and settings.
const SANDBOX_VAR: &str = "GEMINI_SANDBOX";

/// Gemini CLI's own sandbox (docker, podman, ...) starts it again inside with the prompt read
/// from stdin as an argument (`--prompt`), where every user of the machine can read it. orch
/// turns it off ([`SANDBOX_VAR`] `false`); an agent's `env` may not turn it on.
const OWN_SANDBOX: &str = "GEMINI_SANDBOX in the agent's env turns on Gemini CLI's own \
                           sandbox, which restarts it with the prompt among its arguments, \
                           readable by every user of the machine";
const OWN_SANDBOX_FIX: &str = "remove GEMINI_SANDBOX from the agent's env";

/// Whether a value of [`SANDBOX_VAR`] turns the sandbox on, as Gemini CLI reads it.
fn own_sandbox(value: Option<&str>) -> bool {
    let value = value.unwrap_or_default().trim().to_lowercase();
    !value.is_empty() && value != "0" && value != "false"
}

/// Gemini CLI's own directory: `.gemini` in `$GEMINI_CLI_HOME`, else in the home.
fn gemini_dir(s: &Setting) -> Option<PathBuf> {
    s.var("GEMINI_CLI_HOME")
        .map(PathBuf::from)
        .or_else(|| s.home())
        .map(|h| h.join(".gemini"))
}

/// The policy rules for one call (TOML), empty when the built-in rules of the approval mode
/// are what the call needs.
fn policy(call: &AgentCall) -> String {
    let mut out = String::from("# Written by orch for one agent run: what it may change.\n");
    let mut any = false;
    let writes = "toolName = [\"write_file\", \"replace\"]\n";
    match call.edits() {
        Edits::Anywhere => {}
        Edits::Nothing => {
            any = true;
            out.push_str(&format!(
                "\n[[rule]]\n{writes}decision = \"deny\"\npriority = 900\n\
                 denyMessage = \"orch: this agent reviews, it does not change files\"\n"
            ));
        }
        Edits::Only(files) => {
            any = true;
            out.push_str(&format!(
                "\n[[rule]]\n{writes}decision = \"deny\"\npriority = 900\n\
                 denyMessage = \"orch: this task may only write its own files: {}\"\n",
                toml_escape(&files.join(", "))
            ));
            out.push_str(&format!(
                "\n[[rule]]\n{writes}argsPattern = \"{}\"\ndecision = \"allow\"\npriority = 950\n",
                toml_escape(&owned_files_pattern(call.project_dir, files))
            ));
        }
    }
    if !call.agent.allow_shell {
        any = true;
        out.push_str(
            "\n[[rule]]\ntoolName = \"run_shell_command\"\ndecision = \"deny\"\npriority = 900\n",
        );
    }
    if any { out } else { String::new() }
}

/// A regex for the tool's arguments as Gemini CLI matches them (stable JSON): a `file_path`
/// that is one of `files`, absolute or relative to the project. Quotes inside the JSON
/// string of another argument are escaped, so they cannot fake the match.
fn owned_files_pattern(root: &Path, files: &[ProjectPath]) -> String {
    let json = |s: &str| {
        let quoted = serde_json::Value::String(s.to_string()).to_string();
        quoted[1..quoted.len() - 1].to_string()
    };
    let alternatives: Vec<String> = files.iter().map(|f| regex_escape(&json(f))).collect();
    format!(
        "\"file_path\":\"({}/|\\./)?({})\"",
        regex_escape(&json(&root.display().to_string())),
        alternatives.join("|")
    )
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The inside of a TOML basic string.
fn toml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AgentConfig, AgentKind};
    use crate::prompt::Role;
    use crate::workers::testing::{agent, call};

    #[test]
    fn a_worker_may_write_its_files_only() {
        let a = agent(AgentKind::Gemini);
        let files = crate::paths::project_paths(&["src/a.py", "t/\"q\".py"]);
        let rules = policy(&call(&a, Role::Worker, &files));
        assert!(
            rules.contains("decision = \"deny\"\npriority = 900"),
            "{rules}"
        );
        assert!(
            rules.contains(
                r#"argsPattern = "\"file_path\":\"(/p/|\\./)?(src/a\\.py|t/\\\\\"q\\\\\"\\.py)\"""#
            ),
            "{rules}"
        );
        let pattern = owned_files_pattern(Path::new("/p"), &files);
        assert_eq!(
            pattern,
            r#""file_path":"(/p/|\./)?(src/a\.py|t/\\"q\\"\.py)""#
        );
    }

    #[test]
    fn the_planner_needs_no_policy_and_the_judge_writes_nothing() {
        let a = agent(AgentKind::Gemini);
        assert_eq!(policy(&call(&a, Role::Planner, &[])), "");
        assert!(policy(&call(&a, Role::Judge, &[])).contains("reviews"));
        let mut no_shell = a.clone();
        no_shell.allow_shell = false;
        assert!(policy(&call(&no_shell, Role::Planner, &[])).contains("run_shell_command"));
    }

    #[test]
    fn argv_points_at_the_policy_next_to_the_prompt() {
        let tmp = tempfile::tempdir().unwrap();
        let a = agent(AgentKind::Gemini);
        let files = crate::paths::project_paths(&["a.py"]);
        let prompt_file = tmp.path().join("prompt.md");
        let mut c = call(&a, Role::Worker, &files);
        c.prompt_file = &prompt_file;
        let argv = Gemini.argv(&c).unwrap();
        let policy_path = tmp.path().join(POLICY_FILE);
        assert_eq!(
            argv,
            [
                "gemini",
                "-p",
                "",
                "-o",
                "stream-json",
                "--skip-trust",
                "--approval-mode",
                "yolo",
                "-m",
                "m1",
                "--policy",
                &policy_path.display().to_string()
            ]
        );
        assert!(policy_path.exists());
    }

    #[test]
    fn its_own_sandbox_which_puts_the_prompt_in_argv_stays_off() {
        let mut a = agent(AgentKind::Gemini);
        let c = call(&a, Role::Worker, &[]);
        assert_eq!(
            Gemini.env(&c).unwrap(),
            [(SANDBOX_VAR.to_string(), "false".to_string())]
        );
        for off in ["false", "0", ""] {
            a.env.insert(SANDBOX_VAR.into(), off.into());
            assert!(!own_sandbox(a.env.get(SANDBOX_VAR).map(String::as_str)));
        }
        a.env.insert(SANDBOX_VAR.into(), "docker".into());
        let tmp = tempfile::tempdir().unwrap();
        let prompt_file = tmp.path().join("prompt.md");
        let mut c = call(&a, Role::Worker, &[]);
        c.prompt_file = &prompt_file;
        let err = format!("{:#}", Gemini.argv(&c).unwrap_err());
        assert!(err.contains("remove GEMINI_SANDBOX"), "{err}");
        let setting = Setting::with_env(&a, Path::new("/p"), std::collections::BTreeMap::default());
        assert!(
            Gemini
                .readiness(&setting)
                .iter()
                .any(|c| matches!(c, Check::Fail { what, .. } if what.contains("GEMINI_SANDBOX")))
        );
    }

    #[test]
    fn readiness_reads_the_settings_in_gemini_cli_home() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".gemini")).unwrap();
        std::fs::write(
            home.path().join(".gemini/settings.json"),
            r#"{"security":{"auth":{"selectedType":"gemini-api-key"}}}"#,
        )
        .unwrap();
        let mut a = agent(AgentKind::Gemini);
        a.env.insert("HOME".into(), "/nowhere".into());
        a.env.insert("GEMINI_API_KEY".into(), "k".into());
        let selected = |a: &AgentConfig| {
            let setting =
                Setting::with_env(a, Path::new("/p"), std::collections::BTreeMap::default());
            Gemini
                .readiness(&setting)
                .iter()
                .any(|c| matches!(c, Check::Ok(what) if what.contains("gemini-api-key selected")))
        };
        assert!(!selected(&a));
        a.env
            .insert("GEMINI_CLI_HOME".into(), home.path().display().to_string());
        assert!(selected(&a));
    }
}
