//! `orch.yaml`: the agents a project can use, which of them plays which role, and the limits,
//! gates and ownership policy of a run. Parsing is strict so that a typo is an error, not a
//! silently ignored setting.

mod load;
mod schema;
mod starter;

pub use load::{ConfigError, load, parse};
pub use schema::{
    AgentConfig, AgentKind, Config, Gates, Limits, Network, Ownership, Roles, SandboxMode,
    SandboxPaths, TddMode, ViolationPolicy,
};
pub use starter::starter_config;

/// The config file's name, looked up in the project root unless `--config` names another.
pub const FILE_NAME: &str = "orch.yaml";
