//! `orch discard [--run ID] [--delete-branch]`: throw a worktree run's files away (its
//! worktree; its branch too when it holds no unmerged work, or when asked), keeping the run's
//! record and logs.

use super::{Global, runs};
use crate::error::{EXIT_OK, usage};
use crate::state::{Event, Journal};
use crate::workspace::review::{self, Repo};

/// How many of the files thrown away with the worktree are named.
const NAMED: usize = 10;

pub(crate) fn run(global: &Global, run: Option<&str>, delete_branch: bool) -> anyhow::Result<u8> {
    let loaded = runs::load(global, run)?;
    let run_id = loaded.info.run_id.as_str();
    let ws = review::workspace_of(run_id, loaded.info.workspace.as_ref(), "discard")?;
    if loaded.engine_alive {
        return Err(usage(format!(
            "run {run_id} is still running: stop it first (`orch down --run {run_id}`), then \
             run `orch discard` again"
        )));
    }
    let inside = |path: &std::path::Path| {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        global
            .cwd
            .canonicalize()
            .is_ok_and(|cwd| cwd.starts_with(&path))
    };
    if inside(&ws.path) {
        return Err(usage(format!(
            "you are inside the worktree of run {run_id}, which `orch discard` removes: go to \
             the project first (`cd {}`), then run `orch discard --run {run_id}` again",
            shlex::try_quote(&loaded.project.root.to_string_lossy()).map_or_else(
                |_| loaded.project.root.display().to_string(),
                std::borrow::Cow::into_owned
            )
        )));
    }
    let state_dir = loaded.project.state_dir();
    let _lock = review::lock_run(&state_dir, &loaded.dir, "discard", false)?;
    if loaded.state.is_resumable(false) {
        eprintln!(
            "note: run {run_id} did not finish ({}); without its worktree it cannot be resumed",
            loaded.state.phase.name()
        );
    }
    let repo = Repo::new(&loaded.project.root);
    let standing = review::standing(&repo, Some(ws), &loaded.state)?;
    let done = review::discard(&repo, &state_dir, run_id, ws, &standing, delete_branch)?;
    let branch = &ws.branch;
    if done.is_nothing() && loaded.state.discarded.is_some() {
        println!(
            "Run {run_id} was discarded already{}.",
            if done.branch_kept {
                format!(
                    "; its branch {branch} is kept ({}): `orch discard --run {run_id} \
                     --delete-branch` deletes it",
                    standing.describe()
                )
            } else {
                String::new()
            }
        );
        return Ok(EXIT_OK);
    }
    let recorded = Journal::open(&loaded.dir.events()).and_then(|mut journal| {
        journal.append(Event::Discarded {
            branch_deleted: !done.branch_kept,
        })
    });
    if done.worktrees_removed > 0 {
        println!(
            "Removed the worktree of run {run_id} ({}).",
            loaded.project.display(&ws.path)
        );
    } else {
        println!("Run {run_id}'s worktree was gone already.");
    }
    if !done.uncommitted.is_empty() {
        let n = done.uncommitted.len();
        let mut named: Vec<&str> = done
            .uncommitted
            .iter()
            .take(NAMED)
            .map(String::as_str)
            .collect();
        if n > NAMED {
            named.push("…");
        }
        println!(
            "It held {n} changed file{} that no accepted task committed, gone with it: {}",
            if n == 1 { "" } else { "s" },
            named.join(", ")
        );
    }
    if done.branch_deleted {
        println!("Deleted its branch {branch}.");
    } else if done.branch_kept {
        let n = standing.unmerged_commits();
        println!(
            "Kept its branch {branch}: it holds {n} commit{} that no merge brought to you. \
             `orch merge --run {run_id}` merges {}; `orch discard --run {run_id} \
             --delete-branch` (or `git branch -D {branch}`) deletes the branch.",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" }
        );
    }
    println!(
        "The run's record and logs stay in {} (`orch report --run {run_id}`).",
        loaded.project.display(loaded.dir.path())
    );
    recorded.map_err(|e| {
        e.context(format!(
            "run {run_id} is discarded, but recording it in its journal failed"
        ))
    })?;
    Ok(EXIT_OK)
}
