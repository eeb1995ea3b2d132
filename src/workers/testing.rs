//! Calls and agents for the adapters' unit tests.

use std::collections::BTreeMap;
use std::path::Path;

use super::AgentCall;
use crate::config::{AgentConfig, AgentKind};
use crate::paths::ProjectPath;
use crate::plan::TaskId;
use crate::prompt::Role;

pub(super) fn agent(kind: AgentKind) -> AgentConfig {
    AgentConfig {
        kind,
        model: Some("m1".into()),
        args: vec![],
        env: BTreeMap::new(),
        command: None,
        allow_shell: true,
        sample: false,
        sandbox: None,
        network: None,
    }
}

/// A call for task 7 of a project in `/p` (leaked: tests only).
pub(super) fn call<'a>(
    agent: &'a AgentConfig,
    role: Role,
    files: &'a [ProjectPath],
) -> AgentCall<'a> {
    let task: &'static TaskId = Box::leak(Box::new(TaskId::new("7")));
    AgentCall {
        name: "mine",
        agent,
        role,
        task: (role == Role::Worker).then_some(task),
        files,
        prompt_file: Path::new("/p/.orch/runs/r/tasks/7/1/prompt.md"),
        project_dir: Path::new("/p"),
        run_dir: Path::new("/p/.orch/runs/r"),
        session: None,
    }
}
