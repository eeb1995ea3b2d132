//! The project-tree watcher: one non-recursive inotify watch per non-ignored directory, and
//! a thread that turns raw notifications into [`FsChange`]s for the engine.
//!
//! notify's own recursive mode is not used because it watches (and walks) everything,
//! `target/` and `node_modules/` included. Here ignored trees cost nothing: they are neither
//! walked nor watched, and directories created later are watched (and scanned once) as they
//! appear.
//!
//! The notify callback only pushes into a std channel; a dedicated thread owns all state
//! (known files, watched directories, writes in progress) and sends results to the engine
//! through its tokio channel. When idle, that thread blocks on the channel: no polling.
//!
//! What is reported, for files only (never for directories themselves):
//! - a write is reported when the writer closes the file (`Created` if the file is new,
//!   `Modified` otherwise), or after 30 ms if it stays open, then at most once a second while
//!   it keeps being written, and once more at the close;
//! - a file created and deleted (or moved away) before it was ever closed is not reported;
//! - a rename inside the tree is `Renamed { from }`; into the tree from outside or from an
//!   ignored path, `Created` (`Modified` if it replaced a file); out of the tree or to an
//!   ignored path, `Removed`;
//! - an atomic save (write `tmp`, rename over `file`) is `Created` of `tmp`, then
//!   `Renamed { from: tmp }` at `file`: judge a path by its state on disk when handling it;
//! - a directory renamed inside the tree gives one `Renamed` per file below it, one moved
//!   out one `Removed` per known file, one moved in or created one `Created` per file found
//!   when it is scanned; a deleted directory gives one `Removed` per file (the kernel
//!   reports each unlink);
//! - `Snapshot::restore` renames its content into place from the store, so a restored
//!   file shows up as `Created`/`Modified` too (keep the store under `.orch/`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::SystemTime;

use notify::Watcher;
use tokio::sync::mpsc::UnboundedSender;

use super::error::WatchError;
use super::events::Tracker;
use super::rules::Ignore;
use super::walk::walk;

/// One change to a project file, as seen by the tree watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsChange {
    /// Relative to the project root, normalized, '/'-separated ("" for the root itself).
    pub path: String,
    pub kind: ChangeKind,
    /// When the watcher learned of it.
    pub at: SystemTime,
}

/// What happened to [`FsChange::path`].
///
/// Writes are reported once the writer closes the file, so the content is complete: a new
/// file gives `Created`, an existing one `Modified`. A file still open for writing after a
/// few tens of milliseconds is reported early, then again (`Modified`) at most once a second
/// while it is written, and once more when it is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Modified,
    Removed,
    /// Renamed inside the tree from `from` to `path`; `path` may have existed before (an
    /// atomic save that replaced it).
    Renamed {
        from: String,
    },
    /// The kernel's event queue overflowed: changes were lost, the caller must rescan (for
    /// instance with `Snapshot::changed_since`). `path` is "". Watches are repaired and
    /// files found added or missing are still reported as `Created`/`Removed`.
    Rescan,
    /// The directory `path` could not be watched (usually the inotify watch limit): changes
    /// below it go unseen. `reason` says what to do about it.
    WatchFailed {
        reason: String,
    },
    /// A file named `path` appeared in the barrier directory (see
    /// [`TreeWatcher::with_barriers`]): every change the kernel reported before it has been
    /// reported before this.
    Barrier,
    /// Something in the guarded parts of the project's repository changed (see
    /// [`GitGuard`](super::GitGuard)): compare them with the start. `path` is "".
    GitMeta,
}

pub(crate) enum Msg {
    Event(notify::Result<notify::Event>),
    Stop,
}

/// Watches a project tree for as long as it lives; dropping it stops the watching.
pub struct TreeWatcher {
    root: PathBuf,
    control: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    watched: Arc<AtomicUsize>,
}

impl std::fmt::Debug for TreeWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeWatcher")
            .field("root", &self.root)
            .field("watched_dirs", &self.watched_dirs())
            .finish()
    }
}

impl TreeWatcher {
    /// Walks `root` (skipping what `ignore` ignores), watches every directory found, and
    /// starts reporting changes to `tx`. Files present at start are not reported.
    /// Blocking: a few hundred milliseconds for 100,000 files.
    pub fn start(
        root: &Path,
        ignore: Ignore,
        tx: UnboundedSender<FsChange>,
    ) -> Result<TreeWatcher, WatchError> {
        TreeWatcher::with_barriers(root, ignore, tx, None)
    }

    /// Like [`TreeWatcher::start`], and also watches the existing directory `barriers`
    /// (ignored or not, typically in the run's directory): a file created there is reported
    /// as [`ChangeKind::Barrier`], after every change the kernel reported before it, because
    /// all of it comes through the same inotify queue. Whoever saw something happen (an
    /// agent's exit) and must know the changes made before it creates a file there and
    /// waits for its barrier. Nothing else in that directory is reported.
    pub fn with_barriers(
        root: &Path,
        ignore: Ignore,
        tx: UnboundedSender<FsChange>,
        barriers: Option<&Path>,
    ) -> Result<TreeWatcher, WatchError> {
        let root = root
            .canonicalize()
            .map_err(|err| WatchError::from_io(err, root))?;
        let barriers = barriers
            .map(|dir| {
                dir.canonicalize()
                    .map_err(|err| WatchError::from_io(err, dir))
            })
            .transpose()?;
        let (control, inbox) = mpsc::channel();
        let events = control.clone();
        let mut watcher = notify::recommended_watcher(move |event| {
            // Never blocks: an unbounded channel drained by the tracker thread.
            let _ = events.send(Msg::Event(event));
        })
        .map_err(|err| WatchError::from_notify(err, &root))?;
        let walked = walk(&root, "", &ignore, &mut |dir| watch_dir(&mut watcher, dir));
        if let Some(err) = walked.error {
            return Err(err);
        }
        if walked.dirs.is_empty() {
            return Err(WatchError::NotFound(root));
        }
        if let Some(dir) = &barriers {
            watch_dir(&mut watcher, dir)?;
        }
        let watched = Arc::new(AtomicUsize::new(walked.dirs.len()));
        let mut tracker = Tracker::new(root.clone(), ignore, watcher, tx, walked, watched.clone());
        tracker.barriers = barriers;
        let thread = std::thread::Builder::new()
            .name("orch-watch-tree".into())
            .spawn(move || tracker.run(inbox))
            .map_err(|err| WatchError::Other(format!("cannot start the watcher thread: {err}")))?;
        Ok(TreeWatcher {
            root,
            control,
            thread: Some(thread),
            watched,
        })
    }

    /// How many directories are watched now.
    pub fn watched_dirs(&self) -> usize {
        self.watched.load(Ordering::Relaxed)
    }

    /// The canonical project root that event paths are relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for TreeWatcher {
    fn drop(&mut self) {
        let _ = self.control.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(crate) fn watch_dir(
    watcher: &mut notify::RecommendedWatcher,
    dir: &Path,
) -> Result<(), WatchError> {
    watcher
        .watch(dir, notify::RecursiveMode::NonRecursive)
        .map_err(|err| WatchError::from_notify(err, dir))
}
