//! `PrivateServer`: a throwaway tmux server on its own socket, killed on drop.
//!
//! Used by `orch doctor` ("can tmux start a server here?") and by every test that needs
//! real tmux, so that nothing ever touches the user's own server. The socket name is
//! unique per process, call and run (`orch-<purpose>-<pid>-<counter>-<random>`), and the
//! server reads no config (`-f /dev/null`), so the user's `~/.tmux.conf` cannot change
//! what is being checked or tested.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{RealTmux, Tmux};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Longest purpose kept in the socket name: Unix socket paths are limited to ~100 bytes.
const MAX_PURPOSE: usize = 24;

/// A private tmux server. It starts when the first session is created through
/// `tmux()`, and `Drop` kills it and removes its socket.
#[derive(Debug)]
pub struct PrivateServer {
    socket: String,
    tmux: RealTmux,
}

impl PrivateServer {
    /// Chooses a fresh socket name; `purpose` (e.g. "doctor", a test name) is kept,
    /// reduced to `[A-Za-z0-9_-]`, to tell servers apart in `ls /tmp/tmux-*`.
    pub fn new(purpose: &str) -> Self {
        let purpose: String = purpose
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(MAX_PURPOSE)
            .collect();
        let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
        // RandomState is seeded randomly per process: enough to avoid reusing a socket
        // left over by an earlier run that had the same pid.
        let random = RandomState::new().build_hasher().finish() & 0xffff_ffff;
        let socket = format!(
            "orch-{purpose}-{}-{counter}-{random:08x}",
            std::process::id()
        );
        let tmux = RealTmux::new(Some(socket.clone()), Some(PathBuf::from("/dev/null")));
        Self { socket, tmux }
    }

    /// The `-L` socket name.
    pub fn socket_name(&self) -> &str {
        &self.socket
    }

    /// A `RealTmux` talking to this server.
    pub fn tmux(&self) -> &RealTmux {
        &self.tmux
    }

    /// Whether the server answers (it exits by itself when its last session ends).
    pub fn is_running(&self) -> bool {
        self.tmux.socket_path().is_ok()
    }

    /// Where tmux puts the socket for `-L name`: `$TMUX_TMPDIR` or `/tmp`, then
    /// `tmux-<uid>/`. Used to clean up when the server cannot be asked.
    pub fn expected_socket_path(&self) -> PathBuf {
        super::expected_socket_path(Some(&self.socket))
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let path = self
            .tmux
            .socket_path()
            .unwrap_or_else(|_| self.expected_socket_path());
        // Errors cannot be reported from drop; a server that is already gone is fine.
        let _ = self.tmux.kill_server();
        // tmux leaves the socket file behind; only remove it if it still is a socket.
        remove_socket(&path);
    }
}

fn remove_socket(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if is_socket {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names_are_unique_and_tame() {
        let a = PrivateServer::new("doctor check/1");
        let b = PrivateServer::new("doctor check/1");
        assert_ne!(a.socket_name(), b.socket_name());
        assert!(
            a.socket_name().starts_with("orch-doctor-check-1-"),
            "{}",
            a.socket_name()
        );
        assert!(
            a.socket_name()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(
            a.tmux().command_prefix(),
            ["tmux", "-L", a.socket_name(), "-f", "/dev/null"]
        );
        assert!(a.expected_socket_path().ends_with(a.socket_name()));
    }
}
