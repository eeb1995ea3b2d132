//! Starting an agent in its box, from outside: the `bwrap` command line, and how the agent
//! ended, read back from the box.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::Path;
use std::process::{Command, ExitStatus};

use super::hold::Info;
use super::{Env, Jail, Mount, plan};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Agent<'a> {
    /// A path (relative to `cwd` when it holds a slash, as a shell takes it), or a name looked
    /// up on the agent's PATH.
    pub program: &'a str,
    pub args: &'a [String],
    /// The run's environment (the caller's, from the run's `environ` file), over the inherited
    /// one; may hold values that are not UTF-8.
    pub base_env: &'a [(OsString, OsString)],
    /// Added over both.
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    /// Where the box writes how the agent really ended (bwrap itself only says it as a shell
    /// would, 128 + a signal, which an exit status of 143 cannot be told from).
    pub status_file: &'a Path,
}

/// The signals orch stops agents with. bwrap runs with them ignored; `orch sandbox-exec`
/// sets them back to default for the agent (see the module's doc).
pub const STOP_SIGNALS: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// The command that runs `agent`, in `jail` when there is one (`keep_ignored`: the stop
/// signals the caller was started with ignored, which the agent must keep ignoring, nohup).
/// A bare program name is looked up before the box is made, so that a missing program is
/// reported as such.
pub fn command(
    jail: Option<&Jail>,
    agent: &Agent,
    keep_ignored: &[i32],
) -> std::io::Result<Command> {
    let exe = std::env::current_exe().and_then(|p| p.canonicalize())?;
    command_with(&exe, jail, agent, keep_ignored)
}

/// [`command`], and for a box, what holds it open as the agent ends (see hold.rs): its
/// [`Info`] is to be read once the command is spawned.
pub fn command_holding(
    jail: Option<&Jail>,
    agent: &Agent,
    keep_ignored: &[i32],
) -> std::io::Result<(Command, Option<Info>)> {
    let exe = std::env::current_exe().and_then(|p| p.canonicalize())?;
    if jail.is_none() {
        return Ok((build(&exe, jail, agent, keep_ignored, None)?, None));
    }
    let (info, write) = Info::pipe()?;
    Ok((
        build(&exe, jail, agent, keep_ignored, Some(write))?,
        Some(info),
    ))
}

/// [`command`], with `exe` the orch executable that runs `orch sandbox-exec` in the box.
pub fn command_with(
    exe: &Path,
    jail: Option<&Jail>,
    agent: &Agent,
    keep_ignored: &[i32],
) -> std::io::Result<Command> {
    build(exe, jail, agent, keep_ignored, None)
}

/// [`command_with`], bwrap telling `info` (when given) about the box.
fn build(
    exe: &Path,
    jail: Option<&Jail>,
    agent: &Agent,
    keep_ignored: &[i32],
    info: Option<std::os::fd::OwnedFd>,
) -> std::io::Result<Command> {
    let resolved = crate::agent_process::subprocess::resolve(agent.program, agent.cwd);
    let Some(jail) = jail else {
        let mut cmd = Command::new(resolved);
        cmd.args(agent.args)
            .envs(agent.base_env.iter().map(|(k, v)| (k, v)))
            .envs(agent.env.iter().map(|(k, v)| (k, v)))
            .current_dir(agent.cwd);
        return Ok(cmd);
    };
    let path = agent
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v))
        .or_else(|| {
            agent
                .base_env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.clone())
        })
        .or_else(|| std::env::var_os("PATH"));
    let program = if agent.program.contains('/') {
        resolved
    } else {
        which::which_in(agent.program, path, agent.cwd)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::NotFound))?
    };
    let bwrap = which::which("bwrap").map_err(|_| {
        std::io::Error::other(
            "this agent is to run in the sandbox, but bubblewrap (`bwrap`) is not on PATH: \
             install it (`sudo apt-get install bubblewrap`) or set `sandbox: off` in orch.yaml",
        )
    })?;
    // An old one must not pass for this run's.
    match std::fs::remove_file(agent.status_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut lookup = Env::inherited();
    lookup.overlay_os(agent.base_env);
    lookup.overlay(agent.env);
    let mut mounts = plan(jail, &lookup, &program, exe, agent.cwd);
    // The directory where the box records how the agent ended stays writable inside the
    // run's read-only record (the attempt's logs around it do not).
    if let Some(attempt) = agent.status_file.parent() {
        super::mounts::add_writable(&mut mounts, attempt);
    }
    let mut cmd = Command::new(bwrap);
    cmd.args(bwrap_args(jail, &mounts, agent.cwd));
    if let Some(write) = info {
        cmd.arg("--info-fd").arg(super::hold::INFO_FD.to_string());
        super::hold::pass(&mut cmd, write);
    }
    cmd.arg(exe).arg("sandbox-exec");
    let reset: Vec<String> = STOP_SIGNALS
        .iter()
        .filter(|s| !keep_ignored.contains(s))
        .map(std::string::ToString::to_string)
        .collect();
    if !reset.is_empty() {
        cmd.arg("--reset-signals").arg(reset.join(","));
    }
    cmd.arg("--status-file").arg(agent.status_file);
    cmd.arg("--").arg(&program).args(agent.args);
    cmd.envs(agent.base_env.iter().map(|(k, v)| (k, v)));
    cmd.envs(agent.env.iter().map(|(k, v)| (k, v)));
    cmd.current_dir(agent.cwd);
    // SAFETY: only async-signal-safe calls (signal(2)) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for sig in STOP_SIGNALS {
                libc::signal(sig, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// How an agent run in a box ended: as the box recorded it in `status_file`, else (the box's
/// own process was killed before it could say) from bwrap's status, where 128 + N means
/// killed by signal N.
pub fn ended(status: ExitStatus, status_file: &Path) -> (Option<i32>, Option<i32>) {
    // Only where bwrap's status alone would mislead (a signal, a status above 128) is the
    // record written, so only there is it read: the box can write there, and a record left
    // where the status is plain would be a forgery.
    let recorded = (!says_it_all(status.code(), status.signal()))
        .then(|| std::fs::read(status_file).ok())
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<Recorded>(&bytes).ok());
    let _ = std::fs::remove_file(status_file);
    if let Some(r) = recorded {
        return (r.code, r.signal);
    }
    match status.code() {
        Some(c) if (129..=128 + 64).contains(&c) => (None, Some(c - 128)),
        code => (code, status.signal()),
    }
}

/// Whether bwrap's exit status alone says how the agent ended: an exit of 0 to 128, which
/// cannot be read as 128 + a signal. Elsewhere the box writes its record, and only there is
/// one read.
pub(super) fn says_it_all(code: Option<i32>, signal: Option<i32>) -> bool {
    signal.is_none() && code.is_some_and(|c| (0..=128).contains(&c))
}

/// The content of the status file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Recorded {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// Variables that give access to something outside the box (the SSH and GPG agents' sockets,
/// the user's D-Bus session): not passed in.
const UNSET: [&str; 4] = [
    "SSH_AUTH_SOCK",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_RUNTIME_DIR",
];

pub(super) fn as_root() -> bool {
    // SAFETY: getuid(2) only reads our own user id.
    unsafe { libc::getuid() == 0 }
}

/// bwrap's options for `mounts`, up to (not including) the command.
pub fn bwrap_args(jail: &Jail, mounts: &[Mount], cwd: &Path) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    let mut push = |words: &[&std::ffi::OsStr]| out.extend(words.iter().map(|w| w.to_os_string()));
    // No --new-session: the box stays in the pane's process group, which orch signals.
    push(&[
        "--die-with-parent".as_ref(),
        "--unshare-pid".as_ref(),
        // `orch sandbox-exec` is the box's init: bwrap's own would be one more process to
        // start and, as the agent ends, to wait for.
        "--as-pid-1".as_ref(),
        "--unshare-ipc".as_ref(),
    ]);
    if jail.no_network {
        push(&["--unshare-net".as_ref()]);
    }
    // Run by root, bwrap leaves the agent every capability, with which it could unmount what
    // hides the home; run by anyone else, the agent gets none anyway.
    if as_root() {
        push(&["--cap-drop".as_ref(), "ALL".as_ref()]);
    }
    push(&[
        "--ro-bind".as_ref(),
        "/".as_ref(),
        "/".as_ref(),
        "--dev".as_ref(),
        "/dev".as_ref(),
        "--proc".as_ref(),
        "/proc".as_ref(),
    ]);
    let mut read_only_at_end = Vec::new();
    for mount in mounts {
        match mount {
            Mount::Tmpfs(p) => push(&["--tmpfs".as_ref(), p.as_os_str()]),
            Mount::Hidden(p) => {
                push(&["--tmpfs".as_ref(), p.as_os_str()]);
                read_only_at_end.push(p.clone());
            }
            Mount::HiddenFile(p) => {
                push(&["--ro-bind".as_ref(), "/dev/null".as_ref(), p.as_os_str()]);
            }
            Mount::Read(p) => push(&["--ro-bind".as_ref(), p.as_os_str(), p.as_os_str()]),
            Mount::Write(p) => push(&["--bind".as_ref(), p.as_os_str(), p.as_os_str()]),
        }
    }
    // Last: the hidden homes' mount points for what is bound back are made by now.
    for p in &read_only_at_end {
        push(&["--remount-ro".as_ref(), p.as_os_str()]);
    }
    for var in UNSET {
        push(&["--unsetenv".as_ref(), var.as_ref()]);
    }
    push(&["--chdir".as_ref(), cwd.as_os_str()]);
    out
}
