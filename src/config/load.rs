//! Reading `orch.yaml`: strict parsing, then the checks serde cannot express (roles naming
//! defined agents, a `command` only where it belongs, globs that compile).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use globset::Glob;

use super::schema::{AgentKind, Config};

/// Everything that can be wrong with a config. All of them are the user's to fix, so the CLI
/// exits 2 with the message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no config at {}: run `orch init` to write a starter one, or pass --config PATH",
        path.display()
    )]
    NotFound { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid orch config:\n{message}", path.display())]
    Parse {
        path: PathBuf,
        message: String,
        /// The line and column (1-based) the parser points at, when it knows.
        at: Option<(u64, u64)>,
    },
    #[error(
        "{} puts orch's built-in sample agent on a role; the run would not build what you \
         asked, so it was not started:\n{message}",
        path.display()
    )]
    SampleNotAllowed { path: PathBuf, message: String },
    #[error("{} has {} problem(s):\n{}", path.display(), problems.len(), bullet(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

fn bullet(lines: &[String]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = write!(out, "  - {line}");
    }
    out
}

/// Reads and checks the config at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ConfigError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    parse(&text, path)
}

/// Parses and checks config text; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let config: Config = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        // The error quotes the config's lines: never an agent's `env` value.
        message: super::redact::env_values(text).redact(&parse_message(&e, path)),
        at: e
            .location()
            .map(|l| (l.line(), l.column()))
            .filter(|(l, _)| *l > 0),
    })?;
    let problems = check(&config, text);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }
}

/// serde-saphyr's message for a parse error, with the snippet naming the file (not
/// `<input>`). With a snippet, its first line (`line 4 column 5: unknown field ...`) is left
/// out: the snippet's header gives the place and its caret the same message.
fn parse_message(e: &serde_saphyr::Error, path: &Path) -> String {
    let name = path.display().to_string();
    let rendered = e.render_with_options(serde_saphyr::render_options! {
        source_name: Some(name.as_str()),
    });
    let rendered = rendered.trim_start_matches("error: ").trim_end();
    match rendered.split_once('\n') {
        Some((_, rest)) if rest.trim_start().starts_with("-->") && rest.contains('^') => {
            rest.to_string()
        }
        _ => rendered.to_string(),
    }
}

fn check(config: &Config, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let defined = config.agents.keys().cloned().collect::<Vec<_>>().join(", ");
    let at = |key: &str, value: Option<&str>| match line_of(text, key, value) {
        Some(line) => format!("line {line}: "),
        None => String::new(),
    };

    if config.agents.is_empty() {
        problems.push("`agents` is empty: define at least one agent".to_string());
    }
    for (name, agent) in &config.agents {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problems.push(format!(
                "{}agent name `{name}` may only use letters, digits, `-` and `_`",
                at(name, None)
            ));
        }
        match (agent.kind, &agent.command) {
            (AgentKind::Command, None) => problems.push(format!(
                "{}agent `{name}` has `kind: command` but no `command`: give the argv to run, \
                 e.g. `command: [\"./my-agent\", \"{{prompt_file}}\"]`",
                at(name, None)
            )),
            (AgentKind::Command, Some(argv)) if argv.is_empty() || argv[0].trim().is_empty() => {
                problems.push(format!(
                    "{}agent `{name}`: `command` must name a program to run",
                    at("command", None)
                ));
            }
            (kind, Some(_)) if kind != AgentKind::Command => problems.push(format!(
                "{}agent `{name}`: `command` only applies to `kind: command` (this one is \
                 `kind: {kind}`); use `args` to add arguments",
                at("command", None)
            )),
            _ => {}
        }
        if agent.sample && agent.kind != AgentKind::Scripted {
            problems.push(format!(
                "{}agent `{name}`: `sample` only applies to `kind: scripted` (this one is \
                 `kind: {}`): remove it",
                at("sample", None),
                agent.kind
            ));
        }
        for key in agent.env.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                problems.push(format!("agent `{name}`: invalid environment name `{key}`"));
            }
        }
    }

    let mut role = |role: &str, agent: &str| {
        if !config.agents.contains_key(agent) {
            problems.push(format!(
                "{}role `{role}` names agent `{agent}`, which is not defined under `agents` \
                 (defined: {defined})",
                at(role, Some(agent))
            ));
        }
    };
    role("planner", &config.roles.planner);
    role("judge", &config.roles.judge);
    if let Some(oracle) = &config.roles.oracle {
        role("oracle", oracle);
    }
    for worker in &config.roles.workers {
        if !config.agents.contains_key(worker.as_str()) {
            problems.push(format!(
                "{}`roles.workers` names agent `{worker}`, which is not defined under `agents` \
                 (defined: {defined})",
                at(&format!("- {worker}"), None)
            ));
        }
    }
    if config.roles.workers.is_empty() {
        problems.push(format!(
            "{}`roles.workers` is empty: list the agents a plan may assign tasks to",
            at("workers", None)
        ));
    }

    if config.limits.max_parallel == 0 {
        problems.push(format!(
            "{}`limits.max_parallel` must be at least 1",
            at("max_parallel", None)
        ));
    }
    if config.limits.task_timeout.is_zero() {
        problems.push(format!(
            "{}`limits.task_timeout` must be longer than zero",
            at("task_timeout", None)
        ));
    }
    problems.extend(config.limits.budget.problems());
    problems.extend(config.notify.problems());
    if config.limits.output_cap < crate::agent_process::run::MIN_OUTPUT_CAP {
        problems.push(format!(
            "{}`limits.output_cap` must be at least {} bytes (4KB)",
            at("output_cap", None),
            crate::agent_process::run::MIN_OUTPUT_CAP
        ));
    }
    for (section, globs) in [
        ("gates.test_pattern", &config.gates.test_pattern),
        ("ownership.ignore", &config.ownership.ignore),
    ] {
        for glob in globs {
            if let Err(e) = Glob::new(glob) {
                problems.push(format!("`{section}`: invalid glob `{glob}`: {e}"));
            }
        }
    }
    for (gate, command) in [("lint", &config.gates.lint), ("test", &config.gates.test)] {
        if command.as_deref().is_some_and(|c| c.trim().is_empty()) {
            problems.push(format!(
                "{}`gates.{gate}` is empty: remove it to skip the gate, or give a command",
                at(gate, None)
            ));
        }
    }
    problems
}

/// The 1-based line where `key:` (optionally followed by `value`) first appears, so that a
/// problem found after parsing can still point at a line. Best effort: `None` when unsure.
fn line_of(text: &str, key: &str, value: Option<&str>) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.split(" #").next().unwrap_or("").trim();
            if let Some(item) = key.strip_prefix("- ") {
                return line.strip_prefix("- ").map(str::trim) == Some(item);
            }
            match line.strip_prefix(key).and_then(|r| r.strip_prefix(':')) {
                Some(rest) => value.is_none_or(|v| rest.trim().trim_matches(['"', '\'']) == v),
                None => false,
            }
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
agents:
  bot:
    kind: scripted
  mine:
    kind: command
    command: [\"./agent.sh\", \"{prompt_file}\"]
roles:
  planner: bot
  judge: bot
  workers: [bot, mine]
";

    fn parse_str(text: &str) -> Result<Config, ConfigError> {
        parse(text, Path::new("orch.yaml"))
    }

    #[test]
    fn a_minimal_config_gets_defaults() {
        let config = parse_str(GOOD).unwrap();
        assert_eq!(config.limits.max_parallel, 4);
        assert_eq!(config.limits.retries, 2);
        assert_eq!(
            config.ownership.on_violation,
            crate::config::ViolationPolicy::Warn
        );
        assert!(!config.gates.test_pattern.is_empty());
    }

    #[test]
    fn unknown_field_names_field_line_and_allowed_names() {
        let text = GOOD.replace("    kind: scripted", "    kind: scripted\n    modle: x");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("modle"), "{err}");
        // The file's own name and the place, and the message once (under the caret).
        assert!(err.contains("--> orch.yaml:4:5"), "{err}");
        assert!(!err.contains("<input>"), "{err}");
        assert_eq!(err.matches("unknown field `modle`").count(), 1, "{err}");
        assert!(err.contains("model"), "{err}");
        assert!(err.contains("command"), "{err}");
    }

    #[test]
    fn a_parse_error_never_shows_an_agents_env_value() {
        for env in [
            "    env: {KEY: sk-secret-123, BAD: [sk-secret-456]}",
            "    env:\n      KEY: sk-secret-123\n      BAD: {x: sk-secret-456}",
            "    env: sk-secret-123 sk-secret-456",
        ] {
            let text = GOOD.replace("    kind: scripted", &format!("    kind: scripted\n{env}"));
            let err = parse_str(&text).unwrap_err().to_string();
            assert!(err.contains("orch.yaml:"), "{err}");
            assert!(!err.contains("sk-secret"), "{err}");
        }
    }

    #[test]
    fn unknown_top_level_section_is_an_error() {
        let err = parse_str(&format!("{GOOD}limitz:\n  retries: 1\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("limitz") && err.contains("orch.yaml:11:1"),
            "{err}"
        );
    }

    #[test]
    fn unknown_kind_lists_the_kinds() {
        let err = parse_str(&GOOD.replace("kind: scripted", "kind: cluade"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cluade") && err.contains("claude"), "{err}");
    }

    #[test]
    fn role_naming_undefined_agent_is_an_error_with_line() {
        let err = parse_str(&GOOD.replace("judge: bot", "judge: robot"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("role `judge` names agent `robot`"), "{err}");
        assert!(err.contains("line 9"), "{err}");
        assert!(err.contains("defined: bot, mine"), "{err}");
    }

    #[test]
    fn worker_naming_undefined_agent_is_an_error() {
        let err =
            parse_str(&GOOD.replace("workers: [bot, mine]", "workers:\n    - bot\n    - ghost"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("`ghost`") && err.contains("line 12"), "{err}");
    }

    #[test]
    fn command_kind_needs_command_and_others_refuse_it() {
        let text = GOOD.replace("    command: [\"./agent.sh\", \"{prompt_file}\"]\n", "");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("`kind: command` but no `command`"), "{err}");
        let text = GOOD.replace("kind: scripted", "kind: scripted\n    command: [x]");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("only applies to `kind: command`"), "{err}");
    }

    #[test]
    fn durations_accept_text_and_seconds() {
        let config = parse_str(&format!("{GOOD}limits:\n  task_timeout: 90s\n")).unwrap();
        assert_eq!(config.limits.task_timeout.as_secs(), 90);
        let config = parse_str(&format!("{GOOD}limits:\n  task_timeout: 120\n")).unwrap();
        assert_eq!(config.limits.task_timeout.as_secs(), 120);
        let err = parse_str(&format!("{GOOD}limits:\n  task_timeout: soon\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid duration `soon`"), "{err}");
    }

    #[test]
    fn leftovers_are_stopped_unless_the_config_keeps_them() {
        use crate::config::LeftoverPolicy;
        assert_eq!(
            parse_str(GOOD).unwrap().limits.leftovers,
            LeftoverPolicy::Stop
        );
        let config = parse_str(&format!("{GOOD}limits:\n  leftovers: keep\n")).unwrap();
        assert_eq!(config.limits.leftovers, LeftoverPolicy::Keep);
        let err = parse_str(&format!("{GOOD}limits:\n  leftovers: maybe\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("leftovers") && err.contains("keep"), "{err}");
    }

    #[test]
    fn the_output_cap_takes_sizes_and_has_a_floor() {
        assert_eq!(
            parse_str(GOOD).unwrap().limits.output_cap,
            crate::agent_process::run::DEFAULT_OUTPUT_CAP
        );
        let config = parse_str(&format!("{GOOD}limits:\n  output_cap: 64KB\n")).unwrap();
        assert_eq!(config.limits.output_cap, 64 * 1024);
        let err = parse_str(&format!("{GOOD}limits:\n  output_cap: 100\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`limits.output_cap` must be at least 4096"),
            "{err}"
        );
        let err = parse_str(&format!("{GOOD}limits:\n  output_cap: lots\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a size"), "{err}");
    }

    #[test]
    fn bad_policy_and_globs_are_reported() {
        let err = parse_str(&format!("{GOOD}ownership:\n  on_violation: explode\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("explode") && err.contains("revert"), "{err}");
        let err = parse_str(&format!("{GOOD}ownership:\n  ignore: [\"a[\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid glob `a[`"), "{err}");
    }

    #[test]
    fn several_problems_are_reported_together() {
        let text = GOOD
            .replace("judge: bot", "judge: nobody")
            .replace("planner: bot", "planner: noone");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("2 problem(s)"), "{err}");
    }
}
