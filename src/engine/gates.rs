//! The gates, task-level and run-level, in one place. A task's agent exited 0 with its files
//! written: its gates run (spec, test files, TDD, ownership at once; lint and tests in the
//! background, off the loop), then the judge (judging.rs). Once nothing is left to do, the
//! run's own gates run the same way, and give the run its outcome.
//!
//! Lint and tests see the whole project, other agents' half-done work included: a failure
//! seen while others work is parked and checked again once the project is quiet.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc::UnboundedSender;

use super::core::{Engine, GateDone};
use crate::judge::{self, GateOutcome};
use crate::paths::ProjectPath;
use crate::plan::TaskId;
use crate::state::{Event, Outcome, Phase, TaskStatus};

/// The checks in flight, and those waiting for a quiet project.
pub(super) struct Checks {
    /// Gate runs in flight, and checks waiting for their barrier (see barrier.rs).
    running: usize,
    /// Tasks whose lint or tests failed while other agents worked: checked again when quiet.
    parked: Vec<TaskId>,
    /// Task attempts already checked a second time.
    rechecked: HashSet<(TaskId, u32)>,
    /// Whether the run's gates were started (once per engine).
    run_gates_started: bool,
    /// Where the background gate runs send their results (`Input::GatesDone`).
    tx: UnboundedSender<GateDone>,
}

/// Command gates to run off the loop, after the gates already known.
struct Background {
    task: Option<TaskId>,
    attempt: u32,
    known: Vec<GateOutcome>,
    /// `lint`, `test`: their command and log.
    commands: Vec<(&'static str, Option<String>, PathBuf)>,
    root: PathBuf,
    timeout: Duration,
}

impl Checks {
    pub(super) fn new(tx: UnboundedSender<GateDone>) -> Checks {
        Checks {
            running: 0,
            parked: Vec::new(),
            rechecked: HashSet::new(),
            run_gates_started: false,
            tx,
        }
    }

    /// A check began (or waits for its barrier): the project is not quiet.
    pub(super) fn begun(&mut self) {
        self.running += 1;
    }

    /// A check ended (its results are in, or its barrier passed and it starts anew).
    pub(super) fn ended(&mut self) {
        self.running = self.running.saturating_sub(1);
    }

    pub(super) fn busy(&self) -> bool {
        self.running > 0
    }

    /// Parks task `id`'s failed attempt for a recheck, unless it was rechecked already.
    fn park(&mut self, id: &TaskId, attempt: u32) -> bool {
        let first = self.rechecked.insert((id.clone(), attempt));
        if first {
            self.parked.push(id.clone());
        }
        first
    }

    /// Whether new agents must wait: rechecks want a quiet project.
    fn holding(&self, agents_working: bool) -> bool {
        !self.parked.is_empty()
            || (self.running > 0 && !self.rechecked.is_empty() && !agents_working)
    }

    fn spawn(&mut self, run: Background) {
        let tx = self.tx.clone();
        self.begun();
        tokio::spawn(async move {
            let mut outcomes = run.known;
            for (gate, command, log) in run.commands {
                outcomes.push(
                    judge::command_gate(gate, command.as_deref(), &run.root, &log, run.timeout)
                        .await,
                );
            }
            let _ = tx.send(GateDone {
                task: run.task,
                attempt: run.attempt,
                outcomes,
            });
        });
    }
}

impl Engine {
    /// Lint and tests, logged under `gates/<name>-<gate>.log`, after `known`.
    fn background(
        &self,
        task: Option<TaskId>,
        attempt: u32,
        name: &str,
        known: Vec<GateOutcome>,
    ) -> Background {
        let logs = self.dir.gates();
        let gates = &self.config.gates;
        // A task's in the tree it worked in (its own under `isolation: task`).
        let root = task
            .as_ref()
            .map_or_else(|| self.work.root.clone(), |id| self.task_root(id));
        Background {
            task,
            attempt,
            known,
            commands: [("lint", gates.lint.clone()), ("test", gates.test.clone())]
                .into_iter()
                .map(|(gate, command)| (gate, command, logs.join(format!("{name}-{gate}.log"))))
                .collect(),
            root,
            timeout: self.config.limits.task_timeout,
        }
    }

    /// The agent exited 0 with its files written: check the task.
    pub(super) fn start_checks(&mut self, id: &TaskId, attempt: u32) -> anyhow::Result<()> {
        // .git/ is watched apart from the tree (no barrier covers it): look now.
        self.check_git_meta(true)?;
        // In a worktree of its own, compared with its start exactly (see isolation.rs).
        self.inspect_task_tree(id, true)?;
        let task = self.state.tasks.get(id).context("no such task")?.clone();
        let root = self.task_root(id);
        let gates = &self.config.gates;
        let first_writes: BTreeMap<ProjectPath, u64> = task
            .files
            .iter()
            .filter_map(|f| self.state.first_writes.get(f).map(|t| (f.clone(), *t)))
            .collect();
        let known = vec![
            judge::spec_gate(&root, &self.spec_files()),
            judge::test_file_gate(&root, &task.files, &gates.test_pattern),
            judge::tdd_gate(&task.files, &gates.test_pattern, &first_writes, gates.tdd),
            judge::violation_gate(
                Some(id),
                &self.state.violations,
                task.started_at_ms.unwrap_or(0),
                &self
                    .dir
                    .gates()
                    .join(format!("{}-{attempt}-ownership.txt", id.as_str())),
            ),
        ];
        let name = format!("{}-{attempt}", id.as_str());
        let run = self.background(Some(id.clone()), attempt, &name, known);
        self.checks.spawn(run);
        Ok(())
    }

    pub(super) fn on_gates_done(&mut self, done: GateDone) -> anyhow::Result<()> {
        self.checks.ended();
        let Some(id) = done.task.clone() else {
            return self.on_run_gates_done(done);
        };
        let current = self
            .state
            .tasks
            .get(&id)
            .is_some_and(|t| t.state == TaskStatus::Running && t.attempts == done.attempt);
        if !current {
            return Ok(());
        }
        let command_failed = done
            .outcomes
            .iter()
            .any(|o| o.failed() && matches!(o.gate, "lint" | "test"));
        let others_busy = self.agents.any_task() || self.checks.busy();
        if command_failed && others_busy && self.checks.park(&id, done.attempt) {
            // Seen while others work: checked again once they are idle.
            return Ok(());
        }
        self.record_gates(Some(&id), done.attempt, &done.outcomes)?;
        let failed: Vec<String> = done
            .outcomes
            .iter()
            .filter(|o| o.failed())
            .map(|o| self.describe_failure(o))
            .collect();
        if failed.is_empty() {
            self.judging.enqueue(id);
            self.maybe_start_judge()?;
        } else {
            self.refuse_task(&id, failed)?;
        }
        self.dispatch()
    }

    fn describe_failure(&self, o: &GateOutcome) -> String {
        let log = o
            .log
            .as_ref()
            .map(|l| format!(" (full output: {})", self.project.display(l)))
            .unwrap_or_default();
        format!("gate `{}` failed: {}{log}", o.gate, o.detail)
    }

    pub(super) fn record_gates(
        &mut self,
        task: Option<&TaskId>,
        attempt: u32,
        outcomes: &[GateOutcome],
    ) -> anyhow::Result<()> {
        // One group commit for all of them, not a sync each (see Engine::record_all).
        let events = outcomes
            .iter()
            .map(|o| Event::GateChecked {
                task: task.cloned(),
                attempt,
                gate: o.gate.to_string(),
                status: o.status.name().to_string(),
                detail: o.detail.clone(),
                log: o.log.as_ref().map(|l| self.project.display(l).to_string()),
            })
            .collect();
        self.record_all(events)
    }

    /// Parked checks run again once no agent works: the project is quiet.
    pub(super) fn recheck_parked(&mut self) -> anyhow::Result<()> {
        if self.agents.any_task() || self.checks.busy() {
            return Ok(());
        }
        for id in std::mem::take(&mut self.checks.parked) {
            let attempt = self.state.tasks.get(&id).map_or(0, |t| t.attempts);
            self.start_checks(&id, attempt)?;
        }
        Ok(())
    }

    /// Whether new agents must wait: rechecks want a quiet project.
    pub(super) fn holding_for_rechecks(&self) -> bool {
        self.checks.holding(self.agents.any_task())
    }

    /// Ends the run once nothing is left to do: a final sweep for changes the watcher missed,
    /// then the run's gates.
    pub(super) fn finish_if_settled(&mut self) -> anyhow::Result<()> {
        let busy = self.agents.judging() || self.checks.busy();
        if self.state.phase != Phase::Running
            || !self.settled()
            || busy
            || self.checks.run_gates_started
        {
            return Ok(());
        }
        self.checks.run_gates_started = true;
        self.sweep()?;
        let known = vec![judge::spec_gate(&self.work.root, &self.spec_files())];
        let run = self.background(None, 0, "run", known);
        self.checks.spawn(run);
        Ok(())
    }

    /// The run-level gates are in: the outcome, the report, the end.
    pub(super) fn on_run_gates_done(&mut self, mut done: GateDone) -> anyhow::Result<()> {
        done.outcomes.push(judge::violation_gate(
            None,
            &self.state.violations,
            0,
            &self.dir.gates().join("run-ownership.txt"),
        ));
        self.record_gates(None, 0, &done.outcomes)?;
        let mut reasons: Vec<String> = done
            .outcomes
            .iter()
            .filter(|o| o.failed())
            .map(|o| {
                format!(
                    "run gate `{}` failed: {}",
                    o.gate,
                    o.detail.lines().next().unwrap_or("")
                )
            })
            .collect();
        let failed: Vec<String> = self
            .state
            .tasks_in_order()
            .filter(|t| t.state != TaskStatus::Done)
            .map(|t| t.id.to_string())
            .collect();
        if !failed.is_empty() {
            reasons.insert(0, format!("task(s) not done: {}", failed.join(", ")));
        }
        let (outcome, reason) = if reasons.is_empty() {
            (Outcome::Succeeded, None)
        } else {
            (Outcome::Failed, Some(reasons.join("; ")))
        };
        self.record(Event::RunFinished { outcome, reason })?;
        if let Err(e) = crate::report::write(
            &self.project,
            &self.config,
            &self.dir,
            self.snapshot.as_ref(),
        ) {
            self.warn(
                crate::state::WarningKind::Unrecorded,
                format!(
                    "could not write the report: {e:#}; `orch report` rebuilds it from the journal"
                ),
            );
        }
        Ok(())
    }
}
