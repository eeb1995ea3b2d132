//! The box's mount namespace, held from outside while the agent ends. When the last process
//! of a mount namespace exits, the kernel takes its mounts down there and then, waiting for
//! an RCU grace period (`synchronize_rcu_expedited`): on a busy machine, milliseconds between
//! the agent's end and its launcher hearing of it. Held open by `orch agent-run` (bwrap's
//! `--info-fd` says the box's first process), the namespace is taken down when the launcher
//! lets it go, after the exit record is written.

use std::io::Read as _;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::Command;

/// The read end of the pipe bwrap writes the box's details to.
#[derive(Debug)]
pub struct Info(std::fs::File);

/// The agent's box, kept from its end until that end is recorded: its mount namespace open
/// (a bwrap of its own), or, for its copy of the run's shared box, its outer process, reaped
/// only then (the box's init says how the agent ended before the copy is taken down).
#[derive(Debug)]
pub enum Hold {
    /// Its mount namespace, kept open by the descriptor alone.
    Namespace { _open: std::fs::File },
    /// Its outer process, reaped when dropped.
    Entered(std::process::Child),
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Hold::Entered(child) = self {
            let _ = child.wait();
        }
    }
}

/// The fd bwrap is told to write its details to (`--info-fd`).
pub(super) const INFO_FD: i32 = 3;

impl Info {
    /// A pipe: its read end, and the write end to give bwrap as [`INFO_FD`] (see [`pass`]).
    pub(super) fn pipe() -> std::io::Result<(Info, OwnedFd)> {
        let mut fds = [0; 2];
        // SAFETY: pipe2(2) writes two new descriptors into `fds`, which we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both are open and ours alone (just made).
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((Info(std::fs::File::from(read)), write))
    }

    /// Reads what bwrap said (it closes its end once it has, or as it fails) and opens the
    /// box's mount namespace. `None` when it cannot: the box then ends as it would anyway.
    pub fn hold(self) -> Option<Hold> {
        let pid = self.child_pid()?;
        std::fs::File::open(format!("/proc/{pid}/ns/mnt"))
            .ok()
            .map(|open| Hold::Namespace { _open: open })
    }

    /// The pid (here) of the box's first process, once bwrap has said it; `None` when bwrap
    /// failed first.
    pub(super) fn child_pid(mut self) -> Option<u32> {
        let mut text = Vec::new();
        (&mut self.0).take(64 * 1024).read_to_end(&mut text).ok()?;
        let info: serde_json::Value = serde_json::from_slice(&text).ok()?;
        info["child-pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
    }
}

/// Gives `write` to the command's process as fd [`INFO_FD`], open across its exec.
pub(super) fn pass(cmd: &mut Command, write: OwnedFd) {
    // SAFETY: only async-signal-safe calls (dup2(2), fcntl(2)) between fork and exec; `write`
    // stays open in the parent until the command is dropped, after the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fd = write.as_raw_fd();
            let done = if fd == INFO_FD {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, INFO_FD)
            };
            if done < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
