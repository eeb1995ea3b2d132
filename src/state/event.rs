//! The journal's vocabulary: one event per state transition. Each event carries everything its
//! transition needs (a whole plan, a refusal's problems, a retry's reasons), because replay
//! reads nothing but the journal.

use serde::{Deserialize, Serialize};

use super::warning::WarningKind;
use crate::paths::ProjectPath;
use crate::plan::{Plan, TaskId};

/// One line of `events.jsonl`: `{"t":<ms>,"event":"<name>",...fields}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Record {
    /// Milliseconds since the Unix epoch, taken when the event was journaled.
    pub t: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Written by `orch up` once the run directory is complete, before the engine exists.
    RunStarted {
        run_id: String,
        request_bytes: usize,
    },
    EngineStarted {
        pid: u32,
    },
    /// A new engine took over the run (`orch resume`): its previous engine crashed, was
    /// killed, lost its window or tmux server, or ended the run `interrupted` or `stopped`. The
    /// run goes back to where it was, and the engine reconciles what is still alive.
    RunResumed {},
    SnapshotTaken {
        tree: String,
    },
    PlanningStarted {
        attempt: u32,
    },
    PlanningAgentStarted {
        attempt: u32,
        pane: String,
        pid: u32,
    },
    /// The attempt's plan was refused; `problems` become the next attempt's feedback.
    PlanningRefused {
        attempt: u32,
        problems: Vec<String>,
    },
    PlanAccepted {
        plan: Plan,
    },
    /// The attempt's planner was lost to an interruption (stopped by orch, or gone while no
    /// engine watched): not a refusal, and not counted against `planner_retries`.
    PlanningInterrupted {
        attempt: u32,
        reason: String,
    },
    /// Planning gave up for good; a `RunFinished` follows.
    PlanningFailed {
        reason: String,
    },
    /// Written before the task's window is created, so that a crash in between still leaves
    /// a trace of the attempt (and its directory) to reconcile.
    TaskStarted {
        task: TaskId,
        attempt: u32,
        /// The agent CLI's session this attempt continues (after an interruption), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        continues: Option<String>,
    },
    TaskAgentStarted {
        task: TaskId,
        attempt: u32,
        pane: String,
        window: String,
        pid: u32,
    },
    /// The agent's process ended; the task stays `running` until it is judged done or failed.
    TaskExited {
        task: TaskId,
        attempt: u32,
        code: Option<i32>,
        signal: Option<i32>,
        /// When the agent ended, from its exit record: an exit journaled late (by an engine
        /// resumed after it) still counts the attempt's own running time, not the downtime.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ended_at_ms: Option<u64>,
    },
    TaskDone {
        task: TaskId,
        attempt: u32,
    },
    /// Failed for good: no attempt follows. Its dependents get `TaskBlocked`.
    TaskFailed {
        task: TaskId,
        attempt: u32,
        reason: String,
    },
    /// The attempt failed but another is allowed: back to `pending`, with the reasons the next
    /// attempt's prompt must carry.
    TaskRequeued {
        task: TaskId,
        attempt: u32,
        reasons: Vec<String>,
    },
    TaskBlocked {
        task: TaskId,
        reason: String,
    },
    /// The attempt's agent was lost to an interruption (Ctrl-C, `orch down`, the engine or the
    /// tmux server dying), not to a failure of its own: back to `pending`, and the next attempt
    /// is told that this one was interrupted and its partial work is in place.
    TaskInterrupted {
        task: TaskId,
        attempt: u32,
        reason: String,
        /// The agent CLI's session, when its output named one: the next attempt continues it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
        /// When the attempt stopped, where that is known better than by the time of this
        /// event (an interruption found by a resumed engine happened while none watched).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ended_at_ms: Option<u64>,
    },
    /// `orch retry`: a task that failed for good gets a fresh set of attempts (`retries` more
    /// after the one that starts next), and the tasks it blocked (`unblocked`: those no
    /// other failed task still blocks) are pending again. `id` is its request's, so that a
    /// request is applied once however often an engine reads it; `message`, the user's words
    /// for the next attempts' prompts, whole.
    TaskRetried {
        task: TaskId,
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unblocked: Vec<TaskId>,
    },
    /// `orch tell TASK`: the user's message for the task's next attempts (`id` is its
    /// request's, applied once). A running task's attempt is then interrupted (journaled next,
    /// stopped by the user: not a failure) and the next attempt continues its agent's session
    /// where the CLI can; a done task whose dependents had not started is `reopened`: pending
    /// again, to be checked and judged again.
    TaskTold {
        task: TaskId,
        id: String,
        message: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reopened: bool,
    },
    /// The first write seen to a file a task owns, and when it was made: the TDD gate's
    /// evidence (were the tests written before the implementation?), kept across a resume.
    FirstWrite {
        task: TaskId,
        /// One of the task's files, as the plan names it.
        path: ProjectPath,
        at_ms: u64,
    },
    Violation {
        n: u32,
        /// As seen on disk, not a checked `ProjectPath` (see `crate::paths`): any byte a file
        /// name may hold, `.git/…`, or absolute for a common git directory outside the project.
        path: String,
        /// created | modified | removed
        change: String,
        suspects: Vec<TaskId>,
        /// recorded | reverting | reverted | deleted | stopped | found-by-sweep, or what
        /// went wrong (`revert failed: ...`, saying where the content is)
        action: String,
        /// Where the violating content was saved, relative to the project root
        /// (`.orch/runs/<id>/violations/<n>/...`).
        saved: Option<String>,
        /// Found by comparing the tree with what the journal says it should be (a change the
        /// watcher did not see: made while no engine watched, or lost to an overflow).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        swept: bool,
        /// Under `isolation: task`, the task whose own worktree it was found in (`path` is
        /// relative to that worktree); None in the run's tree.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worktree: Option<TaskId>,
    },
    /// How a violation's revert went, journaled after it (the violation itself, `reverting`,
    /// is journaled before anything is touched).
    ViolationSettled {
        n: u32,
        action: String,
        saved: Option<String>,
    },
    RunFinished {
        outcome: Outcome,
        reason: Option<String>,
    },
    EngineStopped {
        reason: String,
    },
    /// A gate's result, for one task's attempt or (without `task`) for the whole run.
    GateChecked {
        task: Option<TaskId>,
        attempt: u32,
        gate: String,
        /// passed | failed | skipped
        status: String,
        detail: String,
        /// The gate's output, relative to the project root.
        log: Option<String>,
    },
    /// The judge agent is asked about these tasks (their gates passed).
    JudgeStarted {
        attempt: u32,
        tasks: Vec<TaskId>,
    },
    JudgeAgentStarted {
        attempt: u32,
        pane: String,
        pid: u32,
    },
    /// The judge's answer held no usable verdict; it is asked again if attempts are left.
    JudgeRefused {
        attempt: u32,
        problem: String,
    },
    JudgeVerdict {
        attempt: u32,
        verdicts: Vec<TaskVerdict>,
    },
    /// The oracle is asked for advice on a task that failed twice.
    OracleStarted {
        task: TaskId,
        attempt: u32,
    },
    OracleAdvice {
        task: TaskId,
        advice: String,
    },
    /// The agents run unconfined although the config asks for a sandbox where it works
    /// (`sandbox: auto`): why it does not work here. Said once per run.
    SandboxOff {
        reason: String,
    },
    /// A task's agent tried to write where its sandbox does not let it (the lines of its
    /// output that say so): refused, and reported.
    SandboxRefused {
        task: TaskId,
        attempt: u32,
        lines: Vec<String>,
    },
    /// Processes an agent left running when it exited, found by orch's markers (see
    /// [`crate::agent_process::leftovers`]): stopped, or kept as `limits.leftovers` says. Journaled before
    /// they are stopped; `processes` names at most [`crate::agent_process::leftovers::LISTED_MAX`] of `count`.
    Leftovers {
        /// The task whose agent it was (none for the planner, the judge, an oracle).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<TaskId>,
        /// The attempt, as its directory in the run directory (`tasks/a/1`, `planner/2`).
        attempt_dir: String,
        kept: bool,
        /// Left in the agent's sandbox, which ended with it (so they did too).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        in_box: bool,
        count: usize,
        processes: Vec<crate::agent_process::leftovers::Leftover>,
    },
    /// Something went wrong that does not stop the run (a watch that failed, a report that
    /// could not be written...): journaled so that `orch status`, the report and the control
    /// window show it for the rest of the run (see [`super::warning`]).
    Warning {
        kind: WarningKind,
        message: String,
    },
    /// A worktree run committed the planner's specs (and the plan, if kept in the tree) on
    /// its branch.
    SpecsCommitted {
        commit: String,
        files: Vec<ProjectPath>,
    },
    /// A worktree run committed an accepted task: exactly its owned files, on its branch.
    TaskCommitted {
        task: TaskId,
        attempt: u32,
        commit: String,
        files: Vec<ProjectPath>,
    },
    /// `isolation: task`: task `task`'s worktree was made at `path`, on the run branch's tip
    /// `start` (so it holds its dependencies' commits), before its first agent launched there.
    TaskWorktree {
        task: TaskId,
        path: std::path::PathBuf,
        start: String,
    },
    /// `isolation: task`: task `task`'s worktree was removed (its work committed, or the run
    /// discarded).
    TaskWorktreeRemoved {
        task: TaskId,
    },
    /// `orch merge` brought the run's work into the user's branch (`into`: its name, or
    /// `HEAD` when detached) as `commit`.
    Merged {
        into: String,
        commit: String,
        squash: bool,
        /// The run branch's tip that was merged: a commit the branch gains later (a resumed
        /// run) is unmerged work.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tip: Option<String>,
    },
    /// `orch discard` removed the run's worktree (and its branch, when `branch_deleted`).
    Discarded {
        branch_deleted: bool,
    },
    /// `orch budget` raised the run's budget by this much (`id`: its request's, so that a
    /// request is applied once however often an engine reads it).
    BudgetRaised {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usd: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokens: Option<u64>,
    },
    /// The run's use reached `percent` (80: the user is told; 100: nothing new launches) of
    /// its budget as it then was (since the latest raise).
    BudgetCrossed {
        percent: u32,
        /// What the run had used: its cost (of the agents whose CLI reports one) and tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usd: Option<f64>,
        tokens: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit_usd: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit_tokens: Option<u64>,
    },
    /// A valid plan waits for the user's approval (`orch up --review`, `plan_approval: ask`):
    /// nothing is dispatched until `orch approve`. Its file in the run directory (`plan.json`)
    /// may be edited meanwhile.
    PlanHeld {
        plan: Plan,
    },
    /// `orch approve` (its request `id`) was refused: the plan file has these problems, and
    /// the plan still waits.
    ApprovalRefused {
        id: String,
        problems: Vec<String>,
    },
    /// `orch tell planner` (its request `id`) dropped the plan held: the planner plans again
    /// with the user's feedback, kept whole (any size) in `file`, relative to the run
    /// directory (`feedback/<id>.md`), of `bytes` bytes.
    PlanRevisionAsked {
        id: String,
        file: String,
        bytes: usize,
    },
    /// `orch approve` (its request `id`) took the plan, edited (it differs from the plan
    /// held) or not; a `PlanAccepted` follows.
    PlanApproved {
        id: String,
        edited: bool,
    },
}

/// The judge's word on one task.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TaskVerdict {
    pub id: TaskId,
    /// pass | fail
    pub verdict: String,
    pub reason: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Stopped on purpose (`orch down`).
    Stopped,
    /// The engine was interrupted (signal, closed window); `orch resume` may pick it up.
    Interrupted,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Stopped => "stopped",
            Outcome::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_flat_json_object() {
        let record = Record {
            t: 5,
            event: Event::TaskExited {
                task: TaskId::new("2"),
                attempt: 1,
                code: Some(0),
                signal: None,
                ended_at_ms: None,
            },
        };
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(
            line,
            r#"{"t":5,"event":"task_exited","task":2,"attempt":1,"code":0,"signal":null}"#
        );
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn every_shape_round_trips() {
        let plan: Plan = serde_json::from_str(
            r#"{"specs":[{"file":"s.md"}],"tasks":[{"id":"api","agent":"a","task":"t","files":["x"]}]}"#,
        )
        .unwrap();
        let events = vec![
            Event::RunResumed {},
            Event::PlanAccepted { plan },
            Event::PlanningInterrupted {
                attempt: 2,
                reason: "Ctrl-C".into(),
            },
            Event::TaskInterrupted {
                task: TaskId::new("a"),
                attempt: 1,
                reason: "the tmux server died".into(),
                session_id: Some("s-1".into()),
                ended_at_ms: Some(3),
            },
            Event::TaskInterrupted {
                task: TaskId::new("7"),
                attempt: 3,
                reason: "gone".into(),
                session_id: None,
                ended_at_ms: None,
            },
            Event::RunFinished {
                outcome: Outcome::Interrupted,
                reason: None,
            },
            Event::Violation {
                n: 1,
                path: "a b\n".into(),
                change: "created".into(),
                suspects: vec![TaskId::new("1"), TaskId::new("api")],
                action: "found-by-sweep".into(),
                saved: Some("violations/1/a b".into()),
                swept: true,
                worktree: None,
            },
            Event::ViolationSettled {
                n: 1,
                action: "reverted".into(),
                saved: None,
            },
            Event::Warning {
                kind: WarningKind::Unpoliced,
                message: "cannot watch x: too many\ndirectories".into(),
            },
        ];
        for event in events {
            let record = Record { t: 1, event };
            let line = serde_json::to_string(&record).unwrap();
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), record);
        }
    }

    #[test]
    fn unknown_fields_from_a_newer_orch_are_ignored() {
        let line = r#"{"t":1,"event":"engine_started","pid":7,"host":"x"}"#;
        let record: Record = serde_json::from_str(line).unwrap();
        assert_eq!(record.event, Event::EngineStarted { pid: 7 });
    }
}
