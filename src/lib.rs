//! orch runs a team of AI coding agents in tmux: a planner writes specs and a plan, workers
//! each own their files, a judge checks the result. See README.md for the user's view and
//! its Architecture section for how these modules fit together.

pub mod agent_process;
pub mod approval;
pub mod budget;
mod cli;
mod commands;
pub mod config;
pub mod duration;
pub mod engine;
pub mod error;
pub mod flood;
pub mod format;
pub mod git;
pub mod invocation;
pub mod judge;
pub mod layout;
pub mod notify;
pub mod paths;
pub mod plan;
pub mod planner;
pub mod private;
pub mod progress;
pub mod project;
pub mod prompt;
pub mod report;
pub mod sandbox;
pub mod scripted;
pub mod snapshot;
pub mod state;
pub mod tmux;
pub mod transcript;
pub mod watch;
pub mod workers;
pub mod workspace;

pub use cli::run;
