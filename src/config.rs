//! `orch.yaml`: the agents a project can use, which of them plays which role, and the limits,
//! gates and ownership policy of a run. Parsing is strict so that a typo is an error, not a
//! silently ignored setting.

mod budget;
mod load;
mod notify;
mod project_kind;
mod redact;
mod sample;
mod schema;
mod starter;

pub use self::notify::Notify;
pub use budget::{Budget, OnBudget};
pub use load::{ConfigError, load, parse};
pub use project_kind::{MARKERS as PROJECT_MARKERS, ProjectGates, detect as detect_project};
pub use sample::{
    SampleAgent, Scope as SampleScope, check_sample, notice as sample_notice, sample_agents,
    summary as sample_summary,
};
pub use schema::{
    AgentConfig, AgentKind, Config, Gates, LeftoverPolicy, Limits, Network, Ownership,
    PlanApproval, Roles, SandboxMode, SandboxPaths, TddMode, ViolationPolicy,
};
pub use starter::{INSTALL as AGENT_INSTALL, starter_config};

/// The config file's name, looked up in the project root unless `--config` names another.
pub const FILE_NAME: &str = "orch.yaml";
