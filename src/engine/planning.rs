//! The planning phase inside a run: the planner agent in its own window, its answer checked
//! when its exit record appears, and a new attempt with the problems when it is refused.

use std::time::Instant;

use anyhow::Context as _;

use super::core::{Engine, Live};
use crate::agent_process::run::ExitRecord;
use crate::plan::{self, Plan};
use crate::planner::Planning;
use crate::state::{Event, Outcome};

impl Engine {
    fn planning(&self) -> Planning<'_> {
        Planning {
            project: &self.project,
            config: &self.config,
            request: &self.info.request,
            dir: self.dir.path().to_path_buf(),
        }
    }

    pub(super) fn start_planning(&mut self, attempt: u32) -> anyhow::Result<()> {
        let feedback = std::mem::take(&mut self.planner_feedback);
        let prepared = self.planning().prepare(attempt, &feedback)?;
        let attempt_dir = prepared
            .prompt_file
            .parent()
            .context("the planner's prompt has no directory")?
            .to_path_buf();
        self.record(Event::PlanningStarted { attempt })?;
        let name = if attempt == 1 {
            "planner".to_string()
        } else {
            format!("planner-{attempt}")
        };
        let title = format!(
            "planner · agent {} · attempt {attempt}",
            self.config.roles.planner
        );
        let window = self.prepare_pane(&attempt_dir, title, prepared.invocation, name)?;
        let pane = self.panes.window(self.tmux.as_ref(), &window)?;
        self.record(Event::PlanningAgentStarted {
            attempt,
            pane: pane.pane_id.clone(),
            pid: pane.pid,
        })?;
        self.planner = Some(Live {
            attempt,
            dir: attempt_dir,
            pane: pane.pane_id,
            pid: pane.pid,
            last_activity: Instant::now(),
        });
        Ok(())
    }

    /// The planner's exit record arrived: check its answer.
    pub(super) fn on_planner_exit(&mut self, exit: &ExitRecord) -> anyhow::Result<()> {
        let Some(live) = self.planner.take() else {
            return Ok(());
        };
        self.dir_watcher.unwatch(&live.dir);
        let stdout = std::fs::read_to_string(live.dir.join("stdout.log")).unwrap_or_default();
        let code = if exit.signal.is_some() {
            None
        } else {
            exit.code
        };
        let result = self.planning().evaluate(live.attempt, code, &stdout);
        match result {
            Ok(plan) => self.accept_when_seen(plan), // see barrier.rs
            Err(problems) => self.refuse_plan(live.attempt, problems),
        }
    }

    /// A valid plan from the planner, its writes seen: accepted.
    pub(super) fn accept_planned(&mut self, plan: Plan) -> anyhow::Result<()> {
        self.planning().accept(&plan)?;
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
        let used = attempt.saturating_sub(self.state.planning.interruptions);
        if used < self.planning().max_attempts() {
            self.planner_feedback = problems;
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
        plan::parse_and_validate(&value, &self.project.root, &self.config.roles.workers).map_err(
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
            let _ = std::fs::copy(self.project.root.join(&file), &to);
        }
        self.plan = Some(plan);
        self.check_planning_writes()?;
        self.dispatch()
    }
}
