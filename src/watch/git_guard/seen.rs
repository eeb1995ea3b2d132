//! What the guard's watcher saw change between two looks, so that a look reads those files
//! and not every guarded one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{TOP_FILES, TREES, walk};

/// More paths than this between two looks (a `git gc`, a checkout of many refs): one look at
/// everything costs less than keeping them.
const MAX_PATHS: usize = 256;

/// What the watcher saw since the last look.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// A [`super::ChangeKind::GitMeta`] was sent and no look has taken this yet.
    signalled: bool,
    /// Everything is to be looked at: events were lost, a directory was made or removed whole,
    /// or too many paths came.
    pub(super) everything: bool,
    /// The paths the events named.
    pub(super) paths: BTreeSet<PathBuf>,
}

/// Notes an event's `paths` (or `everything`); true when the engine is to be signalled: the
/// first event since the last look.
pub(super) fn note<'a>(
    seen: &Mutex<Seen>,
    everything: bool,
    paths: impl IntoIterator<Item = &'a PathBuf>,
) -> bool {
    let mut seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if everything {
        seen.everything = true;
    }
    if !seen.everything {
        seen.paths.extend(paths.into_iter().cloned());
        if seen.paths.len() > MAX_PATHS {
            seen.everything = true;
        }
    }
    if seen.everything {
        seen.paths.clear();
    }
    !std::mem::replace(&mut seen.signalled, true)
}

/// What was seen, leaving nothing: a write made during the look that follows is signalled
/// again.
pub(super) fn take(seen: &Mutex<Seen>) -> Seen {
    std::mem::take(
        &mut *seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// The guarded files (relative to the git directory `dir`) that the `seen` paths name in
/// `dir`: a file itself, or every file under a directory, as it is in `dir` now and as the
/// start had it (`kept`: a directory renamed away is found by the files it had then).
pub(super) fn files_under(dir: &Path, seen: &BTreeSet<PathBuf>, kept: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for path in seen {
        let Ok(rest) = path.strip_prefix(dir) else {
            continue;
        };
        let Some(rel) = rest
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<Vec<&str>>>()
            .map(|parts| parts.join("/"))
        else {
            continue; // a name that is not UTF-8: neither is it in a full look
        };
        let top = rel.split('/').next().unwrap_or("");
        if TREES.contains(&top) {
            let prefix = format!("{rel}/");
            let under: Vec<&str> = kept
                .iter()
                .copied()
                .filter(|k| k.starts_with(&prefix))
                .collect();
            let is_dir = std::fs::symlink_metadata(dir.join(&rel)).is_ok_and(|m| m.is_dir());
            if is_dir || !under.is_empty() {
                walk(dir, &rel, &mut out);
                out.extend(under.into_iter().map(String::from));
                // A file of the start's, now a directory: gone as a file.
                if kept.contains(&rel.as_str()) {
                    out.push(rel);
                }
            } else if rel.contains('/') && !rel.ends_with(".lock") {
                out.push(rel);
            }
        } else if TOP_FILES.contains(&rel.as_str())
            && (kept.contains(&rel.as_str())
                || !std::fs::symlink_metadata(dir.join(&rel)).is_ok_and(|m| m.is_dir()))
        {
            out.push(rel);
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_seen_path_names_its_file_or_every_file_under_it_now_and_at_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join("git");
        fs::create_dir_all(git.join("hooks/new")).unwrap();
        fs::write(git.join("hooks/new/a"), "").unwrap();
        fs::write(git.join("hooks/new/b.lock"), "").unwrap();
        fs::create_dir_all(git.join("objects")).unwrap();
        fs::create_dir_all(git.join("refs/heads/now-a-dir/y")).unwrap();
        fs::write(git.join("refs/heads/now-a-dir/y/z"), "").unwrap();
        // As the start had them: a directory of refs since renamed away, a ref since made a
        // directory.
        let kept = [
            "refs/heads/gone/x",
            "refs/heads/kept",
            "refs/heads/now-a-dir",
            "config",
        ];
        let seen: BTreeSet<PathBuf> = [
            "hooks/new",
            "refs/heads/gone",
            "config",
            "refs/heads/main",
            "refs/heads/main.lock",
            "index",
            "objects",
            "hooks",
            "refs/heads/now-a-dir",
        ]
        .iter()
        .map(|p| git.join(p))
        .chain([dir.path().join("elsewhere/config")])
        .collect();
        assert_eq!(
            files_under(&git, &seen, &kept),
            [
                "config",
                "hooks/new/a",
                "refs/heads/gone/x",
                "refs/heads/main",
                "refs/heads/now-a-dir",
                "refs/heads/now-a-dir/y/z",
            ]
        );
    }

    #[test]
    fn many_paths_or_a_lost_event_make_one_look_at_everything_signalled_once() {
        let seen = Mutex::new(Seen::default());
        let paths: Vec<PathBuf> = (0..=MAX_PATHS)
            .map(|i| PathBuf::from(i.to_string()))
            .collect();
        assert!(note(&seen, false, &paths[..1]));
        assert!(!note(&seen, false, &paths[1..]));
        let taken = take(&seen);
        assert!(taken.everything && taken.paths.is_empty());
        assert!(
            note(&seen, false, &paths[..2]),
            "signalled again after a look"
        );
        assert!(!note(&seen, true, &paths[2..3]));
        assert!(take(&seen).everything);
    }
}
