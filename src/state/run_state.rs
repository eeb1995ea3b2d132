//! The run's state, as the journal tells it. `apply` is the only way it changes, so the
//! engine's live state and a replay of its journal are the same by construction.

use std::collections::{BTreeMap, BTreeSet};

use crate::paths::ProjectPath;
use crate::plan::{Plan, TaskId};

use super::event::{Event, Outcome, Record, TaskVerdict};
use super::warning::WarningRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Nothing journaled yet beyond the run's start.
    #[default]
    Starting,
    Planning,
    Running,
    Finished(Outcome),
}

impl Phase {
    /// starting | planning | running | succeeded | failed | stopped | interrupted
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Planning => "planning",
            Phase::Running => "running",
            Phase::Finished(outcome) => outcome.name(),
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    #[default]
    Pending,
    /// From `TaskStarted` until judged done or failed, including after its agent exited.
    Running,
    Done,
    /// Failed for good.
    Failed,
    /// A task it depends on failed for good.
    Blocked,
}

impl TaskStatus {
    pub fn name(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Blocked => "blocked",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a planning attempt ended, once that is journaled (and until the next one starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    Refused,
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanningState {
    /// The latest attempt started (0: none yet).
    pub attempt: u32,
    pub pane: Option<String>,
    pub pid: Option<u32>,
    /// Why the latest refused attempt was refused: the next attempt's feedback.
    pub problems: Vec<String>,
    /// Why planning gave up, once it has.
    pub failed: Option<String>,
    /// How the latest attempt ended, when that is journaled and no attempt followed yet: what
    /// a resumed engine needs to tell "refused, next not started" from "still running".
    pub ended: Option<AttemptEnd>,
    /// Attempts lost to interruptions, which do not count against `planner_retries`.
    pub interruptions: u32,
}

/// How one attempt of a task ended, as far as the journal tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// Its agent runs, or has exited and is being checked.
    Running,
    Done,
    /// Refused by a gate or the judge: another attempt follows.
    Refused,
    /// Failed for good.
    Failed,
    /// Lost to an interruption (not the task's failure): another attempt follows.
    Interrupted,
}

impl AttemptOutcome {
    pub fn name(self) -> &'static str {
        match self {
            AttemptOutcome::Running => "running",
            AttemptOutcome::Done => "done",
            AttemptOutcome::Refused => "refused",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Interrupted => "interrupted",
        }
    }
}

/// One attempt of a task: when it ran, how it ended and why (as `orch status --json` shows
/// it too).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    /// Why it ended as it did, whole (a gate's output, the judge's words, the interruption):
    /// empty while it runs and when it is done.
    pub reasons: Vec<String>,
    pub started_at_ms: u64,
    /// When its agent stopped (its own exit time where the exit record tells it), once it has.
    pub ended_at_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

impl AttemptRecord {
    /// How long its agent ran: from its start to its end, or to `now` while it runs.
    pub fn ran_ms(&self, now: u64) -> u64 {
        self.ended_at_ms
            .unwrap_or(now)
            .saturating_sub(self.started_at_ms)
    }

    fn end(&mut self, at: u64) {
        self.ended_at_ms.get_or_insert(at.max(self.started_at_ms));
    }
}

/// Why a task's latest attempt ended without an outcome of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Interruption {
    pub attempt: u32,
    pub reason: String,
}

/// One write the sandbox refused a task's agent: the line of its output that says so.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SandboxRefusal {
    pub task: TaskId,
    pub attempt: u32,
    pub line: String,
}

/// Processes an agent left running when it exited (see [`Event::Leftovers`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeftoverRecord {
    pub task: Option<TaskId>,
    pub attempt_dir: String,
    /// Left running (`limits.leftovers: keep`); otherwise stopped.
    pub kept: bool,
    /// Left in the agent's sandbox, and ended with it.
    pub in_box: bool,
    pub count: usize,
    pub processes: Vec<crate::agent_process::leftovers::Leftover>,
    /// When they were found (the agent's exit).
    pub at_ms: u64,
}

impl LeftoverRecord {
    /// Its lines for `orch status` and the report: who left what, each process with its
    /// command, and for kept ones whether they still run.
    pub fn lines(&self) -> Vec<String> {
        let who = match &self.task {
            Some(task) => format!("task {task} ({})", self.attempt_dir),
            None => self.attempt_dir.clone(),
        };
        let what = if self.kept {
            "kept running"
        } else if self.in_box {
            "ended with its sandbox"
        } else {
            "stopped"
        };
        let mut lines = vec![format!("{who}: {} process(es) {what}", self.count)];
        for p in &self.processes {
            let running = if self.kept && crate::agent_process::leftovers::alive(p.pid) {
                " (still running)"
            } else {
                ""
            };
            lines.push(format!("  pid {}{running}: {}", p.pid, p.command));
        }
        if self.count > self.processes.len() {
            lines.push(format!(
                "  … and {} more",
                self.count - self.processes.len()
            ));
        }
        lines
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    pub id: TaskId,
    pub agent: String,
    pub task_text: String,
    pub files: Vec<ProjectPath>,
    pub depends_on: Vec<TaskId>,
    pub state: TaskStatus,
    /// Attempts started so far; the current (or last) attempt's number.
    pub attempts: u32,
    pub pane: Option<String>,
    pub window: Option<String>,
    pub pid: Option<u32>,
    pub started_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why it failed or is blocked; while pending again, why the last attempt was refused.
    pub reason: Option<String>,
    /// The reasons the next attempt's prompt must carry (from `TaskRequeued`).
    pub feedback: Vec<String>,
    /// Set when the latest attempt was interrupted (until the next starts): its prompt says so.
    pub interrupted: Option<Interruption>,
    /// Attempts lost to interruptions: `attempts - interruptions` is what the task itself used.
    pub interruptions: u32,
    /// The agent CLI's latest known session id, for a new attempt to continue.
    pub session_id: Option<String>,
    /// The session the current attempt continues, if it does.
    pub continuing: Option<String>,
    /// Every attempt started, in order.
    pub history: Vec<AttemptRecord>,
    /// A worktree run's commit of this task, once accepted.
    pub commit: Option<String>,
    /// Attempts started before the latest `orch retry`: the attempts that count against
    /// `limits.retries` are those after it.
    pub retry_base: u32,
    /// The latest `orch retry` of the task, while its attempts are what the retry started.
    pub retried: Option<Retried>,
    /// The user's latest `orch tell` message to the task, for its next attempts' prompts.
    pub told: Option<Told>,
}

/// What `orch tell` said to a task (see [`Event::TaskTold`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Told {
    /// The attempt that was running (stopped for it) or had done the task (reopened).
    pub after_attempt: u32,
    /// The task was done and is reopened.
    pub reopened: bool,
    /// The user's words, whole.
    pub message: String,
}

/// What `orch retry` gave a task that had failed for good (see [`Event::TaskRetried`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Retried {
    /// The attempt that had failed for good.
    pub after_attempt: u32,
    /// Why it had failed.
    pub reason: Option<String>,
    /// The user's words for the next attempts, whole.
    pub message: Option<String>,
}

impl TaskState {
    /// The time its agents ran, over all its attempts (up to `now` for one that runs): not
    /// the time between its first start and its end, which counts waits and downtime.
    pub fn ran_ms(&self, now: u64) -> u64 {
        self.history.iter().map(|a| a.ran_ms(now)).sum()
    }

    /// The latest attempt that ended otherwise than done (refused, failed, interrupted).
    pub fn last_setback(&self) -> Option<&AttemptRecord> {
        self.history
            .iter()
            .rev()
            .find(|a| !matches!(a.outcome, AttemptOutcome::Running | AttemptOutcome::Done))
    }

    fn current_attempt(&mut self) -> Option<&mut AttemptRecord> {
        let n = self.attempts;
        self.history.last_mut().filter(|a| a.attempt == n)
    }
}

impl TaskState {
    fn from_plan(task: &crate::plan::Task) -> TaskState {
        TaskState {
            id: task.id.clone(),
            agent: task.agent.clone(),
            task_text: task.task.clone(),
            files: task.files.clone(),
            depends_on: task.depends_on.clone(),
            state: TaskStatus::Pending,
            attempts: 0,
            pane: None,
            window: None,
            pid: None,
            started_at_ms: None,
            ended_at_ms: None,
            exit_code: None,
            signal: None,
            reason: None,
            feedback: Vec::new(),
            interrupted: None,
            interruptions: 0,
            session_id: None,
            continuing: None,
            history: Vec::new(),
            commit: None,
            retry_base: 0,
            retried: None,
            told: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GateRecord {
    pub task: Option<TaskId>,
    pub attempt: u32,
    pub gate: String,
    pub status: String,
    pub detail: String,
    pub log: Option<String>,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ViolationRecord {
    pub n: u32,
    pub path: String,
    pub change: String,
    pub suspects: Vec<TaskId>,
    pub action: String,
    pub saved: Option<String>,
    pub swept: bool,
    /// The task whose own worktree it was found in (`isolation: task`); None: the run's.
    pub worktree: Option<TaskId>,
    pub at_ms: u64,
}

impl ViolationRecord {
    /// Whether its file is still as the violation left it: not reverted, not deleted.
    pub fn is_open(&self) -> bool {
        !self.action.starts_with("reverted") && !self.action.starts_with("deleted")
    }
}

/// One commit on a worktree run's branch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitRecord {
    /// The task it holds; `None` for the planner's specs.
    pub task: Option<TaskId>,
    pub commit: String,
    pub files: Vec<ProjectPath>,
    pub at_ms: u64,
}

/// One `orch merge` of a run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MergeRecord {
    /// The user's branch it went into (`HEAD` when detached).
    pub into: String,
    pub commit: String,
    pub squash: bool,
    /// The run branch's tip it merged.
    pub tip: Option<String>,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunState {
    pub run_id: String,
    pub request_bytes: Option<usize>,
    pub phase: Phase,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    pub finish_reason: Option<String>,
    /// The latest engine's pid (kept after it stops: whether it is alive is the lock's say).
    pub engine_pid: Option<u32>,
    /// Why the latest engine stopped, if it said.
    pub engine_stopped: Option<String>,
    pub snapshot_tree: Option<String>,
    pub planning: PlanningState,
    /// When the plan was accepted: a change made before is the planning's, whenever its
    /// event arrives.
    pub plan_accepted_at_ms: Option<u64>,
    /// By id; `tasks_in_order` gives plan order.
    pub tasks: BTreeMap<TaskId, TaskState>,
    pub violations: Vec<ViolationRecord>,
    /// When each owned file was first written (ms), by path: TDD evidence.
    pub first_writes: BTreeMap<ProjectPath, u64>,
    /// Every gate result, in order.
    pub gates: Vec<GateRecord>,
    /// The judge's latest word on each task.
    pub verdicts: BTreeMap<TaskId, TaskVerdict>,
    /// The judge attempt under way and the tasks it was asked about.
    pub judging: Option<(u32, Vec<TaskId>)>,
    /// The oracle's latest advice per task.
    pub advice: BTreeMap<TaskId, String>,
    /// Events that did not fit the state (an unknown task, a stale attempt): ignored, and
    /// kept here so that `orch status` can show them rather than hide them.
    pub anomalies: Vec<String>,
    /// The time of the latest event.
    pub last_event_at_ms: Option<u64>,
    /// At the latest resume, when the journal last heard of the run before it: the previous
    /// engine's last sign of life.
    pub quiet_since_ms: Option<u64>,
    /// Why agents run without the sandbox the config asked for, when they do.
    pub sandbox_off: Option<String>,
    /// Writes the sandbox refused, in order.
    pub sandbox_refusals: Vec<SandboxRefusal>,
    /// What agents left running when they exited, stopped or kept, in order.
    pub leftovers: Vec<LeftoverRecord>,
    /// The engines' warnings, in order (see [`super::warning`]).
    pub warnings: Vec<WarningRecord>,
    /// A worktree run's commit of the planner's specs.
    pub specs_commit: Option<String>,
    /// Every commit on a worktree run's branch, in order: the specs' (task `None`), then each
    /// accepted task's.
    pub commits: Vec<CommitRecord>,
    /// Each `orch merge` of the run, in order.
    pub merges: Vec<MergeRecord>,
    /// `isolation: task`: the task worktrees there are now, by task.
    pub task_worktrees: BTreeMap<TaskId, crate::workspace::task::TaskWorktree>,
    /// Set once `orch discard` removed the run's worktree: whether it deleted the branch too.
    pub discarded: Option<bool>,
    /// The budget's raises and the thresholds its use crossed (see [`super::budget`]).
    pub budget: super::budget::BudgetRecord,
    /// A plan held for the user's approval, and the answers to `orch approve` (see
    /// [`super::approval`]).
    pub approval: super::approval::ApprovalRecord,
    /// The ids of the `orch retry` requests journaled (applied or refused), so that none is
    /// applied twice.
    pub retry_requests: BTreeSet<String>,
    /// The ids of the `orch tell` requests journaled (applied or refused).
    pub tell_requests: BTreeSet<String>,
    plan: Option<Plan>,
    order: Vec<TaskId>,
}

impl RunState {
    pub fn replay<'a>(records: impl IntoIterator<Item = &'a Record>) -> RunState {
        let mut state = RunState::default();
        for record in records {
            state.apply(record);
        }
        state
    }

    pub fn apply(&mut self, record: &Record) {
        let t = record.t;
        let previous = self.last_event_at_ms.replace(t);
        match &record.event {
            Event::RunStarted {
                run_id,
                request_bytes,
            } => {
                self.run_id.clone_from(run_id);
                self.request_bytes = Some(*request_bytes);
                self.started_at_ms = Some(t);
            }
            Event::EngineStarted { pid } => {
                self.engine_pid = Some(*pid);
                self.engine_stopped = None;
            }
            Event::EngineStopped { reason } => self.engine_stopped = Some(reason.clone()),
            Event::RunResumed {} => {
                self.quiet_since_ms = previous;
                self.phase = if self.plan.is_some() {
                    Phase::Running
                } else if self.planning.attempt > 0 || self.approval.waiting() {
                    Phase::Planning
                } else {
                    Phase::Starting
                };
                self.finished_at_ms = None;
                self.finish_reason = None;
            }
            Event::SnapshotTaken { tree } => self.snapshot_tree = Some(tree.clone()),
            Event::SandboxOff { reason } => self.sandbox_off = Some(reason.clone()),
            Event::SandboxRefused {
                task,
                attempt,
                lines,
            } => self
                .sandbox_refusals
                .extend(lines.iter().map(|line| SandboxRefusal {
                    task: task.clone(),
                    attempt: *attempt,
                    line: line.clone(),
                })),
            Event::Leftovers {
                task,
                attempt_dir,
                kept,
                in_box,
                count,
                processes,
            } => self.leftovers.push(LeftoverRecord {
                task: task.clone(),
                attempt_dir: attempt_dir.clone(),
                kept: *kept,
                in_box: *in_box,
                count: *count,
                processes: processes.clone(),
                at_ms: t,
            }),
            Event::SpecsCommitted { commit, files } => {
                self.specs_commit = Some(commit.clone());
                self.commits.push(CommitRecord {
                    task: None,
                    commit: commit.clone(),
                    files: files.clone(),
                    at_ms: t,
                });
            }
            Event::TaskCommitted {
                task,
                commit,
                files,
                ..
            } => {
                match self.tasks.get_mut(task) {
                    Some(state) => state.commit = Some(commit.clone()),
                    None => self
                        .anomalies
                        .push(format!("a commit of the unknown task {task}")),
                }
                self.commits.push(CommitRecord {
                    task: Some(task.clone()),
                    commit: commit.clone(),
                    files: files.clone(),
                    at_ms: t,
                });
            }
            Event::TaskWorktree { task, path, start } => {
                self.task_worktrees.insert(
                    task.clone(),
                    crate::workspace::task::TaskWorktree {
                        task: task.clone(),
                        path: path.clone(),
                        start: start.clone(),
                    },
                );
            }
            Event::TaskWorktreeRemoved { task } => {
                self.task_worktrees.remove(task);
            }
            Event::Merged {
                into,
                commit,
                squash,
                tip,
            } => self.merges.push(MergeRecord {
                into: into.clone(),
                commit: commit.clone(),
                squash: *squash,
                tip: tip.clone(),
                at_ms: t,
            }),
            Event::Discarded { branch_deleted } => self.discarded = Some(*branch_deleted),
            Event::Warning { kind, message } => self.warnings.push(WarningRecord {
                kind: *kind,
                message: message.clone(),
                at_ms: t,
            }),
            Event::PlanningStarted { attempt } => {
                // A re-plan the user asked for has its planner now.
                self.approval.replan = None;
                self.phase = Phase::Planning;
                self.planning.attempt = *attempt;
                self.planning.pane = None;
                self.planning.pid = None;
                self.planning.ended = None;
            }
            Event::PlanningAgentStarted { attempt, pane, pid } => {
                if *attempt != self.planning.attempt {
                    return self.anomaly(t, format!("planner attempt {attempt} is not current"));
                }
                self.planning.pane = Some(pane.clone());
                self.planning.pid = Some(*pid);
            }
            Event::PlanningRefused { attempt, problems } => {
                if *attempt != self.planning.attempt {
                    return self.anomaly(t, format!("planner attempt {attempt} is not current"));
                }
                self.planning.problems.clone_from(problems);
                self.planning.pane = None;
                self.planning.pid = None;
                self.planning.ended = Some(AttemptEnd::Refused);
            }
            Event::PlanningInterrupted { attempt, .. } => {
                if *attempt != self.planning.attempt {
                    return self.anomaly(t, format!("planner attempt {attempt} is not current"));
                }
                // `problems` stay: they are still what the next attempt must fix.
                self.planning.pane = None;
                self.planning.pid = None;
                self.planning.ended = Some(AttemptEnd::Interrupted);
                self.planning.interruptions += 1;
            }
            Event::PlanningFailed { reason } => {
                self.planning.failed = Some(reason.clone());
                self.planning.pane = None;
                self.planning.pid = None;
            }
            Event::PlanAccepted { plan } => {
                self.plan_accepted_at_ms = Some(t);
                self.accept(plan);
            }
            Event::RunFinished { outcome, reason } => {
                self.phase = Phase::Finished(*outcome);
                self.finish_reason.clone_from(reason);
                self.finished_at_ms = Some(t);
            }
            Event::FirstWrite { path, at_ms, .. } => {
                self.first_writes.entry(path.clone()).or_insert(*at_ms);
            }
            Event::Violation {
                n,
                path,
                change,
                suspects,
                action,
                saved,
                swept,
                worktree,
            } => self.violations.push(ViolationRecord {
                n: *n,
                path: path.clone(),
                change: change.clone(),
                suspects: suspects.clone(),
                action: action.clone(),
                saved: saved.clone(),
                swept: *swept,
                worktree: worktree.clone(),
                at_ms: t,
            }),
            Event::ViolationSettled { n, action, saved } => {
                if let Some(v) = self.violations.iter_mut().rev().find(|v| v.n == *n) {
                    v.action.clone_from(action);
                    v.saved.clone_from(saved);
                }
            }
            Event::GateChecked {
                task,
                attempt,
                gate,
                status,
                detail,
                log,
            } => self.gates.push(GateRecord {
                task: task.clone(),
                attempt: *attempt,
                gate: gate.clone(),
                status: status.clone(),
                detail: detail.clone(),
                log: log.clone(),
                at_ms: t,
            }),
            Event::JudgeStarted { attempt, tasks } => {
                self.judging = Some((*attempt, tasks.clone()));
            }
            Event::JudgeAgentStarted { .. } | Event::JudgeRefused { .. } => {}
            Event::JudgeVerdict { verdicts, .. } => {
                self.judging = None;
                for v in verdicts {
                    self.verdicts.insert(v.id.clone(), v.clone());
                }
            }
            Event::OracleStarted { .. } => {}
            Event::OracleAdvice { task, advice } => {
                self.advice.insert(task.clone(), advice.clone());
            }
            Event::BudgetRaised { .. } | Event::BudgetCrossed { .. } => {
                self.budget.apply(t, &record.event);
            }
            Event::PlanHeld { .. } => {
                // Planning is over, and nothing runs: the phase stays `planning` (a given
                // plan's too) until the plan is approved.
                self.phase = Phase::Planning;
                self.planning.pane = None;
                self.planning.pid = None;
                self.approval.apply(t, &record.event);
            }
            Event::PlanRevisionAsked { .. } => {
                self.approval.replanned_after = self.planning.attempt;
                self.approval.apply(t, &record.event);
            }
            Event::ApprovalRefused { .. } | Event::PlanApproved { .. } => {
                self.approval.apply(t, &record.event);
            }
            Event::TaskRetried {
                task,
                id,
                message,
                unblocked,
            } => self.retry(t, task, id, message, unblocked),
            Event::TaskTold {
                task,
                id,
                message,
                reopened,
            } => self.told(t, task, id, message, *reopened),
            event => self.apply_task(t, event),
        }
    }

    fn accept(&mut self, plan: &Plan) {
        self.phase = Phase::Running;
        self.planning.pane = None;
        self.planning.pid = None;
        self.tasks = plan
            .tasks
            .iter()
            .map(|task| (task.id.clone(), TaskState::from_plan(task)))
            .collect();
        self.order = plan.tasks.iter().map(|t| t.id.clone()).collect();
        // A duplicated id keeps one entry: the order must not list it twice.
        let mut seen = BTreeSet::new();
        self.order.retain(|id| seen.insert(id.clone()));
        self.plan = Some(plan.clone());
    }

    fn apply_task(&mut self, t: u64, event: &Event) {
        let (id, attempt) = match event {
            Event::TaskStarted { task, attempt, .. }
            | Event::TaskAgentStarted { task, attempt, .. }
            | Event::TaskExited { task, attempt, .. }
            | Event::TaskDone { task, attempt }
            | Event::TaskFailed { task, attempt, .. }
            | Event::TaskRequeued { task, attempt, .. }
            | Event::TaskInterrupted { task, attempt, .. } => (task, Some(*attempt)),
            Event::TaskBlocked { task, .. } => (task, None),
            _ => return,
        };
        let Some(task) = self.tasks.get_mut(id) else {
            return self.anomaly(t, format!("task {id} is not in the plan"));
        };
        let stale = match event {
            Event::TaskStarted { .. } => None,
            _ => attempt.filter(|&a| a != task.attempts),
        };
        if let Some(a) = stale {
            let current = task.attempts;
            return self.anomaly(
                t,
                format!("task {id} attempt {a} is not current (attempt {current})"),
            );
        }
        match event {
            Event::TaskStarted {
                attempt, continues, ..
            } => {
                task.continuing.clone_from(continues);
                task.history.retain(|a| a.attempt != *attempt);
                task.history.push(AttemptRecord {
                    attempt: *attempt,
                    outcome: AttemptOutcome::Running,
                    reasons: Vec::new(),
                    started_at_ms: t,
                    ended_at_ms: None,
                    exit_code: None,
                    signal: None,
                });
                task.state = TaskStatus::Running;
                task.attempts = *attempt;
                task.started_at_ms = Some(t);
                task.ended_at_ms = None;
                task.pane = None;
                task.window = None;
                task.pid = None;
                task.exit_code = None;
                task.signal = None;
                task.reason = None;
                task.interrupted = None;
            }
            Event::TaskAgentStarted {
                pane, window, pid, ..
            } => {
                task.pane = Some(pane.clone());
                task.window = Some(window.clone());
                task.pid = Some(*pid);
            }
            Event::TaskExited {
                code,
                signal,
                ended_at_ms,
                ..
            } => {
                task.exit_code = *code;
                task.signal = *signal;
                // The agent's own end, when its exit record gave it. The first exit journaled
                // stands: a resumed engine that handles the same exit again does not move it.
                let end = ended_at_ms
                    .unwrap_or(t)
                    .max(task.started_at_ms.unwrap_or(0));
                task.ended_at_ms.get_or_insert(end);
                if let Some(a) = task.current_attempt() {
                    a.exit_code = *code;
                    a.signal = *signal;
                    a.end(end);
                }
            }
            Event::TaskDone { .. } => {
                task.state = TaskStatus::Done;
                task.ended_at_ms.get_or_insert(t);
                task.feedback.clear();
                if let Some(a) = task.current_attempt() {
                    a.outcome = AttemptOutcome::Done;
                    a.end(t);
                }
            }
            Event::TaskFailed { reason, .. } => {
                task.state = TaskStatus::Failed;
                task.reason = Some(reason.clone());
                if task.started_at_ms.is_some() {
                    task.ended_at_ms.get_or_insert(t);
                }
                if let Some(a) = task.current_attempt() {
                    a.outcome = AttemptOutcome::Failed;
                    a.reasons = vec![reason.clone()];
                    a.end(t);
                }
            }
            Event::TaskRequeued { reasons, .. } => {
                task.state = TaskStatus::Pending;
                task.reason = Some(reasons.join("; "));
                task.feedback.clone_from(reasons);
                task.ended_at_ms.get_or_insert(t);
                if let Some(a) = task.current_attempt() {
                    a.outcome = AttemptOutcome::Refused;
                    a.reasons.clone_from(reasons);
                    a.end(t);
                }
            }
            Event::TaskBlocked { reason, .. } => {
                task.state = TaskStatus::Blocked;
                task.reason = Some(reason.clone());
            }
            Event::TaskInterrupted {
                attempt,
                reason,
                session_id,
                ended_at_ms,
                ..
            } => {
                let end = ended_at_ms.unwrap_or(t).min(t);
                if let Some(a) = task.current_attempt() {
                    a.outcome = AttemptOutcome::Interrupted;
                    a.reasons = vec![reason.clone()];
                    a.end(end);
                }
                task.state = TaskStatus::Pending;
                task.reason = Some(format!("attempt {attempt} interrupted: {reason}"));
                task.interrupted = Some(Interruption {
                    attempt: *attempt,
                    reason: reason.clone(),
                });
                task.interruptions += 1;
                // A session that an interrupted attempt continued without naming it again
                // (its CLI could not continue it) is given up: the next attempt starts anew.
                if session_id.is_some() {
                    task.session_id.clone_from(session_id);
                } else if task.continuing.is_some() {
                    task.session_id = None;
                }
                task.pane = None;
                task.window = None;
                task.pid = None;
                task.ended_at_ms
                    .get_or_insert(end.max(task.started_at_ms.unwrap_or(0)));
            }
            _ => {}
        }
    }

    /// `orch retry`: the failed task pending again with a fresh set of attempts, and the
    /// tasks it blocked that nothing else blocks pending too.
    fn retry(
        &mut self,
        t: u64,
        id: &TaskId,
        request: &str,
        message: &Option<String>,
        unblocked: &[TaskId],
    ) {
        self.retry_requests.insert(request.to_string());
        let Some(task) = self.tasks.get_mut(id) else {
            return self.anomaly(t, format!("a retry of task {id}, which is not in the plan"));
        };
        if task.state != TaskStatus::Failed {
            let state = task.state;
            return self.anomaly(t, format!("a retry of task {id}, which is {state}"));
        }
        task.retried = Some(Retried {
            after_attempt: task.attempts,
            reason: task.reason.take(),
            message: message.clone(),
        });
        task.retry_base = task.attempts;
        task.state = TaskStatus::Pending;
        task.feedback.clear();
        task.interrupted = None;
        for dependent in unblocked {
            match self.tasks.get_mut(dependent) {
                Some(d) if d.state == TaskStatus::Blocked => {
                    d.state = TaskStatus::Pending;
                    d.reason = None;
                }
                _ => self.anomalies.push(format!(
                    "at {t}: task {dependent}, unblocked by the retry of {id}, was not blocked"
                )),
            }
        }
    }

    /// `orch tell`: the message kept for the task's next attempts; a done task reopened is
    /// pending again, with a fresh set of attempts and no commit of its own yet.
    fn told(&mut self, t: u64, id: &TaskId, request: &str, message: &str, reopened: bool) {
        self.tell_requests.insert(request.to_string());
        let Some(task) = self.tasks.get_mut(id) else {
            return self.anomaly(
                t,
                format!("a message to task {id}, which is not in the plan"),
            );
        };
        task.told = Some(Told {
            after_attempt: task.attempts,
            reopened,
            message: message.to_string(),
        });
        if reopened {
            if task.state != TaskStatus::Done {
                let state = task.state;
                return self.anomaly(t, format!("task {id} reopened, which is {state}"));
            }
            task.state = TaskStatus::Pending;
            task.retry_base = task.attempts;
            task.feedback.clear();
            task.interrupted = None;
            task.commit = None;
            task.reason = None;
            self.verdicts.remove(id);
        }
    }

    fn anomaly(&mut self, t: u64, what: String) {
        self.anomalies
            .push(format!("at {t}: {what}: event ignored"));
    }

    /// The accepted plan, once there is one.
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// The latest planning attempt started (0: none).
    pub fn planning_attempt(&self) -> u32 {
        self.planning.attempt
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished(_))
    }

    /// Whether `orch resume` may continue the run: no engine alive (the run's lock says), and
    /// not ended for good (succeeded or failed).
    pub fn is_resumable(&self, engine_alive: bool) -> bool {
        !engine_alive
            && !matches!(
                self.phase,
                Phase::Finished(Outcome::Succeeded | Outcome::Failed)
            )
    }

    pub fn outcome(&self) -> Option<Outcome> {
        match self.phase {
            Phase::Finished(outcome) => Some(outcome),
            _ => None,
        }
    }

    pub fn task(&self, id: &TaskId) -> Option<&TaskState> {
        self.tasks.get(id)
    }

    /// The tasks in plan order.
    pub fn tasks_in_order(&self) -> impl Iterator<Item = &TaskState> {
        self.order.iter().filter_map(|id| self.tasks.get(id))
    }

    /// The running tasks, in plan order.
    pub fn running(&self) -> impl Iterator<Item = &TaskState> {
        self.tasks_in_order()
            .filter(|t| t.state == TaskStatus::Running)
    }

    /// Whether a plan was accepted and none of its tasks is pending or running.
    pub fn is_settled(&self) -> bool {
        self.plan.is_some()
            && self
                .tasks
                .values()
                .all(|t| !matches!(t.state, TaskStatus::Pending | TaskStatus::Running))
    }

    /// Every task that depends on `id`, directly or not, in plan order.
    pub fn dependents_of(&self, id: &TaskId) -> Vec<TaskId> {
        let mut found: BTreeSet<&TaskId> = BTreeSet::new();
        let mut frontier = vec![id];
        while let Some(current) = frontier.pop() {
            for task in self.tasks.values() {
                if task.depends_on.contains(current) && &task.id != id && found.insert(&task.id) {
                    frontier.push(&task.id);
                }
            }
        }
        self.order
            .iter()
            .filter(|t| found.contains(t))
            .cloned()
            .collect()
    }
}
