//! The tree watcher's thread: turns raw notify events into [`FsChange`]s.
//!
//! It keeps the set of known files (to tell a new file from an existing one and to expand a
//! directory that leaves the tree into one `Removed` per file), the set of watched
//! directories, the writes not yet reported, and the halves of renames waiting for their
//! other half. Only this thread touches that state.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind};
use notify::event::{Event, RenameMode};
use tokio::sync::mpsc::UnboundedSender;

use super::error::WatchError;
use super::rules::Ignore;
use super::tree::{ChangeKind, FsChange, Msg, watch_dir};
use super::walk::{Walked, walk};

/// How long a write may stay open before it is reported without waiting for the close.
const WRITE_GRACE: Duration = Duration::from_millis(30);
/// How often a file kept open and written to is re-reported.
const REWRITE_EVERY: Duration = Duration::from_secs(1);
/// How long the first half of a rename waits for its second; alone, it left the tree. The
/// kernel queues the halves one right after the other, but notify's thread hands them over
/// one by one and can be preempted in between on a busy machine: 10 ms was within reach of
/// that. Only a move out of the tree waits this long (and a barrier settles it at once).
pub(super) const RENAME_GRACE: Duration = Duration::from_millis(50);
/// Later than every deadline: `flush` settles what waits until now plus this, so all of it.
const FLUSH: Duration = Duration::from_secs(3600);

pub(crate) struct Tracker {
    pub(super) root: PathBuf,
    pub(super) ignore: Ignore,
    pub(super) watcher: notify::RecommendedWatcher,
    pub(super) tx: UnboundedSender<FsChange>,
    pub(super) known: BTreeSet<String>,
    pub(super) dirs: BTreeSet<String>,
    pub(super) watched: Arc<AtomicUsize>,
    /// Files created or written whose change is not reported yet.
    pub(super) pending: HashMap<String, Pending>,
    /// Expiry order of `pending`; entries whose `seq` no longer matches are stale.
    pub(super) deadlines: VecDeque<(Instant, u64, String)>,
    /// Files reported while still open for writing, with when they were last reported.
    pub(super) writing: HashMap<String, Instant>,
    /// First halves of renames (MOVED_FROM), oldest first.
    pub(super) froms: VecDeque<MovedFrom>,
    pub(super) seq: u64,
    pub(super) receiver_gone: bool,
    /// The barrier directory, canonical (see `TreeWatcher::with_barriers`).
    pub(super) barriers: Option<PathBuf>,
}

pub(super) struct Pending {
    pub(super) created: bool,
    pub(super) wrote: bool,
    pub(super) seq: u64,
}

pub(super) struct MovedFrom {
    pub(super) rel: String,
    pub(super) cookie: usize,
    pub(super) deadline: Instant,
    /// For a directory: the known files that were under it.
    pub(super) dir_files: Option<Vec<String>>,
    /// Whether leaving should be reported: false for a path never reported (created and
    /// moved before its writer closed it, or never known at all).
    pub(super) reported: bool,
}

impl Tracker {
    pub(crate) fn new(
        root: PathBuf,
        ignore: Ignore,
        watcher: notify::RecommendedWatcher,
        tx: UnboundedSender<FsChange>,
        walked: Walked,
        watched: Arc<AtomicUsize>,
    ) -> Tracker {
        Tracker {
            root,
            ignore,
            watcher,
            tx,
            known: walked.files.into_iter().collect(),
            dirs: walked.dirs.into_iter().collect(),
            watched,
            pending: HashMap::new(),
            deadlines: VecDeque::new(),
            writing: HashMap::new(),
            froms: VecDeque::new(),
            seq: 0,
            receiver_gone: false,
            barriers: None,
        }
    }

    pub(crate) fn run(mut self, inbox: Receiver<Msg>) {
        while !self.receiver_gone {
            let message = match self.next_deadline() {
                None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => inbox.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match message {
                Ok(Msg::Event(Ok(event))) => self.handle(event),
                Ok(Msg::Event(Err(err))) => {
                    let reason = WatchError::from_notify(err, &self.root).to_string();
                    self.emit(String::new(), ChangeKind::WatchFailed { reason });
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.expire(Instant::now());
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let write = self.deadlines.front().map(|d| d.0);
        let rename = self.froms.front().map(|f| f.deadline);
        match (write, rename) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn handle(&mut self, event: Event) {
        if event.need_rescan() {
            self.emit(String::new(), ChangeKind::Rescan);
            self.resync("");
            return;
        }
        // Every open() in a watched directory is reported too: drop those first, cheaply.
        if matches!(event.kind, EventKind::Access(AccessKind::Open(_))) {
            return;
        }
        if let Some(token) = self.barrier(&event) {
            // Made, or renamed into place (the engine reuses the files of barriers passed,
            // under names starting with a dot).
            let raised = matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To))
            );
            if raised && !token.starts_with('.') {
                // Everything that came before is reported now, not at its deadline: a
                // write not closed yet (a link, a writer that outlives its agent), and a
                // rename's first half, taken as a move out of the tree. (Rarely, that half
                // belongs to a rename another process is making at this very moment: its
                // second half then reads as a file created, not renamed; the ownership
                // checks judge both alike.)
                self.flush();
                self.emit(token, ChangeKind::Barrier);
            }
            return;
        }
        let Some(rel) = event.paths.first().and_then(|p| self.rel_of(p)) else {
            return;
        };
        match event.kind {
            EventKind::Create(CreateKind::Folder) => {
                self.settle_froms_touching(&rel);
                self.dir_appeared(&rel, None);
            }
            EventKind::Create(_) => self.file_created(rel),
            EventKind::Modify(ModifyKind::Data(_)) => self.file_written(rel, true),
            EventKind::Modify(ModifyKind::Metadata(_)) => self.attributes_changed(rel),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                if let Some(cookie) = event.attrs.tracker() {
                    self.moved_from(rel, cookie);
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                self.moved_to(rel, event.attrs.tracker());
            }
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => self.file_closed(rel),
            EventKind::Remove(RemoveKind::Folder) => self.dir_removed(&rel),
            EventKind::Remove(RemoveKind::File) => self.file_removed(rel),
            _ => {}
        }
    }

    /// The name of the file, when `event` happened in the barrier directory.
    fn barrier(&self, event: &Event) -> Option<String> {
        let dir = self.barriers.as_deref()?;
        let path = event.paths.first()?;
        (path.parent() == Some(dir))
            .then(|| path.file_name())
            .flatten()
            .map(|name| name.to_string_lossy().into_owned())
    }

    fn rel_of(&self, path: &Path) -> Option<String> {
        let rest = path.strip_prefix(&self.root).ok()?;
        let mut rel = String::new();
        for part in rest.components() {
            if !rel.is_empty() {
                rel.push('/');
            }
            rel.push_str(&part.as_os_str().to_string_lossy());
        }
        Some(rel)
    }

    pub(super) fn emit(&mut self, path: String, kind: ChangeKind) {
        let change = FsChange {
            path,
            kind,
            at: SystemTime::now(),
        };
        if self.tx.send(change).is_err() {
            self.receiver_gone = true;
        }
    }

    fn file_created(&mut self, rel: String) {
        self.settle_froms_touching(&rel);
        if rel.is_empty() || self.ignore.is_ignored(&rel, false) || self.known.contains(&rel) {
            // Already known: the scan of a new directory listed it first.
            return;
        }
        self.known.insert(rel.clone());
        // Already renamed or deleted again: let the events that follow decide.
        let is_regular =
            std::fs::symlink_metadata(self.root.join(&rel)).map_or(true, |m| m.is_file());
        if is_regular {
            self.start_pending(rel, true, false);
        } else {
            // Symlinks and the like are complete as soon as they exist.
            self.emit(rel, ChangeKind::Created);
        }
    }

    /// Content written (`wrote`), or only attributes changed (chmod, touch).
    fn file_written(&mut self, rel: String, wrote: bool) {
        self.settle_froms_touching(&rel);
        if rel.is_empty() || self.ignore.is_ignored(&rel, false) {
            return;
        }
        if let Some(pending) = self.pending.get_mut(&rel) {
            pending.wrote |= wrote;
            return;
        }
        if let Some(last) = self.writing.get_mut(&rel) {
            if last.elapsed() >= REWRITE_EVERY {
                *last = Instant::now();
                self.emit(rel, ChangeKind::Modified);
            }
            return;
        }
        let created = self.known.insert(rel.clone());
        self.start_pending(rel, created, wrote);
    }

    fn attributes_changed(&mut self, rel: String) {
        if self.dirs.contains(&rel)
            || std::fs::symlink_metadata(self.root.join(&rel)).map_or(true, |m| m.is_dir())
        {
            return;
        }
        self.file_written(rel, false);
    }

    fn file_closed(&mut self, rel: String) {
        if rel.is_empty() || self.ignore.is_ignored(&rel, false) {
            return;
        }
        if let Some(pending) = self.pending.remove(&rel) {
            let kind = if pending.created {
                ChangeKind::Created
            } else {
                ChangeKind::Modified
            };
            self.emit(rel.clone(), kind);
        } else if self.writing.remove(&rel).is_some() {
            self.emit(rel.clone(), ChangeKind::Modified);
        } else {
            return;
        }
        self.rules_may_have_changed(&rel);
    }

    fn file_removed(&mut self, rel: String) {
        self.settle_froms_touching(&rel);
        if rel.is_empty() || self.ignore.is_ignored(&rel, false) {
            return;
        }
        self.writing.remove(&rel);
        let unreported = self.pending.remove(&rel).is_some_and(|p| p.created);
        self.known.remove(&rel);
        if !unreported {
            self.emit(rel.clone(), ChangeKind::Removed);
            self.rules_may_have_changed(&rel);
        }
    }

    fn start_pending(&mut self, rel: String, created: bool, wrote: bool) {
        self.seq += 1;
        let seq = self.seq;
        self.deadlines
            .push_back((Instant::now() + WRITE_GRACE, seq, rel.clone()));
        self.pending.insert(
            rel,
            Pending {
                created,
                wrote,
                seq,
            },
        );
    }

    /// Reports what waited until `now`: writes not closed after their grace, a rename's
    /// first half whose second never came.
    pub(super) fn expire(&mut self, now: Instant) {
        self.settle(now, now);
    }

    /// Reports everything that waits, whatever its deadline (at a barrier).
    fn flush(&mut self) {
        let now = Instant::now();
        self.settle(now + FLUSH, now);
    }

    fn settle(&mut self, until: Instant, now: Instant) {
        while let Some((at, seq, _)) = self.deadlines.front() {
            if *at > until {
                break;
            }
            let seq = *seq;
            let Some((_, _, rel)) = self.deadlines.pop_front() else {
                break;
            };
            if self.pending.get(&rel).is_none_or(|p| p.seq != seq) {
                continue;
            }
            if let Some(pending) = self.pending.remove(&rel) {
                if pending.wrote {
                    self.writing.insert(rel.clone(), now);
                }
                let kind = if pending.created {
                    ChangeKind::Created
                } else {
                    ChangeKind::Modified
                };
                self.emit(rel.clone(), kind);
                self.rules_may_have_changed(&rel);
            }
        }
        while self.froms.front().is_some_and(|f| f.deadline <= until) {
            if let Some(from) = self.froms.pop_front() {
                self.left_tree(from);
            }
        }
    }

    /// A watched `.gitignore` changed: re-read it and bring the watches and known files in
    /// line with the new rules.
    pub(super) fn rules_may_have_changed(&mut self, rel: &str) {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        if name == ".gitignore" {
            let dir = dir.to_string();
            self.ignore.forget_dir(&dir);
            self.resync(&dir);
        }
    }

    /// Walks `dir` again: watches what is not watched, reports files found that were not
    /// known as `Created` and known files gone as `Removed`; files that became ignored are
    /// forgotten silently.
    fn resync(&mut self, dir: &str) {
        let walked = self.walk(dir);
        let found: BTreeSet<String> = walked.files.into_iter().collect();
        let found_dirs: BTreeSet<String> = walked.dirs.into_iter().collect();
        let before: BTreeSet<String> = take_under(&mut self.known, dir, true).into_iter().collect();
        for old in &before {
            if !found.contains(old) && !self.ignore.is_ignored(old, false) {
                self.emit(old.clone(), ChangeKind::Removed);
            }
        }
        for gone in take_under(&mut self.dirs, dir, true) {
            if !found_dirs.contains(&gone) {
                let _ = notify::Watcher::unwatch(&mut self.watcher, &self.root.join(&gone));
            }
        }
        self.dirs.extend(found_dirs);
        self.count_watches();
        for file in found {
            if self.known.insert(file.clone()) && !before.contains(&file) {
                self.emit(file, ChangeKind::Created);
            }
        }
        if let Some(err) = walked.error {
            let reason = err.to_string();
            self.emit(dir.to_string(), ChangeKind::WatchFailed { reason });
        }
    }

    pub(super) fn walk(&mut self, dir: &str) -> Walked {
        let Tracker {
            root,
            ignore,
            watcher,
            ..
        } = self;
        walk(root, dir, ignore, &mut |abs| watch_dir(watcher, abs))
    }

    pub(super) fn count_watches(&self) {
        self.watched.store(self.dirs.len(), Ordering::Relaxed);
    }
}

/// Removes and returns the entries of `set` under directory `dir` ("" is the root), and
/// `dir` itself when `inclusive`.
pub(crate) fn take_under(set: &mut BTreeSet<String>, dir: &str, inclusive: bool) -> Vec<String> {
    if dir.is_empty() {
        return std::mem::take(set).into_iter().collect();
    }
    let mut taken = Vec::new();
    if inclusive && set.remove(dir) {
        taken.push(dir.to_string());
    }
    let start = format!("{dir}/");
    // '0' sorts right after '/', so this is exactly the range of paths below `dir`.
    let end = format!("{dir}0");
    let below: Vec<String> = set.range(start..end).cloned().collect();
    for path in below {
        set.remove(&path);
        taken.push(path);
    }
    taken
}

pub(crate) fn has_under(set: &BTreeSet<String>, dir: &str) -> bool {
    set.range(format!("{dir}/")..format!("{dir}0"))
        .next()
        .is_some()
}
