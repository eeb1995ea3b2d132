//! The engine driven input by input (see driven.rs): the main paths of a run — planning,
//! dispatch, exit, gates, the judge's pass or refusal, violations, stops, a resume — and the
//! launch answered by tmux after its agent's exit. No thread, no watcher, no waiting: each
//! assertion holds once `handle` returned.

use super::driven::Driven;
use super::event_loop::{Chooser, FAIR_AFTER, Input, Inputs, Stop};
use crate::plan::TaskId;
use crate::state::{Event, Outcome, TaskStatus};
use crate::tmux::{Call, TmuxError};
use crate::watch::{ChangeKind, FsChange};

pub(super) fn config(extra: &str) -> String {
    format!(
        "agents:\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\n  \
         judge:\n    kind: command\n    command: [\"./judge.sh\"]\n\
         roles:\n  planner: judge\n  judge: judge\n  workers: [mine]\n\
         limits:\n  retries: 1\n  task_timeout: 60s\n{extra}"
    )
}

pub(super) const TWO_TASKS: &str = r#"{"tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"], "depends_on": ["a"]}
]}"#;

fn status(run: &Driven, id: &str) -> TaskStatus {
    run.engine.state.tasks[&TaskId::new(id)].state
}

#[test]
fn a_plan_runs_task_by_task_each_checked_and_judged() {
    let mut run = Driven::start(&config(""), Some(TWO_TASKS), &[]);
    let a = run.next_agent();
    assert_eq!((a.role.as_str(), a.task.as_str()), ("worker", "a"));
    assert_eq!(status(&run, "b"), TaskStatus::Pending, "b waits for a");
    run.work(&a);
    assert!(
        run.find(|e| matches!(e, Event::GateChecked { gate, .. } if gate == "tdd"))
            .is_some(),
        "a's gates ran\n{}",
        run.dump()
    );
    run.pass_judge();
    assert_eq!(status(&run, "a"), TaskStatus::Done);
    let b = run.next_agent();
    assert_eq!(b.task, "b");
    run.work(&b);
    run.pass_judge();
    assert_eq!(run.outcome(), Some(Outcome::Succeeded), "{}", run.dump());
    let names = run.names();
    let order = [
        "task_started",
        "task_agent_started",
        "task_exited",
        "gate_checked",
        "judge_started",
        "judge_agent_started",
        "judge_verdict",
        "task_done",
    ];
    let mut at = 0;
    for name in order {
        at += names[at..]
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no {name} after {at}: {names:?}"));
    }
    assert!(run.dir.report_md().exists(), "the report is written");
    // The pane-died hook backs the exit records up.
    assert!(
        run.tmux
            .hooks()
            .iter()
            .any(|(_, hook, _)| hook == "pane-died")
    );
}

#[test]
fn a_hostile_request_goes_into_the_prompt_file_and_never_to_tmux() {
    let request =
        "it's \"quoted\" $(touch pwned) `touch pwned` ; rm -rf / \n\u{1b}[31m\n".repeat(2_000);
    let (project, dir, tmux) =
        super::fake_run::new_run(&request, &config(""), Some(TWO_TASKS), &[]);
    let mut run = Driven::open(project, dir, tmux);
    run.engine.begin().unwrap();
    run.settle();
    let a = run.next_agent();
    let prompt = std::fs::read_to_string(a.dir.join("prompt.md")).unwrap();
    assert!(
        prompt.contains(&request),
        "the request reaches the agent byte for byte"
    );
    let mut launches = 0;
    for call in run.tmux.calls() {
        let (Call::NewWindow(_, spec) | Call::SplitWindow(_, spec) | Call::RespawnPane(_, spec)) =
            call
        else {
            continue;
        };
        launches += 1;
        // Only the launcher, by its path: no text of the request, quoted or not.
        assert_eq!(spec.argv[0], "/bin/sh");
        assert_eq!(spec.argv.len(), 2);
        assert!(spec.argv[1].ends_with("/launch.sh"));
        assert!(spec.env.is_empty());
    }
    assert!(launches > 0, "no launch reached tmux: nothing was checked");
    let launcher = std::fs::read_to_string(a.dir.join("launch.sh")).unwrap();
    assert!(!launcher.contains("pwned"));
}

#[test]
fn strict_tdd_refuses_an_implementation_written_before_its_tests() {
    let mut run = Driven::start(&config("gates:\n  tdd: strict\n"), Some(TWO_TASKS), &[]);
    let a = run.next_agent();
    run.write(&[("a.txt", "implementation first")]);
    // First writes are compared by the millisecond: the test comes in a later one.
    let written = crate::state::now_ms();
    while crate::state::now_ms() <= written {
        std::hint::spin_loop();
    }
    run.write(&[("tests/a_test.txt", "then the test")]);
    run.exit(&a, 0, "done\n");
    let requeued = run.find(|e| matches!(e, Event::TaskRequeued { .. }));
    let Some(Event::TaskRequeued { reasons, .. }) = requeued else {
        panic!("not requeued\n{}", run.dump())
    };
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("implementation written before any test")),
        "{reasons:?}"
    );
}

#[test]
fn the_planners_plan_is_accepted_and_its_tasks_dispatched() {
    let mut run = Driven::start(&config(""), None, &[]);
    let planner = run.next_agent();
    assert_eq!(planner.role, "planner");
    run.write(&[("specs/a.md", "# what a does\n")]);
    let plan = r#"{"specs": [{"file": "specs/a.md", "description": "a"}],
        "tasks": [{"id": "a", "agent": "mine", "task": "write a",
                   "files": ["tests/a_test.txt", "a.txt"]}]}"#;
    run.exit(&planner, 0, plan);
    assert!(
        run.find(|e| matches!(e, Event::PlanAccepted { .. }))
            .is_some()
    );
    let a = run.next_agent();
    assert_eq!(a.task, "a");
    let prompt = std::fs::read_to_string(a.dir.join("prompt.md")).unwrap();
    assert!(
        prompt.contains("specs/a.md"),
        "the worker is told the specs"
    );
    run.work(&a);
    run.pass_judge();
    assert_eq!(run.outcome(), Some(Outcome::Succeeded), "{}", run.dump());
    assert!(
        run.find(|e| matches!(e, Event::Violation { .. })).is_none(),
        "{}",
        run.dump()
    );
}

#[test]
fn a_refused_plan_goes_back_to_the_planner_with_its_problems() {
    let mut run = Driven::start(&config(""), None, &[]);
    let planner = run.next_agent();
    run.exit(&planner, 0, "no plan here");
    let again = run.next_agent();
    assert_eq!(again.role, "planner");
    let prompt = std::fs::read_to_string(again.dir.join("prompt.md")).unwrap();
    assert!(prompt.contains("no plan found"), "{prompt}");
    assert!(again.dir.ends_with("planner/2"), "{}", again.dir.display());
}

#[test]
fn a_task_the_judge_refuses_goes_back_to_its_agent_with_the_reasons() {
    let mut run = Driven::start(&config(""), Some(TWO_TASKS), &[]);
    let a = run.next_agent();
    run.work(&a);
    let judge = run.next_agent();
    run.exit(
        &judge,
        0,
        r#"{"verdict": "fail", "tasks": [{"id": "a", "verdict": "fail", "reason": "no error handling"}]}"#,
    );
    let again = run.next_agent();
    assert_eq!((again.task.as_str(), again.role.as_str()), ("a", "worker"));
    assert!(
        again.dir.ends_with("2"),
        "attempt 2: {}",
        again.dir.display()
    );
    let prompt = std::fs::read_to_string(again.dir.join("prompt.md")).unwrap();
    assert!(prompt.contains("no error handling"), "{prompt}");
    // Refused again: out of retries, a fails and b is blocked.
    run.work(&again);
    let judge = run.next_agent();
    run.exit(
        &judge,
        0,
        r#"{"verdict": "fail", "tasks": [{"id": "a", "verdict": "fail", "reason": "still not"}]}"#,
    );
    assert_eq!(status(&run, "a"), TaskStatus::Failed);
    assert_eq!(status(&run, "b"), TaskStatus::Blocked);
    assert_eq!(run.outcome(), Some(Outcome::Failed));
}

#[test]
fn a_failing_agent_fails_its_task_and_blocks_its_dependents() {
    let mut run = Driven::start(&config(""), Some(TWO_TASKS), &[]);
    let a = run.next_agent();
    run.exit(&a, 3, "boom\n");
    let failed = run.find(|e| matches!(e, Event::TaskFailed { .. }));
    assert!(
        matches!(&failed, Some(Event::TaskFailed { reason, .. }) if reason.contains("status 3")),
        "{failed:?}"
    );
    assert_eq!(status(&run, "b"), TaskStatus::Blocked);
    assert_eq!(run.outcome(), Some(Outcome::Failed));
}

#[test]
fn a_stray_write_is_a_violation_of_the_running_task_and_reverted() {
    let mut run = Driven::start(
        &config("ownership:\n  on_violation: revert\n"),
        Some(TWO_TASKS),
        &[("README.md", "the original\n")],
    );
    let a = run.next_agent();
    run.write(&[("README.md", "defaced\n")]);
    // Journaled and reverted by the time `handle` returned.
    let violation = run.find(|e| matches!(e, Event::Violation { .. }));
    let Some(Event::Violation { suspects, .. }) = violation else {
        panic!("no violation\n{}", run.dump())
    };
    assert_eq!(suspects, vec![TaskId::new("a")]);
    assert!(
        run.find(|e| matches!(e, Event::ViolationSettled { action, .. } if action == "reverted"))
            .is_some()
    );
    assert_eq!(
        std::fs::read_to_string(run.root().join("README.md")).unwrap(),
        "the original\n"
    );
    // Reverted, it does not hold the task up.
    run.work(&a);
    run.pass_judge();
    assert_eq!(status(&run, "a"), TaskStatus::Done, "{}", run.dump());
}

/// A revert that cannot land (a directory now stands where the file was) says where the
/// content to put back is, and how: the start's content is written out for that.
#[test]
fn a_revert_that_fails_says_where_the_content_is_and_how_to_put_it_back() {
    let mut run = Driven::start(
        &config("ownership:\n  on_violation: revert\n"),
        Some(TWO_TASKS),
        &[("notes", "the original notes\n")],
    );
    let _a = run.next_agent();
    let root = run.root();
    std::fs::create_dir(root.join("notes.d")).unwrap();
    std::fs::write(root.join("notes.d/inside"), "x").unwrap();
    std::fs::remove_file(root.join("notes")).unwrap();
    std::fs::rename(root.join("notes.d"), root.join("notes")).unwrap();
    // After the plan's acceptance, as the task's agent would have made it: a change in that
    // very millisecond would be the planner's.
    let at = run.moment();
    std::fs::File::open(root.join("notes"))
        .and_then(|d| d.set_modified(at))
        .unwrap();
    run.handle(Input::Fs(FsChange {
        path: "notes".into(),
        kind: ChangeKind::Removed,
        at,
    }));
    let settled = run.find(|e| {
        matches!(e, Event::ViolationSettled { action, .. } if action.starts_with("revert failed"))
    });
    let Some(Event::ViolationSettled { n, action, .. }) = settled else {
        panic!("no failed revert\n{}", run.dump())
    };
    let restore = format!("restore/{n}/notes");
    assert!(action.contains(&restore), "{action}");
    assert!(action.contains("cp -P "), "{action}");
    let copy = run.dir.path().join(&restore);
    assert_eq!(
        std::fs::read_to_string(copy).unwrap(),
        "the original notes\n"
    );
}

/// A violation whose journal line was lost (the disk filled between saving its content and
/// journaling it, under an engine that saved first) left `violations/7/` behind: the next
/// number is after it, never that one again.
#[test]
fn violation_numbers_are_never_reused_even_without_their_journal_line() {
    let mut run = Driven::start(
        &config("ownership:\n  on_violation: revert\n"),
        Some(TWO_TASKS),
        &[("README.md", "the original\n")],
    );
    std::fs::create_dir_all(run.dir.violation_dir(7).join("x")).unwrap();
    let _a = run.next_agent();
    run.write(&[("README.md", "defaced by a\n")]);
    let violation = run.find(|e| matches!(e, Event::Violation { .. }));
    let Some(Event::Violation { n, saved, .. }) = violation else {
        panic!("no violation\n{}", run.dump())
    };
    assert_eq!(n, 8);
    assert!(saved.unwrap().contains("/violations/8/"));
}

#[test]
fn a_violation_under_stop_stops_the_running_suspect() {
    let mut run = Driven::start(
        &config("ownership:\n  on_violation: stop\n"),
        Some(TWO_TASKS),
        &[("README.md", "the original\n")],
    );
    let _a = run.next_agent();
    run.write(&[("README.md", "defaced\n")]);
    assert_eq!(status(&run, "a"), TaskStatus::Failed, "{}", run.dump());
    assert!(!run.engine.agents.has_task(&TaskId::new("a")));
    assert_eq!(run.outcome(), Some(Outcome::Failed), "{}", run.dump());
}

#[test]
fn ctrl_c_interrupts_every_agent_and_the_run() {
    let plan = r#"{"tasks": [
      {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
      {"id": "c", "agent": "mine", "task": "write c", "files": ["tests/c_test.txt", "c.txt"]}
    ]}"#;
    let mut run = Driven::start(&config(""), Some(plan), &[]);
    run.stop(Stop::Interrupt);
    assert_eq!(run.outcome(), Some(Outcome::Interrupted));
    for id in ["a", "c"] {
        assert!(
            run.find(|e| matches!(e, Event::TaskInterrupted { task, .. } if task.as_str() == id))
                .is_some(),
            "{id}\n{}",
            run.dump()
        );
    }
    assert!(run.engine.agents.is_empty());
}

/// Tmux answers a launch off the loop: an exit record that comes first is handled first,
/// and the late answer neither journals a pane for an ended attempt nor stops anything.
#[test]
fn an_exit_before_tmux_answered_the_launch_is_handled_first() {
    let (project, dir, tmux) =
        super::fake_run::new_run("build it", &config(""), Some(TWO_TASKS), &[]);
    let mut run = Driven::open(project, dir, tmux);
    run.engine.begin().unwrap();
    // The launch step asks for a's pane; the answer waits as the next input.
    run.handle(Input::LaunchStep);
    let answer = run.engine.launcher.try_answer().expect("tmux's answer");
    let a = run.next_agent();
    run.write(&[("tests/a_test.txt", "test"), ("a.txt", "done")]);
    super::fake_run::write_exit(&a, 0, "done\n", (1, 2));
    run.handle(Input::RunFile(a.dir.join("exit.json")));
    assert!(
        run.find(|e| matches!(e, Event::TaskExited { .. }))
            .is_some()
    );
    run.handle(Input::Launched(answer));
    assert!(
        run.find(|e| matches!(e, Event::TaskAgentStarted { .. }))
            .is_none(),
        "no pane journaled for an ended attempt\n{}",
        run.dump()
    );
    run.settle();
    run.pass_judge();
    assert_eq!(status(&run, "a"), TaskStatus::Done, "{}", run.dump());
}

#[test]
fn a_task_tmux_cannot_launch_fails_and_the_rest_carries_on() {
    let plan = r#"{"tasks": [
      {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
      {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"], "depends_on": ["a"]},
      {"id": "c", "agent": "mine", "task": "write c", "files": ["tests/c_test.txt", "c.txt"]}
    ]}"#;
    let (project, dir, tmux) = super::fake_run::new_run("build it", &config(""), Some(plan), &[]);
    tmux.fail_next(
        "new_window",
        TmuxError::NoSpace {
            target: "orch-fake".into(),
        },
    );
    let mut run = Driven::open(project, dir, tmux);
    run.engine.begin().unwrap();
    run.settle();
    let failed = run.find(|e| matches!(e, Event::TaskFailed { .. }));
    assert!(
        matches!(&failed, Some(Event::TaskFailed { task, reason, .. })
            if task.as_str() == "a" && reason.contains("could not be launched")),
        "{failed:?}"
    );
    assert_eq!(status(&run, "b"), TaskStatus::Blocked);
    let c = run.next_agent();
    assert_eq!(c.task, "c");
    run.work(&c);
    run.pass_judge();
    assert_eq!(run.outcome(), Some(Outcome::Failed));
}

#[test]
fn a_hangup_detaches_and_a_resumed_engine_takes_the_exit_it_missed() {
    let mut run = Driven::start(&config(""), Some(TWO_TASKS), &[]);
    let a = run.next_agent();
    run.stop(Stop::Hangup);
    assert!(run.engine.detached);
    let killed = run.tmux.calls().into_iter().any(|c| {
        matches!(c, Call::KillPane(ref p) if *p == a.pane.pane_id)
            || matches!(c, Call::KillSession(_) | Call::KillServer)
    });
    assert!(!killed, "nothing is torn down on a hangup");
    assert!(
        run.find(|e| matches!(e, Event::TaskInterrupted { .. }))
            .is_none(),
        "the agent is not counted as interrupted"
    );
    // The agent finishes while no engine watches.
    std::fs::create_dir_all(run.root().join("tests")).unwrap();
    std::fs::write(run.root().join("tests/a_test.txt"), "test").unwrap();
    std::fs::write(run.root().join("a.txt"), "done").unwrap();
    super::fake_run::write_exit(&a, 0, "done\n", (1_000, 2_000));
    let mut run = run.resume();
    // Adopted, and its record (reported by watching the directory, in a run) handed in.
    run.handle(Input::RunFile(a.dir.join("exit.json")));
    run.settle();
    let exited = run.find(|e| matches!(e, Event::TaskExited { .. }));
    assert!(
        matches!(
            exited,
            Some(Event::TaskExited {
                ended_at_ms: Some(2_000),
                ..
            })
        ),
        "{exited:?}"
    );
    assert!(run.find(|e| matches!(e, Event::RunResumed {})).is_some());
    run.pass_judge();
    assert_eq!(status(&run, "a"), TaskStatus::Done, "{}", run.dump());
}

/// Fairness is the chooser's: after FAIR_AFTER agents' events in a row, the rest (here gate
/// results) get a turn before the next agents' event, though those are still waiting.
#[test]
fn the_chooser_gives_the_rest_a_turn_after_a_streak_of_agents_events() {
    let mut run = Driven::start(&config(""), Some(TWO_TASKS), &[]);
    let (fs_tx, fs) = tokio::sync::mpsc::unbounded_channel();
    let (_run_files_tx, run_files) = tokio::sync::mpsc::unbounded_channel();
    let (gates_tx, gates) = tokio::sync::mpsc::unbounded_channel();
    let (_stops_tx, stops) = tokio::sync::mpsc::unbounded_channel();
    let change = FsChange {
        path: "x".into(),
        kind: ChangeKind::Modified,
        at: std::time::SystemTime::now(),
    };
    for _ in 0..FAIR_AFTER + 10 {
        fs_tx.send(change.clone()).unwrap();
    }
    gates_tx
        .send(super::core::GateDone {
            task: None,
            attempt: 0,
            outcomes: vec![],
        })
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let chosen: Vec<bool> = runtime.block_on(async {
        let mut chooser = Chooser::new(Inputs {
            fs,
            task_fs: tokio::sync::mpsc::unbounded_channel().1,
            run_files,
            gates,
            stops,
        });
        // The clock's first ticks are due at once: taken out of the way first.
        let mut out = Vec::new();
        while out.len() < FAIR_AFTER as usize + 2 {
            match chooser.next(&mut run.engine).await {
                Input::Fs(_) => out.push(false),
                Input::GatesDone(_) => out.push(true),
                _ => {}
            }
        }
        out
    });
    let gates_at = chosen.iter().position(|&g| g).expect("the gates' turn");
    assert_eq!(gates_at, FAIR_AFTER as usize, "{chosen:?}");
}

/// Refused twice, a task gets the oracle's advice: the oracle is an agent of the registry like
/// any other, and its exit sends the task back with the reasons and the advice.
#[test]
fn after_two_refusals_the_oracle_advises_the_next_attempt() {
    let config = "agents:\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\n  \
                  judge:\n    kind: command\n    command: [\"./judge.sh\"]\n\
                  roles:\n  planner: judge\n  judge: judge\n  oracle: judge\n  workers: [mine]\n\
                  limits:\n  retries: 2\n  task_timeout: 60s\n";
    let mut run = Driven::start(config, Some(TWO_TASKS), &[]);
    let refuse =
        r#"{"verdict": "fail", "tasks": [{"id": "a", "verdict": "fail", "reason": "wrong"}]}"#;
    for _ in 0..2 {
        let a = run.next_agent();
        assert_eq!(a.task, "a");
        run.work(&a);
        let judge = run.next_agent();
        run.exit(&judge, 0, refuse);
    }
    let oracle = run.next_agent();
    assert_eq!(
        (oracle.role.as_str(), oracle.task.as_str()),
        ("oracle", "a")
    );
    assert!(run.engine.agents.judging(), "the run waits for the oracle");
    run.exit(&oracle, 0, "read the spec again\n");
    let again = run.next_agent();
    assert_eq!((again.task.as_str(), again.role.as_str()), ("a", "worker"));
    assert!(again.dir.ends_with("3"), "{}", again.dir.display());
    let prompt = std::fs::read_to_string(again.dir.join("prompt.md")).unwrap();
    assert!(prompt.contains("read the spec again"), "{prompt}");
    assert!(prompt.contains("the judge: wrong"), "{prompt}");
}
