//! The foundation commands, driven through the real binary: init, doctor, validate, plan.

use crate::support;

use support::TestProject;

const COMMAND_CONFIG: &str = "\
agents:
  mine:
    kind: command
    command: [\"./agent.sh\", \"{prompt_file}\"]
roles:
  planner: mine
  judge: mine
  workers: [mine]
limits:
  planner_retries: 1
";

/// A PATH with tmux, git and sleep (doctor's probe window) and no agent CLI, whatever this
/// machine has installed: `orch init` then writes a config on the scripted agent only.
fn path_without_agent_clis() -> (tempfile::TempDir, String) {
    let bin = tempfile::tempdir().unwrap();
    for tool in ["tmux", "git", "sleep"] {
        let found = which::which(tool).unwrap_or_else(|_| panic!("{tool} is needed"));
        std::os::unix::fs::symlink(found, bin.path().join(tool)).unwrap();
    }
    let path = bin.path().display().to_string();
    (bin, path)
}

#[test]
fn init_writes_a_config_that_doctor_checks_and_refuses_to_overwrite() {
    let p = TestProject::new();
    let (_bin, path) = path_without_agent_clis();
    let orch = || p.orch().env("PATH", &path);
    orch()
        .args(["init"])
        .run()
        .expect(0)
        .stdout_has("wrote")
        .stdout_has("looked on PATH for claude, codex, opencode and gemini")
        .stdout_has("npm install -g @anthropic-ai/claude-code")
        .stdout_has("`sample: true`")
        .stdout_has("did not recognise this kind of project");
    assert!(p.read("orch.yaml").contains("kind: scripted"));
    assert!(p.read(".gitignore").lines().any(|l| l == ".orch/"));
    orch()
        .args(["init"])
        .run()
        .expect(2)
        .stderr_has("already exists")
        .stderr_has("--force");
    orch().args(["init", "--force"]).run().expect(0);
    // Idempotent: .orch/ is not added twice.
    assert_eq!(p.read(".gitignore").matches(".orch/").count(), 1);
    // The starter's scripted agent is a sample: the doctor says so, and that runs refuse it.
    orch()
        .args(["doctor"])
        .run()
        .expect(1)
        .stdout_has("can start a server")
        .stdout_has("built into orch")
        .stdout_has(
            "FAIL  orch's built-in scripted agent plays `scripted` (planner, judge, worker)",
        )
        .stdout_has("`orch up` refuses it")
        .stdout_has("no test gate")
        .stdout_has("the judge relies on the agents' word");
    // Marked as a sample, it is ready (and still said to be a sample).
    let text = p
        .read("orch.yaml")
        .replace("    # sample: true", "    sample: true");
    p.file("orch.yaml", &text);
    orch()
        .args(["doctor"])
        .run()
        .expect(0)
        .stdout_has("warn  orch's built-in scripted agent plays `scripted`")
        .stdout_has("runs build the sample")
        .stdout_has("ready");
}

/// The default config must not quietly build the wordstat sample under the user's request:
/// `orch up` and `orch plan` refuse, before anything runs, and say how to get a real agent.
#[test]
fn up_and_plan_refuse_the_scripted_agent_unless_it_is_marked_a_sample() {
    let p = TestProject::new();
    p.file("pyproject.toml", "[project]\nname = \"x\"\n");
    let (_bin, path) = path_without_agent_clis();
    p.orch().env("PATH", &path).args(["init"]).run().expect(0);
    for args in [
        vec!["up", "add a function that reverses words", "--detach"],
        vec!["plan", "add a function that reverses words"],
    ] {
        p.orch()
            .env("PATH", &path)
            .env("ORCH_TMUX_SOCKET", "orch-test-never-started")
            .args(&args)
            .run()
            .expect(2)
            .stderr_has("built-in sample agent")
            .stderr_has("it is a sample that ignores the request")
            .stderr_has("orch init --force")
            .stderr_has("add `sample: true` under agent `scripted`");
    }
    assert!(!p.path(".orch/runs").exists(), "no run was created");
    assert!(!p.path("specs").exists(), "the planner did not run");
    // Once asked for, `orch plan` runs it and says plainly what it does.
    let text = p
        .read("orch.yaml")
        .replace("    # sample: true", "    sample: true");
    p.file("orch.yaml", &text);
    p.orch()
        .env("PATH", &path)
        .args(["plan", "add a function that reverses words"])
        .run()
        .expect(0)
        .stderr_has("note: a sample run (`sample: true`): orch's built-in scripted agent plays `scripted` (planner)")
        .stderr_has("builds wordstat");
}

#[test]
fn init_proposes_the_gates_of_a_python_project() {
    let p = TestProject::new();
    p.file("pyproject.toml", "[project]\nname = \"x\"\n");
    let (bin, path) = path_without_agent_clis();
    for tool in ["pytest", "ruff"] {
        let file = bin.path().join(tool);
        std::fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
        let mut perms = std::fs::metadata(&file).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&file, perms).unwrap();
    }
    p.orch()
        .env("PATH", &path)
        .args(["init"])
        .run()
        .expect(0)
        .stdout_has("gates for a Python project (found pyproject.toml): lint `ruff check .`, test `pytest -q`");
    let text = p.read("orch.yaml");
    assert!(text.contains("\n  lint: ruff check .\n"), "{text}");
    assert!(text.contains("\n  test: pytest -q\n"), "{text}");
    assert!(
        !text.contains("cargo test") && !text.contains("cargo clippy"),
        "{text}"
    );
    assert!(text.contains("\"**/test_*.py\""), "{text}");
    p.orch()
        .env("PATH", &path)
        .args(["doctor"])
        .run()
        .stdout_has("ok    test gate `pytest -q`")
        .stdout_has("ok    lint gate `ruff check .`");
}

#[test]
fn doctor_without_config_says_to_run_init() {
    let p = TestProject::new();
    p.orch()
        .args(["doctor"])
        .run()
        .expect(1)
        .stdout_has("FAIL")
        .stdout_has("orch init");
}

#[test]
fn doctor_names_a_missing_agent_program_and_the_fix() {
    let p = TestProject::new();
    p.file("orch.yaml", COMMAND_CONFIG);
    p.orch()
        .args(["doctor"])
        .run()
        .expect(1)
        .stdout_has("agent `mine` (command): `./agent.sh` not found")
        .stdout_has("fix:");
    p.script("agent.sh", "#!/bin/sh\n");
    p.orch().args(["doctor"]).run().expect(0);
}

#[test]
fn config_errors_exit_2_with_the_line() {
    let p = TestProject::new();
    p.file(
        "orch.yaml",
        &COMMAND_CONFIG.replace("  planner_retries: 1", "  planner_retrys: 1"),
    );
    p.file("plan.json", "{\"tasks\": []}");
    p.orch()
        .args(["validate", "plan.json"])
        .run()
        .expect(2)
        .stderr_has("unknown field `planner_retrys`")
        .stderr_has("orch.yaml:10:3")
        .stderr_has("planner_retries");
    let run = p.orch().args(["plan", "x"]).run().expect(2);
    let err = run.stderr();
    assert!(!err.contains("<input>"), "{err}");
    assert_eq!(
        err.matches("unknown field `planner_retrys`").count(),
        1,
        "{err}"
    );
    // The doctor's advice names the place and what to do there.
    p.orch()
        .args(["doctor"])
        .run()
        .expect(1)
        .stdout_has("fix: edit line 10, column 3 of orch.yaml: that name is not a field there")
        .stdout_has("use one of the names listed");
    p.orch()
        .args(["--config", "nope.yaml", "plan", "x"])
        .run()
        .expect(2)
        .stderr_has("orch init");
}

#[test]
fn validate_reports_each_defect_on_its_own_line() {
    let p = TestProject::new();
    p.file("orch.yaml", COMMAND_CONFIG);
    p.file(
        "bad.json",
        r#"{"specs": [{"file": "../outside.md"}],
            "tasks": [
              {"id": 1, "agent": "mine", "task": "a", "files": ["src/a.sh", "/etc/x"], "depends_on": [3]},
              {"id": 2, "agent": "ghost", "task": "b", "files": ["src/a.sh"], "depends_on": [9]},
              {"id": 3, "agent": "mine", "task": "", "files": [], "depends_on": [1]},
              {"id": 3, "agent": "mine", "task": "d", "files": [".git/hooks/x"]}
            ]}"#,
    );
    let run = p.orch().args(["validate", "bad.json"]).run().expect(1);
    let out = run.stdout();
    for needle in [
        "tasks #3 and #4 both have id 3",
        "task 2: agent `ghost` is not one of the workers (mine)",
        "task 2: depends on 9, which is not a task",
        "tasks 1 → 3 → 1 form a dependency cycle",
        "src/a.sh is owned by both task 1 and task 2",
        "task 3: owns no files",
        "task 1: file \"/etc/x\" is absolute",
        "inside `.git/`",
        "spec file \"../outside.md\" contains `..`",
        "task 3: the task text is empty",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let problem_lines = out.lines().filter(|l| l.starts_with("  - ")).count();
    assert!(
        out.contains(&format!("{problem_lines} problem(s)")),
        "{out}"
    );
}

#[test]
fn validate_prints_waves_for_a_good_plan() {
    let p = TestProject::new();
    p.file("orch.yaml", COMMAND_CONFIG);
    p.file(
        "good.json",
        r#"Here you go: ```json
        {"specs": [{"file": "specs/api.md", "description": "API"}],
         "tasks": [
           {"id": "db", "agent": "mine", "task": "schema", "files": ["src/db.sh", "tests/db_test.sh"]},
           {"id": "api", "agent": "mine", "task": "handlers", "files": ["src/api.sh"], "depends_on": ["db"]}
         ]}
        ```"#,
    );
    p.orch()
        .args(["validate", "good.json"])
        .run()
        .expect(0)
        .stdout_has("valid")
        .stdout_has("2 task(s)")
        .stdout_has("wave 1:\n  task db [mine]")
        .stdout_has("wave 2:\n  task api [mine] handlers  (after db)");
}

/// A planner of our own that reads its prompt file, writes the spec, and answers with JSON
/// wrapped in prose. It copies its context line out so the test can check the request.
const PROSE_PLANNER: &str = r#"#!/bin/sh
set -e
grep '^ORCH_CONTEXT ' "$ORCH_PROMPT_FILE" | tail -n 1 > context.txt
[ "$ORCH_ROLE" = planner ] || exit 9
mkdir -p specs
printf '# API\n' > specs/api.md
cat <<'JSON'
Sure! I wrote the spec. Here is the plan:
{"specs": [{"file": "specs/api.md", "description": "the API"}],
 "tasks": [{"id": 1, "agent": "mine", "task": "build it", "files": ["src/a.sh", "tests/a_test.sh"]}]}
Let me know if you need anything else.
JSON
"#;

#[test]
fn plan_with_a_command_planner_answering_in_prose() {
    let p = TestProject::new();
    p.file("orch.yaml", COMMAND_CONFIG);
    p.script("agent.sh", PROSE_PLANNER);
    let request =
        "Build \"auth\" with 'quotes', $(touch pwned), `uname`; rm -rf / \n second line ünï";
    p.orch()
        .args(["plan", request])
        .run()
        .expect(0)
        .stdout_has("1 task(s)")
        .stdout_has("plan: .orch/plans/");
    assert!(!p.path("pwned").exists());
    let context: serde_json::Value =
        serde_json::from_str(p.read("context.txt").trim_start_matches("ORCH_CONTEXT ")).unwrap();
    assert_eq!(context["request"], request);
    assert_eq!(context["role"], "planner");
    assert!(context["task"].is_null());
    let plans: Vec<_> = std::fs::read_dir(p.path(".orch/plans")).unwrap().collect();
    assert_eq!(plans.len(), 1);
    let dir = plans[0].as_ref().unwrap().path();
    assert!(dir.join("plan.json").exists());
    assert!(dir.join("planner/1/prompt.md").exists());
    assert!(dir.join("planner/1/output.log").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("request.txt")).unwrap(),
        request
    );
}

#[test]
fn plan_that_never_validates_exits_1_after_every_attempt() {
    let p = TestProject::new();
    p.file("orch.yaml", COMMAND_CONFIG);
    p.script(
        "agent.sh",
        "#!/bin/sh\necho '{\"tasks\": [{\"id\": 1, \"agent\": \"nobody\", \"task\": \"x\", \"files\": [\"/abs\"]}]}'\n",
    );
    let run = p.orch().args(["plan", "anything"]).run().expect(1);
    let err = run.stderr();
    assert!(err.contains("attempt 2 of 2"), "{err}");
    assert!(!err.contains("attempt 3"), "{err}");
    assert!(
        err.contains("agent `nobody` is not one of the workers"),
        "{err}"
    );
    assert!(err.contains("no valid plan after 2 attempt(s)"), "{err}");
    assert!(err.contains(".orch/plans/"), "{err}");
    // The second prompt carried the first attempt's problems.
    let dir = std::fs::read_dir(p.path(".orch/plans"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let second = std::fs::read_to_string(dir.join("planner/2/prompt.md")).unwrap();
    assert!(
        second.contains("Your previous plan was refused"),
        "{second}"
    );
    assert!(second.contains("is absolute"), "{second}");
}

#[test]
fn plan_with_a_crashing_planner_reports_its_status() {
    let p = TestProject::new();
    p.file("orch.yaml", COMMAND_CONFIG);
    p.script("agent.sh", "#!/bin/sh\necho boom >&2\nexit 4\n");
    p.orch()
        .args(["plan", "x"])
        .run()
        .expect(1)
        .stderr_has("the planner exited with status 4")
        .stderr_has("boom");
}

#[test]
fn empty_request_is_a_usage_error() {
    let p = TestProject::new();
    p.file("orch.yaml", COMMAND_CONFIG);
    p.orch()
        .args(["plan", "  "])
        .run()
        .expect(2)
        .stderr_has("the request is empty");
}

const SCRIPTED_CONFIG: &str = "\
agents:
  bot:
    kind: scripted
    sample: true
roles:
  planner: bot
  judge: bot
  workers: [bot]
limits:
  planner_retries: 1
  task_timeout: 3s
";

#[test]
fn plan_with_the_scripted_planner() {
    let p = TestProject::new();
    p.file("orch.yaml", SCRIPTED_CONFIG);
    let run = p.orch().args(["plan", "Build wordstat"]).run().expect(0);
    let out = run.stdout();
    assert!(out.contains("3 spec(s), 4 task(s)"), "{out}");
    assert!(out.contains("wave 3:"), "{out}");
    assert!(p.read("specs/architecture.md").contains("Build wordstat"));
}

#[test]
fn plan_fault_bad_plan_is_fixed_on_the_second_attempt() {
    let p = TestProject::new();
    p.file("orch.yaml", SCRIPTED_CONFIG);
    p.orch()
        .args(["plan", "x"])
        .env("ORCH_SCRIPTED_FAULT", "bad-plan")
        .run()
        .expect(0)
        .stderr_has("attempt 1: the plan was refused")
        .stderr_has("dependency cycle")
        .stderr_has("attempt 2 of 2")
        .stdout_has("4 task(s)");
}

#[test]
fn plan_faults_that_never_give_a_plan_exit_1() {
    for (fault, says) in [
        ("garbage", "no plan found in the answer"),
        ("crash", "the planner exited with status 3"),
        ("hang", "stopped after 3s without output"),
    ] {
        let p = TestProject::new();
        p.file(
            "orch.yaml",
            &SCRIPTED_CONFIG.replace("planner_retries: 1", "planner_retries: 0"),
        );
        p.orch()
            .args(["plan", "x"])
            .env("ORCH_SCRIPTED_FAULT", fault)
            .run()
            .expect(1)
            .stderr_has(says)
            .stderr_has("no valid plan after 1 attempt(s)");
    }
}

#[test]
fn plan_worker_faults_do_not_touch_the_planner() {
    for fault in ["violate", "delete", "no-write", "crash@worker"] {
        let p = TestProject::new();
        p.file("orch.yaml", SCRIPTED_CONFIG);
        p.orch()
            .args(["plan", "x"])
            .env("ORCH_SCRIPTED_FAULT", fault)
            .run()
            .expect(0);
    }
}

#[test]
fn plan_fault_slow_still_plans() {
    let p = TestProject::new();
    p.file(
        "orch.yaml",
        &SCRIPTED_CONFIG.replace("task_timeout: 3s", "task_timeout: 30s"),
    );
    p.orch()
        .args(["plan", "x"])
        .env("ORCH_SCRIPTED_FAULT", "slow")
        .run()
        .expect(0)
        .stdout_has("4 task(s)");
}

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    let p = TestProject::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = p.orch().args(["completions", shell]).run().expect(0);
        let out = run.stdout();
        for sub in [
            "init",
            "doctor",
            "up",
            "wait",
            "report",
            "completions",
            "man",
        ] {
            assert!(out.contains(sub), "{shell}: no `{sub}` in\n{out}");
        }
        assert!(out.contains("timeout"), "{shell}: no options in\n{out}");
        assert!(
            out.contains("config"),
            "{shell}: no global option in\n{out}"
        );
        for hidden in ["scripted-agent", "agent-run"] {
            assert!(!out.contains(hidden), "{shell}: offers `{hidden}`\n{out}");
        }
    }
    p.orch()
        .args(["completions", "tcsh"])
        .run()
        .expect(2)
        .stderr_has("possible values");
}

#[test]
fn the_man_page_is_roff_with_every_command() {
    let p = TestProject::new();
    let run = p.orch().args(["man"]).run().expect(0);
    let page = run.stdout();
    assert!(page.contains(".TH orch 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in [
        "init",
        "doctor",
        "plan",
        "up",
        "wait",
        "report",
        "completions",
    ] {
        assert!(
            page.contains(&format!("orch\\-{sub}(1)")),
            "no {sub} in\n{page}"
        );
    }
    assert!(
        !page.contains("scripted\\-agent"),
        "hidden commands stay hidden\n{page}"
    );
    let run = p.orch().args(["man", "wait"]).run().expect(0);
    assert!(run.stdout().contains(".TH orch-wait 1"), "{}", run.stdout());
    assert!(run.stdout().contains("\\-\\-timeout"), "{}", run.stdout());
    p.orch()
        .args(["man", "nope"])
        .run()
        .expect(2)
        .stderr_has("no command `nope`");
    let dir = p.path("man1");
    p.orch()
        .args(["man".as_ref(), "--dir".as_ref(), dir.as_os_str()])
        .run()
        .expect(0)
        .stdout_has("manual pages");
    assert!(dir.join("orch.1").is_file());
    assert!(dir.join("orch-up.1").is_file());
    assert!(!dir.join("orch-engine.1").exists());
}

#[test]
fn orch_version_prints_the_version() {
    let p = TestProject::new();
    let version = format!("orch {}", env!("CARGO_PKG_VERSION"));
    p.orch()
        .args(["version"])
        .run()
        .expect(0)
        .stdout_has(&version);
    p.orch()
        .args(["--version"])
        .run()
        .expect(0)
        .stdout_has(&version);
}

#[test]
fn the_help_lists_every_exit_code() {
    let p = TestProject::new();
    p.orch()
        .args(["--help"])
        .run()
        .expect(0)
        .stdout_has("3 `orch wait`: the run cannot progress")
        .stdout_has("124 `orch wait --timeout` ran out");
    p.orch()
        .args(["wait", "--help"])
        .run()
        .expect(0)
        .stdout_has("Exit 3, with the reason, when the run cannot progress");
}

#[test]
fn wait_takes_the_durations_the_config_takes_and_report_takes_run() {
    let p = TestProject::new();
    p.file("orch.yaml", COMMAND_CONFIG);
    for timeout in ["1h", "30m", "1h 30m", "90s", "3600"] {
        // Parsed: the error is that there is no run yet, not the duration.
        p.orch()
            .args(["wait", "--timeout", timeout])
            .run()
            .expect(2)
            .stderr_has("no run in");
    }
    p.orch()
        .args(["wait", "--timeout", "soon"])
        .run()
        .expect(2)
        .stderr_has("invalid duration `soon`");
    p.orch()
        .args(["report", "--run", "20261124-101500-ab12"])
        .run()
        .expect(2)
        .stderr_has("no run 20261124-101500-ab12");
    // The bare id of orch 0.1 still works, but not both at once.
    p.orch()
        .args(["report", "20261124-101500-ab12"])
        .run()
        .expect(2)
        .stderr_has("no run 20261124-101500-ab12");
    p.orch()
        .args(["report", "20261124-101500-ab12", "--run", "x"])
        .run()
        .expect(2)
        .stderr_has("cannot be used with");
}
