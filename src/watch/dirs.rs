//! Watches a few chosen directories (one per running task attempt, where the launcher writes
//! `exit.json` and output logs) and sends the absolute path of every file created, written,
//! closed after writing, or moved into one of them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use notify::Watcher;
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use tokio::sync::mpsc::UnboundedSender;

use super::error::WatchError;

/// Non-recursive watches on specific directories.
///
/// Every relevant event is forwarded as it comes, so a growing log sends its path once per
/// write: receivers should treat a path as "look at this file again". If the kernel's queue
/// overflows, an empty path is sent: look again at every watched directory.
pub struct DirWatcher {
    watcher: notify::RecommendedWatcher,
    tx: UnboundedSender<PathBuf>,
    dirs: HashSet<PathBuf>,
}

impl std::fmt::Debug for DirWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatcher")
            .field("dirs", &self.dirs)
            .finish()
    }
}

impl DirWatcher {
    pub fn new(tx: UnboundedSender<PathBuf>) -> Result<DirWatcher, WatchError> {
        let sender = tx.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Runs on notify's thread: an unbounded send never blocks.
            let Ok(event) = event else { return };
            if event.need_rescan() {
                let _ = sender.send(PathBuf::new());
                return;
            }
            if is_file_change(&event.kind) {
                for path in event.paths {
                    let _ = sender.send(path);
                }
            }
        })
        .map_err(|err| WatchError::from_notify(err, Path::new("/")))?;
        Ok(DirWatcher {
            watcher,
            tx,
            dirs: HashSet::new(),
        })
    }

    /// Starts watching `dir`, then sends the files already in it, so a record written just
    /// before (or while the engine was down) is not missed.
    pub fn watch(&mut self, dir: &Path) -> Result<(), WatchError> {
        let dir = std::path::absolute(dir).map_err(|err| WatchError::from_io(err, dir))?;
        // Even if watched before: the directory may have been deleted and made again, which
        // ends the old watch.
        self.watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .map_err(|err| WatchError::from_notify(err, &dir))?;
        self.dirs.insert(dir.clone());
        let entries = std::fs::read_dir(&dir).map_err(|err| WatchError::from_io(err, &dir))?;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| !t.is_dir()) {
                let _ = self.tx.send(entry.path());
            }
        }
        Ok(())
    }

    /// Stops watching `dir`. Unwatching a directory that is not watched (or was deleted,
    /// which ends its watch) is not an error.
    pub fn unwatch(&mut self, dir: &Path) {
        let Ok(dir) = std::path::absolute(dir) else {
            return;
        };
        if self.dirs.remove(&dir) {
            let _ = self.watcher.unwatch(&dir);
        }
    }

    /// The directories watched now.
    pub fn watched(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(PathBuf::as_path)
    }
}

fn is_file_change(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(CreateKind::File | CreateKind::Any | CreateKind::Other)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(RenameMode::To))
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}
