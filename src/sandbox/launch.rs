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

/// How the box says how the agent ended, once the command is spawned.
#[derive(Debug)]
pub enum Ending {
    /// A bwrap of the agent's own: its exit status (and record, see [`ended`]); what it
    /// says is to be read once the command is spawned, to hold the box open as the agent
    /// ends (see hold.rs).
    Own(Info),
    /// The run's shared box (see shared.rs): its init's pipe.
    Shared(super::enter::Status),
}

/// An agent's command, ready to spawn.
#[derive(Debug)]
pub struct Prepared {
    pub command: Command,
    pub ending: Option<Ending>,
    /// Something to say in the pane and the log: why the agent did not enter the run's box.
    pub note: Option<String>,
}

/// [`command`], and for a box, how it says how the agent ended. `share`: the agent may enter
/// the run's shared box (where there is one to be had, see shared.rs); the command must then
/// be spawned by this process while it has a single thread.
pub fn command_holding(
    jail: Option<&Jail>,
    agent: &Agent,
    keep_ignored: &[i32],
    share: bool,
) -> std::io::Result<Prepared> {
    let exe = std::env::current_exe().and_then(|p| p.canonicalize())?;
    let Some(jail) = jail else {
        return Ok(Prepared {
            command: build(&exe, None, agent, keep_ignored, None)?,
            ending: None,
            note: None,
        });
    };
    let mut note = None;
    if share {
        match entering(&exe, jail, agent, keep_ignored) {
            Ok(Some((command, status))) => {
                return Ok(Prepared {
                    command,
                    ending: Some(Ending::Shared(status)),
                    note: None,
                });
            }
            Ok(None) => {}
            Err(why) => note = Some(format!("orch: {why}; this agent gets a box of its own")),
        }
    }
    // Where the box records how the agent ended, writable in it.
    if let Some(dir) = agent.status_file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    let (info, write) = Info::pipe()?;
    Ok(Prepared {
        command: build(&exe, Some(jail), agent, keep_ignored, Some(write))?,
        ending: Some(Ending::Own(info)),
        note,
    })
}

/// The command that enters the run's shared box for `jail`, making it if need be; `Ok(None)`
/// where there is none to be had, and where the agent's own box would say what is wrong (a
/// program not found, no bwrap).
fn entering(
    exe: &Path,
    jail: &Jail,
    agent: &Agent,
    keep_ignored: &[i32],
) -> Result<Option<(Command, super::enter::Status)>, String> {
    let Some(run) = super::shared::run_sharing(jail) else {
        return Ok(None);
    };
    let (Ok(program), Ok(bwrap)) = (program(agent), which::which("bwrap")) else {
        return Ok(None);
    };
    let mounts = mounts_for(jail, agent, &program, exe);
    let shared = super::shared::find_or_make(&run, &args(jail, &mounts, None), &bwrap, exe)?;
    let (mut cmd, status) =
        super::enter::command(shared, &mounts, &program, agent.cwd, reset(keep_ignored))
            .map_err(|e| e.to_string())?;
    // Its directory is entered in the box (see enter.rs).
    cmd.args(agent.args)
        .envs(agent.base_env.iter().map(|(k, v)| (k, v)))
        .envs(agent.env.iter().map(|(k, v)| (k, v)));
    for var in UNSET {
        cmd.env_remove(var);
    }
    Ok(Some((cmd, status)))
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

/// The agent's program: a bare name looked up on the agent's PATH, before the box is made,
/// so that a missing program is reported as such.
fn program(agent: &Agent) -> std::io::Result<std::path::PathBuf> {
    let resolved = crate::agent_process::subprocess::resolve(agent.program, agent.cwd);
    if agent.program.contains('/') {
        return Ok(resolved);
    }
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
    which::which_in(agent.program, path, agent.cwd)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::NotFound))
}

/// What the agent's box shows, worked out from the environment it gets.
fn mounts_for(jail: &Jail, agent: &Agent, program: &Path, exe: &Path) -> Vec<Mount> {
    let mut lookup = Env::inherited();
    lookup.overlay_os(agent.base_env);
    lookup.overlay(agent.env);
    plan(jail, &lookup, program, exe, agent.cwd)
}

/// The stop signals the agent gets back at their default: those its launcher was not
/// started with ignored.
fn reset(keep_ignored: &[i32]) -> Vec<i32> {
    STOP_SIGNALS
        .iter()
        .copied()
        .filter(|s| !keep_ignored.contains(s))
        .collect()
}

/// [`command_with`], bwrap telling `info` (when given) about the box.
fn build(
    exe: &Path,
    jail: Option<&Jail>,
    agent: &Agent,
    keep_ignored: &[i32],
    info: Option<std::os::fd::OwnedFd>,
) -> std::io::Result<Command> {
    let Some(jail) = jail else {
        let resolved = crate::agent_process::subprocess::resolve(agent.program, agent.cwd);
        let mut cmd = Command::new(resolved);
        cmd.args(agent.args)
            .envs(agent.base_env.iter().map(|(k, v)| (k, v)))
            .envs(agent.env.iter().map(|(k, v)| (k, v)))
            .current_dir(agent.cwd);
        return Ok(cmd);
    };
    let program = program(agent)?;
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
    let mut mounts = mounts_for(jail, agent, &program, exe);
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
    let reset: Vec<String> = reset(keep_ignored)
        .iter()
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
    from_status(status)
}

/// How an agent run in a box ended, from the status of the box's outer process alone, where
/// 128 + N means killed by signal N.
pub fn from_status(status: ExitStatus) -> (Option<i32>, Option<i32>) {
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
    args(jail, mounts, Some(cwd))
}

/// [`bwrap_args`] for one agent (in `cwd`, ending with its launcher), or with `None`, for a
/// run's shared box (which outlives the launcher that makes it).
fn args(jail: &Jail, mounts: &[Mount], cwd: Option<&Path>) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    let mut push = |words: &[&std::ffi::OsStr]| out.extend(words.iter().map(|w| w.to_os_string()));
    // For an agent, no --new-session: the box stays in the pane's process group, which orch
    // signals. A run's box is put in a session of its own by whoever makes it (shared.rs).
    if cwd.is_some() {
        push(&["--die-with-parent".as_ref()]);
    }
    push(&[
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
    let cwd = cwd.unwrap_or(Path::new("/"));
    push(&["--chdir".as_ref(), cwd.as_os_str()]);
    out
}
