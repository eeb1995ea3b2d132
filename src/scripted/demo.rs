//! The demo project that `orch demo` creates before it runs: a config whose agents are all
//! the built-in scripted agent (offline, deterministic; `orch demo` paces them when a person
//! watches), the gate scripts, and a README saying what happens.

/// What the demo asks for.
pub const DEMO_REQUEST: &str = "Build wordstat: a command-line tool that reports word, line and \
                                character counts of text files";

/// The demo project's files, relative to its root, in the order to write them.
pub fn demo_files() -> Vec<(&'static str, String)> {
    vec![
        ("orch.yaml", DEMO_CONFIG.to_string()),
        ("README.md", README.replace("{request}", DEMO_REQUEST)),
        (".gitignore", ".orch/\n".to_string()),
        ("scripts/lint.sh", LINT_SH.to_string()),
        ("scripts/test.sh", TEST_SH.to_string()),
    ]
}

/// Two workers so that the tasks visibly spread across agents; a third agent plans and
/// judges. No pace here: an agent's `env` would override the `ORCH_SCRIPTED_PACE` that
/// `orch demo` (or the user) sets, and a run with nobody watching is better fast.
const DEMO_CONFIG: &str = r#"# orch.yaml for the wordstat demo. Every agent is orch's built-in scripted agent: offline,
# deterministic, and a sample: `sample: true` says that it is known to build this sample
# whatever the request. `orch demo` slows them down when you watch it in a terminal; set
# ORCH_SCRIPTED_PACE (e.g. `ORCH_SCRIPTED_PACE=2s orch up "..."`) to choose the pace.
# Replace `kind: scripted` (and `sample: true`) with `kind: claude` (or codex, opencode,
# gemini) to give the same job to real agents.
agents:
  carol:
    kind: scripted
    sample: true
  alice:
    kind: scripted
    sample: true
  bob:
    kind: scripted
    sample: true

roles:
  # Writes specs/*.md, then the plan.
  planner: carol
  # Gives the verdict on each task after the gates.
  judge: carol
  # Asked for advice on a task that keeps failing.
  oracle: carol
  # The agents the plan assigns tasks to (round-robin).
  workers: [alice, bob]

limits:
  max_parallel: 2
  task_timeout: 5m
  retries: 1
  planner_retries: 1

gates:
  # Both run with `sh -c` in the project root; they need nothing but a POSIX sh.
  lint: sh scripts/lint.sh
  test: sh scripts/test.sh
  test_pattern: ["tests/**"]
  tdd: strict

ownership:
  on_violation: warn
"#;

const README: &str = r#"# wordstat: an orch demo

This project was created by `orch demo`, which then asked a team of agents:

> {request}

All the agents here are orch's built-in scripted agent (see `orch.yaml`): it needs no
network and no API key, and does the same thing every time (watched in a terminal, at a pace
you can follow).

## What happens

1. **carol plans.** She writes the specs first (`specs/architecture.md`, `specs/lib.md`,
   `specs/cli.md`), then answers with a plan: four tasks, each owning its files, each with
   its own tests.
2. **alice and bob work.** `lib/text.sh` and `lib/report.sh` are built in parallel, then
   `lib/stats.sh` (it needs `lib/text.sh`), then `bin/wordstat` (it needs all three). Each
   worker writes its tests before its code, and writes only the files its task owns.
3. **The gates run**: `sh scripts/lint.sh` and `sh scripts/test.sh`.
4. **carol judges** each task.

Everything orch keeps about the run (prompts, answers, the plan, logs) is under `.orch/`,
which `.gitignore` leaves out.

## Try the result

```sh
sh bin/wordstat README.md
sh bin/wordstat -w -t 5 specs/*.md
sh scripts/test.sh
```

## Break it on purpose

The scripted agent misbehaves on request, to show how orch copes: set
`ORCH_SCRIPTED_FAULT` in an agent's `env` in `orch.yaml`, for example
`env: { ORCH_SCRIPTED_FAULT: "crash@stats" }` (the worker of task `stats` exits 3 after its
first file) or `bad-plan` (carol's first plan is invalid; orch sends the problems back).
Other faults: `garbage`, `hang`, `violate`, `delete`, `no-write`, `slow`.
"#;

/// The lint gate.
const LINT_SH: &str = r#"#!/bin/sh
# The lint gate (orch.yaml, gates.lint): every shell script must parse, and every command
# in bin/ must be an executable POSIX sh script. Run from the project root.
status=0
for f in lib/*.sh bin/* tests/*.sh scripts/*.sh; do
	[ -f "$f" ] || continue
	if ! sh -n "$f"; then
		echo "lint: $f: syntax error" >&2
		status=1
	fi
done
for f in bin/*; do
	[ -f "$f" ] || continue
	if [ ! -x "$f" ]; then
		echo "lint: $f: not executable (chmod +x $f)" >&2
		status=1
	fi
	if [ "$(head -n 1 "$f")" != '#!/bin/sh' ]; then
		echo "lint: $f: must start with #!/bin/sh" >&2
		status=1
	fi
done
[ "$status" -ne 0 ] || echo "lint: ok"
exit "$status"
"#;

/// The test gate.
const TEST_SH: &str = r#"#!/bin/sh
# The test gate (orch.yaml, gates.test): runs every tests/*_test.sh from the project root
# and fails if any of them fails.
status=0
count=0
for t in tests/*_test.sh; do
	[ -f "$t" ] || continue
	count=$((count + 1))
	echo "== $t"
	if sh "$t"; then
		echo "PASS $t"
	else
		echo "FAIL $t"
		status=1
	fi
done
echo "$count test file(s) run"
exit "$status"
"#;

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
