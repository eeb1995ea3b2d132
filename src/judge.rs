//! The judge: gates that must pass after a task's agent finishes (and once more for the whole
//! run), the judge agent's verdict, and the diff summaries both are shown.

mod diffstat;
mod gates;
mod verdict;

pub use diffstat::{FileStat, diffstat};
pub use gates::{
    GateOutcome, GateStatus, command_gate, spec_gate, tdd_gate, test_file_gate, violation_gate,
};
pub use verdict::{Verdict, parse_verdict};
