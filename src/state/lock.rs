//! Who may run a run's engine, and who may write the user's checkout, by `flock`. The kernel
//! drops a lock when its holder dies, so a lock left by a crash never blocks anyone and there
//! is no stale file to judge. Two locks:
//!
//! - the run lock, `runs/<id>/engine.lock`: held by the run's live engine for its whole life
//!   (one engine per run, any number of runs at once), and for an instant by a command that
//!   writes the run's journal while no engine may (`orch down`, `orch merge`);
//! - the checkout lock, `.orch/lock`: held by the engine of a run in place, for its whole life
//!   (runs in place share the user's checkout, so they exclude each other), and for an instant
//!   by a command that writes the checkout (`orch merge`). A worktree run's engine does not
//!   take it: it writes its own worktree.
//!
//! A lock file's content only says who holds it: `<run-id> <pid>` for an engine,
//! `<run-id> <pid> <command>` for a command. Runs started before the run lock existed have
//! no `engine.lock`: their engine held `.orch/lock` alone, which [`run_holder`] still reads.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::RunDir;

/// `holder` takes the lock for an instant to test it; a real holder keeps it. Retrying this
/// long tells the two apart.
const PROBE_GRACE: Duration = Duration::from_millis(100);
/// The same, for taking a lock: longer, because `orch up` probes all the while its engine
/// starts (and `orch status` probes every run's lock), and a probe preempted on a busy
/// machine holds the lock for as long as it waits for a CPU. A lock really held is rare here
/// (`up`, `resume` and `merge` check first), so waiting longer costs nothing in practice.
const ACQUIRE_PATIENCE: Duration = Duration::from_secs(2);
const PROBE_STEP: Duration = Duration::from_millis(5);

/// Who holds a lock, as its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub run_id: String,
    pub pid: u32,
    /// The command holding it for an instant (`merge`); `None` for a run's engine.
    pub command: Option<String>,
}

impl Holder {
    pub fn is_engine(&self) -> bool {
        self.command.is_none()
    }

    /// What holds the lock, for a message: "run X's engine (pid N)" or "`orch merge` of run
    /// X (pid N)".
    pub fn describe(&self) -> String {
        let Holder {
            run_id,
            pid,
            command,
        } = self;
        match command {
            None => format!("run {run_id}'s engine (pid {pid})"),
            Some(command) => {
                let orch = crate::invocation::orch();
                format!("`{orch} {command}` of run {run_id} (pid {pid})")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The run's engine (or a command writing its journal) holds the run lock.
    #[error("{}", run_live(.0))]
    RunLive(Holder),
    /// A run in place, or a command writing the checkout, holds the checkout lock.
    #[error("{}", checkout_busy(.0))]
    CheckoutBusy(Holder),
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

fn run_live(holder: &Holder) -> String {
    let orch = crate::invocation::orch();
    let id = &holder.run_id;
    if holder.is_engine() {
        format!(
            "run {id} is live (engine pid {}): watch it with `{orch} attach --run {id}`, or \
             stop it with `{orch} down --run {id}`",
            holder.pid
        )
    } else {
        format!(
            "{} is working on run {id} right now: try again when it is done",
            holder.describe()
        )
    }
}

fn checkout_busy(holder: &Holder) -> String {
    let orch = crate::invocation::orch();
    let id = &holder.run_id;
    if holder.is_engine() {
        format!(
            "run {id} is still live in place in this project (engine pid {}), and runs in \
             place share the checkout: watch it with `{orch} attach --run {id}`, wait for it \
             with `{orch} wait --run {id}`, or stop it with `{orch} down --run {id}`",
            holder.pid
        )
    } else {
        format!(
            "{} is writing the checkout right now: try again when it is done",
            holder.describe()
        )
    }
}

/// A run's lock: held by its engine for its whole life, or by a command for an instant.
/// Released on drop or when the process dies.
#[derive(Debug)]
pub struct RunLock(Flock);

impl RunLock {
    /// Takes the run lock of `dir` for `command` (`None`: the run's engine), or says who
    /// holds it.
    pub fn acquire(dir: &RunDir, command: Option<&str>) -> Result<RunLock, LockError> {
        let holder = Holder {
            run_id: dir.id().to_string(),
            pid: std::process::id(),
            command: command.map(str::to_string),
        };
        Flock::acquire(&dir.engine_lock(), &holder)
            .map(RunLock)
            .map_err(|e| e.into_error(LockError::RunLive))
    }
}

/// The checkout lock, held by a command that writes the user's checkout (`orch merge`) while
/// it does. Released on drop or when the process dies.
#[derive(Debug)]
pub struct CheckoutLock(Flock);

impl CheckoutLock {
    /// Takes `.orch/lock` for `command` of run `run_id`, or says who holds it (a run in
    /// place, another command).
    pub fn acquire(
        state_dir: &Path,
        run_id: &str,
        command: &str,
    ) -> Result<CheckoutLock, LockError> {
        let holder = Holder {
            run_id: run_id.to_string(),
            pid: std::process::id(),
            command: Some(command.to_string()),
        };
        Self::take(state_dir, &holder)
    }

    fn take(state_dir: &Path, holder: &Holder) -> Result<CheckoutLock, LockError> {
        Flock::acquire(&checkout_lock(state_dir), holder)
            .map(CheckoutLock)
            .map_err(|e| e.into_error(LockError::CheckoutBusy))
    }
}

/// Held by a run's engine for its whole life: its run lock and, for a run in place, the
/// checkout lock.
#[derive(Debug)]
pub struct EngineLock {
    run: RunLock,
    checkout: Option<CheckoutLock>,
}

impl EngineLock {
    /// Takes the run lock of `dir` and, when the run is `in_place`, the checkout lock of the
    /// project whose state lives in `state_dir`; or says who holds which.
    pub fn acquire(
        state_dir: &Path,
        dir: &RunDir,
        in_place: bool,
    ) -> Result<EngineLock, LockError> {
        let run = RunLock::acquire(dir, None)?;
        let checkout = if in_place {
            let holder = Holder {
                run_id: dir.id().to_string(),
                pid: std::process::id(),
                command: None,
            };
            Some(CheckoutLock::take(state_dir, &holder)?)
        } else {
            None
        };
        Ok(EngineLock { run, checkout })
    }

    /// Takes again each lock whose file is gone (`.orch/` or the run directory deleted or
    /// moved by an agent): the lock held is on a file nobody else finds, so a new `orch up`
    /// or `orch resume` must find the run (and the checkout) taken again.
    pub fn restore(&mut self, state_dir: &Path, dir: &RunDir) -> Result<(), LockError> {
        if !self.run.0.path.exists() {
            self.run = RunLock::acquire(dir, None)?;
        }
        if let Some(checkout) = &mut self.checkout
            && !checkout.0.path.exists()
        {
            let holder = Holder {
                run_id: dir.id().to_string(),
                pid: std::process::id(),
                command: None,
            };
            *checkout = CheckoutLock::take(state_dir, &holder)?;
        }
        Ok(())
    }

    /// The run lock's file.
    pub fn path(&self) -> &Path {
        &self.run.0.path
    }
}

/// Held by a command that writes a run's record while no engine of the run may run (`orch
/// down`, `orch discard`), and, when it also writes the user's checkout (`orch merge`), while
/// no run in place may either.
#[derive(Debug)]
pub struct CommandLock {
    _run: RunLock,
    _checkout: Option<CheckoutLock>,
}

impl CommandLock {
    /// Takes the run lock of `dir` for `command` and, when it `writes_checkout`, the checkout
    /// lock; or says who holds which ([`LockError::RunLive`]: the run's engine or another
    /// command; [`LockError::CheckoutBusy`]: a run in place or another command).
    pub fn acquire(
        state_dir: &Path,
        dir: &RunDir,
        command: &str,
        writes_checkout: bool,
    ) -> Result<CommandLock, LockError> {
        let run = RunLock::acquire(dir, Some(command))?;
        let checkout = if writes_checkout {
            Some(CheckoutLock::acquire(state_dir, dir.id(), command)?)
        } else {
            None
        };
        Ok(CommandLock {
            _run: run,
            _checkout: checkout,
        })
    }
}

/// `.orch/lock`.
fn checkout_lock(state_dir: &Path) -> PathBuf {
    state_dir.join("lock")
}

/// Who holds run `dir`'s lock right now, if anyone: its live engine, or a command writing its
/// journal. For a run from before the run lock (no `engine.lock`), its engine if it holds the
/// checkout lock, as engines then did.
pub fn run_holder(state_dir: &Path, dir: &RunDir) -> Option<Holder> {
    run_holder_given(dir, || checkout_holder(state_dir))
}

/// `run_holder`, with the checkout lock's holder from `checkout` when it is needed.
fn run_holder_given(dir: &RunDir, checkout: impl FnOnce() -> Option<Holder>) -> Option<Holder> {
    let path = dir.engine_lock();
    if path.exists() {
        return holder_of(&path).map(|h| h.named(dir.id()));
    }
    checkout().filter(|h| h.is_engine() && h.run_id == dir.id())
}

/// Who holds the checkout lock right now, if anyone: a run in place, or a command writing the
/// checkout.
pub fn checkout_holder(state_dir: &Path) -> Option<Holder> {
    holder_of(&checkout_lock(state_dir))
}

/// The project's runs whose engine is live right now, newest first.
pub fn live_runs(state_dir: &Path) -> Vec<Holder> {
    let mut ids: Vec<String> = std::fs::read_dir(state_dir.join("runs"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|id| super::is_run_id(id))
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    // Probed once, however many runs from before the run lock there are.
    let checkout = std::cell::OnceCell::new();
    ids.iter()
        .filter_map(|id| {
            run_holder_given(&RunDir::new(state_dir, id), || {
                checkout.get_or_init(|| checkout_holder(state_dir)).clone()
            })
        })
        .filter(Holder::is_engine)
        .collect()
}

impl Holder {
    /// A run lock's holder seen in the instant before it wrote its name is still that run's.
    fn named(mut self, run_id: &str) -> Holder {
        if self.run_id.is_empty() {
            self.run_id = run_id.to_string();
        }
        self
    }
}

/// Serializes `orch up`s and `orch resume`s in one project: held from the check that the run
/// may start until its engine holds its locks, so two at the same moment cannot both pass.
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
        let file = open_lock_file(&path).map_err(io_err)?;
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

/// A lock file held, with the holder's name written in it.
#[derive(Debug)]
struct Flock {
    file: File,
    path: PathBuf,
}

/// Why a lock could not be taken.
enum Refused {
    Held(Holder),
    Io(PathBuf, io::Error),
}

impl Refused {
    fn into_error(self, held: impl FnOnce(Holder) -> LockError) -> LockError {
        match self {
            Refused::Held(holder) => held(holder),
            Refused::Io(path, source) => LockError::Io { path, source },
        }
    }
}

impl Flock {
    fn acquire(path: &Path, holder: &Holder) -> Result<Flock, Refused> {
        let io_err = |e| Refused::Io(path.to_path_buf(), e);
        let file = open_lock_file(path).map_err(io_err)?;
        let mut waited = Duration::ZERO;
        loop {
            match try_lock(&file) {
                Ok(true) => break,
                Ok(false) if waited < ACQUIRE_PATIENCE => {
                    std::thread::sleep(PROBE_STEP);
                    waited += PROBE_STEP;
                }
                Ok(false) => {
                    let found = read_holder(path).unwrap_or(Holder {
                        run_id: String::new(),
                        pid: 0,
                        command: None,
                    });
                    return Err(Refused::Held(found));
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        let mut content = format!("{} {}", holder.run_id, holder.pid);
        if let Some(command) = &holder.command {
            content.push(' ');
            content.push_str(command);
        }
        content.push('\n');
        // Overwritten in place, then cut to length, so that a reader sees whole ids.
        file.write_all_at(content.as_bytes(), 0)
            .and_then(|()| file.set_len(content.len() as u64))
            .map_err(io_err)?;
        Ok(Flock {
            file,
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Flock {
    fn drop(&mut self) {
        // Emptied first, so nobody reads our name once the lock is free; closing the file
        // (right after) releases the lock.
        let _ = self.file.set_len(0);
    }
}

/// Opens (creating it and its directory) a lock file. Rust opens files close-on-exec: agents
/// we spawn cannot inherit, and so outlive, a lock.
fn open_lock_file(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Who holds the lock of `path` right now, if anyone. The run id is empty and the pid 0 in
/// the instant between a holder's lock and its writing them.
fn holder_of(path: &Path) -> Option<Holder> {
    let file = File::open(path).ok()?;
    let mut waited = Duration::ZERO;
    loop {
        match try_lock(&file) {
            // Free: closing `file` right away unlocks it.
            Ok(true) => return None,
            Ok(false) => {
                if let Some(found) = read_holder(path) {
                    return Some(found);
                }
                // Locked but not yet (or no longer) named: look again, lock included.
                if waited >= PROBE_GRACE {
                    return Some(Holder {
                        run_id: String::new(),
                        pid: 0,
                        command: None,
                    });
                }
                std::thread::sleep(PROBE_STEP);
                waited += PROBE_STEP;
            }
            // Cannot tell: failing to lock it is no proof that someone holds it.
            Err(_) => return None,
        }
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

fn read_holder(path: &Path) -> Option<Holder> {
    parse_holder(&std::fs::read_to_string(path).ok()?)
}

/// `<run-id> <pid>` or `<run-id> <pid> <command>`.
fn parse_holder(text: &str) -> Option<Holder> {
    let mut words = text.split_whitespace();
    let run_id = words.next()?.to_string();
    let pid = words.next()?.parse().ok()?;
    let command = words.next().map(str::to_string);
    if words.next().is_some() {
        return None;
    }
    Some(Holder {
        run_id,
        pid,
        command,
    })
}

#[cfg(test)]
#[path = "lock_tests.rs"]
mod tests;
