//! The engine's real loop on a fake tmux (see `fake_run.rs`), for what needs the loop itself,
//! its watchers and its clock: lost panes found by reconciliation, a resumed engine, the
//! barriers behind a lagging watcher, and a loop that stays fair under floods of events. The
//! main paths are tested input by input in `driven_tests.rs`; the real-tmux end-to-end tests
//! are in `tests/`.

use super::driven_tests::{TWO_TASKS, config};
use super::event_loop::Stop;
use super::fake_run::{Agent, FakeRun};
use crate::state::{Event, Outcome};

use crate::watch::{ChangeKind, FsChange};

/// The worker writes its two files and exits 0.
fn work(run: &FakeRun, agent: &Agent) {
    assert_eq!(agent.role, "worker", "{agent:?}");
    let test = format!("tests/{}_test.txt", agent.task);
    let main = format!("{}.txt", agent.task);
    run.write(&[(&test, "test"), (&main, "done")]);
    run.exit(agent, 0, "wrote my files\n");
}

/// Why `id` failed, from the journal.
fn failure(run: &FakeRun, id: &str) -> String {
    run.wait_for("the task's failure", |run| {
        run.journal().into_iter().find_map(|r| match r.event {
            Event::TaskFailed { task, reason, .. } if task.as_str() == id => Some(reason),
            _ => None,
        })
    })
}

fn position(run: &FakeRun, what: impl Fn(&Event) -> bool) -> usize {
    run.journal()
        .iter()
        .position(|r| what(&r.event))
        .unwrap_or_else(|| panic!("not in the journal\n{}", run.dump()))
}

/// An agent that ends while no engine watches is handled by the resumed engine, which
/// journals its exit with the agent's own end time: the task's time is what it ran, not the
/// downtime until the resume.
#[test]
fn an_exit_seen_only_after_a_resume_keeps_the_agents_own_time() {
    let mut run = FakeRun::start(&config(""), TWO_TASKS, &[]);
    let a = run.next_agent();
    run.stop(Stop::Hangup);
    assert_eq!(run.outcome(), None, "detached: no outcome");
    let started = run
        .journal()
        .iter()
        .find(|r| matches!(&r.event, Event::TaskStarted { task, .. } if task.as_str() == "a"))
        .map(|r| r.t)
        .unwrap();
    run.write(&[("tests/a_test.txt", "test"), ("a.txt", "done")]);
    // Its record says it ran one second, well after this engine's and before the next's time.
    run.exit_at(&a, 0, "wrote my files\n", (started, started + 1_000));
    run.resume();
    let exited = run.wait_event(
        "a's exit",
        |e| matches!(e, Event::TaskExited { task, .. } if task.as_str() == "a"),
    );
    assert!(
        matches!(exited, Event::TaskExited { ended_at_ms: Some(t), .. } if t == started + 1_000),
        "{exited:?}"
    );
    let judge = run.next_agent();
    run.pass(&judge);
    let state = crate::state::RunState::replay(&run.journal());
    let task = &state.tasks[&crate::plan::TaskId::new("a")];
    assert_eq!(task.ran_ms(u64::MAX), 1_000, "{}", run.dump());
}

#[test]
fn a_pane_gone_without_an_exit_record_fails_its_task() {
    let mut run = FakeRun::start(&config(""), TWO_TASKS, &[]);
    let a = run.next_agent();
    // As when the user kills the window: no exit record will come.
    assert!(run.tmux.remove_pane(&a.pane.pane_id));
    // Reconciliation notices (every 2 s), then gives agent-run its grace to write one.
    assert_eq!(run.outcome(), Some(Outcome::Failed));
    let reason = failure(&run, "a");
    assert!(reason.contains("pane disappeared"), "{reason}");
    run.wait_event(
        "b blocked",
        |e| matches!(e, Event::TaskBlocked { task, .. } if task.as_str() == "b"),
    );
}

#[test]
fn a_write_outside_the_running_tasks_files_is_saved_then_reverted() {
    let mut run = FakeRun::start(
        &config("ownership:\n  on_violation: revert\n"),
        TWO_TASKS,
        &[("README.md", "the original\n")],
    );
    let a = run.next_agent();
    assert_eq!(a.task, "a");
    run.write(&[("README.md", "defaced by a\n")]);
    let violation = run.wait_event("the violation", |e| matches!(e, Event::Violation { .. }));
    let Event::Violation {
        path,
        suspects,
        action,
        saved,
        ..
    } = violation
    else {
        unreachable!()
    };
    assert_eq!(path, "README.md");
    assert_eq!(
        suspects
            .iter()
            .map(crate::plan::TaskId::as_str)
            .collect::<Vec<_>>(),
        ["a"]
    );
    // Journaled before anything is touched; how it went, after.
    assert_eq!(action, "reverting");
    let settled = run.wait_event("the revert", |e| {
        matches!(e, Event::ViolationSettled { .. })
    });
    let Event::ViolationSettled {
        action,
        saved: saved_then,
        ..
    } = settled
    else {
        unreachable!()
    };
    assert_eq!(action, "reverted");
    assert_eq!(saved_then, saved);
    let saved = run
        .root()
        .join(saved.expect("the violating content is saved"));
    assert!(saved.starts_with(run.dir.path()), "{}", saved.display());
    assert_eq!(std::fs::read_to_string(saved).unwrap(), "defaced by a\n");
    run.wait_for("README.md restored", |run| {
        (run.read("README.md").as_deref() == Some("the original\n")).then_some(())
    });
}

/// An agent that writes without pause must not starve the loop's other work (see
/// `event_loop::FAIR_AFTER`): here, the judge's launch after a task's exit, while a hundred
/// thousand changes wait behind it, the last of them a violation. Fair, the judge starts
/// first; starved, it would start only once every change was handled.
#[test]
fn a_flood_of_file_events_does_not_hold_up_a_launch() {
    let mut run = FakeRun::start(
        &config(""),
        TWO_TASKS,
        &[("README.md", "the original\n"), ("LICENSE", "MIT\n")],
    );
    let a = run.next_agent();
    let change = |path: &str| FsChange {
        path: path.into(),
        kind: ChangeKind::Modified,
        at: std::time::SystemTime::now(),
    };
    work(&run, &a);
    // Each costs the loop a look at the file (it is unchanged: no violation).
    for _ in 0..100_000 {
        run.inject(change("README.md"));
    }
    run.write(&[("LICENSE", "stolen\n")]);
    run.inject(change("LICENSE"));
    let judge = run.next_agent();
    assert_eq!(judge.role, "judge");
    run.wait_event("the violation", |e| matches!(e, Event::Violation { .. }));
    let judge_started = position(&run, |e| matches!(e, Event::JudgeAgentStarted { .. }));
    let violation = position(&run, |e| matches!(e, Event::Violation { .. }));
    assert!(
        judge_started < violation,
        "the judge waited for the flood to be handled\n{}",
        run.dump()
    );
}

/// The exit record and the project's changes come through different watchers, so an exit
/// can be handled before the agent's last writes are. The checks wait for a barrier behind
/// them: here the project's watcher lags until after the exit, and strict TDD still sees
/// that the implementation came first.
#[test]
fn checks_see_the_writes_made_before_the_exit_even_when_reported_after_it() {
    let run = implementation_then_test_then_exit_unseen();
    run.release_project_changes();
    assert_tdd_refused(&run);
}

/// The planner's specs come through the project's watcher, its exit through the run
/// directory's: on a busy machine a spec can be reported after the exit, stamped later than
/// the plan's acceptance, and it looked like a write by nobody. The plan is accepted once
/// the planner's writes have been seen, while still planning.
#[test]
fn a_plan_is_accepted_once_the_specs_its_planner_wrote_are_seen() {
    let mut run = FakeRun::start_planning(&config(""), &[]);
    let planner = run.next_agent();
    assert_eq!(planner.role, "planner", "{planner:?}");
    run.hold_project_changes();
    run.write(&[("specs/a.md", "# what a does\n")]);
    run.wait_for("the watcher to report the spec", |r| {
        r.held_changes()
            .contains(&"specs/a.md".to_string())
            .then_some(())
    });
    let plan = r#"{"specs": [{"file": "specs/a.md", "description": "a"}],
        "tasks": [{"id": "a", "agent": "mine", "task": "write a",
                   "files": ["tests/a_test.txt", "a.txt"]}]}"#;
    run.exit(&planner, 0, plan);
    // The exit handled: the plan accepted at once (as before), or waiting for its barrier.
    let barrier = run.dir.barriers().join("1");
    run.wait_for("the planner's exit to be handled", |r| {
        let accepted = r
            .journal()
            .iter()
            .any(|rec| matches!(rec.event, Event::PlanAccepted { .. }));
        (accepted || barrier.exists()).then_some(())
    });
    // The watcher reports the spec late: stamped now, after the exit.
    run.inject(FsChange {
        path: "specs/a.md".into(),
        kind: ChangeKind::Created,
        at: std::time::SystemTime::now(),
    });
    run.release_project_changes();
    let a = run.next_agent();
    assert_eq!(a.task, "a");
    work(&run, &a);
    let judge = run.next_agent();
    run.pass(&judge);
    assert_eq!(run.outcome(), Some(Outcome::Succeeded), "{}", run.dump());
    let violations: Vec<_> = run
        .journal()
        .into_iter()
        .filter(|r| matches!(r.event, Event::Violation { .. }))
        .collect();
    assert!(violations.is_empty(), "{violations:?}\n{}", run.dump());
}

/// A queue overflow loses the barriers with the rest: they are raised again, behind what the
/// watcher reports after the overflow.
#[test]
fn after_an_overflow_the_checks_wait_for_a_new_barrier() {
    let run = implementation_then_test_then_exit_unseen();
    run.inject(FsChange {
        path: String::new(),
        kind: ChangeKind::Rescan,
        at: std::time::SystemTime::now(),
    });
    let barriers = run.dir.barriers();
    run.wait_for("the barrier raised again", |_| {
        barriers.join("2").exists().then_some(())
    });
    run.release_project_changes();
    assert_tdd_refused(&run);
}

/// Task a's agent writes its implementation, then (a millisecond later) its test, and
/// exits 0, all while the project's watcher holds back what it saw.
fn implementation_then_test_then_exit_unseen() -> FakeRun {
    let mut run = FakeRun::start(&config("gates:\n  tdd: strict\n"), TWO_TASKS, &[]);
    let a = run.next_agent();
    run.hold_project_changes();
    run.write(&[("a.txt", "implementation first")]);
    run.wait_for("the watcher to report a.txt", |r| {
        r.held_changes()
            .contains(&"a.txt".to_string())
            .then_some(())
    });
    // First writes are compared by the millisecond: the test comes in a later one.
    let reported = crate::state::now_ms();
    run.wait_for("the next millisecond", |_| {
        (crate::state::now_ms() > reported).then_some(())
    });
    run.write(&[("tests/a_test.txt", "then the test")]);
    run.wait_for("the watcher to report the test", |r| {
        r.held_changes()
            .contains(&"tests/a_test.txt".to_string())
            .then_some(())
    });
    run.exit(&a, 0, "done\n");
    run.wait_event("a's exit", |e| matches!(e, Event::TaskExited { .. }));
    run
}

fn assert_tdd_refused(run: &FakeRun) {
    let requeued = run.wait_event("a requeued", |e| matches!(e, Event::TaskRequeued { .. }));
    let Event::TaskRequeued { reasons, .. } = requeued else {
        unreachable!()
    };
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("implementation written before any test")),
        "{reasons:?}\n{}",
        run.dump()
    );
}

/// An interrupted Claude Code attempt is continued on resume; when the continuation fails
/// (the CLI no longer knows the session), the attempt counts as interrupted and the next one
/// starts a new session; when that fails too, the task fails.
#[test]
fn a_failed_continuation_starts_over_once_in_a_new_session() {
    let claude_state = tempfile::tempdir().unwrap();
    let config = format!(
        "agents:\n  cc:\n    kind: claude\n    env:\n      CLAUDE_CONFIG_DIR: {}\n  \
         judge:\n    kind: command\n    command: [\"./judge.sh\"]\n\
         roles:\n  planner: judge\n  judge: judge\n  workers: [cc]\n\
         limits:\n  task_timeout: 60s\n",
        claude_state.path().display()
    );
    let plan = r#"{"tasks": [
      {"id": "a", "agent": "cc", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]}
    ]}"#;
    let session = "5b2b37de-afde-46eb-847c-2b6f10c250ea";
    let mut run = FakeRun::start(&config, plan, &[]);
    let first = run.next_agent();
    // Its CLI named its session, then Ctrl-C.
    let init = format!(r#"{{"type":"system","subtype":"init","session_id":"{session}"}}"#);
    std::fs::write(first.dir.join("stdout.log"), init + "\n").unwrap();
    run.stop(Stop::Interrupt);
    assert_eq!(run.outcome(), Some(Outcome::Interrupted));

    // Claude Code has the session on record: the resumed run continues it.
    let records = claude_state.path().join("projects/-p");
    std::fs::create_dir_all(&records).unwrap();
    std::fs::write(records.join(format!("{session}.jsonl")), "{}\n").unwrap();
    run.resume();
    let second = run.next_agent();
    let argv = |agent: &Agent| {
        crate::agent_process::launcher::LaunchSpec::read(
            &agent.dir.join(crate::agent_process::launcher::SPEC_FILE),
        )
        .unwrap()
        .argv
    };
    assert!(
        argv(&second).windows(2).any(|w| w == ["--resume", session]),
        "{:?}",
        argv(&second)
    );
    run.exit(&second, 1, "No conversation found with session ID\n");

    // It failed: counted as interrupted, and the next attempt starts a new session.
    let third = run.next_agent();
    assert_eq!(third.task, "a");
    assert!(
        !argv(&third).contains(&"--resume".to_string()),
        "{:?}",
        argv(&third)
    );
    let interrupted = run.wait_event("the continuation given up", |e| {
        matches!(e, Event::TaskInterrupted { attempt: 2, .. })
    });
    let Event::TaskInterrupted { reason, .. } = interrupted else {
        unreachable!()
    };
    assert!(
        reason.contains("the next attempt starts a new session"),
        "{reason}"
    );

    // A new session that fails is the task's failure.
    run.exit(&third, 1, "boom\n");
    assert!(failure(&run, "a").contains("exited with status 1"));
    assert_eq!(run.outcome(), Some(Outcome::Failed));
}

/// Run files come before project changes in the loop, so a chatty agent's log (a flood of
/// run-file events) must not hold up a violation: the fair turn serves project changes too.
#[test]
fn a_flood_of_run_file_events_does_not_hold_up_a_violation() {
    let mut run = FakeRun::start(&config(""), TWO_TASKS, &[("README.md", "the original\n")]);
    let a = run.next_agent();
    let log = a.dir.join("output.log");
    for _ in 0..300_000 {
        run.inject_run_file(log.clone());
    }
    // Both reach the engine behind the flood: the change through the project's channel, the
    // exit record through the run files' (after the injected ones).
    run.write(&[("README.md", "defaced\n")]);
    work(&run, &a);
    run.wait_event("a's exit", |e| matches!(e, Event::TaskExited { .. }));
    run.wait_event("the violation", |e| matches!(e, Event::Violation { .. }));
    let violation = position(&run, |e| matches!(e, Event::Violation { .. }));
    let exited = position(&run, |e| matches!(e, Event::TaskExited { .. }));
    assert!(
        violation < exited,
        "the violation waited for the run files' flood\n{}",
        run.dump()
    );
}
