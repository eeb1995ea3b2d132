//! `orch status --json`: the run state as a stable JSON shape for scripts and tests. Field
//! names here are a public interface: add, do not rename.

use serde::Serialize;

use crate::paths::ProjectPath;
use crate::plan::TaskId;

use super::run_state::{AttemptRecord, RunState, TaskStatus};
use crate::workers::Usage;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub run_id: String,
    /// starting | planning | running | succeeded | failed | stopped | interrupted, as the
    /// journal says: a run whose engine died unannounced stays `running` with
    /// `engine_alive: false`.
    pub phase: &'static str,
    pub engine_alive: bool,
    pub engine_pid: Option<u32>,
    /// Whether `orch resume` can continue the run: no engine is alive and it has not
    /// succeeded or failed.
    pub resumable: bool,
    /// Why the latest engine stopped without ending the run, when it said.
    pub engine_stopped: Option<String>,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    /// Why the run finished as it did.
    pub reason: Option<String>,
    pub planning: PlanningView,
    /// In plan order.
    pub tasks: Vec<TaskView>,
    pub violations: Vec<ViolationView>,
    /// Journal events that did not fit the state and were ignored.
    pub anomalies: Vec<String>,
    /// Why the agents run without a sandbox although the config asked for one where it
    /// works (`sandbox: auto`), when they do.
    pub sandbox_off: Option<String>,
    /// Writes the agents' sandboxes refused: `{task, attempt, line}`.
    pub sandbox_refusals: Vec<super::run_state::SandboxRefusal>,
    /// What agents left running when they exited: stopped, or kept (`limits.leftovers`).
    pub leftovers: Vec<super::run_state::LeftoverRecord>,
    /// The engines' warnings, in order: `{kind, message, at_ms}`, `kind` one of `unpoliced`
    /// (part of the project not policed as it should be), `unrecorded` (part of the record
    /// not written or lost), `agents` (the engine's hold on agent processes weaker, or
    /// processes it stopped), `workspace` (the run works in place although a branch was the
    /// setting, or a commit on its branch could not be made), `notify` (the user may not have
    /// been told something: a hook failed or hung, a desktop notice failed), `budget` (the
    /// budget may not hold as set, or a raise was not applied), or `other` (a kind of a newer
    /// orch).
    pub warnings: Vec<super::warning::WarningRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanningView {
    pub attempt: u32,
    /// Why the latest attempt was refused.
    pub problems: Vec<String>,
    /// Why planning gave up.
    pub failed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    /// A number or a string, as in the plan.
    pub id: TaskId,
    pub agent: String,
    /// pending | running | done | failed | blocked
    pub state: TaskStatus,
    pub files: Vec<ProjectPath>,
    pub depends_on: Vec<TaskId>,
    pub attempts: u32,
    /// How many of `attempts` were interrupted (not failures of the task).
    pub interruptions: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub reason: Option<String>,
    pub started_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
    pub pane: Option<String>,
    pub window: Option<String>,
    /// Every attempt started, in order: how it ended and why.
    pub attempt_history: Vec<AttemptRecord>,
    /// Its latest `orch retry`: the attempt that had failed for good, why, and the user's
    /// message; its attempts since count against `limits.retries` afresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retried: Option<super::run_state::Retried>,
    /// The user's latest `orch tell` message: after which attempt, whether it reopened the
    /// task, and the message, whole (it is in the task's next attempts' prompts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub told: Option<super::run_state::Told>,
    /// The last line its agent showed (for an agent CLI, its transcript's, not raw JSON);
    /// read from the attempt's logs by `orch status`.
    pub last_output: Option<String>,
    /// Token use and cost so far over its attempts, where its agent reports them; read from
    /// the attempts' logs by `orch status`.
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViolationView {
    pub n: u32,
    pub path: String,
    /// created | modified | removed
    pub change: String,
    pub suspects: Vec<TaskId>,
    /// recorded | reverting | reverted | deleted | stopped | found-by-sweep, or what went
    /// wrong (`revert failed: ...`, saying where the content is and how to put it back)
    pub action: String,
    /// Milliseconds since the epoch.
    pub at: u64,
    /// Where the violating content was saved, relative to the run directory.
    pub saved: Option<String>,
    /// Found by a sweep (a change no watcher saw), not by the watcher.
    pub swept: bool,
}

impl RunState {
    /// The status view. `engine_alive` comes from the run's lock, not the journal: a crashed
    /// engine never says it stopped.
    pub fn status(&self, engine_alive: bool) -> Status {
        Status {
            run_id: self.run_id.clone(),
            phase: self.phase.name(),
            engine_alive,
            engine_pid: self.engine_pid,
            resumable: self.is_resumable(engine_alive),
            engine_stopped: self.engine_stopped.clone(),
            started_at_ms: self.started_at_ms,
            finished_at_ms: self.finished_at_ms,
            reason: self.finish_reason.clone(),
            planning: PlanningView {
                attempt: self.planning.attempt,
                problems: self.planning.problems.clone(),
                failed: self.planning.failed.clone(),
            },
            tasks: self
                .tasks_in_order()
                .map(|t| TaskView {
                    id: t.id.clone(),
                    agent: t.agent.clone(),
                    state: t.state,
                    files: t.files.clone(),
                    depends_on: t.depends_on.clone(),
                    attempts: t.attempts,
                    interruptions: t.interruptions,
                    exit_code: t.exit_code,
                    signal: t.signal,
                    reason: t.reason.clone(),
                    started_at_ms: t.started_at_ms,
                    ended_at_ms: t.ended_at_ms,
                    pane: t.pane.clone(),
                    window: t.window.clone(),
                    attempt_history: t.history.clone(),
                    retried: t.retried.clone(),
                    told: t.told.clone(),
                    last_output: None,
                    usage: None,
                })
                .collect(),
            violations: self
                .violations
                .iter()
                .map(|v| ViolationView {
                    n: v.n,
                    path: v.path.clone(),
                    change: v.change.clone(),
                    suspects: v.suspects.clone(),
                    action: v.action.clone(),
                    at: v.at_ms,
                    saved: v.saved.clone(),
                    swept: v.swept,
                })
                .collect(),
            anomalies: self.anomalies.clone(),
            sandbox_off: self.sandbox_off.clone(),
            sandbox_refusals: self.sandbox_refusals.clone(),
            leftovers: self.leftovers.clone(),
            warnings: self.warnings.clone(),
        }
    }

    /// [`RunState::status`] as JSON.
    pub fn status_json(&self, engine_alive: bool) -> serde_json::Value {
        // Only map keys that are not strings can fail to serialize, and Status has none.
        serde_json::to_value(self.status(engine_alive))
            .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    }
}
