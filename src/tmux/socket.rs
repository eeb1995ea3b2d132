//! Which tmux server a run lives on, named so that every later command reaches it.
//!
//! tmux picks its server from `-S path`, from `-L name` (a socket under `tmux-<uid>/` in
//! `$TMUX_TMPDIR` or `/tmp`), or, with neither, from `$TMUX` when it runs inside tmux and
//! `default` otherwise. So "no socket" means a different server inside `tmux -L other`
//! than in a plain shell: a run started inside tmux and recorded as "the default server"
//! was lost to `orch status` and `orch down` run from outside, while its agents worked on.
//! `orch up` therefore pins the server by its socket path, which means the same server from
//! anywhere, and records that path in `run.json`.

use std::path::{Path, PathBuf};

use super::{RealTmux, TmuxError};

impl RealTmux {
    /// The path of the socket this `RealTmux` reaches: a `-S` path as it is, else the
    /// running server's own answer, else (no server yet) where tmux will put it.
    pub fn resolved_socket_path(&self) -> Result<PathBuf, TmuxError> {
        if let Some(path) = self.socket.as_deref().filter(|s| s.contains('/')) {
            return Ok(absolute(Path::new(path)));
        }
        match self.socket_path() {
            Ok(path) if !path.as_os_str().is_empty() => Ok(absolute(&path)),
            Ok(_) | Err(TmuxError::ServerNotRunning { .. }) => {
                Ok(expected_socket_path(self.socket.as_deref()))
            }
            Err(err) => Err(err),
        }
    }

    /// The same server, named by its socket path (`-S`), so that it is reached alike from
    /// inside any tmux and from a plain shell.
    pub fn pinned(&self) -> Result<RealTmux, TmuxError> {
        let path = self.resolved_socket_path()?;
        Ok(RealTmux::new(
            Some(path.to_string_lossy().into_owned()),
            self.config.clone(),
        ))
    }
}

/// Where tmux puts the socket for `socket` (`-L name`, `-S path`, or neither) when it starts
/// a server, without asking one: tmux 3.3a's rules (`make_label` in tmux.c).
pub fn expected_socket_path(socket: Option<&str>) -> PathBuf {
    match socket {
        Some(path) if path.contains('/') => absolute(Path::new(path)),
        Some(name) => socket_dir().join(name),
        None => inside_tmux().unwrap_or_else(|| socket_dir().join("default")),
    }
}

/// The socket path of the tmux server this process runs inside: `$TMUX`'s first
/// comma-separated field (tmux sets `TMUX=path,server-pid,session-index`).
pub fn inside_tmux() -> Option<PathBuf> {
    let value = std::env::var_os("TMUX")?;
    let value = value.to_string_lossy();
    let path = value.split(',').next().unwrap_or_default();
    (!path.is_empty()).then(|| absolute(Path::new(path)))
}

/// `tmux-<uid>` in the first of `$TMUX_TMPDIR` and `/tmp` that exists, with its symlinks
/// resolved, as tmux does.
fn socket_dir() -> PathBuf {
    let base = std::env::var_os("TMUX_TMPDIR")
        .filter(|d| !d.is_empty())
        .and_then(|d| std::fs::canonicalize(d).ok())
        .or_else(|| std::fs::canonicalize("/tmp").ok())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    base.join(format!("tmux-{uid}"))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_kept_and_a_name_goes_under_tmux_uid() {
        assert_eq!(
            expected_socket_path(Some("/run/x/sock")),
            PathBuf::from("/run/x/sock")
        );
        let named = expected_socket_path(Some("orch-n"));
        assert!(named.ends_with("orch-n"), "{}", named.display());
        let uid = unsafe { libc::getuid() };
        assert_eq!(
            named.parent().unwrap().file_name().unwrap(),
            format!("tmux-{uid}").as_str()
        );
        assert!(expected_socket_path(Some("rel/sock")).is_absolute());
    }

    #[test]
    fn a_path_is_pinned_without_asking_a_server() {
        let tmux = RealTmux::new(Some("/nowhere/orch-sock".into()), None);
        assert_eq!(
            tmux.pinned().unwrap().socket.as_deref(),
            Some("/nowhere/orch-sock")
        );
    }
}
