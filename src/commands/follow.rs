//! Waiting for a run's files to change, event-driven: a directory watcher wakes the waiter,
//! with a periodic wake-up to notice a dead engine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::watch::DirWatcher;

pub(super) struct Follower {
    runtime: tokio::runtime::Runtime,
    rx: UnboundedReceiver<PathBuf>,
    _watcher: DirWatcher,
}

impl Follower {
    pub(super) fn new(dirs: &[&Path]) -> anyhow::Result<Follower> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let (tx, rx) = unbounded_channel();
        let mut watcher = DirWatcher::new(tx)?;
        for dir in dirs {
            watcher.watch(dir)?;
        }
        Ok(Follower {
            runtime,
            rx,
            _watcher: watcher,
        })
    }

    /// Returns when something changed in a watched directory, or after `at_most`, or at
    /// `deadline`.
    pub(super) fn wait(&mut self, at_most: Duration, deadline: Option<Instant>) {
        let mut wait = at_most;
        if let Some(deadline) = deadline {
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        let rx = &mut self.rx;
        self.runtime.block_on(async {
            if let Ok(Some(_)) = tokio::time::timeout(wait, rx.recv()).await {
                // Drain what else is queued: one check covers them all.
                while rx.try_recv().is_ok() {}
            }
        });
    }
}
