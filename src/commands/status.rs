//! `orch status [--json]`: the run as its journal tells it, whether or not its engine and its
//! tmux session are alive.

use super::{Global, runs};
use crate::engine::ui;
use crate::error::EXIT_OK;
use crate::tmux::Tmux as _;

pub fn run(global: &Global, run: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let loaded = runs::load(global, run)?;
    if json {
        let status = loaded.state.status_json(loaded.engine_alive);
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(EXIT_OK);
    }
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let session_alive = loaded
        .tmux()
        .has_session(&loaded.info.session)
        .unwrap_or(false);
    let engine = match (loaded.engine_alive, loaded.state.is_finished()) {
        (true, _) => format!("engine running (pid {})", loaded.engine_pid.unwrap_or(0)),
        (false, true) => "engine finished".to_string(),
        (false, false) => "ENGINE GONE".to_string(),
    };
    println!(
        "run {} · {} · {} · session {} {}",
        loaded.info.run_id,
        loaded.state.phase.name(),
        engine,
        loaded.info.session,
        if session_alive { "open" } else { "closed" }
    );
    if let Some(reason) = &loaded.state.finish_reason {
        println!("  {reason}");
    }
    println!();
    print!("{}", ui::table(&loaded.state, &loaded.dir, ui::now_ms()));
    if !loaded.engine_alive && !loaded.state.is_finished() {
        println!(
            "\nthe run's engine is gone (it crashed or was killed) while agents may still be \
             working in their windows. `orch down` stops them and closes the session; its \
             files stay in {}",
            loaded.project.display(loaded.dir.path())
        );
    }
    Ok(EXIT_OK)
}
