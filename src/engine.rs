//! The engine: one event loop that owns a run's state. It runs in the session's `control`
//! window. Watchers (project files, run files), tmux reconciliation, timers and signals feed
//! it through channels; every state change is journaled before it takes effect.

mod agents;
mod approval;
mod barrier;
mod budget;
mod commits;
mod committer;
mod core;
mod crash;
mod disk;
mod dispatcher;
mod event_loop;
mod gates;
mod interrupted;
mod isolation;
mod judging;
mod keeper;
mod launch;
mod leftovers;
mod notices;
mod ownership;
mod panes;
mod planning;
mod resume;
pub mod retry;
mod revert;
mod sched;
mod sweep;
mod tasks;
pub mod tell;
mod ui;
mod warnings;
mod watching;

#[cfg(test)]
mod approval_tests;
#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod driven;
#[cfg(test)]
mod driven_tests;
#[cfg(test)]
mod fake_run;
#[cfg(test)]
mod retry_tests;
#[cfg(test)]
mod tell_tests;
#[cfg(test)]
mod tests;

pub use core::start;
