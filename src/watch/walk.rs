//! Walks a part of the project tree, skipping ignored entries, and puts a watch on each
//! directory *before* listing it: a file created in between is then either listed or seen by
//! the watch, never missed. Ignored directories are neither entered nor watched.

use std::path::{Path, PathBuf};

use super::error::WatchError;
use super::rules::Ignore;

/// What a walk found, as '/'-separated paths relative to the project root.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    /// Directories now watched, the walk's start included.
    pub dirs: Vec<String>,
    /// Files, symlinks and other non-directories.
    pub files: Vec<String>,
    /// A failure that stopped the walk early (what was found until then is kept).
    pub error: Option<WatchError>,
}

/// Walks `start` (relative to `root`, "" for the root itself), calling `watch` on each
/// directory before reading it. A directory that vanishes or cannot be read is skipped: it
/// cannot hold files anyone can write.
pub(crate) fn walk(
    root: &Path,
    start: &str,
    ignore: &Ignore,
    watch: &mut dyn FnMut(&Path) -> Result<(), WatchError>,
) -> Walked {
    let mut found = Walked::default();
    let start_abs = if start.is_empty() {
        root.to_path_buf()
    } else {
        root.join(start)
    };
    let mut stack: Vec<(PathBuf, String)> = vec![(start_abs, start.to_string())];
    while let Some((abs, rel)) = stack.pop() {
        match watch(&abs) {
            Ok(()) => {}
            Err(err) if err.is_not_found() => continue,
            Err(WatchError::Io { .. }) => continue,
            Err(err) => {
                found.error = Some(err);
                return found;
            }
        }
        found.dirs.push(rel.clone());
        let Ok(entries) = std::fs::read_dir(&abs) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let child = if rel.is_empty() {
                name.into_owned()
            } else {
                format!("{rel}/{name}")
            };
            // d_type from the directory listing: no stat per file.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if ignore.is_ignored_entry(&child, is_dir) {
                continue;
            }
            if is_dir {
                stack.push((entry.path(), child));
            } else {
                found.files.push(child);
            }
        }
    }
    found
}

/// The files under `start` (relative to `root`) that `ignore` does not ignore, watching
/// nothing: for a sweep of a directory the watcher may not have seen.
pub fn files_under(root: &Path, start: &str, ignore: &Ignore) -> Vec<String> {
    walk(root, start, ignore, &mut |_| Ok(())).files
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn skips_ignored_trees_and_watches_each_directory_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src/api")).unwrap();
        fs::create_dir_all(root.join("target/debug")).unwrap();
        fs::create_dir_all(root.join(".git/objects")).unwrap();
        fs::write(root.join(".gitignore"), "target/\n").unwrap();
        fs::write(root.join("src/api/a.rs"), "").unwrap();
        fs::write(root.join("target/debug/x"), "").unwrap();
        let ignore = Ignore::new(root, &[]).unwrap();
        let mut watched = Vec::new();
        let walked = walk(root, "", &ignore, &mut |p| {
            watched.push(p.to_path_buf());
            Ok(())
        });
        let mut dirs = walked.dirs.clone();
        dirs.sort();
        assert_eq!(dirs, ["", "src", "src/api"]);
        let mut files = walked.files.clone();
        files.sort();
        assert_eq!(files, [".gitignore", "src/api/a.rs"]);
        assert_eq!(watched.len(), 3);
    }

    #[test]
    fn watch_limit_stops_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a")).unwrap();
        let ignore = Ignore::new(dir.path(), &[]).unwrap();
        let walked = walk(dir.path(), "", &ignore, &mut |_| {
            Err(WatchError::TooManyWatches)
        });
        assert!(matches!(walked.error, Some(WatchError::TooManyWatches)));
    }
}
