//! A run's state and where it lives. Every change is first appended to the run's journal
//! (`events.jsonl`) and synced, and only then takes effect; the state is what replaying the
//! journal gives. So `orch status` reads a run without its engine, and a new engine picks up
//! where a dead one stopped. A lock per run keeps one engine per run, and the checkout lock one run in place per
//! project (see `lock`).

mod approval;
mod bounded;
pub use bounded::TEXT_MAX;
mod budget;
pub mod environ;
mod event;
mod journal;
mod lock;
mod preflight;
pub mod requests;
mod run_dir;
mod run_state;
mod status;
mod syncer;
mod warning;

#[cfg(test)]
mod interruption_tests;
#[cfg(test)]
mod replay_tests;

pub use approval::{ApprovalRecord, ApprovalRefusal, Approved};
pub use budget::{BudgetRecord, Raise};
pub use event::{Event, Outcome, Record, TaskVerdict, now_ms};
pub use journal::{Journal, Replay, read_journal};
pub use lock::{
    CheckoutLock, CommandLock, EngineLock, Holder, LockError, RunLock, UpLock, checkout_holder,
    live_runs, run_holder,
};
pub use preflight::check_writable;
pub(crate) use preflight::free_bytes;
pub use run_dir::{RunDir, RunInfo, create_run, is_run_id};
pub use run_state::{
    AttemptEnd, AttemptOutcome, AttemptRecord, GateRecord, Interruption, LeftoverRecord,
    MergeRecord, Phase, PlanningState, Retried, RunState, SandboxRefusal, TaskState, TaskStatus,
    Told, ViolationRecord,
};
pub use status::{PlanningView, Status, TaskView, ViolationView};
pub use warning::{WarningKind, WarningRecord};
