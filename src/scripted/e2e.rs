//! End-to-end: the demo built by the scripted planner and workers passes the demo's own
//! gates; the judge, the oracle and bad input behave as documented.

use std::path::Path;

use super::agent::{Settings, report};
use super::testing::{self, dependency_order, plan_of, planner_ctx, sh, worker_ctx};
use crate::prompt::Role;

/// Creates the demo in `dir`, plans, runs every worker in dependency order; returns the
/// config and every answer printed, in order.
fn build_demo(dir: &Path) -> (crate::config::Config, Vec<String>) {
    for (file, content) in super::demo_files() {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let text = std::fs::read_to_string(dir.join("orch.yaml")).unwrap();
    let config = crate::config::parse(&text, Path::new("orch.yaml")).unwrap();
    let mut ctx = planner_ctx(dir, &[]);
    ctx.workers = config.roles.workers.clone();
    ctx.test_pattern = config.gates.test_pattern.clone();
    let ran = testing::run(&ctx, "");
    assert_eq!(ran.code, 0, "{}", ran.err);
    let plan = plan_of(&ran.out);
    let mut answers = vec![ran.out];
    for task in dependency_order(&plan) {
        let mut ctx = worker_ctx(dir, &plan, task);
        ctx.test_pattern = config.gates.test_pattern.clone();
        let ran = testing::run(&ctx, "");
        assert_eq!(ran.code, 0, "task {}: {}", task.id, ran.err);
        let mut wrote = ran.wrote();
        wrote.sort_unstable();
        let mut own: Vec<&str> = task.files.iter().map(String::as_str).collect();
        own.sort_unstable();
        assert_eq!(wrote, own, "task {}", task.id);
        answers.push(ran.out);
    }
    (config, answers)
}

#[test]
fn the_demo_passes_its_lint_and_test_gates() {
    let dir = tempfile::tempdir().unwrap();
    let (config, answers) = build_demo(dir.path());
    let lint = config.gates.lint.as_deref().unwrap();
    let test = config.gates.test.as_deref().unwrap();
    let (ok, output) = sh(dir.path(), lint);
    assert!(ok, "lint gate failed:\n{output}");
    let (ok, output) = sh(dir.path(), test);
    assert!(ok, "test gate failed:\n{output}");
    assert!(output.contains("4 test file(s) run"), "{output}");
    assert!(!output.contains("not ok"), "{output}");

    // Tests first means tests that fail without the code: take each implementation away.
    let plan = plan_of(&answers[0]);
    for task in &plan.tasks {
        let code = task
            .files
            .iter()
            .find(|f| !f.starts_with("tests/"))
            .unwrap();
        let path = dir.path().join(code);
        let saved = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (ok, output) = sh(dir.path(), test);
        assert!(!ok, "the tests pass without {code}:\n{output}");
        std::fs::write(&path, saved).unwrap();
    }
    // The lint gate checks what it says.
    std::fs::write(dir.path().join("lib/broken.sh"), "if then fi (\n").unwrap();
    assert!(!sh(dir.path(), lint).0);
}

#[test]
fn the_same_input_gives_the_same_files_and_answers() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, answers_a) = build_demo(a.path());
    let (_, answers_b) = build_demo(b.path());
    assert_eq!(answers_a, answers_b);
    for file in [
        "specs/architecture.md",
        "lib/stats.sh",
        "bin/wordstat",
        "tests/text_test.sh",
    ] {
        assert_eq!(
            std::fs::read(a.path().join(file)).unwrap(),
            std::fs::read(b.path().join(file)).unwrap(),
            "{file}"
        );
    }
}

#[test]
fn a_missing_or_invalid_context_is_bad_input() {
    let ran = testing::run_prompt("# Hello\n\nNo context here.\n", "");
    assert_eq!(ran.code, 2);
    assert!(
        ran.err.contains("no `ORCH_CONTEXT {json}` line"),
        "{}",
        ran.err
    );
    assert!(ran.out.is_empty());
    let ran = testing::run_prompt("ORCH_CONTEXT {\"role\":\"wizard\"}\n", "");
    assert_eq!(ran.code, 2);
    assert!(ran.err.contains("not a valid context"), "{}", ran.err);
    let mut ctx = testing::ctx(Role::Worker, Path::new("relative/dir"));
    ctx.files = crate::paths::project_paths(&["a.sh"]);
    let ran = testing::run(&ctx, "");
    assert_eq!(ran.code, 2);
    assert!(ran.err.contains("project_dir"), "{}", ran.err);

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let settings = Settings::default();
    let missing = Path::new("/nonexistent/prompt.md");
    let code = super::run_with(missing, &settings, &mut out, &mut err).unwrap();
    assert_eq!(code, 2);
    assert!(
        String::from_utf8(err)
            .unwrap()
            .contains("cannot read the prompt file")
    );
}

#[test]
fn bad_knobs_are_bad_input() {
    for (faults, pace, expected) in [
        ("explode", "", "valid faults: bad-plan, garbage, crash"),
        ("", "soon", "ORCH_SCRIPTED_PACE: invalid duration `soon`"),
    ] {
        let mut err = Vec::new();
        let e = Settings::parse(faults, pace).unwrap_err();
        assert_eq!(report(e, &mut err).unwrap(), 2);
        let err = String::from_utf8(err).unwrap();
        assert!(err.contains(expected), "{err}");
    }
    let settings = Settings::parse("slow@worker", "700ms").unwrap();
    assert_eq!(settings.pace.as_millis(), 700);
    assert_eq!(Settings::parse("", "2").unwrap().pace.as_secs(), 2);
}

#[test]
fn the_planner_crashes_or_answers_garbage_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = planner_ctx(dir.path(), &["a"]);
    let ran = testing::run(&ctx, "crash@planner");
    assert_eq!(ran.code, 3);
    assert!(ran.out.is_empty() && !ran.err.is_empty());
    let ran = testing::run(&ctx, "garbage");
    assert_eq!(ran.code, 0);
    assert!(!ran.out.contains('{') && !ran.out.trim().is_empty());
    assert!(!dir.path().join("specs").exists() && !dir.path().join(".orch").exists());
}

#[test]
fn the_judge_passes_every_task_unless_a_gate_failed() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = testing::ctx(Role::Judge, dir.path());
    let plan = r#"{"tasks":[{"id":"text","agent":"a","task":"t","files":["x"]},{"id":2,"agent":"a","task":"t","files":["y"]}]}"#;
    let prompt = format!(
        "# Judge\n\n```json\n{plan}\n```\n\n- lint: passed\n\n{}\n",
        ctx.line()
    );
    let ran = testing::run_prompt(&prompt, "");
    assert_eq!(ran.code, 0);
    let verdict: serde_json::Value = serde_json::from_str(&ran.out).unwrap();
    assert_eq!(verdict["verdict"], "pass");
    assert_eq!(verdict["tasks"][0]["id"], "text");
    assert_eq!(verdict["tasks"][1]["id"], 2);
    assert_eq!(verdict["tasks"][1]["verdict"], "pass");
    assert!(verdict["tasks"][1]["reason"].is_string());

    let failing = prompt.replace("- lint: passed", "- test gate: FAILED (exit 1)");
    let verdict: serde_json::Value =
        serde_json::from_str(&testing::run_prompt(&failing, "").out).unwrap();
    assert_eq!(verdict["verdict"], "fail");
    assert_eq!(verdict["tasks"][0]["verdict"], "fail");

    let ran = testing::run_prompt(&prompt, "garbage@judge");
    assert!(ran.code == 0 && !ran.out.contains('{'));
    assert_eq!(testing::run_prompt(&prompt, "crash@judge").code, 3);
}

#[test]
fn the_oracle_gives_advice() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = testing::ctx(Role::Oracle, dir.path());
    ctx.task = Some("stats".into());
    ctx.attempt = 3;
    ctx.feedback = vec!["tests/stats_test.sh failed: expected 3".into()];
    ctx.specs = crate::paths::project_paths(&["specs/lib.md"]);
    let ran = testing::run(&ctx, "");
    assert_eq!(ran.code, 0);
    assert!(
        ran.out.starts_with("Advice for task stats (attempt 3):"),
        "{}",
        ran.out
    );
    assert!(ran.out.contains("expected 3") && ran.out.contains("specs/lib.md"));
}
