//! Errors of the watchers, with the OS's raw failures turned into something a user can act on.

use std::io;
use std::path::{Path, PathBuf};

/// Why a watcher could not start, or could not watch a directory.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "too many directories to watch: raise fs.inotify.max_user_watches \
         (sudo sysctl fs.inotify.max_user_watches=524288)"
    )]
    TooManyWatches,
    #[error(
        "too many inotify instances or open files: raise fs.inotify.max_user_instances \
         (sudo sysctl fs.inotify.max_user_instances=1024) or the open-file limit (ulimit -n)"
    )]
    TooManyInstances,
    #[error("cannot watch {}: it does not exist", .0.display())]
    NotFound(PathBuf),
    #[error("cannot watch {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("file watching failed: {0}")]
    Other(String),
}

impl WatchError {
    /// Maps a notify error raised while watching `path`.
    pub(crate) fn from_notify(err: notify::Error, path: &Path) -> WatchError {
        match err.kind {
            notify::ErrorKind::MaxFilesWatch => WatchError::TooManyWatches,
            notify::ErrorKind::PathNotFound => WatchError::NotFound(path.to_path_buf()),
            notify::ErrorKind::Io(source) => WatchError::from_io(source, path),
            notify::ErrorKind::WatchNotFound => WatchError::NotFound(path.to_path_buf()),
            notify::ErrorKind::Generic(message) => WatchError::Other(message),
            notify::ErrorKind::InvalidConfig(config) => {
                WatchError::Other(format!("invalid watcher configuration {config:?}"))
            }
        }
    }

    pub(crate) fn from_io(source: io::Error, path: &Path) -> WatchError {
        match source.raw_os_error() {
            Some(libc::ENOSPC) => WatchError::TooManyWatches,
            Some(libc::EMFILE | libc::ENFILE) => WatchError::TooManyInstances,
            Some(libc::ENOENT) => WatchError::NotFound(path.to_path_buf()),
            _ => WatchError::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    /// True when the directory vanished before it could be watched: a race, not a failure.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, WatchError::NotFound(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_limit_says_how_to_raise_it() {
        let err = WatchError::from_io(io::Error::from_raw_os_error(libc::ENOSPC), Path::new("/x"));
        let text = err.to_string();
        assert!(
            text.contains("fs.inotify.max_user_watches=524288"),
            "{text}"
        );
        let err = WatchError::from_notify(
            notify::Error::new(notify::ErrorKind::MaxFilesWatch),
            Path::new("/x"),
        );
        assert!(matches!(err, WatchError::TooManyWatches));
    }
}
