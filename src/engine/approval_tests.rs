//! Plan approval in the engine, driven input by input (see driven.rs): a held plan launches
//! nothing, a bad plan file is refused with its problems and the plan still waits, an edited
//! plan is what runs once approved, and a request is answered once.

use super::driven::Driven;
use super::driven_tests::{TWO_TASKS, config};
use super::event_loop::Input;
use crate::approval::{ApproveRequest, request, requests_dir};
use crate::state::Event;

fn approve(run: &Driven, id: &str) {
    let r = ApproveRequest {
        id: id.into(),
        feedback: None,
    };
    request(&run.dir, &r).unwrap();
}

fn count(run: &Driven, matches: impl Fn(&Event) -> bool) -> usize {
    run.journal().iter().filter(|r| matches(&r.event)).count()
}

#[test]
fn a_held_plan_launches_nothing_until_an_approval_of_a_valid_file() {
    let mut run = Driven::start(&config("plan_approval: ask\n"), Some(TWO_TASKS), &[]);
    run.settle();
    assert!(run.engine.state.approval.waiting(), "{}", run.dump());
    assert!(run.engine.plan.is_none());
    assert_eq!(
        run.tmux.panes().len(),
        1,
        "the control window only\n{}",
        run.dump()
    );

    // A bad file: refused with its problems, nothing launched, still waiting.
    std::fs::write(
        run.dir.plan(),
        r#"{"tasks": [{"id": "a", "agent": "nobody", "task": "t", "files": ["a.txt"]}]}"#,
    )
    .unwrap();
    approve(&run, "1");
    run.handle(Input::Tick);
    run.settle();
    let refusal = run.engine.state.approval.refusal("1").cloned();
    let problems = refusal.map(|r| r.problems.join("; ")).unwrap_or_default();
    assert!(problems.contains("nobody"), "{problems}\n{}", run.dump());
    assert!(run.engine.state.approval.waiting());
    assert_eq!(run.tmux.panes().len(), 1, "{}", run.dump());
    assert!(!requests_dir(&run.dir).join("1.json").exists());

    // Edited to task a alone: approved as edited, and only a runs.
    std::fs::write(
        run.dir.plan(),
        r#"{"tasks": [{"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]}]}"#,
    )
    .unwrap();
    approve(&run, "2");
    run.handle(Input::Tick);
    run.settle();
    assert!(!run.engine.state.approval.waiting(), "{}", run.dump());
    assert!(run.engine.state.approval.approved.as_ref().unwrap().edited);
    let a = run.next_agent();
    assert_eq!(a.task, "a");
    assert_eq!(run.engine.state.tasks.len(), 1);
    // The same request again (an engine that died before removing it) changes nothing.
    approve(&run, "2");
    run.handle(Input::Tick);
    assert_eq!(count(&run, |e| matches!(e, Event::PlanApproved { .. })), 1);
    assert_eq!(count(&run, |e| matches!(e, Event::PlanAccepted { .. })), 1);
}

#[test]
fn without_approval_asked_a_plan_runs_at_once() {
    let mut run = Driven::start(&config(""), Some(TWO_TASKS), &[]);
    let a = run.next_agent();
    assert_eq!(a.task, "a");
    assert_eq!(count(&run, |e| matches!(e, Event::PlanHeld { .. })), 0);
}

const PLANNED: &str = r#"{"specs": [{"file": "specs/a.md", "description": "a"}],
    "tasks": [{"id": "a", "agent": "mine", "task": "write a",
               "files": ["tests/a_test.txt", "a.txt"]}]}"#;

#[test]
fn feedback_has_the_planner_plan_again_and_its_new_plan_waits_in_turn() {
    // Two planner attempts, the first used: a re-plan the user asked for starts afresh.
    let mut run = Driven::start(
        &config("  planner_retries: 1\nplan_approval: ask\n"),
        None,
        &[],
    );
    let planner = run.next_agent();
    run.exit(&planner, 0, "no plan here");
    let planner = run.next_agent();
    run.write(&[("specs/a.md", "# what a does\n")]);
    run.exit(&planner, 0, PLANNED);
    assert!(run.engine.state.approval.waiting(), "{}", run.dump());

    let feedback = "split it in two\n```\nand `$(keep)` this as it is";
    let r = ApproveRequest {
        id: "t1".into(),
        feedback: Some(feedback.into()),
    };
    request(&run.dir, &r).unwrap();
    run.handle(Input::Tick);
    run.settle();
    assert!(!run.engine.state.approval.waiting(), "{}", run.dump());
    let again = run.next_agent();
    assert_eq!(again.role, "planner");
    assert!(again.dir.ends_with("planner/3"), "{}", again.dir.display());
    let prompt = std::fs::read_to_string(again.dir.join("prompt.md")).unwrap();
    assert!(prompt.contains("split it in two"), "{prompt}");
    assert!(prompt.contains("and `$(keep)` this as it is"), "{prompt}");
    assert!(prompt.contains("\"write a\""), "the plan it gave\n{prompt}");
    let kept = std::fs::read_to_string(run.dir.path().join("feedback/t1.md")).unwrap();
    assert_eq!(kept, feedback);

    // A plan the new attempt got wrong still has its retry: the re-plan did not use it up.
    run.exit(&again, 0, "no plan here");
    let third = run.next_agent();
    assert_eq!(third.role, "planner");
    run.exit(&third, 0, PLANNED);
    assert!(run.engine.state.approval.waiting(), "{}", run.dump());
    approve(&run, "a1");
    run.handle(Input::Tick);
    run.settle();
    let a = run.next_agent();
    assert_eq!(a.task, "a");
}
