//! `orch status [--json]`: the run as its journal tells it, whether or not its engine and its
//! tmux session are alive.

use super::{Global, runs};
use crate::error::EXIT_OK;
use crate::progress;
use crate::tmux::Tmux as _;

pub(crate) fn run(global: &Global, run: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let loaded = runs::load(global, run)?;
    // The run's own config, as it was when the run started.
    let config = crate::config::load(&loaded.dir.config()).ok();
    let sample = config
        .as_ref()
        .and_then(|config| crate::report::sample_note(config, loaded.info.plan_given));
    // The budget and what all the agents used against it (see budget.rs).
    let budget = config
        .as_ref()
        .map(|config| crate::budget::View::of(&loaded.dir, &loaded.state, config));
    if json {
        let mut status = loaded.state.status(loaded.engine_alive);
        // What the agents show and used, from their logs (the journal does not hold them).
        for (view, task) in status.tasks.iter_mut().zip(loaded.state.tasks_in_order()) {
            let progress = progress::of_task(&loaded.dir, task);
            view.last_output = Some(progress.last_line).filter(|l| !l.is_empty());
            view.usage = progress.usage;
        }
        let mut status = serde_json::to_value(&status)?;
        if let Some(sample) = &sample {
            status["sample"] = serde_json::json!(sample);
        }
        if let Some(budget) = &budget {
            status["budget"] = serde_json::to_value(budget)?;
        }
        let run_id = &loaded.info.run_id;
        if let Some(approval) = crate::approval::View::of(&loaded.dir, &loaded.state, run_id) {
            status["approval"] = serde_json::to_value(approval)?;
        }
        if let Some(workspace) = &loaded.info.workspace {
            status["workspace"] = serde_json::to_value(workspace)?;
            status["commits"] = serde_json::to_value(&loaded.state.commits)?;
            status["merges"] = serde_json::to_value(&loaded.state.merges)?;
            status["discarded"] = serde_json::json!(loaded.state.discarded.is_some());
        }
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
    if let Some(line) = branch_line(&loaded) {
        println!("  {line}");
    }
    if let Some(sample) = &sample {
        println!("  A SAMPLE RUN, not the request: {sample}");
    }
    let asked = config
        .as_ref()
        .is_some_and(|c| crate::approval::asked(c, loaded.info.review));
    if asked
        && loaded.state.phase == crate::state::Phase::Planning
        && !loaded.state.approval.waiting()
    {
        println!("  once valid, the plan waits for your approval (`orch approve`)");
    }
    if let Some(budget) = budget.as_ref().filter(|b| b.shown()) {
        println!("  budget: {}", budget.line());
    }
    println!();
    if let Some(waiting) =
        crate::approval::waiting_text(&loaded.dir, &loaded.state, &loaded.info.run_id)
    {
        println!("{waiting}");
    }
    print!(
        "{}",
        crate::format::table(&loaded.state, &loaded.dir, crate::state::now_ms())
    );
    let orch = crate::invocation::orch();
    if !loaded.engine_alive && !loaded.state.is_finished() {
        let why = loaded.state.engine_stopped.as_deref().map_or_else(
            || " (it crashed or was killed)".to_string(),
            |r| format!(" ({r})"),
        );
        println!(
            "\nthe run's engine is gone{why} while agents may still be working in their \
             windows. `{orch} resume` continues the run: agents still running are kept, the \
             others relaunched. `{orch} down` stops them all and closes the session; its \
             files stay in {}",
            loaded.project.display(loaded.dir.path())
        );
    } else if loaded.state.is_resumable(loaded.engine_alive) {
        println!("\n`{orch} resume` continues this run where it stopped");
    }
    if let Some(hint) = crate::engine::retry::hint(&loaded.state) {
        println!("{hint}");
    }
    Ok(EXIT_OK)
}

/// Where a worktree run's work is and what became of it: its branch, its commits, whether it
/// was merged or discarded, and the commands that review it.
fn branch_line(loaded: &super::runs::Loaded) -> Option<String> {
    let ws = loaded.info.workspace.as_ref()?;
    let state = &loaded.state;
    let commits = state.commits.len();
    let standing = if let Some(merge) = state.merges.last() {
        format!("merged into {}", merge.into)
    } else if state.discarded.is_some() {
        "discarded".to_string()
    } else if commits == 0 {
        "nothing committed yet".to_string()
    } else {
        let orch = crate::invocation::orch();
        format!("not merged: `{orch} diff` shows it, `{orch} merge` brings it into your branch")
    };
    Some(format!(
        "on branch {} ({commits} commit{}; worktree {}): {standing}",
        ws.branch,
        if commits == 1 { "" } else { "s" },
        loaded.project.display(&ws.path)
    ))
}
