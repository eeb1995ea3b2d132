//! The judge end to end: gates that fail and pass on retry, retries exhausted, a judge that
//! answers garbage first, a missing spec, a task without tests, strict TDD, the oracle, and
//! the report. Agents of our own (`kind: command` scripts) play the workers and the judge.

use crate::support;

use support::Up;

/// A worker that counts its starts in the run directory and writes its files; what it writes
/// depends on the attempt (`$n`).
fn worker(body: &str) -> String {
    format!(
        "#!/bin/sh\nset -e\necho start >> \"$ORCH_RUN_DIR/starts-$ORCH_TASK_ID\"\n\
         n=$(wc -l < \"$ORCH_RUN_DIR/starts-$ORCH_TASK_ID\" | tr -d ' ')\nmkdir -p tests\n{body}\n"
    )
}

/// The worker (and a judge of the test's own) keep their bookkeeping in the run's directory,
/// which is read-only in the sandbox: they run unboxed (tests/sandbox.rs tests the box).
fn config(extra: &str) -> String {
    format!(
        "agents:\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\n    sandbox: off\n  judge:\n    kind: scripted\n    sample: true\n\
         roles:\n  planner: judge\n  judge: judge\n  workers: [mine]\n\
         limits:\n  retries: 1\n  task_timeout: 60s\n{extra}"
    )
}

const ONE_TASK: &str = r#"{"tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]}
]}"#;

const TWO_TASKS: &str = r#"{"tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"], "depends_on": ["a"]}
]}"#;

fn setup(name: &str, config: &str, plan: &str, worker_body: &str) -> Up {
    let up = Up::new(name, config);
    up.p.script("worker.sh", &worker(worker_body));
    up.p.file("plan.json", plan);
    up
}

fn starts(up: &Up, task: &str) -> usize {
    std::fs::read_to_string(up.run_dir().join(format!("starts-{task}")))
        .map_or(0, |s| s.lines().count())
}

#[test]
fn a_task_that_fails_lint_once_passes_on_retry() {
    let up = setup(
        "lint-once",
        &config("gates:\n  lint: \"! grep -q BAD a.txt\"\n"),
        ONE_TASK,
        "echo ok > tests/a_test.txt\nif [ \"$n\" = 1 ]; then echo BAD > a.txt; else echo GOOD > a.txt; fi",
    );
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(0);
    let status = up.status();
    let a = Up::task(&status, "a");
    assert_eq!(a["state"], "done", "{status:#}");
    assert_eq!(a["attempts"], 2);
    assert_eq!(starts(&up, "a"), 2);
    let retry = std::fs::read_to_string(up.run_dir().join("tasks/a/2/prompt.md")).unwrap();
    assert!(
        retry.contains("Your previous attempt was refused"),
        "{retry}"
    );
    assert!(retry.contains("gate `lint` failed"), "{retry}");
    assert!(retry.contains("earlier work is in place"), "{retry}");
    let ctx = orch::prompt::Context::find(&retry).unwrap();
    assert!(
        ctx.feedback.iter().any(|f| f.contains("lint")),
        "{:?}",
        ctx.feedback
    );
}

#[test]
fn a_task_that_never_passes_fails_the_run_and_blocks_its_dependents() {
    let up = setup(
        "never",
        &config("gates:\n  lint: \"! grep -q BAD a.txt\"\n"),
        TWO_TASKS,
        "echo ok > \"tests/${ORCH_TASK_ID}_test.txt\"\necho BAD > \"$ORCH_TASK_ID.txt\"",
    );
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(1);
    let status = up.status();
    let a = Up::task(&status, "a");
    assert_eq!(a["state"], "failed", "{status:#}");
    assert_eq!(a["attempts"], 2, "retries: 1 means two attempts in all");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("refused after 2 attempt(s)"),
        "{a:#}"
    );
    assert_eq!(Up::task(&status, "b")["state"], "blocked");
    assert_eq!(starts(&up, "a"), 2);
    assert_eq!(starts(&up, "b"), 0);
    assert_eq!(status["phase"], "failed");
}

#[test]
fn a_judge_answering_garbage_first_is_asked_again() {
    let judge = "#!/bin/sh\necho x >> \"$ORCH_RUN_DIR/judge-calls\"\n\
                 if [ $(wc -l < \"$ORCH_RUN_DIR/judge-calls\") = 1 ]; then echo 'I think it is fine?'; \
                 else echo '{\"verdict\": \"pass\", \"tasks\": []}'; fi\n";
    let cfg = config("").replace("  judge:\n    kind: scripted\n    sample: true\n", "  judge:\n    kind: command\n    command: [\"./judge.sh\"]\n    sandbox: off\n  plan:\n    kind: scripted\n    sample: true\n").replace("planner: judge", "planner: plan");
    let up = setup(
        "garbage-judge",
        &cfg,
        ONE_TASK,
        "echo ok > tests/a_test.txt\necho ok > a.txt",
    );
    up.p.script("judge.sh", judge);
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(0);
    let journal = up.journal();
    assert!(journal.contains("\"event\":\"judge_refused\""), "{journal}");
    assert!(journal.contains("no verdict found"), "{journal}");
    let second = std::fs::read_to_string(up.run_dir().join("judge/2/prompt.md")).unwrap();
    assert!(
        second.contains("Your previous answer could not be read"),
        "{second}"
    );
    assert_eq!(
        Up::task(&up.status(), "a")["attempts"],
        1,
        "the worker is not blamed for the judge"
    );
}

#[test]
fn a_judge_that_never_answers_fails_its_tasks() {
    let cfg = config("").replace("limits:\n", "limits:\n  judge_retries: 1\n");
    let up = setup(
        "garbage-always",
        &cfg,
        ONE_TASK,
        "echo ok > tests/a_test.txt\necho ok > a.txt",
    );
    up.orch()
        .args(["up", "go", "--plan", "plan.json", "--detach"])
        .env("ORCH_SCRIPTED_FAULT", "garbage@judge")
        .run()
        .expect(0);
    up.wait(1);
    let a = Up::task(&up.status(), "a").clone();
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("the judge gave no valid verdict after 2 attempt(s)"),
        "{a:#}"
    );
}

#[test]
fn a_missing_spec_fails_the_specs_gate() {
    let plan = ONE_TASK.replace(
        "{\"tasks\"",
        "{\"specs\": [{\"file\": \"specs/api.md\"}], \"tasks\"",
    );
    let up = setup(
        "spec",
        &config(""),
        &plan,
        "echo ok > tests/a_test.txt\necho ok > a.txt",
    );
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(1);
    let status = up.status();
    let a = Up::task(&status, "a");
    assert_eq!(a["state"], "failed");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("spec file(s) missing or empty: specs/api.md"),
        "{a:#}"
    );
}

#[test]
fn a_task_without_a_test_file_fails_the_tests_gate() {
    let plan =
        r#"{"tasks": [{"id": "a", "agent": "mine", "task": "write a", "files": ["a.txt"]}]}"#;
    let up = setup("notest", &config(""), plan, "echo ok > a.txt");
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(1);
    let a = Up::task(&up.status(), "a").clone();
    assert!(
        a["reason"].as_str().unwrap().contains("owns no test file"),
        "{a:#}"
    );
}

#[test]
fn strict_tdd_refuses_tests_written_after_the_implementation() {
    // The implementation first, the test a moment later: the watcher sees the order.
    let body = "echo ok > a.txt\nsleep 0.3\necho ok > tests/a_test.txt";
    let up = setup("tdd", &config("gates:\n  tdd: strict\n"), ONE_TASK, body);
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(1);
    let a = Up::task(&up.status(), "a").clone();
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("implementation written before any test: a.txt"),
        "{a:#}"
    );
    // Under `tdd: warn` the same order is reported, not refused.
    let up = setup("tdd-warn", &config("gates:\n  tdd: warn\n"), ONE_TASK, body);
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(0);
    let report = up.orch().args(["report"]).run().expect(0).stdout();
    assert!(
        report.contains("warning: implementation written before any test"),
        "{report}"
    );
}

#[test]
fn the_oracle_advises_a_task_that_failed_twice() {
    let cfg = config("gates:\n  lint: \"! grep -q BAD a.txt\"\n")
        .replace("  retries: 1\n", "  retries: 2\n")
        .replace(
            "  workers: [mine]\n",
            "  workers: [mine]\n  oracle: judge\n",
        );
    let up = setup(
        "oracle",
        &cfg,
        ONE_TASK,
        "echo ok > tests/a_test.txt\nif [ \"$n\" -lt 3 ]; then echo BAD > a.txt; else echo GOOD > a.txt; fi",
    );
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(0);
    assert_eq!(Up::task(&up.status(), "a")["attempts"], 3);
    let third = std::fs::read_to_string(up.run_dir().join("tasks/a/3/prompt.md")).unwrap();
    assert!(third.contains("advice from the oracle"), "{third}");
    assert!(
        !std::fs::read_to_string(up.run_dir().join("tasks/a/2/prompt.md"))
            .unwrap()
            .contains("advice from the oracle")
    );
}

#[test]
fn the_report_tells_what_happened() {
    let plan = ONE_TASK.replacen('{', r#"{"specs": [{"file": "specs/a.md"}], "#, 1);
    let up = setup(
        "report",
        &config("gates:\n  lint: \"! grep -q BAD a.txt\"\n  test: \"true\"\n"),
        &plan,
        "printf 'one\\ntwo\\n' > tests/a_test.txt\nif [ \"$n\" = 1 ]; then echo BAD > a.txt; else echo GOOD > a.txt; fi",
    );
    up.p.file("specs/a.md", "# a\n");
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(0);
    let dir = up.run_dir();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["outcome"], "succeeded");
    let a = &json["tasks"][0];
    assert_eq!(a["agent"], "mine");
    assert_eq!(a["attempts"], 2);
    assert_eq!(a["verdict"], "pass");
    assert_eq!(a["files"][0]["path"], "tests/a_test.txt");
    assert_eq!(a["files"][0]["added"], 2);
    assert!(
        a["gates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["gate"] == "lint" && g["status"] == "passed")
    );
    assert!(
        a["tdd"]
            .as_str()
            .unwrap()
            .contains("tests were written before"),
        "{a:#}"
    );
    assert_eq!(json["totals"]["attempts"], 2);
    // What sent attempt 1 back, and that attempt 2 passed.
    let history = a["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{a:#}");
    assert_eq!(history[0]["outcome"], "refused");
    assert!(
        history[0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("gate `lint` failed"),
        "{a:#}"
    );
    assert!(
        history[0]["gates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["gate"] == "lint" && g["status"] == "failed")
    );
    assert_eq!(history[1]["outcome"], "done");
    assert_eq!(
        json["specs"],
        serde_json::json!([{"path": "specs/a.md", "exists": true, "bytes": 4}])
    );
    assert!(
        json["run_gates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["gate"] == "test" && g["status"] == "passed")
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("# orch run")
            && md.contains("succeeded")
            && md.contains("tests/a_test.txt (+2 -0)"),
        "{md}"
    );
    assert!(md.contains("- attempt 1: refused after "), "{md}");
    assert!(md.contains("  - gate `lint` failed"), "{md}");
    assert!(md.contains("## Specs\n\n- specs/a.md — 4 bytes"), "{md}");
    up.orch()
        .args(["report"])
        .run()
        .expect(0)
        .stdout_has("## Task a (done)")
        .stdout_has("judge: pass");
    // The status says why attempt 1 was sent back.
    up.orch()
        .args(["status"])
        .run()
        .expect(0)
        .stdout_has("SENT BACK")
        .stdout_has("a: attempt 1 refused after ")
        .stdout_has("gate `lint` failed");
}
