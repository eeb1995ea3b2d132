//! What the journal says of a plan held for the user's approval (`orch up --review`,
//! `plan_approval: ask`): the plan held, each `orch approve` the engine refused (the plan
//! file, as edited, was invalid) and the one it took. Each answer names its request's id, so
//! that a request is answered once however often an engine reads it.

use serde::Serialize;

use super::Event;
use crate::plan::Plan;

/// One `orch approve` the engine refused: the plan file had these problems.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalRefusal {
    pub id: String,
    pub problems: Vec<String>,
    pub at_ms: u64,
}

/// The `orch approve` the engine took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approved {
    pub id: String,
    /// Whether the plan approved differs from the one held (the user edited its file).
    pub edited: bool,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApprovalRecord {
    /// The plan waiting for approval, while it waits (approval clears it).
    pub held: Option<Plan>,
    /// When the plan was held.
    pub held_at_ms: Option<u64>,
    pub refusals: Vec<ApprovalRefusal>,
    pub approved: Option<Approved>,
    /// The `orch tell planner` requests answered (their ids), in order: each started a new
    /// planning attempt that does not count against the planner's retries.
    pub revisions: Vec<String>,
    /// The planning attempt after which the latest re-plan started (0: none): the attempts
    /// before it do not count against the planner's retries.
    pub replanned_after: u32,
    /// The plan held last (kept after approval or a re-plan dropped it).
    pub last_held: Option<Plan>,
    /// The feedback file (relative to the run directory) of an `orch tell planner` whose
    /// planner has not started yet: an engine that died in between leaves it to the next.
    pub replan: Option<String>,
}

impl ApprovalRecord {
    pub(super) fn apply(&mut self, t: u64, event: &Event) {
        match event {
            Event::PlanHeld { plan } => {
                self.held = Some(plan.clone());
                self.last_held = Some(plan.clone());
                self.held_at_ms = Some(t);
            }
            Event::ApprovalRefused { id, problems } => self.refusals.push(ApprovalRefusal {
                id: id.clone(),
                problems: problems.clone(),
                at_ms: t,
            }),
            Event::PlanRevisionAsked { id, file, .. } => {
                self.held = None;
                self.revisions.push(id.clone());
                self.replan = Some(file.clone());
            }
            Event::PlanApproved { id, edited } => {
                self.held = None;
                self.approved = Some(Approved {
                    id: id.clone(),
                    edited: *edited,
                    at_ms: t,
                });
            }
            _ => {}
        }
    }

    /// Whether a plan waits for the user's approval.
    pub fn waiting(&self) -> bool {
        self.held.is_some()
    }

    /// Whether the request `id` was answered (approved or refused).
    pub fn answered(&self, id: &str) -> bool {
        self.approved.as_ref().is_some_and(|a| a.id == id)
            || self.refusals.iter().any(|r| r.id == id)
            || self.revisions.iter().any(|r| r == id)
    }

    /// The problems the engine found answering the request `id`, if it refused it.
    pub fn refusal(&self, id: &str) -> Option<&ApprovalRefusal> {
        self.refusals.iter().rev().find(|r| r.id == id)
    }
}

#[cfg(test)]
mod tests {
    use crate::state::{Event, Outcome, Phase, Record, RunState};

    fn plan() -> crate::plan::Plan {
        serde_json::from_str(
            r#"{"tasks": [{"id": "a", "agent": "w", "task": "t", "files": ["a.txt"]}]}"#,
        )
        .unwrap()
    }

    fn replay(events: Vec<Event>) -> RunState {
        let records: Vec<Record> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Record {
                t: i as u64 + 1,
                event,
            })
            .collect();
        RunState::replay(&records)
    }

    #[test]
    fn a_held_plan_waits_across_a_stop_and_a_resume_until_approved() {
        let held = vec![
            Event::PlanningStarted { attempt: 1 },
            Event::PlanHeld { plan: plan() },
            Event::ApprovalRefused {
                id: "1".into(),
                problems: vec!["bad".into()],
            },
            Event::RunFinished {
                outcome: Outcome::Stopped,
                reason: None,
            },
            Event::RunResumed {},
        ];
        let state = replay(held.clone());
        assert_eq!(state.phase, Phase::Planning);
        assert!(state.approval.waiting());
        assert!(state.approval.answered("1"));
        assert_eq!(state.approval.refusal("1").unwrap().problems, ["bad"]);
        assert!(state.plan().is_none(), "nothing accepted before approval");

        let mut approved = held;
        approved.push(Event::PlanApproved {
            id: "2".into(),
            edited: true,
        });
        approved.push(Event::PlanAccepted { plan: plan() });
        let state = replay(approved);
        assert!(!state.approval.waiting());
        assert!(state.approval.approved.as_ref().unwrap().edited);
        assert_eq!(state.phase, Phase::Running);
    }
}
