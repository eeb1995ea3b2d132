//! An agent as an operating-system process: how its pane starts it (the generated launcher),
//! what the pane runs (the agent, its logs, its exit record), an agent run as a plain
//! subprocess (for `orch plan` and gates), and the processes an agent leaves behind, found by
//! the variables they inherit (orphans of a dead run, leftovers of an attempt).

pub mod launcher;
pub mod leftovers;
pub mod orphans;
pub mod run;
pub mod subprocess;
