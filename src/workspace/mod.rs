//! Where a run's agents work: in the user's checkout (`in-place`), or on a branch of its own in
//! a linked git worktree under `.orch/worktrees/<run-id>` (`worktree`, the default in a git
//! project), where each accepted task becomes one commit holding exactly its owned files.
//!
//! The user's checkout is theirs: a worktree run changes nothing in it; only an explicit
//! `orch merge` brings a run's commits into the user's branch.
//!
//! [`prepare`] makes a new run's branch and worktree at `orch up`; [`Committer`] makes the
//! engine's commits on it and finds them again by their trailers; [`Git`] is orch's hardened
//! git in the user's repository or the worktree.

mod commit;
mod git;
mod prepare;
pub mod review;
pub mod task;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use commit::{
    Committer, Found, Staging, TaskSummary, remove_left_indexes, specs_message, task_message,
};
pub use git::Git;
pub use prepare::{Prepared, Wanted, prepare, uncommitted_paths};

use serde::{Deserialize, Serialize};

/// `workspace:` in `orch.yaml` (`orch up --in-place` for one run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A branch and a linked worktree per run; a directory that is not a git work tree runs
    /// in place and says so once.
    #[default]
    Worktree,
    /// Agents write straight into the user's checkout (orch before worktrees).
    InPlace,
}

/// `isolation:` in `orch.yaml`: whether the tasks of a worktree run share its worktree or
/// each works in a worktree of its own, started from the run branch with its dependencies'
/// commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    #[default]
    Run,
    Task,
}

/// `uncommitted:` in `orch.yaml` (`orch up --uncommitted include|refuse`): what a worktree
/// run does with changes in the user's checkout that are not committed (modified, staged,
/// untracked and not ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Uncommitted {
    /// They become one commit of their own at the base of the run branch, so the agents see
    /// what the user sees; `orch merge` brings only the run's own commits, never that one,
    /// so the user's changes stay theirs, uncommitted, neither lost nor doubled.
    #[default]
    Include,
    /// `orch up` refuses, and says how to choose.
    Refuse,
}

/// A worktree run's workspace, in `run.json` (`workspace`); absent for an in-place run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    /// The run's linked worktree, absolute: `<project>/.orch/worktrees/<run-id>`.
    pub path: PathBuf,
    /// `orch/<run-id>`.
    pub branch: String,
    /// The user's `HEAD` commit when `orch up` ran.
    pub base: String,
    /// The commit the run starts from: `base`, or `uncommitted` on top of it.
    pub start: String,
    /// The commit holding the checkout's uncommitted changes at `orch up`, if it had any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncommitted: Option<String>,
    /// The branch the user was on at `orch up` (None: a detached `HEAD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_branch: Option<String>,
    #[serde(default)]
    pub isolation: Isolation,
}

/// The run branch's name for a run.
pub fn branch_name(run_id: &str) -> String {
    format!("orch/{run_id}")
}

/// The run's worktree, under the project's state directory.
pub fn worktree_path(state_dir: &std::path::Path, run_id: &str) -> PathBuf {
    state_dir.join("worktrees").join(run_id)
}
