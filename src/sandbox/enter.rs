//! An agent entering its run's shared box (see [`super::shared`]): what `orch agent-run`'s
//! child does between fork and exec. Three processes, as bwrap makes them:
//!
//! - the child (the launcher's own, in the pane's process group) joins the user namespace
//!   that owns the box's mounts (not the one bwrap puts the box's processes in) and the
//!   mount namespace, makes a private copy of the mounts with new pid and IPC namespaces,
//!   and gives the copy what must be the agent's alone: every writable tmpfs of the plan
//!   anew (what the plan binds under it moved into the new one), a `/dev/pts` and
//!   `/dev/shm` of its own, the rest of `/dev` read-only. It then waits for
//! - the box's init (pid 1 of the new pid namespace): it mounts the namespace's `/proc`,
//!   then, run by a user, makes a user namespace of the copy's own that maps the user back
//!   (see `own_user`), starts the agent, reaps what ends in the box, and writes how the agent ended on a pipe
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
/// ... because it lost a mount of its plan (a file bound into it was replaced from outside,
/// which takes the mount away in every namespace): the box is to be made anew.
const STALE: &[u8] = b"!!";

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
pub struct Status {
    pipe: std::fs::File,
    /// The box, to retire if it lost a mount.
    made: super::shared::Made,
}

/// What the pipe said.
#[derive(Debug)]
pub enum Said {
    Ended(Ended),
    /// The box could not be entered: why, and whether it is to be made anew.
    Failed {
        why: String,
        stale: bool,
    },
    /// Nothing: the init was killed before it could say.
    Nothing,
}

impl Status {
    /// Reads the pipe: the init's record as soon as its last byte came (a newline: the
    /// init's own end, its memory given back, is not waited for), else what the pipe held
    /// at its end (a failure said before its writer ended, or nothing: the init died).
    pub fn read(mut self) -> Said {
        const MAX: usize = 1024 * 1024;
        let mut text = Vec::new();
        let mut chunk = [0u8; 4096];
        while text.len() < MAX {
            match self.pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    text.extend_from_slice(&chunk[..n]);
                    if text.starts_with(b"{") && text.ends_with(b"\n") {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if let Some(why) = text.strip_prefix(STALE) {
            return Said::Failed {
                why: String::from_utf8_lossy(why).into_owned(),
                stale: true,
            };
        }
        if let Some(why) = text.strip_prefix(FAILED) {
            return Said::Failed {
                why: String::from_utf8_lossy(why).into_owned(),
                stale: false,
            };
        }
        serde_json::from_slice(&text).map_or(Said::Nothing, Said::Ended)
    }

    /// After a failed spawn: why, when it was the box that could not be entered (the pipe's
    /// writers are gone by then: every process that failed ended). A box that lost a mount
    /// is retired, for the next agent to make it anew.
    pub fn failure(self) -> Option<String> {
        let made = self.made.clone();
        match self.read() {
            Said::Failed { why, stale } => {
                if stale {
                    super::shared::retire(&made);
                }
                Some(why)
            }
            Said::Ended(_) | Said::Nothing => None,
        }
    }
}

/// What the box's child needs, made before the fork.
struct Steps {
    shared: Shared,
    /// Every path the plan mounts: each must still be a mount in the copy.
    mounted: Vec<CString>,
    /// Each writable tmpfs, with the mounts under it to move into the new one.
    fresh: Vec<Fresh>,
    cwd: CString,
    /// The pipe's write end (close-on-exec: the agent never has it).
    status: OwnedFd,
    /// The stop signals to set back to their default for the agent.
    reset: Vec<i32>,
    /// The launcher's pid: the child ends if it is gone.
    launcher: libc::pid_t,
    /// The user and group the launcher runs as: the agent's, in a user namespace of its own
    /// (see `own_user`).
    ids: (libc::uid_t, libc::gid_t),
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
    let made = shared.made.clone();
    let mut steps = Steps {
        shared,
        mounted: mounts
            .iter()
            .map(|m| c_path(m.path()))
            .collect::<Result<_, _>>()?,
        fresh: fresh(mounts),
        cwd: c_path(cwd)?,
        status: write,
        reset,
        // SAFETY: getpid(2) only reads our own pid.
        launcher: unsafe { libc::getpid() },
        // SAFETY: geteuid(2) and getegid(2) only read our own ids.
        ids: unsafe { (libc::geteuid(), libc::getegid()) },
    };
    let mut cmd = Command::new(program);
    // SAFETY: run in the forked child of a single-threaded launcher (see the module's doc).
    unsafe {
        cmd.pre_exec(move || steps.run());
    }
    Ok((
        cmd,
        Status {
            pipe: std::fs::File::from(read),
            made,
        },
    ))
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

/// Why the agent was not started.
enum Fail {
    /// The box could not be entered.
    Box(String),
    /// The box lost a mount of its plan.
    Stale(String),
    /// The agent itself could not be started in it.
    Agent(String),
}

fn check(what: &str, result: libc::c_long) -> Result<libc::c_long, Fail> {
    if result < 0 {
        Err(Fail::Box(format!(
            "{what}: {}",
            std::io::Error::last_os_error()
        )))
    } else {
        Ok(result)
    }
}

impl Steps {
    /// The child's part: returns (in the agent's process) to let it be executed.
    fn run(&mut self) -> std::io::Result<()> {
        let (prefix, why) = match self.enter() {
            Ok(()) => return Ok(()),
            Err(Fail::Box(why)) => (FAILED, why),
            Err(Fail::Stale(why)) => (STALE, why),
            Err(Fail::Agent(why)) => {
                // Said where the agent's own words go, its stderr: std's report of a failed
                // start keeps an error number, not this.
                write_all(
                    2,
                    format!("orch: cannot start the agent in its box: {why}\n").as_bytes(),
                );
                return Err(std::io::Error::other(why));
            }
        };
        let mut said = prefix.to_vec();
        said.extend_from_slice(why.as_bytes());
        write_all(self.status.as_raw_fd(), &said);
        Err(std::io::Error::other(why))
    }

    fn enter(&mut self) -> Result<(), Fail> {
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
            for path in &self.mounted {
                if !still_bound(path) {
                    return Err(Fail::Stale(format!(
                        "{} was replaced since the run's box was made",
                        path.to_string_lossy()
                    )));
                }
            }
            for fresh in &self.fresh {
                fresh.mount()?;
            }
            own_dev()?;
            // Open in the child as long as it lives: the init, if it finds it closed, knows
            // that the child died before the init could ask to die with it.
            let mut life = [0; 2];
            check(
                "a pipe",
                libc::pipe2(life.as_mut_ptr(), libc::O_CLOEXEC).into(),
            )?;
            let init = check("starting the box's init", libc::fork().into())?;
            if init == 0 {
                libc::close(life[1]);
                return self.init(life[0]);
            }
            // The child: it only waits for the init, whose end is the agent's.
            close_all_but(Some(life[1]));
            libc::_exit(super::inside::reap_until(init as libc::pid_t).map_or(1, code_of))
        }
    }

    /// Pid 1 of the box: returns in the agent's process.
    unsafe fn init(&mut self, life: RawFd) -> Result<(), Fail> {
        // SAFETY: as in `enter`.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let mut parent = libc::pollfd {
                fd: life,
                events: 0,
                revents: 0,
            };
            if libc::poll(&raw mut parent, 1, 0) != 0 {
                // Hung up: the child is gone already.
                libc::_exit(1);
            }
            libc::close(life);
            mount_proc()?;
            if self.shared.user.is_some() {
                self.own_user()?;
            }
            // Nothing in the box may trace it or read its descriptors (the pipe).
            libc::prctl(libc::PR_SET_DUMPABLE, 0);
            let agent = check("starting the agent", libc::fork().into())? as libc::pid_t;
            if agent == 0 {
                return self.agent();
            }
            let status = self.status.as_raw_fd();
            close_all_but(Some(status));
            let ended = match super::inside::reap_until(agent) {
                Ok(status) => {
                    let status = std::process::ExitStatus::from_raw(status);
                    Ended {
                        code: status.code(),
                        signal: status.signal(),
                        left: crate::agent_process::leftovers::in_this_box(),
                    }
                }
                Err(_) => Ended {
                    code: Some(crate::agent_process::run::NOT_STARTED),
                    signal: None,
                    left: Vec::new(),
                },
            };
            if let Ok(mut json) = serde_json::to_vec(&ended) {
                // The record's end, so that the launcher need not wait for ours (see
                // `Status::read`); serde_json's compact form has no newline of its own.
                json.push(b'\n');
                write_all(status, &json);
            }
            libc::_exit(super::inside::exit_code(ended.code, ended.signal))
        }
    }

    /// The agent's process, up to its exec.
    unsafe fn agent(&mut self) -> Result<(), Fail> {
        let as_agent = |fail| match fail {
            Fail::Box(why) | Fail::Stale(why) | Fail::Agent(why) => Fail::Agent(why),
        };
        // SAFETY: as in `enter`.
        unsafe {
            for &sig in &self.reset {
                libc::signal(sig, libc::SIG_DFL);
            }
            check(
                "entering its directory",
                libc::chdir(self.cwd.as_ptr()).into(),
            )
            .map_err(as_agent)?;
            drop_capabilities().map_err(as_agent)
        }
    }

    /// The box's init and its agent as the launcher's own user, as bwrap has it: in the user
    /// namespace that owns the box's mounts, the launcher's user is root (bwrap made the
    /// mounts as root there, then put the box's processes in a second namespace, where they
    /// are the user again). A user namespace of the copy's own, inside, maps the user back:
    /// an agent that takes itself for root behaves otherwise (some CLIs refuse to run as
    /// root). Made by the init once its mounts are done, before it starts the agent.
    unsafe fn own_user(&self) -> Result<(), Fail> {
        // SAFETY: as in `enter`; the writes go to our own process's maps.
        unsafe {
            // As the namespace that owns the mounts sees us.
            let (uid, gid) = (libc::geteuid(), libc::getegid());
            check(
                "a user namespace of its own",
                libc::unshare(libc::CLONE_NEWUSER).into(),
            )?;
            let write = |path: &std::ffi::CStr, text: &str| -> Result<(), Fail> {
                let what = format!("mapping its user: {}", path.to_string_lossy());
                let fd = check(
                    &what,
                    libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC).into(),
                )? as RawFd;
                let written = libc::write(fd, text.as_ptr().cast(), text.len());
                libc::close(fd);
                check(&what, written as libc::c_long).map(|_| ())
            };
            write(c"/proc/self/uid_map", &format!("{} {uid} 1\n", self.ids.0))?;
            write(c"/proc/self/setgroups", "deny")?;
            write(c"/proc/self/gid_map", &format!("{} {gid} 1\n", self.ids.1))
        }
    }
}

/// Closes every descriptor but `keep`.
unsafe fn close_all_but(keep: Option<RawFd>) {
    // SAFETY: close_range(2) and close(2) on our own descriptors.
    unsafe {
        let done = match keep.and_then(|k| libc::c_uint::try_from(k).ok()) {
            None => libc::close_range(0, libc::c_uint::MAX, 0) == 0,
            Some(k) => {
                (k == 0 || libc::close_range(0, k - 1, 0) == 0)
                    && libc::close_range(k + 1, libc::c_uint::MAX, 0) == 0
            }
        };
        if done {
            return;
        }
        // Where close_range(2) is refused (a seccomp filter): one by one, up to the limit.
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) == 0 {
            limit.rlim_cur.min(1 << 16) as RawFd
        } else {
            1024
        };
        for fd in 0..top {
            if Some(fd) != keep {
                libc::close(fd);
            }
        }
    }
}

/// Whether what the plan bound at `path` is still there as it was bound. Replaced from
/// outside (a rename over it, as git and the CLIs write their files), a file or directory
/// bound where the mount point is the outside's loses its mount, in every namespace; one
/// bound where the mount point is the box's own (under a tmpfs) keeps showing what was
/// replaced, no longer linked anywhere. (Where the kernel cannot say, taken as there.)
unsafe fn still_bound(path: &std::ffi::CStr) -> bool {
    // SAFETY: statx(2) writes only to `buf`.
    unsafe {
        let mut buf: libc::statx = std::mem::zeroed();
        if libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_NO_AUTOMOUNT,
            libc::STATX_NLINK,
            &raw mut buf,
        ) != 0
        {
            return false;
        }
        let root = libc::STATX_ATTR_MOUNT_ROOT as u64;
        let mounted = buf.stx_attributes_mask & root == 0 || buf.stx_attributes & root != 0;
        let linked = buf.stx_mask & libc::STATX_NLINK == 0 || buf.stx_nlink > 0;
        mounted && linked
    }
}

impl Fresh {
    /// A new tmpfs at `at`, and what the plan put under it moved onto the new one.
    unsafe fn mount(&self) -> Result<(), Fail> {
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
unsafe fn own_dev() -> Result<(), Fail> {
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
unsafe fn read_only(path: &std::ffi::CStr, recursive: bool) -> Result<(), Fail> {
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
unsafe fn mount_proc() -> Result<(), Fail> {
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
unsafe fn drop_capabilities() -> Result<(), Fail> {
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

/// A raw wait status as a shell's exit code.
fn code_of(status: libc::c_int) -> libc::c_int {
    let status = std::process::ExitStatus::from_raw(status);
    super::inside::exit_code(status.code(), status.signal())
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
