//! The planning phase inside a run: the planner agent in its own window, its answer checked
//! when its exit record appears, and a new attempt with the problems when it is refused.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::agents::{Agent, Role};
use super::core::Engine;
use super::launch::{Launch, Placement};
use crate::plan::{self, Plan};
use crate::planner::Planning;
use crate::state::{Event, Outcome};

/// The planning phase's own state.
#[derive(Debug, Default)]
pub(super) struct PlanningState {
    /// Problems of the last refused plan, for the next attempt's prompt.
    feedback: Vec<String>,
    /// Files written during planning (and the change seen), checked against the specs once
    /// the plan is known.
    writes: BTreeMap<String, &'static str>,
    /// The planner's valid plan, waiting for its barrier to be accepted (see barrier.rs).
    waiting: Option<Plan>,
}

impl PlanningState {
    pub(super) fn set_feedback(&mut self, problems: Vec<String>) {
        self.feedback = problems;
    }

    pub(super) fn take_feedback(&mut self) -> Vec<String> {
        std::mem::take(&mut self.feedback)
    }

    /// A file written while planning (or by the planner, seen late).
    pub(super) fn note_write(&mut self, path: &str, change: &'static str) {
        self.writes.insert(path.to_string(), change);
    }

    pub(super) fn take_writes(&mut self) -> BTreeMap<String, &'static str> {
        std::mem::take(&mut self.writes)
    }

    pub(super) fn wait_with(&mut self, plan: Plan) {
        self.waiting = Some(plan);
    }

    pub(super) fn take_waiting(&mut self) -> Option<Plan> {
        self.waiting.take()
    }
}

impl Engine {
    fn planning(&self) -> Planning<'_> {
        Planning {
            project: &self.work,
            config: &self.config,
            request: &self.info.request,
            dir: self.dir.path().to_path_buf(),
        }
    }

    pub(super) fn start_planning(&mut self, attempt: u32) -> anyhow::Result<()> {
        let feedback = self.planning_state.take_feedback();
        let planning = self.planning();
        let (dir, prompt) = (
            planning.attempt_dir(attempt),
            planning.prompt(attempt, &feedback),
        );
        let name = self.config.roles.planner.clone();
        self.launch_agent(Launch {
            role: Role::Planner,
            attempt,
            dir,
            title: format!("planner · agent {name} · attempt {attempt}"),
            window: if attempt == 1 {
                "planner".to_string()
            } else {
                format!("planner-{attempt}")
            },
            agent: name,
            prompt,
            files: vec![],
            session: None,
            placement: Placement::Window,
        })
    }

    /// The planner's agent ended (`code`: None when killed): check its answer.
    pub(super) fn on_planner_exit(&mut self, live: Agent, code: Option<i32>) -> anyhow::Result<()> {
        let stdout = std::fs::read_to_string(live.dir.join("stdout.log")).unwrap_or_default();
        let result = self.planning().evaluate(live.attempt, code, &stdout);
        match result {
            Ok(plan) => self.accept_when_seen(plan), // see barrier.rs
            Err(problems) => self.refuse_plan(live.attempt, problems),
        }
    }

    /// A valid plan from the planner, its writes seen: accepted.
    pub(super) fn accept_planned(&mut self, plan: Plan) -> anyhow::Result<()> {
        self.planning().accept(&plan)?;
        if self.approval_asked() {
            return self.hold_plan(plan); // see approval.rs
        }
        self.accept_plan(plan)
    }

    pub(super) fn refuse_plan(
        &mut self,
        attempt: u32,
        problems: Vec<String>,
    ) -> anyhow::Result<()> {
        self.record(Event::PlanningRefused {
            attempt,
            problems: problems.clone(),
        })?;
        self.after_refusal(attempt, problems)
    }

    /// Attempt `attempt` was refused (and journaled so): the next attempt, or the end of
    /// planning. Attempts lost to interruptions do not count against the retries.
    pub(super) fn after_refusal(
        &mut self,
        attempt: u32,
        problems: Vec<String>,
    ) -> anyhow::Result<()> {
        // A re-plan the user asked for (`orch tell planner`, see approval.rs) starts a fresh
        // set of attempts.
        let used = attempt
            .saturating_sub(self.state.approval.replanned_after)
            .saturating_sub(self.state.planning.interruptions);
        if used < self.planning().max_attempts() {
            self.planning_state.set_feedback(problems);
            self.start_planning(attempt + 1)
        } else {
            let reason = format!(
                "no valid plan after {attempt} attempt(s): {}",
                problems.join("; ")
            );
            self.record(Event::PlanningFailed {
                reason: reason.clone(),
            })?;
            self.record(Event::RunFinished {
                outcome: Outcome::Failed,
                reason: Some(reason),
            })?;
            Ok(())
        }
    }

    /// `orch up --plan FILE`: the plan was checked by `up`; check it again against the tree
    /// as it is now, since time has passed.
    pub(super) fn read_given_plan(&self) -> anyhow::Result<Plan> {
        let text = std::fs::read_to_string(self.dir.plan())
            .with_context(|| format!("failed to read {}", self.dir.plan().display()))?;
        let value = plan::extract_plan(&text).context("the given plan has no `tasks`")?;
        plan::parse_and_validate(&value, &self.work.root, &self.config.roles.workers).map_err(
            |problems| {
                let lines: Vec<String> = problems.into_iter().map(|p| p.message).collect();
                anyhow::anyhow!("the plan is invalid:\n  - {}", lines.join("\n  - "))
            },
        )
    }

    pub(super) fn accept_plan(&mut self, plan: Plan) -> anyhow::Result<()> {
        self.record(Event::PlanAccepted { plan: plan.clone() })?;
        // The specs as the planner left them: what a later change to one is judged against
        // (a late event of the planner's own write is then no violation).
        for file in plan.spec_files() {
            let to = self.dir.baseline().join(&file);
            if let Some(parent) = to.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::copy(self.work.root.join(&file), &to);
        }
        self.plan = Some(plan);
        self.check_planning_writes()?;
        self.commit_specs()?; // see commits.rs
        self.dispatch()
    }
}
