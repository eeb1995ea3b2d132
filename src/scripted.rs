//! orch's built-in scripted agent (`kind: scripted`, run as `orch scripted-agent PROMPT_FILE`):
//! deterministic, offline, and standing in for a real agent CLI in the demo and the tests. It
//! is a sample, not an agent: outside its configs that say `sample: true` (the demo's, the
//! tests'), `orch up` and `orch plan` refuse it (see `config::check_sample`). It reads the
//! `ORCH_CONTEXT` line of its prompt and acts by role:
//!
//! - **planner**: writes `specs/*.md`, then answers with a plan for wordstat, a small
//!   multi-module POSIX sh project (and writes it to the context's `plan_file` too);
//! - **worker**: writes the task's files, tests first; wordstat paths get their real content,
//!   others generic content by extension;
//! - **judge**: a verdict JSON, `pass` unless the prompt says a gate failed;
//! - **oracle**: short advice.
//!
//! Knobs, from the environment: `ORCH_SCRIPTED_PACE` (a wait before each file written, e.g.
//! `700ms`) and `ORCH_SCRIPTED_FAULT` (misbehaviours for tests, see [`Fault`]).

mod agent;
mod demo;
mod fault;
mod files;
mod generic;
mod judge;
mod planner;
mod specs;
mod wordstat;
mod worker;

#[cfg(test)]
mod e2e;
#[cfg(test)]
mod testing;

pub use agent::{PACE_ENV, Settings, run, run_with};
pub use demo::{DEMO_REQUEST, demo_files};
pub use fault::{FAULT_ENV, Fault, FaultError, FaultSpec, Faults};
