//! An agent entering its run's shared box (see [`super::shared`]): what `orch agent-run`'s
//! child does between fork and exec. Three processes, as bwrap makes them:
//!
//! - the child (the launcher's own, in the pane's process group) joins the box's user and
//!   mount namespaces, makes a private copy of the mounts with new pid and IPC namespaces,
//!   and gives the copy what must be the agent's alone: every writable tmpfs of the plan
//!   anew (what the plan binds under it moved into the new one), a `/dev/pts` and
//!   `/dev/shm` of its own, the rest of `/dev` read-only. It then waits for
//! - the box's init (pid 1 of the new pid namespace): it mounts the namespace's `/proc`,
//!   starts the agent, reaps what ends in the box, and writes how the agent ended on a pipe
//!   to the launcher (no file in the box that something there could forge);
//! - the agent, with the stop signals back at their default, no capability, no new
//!   privileges, in its directory.
//!
//! It runs in a forked copy of `orch agent-run`, which is single-threaded when it spawns
//! (checked: [`super::shared`] is not used otherwise), so the copy may allocate. Every
//! failure before the agent's exec is said on the pipe, prefixed with [`FAILED`], so that the
//! launcher can tell a box that could not be entered from an agent that could not start.

use std::ffi::CString;
use std::io::Read as _;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::Path;
use std::process::Command;

use super::Mount;
use super::shared::Shared;

/// How a record on the pipe starts when the box could not be entered.
const FAILED: &[u8] = b"!";

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
const MOUNT_ATTR_RDONLY: u64 = 1;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// How the agent ended, as its box's init wrote it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ended {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// What the agent left running in its box (killed with it).
    #[serde(default)]
    pub left: Vec<crate::agent_process::leftovers::Leftover>,
}

/// The launcher's end of the pipe the box's init writes to.
#[derive(Debug)]
pub struct Status(std::fs::File);

/// What the pipe said.
#[derive(Debug)]
pub enum Said {
    Ended(Ended),
    /// The box could not be entered: why.
    Failed(String),
    /// Nothing: the init was killed before it could say.
    Nothing,
}

impl Status {
    /// Reads the pipe to its end (the init's exit, or its death).
    pub fn read(mut self) -> Said {
        let mut text = Vec::new();
        let _ = (&mut self.0).take(1024 * 1024).read_to_end(&mut text);
        if let Some(why) = text.strip_prefix(FAILED) {
            return Said::Failed(String::from_utf8_lossy(why).into_owned());
        }
        serde_json::from_slice(&text).map_or(Said::Nothing, Said::Ended)
    }

    /// After a failed spawn: why, when it was the box that could not be entered (the pipe's
    /// writers are gone by then: the child ended with its failure).
    pub fn failure(self) -> Option<String> {
        match self.read() {
            Said::Failed(why) => Some(why),
            Said::Ended(_) | Said::Nothing => None,
        }
    }
}

/// What the box's child needs, made before the fork.
struct Steps {
    shared: Shared,
    /// Each writable tmpfs, with the mounts under it to move into the new one.
    fresh: Vec<Fresh>,
    cwd: CString,
    /// The pipe's write end (close-on-exec: the agent never has it).
    status: OwnedFd,
    /// The stop signals to set back to their default for the agent.
    reset: Vec<i32>,
    /// The launcher's pid: the child ends if it is gone.
    launcher: libc::pid_t,
}

struct Fresh {
    at: CString,
    under: Vec<Under>,
}

/// A mount of the plan under a fresh tmpfs: its path, and the directories to make for it.
struct Under {
    path: CString,
    dirs: Vec<CString>,
    is_dir: bool,
}

/// The command that runs `program` (resolved) with `args`, `env` and `cwd` as given, in
/// `shared`: `mounts` is the plan the box was made from. The command's `Status` is read
/// once it is spawned.
pub(super) fn command(
    shared: Shared,
    mounts: &[Mount],
    program: &Path,
    cwd: &Path,
    reset: Vec<i32>,
) -> std::io::Result<(Command, Status)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) writes two new descriptors into `fds`, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are open and ours alone (just made).
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut steps = Steps {
        shared,
        fresh: fresh(mounts),
        cwd: c_path(cwd)?,
        status: write,
        reset,
        // SAFETY: getpid(2) only reads our own pid.
        launcher: unsafe { libc::getpid() },
    };
    let mut cmd = Command::new(program);
    // SAFETY: run in the forked child of a single-threaded launcher (see the module's doc).
    unsafe {
        cmd.pre_exec(move || steps.run());
    }
    Ok((cmd, Status(std::fs::File::from(read))))
}

fn c_path(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other(format!("{} holds a NUL byte", path.display())))
}

/// Every writable tmpfs of the plan, and the mounts under it (the topmost only: they are
/// moved with what is under them).
fn fresh(mounts: &[Mount]) -> Vec<Fresh> {
    let mut out = Vec::new();
    for mount in mounts {
        let Mount::Tmpfs(at) = mount else { continue };
        let mut tops: Vec<&Path> = Vec::new();
        for m in mounts {
            let p = m.path();
            if p != at && p.starts_with(at) && !tops.iter().any(|t| p.starts_with(t)) {
                tops.retain(|t| !t.starts_with(p));
                tops.push(p);
            }
        }
        let under = tops
            .into_iter()
            .filter_map(|p| {
                let dirs = p
                    .ancestors()
                    .skip(1)
                    .take_while(|a| *a != at.as_path())
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .map(c_path)
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?;
                Some(Under {
                    path: c_path(p).ok()?,
                    dirs,
                    is_dir: p.is_dir(),
                })
            })
            .collect();
        if let Ok(at) = c_path(at) {
            out.push(Fresh { at, under });
        }
    }
    out
}

fn check(what: &str, result: libc::c_long) -> Result<libc::c_long, String> {
    if result < 0 {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    } else {
        Ok(result)
    }
}

impl Steps {
    /// The child's part: returns (in the agent's process) to let it be executed.
    fn run(&mut self) -> std::io::Result<()> {
        match self.enter() {
            Ok(Ok(())) => Ok(()),
            // The agent's own start failed (its directory): said as any failed start is.
            Ok(Err(why)) => Err(std::io::Error::other(why)),
            Err(why) => {
                let mut said = FAILED.to_vec();
                said.extend_from_slice(why.as_bytes());
                write_all(self.status.as_raw_fd(), &said);
                Err(std::io::Error::other(why))
            }
        }
    }

    /// `Err`: the box could not be entered; `Ok(Err)`: the agent could not be started in it.
    fn enter(&mut self) -> Result<Result<(), String>, String> {
        // SAFETY: plain system calls on our own process, with arguments that live across
        // them.
        unsafe {
            for sig in super::STOP_SIGNALS {
                libc::signal(sig, libc::SIG_IGN);
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != self.launcher {
                libc::_exit(1);
            }
            if let Some(user) = &self.shared.user {
                check(
                    "joining the box's user namespace",
                    libc::setns(user.as_raw_fd(), libc::CLONE_NEWUSER).into(),
                )?;
            }
            check(
                "joining the box's mount namespace",
                libc::setns(self.shared.mnt.as_raw_fd(), libc::CLONE_NEWNS).into(),
            )?;
            check(
                "new namespaces",
                libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC).into(),
            )?;
            check(
                "making the mounts private",
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                )
                .into(),
            )?;
            for fresh in &self.fresh {
                fresh.mount()?;
            }
            own_dev()?;
            let init = check("starting the box's init", libc::fork().into())?;
            if init == 0 {
                return self.init();
            }
            // The child: it only waits for the init, whose end is the agent's.
            libc::close_range(0, libc::c_uint::MAX, 0);
            libc::_exit(wait_for(init as libc::pid_t).map_or(1, code_of))
        }
    }

    /// Pid 1 of the box: returns in the agent's process.
    unsafe fn init(&mut self) -> Result<Result<(), String>, String> {
        // SAFETY: as in `enter`.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            mount_proc()?;
            // Nothing in the box may trace it or read its descriptors (the pipe).
            libc::prctl(libc::PR_SET_DUMPABLE, 0);
            let agent = check("starting the agent", libc::fork().into())? as libc::pid_t;
            if agent == 0 {
                return Ok(self.agent());
            }
            let keep = self.status.as_raw_fd() as libc::c_uint;
            if keep > 0 {
                libc::close_range(0, keep - 1, 0);
            }
            libc::close_range(keep + 1, libc::c_uint::MAX, 0);
            let ended = match wait_for(agent) {
                Some(status) => {
                    let status = std::process::ExitStatus::from_raw(status);
                    Ended {
                        code: status.code(),
                        signal: status.signal(),
                        left: crate::agent_process::leftovers::in_this_box(),
                    }
                }
                None => Ended {
                    code: Some(crate::agent_process::run::NOT_STARTED),
                    signal: None,
                    left: Vec::new(),
                },
            };
            if let Ok(json) = serde_json::to_vec(&ended) {
                write_all(keep as RawFd, &json);
            }
            let code = match (ended.code, ended.signal) {
                (_, Some(sig)) => 128 + sig,
                (Some(code), None) => code,
                (None, None) => 1,
            };
            libc::_exit(code.clamp(0, 255))
        }
    }

    /// The agent's process, up to its exec.
    unsafe fn agent(&mut self) -> Result<(), String> {
        // SAFETY: as in `enter`.
        unsafe {
            for &sig in &self.reset {
                libc::signal(sig, libc::SIG_DFL);
            }
            check(
                "entering its directory",
                libc::chdir(self.cwd.as_ptr()).into(),
            )?;
            drop_capabilities()?;
            Ok(())
        }
    }
}

impl Fresh {
    /// A new tmpfs at `at`, and what the plan put under it moved onto the new one.
    unsafe fn mount(&self) -> Result<(), String> {
        // SAFETY: as in `enter`; the descriptors opened are closed here.
        unsafe {
            let mut trees = Vec::with_capacity(self.under.len());
            for under in &self.under {
                let fd = check(
                    "taking a mount under a private tmpfs",
                    libc::syscall(
                        libc::SYS_open_tree,
                        libc::AT_FDCWD,
                        under.path.as_ptr(),
                        OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint,
                    ),
                )?;
                trees.push(OwnedFd::from_raw_fd(fd as RawFd));
            }
            check(
                "mounting a private tmpfs",
                libc::mount(
                    c"tmpfs".as_ptr(),
                    self.at.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    c"mode=0755".as_ptr().cast(),
                )
                .into(),
            )?;
            for (under, tree) in self.under.iter().zip(&trees) {
                for dir in &under.dirs {
                    libc::mkdir(dir.as_ptr(), 0o755);
                }
                if under.is_dir {
                    libc::mkdir(under.path.as_ptr(), 0o755);
                } else {
                    let fd = libc::open(
                        under.path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    );
                    if fd >= 0 {
                        libc::close(fd);
                    }
                }
                check(
                    "putting a mount back under a private tmpfs",
                    libc::syscall(
                        libc::SYS_move_mount,
                        tree.as_raw_fd(),
                        c"".as_ptr(),
                        libc::AT_FDCWD,
                        under.path.as_ptr(),
                        MOVE_MOUNT_F_EMPTY_PATH,
                    ),
                )?;
            }
            Ok(())
        }
    }
}

/// A `/dev/pts` and a `/dev/shm` of the agent's own, and the rest of the box's `/dev`
/// read-only (the agents of a run share it).
unsafe fn own_dev() -> Result<(), String> {
    // SAFETY: mount(2) and mount_setattr(2) with arguments that live across the calls.
    unsafe {
        check(
            "mounting /dev/pts",
            libc::mount(
                c"devpts".as_ptr(),
                c"/dev/pts".as_ptr(),
                c"devpts".as_ptr(),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                c"newinstance,ptmxmode=0666,mode=620".as_ptr().cast(),
            )
            .into(),
        )?;
        check(
            "mounting /dev/shm",
            libc::mount(
                c"tmpfs".as_ptr(),
                c"/dev/shm".as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"mode=1777".as_ptr().cast(),
            )
            .into(),
        )?;
        read_only(c"/dev", false)
    }
}

/// `path`'s mount read-only (with the mounts under it, when `recursive`).
unsafe fn read_only(path: &std::ffi::CStr, recursive: bool) -> Result<(), String> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr(2) reads `attr`, which lives across the call.
    check("making a mount read-only", unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            if recursive { AT_RECURSIVE } else { 0 },
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(|_| ())
}

/// The pid namespace's own `/proc`, with the parts bwrap covers read-only covered too.
unsafe fn mount_proc() -> Result<(), String> {
    // SAFETY: mount(2) and access(2) with arguments that live across the calls.
    unsafe {
        check(
            "mounting /proc",
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV,
                std::ptr::null(),
            )
            .into(),
        )?;
        for sub in [
            c"/proc/sys",
            c"/proc/sysrq-trigger",
            c"/proc/irq",
            c"/proc/bus",
        ] {
            if libc::access(sub.as_ptr(), libc::W_OK) != 0 {
                continue;
            }
            check(
                "covering a part of /proc",
                libc::mount(
                    sub.as_ptr(),
                    sub.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                )
                .into(),
            )?;
            read_only(sub, true)?;
        }
        Ok(())
    }
}

/// No capability, now or after exec, and no new privileges (as bwrap's `--cap-drop ALL`,
/// which also holds for root).
unsafe fn drop_capabilities() -> Result<(), String> {
    // SAFETY: prctl(2) and capset(2) on our own process, with structs that live across the
    // calls.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        let mut cap = 0;
        while libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) >= 0 {
            check(
                "dropping a capability",
                libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0).into(),
            )?;
            cap += 1;
        }
        let header = CapHeader {
            version: 0x2008_0522,
            pid: 0,
        };
        let data = [CapData::default(); 2];
        check(
            "dropping the capabilities",
            libc::syscall(libc::SYS_capset, &raw const header, data.as_ptr()),
        )?;
        check(
            "no new privileges",
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into(),
        )?;
        Ok(())
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Waits for `pid`, reaping whatever else ends on the way; its raw status.
fn wait_for(pid: libc::pid_t) -> Option<libc::c_int> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) writes only to `status`.
        let got = unsafe { libc::waitpid(-1, &raw mut status, 0) };
        if got == pid {
            return Some(status);
        }
        if got < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// A raw wait status as a shell's exit code.
fn code_of(status: libc::c_int) -> libc::c_int {
    let status = std::process::ExitStatus::from_raw(status);
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    }
}

fn write_all(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: write(2) reads `bytes`, which lives across the call.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}
