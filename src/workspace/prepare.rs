//! `orch up`'s part: where a new run works. In a git project (with a first commit) the default
//! is a branch `orch/<run-id>` and a linked worktree under `.orch/worktrees/<run-id>`,
//! started from the user's `HEAD` and, unless `uncommitted: refuse`, from one commit more
//! holding the checkout's uncommitted changes. The user's checkout is only read: its index,
//! `HEAD` and files stay as they are (the uncommitted commit is built in an index of orch's
//! own).

use std::path::Path;

use super::git::{Git, commit_tree, identity};
use super::{Isolation, Mode, Uncommitted, WorkspaceInfo, branch_name, worktree_path};

/// Where a new run works.
#[derive(Debug)]
pub enum Prepared {
    /// A branch and worktree of its own; `left_out`: untracked nested git repositories of the
    /// checkout, which a commit cannot hold (to be said).
    Worktree {
        info: WorkspaceInfo,
        left_out: Vec<String>,
    },
    /// In the user's checkout; `note` says why when a worktree was the setting but cannot be
    /// had (not a git repository, no commit yet), to be said once.
    InPlace { note: Option<String> },
}

/// What `orch up` was told, and the config said.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub mode: Mode,
    pub uncommitted: Uncommitted,
    pub isolation: Isolation,
}

/// Pathspec that leaves out orch's own state directory (runs, their environment files).
const NOT_ORCH: &str = ":(top,exclude).orch";

/// Makes the run's workspace for run `run_id` of the project at `root` (its state in
/// `state_dir`), as `wanted` says.
pub fn prepare(
    root: &Path,
    state_dir: &Path,
    run_id: &str,
    wanted: Wanted,
) -> anyhow::Result<Prepared> {
    if wanted.mode == Mode::InPlace {
        return Ok(Prepared::InPlace { note: None });
    }
    let git = Git::at(root);
    let in_place = |why: &str| {
        let isolation = if wanted.isolation == Isolation::Task {
            "; `isolation: task` needs worktrees too, so the tasks share the project"
        } else {
            ""
        };
        Ok(Prepared::InPlace {
            note: Some(format!(
                "{} {why}: this run works in place, in your files (a run gets a branch and a \
                 worktree of its own in a git repository with a first commit; `workspace: \
                 in-place` in orch.yaml says so and silences this){isolation}",
                root.display()
            )),
        })
    };
    if crate::git::RepoDirs::of(root).is_none()
        || !git
            .run(["rev-parse", "--is-inside-work-tree"])
            .is_ok_and(|s| s == "true")
    {
        return in_place("is not a git repository");
    }
    let Some(base) = git.commit_of("HEAD") else {
        return in_place("is a git repository with no commit yet");
    };
    let user_branch = git
        .run(["symbolic-ref", "-q", "--short", "HEAD"])
        .ok()
        .filter(|b| !b.is_empty());
    let (left_out, changed): (Vec<String>, Vec<String>) = uncommitted_paths(&git)?
        .into_iter()
        .partition(|p| p.ends_with('/'));
    let mut uncommitted = None;
    if !changed.is_empty() {
        if wanted.uncommitted == Uncommitted::Refuse {
            return Err(refused(&changed));
        }
        uncommitted = Some(commit_uncommitted(
            &git, state_dir, &base, run_id, &changed,
        )?);
    }
    let start = uncommitted.clone().unwrap_or_else(|| base.clone());
    let branch = free_branch_name(&git, run_id);
    let path = worktree_path(state_dir, run_id);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            anyhow::anyhow!(
                "cannot make {} for the run's worktree: {e}; check the permissions of {}",
                parent.display(),
                state_dir.display()
            )
        })?;
    }
    let path_arg = path.as_os_str().to_owned();
    git.run([
        "worktree".as_ref(),
        "add".as_ref(),
        "-q".as_ref(),
        "-b".as_ref(),
        std::ffi::OsStr::new(&branch),
        path_arg.as_os_str(),
        std::ffi::OsStr::new(&start),
    ])
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot make the run's branch {branch} and worktree {}: {e:#}; `orch up --in-place` \
             runs in your checkout instead",
            path.display()
        )
    })?;
    let path = path.canonicalize().unwrap_or(path);
    Ok(Prepared::Worktree {
        info: WorkspaceInfo {
            path,
            branch,
            base,
            start,
            uncommitted,
            user_branch,
            isolation: wanted.isolation,
        },
        left_out,
    })
}

/// `orch/<run-id>`, unless the repository has a branch named `orch` itself: git cannot hold
/// both `refs/heads/orch` and `refs/heads/orch/…`, and the user's branch is theirs to name, so
/// the run's branch then goes under `orch-runs/`.
fn free_branch_name(git: &Git, run_id: &str) -> String {
    if git.commit_of("refs/heads/orch").is_some() {
        format!("orch-runs/{run_id}")
    } else {
        branch_name(run_id)
    }
}

/// The checkout's uncommitted changes: modified, staged, deleted and untracked (not ignored)
/// paths, `.orch/` left out; an untracked nested git repository as its directory, with a
/// trailing `/`.
pub fn uncommitted_paths(git: &Git) -> anyhow::Result<Vec<String>> {
    let out = git.run([
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
        "--",
        ".",
        NOT_ORCH,
    ])?;
    Ok(out
        .split('\0')
        .filter(|e| e.len() > 3)
        .map(|e| e[3..].to_string())
        .collect())
}

fn refused(changed: &[String]) -> anyhow::Error {
    let shown: Vec<&str> = changed.iter().take(5).map(String::as_str).collect();
    let more = if changed.len() > 5 {
        format!(" and {} more", changed.len() - 5)
    } else {
        String::new()
    };
    crate::error::usage(format!(
        "your checkout has uncommitted changes ({}{more}) and `uncommitted: refuse` is set: \
         commit or stash them first, or start the run from them with `orch up --uncommitted \
         include` (or `uncommitted: include` in orch.yaml; `orch merge` never merges them \
         twice), or work in the checkout with `orch up --in-place`",
        shown.join(", ")
    ))
}

/// One commit on `base` holding the checkout as it is (tracked and untracked files, not
/// ignored ones, not `.orch/`), built in an index of orch's own: the user's index is not
/// touched.
fn commit_uncommitted(
    git: &Git,
    state_dir: &Path,
    base: &str,
    run_id: &str,
    changed: &[String],
) -> anyhow::Result<String> {
    // An index of orch's own, for this run alone, gone once the commit is made.
    let index = state_dir.join(format!("uncommitted-{run_id}.index"));
    let result = build_uncommitted(git, &index, base, run_id, changed);
    let _ = std::fs::remove_file(&index);
    result
}

fn build_uncommitted(
    git: &Git,
    index: &Path,
    base: &str,
    run_id: &str,
    changed: &[String],
) -> anyhow::Result<String> {
    let _ = std::fs::remove_file(index);
    let staged = git.with_index(index);
    staged.run(["read-tree", base])?;
    let mut list = Vec::new();
    for path in changed {
        list.extend_from_slice(path.as_bytes());
        list.push(0);
    }
    staged.run_with(
        ["update-index", "--add", "--remove", "-z", "--stdin"],
        Some(&list),
        &[],
    )?;
    let tree = staged.run(["write-tree"])?;
    let message = format!(
        "orch: the checkout's uncommitted changes at orch up\n\nThe run {run_id} starts from \
         them; `orch merge` leaves them out, since they are still in your checkout.\n\n\
         Orch-Run: {run_id}\nOrch-Commit: uncommitted\n"
    );
    commit_tree(git, &tree, base, &message, &identity(&git.root))
}
