//! `orch merge [--run ID] [--squash]`: the run's work into the user's current branch (see
//! `crate::workspace::review` for how), recorded in the run's journal.

use super::{Global, runs};
use crate::error::{EXIT_OK, usage};
use crate::state::{Event, Journal};
use crate::workspace::review::{self, MergeKind, Repo};

/// How many of the new commits are listed.
const LISTED: usize = 20;

pub(crate) fn run(global: &Global, run: Option<&str>, squash: bool) -> anyhow::Result<u8> {
    let loaded = runs::load(global, run)?;
    let run_id = loaded.info.run_id.as_str();
    let ws = review::workspace_of(run_id, loaded.info.workspace.as_ref(), "merge")?;
    if loaded.engine_alive {
        return Err(usage(format!(
            "run {run_id} is still running: wait for it to end (`orch wait --run {run_id}`) or \
             stop it (`orch down --run {run_id}`), then run `orch merge` again"
        )));
    }
    let _lock = review::lock_run(&loaded.project.state_dir(), &loaded.dir, "merge", true)?;
    if !loaded.state.is_finished() {
        eprintln!(
            "note: run {run_id} is {} (not finished): merging the work of the tasks accepted \
             so far; `orch resume --run {run_id}` continues it",
            loaded.state.phase.name()
        );
    }
    let repo = Repo::new(&loaded.project.root);
    if let (Some(started_on), Some(now_on)) = (&ws.user_branch, repo.current_branch()?)
        && *started_on != now_on
    {
        eprintln!(
            "note: run {run_id} started from {started_on}; you are on {now_on}, so it merges \
             into {now_on}"
        );
    }
    let merged = match review::merge(
        &repo,
        run_id,
        &loaded.info.request,
        ws,
        squash,
        loaded.state.commits.last().map(|c| c.commit.as_str()),
    )? {
        Ok(merged) => merged,
        Err(nothing) => {
            println!("{nothing}");
            return Ok(EXIT_OK);
        }
    };
    let recorded = Journal::open(&loaded.dir.events()).and_then(|mut journal| {
        journal.append(Event::Merged {
            into: merged.into.clone(),
            commit: merged.new.clone(),
            squash,
            tip: Some(merged.tip.clone()),
        })
    });
    let short = |c: &str| c[..c.len().min(10)].to_string();
    let commits = if merged.commits == 1 {
        "1 commit".to_string()
    } else {
        format!("{} commits", merged.commits)
    };
    let how = match merged.kind {
        MergeKind::Replay if merged.skipped > 0 => format!(
            "{commits} replayed, {} already there left out",
            merged.skipped
        ),
        MergeKind::Replay => format!("{commits} replayed"),
        kind => format!("{}, {commits}", kind.describe()),
    };
    println!(
        "Merged run {run_id} into {} ({how}): {} → {}.",
        merged.into,
        short(&merged.from),
        short(&merged.new)
    );
    for line in repo.log_lines(&merged.from, &merged.new, LISTED)? {
        println!("  {line}");
    }
    if ws.uncommitted.is_some() {
        println!(
            "The changes your checkout had uncommitted when the run started were not merged: \
             they are yours, in your checkout, as they were."
        );
    }
    println!(
        "`orch discard --run {run_id}` removes the run's worktree and its branch (merged now); \
         the run's record stays."
    );
    if let Err(e) = recorded {
        return Err(e.context(format!(
            "the merge is done ({} is at {}), but recording it in the run's journal failed, so \
             `orch runs` will not show run {run_id} as merged",
            merged.into, merged.new
        )));
    }
    Ok(EXIT_OK)
}
