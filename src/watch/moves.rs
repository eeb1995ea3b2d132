//! Renames and directories coming and going, for the tree watcher's [`Tracker`].
//!
//! inotify reports a rename as two events sharing a cookie: MOVED_FROM in the old directory,
//! MOVED_TO in the new one. When only one directory is watched (the other is outside the
//! project or ignored) only one half arrives: a lone MOVED_TO is a file arriving (`Created`,
//! or `Modified` if it replaced a known file), a lone MOVED_FROM a file leaving (`Removed`).
//! A MOVED_FROM waits a few milliseconds for its other half before it is taken as leaving.
//!
//! A directory renamed inside the tree gives one `Renamed` per file under it; one that
//! leaves gives one `Removed` per known file; one that arrives is watched, scanned, and each
//! file in it reported `Created`.

use std::collections::BTreeSet;
use std::time::Instant;

use super::events::{MovedFrom, RENAME_GRACE, Tracker, has_under, take_under};
use super::tree::ChangeKind;

impl Tracker {
    /// Takes every rename half-seen on or around `rel` as having left the tree, so that its
    /// `Removed` comes before whatever now happens at `rel`.
    pub(super) fn settle_froms_touching(&mut self, rel: &str) {
        if self.froms.is_empty() {
            return;
        }
        let touching = |other: &str| {
            other == rel || is_below(rel, other) || is_below(other, rel) || rel.is_empty()
        };
        let mut keep = std::collections::VecDeque::new();
        let mut settle = Vec::new();
        for from in std::mem::take(&mut self.froms) {
            if touching(&from.rel) {
                settle.push(from);
            } else {
                keep.push_back(from);
            }
        }
        self.froms = keep;
        for from in settle {
            self.left_tree(from);
        }
    }

    pub(super) fn moved_from(&mut self, rel: String, cookie: usize) {
        self.settle_froms_touching(&rel);
        if rel.is_empty() {
            return;
        }
        let was_dir = self.dirs.contains(&rel) || has_under(&self.known, &rel);
        if self.ignore.is_ignored(&rel, was_dir) {
            return;
        }
        let deadline = Instant::now() + RENAME_GRACE;
        let from = if was_dir {
            let files = take_under(&mut self.known, &rel, false);
            for file in &files {
                self.pending.remove(file);
                self.writing.remove(file);
            }
            // notify drops its watches on the moved directory and below by itself.
            take_under(&mut self.dirs, &rel, true);
            self.count_watches();
            self.ignore.forget_tree(&rel);
            MovedFrom {
                rel,
                cookie,
                deadline,
                dir_files: Some(files),
                reported: true,
            }
        } else {
            self.writing.remove(&rel);
            let unreported = self.pending.remove(&rel).is_some_and(|p| p.created);
            let known = self.known.remove(&rel);
            MovedFrom {
                rel,
                cookie,
                deadline,
                dir_files: None,
                reported: known && !unreported,
            }
        };
        self.froms.push_back(from);
    }

    pub(super) fn moved_to(&mut self, rel: String, cookie: Option<usize>) {
        let from = cookie
            .and_then(|c| self.froms.iter().position(|f| f.cookie == c))
            .and_then(|i| self.froms.remove(i));
        self.settle_froms_touching(&rel);
        if rel.is_empty() {
            return;
        }
        let is_dir = match std::fs::symlink_metadata(self.root.join(&rel)) {
            Ok(meta) => meta.is_dir(),
            // Gone again already: trust what it was.
            Err(_) => from.as_ref().is_some_and(|f| f.dir_files.is_some()),
        };
        if self.ignore.is_ignored(&rel, is_dir) {
            if let Some(from) = from {
                self.left_tree(from);
            }
            return;
        }
        if is_dir {
            self.dir_appeared(&rel, from);
            return;
        }
        self.writing.remove(&rel);
        let replaced_unreported = self.pending.remove(&rel).is_some_and(|p| p.created);
        let existed = self.known.contains(&rel) && !replaced_unreported;
        self.known.insert(rel.clone());
        let kind = match from {
            Some(from) if from.dir_files.is_none() && from.reported => {
                let old = from.rel;
                self.rules_may_have_changed(&old);
                ChangeKind::Renamed { from: old }
            }
            other => {
                if let Some(from) = other.filter(|f| f.dir_files.is_some()) {
                    self.left_tree(from);
                }
                if existed {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Created
                }
            }
        };
        self.emit(rel.clone(), kind);
        self.rules_may_have_changed(&rel);
    }

    /// The other half of a rename never came: what moved left the project (or went to an
    /// ignored place).
    pub(super) fn left_tree(&mut self, from: MovedFrom) {
        match from.dir_files {
            Some(files) => {
                for file in files {
                    self.emit(file, ChangeKind::Removed);
                }
            }
            None if !from.reported => {}
            None => {
                self.emit(from.rel.clone(), ChangeKind::Removed);
                self.rules_may_have_changed(&from.rel);
            }
        }
    }

    /// A directory was created or moved in (then `from` is where it was, if inside the
    /// tree): watch it and everything below, and report the files found.
    pub(super) fn dir_appeared(&mut self, rel: &str, from: Option<MovedFrom>) {
        if self.ignore.is_ignored(rel, true) {
            if let Some(from) = from {
                self.left_tree(from);
            }
            return;
        }
        let walked = self.walk(rel);
        self.dirs.extend(walked.dirs);
        self.count_watches();
        let (old_dir, mut old_files) = match from {
            Some(MovedFrom {
                rel: old,
                dir_files: Some(files),
                ..
            }) => (old, files.into_iter().collect::<BTreeSet<_>>()),
            Some(file) => {
                self.left_tree(file);
                (String::new(), BTreeSet::new())
            }
            None => (String::new(), BTreeSet::new()),
        };
        let mut files = walked.files;
        files.sort();
        for file in files {
            let old = file
                .strip_prefix(rel)
                .and_then(|s| s.strip_prefix('/'))
                .map(|suffix| format!("{old_dir}/{suffix}"));
            if let Some(old) = old.filter(|old| old_files.remove(old)) {
                self.known.insert(file.clone());
                self.emit(file, ChangeKind::Renamed { from: old });
            } else if self.known.insert(file.clone()) {
                self.emit(file, ChangeKind::Created);
            }
        }
        for old in old_files {
            self.emit(old, ChangeKind::Removed);
        }
        if let Some(err) = walked.error {
            let reason = err.to_string();
            self.emit(rel.to_string(), ChangeKind::WatchFailed { reason });
        }
    }

    /// A directory was deleted (the parent's DELETE and the directory's own DELETE_SELF both
    /// land here): files still known under it are reported `Removed`; normally each file's
    /// own deletion was reported before.
    pub(super) fn dir_removed(&mut self, rel: &str) {
        self.settle_froms_touching(rel);
        if self.ignore.is_ignored(rel, true) {
            return;
        }
        for file in take_under(&mut self.known, rel, false) {
            self.writing.remove(&file);
            let unreported = self.pending.remove(&file).is_some_and(|p| p.created);
            if !unreported {
                self.emit(file, ChangeKind::Removed);
            }
        }
        take_under(&mut self.dirs, rel, true);
        self.count_watches();
        self.ignore.forget_tree(rel);
    }
}

/// Whether `path` is strictly below directory `dir`.
fn is_below(path: &str, dir: &str) -> bool {
    path.len() > dir.len() + 1 && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}
