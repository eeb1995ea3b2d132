//! The demo project that `orch demo` creates before it runs: a config whose agents are all
//! the built-in scripted agent (offline, deterministic; `orch demo` paces them when a person
//! watches), the gate scripts, and a README saying what happens. The files themselves are
//! under `src/scripted/demo/`, laid out as in the project, so that they are read and linted
//! as what they are.

/// What the demo asks for.
pub const DEMO_REQUEST: &str = "Build wordstat: a command-line tool that reports word, line and \
                                character counts of text files";

/// The demo project's files, relative to its root, in the order to write them.
pub fn demo_files() -> Vec<(&'static str, String)> {
    vec![
        ("orch.yaml", DEMO_CONFIG.to_string()),
        ("README.md", README.replace("{request}", DEMO_REQUEST)),
        // Inline: as a file under src/ it would be a .gitignore of this source tree.
        (".gitignore", ".orch/\n".to_string()),
        ("scripts/lint.sh", LINT_SH.to_string()),
        ("scripts/test.sh", TEST_SH.to_string()),
    ]
}

/// Two workers so that the tasks visibly spread across agents; a third agent plans and
/// judges. No pace here: an agent's `env` would override the `ORCH_SCRIPTED_PACE` that
/// `orch demo` (or the user) sets, and a run with nobody watching is better fast.
const DEMO_CONFIG: &str = include_str!("demo/orch.yaml");

/// What the demo is and how to play with it; `{request}` stands for [`DEMO_REQUEST`].
const README: &str = include_str!("demo/README.md");

/// The lint gate (checked by shellcheck in CI, as every shell file under `src/scripted/`).
const LINT_SH: &str = include_str!("demo/scripts/lint.sh");

/// The test gate.
const TEST_SH: &str = include_str!("demo/scripts/test.sh");

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_demo_config_parses_and_its_agents_are_scripted() {
        let files = demo_files();
        let text = &files.iter().find(|(p, _)| *p == "orch.yaml").unwrap().1;
        let config = crate::config::parse(text, Path::new("orch.yaml")).unwrap();
        assert!(config.agents.len() >= 2);
        for agent in config.agents.values() {
            assert_eq!(agent.kind, crate::config::AgentKind::Scripted);
            // A pace here would override the one `orch demo` or the user sets.
            assert!(!agent.env.contains_key("ORCH_SCRIPTED_PACE"));
        }
        assert!(config.roles.workers.len() >= 2);
        assert!(config.gates.lint.is_some() && config.gates.test.is_some());
        assert!(!config.gates.test_pattern.is_empty());
    }

    #[test]
    fn the_demo_has_its_readme_gitignore_and_gate_scripts() {
        let files = demo_files();
        let get = |name: &str| &files.iter().find(|(p, _)| *p == name).unwrap().1;
        assert!(get(".gitignore").lines().any(|l| l == ".orch/"));
        assert!(get("README.md").contains(DEMO_REQUEST));
        assert!(get("scripts/lint.sh").starts_with("#!/bin/sh"));
        assert!(get("scripts/test.sh").starts_with("#!/bin/sh"));
    }
}
