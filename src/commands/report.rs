//! `orch report [RUN]`: the run's report (rebuilt from its journal, so it also works for a run
//! still in progress or one whose engine died).

use super::{Global, runs};
use crate::error::EXIT_OK;
use crate::report;
use crate::snapshot::Snapshot;

pub(crate) fn run(global: &Global, run: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let loaded = runs::load(global, run)?;
    let config = crate::config::load(&loaded.dir.config())?;
    let snapshot = loaded.state.snapshot_tree.as_ref().and_then(|tree| {
        // Taken where the agents worked: the run's worktree, or the project.
        let root = loaded
            .info
            .workspace
            .as_ref()
            .map_or(&loaded.project.root, |ws| &ws.path);
        Snapshot::load(root, &loaded.dir.snapshot(), tree).ok()
    });
    let built = report::build(&loaded.project, &config, &loaded.dir, snapshot.as_ref())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&built)?);
    } else {
        print!("{}", report::markdown(&built));
    }
    Ok(EXIT_OK)
}
