//! The files a merge would overwrite: changed between the checkout's `HEAD` and the merge's
//! result, and not as `HEAD` has them in the checkout (modified, staged, or there untracked
//! or ignored). `git merge --ff-only` refuses too, atomically, but it names one kind of
//! problem at a time and says nothing of ignored files, which it overwrites without a word;
//! this lists every file, with what to do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::repo::Repo;

/// One of the user's files in the way of a merge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Overwrite {
    /// Relative to the checkout's root, as git names it.
    pub path: String,
    /// One of the constants below.
    pub why: &'static str,
}

impl Overwrite {
    pub const MODIFIED: &'static str = "modified";
    pub const STAGED: &'static str = "staged";
    pub const UNTRACKED: &'static str = "untracked";
    pub const IGNORED: &'static str = "ignored by git, yours all the same";
}

/// The checkout's files that moving `HEAD` from `head` to `new` would overwrite, sorted.
pub fn would_overwrite(repo: &Repo, head: &str, new: &str) -> anyhow::Result<Vec<Overwrite>> {
    let changes = repo.changed_paths(head, new)?;
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let dirty = checkout_status(repo)?;
    let changed: BTreeSet<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    let mut found = BTreeSet::new();
    for change in &changes {
        if let Some(&staged) = dirty.get(change.path.as_str()) {
            let why = if staged {
                Overwrite::STAGED
            } else {
                Overwrite::MODIFIED
            };
            found.insert(Overwrite {
                path: change.path.clone(),
                why,
            });
            continue;
        }
        if !change.added {
            // Tracked and clean: the checkout has it as `HEAD` does.
            continue;
        }
        // New to `HEAD` and not staged: anything at its place, or a file where one of its
        // directories goes, is the user's and not in git.
        let mut in_the_way = Vec::new();
        if repo.root().join(&change.path).symlink_metadata().is_ok() {
            in_the_way.push(change.path.clone());
        }
        for ancestor in Path::new(&change.path).ancestors().skip(1) {
            let rel = ancestor.to_string_lossy();
            if rel.is_empty() || changed.contains(rel.as_ref()) {
                continue;
            }
            if repo
                .root()
                .join(ancestor)
                .symlink_metadata()
                .is_ok_and(|m| !m.is_dir())
            {
                in_the_way.push(rel.into_owned());
            }
        }
        for path in in_the_way {
            let why = if is_ignored(repo, &path) {
                Overwrite::IGNORED
            } else {
                Overwrite::UNTRACKED
            };
            found.insert(Overwrite { path, why });
        }
    }
    Ok(found.into_iter().collect())
}

/// The checkout's tracked paths that differ from `HEAD`: `true` when staged (the index
/// differs from `HEAD`), `false` when only the work tree does. Asked of the user's own git,
/// so that their filters (LFS, say) count as they do for `git status`.
fn checkout_status(repo: &Repo) -> anyhow::Result<BTreeMap<String, bool>> {
    let out = repo
        .user_cmd()
        .args([
            "--no-optional-locks",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=no",
            "--no-renames",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("failed to run git: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "`git status` failed in {}, so orch cannot tell what a merge would overwrite: {}",
            repo.root().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut dirty = BTreeMap::new();
    for entry in out.stdout.split(|b| *b == 0) {
        if entry.len() < 4 {
            continue;
        }
        let staged = entry[0] != b' ';
        let path = String::from_utf8_lossy(&entry[3..]).into_owned();
        dirty.insert(path, staged);
    }
    Ok(dirty)
}

fn is_ignored(repo: &Repo, path: &str) -> bool {
    repo.user_cmd()
        .args(["check-ignore", "--quiet", "--no-index", "--", path])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
