//! The run's budget, enforced (see [`crate::budget`] for the accounting). At every tick and
//! before every launch the engine reads what its agents used so far (live, from their logs)
//! and journals each threshold crossed: at 80 % the user is told; at 100 % nothing new is
//! launched (tasks, retries, the judge) and, with `limits.on_budget: stop`, the running task
//! agents are stopped as an interruption (their work stays in place, and they continue their
//! CLI's session once the budget allows). The planner and the judge always finish their turn:
//! stopping them would throw away what they read and gain nothing. The run then waits: `orch
//! budget +AMOUNT` raises the budget (a request file that this engine journals and applies at
//! once, or the next engine at `orch resume`), and launching goes on.

use std::time::{Duration, Instant};

use super::core::Engine;
use crate::budget::{Limit, RaiseRequest, measure, read_requests};
use crate::config::OnBudget;
use crate::plan::TaskId;
use crate::state::{Event, WarningKind};

/// How often the budget is looked at before launches, at most.
const LAUNCH_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Why a stopped task's attempt was interrupted.
pub(super) const STOPPED_BY_BUDGET: &str = "stopped: the run's budget is used up";

impl Engine {
    /// Whether the budget is used up: nothing new launches until it is raised.
    pub(super) fn budget_holds(&self) -> bool {
        self.state.budget.reached()
    }

    /// `check_budget` before a launch. Launches come one after another while many tasks
    /// start, and each look reads every running agent's stream, so a look less than
    /// LAUNCH_CHECK_EVERY after the last is skipped, unless an agent ended since: its use is
    /// final then (its exit may be what used the budget up), and the launch that follows its
    /// end (a dependent, the judge) must see it.
    pub(super) fn check_budget_before_launch(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        let ended = self.agents.ended();
        if self
            .budget_look
            .is_some_and(|(at, seen)| seen == ended && now.duration_since(at) < LAUNCH_CHECK_EVERY)
        {
            return Ok(());
        }
        self.budget_look = Some((now, ended));
        self.check_budget()
    }

    /// Applies raise requests, then journals the threshold the run's use is at if it moved
    /// (and acts on it).
    pub(super) fn check_budget(&mut self) -> anyhow::Result<()> {
        self.apply_raises()?;
        let limit = Limit::of(&self.config.limits.budget, &self.state);
        let recorded = self.state.budget.percent;
        if limit.is_none() && recorded == 0 {
            return Ok(());
        }
        let used = measure(&self.dir, &self.state);
        let threshold = limit.threshold(&used);
        // Only ever up: a count that reads lower later (an exit record's total in place of
        // the live tally) does not lift a hold; a raise does (it starts the count of
        // thresholds again, see `apply_raises`).
        if threshold <= recorded {
            return Ok(());
        }
        self.record(Event::BudgetCrossed {
            percent: threshold,
            usd: (used.usd > 0.0 || limit.usd.is_some()).then_some(used.usd),
            tokens: used.tokens,
            limit_usd: limit.usd,
            limit_tokens: limit.tokens,
        })?;
        if threshold >= 100 && self.config.limits.on_budget == OnBudget::Stop {
            self.stop_tasks_for_budget()?;
        }
        Ok(())
    }

    /// Journals each raise request not journaled yet, and removes its file.
    fn apply_raises(&mut self) -> anyhow::Result<()> {
        let mut raised = false;
        for (path, request) in read_requests(&self.dir) {
            match request {
                Ok(r) if self.state.budget.raised(&r.id) => {}
                Ok(r) => match self.refusal(&r) {
                    Some(why) => {
                        self.warn(
                            WarningKind::Budget,
                            format!("a budget raise ({}) was not applied: {why}", r.id),
                        );
                    }
                    None => {
                        self.record(Event::BudgetRaised {
                            id: r.id,
                            usd: r.usd,
                            tokens: r.tokens,
                        })?;
                        raised = true;
                    }
                },
                Err(e) => {
                    self.warn(
                        WarningKind::Budget,
                        format!(
                            "a budget raise request ({}) cannot be read ({e}); it was set \
                             aside: run `orch budget +AMOUNT` again",
                            path.display()
                        ),
                    );
                }
            }
            // Applied, refused or unreadable: said in the journal, not read again.
            let _ = std::fs::remove_file(&path);
        }
        if raised {
            self.sched.want_launch(); // what waited for the budget goes on
        }
        Ok(())
    }

    /// Journals, once per run, that a budget in USD alone does not count the agents whose
    /// CLI reports no cost (Codex, Gemini CLI): their use would never reach it.
    pub(super) fn say_if_budget_leaks(&mut self) {
        let budget = &self.config.limits.budget;
        if budget.usd.is_none() || budget.tokens.is_some() {
            return;
        }
        // The agents the run's roles use (one merely defined never runs).
        let roles = &self.config.roles;
        let mut names: Vec<&str> = [&roles.planner, &roles.judge]
            .into_iter()
            .chain(roles.oracle.as_ref())
            .chain(roles.workers.iter())
            .map(String::as_str)
            .filter(|name| {
                self.config
                    .agents
                    .get(*name)
                    .is_some_and(|a| !crate::budget::reports_cost(a.kind))
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            return;
        }
        let message = format!(
            "the budget is in USD alone, and agent(s) {} report no cost: what they use is not              counted against it; give `limits.budget.tokens` too for a limit that holds them",
            names.join(", ")
        );
        if self.state.warnings.iter().any(|w| w.message == message) {
            return; // said by an earlier engine of the run
        }
        self.warn(WarningKind::Budget, message);
    }

    /// Why the run's budget cannot be raised as `r` asks, if it cannot.
    fn refusal(&self, r: &RaiseRequest) -> Option<String> {
        let budget = &self.config.limits.budget;
        if r.usd.is_some() && budget.usd.is_none() {
            return Some("the run has no budget in USD (`limits.budget.usd`)".into());
        }
        if r.tokens.is_some() && budget.tokens.is_none() {
            return Some("the run has no budget in tokens (`limits.budget.tokens`)".into());
        }
        None
    }

    /// `on_budget: stop`: every running task's agent is stopped as an interruption.
    fn stop_tasks_for_budget(&mut self) -> anyhow::Result<()> {
        let running: Vec<TaskId> = self
            .agents
            .iter()
            .filter_map(|a| a.role.task().cloned())
            .collect();
        for id in running {
            let Some(live) = self.agents.task(&id).cloned() else {
                continue;
            };
            // What escaped the pane's group would outlive the stop (see leftovers.rs).
            self.on_leftovers(&live.dir, Some(id.clone()), live.group())?;
            self.agents.remove(&live.dir);
            self.unwatch_dir(&live.dir);
            let session_id = self.session_of(&id, &live.dir);
            self.record(Event::TaskInterrupted {
                task: id.clone(),
                attempt: live.attempt,
                reason: STOPPED_BY_BUDGET.to_string(),
                session_id,
                ended_at_ms: None,
            })?;
            if let Some(group) = live.group() {
                super::tasks::stop_pane(group);
            }
        }
        Ok(())
    }
}
