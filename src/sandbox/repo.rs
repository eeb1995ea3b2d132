//! The project's repository in the box: `.git/` is not the agents' to change. The parts the
//! `.git/` guard watches ([`crate::git::GUARDED_FILES`], [`crate::git::GUARDED_DIRS`]) are
//! bound read-only over the writable project, in the git directory and, for a linked worktree
//! (or a submodule), in its common directory, wherever that lies. The rest of them stays
//! writable, since any git command rewrites it: an agent may run `git status`, `git diff`,
//! `git add` (the index, objects, logs, lock files), but not `git commit`, `git checkout`,
//! `git stash` or `git tag`, which move `HEAD` or `refs/` (and would be reported by the guard).
//!
//! The git directory and the common directory are bound onto themselves, so that each is a
//! mount point: a mount point cannot be renamed, so `mv .git elsewhere` (and a fresh `.git/`
//! with hooks of the agent's making) is refused, as are renaming or deleting the guarded
//! files and directories themselves. A guarded directory that does not exist (a repository
//! without `hooks/`) is made, empty, before it is bound: bwrap would make it anyway, and an
//! empty directory is what `git init` makes. A guarded file that does not exist (`packed-refs`,
//! `config.worktree`) cannot be bound without making it, which would change the repository: an
//! agent can create one, and the guard reports it (neither names a command unless the read-only
//! config says so).

use std::path::{Path, PathBuf};

use super::{Jail, Mount};
use crate::git::{GUARDED_DIRS, GUARDED_FILES, RepoDirs};

/// The mounts that keep the repository of `jail`'s project as the guard wants it. `masks`
/// are the places the box hides: a repository directory that is an ancestor of one is not
/// bound (it would uncover it).
pub(super) fn mounts(jail: &Jail, masks: &[Mount]) -> Vec<Mount> {
    let Some(repo) = RepoDirs::of(&jail.project) else {
        return Vec::new();
    };
    let uncovers = |p: &Path| masks.iter().any(|m| m.path().starts_with(p));
    let mut dirs: Vec<PathBuf> = vec![repo.git_dir.clone()];
    if repo.common_dir != repo.git_dir {
        dirs.push(repo.common_dir.clone());
    }
    dirs.retain(|d| d.is_absolute() && d.is_dir() && !uncovers(d));
    let mut out = Vec::new();
    if jail.read_only_project {
        // The project is read-only already; a repository outside it is bound read-only so
        // that git works (a common directory under a hidden home would not be there at all).
        out.extend(
            dirs.into_iter()
                .filter(|d| !d.starts_with(&jail.project))
                .map(Mount::Read),
        );
        return out;
    }
    // A linked worktree's `.git` file names its git directory: replaced, it could name one
    // with hooks of the agent's making.
    let dot_git = jail.project.join(".git");
    if std::fs::symlink_metadata(&dot_git).is_ok_and(|m| m.is_file()) {
        out.push(Mount::Read(dot_git));
    }
    // And its git directory names the common one, and the worktree back: rewritten, a
    // plain `git status` the user runs there later would read a repository (and its
    // `core.fsmonitor`) of the agent's making.
    for name in ["commondir", "gitdir"] {
        let file = repo.git_dir.join(name);
        if repo.common_dir != repo.git_dir && file.is_file() && !uncovers(&file) {
            out.push(Mount::Read(file));
        }
    }
    let linked = repo.common_dir != repo.git_dir;
    for dir in &dirs {
        if linked && *dir == repo.common_dir {
            // A linked worktree's common directory is also another checkout's git directory
            // (its index, HEAD, logs: the user's, for a run on a branch): read-only but for
            // the objects `git add` writes.
            out.push(Mount::Read(dir.clone()));
            let objects = dir.join("objects");
            if objects.is_dir() {
                out.push(Mount::Write(objects));
            }
        } else {
            out.push(Mount::Write(dir.clone()));
        }
        for name in GUARDED_FILES {
            let file = dir.join(name);
            if std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
                out.push(Mount::Read(file));
            }
        }
        // A linked worktree's own git directory holds only some of them (`refs/bisect`,
        // `info/sparse-checkout`), and git reads its hooks and attributes from the common one.
        let own = *dir == repo.common_dir;
        for name in GUARDED_DIRS {
            let sub = dir.join(name);
            if own && std::fs::symlink_metadata(&sub).is_err() {
                // Best effort: when it cannot be made, bwrap's own attempt fails loudly.
                let _ = std::fs::create_dir(&sub);
            }
            if sub.is_dir() {
                out.push(Mount::Read(sub));
            }
        }
    }
    // The other worktrees' own directories (their HEAD, their config.worktree) are not this
    // agent's either; a linked worktree's own is bound writable again inside it.
    if let Some(common) = dirs.iter().find(|d| **d == repo.common_dir) {
        let worktrees = common.join("worktrees");
        if worktrees.is_dir() {
            out.push(Mount::Read(worktrees));
        }
    }
    out
}
