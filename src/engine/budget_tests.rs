//! The budget in the engine, driven input by input (see driven.rs): a threshold journaled
//! from an agent's use as it reports it, nothing launched once the budget is used up, a
//! raise applied once and launches resumed, a bad request said, and a budget in USD alone
//! that agents without a cost would slip past.

use super::driven::Driven;
use super::driven_tests::config;
use super::event_loop::Input;
use crate::budget::{RaiseRequest, request_raise, requests_dir};
use crate::state::{Event, WarningKind};

const TWO_TASKS: &str = r#"{"tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"]}
]}"#;

fn count(run: &Driven, matches: impl Fn(&Event) -> bool) -> usize {
    run.journal().iter().filter(|r| matches(&r.event)).count()
}

fn raise(run: &Driven, id: &str, tokens: u64) {
    let request = RaiseRequest {
        id: id.into(),
        usd: None,
        tokens: Some(tokens),
    };
    request_raise(&run.dir, &request).unwrap();
}

#[test]
fn a_used_up_budget_holds_every_launch_until_a_raise() {
    let mut run = Driven::start(
        &config("  max_parallel: 1\n  budget: {tokens: 1000}\n"),
        Some(TWO_TASKS),
        &[],
    );
    let a = run.next_agent();
    // a's agent reports its use as it works: 80 %, then all of it.
    let log = a.dir.join("output.log");
    std::fs::write(
        &log,
        "ORCH_USAGE {\"input_tokens\":700,\"output_tokens\":100}\n",
    )
    .unwrap();
    run.handle(Input::Tick);
    assert_eq!(run.engine.state.budget.percent, 80, "{}", run.dump());
    std::fs::write(
        &log,
        "ORCH_USAGE {\"input_tokens\":700,\"output_tokens\":100}\n\
         ORCH_USAGE {\"input_tokens\":300,\"output_tokens\":0}\n",
    )
    .unwrap();
    run.handle(Input::Tick);
    assert!(run.engine.state.budget.reached(), "{}", run.dump());
    // `finish`: a ends its turn; neither the judge nor b is launched.
    run.work(&a);
    run.settle();
    assert_eq!(
        run.tmux.panes().len(),
        2,
        "control and a only\n{}",
        run.dump()
    );
    assert!(run.engine.budget_holds());

    raise(&run, "r1", 5000);
    run.handle(Input::Tick);
    run.settle();
    assert!(!run.engine.budget_holds(), "{}", run.dump());
    assert!(!requests_dir(&run.dir).join("r1.json").exists());
    run.pass_judge();
    let b = run.next_agent();
    assert_eq!(b.task, "b");
    // The same request again (an engine that died before removing it) counts once.
    raise(&run, "r1", 5000);
    run.handle(Input::Tick);
    assert_eq!(count(&run, |e| matches!(e, Event::BudgetRaised { .. })), 1);
}

#[test]
fn a_raise_that_cannot_apply_is_said_and_set_aside() {
    let mut run = Driven::start(&config("  budget: {tokens: 1000}\n"), Some(TWO_TASKS), &[]);
    let dollars = RaiseRequest {
        id: "r1".into(),
        usd: Some(5.0),
        tokens: None,
    };
    request_raise(&run.dir, &dollars).unwrap();
    std::fs::write(requests_dir(&run.dir).join("r2.json"), "{ not json").unwrap();
    run.handle(Input::Tick);
    let warnings: Vec<String> = run
        .engine
        .state
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Budget)
        .map(|w| w.message.clone())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings[0].contains("no budget in USD"), "{warnings:#?}");
    assert!(warnings[1].contains("cannot be read"), "{warnings:#?}");
    assert_eq!(count(&run, |e| matches!(e, Event::BudgetRaised { .. })), 0);
    assert_eq!(
        std::fs::read_dir(requests_dir(&run.dir)).unwrap().count(),
        0
    );
}

#[test]
fn a_budget_in_usd_alone_says_which_agents_it_does_not_count() {
    let yaml = "agents:\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\n  \
                cx:\n    kind: codex\n  unused:\n    kind: gemini\n  \
                judge:\n    kind: command\n    command: [\"./judge.sh\"]\n\
                roles:\n  planner: judge\n  judge: judge\n  workers: [mine, cx]\n\
                limits:\n  budget: {usd: 5}\n";
    let run = Driven::start(yaml, Some(TWO_TASKS), &[]);
    let said: Vec<&str> = run
        .engine
        .state
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Budget)
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(said[0].contains("agent(s) cx report no cost"), "{said:#?}");
    // With tokens too, the budget holds them: nothing to say.
    let yaml = yaml.replace("{usd: 5}", "{usd: 5, tokens: 100000}");
    let run = Driven::start(&yaml, Some(TWO_TASKS), &[]);
    assert!(
        !run.engine
            .state
            .warnings
            .iter()
            .any(|w| w.kind == WarningKind::Budget)
    );
}
