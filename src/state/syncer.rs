//! The journal's syncer: a thread that makes appended lines durable (fdatasync) while the
//! engine goes on, one sync covering every line written while the previous one ran (a group
//! commit).
//!
//! Why: a sync of the journal took the engine's loop 4 ms at the median and 28 ms at p99 on
//! the benchmark machine when other processes wrote to the disk, and every journaled event
//! paid it before the loop could look at the next exit or write: in the busy scenario the
//! loop spent most of its time waiting for the disk (see BENCHMARKS.md). A line is in the
//! kernel's hands once `write` returns: every reader sees it, and a crash of the engine (or a
//! kill) loses nothing. Only a crash of the machine within one sync's time can lose the last
//! lines, as a crash during the sync always could; `Journal::sync` waits for durability
//! where it must come first (the engine's end, a restore).

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// How far syncing got, shared with the thread. Positions are byte lengths of the journal.
#[derive(Debug, Default)]
struct Progress {
    /// Length written that should be made durable.
    wanted: u64,
    /// Length known durable.
    done: u64,
    /// The first sync that failed, reported by the next `request` or `wait`.
    failed: Option<(std::io::ErrorKind, String)>,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

/// The sync thread of one open journal file; stopped (after a last sync) when dropped.
#[derive(Debug)]
pub(super) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts syncing `file` (a handle of the journal's open file); `durable` is how much of
    /// it already is.
    pub(super) fn start(file: File, durable: u64) -> std::io::Result<Syncer> {
        let shared = Arc::new(Shared::default());
        {
            let mut p = lock(&shared);
            p.wanted = durable;
            p.done = durable;
        }
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("orch-journal-sync".into())
            .spawn(move || run(&file, &theirs))?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for the journal's first `len` bytes to be made durable, without waiting. Fails
    /// when an earlier sync failed: the disk is in trouble and the caller must hear of it.
    pub(super) fn request(&self, len: u64) -> std::io::Result<()> {
        let mut p = lock(&self.shared);
        if let Some(e) = &p.failed {
            return Err(failure(e));
        }
        if len > p.wanted {
            p.wanted = len;
            self.shared.changed.notify_all();
        }
        Ok(())
    }

    /// Waits until the first `len` bytes are durable.
    pub(super) fn wait(&self, len: u64) -> std::io::Result<()> {
        self.request(len)?;
        let mut p = lock(&self.shared);
        while p.done < len && p.failed.is_none() {
            p = self
                .shared
                .changed
                .wait(p)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        p.failed.as_ref().map_or(Ok(()), |e| Err(failure(e)))
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        {
            let mut p = lock(&self.shared);
            p.stop = true;
            self.shared.changed.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn failure((kind, text): &(std::io::ErrorKind, String)) -> std::io::Error {
    std::io::Error::new(*kind, text.clone())
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Progress> {
    shared
        .progress
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The thread: syncs whenever more is wanted than done; on stop, syncs what is left first.
fn run(file: &File, shared: &Shared) {
    loop {
        let target = {
            let mut p = lock(shared);
            while p.wanted <= p.done && !p.stop {
                p = shared
                    .changed
                    .wait(p)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if p.wanted <= p.done || p.failed.is_some() {
                return;
            }
            p.wanted
        };
        let result = file.sync_data();
        let mut p = lock(shared);
        match result {
            Ok(()) => p.done = p.done.max(target),
            Err(e) => {
                p.failed = Some((e.kind(), e.to_string()));
            }
        }
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_what_was_asked_and_stops_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        std::fs::write(&path, "").unwrap();
        let file = File::options().append(true).open(&path).unwrap();
        let syncer = Syncer::start(file.try_clone().unwrap(), 0).unwrap();
        use std::io::Write as _;
        (&file).write_all(b"line\n").unwrap();
        syncer.request(5).unwrap();
        syncer.wait(5).unwrap();
        assert!(lock(&syncer.shared).done >= 5);
        // Asking again for less, or for the same, returns at once.
        syncer.wait(3).unwrap();
        (&file).write_all(b"more\n").unwrap();
        syncer.request(10).unwrap();
        drop(syncer); // syncs what is left, then the thread ends
    }

    #[test]
    fn a_failed_sync_is_reported_by_the_next_request() {
        let syncer = Syncer::start(File::open("/dev/null").unwrap(), 0).unwrap();
        // /dev/null syncs fine; simulate the failure the thread would record.
        lock(&syncer.shared).failed = Some((std::io::ErrorKind::StorageFull, "ENOSPC".into()));
        let e = syncer.request(1).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
        assert!(syncer.wait(1).is_err());
    }
}
