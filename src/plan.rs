//! The plan: specs to write first, then tasks, each with an agent, the files it alone may
//! write, and the tasks it waits for. Checked as a whole before anything runs.

mod extract;
mod model;
mod overlap;
mod validate;

pub use extract::{extract_json, extract_plan};
pub use model::{Plan, Spec, Task, TaskId};
pub use validate::{Problem, ProblemKind, parse_and_validate, validate, waves};
