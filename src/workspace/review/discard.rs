//! `orch discard`: the run's worktree (and its task worktrees) removed, its branch deleted
//! when it holds no unmerged work or the user asks. The run directory stays, so the run's
//! record, logs and report outlive its files.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::bail;

use super::repo::Repo;
use super::standing::Standing;
use crate::workspace::{WorkspaceInfo, worktree_path};

/// What `discard` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discarded {
    /// Worktrees removed: the run's, and a task's each (`isolation: task`).
    pub worktrees_removed: usize,
    /// Files the run's worktree held changed and uncommitted (a task's unaccepted work, a
    /// stray write), gone with it.
    pub uncommitted: Vec<String>,
    pub branch_deleted: bool,
    /// Kept because it holds work no merge brought to the user.
    pub branch_kept: bool,
}

impl Discarded {
    /// Whether it changed nothing (a run discarded before, and no branch to delete now).
    pub fn is_nothing(&self) -> bool {
        self.worktrees_removed == 0 && !self.branch_deleted
    }
}

/// Removes the worktrees of run `run_id` and, when `delete_branch` or when it holds no
/// unmerged work (`standing`), its branch. The worktree must be where orch puts it: nothing
/// outside `.orch/worktrees/` is ever removed.
pub fn discard(
    repo: &Repo,
    state_dir: &Path,
    run_id: &str,
    ws: &WorkspaceInfo,
    standing: &Standing,
    delete_branch: bool,
) -> anyhow::Result<Discarded> {
    let expected = worktree_path(state_dir, run_id);
    if normal(&ws.path) != normal(&expected) {
        bail!(
            "run {run_id}'s record names its worktree {}, not {} where orch makes it (was \
             run.json edited?): orch removes nothing outside .orch/worktrees/; remove it by \
             hand with `git worktree remove PATH` if it is yours to remove",
            ws.path.display(),
            expected.display()
        );
    }
    let tasks_dir = state_dir.join("worktrees").join(format!("{run_id}-tasks"));
    let mut done = Discarded::default();
    for path in registered_worktrees(repo)? {
        let path = normal(&path);
        let is_run = path == normal(&expected);
        if !is_run && !path.starts_with(normal(&tasks_dir)) {
            continue;
        }
        if is_run && path.is_dir() {
            done.uncommitted = uncommitted_in(&path);
        }
        if path.is_dir() {
            let remove = ["worktree", "remove", "--force", "--force"].map(OsStr::new);
            let mut args = remove.to_vec();
            args.push(path.as_os_str());
            repo.git(&args)?;
            done.worktrees_removed += 1;
        } else {
            // Removed by hand: git's record of it goes, and no other (no `worktree prune`,
            // which would forget the user's own worktrees on a disk not mounted now).
            crate::workspace::task::forget_worktree(repo.root(), &path).map_err(|e| {
                anyhow::anyhow!("cannot remove git's record of {}: {e}", path.display())
            })?;
        }
    }
    // The engine's copies of the task worktrees' indexes (see workspace::task).
    let run_dir = state_dir.join("runs").join(run_id);
    for entry in std::fs::read_dir(&run_dir).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("index.tree-")
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    // What is left of ours that git no longer knows as a worktree.
    for dir in [&expected, &tasks_dir] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| {
                anyhow::anyhow!(
                    "failed to remove {}: {e}; remove it by hand (it is no worktree of git's \
                     any more)",
                    dir.display()
                )
            })?;
            done.worktrees_removed += usize::from(dir == &expected);
        }
    }
    let exists = repo.branch_tip(&ws.branch)?.is_some();
    if exists && (delete_branch || !standing.has_unmerged_work()) {
        repo.git(&["branch", "-D", "--end-of-options", &ws.branch])
            .map_err(|e| {
                e.context(format!(
                    "the worktree is removed, but the branch {} could not be deleted (checked \
                     out somewhere? `git worktree list` shows where); delete it with `git \
                     branch -D {}`",
                    ws.branch, ws.branch
                ))
            })?;
        done.branch_deleted = true;
    } else {
        done.branch_kept = exists;
    }
    Ok(done)
}

/// Every worktree git knows of in the repository, its main one included.
fn registered_worktrees(repo: &Repo) -> anyhow::Result<Vec<PathBuf>> {
    let out = repo.git(&["worktree", "list", "--porcelain", "-z"])?;
    Ok(out
        .split(|b| *b == 0)
        .filter_map(|field| field.strip_prefix(b"worktree "))
        .map(|path| PathBuf::from(String::from_utf8_lossy(path).into_owned()))
        .collect())
}

/// The changed and untracked files of a worktree, as `git status` names them.
fn uncommitted_in(path: &Path) -> Vec<String> {
    let Ok(out) = Repo::new(path).git(&[
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
    ]) else {
        return Vec::new();
    };
    out.split(|b| *b == 0)
        .filter(|entry| entry.len() > 3)
        .map(|entry| String::from_utf8_lossy(&entry[3..]).into_owned())
        .collect()
}

/// A path with symbolic links resolved where it exists, for comparing two names of one place.
fn normal(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| {
        // Gone: its parent may still resolve (a worktree deleted by hand).
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => parent
                .canonicalize()
                .map_or_else(|_| path.to_path_buf(), |p| p.join(name)),
            _ => path.to_path_buf(),
        }
    })
}
