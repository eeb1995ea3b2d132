//! `orch attach`: watch the run's agents live (detach again with C-b d).

use super::{Global, runs};
use crate::error::{EXIT_OK, usage};
use crate::tmux::Tmux as _;

pub(crate) fn run(global: &Global, run: Option<&str>) -> anyhow::Result<u8> {
    let loaded = runs::load(global, run)?;
    let tmux = loaded.tmux();
    if !tmux.has_session(&loaded.info.session)? {
        let orch = crate::invocation::orch();
        let resume = if loaded.state.is_resumable(loaded.engine_alive) {
            format!("`{orch} resume` continues the run in a new session; ")
        } else {
            String::new()
        };
        return Err(usage(format!(
            "run {}'s tmux session {} is closed: {resume}`{orch} status` and `{orch} logs \
             TASK` still show what happened",
            loaded.info.run_id, loaded.info.session
        )));
    }
    tmux.attach(&loaded.info.session)?;
    Ok(EXIT_OK)
}
