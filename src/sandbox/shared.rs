//! One box per run and mount plan, which its agents enter. Making a box is most of what a
//! boxed start costs: bwrap reads `/proc/self/mountinfo` again for every bind, and its
//! `pivot_root` walks every process of the machine. So the first `orch agent-run` of a run
//! to need a box of a given plan has bwrap make it once, around a holder (`orch
//! sandbox-hold`) that keeps its namespaces, and records it in `boxes/<key>.json` of the run
//! directory (read-only in every box); every agent of that plan then enters it and makes a
//! private copy of it ([`super::enter`]): a few system calls.
//!
//! The holder lives as long as the run's engine (it waits for the engine's lock). Boxes are
//! not shared, and every agent gets a bwrap of its own as before, where no engine holds the
//! run (`orch plan`, tests of the launcher alone), in a task's own worktree (`isolation:
//! task`: a box would serve one task's few agents), without network (bwrap brings the box's
//! own loopback up; the copy would have none), and where the launcher is not
//! single-threaded (the copy is made between fork and exec).

use std::ffi::OsString;
use std::hash::{Hash as _, Hasher as _};
use std::io::{BufRead as _, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Jail;
use super::hold::{INFO_FD, Info, pass};

/// A run's box, open: what an agent joins.
#[derive(Debug)]
pub(super) struct Shared {
    /// The user namespace that owns its mounts, where it is not ours (run by root, bwrap
    /// makes none).
    pub(super) user: Option<OwnedFd>,
    pub(super) mnt: OwnedFd,
    pub(super) made: Made,
}

/// Which box, to retire it.
#[derive(Debug, Clone)]
pub(super) struct Made {
    record: PathBuf,
    pid: u32,
    start: u64,
}

/// `boxes/<key>.json`: the holder, when it started, and the inodes of its mount namespace and
/// of the user namespace that owns it (a pid alone could be another process's by now, and
/// inode numbers are used again).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Record {
    pid: u32,
    start: u64,
    user: u64,
    mnt: u64,
}

/// How long an agent waits for another one making the box before it makes a box of its own
/// (the lock can be read, so anything may hold it).
const MAKING_PATIENCE: Duration = Duration::from_secs(10);

/// The run whose box an agent in `jail` may enter; `None` where boxes are not shared (see
/// the module's doc). Asked first: it is cheaper than working out the box's plan.
pub(super) fn run_sharing(jail: &Jail) -> Option<crate::state::RunDir> {
    if jail.no_network || !single_threaded() {
        return None;
    }
    let run = crate::state::RunDir::open(&jail.run_dir).ok()?;
    // A task's own worktree (`isolation: task`) is one task's: a box kept for the run's life
    // would serve that task's few agents, then sit idle; they get a bwrap each.
    if let Some(state) = jail.run_dir.parent().and_then(Path::parent)
        && jail
            .project
            .starts_with(crate::workspace::task::tasks_dir(state, run.id()))
    {
        return None;
    }
    held(&run.engine_lock()).then_some(run)
}

/// The box of `run` made with bwrap's options `args` (the plan's, not one agent's), made if
/// there is none yet; `Err` says why bwrap could not make one.
pub(super) fn find_or_make(
    run: &crate::state::RunDir,
    args: &[OsString],
    bwrap: &Path,
    exe: &Path,
) -> Result<Shared, String> {
    let engine_lock = run.engine_lock();
    let mut hasher = std::hash::DefaultHasher::new();
    args.hash(&mut hasher);
    exe.hash(&mut hasher);
    let key = format!("{:016x}", hasher.finish());
    let dir = run.boxes();
    let record = dir.join(format!("{key}.json"));
    if let Some(shared) = open(&record) {
        return Ok(shared);
    }
    let failed = |what: &str, e: std::io::Error| format!("{what} {}: {e}", dir.display());
    std::fs::create_dir_all(&dir).map_err(|e| failed("cannot create", e))?;
    // One agent makes it; the others of a launch wait here, then find it.
    let guard = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{key}.lock")))
        .map_err(|e| failed("cannot open a lock in", e))?;
    let deadline = Instant::now() + MAKING_PATIENCE;
    // SAFETY: flock(2) on a descriptor we own.
    while unsafe { libc::flock(guard.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::WouldBlock {
            return Err(failed("cannot lock the run's box in", e));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the run's box has been in the making for {}s and is not there (its lock, \
                 {key}.lock in {}, is held)",
                MAKING_PATIENCE.as_secs(),
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some(shared) = open(&record) {
        return Ok(shared);
    }
    let made = make(args, bwrap, exe, &engine_lock)?;
    let json = serde_json::to_vec(&made).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!("{key}.json.new"));
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &record))
        .map_err(|e| failed("cannot record the run's box in", e))?;
    open(&record).ok_or_else(|| "the run's box ended as soon as it was made".to_string())
}

/// Whether the run's engine holds its lock (a shared lock would be refused).
fn held(lock: &Path) -> bool {
    let Ok(file) = std::fs::File::open(lock) else {
        return false;
    };
    // SAFETY: flock(2) on a descriptor we own; dropped (and so unlocked) right after.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
}

/// Whether this process has one thread (what [`super::enter`] needs).
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|l| l.strip_prefix("Threads:").is_some_and(|n| n.trim() == "1"))
    })
}

/// The box `path` records, open, if its holder still holds it.
fn open(path: &Path) -> Option<Shared> {
    let record: Record = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let (found, mnt, user) = identify(record.pid)?;
    if found != record {
        return None;
    }
    let ours = std::fs::metadata("/proc/self/ns/user").ok()?.ino();
    Some(Shared {
        user: (record.user != ours).then_some(user),
        mnt,
        made: Made {
            record: path.to_path_buf(),
            pid: record.pid,
            start: record.start,
        },
    })
}

/// Process `pid` as a record names it, with its mount namespace and the user namespace that
/// owns it, open.
fn identify(pid: u32) -> Option<(Record, OwnedFd, OwnedFd)> {
    let mnt = OwnedFd::from(std::fs::File::open(format!("/proc/{pid}/ns/mnt")).ok()?);
    let user = owner(&mnt)?;
    let record = Record {
        pid,
        user: ino(&user)?,
        mnt: ino(&mnt)?,
        // Read after the namespaces are open: the process that has them is the one that
        // started then, not another given its pid since.
        start: started(pid)?,
    };
    Some((record, mnt, user))
}

/// The user namespace that owns the mount namespace `mnt`: the one to join to enter it.
/// Not the holder's own: bwrap, unprivileged, puts its box's processes in a second user
/// namespace inside the one it made the mounts in, where nothing has a capability over them.
fn owner(mnt: &OwnedFd) -> Option<OwnedFd> {
    // SAFETY: ioctl(2) NS_GET_USERNS on a namespace descriptor we own returns a new
    // descriptor, which we then own.
    unsafe {
        let fd = libc::ioctl(mnt.as_raw_fd(), libc::NS_GET_USERNS);
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
    }
}

/// The inode of what `fd` is open on.
fn ino(fd: &OwnedFd) -> Option<u64> {
    // SAFETY: fstat(2) writes only to `stat`.
    unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        (libc::fstat(fd.as_raw_fd(), &raw mut stat) == 0).then_some(stat.st_ino)
    }
}

/// When process `pid` started (clock ticks since boot, `/proc/<pid>/stat`'s 22nd field).
fn started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's name, which may hold anything but ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Retires a box that lost a mount: its record goes (unless it already names another box)
/// and its holder with it, so that the next agent makes it anew.
pub(super) fn retire(made: &Made) {
    let named = std::fs::read(&made.record)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
        .is_some_and(|r| r.pid == made.pid && r.start == made.start);
    if named {
        let _ = std::fs::remove_file(&made.record);
    }
    // SAFETY: pidfd_open(2) and pidfd_send_signal(2): the signal goes to the process the
    // descriptor was opened for, which is checked to be the holder after it is opened.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, made.pid, 0);
        if fd < 0 {
            return;
        }
        let fd = OwnedFd::from_raw_fd(fd as i32);
        if started(made.pid) == Some(made.start) {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
    }
}

/// Has bwrap make the box, around its holder, and says where it is once it is whole (the
/// holder starts only once bwrap has made every mount).
fn make(args: &[OsString], bwrap: &Path, exe: &Path, engine_lock: &Path) -> Result<Record, String> {
    let cannot = |why: String| format!("bubblewrap could not make the run's box: {why}");
    let (info, write) = Info::pipe().map_err(|e| cannot(e.to_string()))?;
    let mut cmd = Command::new(bwrap);
    cmd.args(args).arg("--info-fd").arg(INFO_FD.to_string());
    pass(&mut cmd, write);
    cmd.arg(exe)
        .arg("sandbox-hold")
        .arg(engine_lock)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid(2) only, between fork and exec: the holder is no part of the pane's
    // process group, which stopping an agent signals.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| cannot(e.to_string()))?;
    // Our copy of the info pipe's write end goes with the command.
    drop(cmd);
    let pid = info.child_pid();
    let mut ready = String::new();
    if let Some(out) = child.stdout.take() {
        // A line, not to the end: bwrap's own process keeps its copy open.
        let _ = std::io::BufReader::new(out).read_line(&mut ready);
    }
    let Some(pid) = pid.filter(|_| ready == "ready\n") else {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = child.wait();
        return Err(cannot(err.trim().to_string()));
    };
    identify(pid)
        .map(|(record, ..)| record)
        .ok_or_else(|| cannot("its holder ended at once".into()))
}

/// `orch sandbox-hold LOCK`: the holder of a run's box, in it. Says it is ready, then waits
/// until the run's engine lets its lock go.
pub fn hold(engine_lock: &Path) -> u8 {
    // SAFETY: prctl(2) on our own process: nothing in a box traces it.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
    }
    let lock = match std::fs::File::open(engine_lock) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("orch sandbox-hold: {}: {e}", engine_lock.display());
            return 1;
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "ready").and_then(|()| out.flush()).is_err() {
        return 1;
    }
    drop(out);
    // SAFETY: close(2) of our stdout, which nobody uses again; flock(2) on a descriptor we
    // own, blocking until the engine's exclusive lock is gone.
    unsafe {
        libc::close(1);
        while libc::flock(lock.as_raw_fd(), libc::LOCK_SH) != 0
            && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {}
    }
    0
}
