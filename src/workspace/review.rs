//! Reviewing a worktree run's work and deciding its fate: what `orch diff`, `orch merge`,
//! `orch discard` and `orch runs` do with the run's branch, in git's terms.
//!
//! Every git operation here works on objects and refs only (`merge-tree --write-tree`,
//! `commit-tree`), so nothing touches a work tree until the one command that moves the
//! user's checkout, `git merge --ff-only`, which git applies atomically or not at all. Before
//! it, orch lists the exact files the merge would overwrite, so a refusal names them and says
//! what to do; after it, the user's uncommitted work is exactly as it was.
//!
//! (This is the review side of `crate::workspace`; it lives apart only while the engine's
//! side of `workspace` becomes a module directory, and belongs under `workspace/` then.)

mod discard;
mod merge;
mod overwrite;
mod repo;
mod standing;
mod task_tree;

pub use discard::{Discarded, discard};
pub use merge::{MergeKind, Merged, Planned, merge, plan};
pub use overwrite::{Overwrite, would_overwrite};
pub use repo::Repo;
pub use standing::{Standing, standing};
pub use task_tree::owned_files_tree;

use std::path::Path;

use crate::error::usage;
use crate::state::{CommandLock, LockError, RunDir};
use crate::workspace::WorkspaceInfo;

/// The workspace of a run that has one, or an error that says where an in-place run's
/// changes are instead.
pub fn workspace_of<'a>(
    run_id: &str,
    workspace: Option<&'a WorkspaceInfo>,
    what: &str,
) -> anyhow::Result<&'a WorkspaceInfo> {
    workspace.ok_or_else(|| {
        usage(format!(
            "run {run_id} ran in place, without a branch of its own: its changes are in your \
             checkout already, so there is nothing to {what}; `git status` and `git diff` \
             show them"
        ))
    })
}

/// The error for a run whose branch is gone: what deleted it, and how to bring it back while
/// git still has its last commit (as the journal recorded it).
pub fn branch_gone(run_id: &str, branch: &str, last_commit: Option<&str>) -> anyhow::Error {
    let back = last_commit.map_or_else(String::new, |commit| {
        format!(
            "; while git still has its last commit, `git branch {branch} {commit}` brings it \
             back"
        )
    });
    usage(format!(
        "the branch {branch} of run {run_id} is gone (deleted by `orch discard \
         --delete-branch` or by hand){back}"
    ))
}

/// Takes the lock that keeps the run's engine out while `orch merge` or `orch discard`
/// (`command`) writes the run's journal, and, when the command `writes_checkout` (a merge),
/// keeps out whatever else writes the user's checkout (a run in place, another merge): the
/// run's lock, plus the checkout lock.
pub fn lock_run(
    state_dir: &Path,
    dir: &RunDir,
    command: &str,
    writes_checkout: bool,
) -> anyhow::Result<CommandLock> {
    let run_id = dir.id();
    CommandLock::acquire(state_dir, dir, command, writes_checkout).map_err(|e| match e {
        LockError::RunLive(holder) if holder.is_engine() => usage(format!(
            "run {run_id} is still running (engine pid {}): wait for it to end (`orch wait \
             --run {run_id}`) or stop it (`orch down --run {run_id}`), then run `orch \
             {command}` again",
            holder.pid
        )),
        other => usage(other.to_string()),
    })
}
