//! The filesystem side of a run: the project-tree watcher that catches writes to files a task
//! does not own, a small watcher for the run's completion records, the ignore rules both go
//! by, and the guard of the repository's own files in `.git/`. (The start-of-run snapshot
//! that reverts violating writes is not a watcher: see [`crate::snapshot`].)

mod dirs;
mod error;
mod events;
mod git_guard;
mod moves;
mod rules;
mod tree;
mod walk;

#[cfg(test)]
mod events_tests;

pub use dirs::DirWatcher;
pub use error::WatchError;
pub use git_guard::{GitChange, GitGuard, GitLook};
pub use rules::{Ignore, IgnoreError, StartRules};
pub use tree::{ChangeKind, FsChange, TreeWatcher};
pub use walk::files_under;
