//! Exit codes and the errors that choose them. Commands return `anyhow::Result`; the CLI picks
//! the exit code from the error's type, so that only errors a caller branches on need a type.

use crate::config::ConfigError;

/// Success.
pub const EXIT_OK: u8 = 0;
/// The thing checked is bad: an invalid plan, a failed planning or run.
pub const EXIT_FAILED: u8 = 1;
/// Usage or configuration error: the user must change how orch is called or configured.
pub const EXIT_USAGE: u8 = 2;
/// `orch wait`: the run cannot progress (its engine never started or is gone, or its tmux
/// session is gone), so waiting longer would never end.
pub const EXIT_STALLED: u8 = 3;
/// `orch wait`: the run's budget is used up and nothing runs any more; it waits for `orch
/// budget +AMOUNT`.
pub const EXIT_BUDGET: u8 = 4;
/// `orch wait`: the run's plan waits for the user's approval (`orch up --review`,
/// `plan_approval: ask`); nothing runs until `orch approve`.
pub const EXIT_APPROVAL: u8 = 5;
/// `orch wait --timeout` ran out.
pub const EXIT_TIMEOUT: u8 = 124;

/// A mistake in how orch was called (a missing file, a bad argument, a missing tool), with
/// the message saying what to do instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Shorthand for returning a [`UsageError`].
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The exit code an error stands for.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<ConfigError>() || cause.is::<UsageError>() {
            return EXIT_USAGE;
        }
    }
    EXIT_FAILED
}
