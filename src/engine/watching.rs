//! What the engine watches: the project tree (ownership, and the barriers behind an agent's
//! last writes), the guarded parts of its `.git/`, and the run directory (exit records, logs,
//! pane-died markers). A unit test driven input by input watches nothing: it hands the engine
//! those changes itself.

use super::warnings::{self, Unjournaled};
use crate::state::WarningKind::Unpoliced;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc::UnboundedSender;

use crate::config::Config;
use crate::state::{RunDir, RunState};
use crate::watch::{DirWatcher, FsChange, GitGuard, Ignore, TreeWatcher};

/// The tree the agents work in: its root, and for a run on a branch the branch's ref
/// (`refs/heads/orch/<run-id>`), which the `.git/` guard watches in the user's repository.
#[derive(Debug, Clone, Copy)]
pub(super) struct WorkTree<'a> {
    pub root: &'a Path,
    pub own_ref: Option<&'a str>,
}

pub(super) struct Watching {
    /// The run directory's watcher; None when nothing is watched.
    run_files: Option<DirWatcher>,
    /// What the ownership watcher ignores; the final sweep ignores the same.
    ignore: Ignore,
    /// Kept alive for the run: dropping it stops the watching.
    _tree: Option<TreeWatcher>,
    /// The guarded parts of the project's `.git/` (None outside a git work tree).
    git_guard: Option<GitGuard>,
}

impl Watching {
    /// Starts watching (when `watchers`) the project at `root` for the run in `dir`, its
    /// changes sent on `fs_tx`, the run's files on `dir_tx`. Also returns the barrier
    /// directory, when barriers can be had (see barrier.rs), and what it could not watch, to be
    /// journaled once the journal takes warnings (see warnings.rs).
    pub(super) fn open(
        tree: WorkTree<'_>,
        dir: &RunDir,
        state: &RunState,
        config: &Config,
        watchers: bool,
        fs_tx: UnboundedSender<FsChange>,
        dir_tx: UnboundedSender<PathBuf>,
    ) -> anyhow::Result<(Watching, Option<PathBuf>, Vec<Unjournaled>)> {
        let WorkTree { root, own_ref } = tree;
        let mut early = Vec::new();
        let ignore = Ignore::new(root, &config.ownership.ignore)?;
        if !watchers {
            let watching = Watching {
                run_files: None,
                ignore,
                _tree: None,
                git_guard: None,
            };
            return Ok((watching, None, early));
        }
        let run_files = Some(DirWatcher::new(dir_tx)?);
        let git_guard = open_git_guard(root, own_ref, dir, state, &fs_tx, &mut early);
        // Without barriers (their directory cannot be made or watched) the engine still
        // runs, its checks starting at each exit (see barrier.rs).
        let mut barriers = Some(dir.barriers()).filter(|d| std::fs::create_dir_all(d).is_ok());
        let tree = watch_tree(root, &ignore, fs_tx, &mut barriers, &mut early)?;
        let watching = Watching {
            run_files,
            ignore,
            _tree: Some(tree),
            git_guard,
        };
        Ok((watching, barriers, early))
    }

    /// Watches an attempt's directory for its exit record and logs.
    pub(super) fn watch(&mut self, dir: &Path) -> anyhow::Result<()> {
        if let Some(watcher) = &mut self.run_files {
            watcher.watch(dir)?;
        }
        Ok(())
    }

    pub(super) fn unwatch(&mut self, dir: &Path) {
        if let Some(watcher) = &mut self.run_files {
            watcher.unwatch(dir);
        }
    }

    pub(super) fn ignore(&self) -> &Ignore {
        &self.ignore
    }

    /// From now on, what is ignored is what was ignored at the start (see `Ignore::freeze`).
    pub(super) fn freeze(&self, gitignore: crate::watch::StartRules, exclude: Option<&[u8]>) {
        self.ignore.freeze(gitignore, exclude);
    }

    pub(super) fn git_guard(&self) -> Option<&GitGuard> {
        self.git_guard.as_ref()
    }

    pub(super) fn git_guard_mut(&mut self) -> Option<&mut GitGuard> {
        self.git_guard.as_mut()
    }
}

/// The project tree's watcher, with barriers where it can (else `barriers` is emptied).
fn watch_tree(
    root: &Path,
    ignore: &Ignore,
    fs_tx: UnboundedSender<FsChange>,
    barriers: &mut Option<PathBuf>,
    early: &mut Vec<Unjournaled>,
) -> anyhow::Result<TreeWatcher> {
    let tree_watcher = match TreeWatcher::with_barriers(
        root,
        ignore.clone(),
        fs_tx.clone(),
        barriers.as_deref(),
    ) {
        Ok(watcher) => watcher,
        Err(e) if barriers.is_some() => {
            // Only the barriers' fault if the tree alone can be watched.
            let watcher = TreeWatcher::start(root, ignore.clone(), fs_tx)?;
            early.push(warnings::early(
                Unpoliced,
                format!(
                    "{e}; a task's checks start at its exit, and may miss the writes its \
                     agent made just before"
                ),
            ));
            *barriers = None;
            watcher
        }
        Err(e) => return Err(e.into()),
    };
    Ok(tree_watcher)
}

/// The guard of the project's `.git/`, its copy taken by the run's first engine (before any
/// agent starts), watched from now on. Without it the run goes on, saying what it costs.
fn open_git_guard(
    root: &Path,
    own_ref: Option<&str>,
    dir: &RunDir,
    state: &RunState,
    fs_tx: &UnboundedSender<FsChange>,
    early: &mut Vec<Unjournaled>,
) -> Option<GitGuard> {
    let mut guard = match GitGuard::open_for(root, &dir.path().join("git-meta"), own_ref) {
        Ok(guard) => guard?,
        Err(e) => {
            early.push(warnings::early(
                Unpoliced,
                format!(
                    "cannot copy the guarded parts of the project's .git/ ({e}): writes \
                     there by agents will not be detected in this run"
                ),
            ));
            return None;
        }
    };
    guard.already_reported(state.violations.iter().map(|v| v.path.as_str()));
    if let Err(e) = guard.watch(fs_tx.clone()) {
        early.push(warnings::early(
            Unpoliced,
            format!(
                "cannot watch the project's .git/ ({e}): writes there are still found \
                 before each task's checks and at the end of the run"
            ),
        ));
    }
    Some(guard)
}
