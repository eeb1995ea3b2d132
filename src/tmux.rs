//! orch's own small interface to tmux.
//!
//! - `Tmux` (in `types`) is the trait the engine uses; `WindowSpec` says what a new window
//!   runs, `PaneInfo`/`PaneState` are what comes back.
//! - `RealTmux` (in `real`) runs the tmux program, always as `tmux [-L socket] [-f
//!   config] ...`; commands are given as argv and executed without a shell, and every
//!   pane gets `remain-on-exit on` in the same tmux invocation that creates it (the
//!   module doc of `real` explains why that has no race).
//!   `with_control_mode` sends the commands through one long-lived control-mode client
//!   instead (`control`), which the engine uses: no process per command; `new_windows`
//!   pipelines many command lists through it, one round trip for all.
//!   `hooks` makes `set_hook` cover a whole session; `client` attaches the user's
//!   terminal and nudges a server that missed a child's exit.
//! - `FakeTmux` (in `fake`) is an in-memory stand-in for unit tests of the engine (built
//!   for the crate's unit tests only).
//! - `PrivateServer` (in `server`) is a throwaway server on a unique socket, killed on
//!   drop: `orch doctor` and the integration tests use it.
//! - `socket` pins a server by its socket path (`-S`), which reaches it from inside any
//!   tmux and from a plain shell alike; `orch up` records that path in `run.json`.
//! - `args` holds the quoting rules: what tmux would otherwise reinterpret.
//!
//! Errors a caller branches on are `TmuxError` variants.

mod args;
mod client;
mod control;
mod error;
#[cfg(test)]
mod fake;
mod hooks;
mod parse;
#[cfg(test)]
mod pipeline_tests;
mod real;
mod server;
mod socket;
mod types;

pub use args::{escape_format, tmux_quote};
pub use error::TmuxError;
#[cfg(test)]
pub use fake::{Call, FakePane, FakeTmux};
pub use real::{CONFIG_ENV, RealTmux, SOCKET_ENV};
pub use server::PrivateServer;
pub use socket::{expected_socket_path, inside_tmux};
pub use types::{PaneInfo, PaneState, Tmux, WindowSpec};
