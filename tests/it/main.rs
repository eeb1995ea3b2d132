//! orch's integration tests, as one test binary: each module below was a test binary of its
//! own, and `support` is the harness they share (real tmux on private servers, one way to
//! start and watch a run, waiting on conditions instead of sleeping).
//!
//! One binary links orch once and runs every test on one pool of threads. Tests share the
//! process, so none may change what is process-wide (the environment, the working directory,
//! the umask, signal dispositions): each sets what it needs on the commands it starts.
//!
//! `cargo test --test it MODULE` runs one module's tests (e.g. `cargo test --test it resume`).

mod agent_run;
mod approve;
mod bounded;
mod budget;
mod cli;
mod doctor;
mod hostile_tree;
mod isolation;
mod judge;
mod leftovers;
mod model_server;
mod multi;
mod nothing_lost;
mod notify;
mod paths_contract;
mod real_clis;
mod real_clis_resume;
mod real_clis_tell;
mod request;
mod resume;
mod retry;
mod review;
mod review_e2e;
mod sandbox;
mod secrets;
mod support;
mod tell;
mod tmux_control;
mod tmux_real;
mod up;
mod wait;
mod warnings;
mod watch_tree;
mod worktree;
