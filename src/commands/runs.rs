//! Finding a run for the commands that read one (status, logs, wait, attach, down): the
//! latest in this project unless `--run` names another, read from its journal alone.

use crate::project::Project;
use crate::state::{self, RunDir, RunInfo, RunState};
use crate::tmux::RealTmux;

use super::Global;
use crate::error::usage;

pub(super) struct Loaded {
    pub project: Project,
    pub dir: RunDir,
    pub info: RunInfo,
    pub state: RunState,
    pub warnings: Vec<String>,
    /// Whether this run's engine holds the project lock right now.
    pub engine_alive: bool,
    pub engine_pid: Option<u32>,
}

pub(super) fn load(global: &Global, run: Option<&str>) -> anyhow::Result<Loaded> {
    let project = global.project()?;
    let state_dir = project.state_dir();
    let run_id = match run {
        Some(id) => id.to_string(),
        None => RunDir::latest(&state_dir).ok_or_else(|| {
            usage(format!(
                "no run in {} yet: start one with `orch up \"what to build\"`",
                project.root.display()
            ))
        })?,
    };
    let dir = RunDir::new(&state_dir, &run_id);
    if !state::is_run_id(&run_id) || !dir.run_json().exists() {
        return Err(usage(format!(
            "no run {run_id} in {}: `ls .orch/runs` lists them",
            project.root.display()
        )));
    }
    let info = RunInfo::read(&dir.run_json())?;
    let journal = state::read_journal(&dir.events())?;
    let state = RunState::replay(&journal.records);
    let holder = state::holder(&state_dir);
    let engine_alive = holder.as_ref().is_some_and(|(id, _)| *id == run_id);
    Ok(Loaded {
        project,
        dir,
        state,
        warnings: journal.warnings,
        engine_alive,
        engine_pid: holder.filter(|(id, _)| *id == run_id).map(|(_, pid)| pid),
        info,
    })
}

impl Loaded {
    pub(super) fn tmux(&self) -> RealTmux {
        RealTmux::new(self.info.tmux_socket(), self.info.tmux_config.clone())
    }
}
