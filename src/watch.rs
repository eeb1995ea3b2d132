//! The filesystem side of a run: the project-tree watcher that catches writes to files a task
//! does not own, a small watcher for the run's completion records, the ignore rules both go
//! by, the start-of-run snapshot used to revert violating writes and to sweep for changes
//! the watcher missed, and the guard of the repository's own files in `.git/`.

mod copy;
mod dirs;
mod error;
mod events;
mod git;
mod git_guard;
mod moves;
mod rules;
mod snapshot;
mod tree;
mod walk;

#[cfg(test)]
mod events_tests;
#[cfg(test)]
mod snapshot_tests;

pub use copy::{restore_copy, save_copy};
pub use dirs::DirWatcher;
pub use error::WatchError;
pub use git_guard::{GitChange, GitGuard, GitLook};
pub use rules::{Ignore, IgnoreError, StartRules};
pub use snapshot::{Restored, Snapshot, SnapshotChange, SnapshotError};
pub use tree::{ChangeKind, FsChange, TreeWatcher};
pub use walk::files_under;
