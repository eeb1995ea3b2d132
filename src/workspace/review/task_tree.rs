//! A task's work before it is committed: its owned files as they are in the run's worktree
//! now, written as a tree on the run's start with a temporary index (the worktree's own index
//! is the engine's, and a new file in it is untracked), so that `orch diff TASK` shows a
//! running task's changes, new files included.

use std::path::Path;

use super::repo::Repo;
use crate::paths::ProjectPath;

/// The tree of `start` with `files` as the worktree at `repo` has them (a file that is gone
/// there is gone from the tree). `scratch`: a private directory for the temporary index.
pub fn owned_files_tree(
    repo: &Repo,
    start: &str,
    files: &[ProjectPath],
    scratch: &Path,
) -> anyhow::Result<String> {
    let index = scratch.join(format!("diff-index-{}", std::process::id()));
    let _ = std::fs::remove_file(&index);
    let result = (|| {
        let with_index = |args: &[&str]| {
            let mut cmd = repo.cmd();
            cmd.env("GIT_INDEX_FILE", &index).args(args);
            cmd
        };
        let mut read = with_index(&["read-tree", start]);
        repo.git_input(&mut read, &[] as &[&str], b"")?;
        let mut list = Vec::new();
        for file in files {
            list.extend_from_slice(file.as_str().as_bytes());
            list.push(0);
        }
        let mut update = with_index(&["update-index", "--add", "--remove", "-z", "--stdin"]);
        repo.git_input(&mut update, &[] as &[&str], &list)?;
        let mut write = with_index(&["write-tree"]);
        let out = repo.git_input(&mut write, &[] as &[&str], b"")?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    })();
    let _ = std::fs::remove_file(&index);
    result
}
