//! What a task changed: per file, lines added and removed against the start of the run.

use serde::Serialize;
use similar::{ChangeTag, TextDiff};

use crate::paths::ProjectPath;
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileStat {
    pub path: ProjectPath,
    pub added: usize,
    pub removed: usize,
    /// created | modified | deleted | unchanged
    pub change: &'static str,
}

/// Lines added and removed in each of `files`, compared with the snapshot taken at the start.
pub fn diffstat(
    root: &std::path::Path,
    snapshot: Option<&Snapshot>,
    files: &[ProjectPath],
) -> Vec<FileStat> {
    files
        .iter()
        .map(|path| {
            let before = snapshot
                .and_then(|s| s.original(path).ok().flatten())
                .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned());
            // Never through a link out of the project.
            let after = crate::paths::read_inside(root, path)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            let change = match (&before, &after) {
                (None, Some(_)) => "created",
                (Some(_), None) => "deleted",
                (Some(a), Some(b)) if a == b => "unchanged",
                (Some(_), Some(_)) => "modified",
                (None, None) => "unchanged",
            };
            let (added, removed) = count(
                before.as_deref().unwrap_or(""),
                after.as_deref().unwrap_or(""),
            );
            FileStat {
                path: path.clone(),
                added,
                removed,
                change,
            }
        })
        .collect()
}

fn count(before: &str, after: &str) -> (usize, usize) {
    let diff = TextDiff::from_lines(before, after);
    let mut added = 0;
    let mut removed = 0;
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => added += 1,
            ChangeTag::Delete => removed += 1,
            ChangeTag::Equal => {}
        }
    }
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines() {
        assert_eq!(count("", "a\nb\n"), (2, 0));
        assert_eq!(count("a\nb\nc\n", "a\nx\nc\n"), (1, 1));
        assert_eq!(count("a\n", ""), (0, 1));
    }

    #[test]
    fn without_a_snapshot_every_file_is_new() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "1\n2\n").unwrap();
        let stats = diffstat(dir.path(), None, &crate::paths::project_paths(&["a", "b"]));
        assert_eq!(stats[0].added, 2);
        assert_eq!(stats[0].change, "created");
        assert_eq!(stats[1].change, "unchanged");
    }
}
