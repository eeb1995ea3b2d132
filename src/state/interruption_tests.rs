//! Interrupted attempts in the replayed state: a task back to pending with its note and its
//! agent session, a planner attempt that does not count as refused, and what `orch resume`
//! may take over.

use super::*;
use crate::plan::{Plan, TaskId};

fn id(s: &str) -> TaskId {
    TaskId::new(s)
}

fn replay(events: Vec<Event>) -> RunState {
    let records: Vec<Record> = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Record {
            t: 1000 + i as u64,
            event,
        })
        .collect();
    RunState::replay(&records)
}

fn accepted() -> Vec<Event> {
    let plan: Plan = serde_json::from_value(serde_json::json!({"tasks": [
        {"id": "a", "agent": "x", "task": "t", "files": ["a.txt"]},
        {"id": "b", "agent": "x", "task": "t", "files": ["b.txt"], "depends_on": ["a"]}
    ]}))
    .unwrap();
    vec![
        Event::RunStarted {
            run_id: "r".into(),
            request_bytes: 1,
        },
        Event::EngineStarted { pid: 10 },
        Event::PlanAccepted { plan },
        Event::TaskStarted {
            task: id("a"),
            attempt: 1,
            continues: None,
        },
        Event::TaskAgentStarted {
            task: id("a"),
            attempt: 1,
            pane: "%1".into(),
            window: "@1".into(),
            pid: 11,
        },
    ]
}

#[test]
fn an_interrupted_task_is_pending_again_with_its_note_and_session() {
    let mut events = accepted();
    events.push(Event::TaskInterrupted {
        task: id("a"),
        attempt: 1,
        reason: "the tmux server died".into(),
        session_id: Some("s-1".into()),
        ended_at_ms: None,
    });
    let state = replay(events.clone());
    let a = &state.tasks[&id("a")];
    assert_eq!(a.state, TaskStatus::Pending);
    assert_eq!(
        a.interrupted,
        Some(Interruption {
            attempt: 1,
            reason: "the tmux server died".into()
        })
    );
    assert_eq!((a.interruptions, a.session_id.as_deref()), (1, Some("s-1")));
    assert_eq!(a.pane, None, "its pane is no longer the task's");
    assert!(!state.is_settled());

    // The next attempt clears the note but keeps the session, even when that attempt is
    // interrupted too before its agent printed anything.
    events.push(Event::TaskStarted {
        task: id("a"),
        attempt: 2,
        continues: None,
    });
    let a = replay(events.clone()).tasks[&id("a")].clone();
    assert_eq!((a.interrupted, a.attempts), (None, 2));
    events.push(Event::TaskInterrupted {
        task: id("a"),
        attempt: 2,
        reason: "Ctrl-C".into(),
        session_id: None,
        ended_at_ms: None,
    });
    let state = replay(events);
    let a = &state.tasks[&id("a")];
    assert_eq!((a.interruptions, a.session_id.as_deref()), (2, Some("s-1")));
    let status = state.status_json(false);
    assert_eq!(status["tasks"][0]["interruptions"], 2);
    assert_eq!(status["resumable"], true);
}

#[test]
fn a_stale_interruption_is_an_anomaly() {
    let mut events = accepted();
    events.push(Event::TaskInterrupted {
        task: id("a"),
        attempt: 7,
        reason: "x".into(),
        session_id: None,
        ended_at_ms: None,
    });
    let state = replay(events);
    assert_eq!(state.tasks[&id("a")].state, TaskStatus::Running);
    assert_eq!(state.anomalies.len(), 1, "{:?}", state.anomalies);
}

#[test]
fn planning_attempts_say_how_they_ended() {
    let mut events = vec![
        Event::EngineStarted { pid: 1 },
        Event::PlanningStarted { attempt: 1 },
        Event::PlanningRefused {
            attempt: 1,
            problems: vec!["no tests".into()],
        },
    ];
    let state = replay(events.clone());
    assert_eq!(state.planning.ended, Some(AttemptEnd::Refused));
    events.push(Event::PlanningStarted { attempt: 2 });
    assert_eq!(replay(events.clone()).planning.ended, None);
    events.push(Event::PlanningInterrupted {
        attempt: 2,
        reason: "Ctrl-C".into(),
    });
    let state = replay(events);
    assert_eq!(state.planning.ended, Some(AttemptEnd::Interrupted));
    assert_eq!(state.planning.interruptions, 1);
    assert_eq!(
        state.planning.problems,
        ["no tests"],
        "still the next feedback"
    );
    assert_eq!(state.phase, Phase::Planning);
}

#[test]
fn what_resume_may_take_over() {
    let running = replay(accepted());
    assert!(running.is_resumable(false));
    assert!(!running.is_resumable(true), "its engine is alive");
    for (outcome, resumable) in [
        (Outcome::Interrupted, true),
        (Outcome::Stopped, true),
        (Outcome::Succeeded, false),
        (Outcome::Failed, false),
    ] {
        let mut events = accepted();
        events.push(Event::RunFinished {
            outcome,
            reason: None,
        });
        assert_eq!(replay(events).is_resumable(false), resumable, "{outcome}");
    }
}
