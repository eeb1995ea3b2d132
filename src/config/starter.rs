//! The commented starter config that `orch init` writes, built around the agent CLIs found on
//! PATH so that it runs as written.

use std::fmt::Write as _;

use super::schema::AgentKind;

/// Starter `orch.yaml` text for a project where the given agent CLIs were found on PATH.
/// With none found, every role goes to the built-in scripted agent so that `orch` still runs.
pub fn starter_config(detected: &[AgentKind]) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str("agents:\n");
    for kind in detected {
        let _ = writeln!(out, "  {kind}:\n    kind: {kind}");
        let _ = writeln!(out, "    # model: {}", example_model(*kind));
    }
    out.push_str(
        "  scripted:\n    \
         # Built into orch: deterministic, offline. Runs the demo and the tests.\n    \
         kind: scripted\n",
    );
    out.push_str(COMMAND_EXAMPLE);

    let best = detected.first().map(|k| k.name()).unwrap_or("scripted");
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
    out.push_str(REST);
    out
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

const COMMAND_EXAMPLE: &str = "\
  # Any program can be an agent: it gets its prompt file as an argument and in $ORCH_PROMPT_FILE,
  # its owned files in $ORCH_FILES (one per line), and its stdout is its answer.
  # my-agent:
  #   kind: command
  #   command: [\"./scripts/my-agent\", \"{prompt_file}\"]
  #   env: { MY_AGENT_MODE: fast }
";

const REST: &str = "
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

gates:
  # Shell commands (run with `sh -c` in the project root) that must exit 0 for a task to count
  # as done. A gate that is not set is reported as skipped, never as passed.
  # lint: cargo clippy --all-targets -- -D warnings
  # test: cargo test
  # Globs that mark a test file: every task must own at least one.
  test_pattern: [\"tests/**\", \"test/**\", \"**/*_test.*\", \"**/*.test.*\", \"**/*_spec.*\", \"**/*.spec.*\", \"**/test_*\"]
  # TDD evidence (tests written before the implementation): off | warn | strict
  tdd: warn

ownership:
  # A write to a file the writing task does not own: warn (record it) | revert (save the
  # violating content, restore the file) | stop (stop the suspected tasks).
  on_violation: warn
  # Globs the watcher ignores, besides .git/, .orch/ and what .gitignore ignores.
  ignore: []

# The agents' sandbox (Linux, bubblewrap): the project, the run and the CLI's own state are
# writable, the rest read-only, your home hidden (~/.ssh, cloud credentials, other projects).
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

    #[test]
    fn starter_parses_with_and_without_detected_clis() {
        for detected in [
            vec![],
            vec![AgentKind::Claude],
            vec![AgentKind::Claude, AgentKind::Codex, AgentKind::Gemini],
        ] {
            let text = starter_config(&detected);
            let config =
                parse(&text, Path::new("orch.yaml")).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
            assert!(config.agents.contains_key("scripted"));
            for kind in &detected {
                assert!(config.roles.workers.contains(&kind.name().to_string()));
            }
        }
    }

    #[test]
    fn without_clis_everything_runs_on_the_scripted_agent() {
        let config = parse(&starter_config(&[]), Path::new("orch.yaml")).unwrap();
        assert_eq!(config.roles.planner, "scripted");
        assert_eq!(config.roles.workers, vec!["scripted".to_string()]);
        assert_eq!(config.roles.oracle, None);
    }
}
