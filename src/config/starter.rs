//! The commented starter config that `orch init` writes, built around the agent CLIs found on
//! PATH and the gates that fit the project, so that it runs as written; where it cannot (no
//! agent CLI, an unknown kind of project), it says so at the top of the file and leaves
//! commented examples.

use std::fmt::Write as _;

use super::project_kind::{MARKERS, ProjectGates};
use super::schema::AgentKind;

/// The real agent CLIs, how each is installed, and the executable orch runs.
pub const INSTALL: [(AgentKind, &str); 4] = [
    (
        AgentKind::Claude,
        "npm install -g @anthropic-ai/claude-code",
    ),
    (AgentKind::Codex, "npm install -g @openai/codex"),
    (AgentKind::Opencode, "npm install -g opencode-ai"),
    (AgentKind::Gemini, "npm install -g @google/gemini-cli"),
];

/// Starter `orch.yaml` text for a project where the given agent CLIs were found on PATH and
/// whose gates are `gates` (`None`: a kind of project orch does not recognise). With no CLI
/// found, every role names the built-in scripted agent, which `orch up` refuses until the
/// user either configures a real agent or marks it `sample: true`.
pub fn starter_config(detected: &[AgentKind], gates: Option<&ProjectGates>) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    if detected.is_empty() {
        out.push_str(NO_AGENT);
        for (kind, install) in INSTALL {
            let _ = writeln!(out, "#   {install:<44} ({kind})");
        }
        out.push_str(NO_AGENT_END);
    }
    out.push_str("\nagents:\n");
    for kind in detected {
        let _ = writeln!(out, "  {kind}:\n    kind: {kind}");
        let _ = writeln!(out, "    # model: {}", example_model(*kind));
    }
    out.push_str(SCRIPTED);
    out.push_str(COMMAND_EXAMPLE);

    let best = detected.first().map_or("scripted", |k| k.name());
    let workers: Vec<&str> = if detected.is_empty() {
        vec!["scripted"]
    } else {
        detected.iter().map(|k| k.name()).collect()
    };
    let oracle = detected.get(1).map(|k| k.name());
    let _ = write!(
        out,
        "\nroles:\n  \
         # Writes the specs and the plan.\n  \
         planner: {best}\n  \
         # Gives the verdict on each task after the gates.\n  \
         judge: {best}\n  \
         # Optional: asked for advice on a task that failed twice.\n  \
         {}oracle: {}\n  \
         # The agents a plan may assign tasks to.\n  \
         workers: [{}]\n",
        if oracle.is_some() { "" } else { "# " },
        oracle.unwrap_or("codex"),
        workers.join(", ")
    );
    out.push_str(LIMITS);
    out.push_str(&gates_section(gates));
    out.push_str(REST);
    out
}

/// The `gates` section: the proposed commands, or commented examples per kind of project.
fn gates_section(gates: Option<&ProjectGates>) -> String {
    let mut out = String::from(GATES_HEADER);
    let patterns = match gates {
        Some(g) => {
            let _ = writeln!(
                out,
                "  # Proposed for a {} project (found {}): check that they pass before a run.",
                g.kind, g.evidence
            );
            for note in &g.notes {
                out.push_str(&comment(&format!("Note: {note}"), "  "));
            }
            for (name, command) in [("lint", &g.lint), ("test", &g.test)] {
                match command {
                    Some(c) => {
                        let _ = writeln!(out, "  {name}: {}", yaml_scalar(c));
                    }
                    None => {
                        let _ = writeln!(out, "  # {name}: <a command>");
                    }
                }
            }
            if g.test.is_none() {
                out.push_str(NO_TEST_GATE);
            }
            g.test_pattern.clone()
        }
        None => {
            let _ = writeln!(
                out,
                "  # orch did not recognise this kind of project (it looks for {MARKERS}):"
            );
            out.push_str(GATE_EXAMPLES);
            out.push_str(NO_TEST_GATE);
            super::schema::default_test_patterns()
        }
    };
    out.push_str("  # Globs that mark a test file: every task must own at least one.\n");
    let quoted: Vec<String> = patterns.iter().map(|p| yaml_scalar_quoted(p)).collect();
    let _ = writeln!(out, "  test_pattern: [{}]", quoted.join(", "));
    out
}

/// `text` as comment lines of at most about 95 columns, each starting with `indent`.
fn comment(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + 2 + line.len() + 1 + word.len() > 95 {
            let _ = writeln!(out, "{indent}# {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}# {line}");
    }
    out
}

/// A command as a YAML scalar: plain when YAML reads it back as the same string, else quoted.
fn yaml_scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.starts_with(|c: char| "!&*{}[]|>'\"%@`#,?:-".contains(c));
    if plain {
        text.to_string()
    } else {
        yaml_scalar_quoted(text)
    }
}

fn yaml_scalar_quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

fn example_model(kind: AgentKind) -> &'static str {
    match kind {
        AgentKind::Claude => "opus",
        AgentKind::Codex => "gpt-5.2",
        AgentKind::Opencode => "anthropic/claude-sonnet-4-5",
        AgentKind::Gemini => "gemini-2.5-pro",
        AgentKind::Command | AgentKind::Scripted => "",
    }
}

const HEADER: &str = "\
# orch.yaml: the agents orch may run in this project, and the rules of a run.
# Reference: the Configuration section of orch's README. `orch doctor` checks this file.
#
# Placeholders in `command` and `args`: {prompt_file} {task_id} {role} {project_dir}.
# A prompt is always passed in a file, never on a shell command line.
";

const NO_AGENT: &str = "\
#
# NO AGENT CLI WAS FOUND: orch looked on PATH for claude, codex, opencode and gemini. Every
# role below names the built-in `scripted` agent, a sample that ignores your request, so
# `orch up` refuses to run until you configure a real agent. Either install one:
";

const NO_AGENT_END: &str = "\
# then run `orch init --force` (it finds them on PATH; installed elsewhere, add its directory
# to PATH), or define a `kind: command` agent below (any program) and name it in `roles`.
# `orch demo` shows orch at work meanwhile, in a project of its own.
";

const SCRIPTED: &str = "  scripted:
    # Built into orch: deterministic, offline; `orch demo` and the tests run on it. It is a
    # sample: it ignores the request and builds wordstat, a small sh project, and as judge it
    # passes what the gates pass. `orch up` refuses it unless it says `sample: true`.
    kind: scripted
    # sample: true
";

const COMMAND_EXAMPLE: &str =
    "  # Any program can be an agent: it gets its prompt file as an argument and in
  # $ORCH_PROMPT_FILE, its owned files in $ORCH_FILES (one per line), and its stdout is its
  # answer.
  # my-agent:
  #   kind: command
  #   command: [\"./scripts/my-agent\", \"{prompt_file}\"]
  #   env: { MY_AGENT_MODE: fast }
";

const LIMITS: &str = "
limits:
  # How many task agents run at once.
  max_parallel: 4
  # A task with no output and no file activity for this long is killed and marked failed.
  task_timeout: 30m
  # How many more attempts a task that fails its gates or the judge gets.
  retries: 2
  # How many more times the planner is asked when its plan is invalid.
  planner_retries: 2
  # How many more times the judge is asked when its answer holds no valid verdict.
  judge_retries: 2
  # The most of each agent's output kept on disk per attempt: its first and last half.
  output_cap: 10MB
  # Processes an agent leaves running when it exits: stop (TERM, then KILL) or keep
  # (listed in `orch status`; what they write is still blamed on their task).
  leftovers: stop
";

const GATES_HEADER: &str = "
gates:
  # Shell commands (run with `sh -c` in the project root) that must exit 0 for a task to count
  # as done. A gate that is not set is reported as skipped, never as passed.
";

const GATE_EXAMPLES: &str = "  # lint: cargo clippy --all-targets -- -D warnings    # Rust
  # test: cargo test
  # lint: ruff check .                                 # Python
  # test: pytest -q
  # lint: npm run lint                                 # Node
  # test: npm test
  # lint: go vet ./...                                 # Go
  # test: go test ./...
  # test: make test                                    # a Makefile target
";

const NO_TEST_GATE: &str =
    "  # Without a test gate nothing runs the tests: the judge then relies on the agents' word.
";

const REST: &str = "  # TDD evidence (tests written before the implementation): off | warn | strict
  tdd: warn

ownership:
  # A write to a file the writing task does not own: warn (record it) | revert (save the
  # violating content, restore the file) | stop (stop the suspected tasks).
  on_violation: warn
  # Globs the watcher ignores, besides .git/, .orch/ and what .gitignore ignores.
  ignore: []

# Where a run works: worktree (a branch orch/<run-id> with a worktree of its own under
# .orch/worktrees/; your checkout is left as it is, and each accepted task is one commit) |
# in-place (in your checkout). A directory with no git commit yet always runs in place.
workspace: worktree
# A run on a branch and your checkout's uncommitted changes at `orch up`: include (one commit
# at the base of the run's branch, so the agents see what you see; a merge never doubles
# them) | refuse (`orch up` stops and says what to do). `orch up --uncommitted` for one run.
uncommitted: include
# A valid plan: auto (dispatched at once) | ask (it waits, shown as waves in the control
# window and `orch status`, until `orch approve`; you may edit it first). `orch up --review`
# asks for one run.
plan_approval: auto

# The agents' sandbox (Linux, bubblewrap): the project (a run's worktree), the run and the
# CLI's own state are writable, the rest read-only, your home hidden (~/.ssh, cloud credentials, other projects).
# auto (where it works; said once when it does not) | bwrap (required) | off. An agent may
# set its own `sandbox:` and `network:`.
sandbox: auto
# on | off (off: no network at all, not even the model's API).
network: on
# More paths for the sandbox, e.g. a build cache under your home:
# sandbox_paths:
#   write: [\"~/.cargo/registry\"]
#   read: [\"~/.m2\"]
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use std::path::Path;

    fn python() -> ProjectGates {
        ProjectGates {
            kind: "Python",
            evidence: "pyproject.toml".into(),
            lint: None,
            test: Some("pytest -q".into()),
            test_pattern: vec!["**/test_*.py".into()],
            notes: vec!["no Python linter: install one".into()],
        }
    }

    fn every_starter() -> Vec<String> {
        let mut all = Vec::new();
        for detected in [
            vec![],
            vec![AgentKind::Claude],
            vec![AgentKind::Claude, AgentKind::Codex, AgentKind::Gemini],
        ] {
            for gates in [None, Some(python())] {
                all.push(starter_config(&detected, gates.as_ref()));
            }
        }
        all
    }

    #[test]
    fn starter_parses_with_and_without_detected_clis_and_gates() {
        for text in every_starter() {
            let config =
                parse(&text, Path::new("orch.yaml")).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
            assert!(config.agents.contains_key("scripted"));
            assert!(!config.agents["scripted"].sample, "{text}");
        }
        let text = starter_config(&[AgentKind::Codex], None);
        let config = parse(&text, Path::new("orch.yaml")).unwrap();
        assert_eq!(config.roles.workers, vec!["codex".to_string()]);
        assert_eq!(config.roles.planner, "codex");
    }

    #[test]
    fn without_clis_the_file_says_how_to_get_a_real_agent_and_up_refuses() {
        let text = starter_config(&[], None);
        let config = parse(&text, Path::new("orch.yaml")).unwrap();
        assert_eq!(config.roles.planner, "scripted");
        assert_eq!(config.roles.workers, vec!["scripted".to_string()]);
        assert_eq!(config.roles.oracle, None);
        assert!(text.contains("NO AGENT CLI WAS FOUND"), "{text}");
        assert!(
            text.contains("npm install -g @anthropic-ai/claude-code"),
            "{text}"
        );
        assert!(text.contains("orch init --force"), "{text}");
        let refused = crate::config::check_sample(
            &config,
            Path::new("orch.yaml"),
            crate::config::SampleScope::Run,
        );
        assert!(refused.is_err());
        assert!(!starter_config(&[AgentKind::Claude], None).contains("NO AGENT CLI"));
    }

    #[test]
    fn the_gates_are_the_projects_or_commented_examples() {
        let config = parse(
            &starter_config(&[], Some(&python())),
            Path::new("orch.yaml"),
        )
        .unwrap();
        assert_eq!(config.gates.test.as_deref(), Some("pytest -q"));
        assert_eq!(config.gates.lint, None);
        assert_eq!(config.gates.test_pattern, vec!["**/test_*.py".to_string()]);
        let text = starter_config(&[], None);
        let config = parse(&text, Path::new("orch.yaml")).unwrap();
        assert_eq!((config.gates.lint, config.gates.test), (None, None));
        assert!(text.contains("  # test: pytest -q"), "{text}");
        assert!(
            text.contains("the judge then relies on the agents' word"),
            "{text}"
        );
        assert!(!text.contains("\n  test: cargo test"), "{text}");
    }

    #[test]
    fn commands_that_yaml_would_misread_are_quoted() {
        for command in ["make test # all", "a: b", "-x", "npm test", "\"q\""] {
            let mut gates = python();
            gates.test = Some(command.to_string());
            let text = starter_config(&[], Some(&gates));
            let config = parse(&text, Path::new("orch.yaml")).unwrap();
            assert_eq!(config.gates.test.as_deref(), Some(command), "{text}");
        }
    }

    /// Every comment is indented like a line next to it, so that it reads as part of the
    /// block it describes.
    #[test]
    fn every_comment_is_indented_with_its_block() {
        for text in every_starter() {
            let lines: Vec<&str> = text.lines().collect();
            let indent = |l: &str| l.len() - l.trim_start().len();
            for (i, line) in lines.iter().enumerate() {
                if !line.trim_start().starts_with('#') {
                    continue;
                }
                let neighbours = [i.checked_sub(1), Some(i + 1)]
                    .into_iter()
                    .flatten()
                    .filter_map(|j| lines.get(j))
                    .filter(|l| !l.trim().is_empty());
                let ok = neighbours.into_iter().any(|l| indent(l) == indent(line));
                assert!(ok, "line {}: `{line}` is mis-indented\n{text}", i + 1);
            }
        }
    }
}
