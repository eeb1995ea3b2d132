//! A whole run replayed from its journal: the state and the status view it gives, and that
//! the journal on disk and the events in memory give the same.

use serde_json::json;

use super::*;
use crate::plan::{Plan, TaskId};

fn id(s: &str) -> TaskId {
    TaskId::new(s)
}

fn plan() -> Plan {
    serde_json::from_value(json!({
        "specs": [{"file": "specs/api.md"}],
        "tasks": [
            {"id": 2, "agent": "claude", "task": "write the api", "files": ["src/api.rs"]},
            {"id": 1, "agent": "codex", "task": "write the db", "files": ["src/db.rs"]},
            {"id": "ui", "agent": "gemini", "task": "ui", "files": ["ui.ts"], "depends_on": [2]},
            {"id": "docs", "agent": "claude", "task": "docs", "files": ["README.md"],
             "depends_on": ["ui"]},
            {"id": "cli", "agent": "codex", "task": "cli", "files": ["src/cli.rs"],
             "depends_on": [1]}
        ]
    }))
    .unwrap()
}

/// A run: planning refused once then accepted; task 2 fails for good (blocking ui, then
/// docs), task 1 is retried and done, cli done; two violations; finished failed.
fn full_run() -> Vec<Event> {
    vec![
        Event::RunStarted {
            run_id: "r1".into(),
            request_bytes: 12,
        },
        Event::EngineStarted { pid: 100 },
        Event::SnapshotTaken { tree: "abc".into() },
        Event::PlanningStarted { attempt: 1 },
        Event::PlanningAgentStarted {
            attempt: 1,
            pane: "%1".into(),
            pid: 101,
        },
        Event::PlanningRefused {
            attempt: 1,
            problems: vec!["task 3 owns nothing".into()],
        },
        Event::PlanningStarted { attempt: 2 },
        Event::PlanningAgentStarted {
            attempt: 2,
            pane: "%2".into(),
            pid: 102,
        },
        Event::Violation {
            n: 1,
            path: "notes.txt".into(),
            change: "created".into(),
            suspects: vec![id("planner")],
            action: "recorded".into(),
            saved: None,
            swept: false,
            worktree: None,
        },
        Event::PlanAccepted { plan: plan() },
        Event::TaskStarted {
            task: id("2"),
            attempt: 1,
            continues: None,
        },
        Event::TaskAgentStarted {
            task: id("2"),
            attempt: 1,
            pane: "%3".into(),
            window: "@3".into(),
            pid: 103,
        },
        Event::TaskStarted {
            task: id("1"),
            attempt: 1,
            continues: None,
        },
        Event::TaskExited {
            task: id("1"),
            attempt: 1,
            code: Some(1),
            signal: None,
            ended_at_ms: None,
        },
        Event::TaskRequeued {
            task: id("1"),
            attempt: 1,
            reasons: vec!["tests fail".into()],
        },
        Event::Violation {
            n: 2,
            path: "src/db.rs".into(),
            change: "modified".into(),
            suspects: vec![id("2")],
            action: "stopped".into(),
            saved: Some("violations/2/src/db.rs".into()),
            swept: false,
            worktree: None,
        },
        Event::TaskFailed {
            task: id("2"),
            attempt: 1,
            reason: "stopped: changed src/db.rs".into(),
        },
        Event::TaskBlocked {
            task: id("ui"),
            reason: "2 failed".into(),
        },
        Event::TaskBlocked {
            task: id("docs"),
            reason: "ui is blocked".into(),
        },
        Event::TaskStarted {
            task: id("1"),
            attempt: 2,
            continues: None,
        },
        Event::TaskExited {
            task: id("1"),
            attempt: 2,
            code: Some(0),
            signal: None,
            ended_at_ms: None,
        },
        Event::TaskDone {
            task: id("1"),
            attempt: 2,
        },
        Event::TaskStarted {
            task: id("cli"),
            attempt: 1,
            continues: None,
        },
        Event::TaskExited {
            task: id("cli"),
            attempt: 1,
            code: None,
            signal: Some(9),
            ended_at_ms: None,
        },
        Event::TaskDone {
            task: id("cli"),
            attempt: 1,
        },
        Event::RunFinished {
            outcome: Outcome::Failed,
            reason: Some("task(s) not done: 2, ui, docs".into()),
        },
        Event::EngineStopped {
            reason: "run finished".into(),
        },
    ]
}

/// Journals `events` at t = 1000, 1001, ... and reads them back.
fn journaled(events: Vec<Event>) -> (tempfile::TempDir, Vec<Record>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    for (i, event) in events.into_iter().enumerate() {
        journal.append_at(1000 + i as u64, event).unwrap();
    }
    let replay = read_journal(&path).unwrap();
    assert!(replay.warnings.is_empty(), "{:?}", replay.warnings);
    (dir, replay.records)
}

#[test]
fn a_full_run_replays_to_the_expected_state() {
    let (_dir, records) = journaled(full_run());
    let state = RunState::replay(&records);

    assert_eq!(state.run_id, "r1");
    assert_eq!(state.phase, Phase::Finished(Outcome::Failed));
    assert_eq!(state.started_at_ms, Some(1000));
    assert_eq!(state.finished_at_ms, Some(1025));
    assert_eq!(state.engine_pid, Some(100));
    assert_eq!(state.engine_stopped.as_deref(), Some("run finished"));
    assert_eq!(state.snapshot_tree.as_deref(), Some("abc"));
    assert_eq!(state.planning_attempt(), 2);
    assert_eq!(state.planning.problems, vec!["task 3 owns nothing"]);
    assert!(state.plan_accepted_at_ms.is_some_and(|t| t > 1000));
    assert_eq!(
        state.planning.pane, None,
        "cleared once the plan is accepted"
    );
    assert_eq!(state.plan(), Some(&plan()));
    assert!(state.anomalies.is_empty(), "{:?}", state.anomalies);

    let order: Vec<&str> = state.tasks_in_order().map(|t| t.id.as_str()).collect();
    assert_eq!(order, ["2", "1", "ui", "docs", "cli"]);

    let t2 = &state.tasks[&id("2")];
    assert_eq!(t2.state, TaskStatus::Failed);
    assert_eq!(t2.pane.as_deref(), Some("%3"));
    assert_eq!(t2.window.as_deref(), Some("@3"));
    assert_eq!(t2.pid, Some(103));
    assert_eq!(t2.started_at_ms, Some(1010));
    assert_eq!(t2.ended_at_ms, Some(1016));
    assert_eq!(t2.reason.as_deref(), Some("stopped: changed src/db.rs"));

    let t1 = &state.tasks[&id("1")];
    assert_eq!(t1.state, TaskStatus::Done);
    assert_eq!(t1.attempts, 2);
    assert_eq!(t1.exit_code, Some(0));
    assert_eq!((t1.started_at_ms, t1.ended_at_ms), (Some(1019), Some(1020)));
    assert_eq!(t1.reason, None, "the retry's reason belongs to attempt 1");
    assert_eq!(t1.task_text, "write the db");

    let cli = &state.tasks[&id("cli")];
    assert_eq!((cli.exit_code, cli.signal), (None, Some(9)));
    assert_eq!(state.tasks[&id("ui")].state, TaskStatus::Blocked);
    assert_eq!(
        state.tasks[&id("docs")].reason.as_deref(),
        Some("ui is blocked")
    );

    assert_eq!(state.violations.len(), 2);
    let v = &state.violations[1];
    assert_eq!((v.n, v.at_ms, v.action.as_str()), (2, 1015, "stopped"));
    assert_eq!(v.suspects, vec![id("2")]);

    assert!(state.is_settled());
    assert!(state.is_finished());
    assert_eq!(state.running().count(), 0);
}

#[test]
fn the_state_in_between() {
    let events = full_run();
    // Up to and including the requeue of task 1.
    let (_dir, records) = journaled(events[..15].to_vec());
    let state = RunState::replay(&records);
    assert_eq!(state.phase, Phase::Running);
    let t1 = &state.tasks[&id("1")];
    assert_eq!(t1.state, TaskStatus::Pending);
    assert_eq!(t1.feedback, vec!["tests fail"]);
    assert_eq!(t1.reason.as_deref(), Some("tests fail"));
    let running: Vec<&str> = state.running().map(|t| t.id.as_str()).collect();
    assert_eq!(running, ["2"]);
    assert!(!state.is_settled());

    // During planning: the planner's pane, nothing settled.
    let state = RunState::replay(&records[..8]);
    assert_eq!(state.phase, Phase::Planning);
    assert_eq!(state.planning.pane.as_deref(), Some("%2"));
    assert_eq!(state.planning.pid, Some(102));
    assert!(!state.is_settled());
    assert_eq!(RunState::replay(&records[..1]).phase, Phase::Starting);
}

#[test]
fn the_status_json_has_the_documented_shape() {
    let (_dir, records) = journaled(full_run());
    let status = RunState::replay(&records).status_json(false);
    assert_eq!(status["run_id"], "r1");
    assert_eq!(status["phase"], "failed");
    assert_eq!(status["engine_alive"], false);
    assert_eq!(status["resumable"], false, "a failed run is not resumed");
    assert_eq!(status["reason"], "task(s) not done: 2, ui, docs");
    assert_eq!(status["planning"]["attempt"], 2);

    let tasks = status["tasks"].as_array().unwrap();
    let ids: Vec<&serde_json::Value> = tasks.iter().map(|t| &t["id"]).collect();
    assert_eq!(
        ids,
        [
            &json!(2),
            &json!(1),
            &json!("ui"),
            &json!("docs"),
            &json!("cli")
        ]
    );
    assert_eq!(
        tasks[0],
        json!({
            "id": 2, "agent": "claude", "state": "failed", "files": ["src/api.rs"],
            "depends_on": [], "attempts": 1, "interruptions": 0, "exit_code": null,
            "signal": null,
            "reason": "stopped: changed src/db.rs", "started_at_ms": 1010,
            "ended_at_ms": 1016, "pane": "%3", "window": "@3",
            "attempt_history": [{
                "attempt": 1, "outcome": "failed", "reasons": ["stopped: changed src/db.rs"],
                "started_at_ms": 1010, "ended_at_ms": 1016, "exit_code": null, "signal": null
            }],
            "last_output": null, "usage": null
        })
    );
    let states: Vec<&str> = tasks.iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["failed", "done", "blocked", "blocked", "done"]);
    assert_eq!(tasks[1]["exit_code"], 0);
    assert_eq!(tasks[1]["attempts"], 2);
    let history = tasks[1]["attempt_history"].as_array().unwrap();
    assert_eq!(history[0]["outcome"], "refused");
    assert_eq!(history[0]["reasons"], json!(["tests fail"]));
    assert_eq!(history[1]["outcome"], "done");

    assert_eq!(
        status["violations"][1],
        json!({
            "n": 2, "path": "src/db.rs", "change": "modified", "suspects": [2],
            "action": "stopped", "at": 1015, "saved": "violations/2/src/db.rs",
            "swept": false
        })
    );
    assert_eq!(status["violations"][0]["suspects"], json!(["planner"]));

    let starting = RunState::default().status_json(true);
    assert_eq!(starting["phase"], "starting");
    assert_eq!(starting["tasks"], json!([]));
}

#[test]
fn replay_is_deterministic_and_equals_live_application() {
    let (_dir, records) = journaled(full_run());
    let a = RunState::replay(&records);
    let b = RunState::replay(&records);
    assert_eq!(a, b);
    assert_eq!(a.status_json(true), b.status_json(true));

    // The engine applies each record as it journals it: same state.
    let mut live = RunState::default();
    for record in &records {
        live.apply(record);
    }
    assert_eq!(live, a);
}

#[test]
fn stale_and_unknown_task_events_are_ignored_and_noted() {
    let mut events = full_run()[..12].to_vec();
    events.push(Event::TaskDone {
        task: id("nope"),
        attempt: 1,
    });
    // Attempt 2 of task 2 was never started.
    events.push(Event::TaskDone {
        task: id("2"),
        attempt: 2,
    });
    events.push(Event::PlanningAgentStarted {
        attempt: 7,
        pane: "%9".into(),
        pid: 9,
    });
    let (_dir, records) = journaled(events);
    let state = RunState::replay(&records);
    assert_eq!(state.tasks[&id("2")].state, TaskStatus::Running);
    assert_eq!(state.anomalies.len(), 3, "{:?}", state.anomalies);
    assert!(state.anomalies[0].contains("task nope is not in the plan"));
    assert!(state.anomalies[1].contains("attempt 2 is not current (attempt 1)"));
}

#[test]
fn a_resumed_run_goes_back_to_where_it_was() {
    let mut events = full_run()[..12].to_vec();
    events.push(Event::RunFinished {
        outcome: Outcome::Interrupted,
        reason: Some("interrupted (Ctrl-C)".into()),
    });
    let (_dir, records) = journaled(events.clone());
    let state = RunState::replay(&records);
    assert_eq!(state.phase.name(), "interrupted");

    events.push(Event::EngineStarted { pid: 200 });
    events.push(Event::RunResumed {});
    let (_dir, records) = journaled(events);
    let state = RunState::replay(&records);
    assert_eq!(state.phase, Phase::Running);
    assert_eq!(state.finish_reason, None);
    assert_eq!(state.engine_pid, Some(200));
    assert_eq!(state.tasks[&id("2")].state, TaskStatus::Running);
}

#[test]
fn dependents_are_transitive_and_in_plan_order() {
    let (_dir, records) = journaled(full_run()[..10].to_vec());
    let state = RunState::replay(&records);
    assert_eq!(state.dependents_of(&id("2")), vec![id("ui"), id("docs")]);
    assert_eq!(state.dependents_of(&id("1")), vec![id("cli")]);
    assert!(state.dependents_of(&id("docs")).is_empty());
    assert!(state.dependents_of(&id("unknown")).is_empty());
}

#[test]
fn a_cyclic_plan_does_not_hang_dependents_of() {
    let plan: Plan = serde_json::from_value(json!({"tasks": [
        {"id": "a", "agent": "x", "task": "t", "files": ["a"], "depends_on": ["b"]},
        {"id": "b", "agent": "x", "task": "t", "files": ["b"], "depends_on": ["a"]}
    ]}))
    .unwrap();
    let state = RunState::replay(&[Record {
        t: 1,
        event: Event::PlanAccepted { plan },
    }]);
    assert_eq!(state.dependents_of(&id("a")), vec![id("b")]);
}

#[test]
fn first_writes_survive_replay_and_the_earliest_counts() {
    let journal_dir = tempfile::tempdir().unwrap();
    let path = journal_dir.path().join("events.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    let write = |path: &str, at_ms| Event::FirstWrite {
        path: crate::paths::ProjectPath::new(path).unwrap(),
        task: id("1"),
        at_ms,
    };
    // Unsynced lines are in the file once written: a new engine reads them back.
    journal
        .append_unsynced(write("tests/a_test.sh", 10))
        .unwrap();
    journal.append_unsynced(write("a.sh", 20)).unwrap();
    journal.append_unsynced(write("a.sh", 30)).unwrap();
    drop(journal);
    let state = RunState::replay(&read_journal(&path).unwrap().records);
    assert_eq!(state.first_writes["tests/a_test.sh"], 10);
    assert_eq!(state.first_writes["a.sh"], 20);
}

#[test]
fn every_attempt_is_kept_with_how_it_ended_and_why() {
    let (_dir, records) = journaled(full_run());
    let state = RunState::replay(&records);
    let t1 = &state.tasks[&id("1")];
    let attempt = |attempt, outcome, reasons: &[&str], (start, end), code| AttemptRecord {
        attempt,
        outcome,
        reasons: reasons
            .iter()
            .map(std::string::ToString::to_string)
            .collect(),
        started_at_ms: start,
        ended_at_ms: Some(end),
        exit_code: Some(code),
        signal: None,
    };
    assert_eq!(
        t1.history,
        [
            attempt(1, AttemptOutcome::Refused, &["tests fail"], (1012, 1013), 1),
            attempt(2, AttemptOutcome::Done, &[], (1019, 1020), 0),
        ]
    );
    assert_eq!(t1.last_setback().map(|a| a.attempt), Some(1));
    assert_eq!(
        t1.ran_ms(u64::MAX),
        2,
        "the attempts' own time, not the wait between"
    );
    let t2 = &state.tasks[&id("2")];
    assert_eq!(t2.history.len(), 1);
    assert_eq!(t2.history[0].outcome, AttemptOutcome::Failed);
    assert_eq!(t2.history[0].reasons, ["stopped: changed src/db.rs"]);
    assert!(
        state.tasks[&id("ui")].history.is_empty(),
        "blocked, never started"
    );
}

/// An exit or an interruption journaled by an engine resumed long after it happened counts
/// the attempt's own time (from its exit record, or its last sign of life), not the downtime.
#[test]
fn an_exit_journaled_after_a_resume_counts_the_agents_own_time() {
    let at = |t: u64, event: Event| Record { t, event };
    let a = || id("1");
    let mut records = vec![
        at(
            0,
            Event::RunStarted {
                run_id: "r".into(),
                request_bytes: 1,
            },
        ),
        at(1, Event::PlanAccepted { plan: plan() }),
        at(
            1_000,
            Event::TaskStarted {
                task: a(),
                attempt: 1,
                continues: None,
            },
        ),
        // The engine dies at 1 500; the agent exits at 2 000; resumed at 161 000.
        at(
            1_500,
            Event::EngineStopped {
                reason: "killed".into(),
            },
        ),
        at(161_000, Event::RunResumed {}),
        at(
            161_001,
            Event::TaskExited {
                task: a(),
                attempt: 1,
                code: Some(0),
                signal: None,
                ended_at_ms: Some(2_000),
            },
        ),
    ];
    let state = RunState::replay(&records);
    assert_eq!(
        state.quiet_since_ms,
        Some(1_500),
        "the previous engine's last word"
    );
    assert_eq!(state.tasks[&a()].ended_at_ms, Some(2_000));
    // The same exit handled again by a later engine does not move it.
    records.push(at(
        170_000,
        Event::TaskExited {
            task: a(),
            attempt: 1,
            code: Some(0),
            signal: None,
            ended_at_ms: None,
        },
    ));
    records.push(at(
        170_001,
        Event::TaskRequeued {
            task: a(),
            attempt: 1,
            reasons: vec!["the judge: no tests".into()],
        },
    ));
    records.push(at(
        200_000,
        Event::TaskStarted {
            task: a(),
            attempt: 2,
            continues: None,
        },
    ));
    records.push(at(
        400_000,
        Event::TaskInterrupted {
            task: a(),
            attempt: 2,
            reason: "the tmux server died".into(),
            session_id: None,
            ended_at_ms: Some(201_500),
        },
    ));
    let task = RunState::replay(&records).tasks[&a()].clone();
    assert_eq!(task.history[0].ran_ms(u64::MAX), 1_000);
    assert_eq!(task.history[1].ran_ms(u64::MAX), 1_500);
    assert_eq!(task.history[1].outcome, AttemptOutcome::Interrupted);
    assert_eq!(task.ran_ms(u64::MAX), 2_500);
}

#[test]
fn warnings_replay_in_order_and_a_journal_from_before_them_has_none() {
    // A journal written before warnings were journaled: the same lines, read as they are.
    let old = "{\"t\":1,\"event\":\"run_started\",\"run_id\":\"r\",\"request_bytes\":3}\n\
               {\"t\":2,\"event\":\"engine_started\",\"pid\":7}\n\
               {\"t\":3,\"event\":\"run_finished\",\"outcome\":\"succeeded\",\"reason\":null}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, old).unwrap();
    let replay = read_journal(&path).unwrap();
    assert!(replay.warnings.is_empty(), "{:?}", replay.warnings);
    let state = RunState::replay(&replay.records);
    assert!(state.warnings.is_empty());
    assert_eq!(state.status_json(false)["warnings"], json!([]));

    // Warnings journaled, one of a kind a newer orch added: kept in order, with their time.
    let mut lines = old.to_string();
    lines.push_str(
        "{\"t\":4,\"event\":\"warning\",\"kind\":\"unrecorded\",\"message\":\"could not write the report\"}\n\
         {\"t\":5,\"event\":\"warning\",\"kind\":\"weather\",\"message\":\"a storm\"}\n",
    );
    std::fs::write(&path, lines).unwrap();
    let replay = read_journal(&path).unwrap();
    assert!(replay.warnings.is_empty(), "{:?}", replay.warnings);
    let state = RunState::replay(&replay.records);
    assert_eq!(
        state.phase,
        Phase::Finished(Outcome::Succeeded),
        "warnings change no phase"
    );
    assert_eq!(
        state.status_json(false)["warnings"],
        json!([
            {"kind": "unrecorded", "message": "could not write the report", "at_ms": 4},
            {"kind": "other", "message": "a storm", "at_ms": 5}
        ])
    );
}

/// A journal and a plan written by orch before paths were typed (the demo run with the
/// `violate` fault, plus a swept violation of a name no plan may hold): each line and the plan
/// read back and written again byte for byte, and the run replays.
#[test]
fn an_earlier_journal_and_plan_reserialize_byte_for_byte() {
    let journal = include_str!("testdata/events.jsonl");
    let mut records = Vec::new();
    for line in journal.lines() {
        let record: Record = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&record).unwrap(), line);
        records.push(record);
    }
    let plan_file = include_str!("testdata/plan.json");
    let plan: Plan = serde_json::from_str(plan_file).unwrap();
    assert_eq!(
        serde_json::to_string_pretty(&plan).unwrap() + "\n",
        plan_file
    );

    let state = RunState::replay(&records);
    assert_eq!(state.tasks.len(), plan.tasks.len());
    for task in &plan.tasks {
        assert_eq!(state.tasks[&task.id].files, task.files);
    }
    assert!(!state.first_writes.is_empty());
    let odd = state.violations.last().unwrap();
    assert_eq!(odd.path, "odd\\name\nwith a newline \u{1b}.txt");
    // The status view's JSON names the same paths as the plan.
    let status = serde_json::to_value(state.status(false)).unwrap();
    assert_eq!(
        status["tasks"][0]["files"],
        serde_json::to_value(&plan.tasks[0].files).unwrap()
    );
}
