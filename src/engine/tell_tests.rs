//! `orch tell TASK` in the engine's state: what telling a task does by its state, a reopened
//! task replayed, and an attempt stopped by the user not counted against the retries.

use super::retry::counted;
use super::tell::{Telling, telling};
use crate::plan::{Plan, TaskId};
use crate::state::{Event, Record, RunState, TaskStatus};

/// a done; b (after a) running; c done; d after c, not started; e failed.
fn run() -> Vec<Event> {
    let plan: Plan = serde_json::from_str(
        r#"{"specs":[{"file":"s.md"}],"tasks":[
          {"id":"a","agent":"x","task":"t","files":["a"]},
          {"id":"b","agent":"x","task":"t","files":["b"],"depends_on":["a"]},
          {"id":"c","agent":"x","task":"t","files":["c"]},
          {"id":"d","agent":"x","task":"t","files":["d"],"depends_on":["c","e"]},
          {"id":"e","agent":"x","task":"t","files":["e"]}]}"#,
    )
    .unwrap();
    let mut events = vec![Event::PlanAccepted { plan }];
    for id in ["a", "b", "c", "e"] {
        events.push(Event::TaskStarted {
            task: TaskId::new(id),
            attempt: 1,
            continues: None,
        });
    }
    for id in ["a", "c"] {
        events.push(Event::TaskDone {
            task: TaskId::new(id),
            attempt: 1,
        });
    }
    events.push(Event::TaskCommitted {
        task: TaskId::new("c"),
        attempt: 1,
        commit: "c1".into(),
        files: Vec::new(),
    });
    events
}

fn replay(events: &[Event]) -> RunState {
    let records: Vec<Record> = events
        .iter()
        .enumerate()
        .map(|(i, e)| Record {
            t: i as u64 + 1,
            event: e.clone(),
        })
        .collect();
    RunState::replay(&records)
}

#[test]
fn what_telling_does_depends_on_the_task_and_what_depends_on_it() {
    let state = replay(&run());
    let tell = |id: &str| telling(&state, &TaskId::new(id));
    assert_eq!(tell("b"), Ok(Telling::Stop));
    assert_eq!(tell("c"), Ok(Telling::Reopen));
    assert_eq!(tell("d"), Ok(Telling::Next));
    let why = tell("a").unwrap_err();
    assert!(why.contains("have started (b)"), "{why}");
    assert!(tell("zz").unwrap_err().contains("its tasks: a, b, c, d, e"));
    let mut events = run();
    events.push(Event::TaskFailed {
        task: TaskId::new("e"),
        attempt: 1,
        reason: "broke".into(),
    });
    let state = replay(&events);
    let why = telling(&state, &TaskId::new("e")).unwrap_err();
    assert!(why.contains("retry e --message"), "{why}");
}

#[test]
fn a_reopened_task_is_pending_without_its_commit_and_keeps_the_message() {
    let mut events = run();
    events.push(Event::TaskTold {
        task: TaskId::new("c"),
        id: "t1".into(),
        message: "again, \"better\"\n".into(),
        reopened: true,
    });
    let state = replay(&events);
    assert!(state.anomalies.is_empty(), "{:?}", state.anomalies);
    let c = state.task(&TaskId::new("c")).unwrap();
    assert_eq!(c.state, TaskStatus::Pending);
    assert_eq!(c.commit, None);
    assert_eq!(c.retry_base, 1);
    let told = c.told.as_ref().unwrap();
    assert_eq!((told.after_attempt, told.reopened), (1, true));
    assert_eq!(told.message, "again, \"better\"\n");
    assert!(state.tell_requests.contains("t1"));
    // The commit made before stays in the run's history.
    assert_eq!(state.commits.len(), 1);
}

#[test]
fn an_attempt_stopped_by_the_user_does_not_count_against_the_retries() {
    let mut events = run();
    events.push(Event::TaskTold {
        task: TaskId::new("b"),
        id: "t2".into(),
        message: "turn left".into(),
        reopened: false,
    });
    events.push(Event::TaskInterrupted {
        task: TaskId::new("b"),
        attempt: 1,
        reason: super::tell::STOPPED_BY_USER.into(),
        session_id: Some("s-1".into()),
        ended_at_ms: None,
    });
    events.push(Event::TaskStarted {
        task: TaskId::new("b"),
        attempt: 2,
        continues: Some("s-1".into()),
    });
    let state = replay(&events);
    let b = state.task(&TaskId::new("b")).unwrap();
    assert_eq!(b.state, TaskStatus::Running);
    assert_eq!(b.told.as_ref().unwrap().after_attempt, 1);
    // Attempt 2 is the task's first of its own.
    assert_eq!(counted(&state, &TaskId::new("b"), 2), 1);
}
