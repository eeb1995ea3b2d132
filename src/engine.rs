//! The engine: one event loop that owns a run's state. It runs in the session's `control`
//! window. Watchers (project files, run files), tmux reconciliation, timers and signals feed
//! it through channels; every state change is journaled before it takes effect.

mod barrier;
mod core;
mod crash;
mod disk;
mod event_loop;
mod interrupted;
mod judging;
mod keeper;
mod leftovers;
mod ownership;
mod panes;
mod planning;
mod resume;
mod revert;
mod sweep;
mod tasks;
mod ui;
mod warnings;

#[cfg(test)]
mod fake_run;
#[cfg(test)]
mod tests;

pub use core::start;
