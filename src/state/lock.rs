//! One live engine per project, enforced by `flock` on `.orch/lock`. The kernel drops the lock
//! when its holder dies, so a lock left by a crash never blocks anyone and there is no stale
//! file to judge. The file's content (`<run-id> <pid>`) only says who holds it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `holder` takes the lock for an instant to test it; a real holder keeps it. Retrying this
/// long tells the two apart.
const PROBE_GRACE: Duration = Duration::from_millis(100);
/// The same, for an engine taking the lock: longer, because `orch up` probes all the while
/// its engine starts, and a probe preempted on a busy machine holds the lock for as long as
/// it waits for a CPU. A lock really held is rare here (`up` and `resume` check first), so
/// waiting longer costs nothing in practice.
const ACQUIRE_PATIENCE: Duration = Duration::from_secs(2);
const PROBE_STEP: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "run {run_id} is live in this project (engine pid {pid}): watch it with `orch attach`, \
         or stop it with `orch down`"
    )]
    Held { run_id: String, pid: u32 },
    #[error(
        "failed to lock {}: {source}; orch keeps its state under .orch/, which must be \
         writable and on a file system with flock (not all network mounts have it)",
        path.display()
    )]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Held by the live engine for its whole life; released on drop or when the process dies.
#[derive(Debug)]
pub struct EngineLock {
    file: File,
    path: PathBuf,
}

impl EngineLock {
    /// Takes the project lock for `run_id`, or says who holds it.
    pub fn acquire(state_dir: &Path, run_id: &str) -> Result<EngineLock, LockError> {
        let path = state_dir.join("lock");
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(io_err)?;
        // Rust opens files close-on-exec: agents we spawn cannot inherit, and so outlive, the lock.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        let mut waited = Duration::ZERO;
        loop {
            match try_lock(&file) {
                Ok(true) => break,
                Ok(false) if waited < ACQUIRE_PATIENCE => {
                    std::thread::sleep(PROBE_STEP);
                    waited += PROBE_STEP;
                }
                Ok(false) => {
                    let (run_id, pid) = read_holder(&path).unwrap_or_default();
                    return Err(LockError::Held { run_id, pid });
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        let content = format!("{run_id} {}\n", std::process::id());
        // Overwritten in place, then cut to length, so that a reader sees whole ids.
        file.write_all_at(content.as_bytes(), 0)
            .and_then(|()| file.set_len(content.len() as u64))
            .map_err(io_err)?;
        Ok(EngineLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for EngineLock {
    fn drop(&mut self) {
        // Emptied first, so nobody reads our id once the lock is free; closing the file
        // (right after) releases the lock.
        let _ = self.file.set_len(0);
    }
}

/// Who holds the project lock right now, if anyone: `(run_id, pid)`. The id is empty and the
/// pid 0 in the instant between a holder's lock and its writing them.
pub fn holder(state_dir: &Path) -> Option<(String, u32)> {
    let path = state_dir.join("lock");
    let file = File::open(&path).ok()?;
    let mut waited = Duration::ZERO;
    loop {
        match try_lock(&file) {
            // Free: closing `file` right away unlocks it.
            Ok(true) => return None,
            Ok(false) => {
                if let Some(found) = read_holder(&path) {
                    return Some(found);
                }
                // Locked but not yet (or no longer) named: look again, lock included.
                if waited >= PROBE_GRACE {
                    return Some((String::new(), 0));
                }
                std::thread::sleep(PROBE_STEP);
                waited += PROBE_STEP;
            }
            // Cannot tell: failing to lock it is no proof that someone holds it.
            Err(_) => return None,
        }
    }
}

/// Serializes `orch up`s in one project: held from the check that no engine is live until the
/// new engine holds the project lock, so two `up`s at the same moment cannot both pass.
#[derive(Debug)]
pub struct UpLock {
    _file: File,
}

impl UpLock {
    /// Waits for (blocking) and takes `.orch/up.lock`.
    pub fn acquire(state_dir: &Path) -> Result<UpLock, LockError> {
        let path = state_dir.join("up.lock");
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(io_err)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        loop {
            // SAFETY: flock on a descriptor we own; it touches no memory.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(UpLock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(io_err(e));
            }
        }
    }

    /// Whether an `orch up` or `orch resume` holds the lock right now, i.e. an engine may be
    /// on its way: `orch wait` must not call a run stalled while one is.
    pub fn held(state_dir: &Path) -> bool {
        let Ok(file) = File::open(state_dir.join("up.lock")) else {
            return false;
        };
        // Taken for an instant when free; closing `file` releases it.
        matches!(try_lock(&file), Ok(false))
    }
}

/// `Ok(true)`: locked it; `Ok(false)`: someone else holds it.
fn try_lock(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor we own; it touches no memory.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => return Ok(false),
            io::ErrorKind::Interrupted => {}
            _ => return Err(e),
        }
    }
}

fn read_holder(path: &Path) -> Option<(String, u32)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (run_id, pid) = text.trim().rsplit_once(' ')?;
    Some((run_id.to_string(), pid.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn a_held_lock_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let lock = EngineLock::acquire(dir.path(), "run-a").unwrap();
        assert_eq!(
            holder(dir.path()),
            Some(("run-a".to_string(), std::process::id()))
        );
        // Another open file description conflicts, as another process would.
        match EngineLock::acquire(dir.path(), "run-b") {
            Err(LockError::Held { run_id, pid }) => {
                assert_eq!(run_id, "run-a");
                assert_eq!(pid, std::process::id());
            }
            other => panic!("expected Held, got {other:?}"),
        }
        // The failed attempt did not disturb the holder's record.
        assert_eq!(holder(dir.path()).unwrap().0, "run-a");
        drop(lock);
    }

    #[test]
    fn the_lock_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        drop(EngineLock::acquire(dir.path(), "run-a").unwrap());
        assert_eq!(holder(dir.path()), None);
        let again = EngineLock::acquire(dir.path(), "run-b").unwrap();
        assert_eq!(holder(dir.path()).unwrap().0, "run-b");
        drop(again);
    }

    #[test]
    fn no_lock_file_means_no_holder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()), None);
        assert_eq!(holder(&dir.path().join("no/such/dir")), None);
    }

    #[test]
    fn a_stale_lock_file_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lock"), "old-run 999999\n").unwrap();
        assert_eq!(holder(dir.path()), None);
        let lock = EngineLock::acquire(dir.path(), "new-run").unwrap();
        assert_eq!(
            std::fs::read_to_string(lock.path()).unwrap(),
            format!("new-run {}\n", std::process::id())
        );
    }

    #[test]
    fn a_lock_held_by_another_process_is_released_when_it_dies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        assert!(try_lock(&file).unwrap());
        std::fs::write(&path, "child-run 42\n").unwrap();
        // The child inherits the locked file description as its stdin; ours closes after
        // the spawn, so only the child holds the lock.
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::from(file))
            .spawn()
            .unwrap();
        assert_eq!(holder(dir.path()), Some(("child-run".to_string(), 42)));
        assert!(matches!(
            EngineLock::acquire(dir.path(), "mine"),
            Err(LockError::Held { .. })
        ));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(holder(dir.path()), None);
        EngineLock::acquire(dir.path(), "mine").unwrap();
    }

    #[test]
    fn up_locks_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let first = UpLock::acquire(dir.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let state_dir = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let second = UpLock::acquire(&state_dir).unwrap();
            tx.send(()).unwrap();
            drop(second);
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(first);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
    }

    #[test]
    fn an_unusable_state_dir_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "").unwrap();
        let err = EngineLock::acquire(&file, "r").unwrap_err();
        assert!(matches!(err, LockError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("plain-file"), "{err}");
    }
}
