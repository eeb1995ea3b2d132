//! Shared harness for orch's integration tests: real tmux on private servers, and
//! waiting on conditions instead of sleeping.
//!
//! Every test that needs tmux creates its own `PrivateServer` (`private_server("what")`): a
//! unique socket, no config file, killed when dropped, even when the test panics. Tests never
//! run tmux without `-L`, so the user's own server is never touched. A test of a run uses
//! [`Up`] (made with [`Options`]), which owns such a server.

pub(crate) mod agent_clis;
pub(crate) mod counting;
pub(crate) mod model_server;
mod options;
mod project;
mod up;

use std::time::{Duration, Instant};

pub(crate) use options::{Options, SCRIPTED};
pub(crate) use project::{Orch, Output, TestProject, session_of, sessions_of};
pub(crate) use up::{LONG, Up};

pub(crate) use orch::tmux::{PaneState, PrivateServer, Tmux, TmuxError, WindowSpec};

/// Generous deadline for things that normally take milliseconds (a loaded CI machine
/// can be slow; a passing test never waits for it).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(15);

/// A private tmux server for one test; `purpose` shows up in the socket name.
pub(crate) fn private_server(purpose: &str) -> PrivateServer {
    PrivateServer::new(purpose)
}

/// Runs git in `dir` with an identity and no system config; it must succeed. Its standard
/// output, as printed.
pub(crate) fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=u", "-c", "user.email=u@u"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `["a", "b"]` as owned strings.
pub(crate) fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(std::string::ToString::to_string).collect()
}

/// Polls `cond` with a short, growing pause until it holds or `timeout` passes. On
/// timeout, panics with `what`, the time waited and `diagnostics()` (e.g. the contents
/// of every pane, from `session_diagnostics`).
pub(crate) fn wait_until(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
    diagnostics: impl FnOnce() -> String,
) {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        if cond() {
            return;
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            panic!(
                "timed out after {:.1?} waiting for {what}\n{}",
                elapsed,
                diagnostics()
            );
        }
        std::thread::sleep(pause.min(timeout - elapsed));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Every pane of `session`: its state and its visible screen, for failure messages.
pub(crate) fn session_diagnostics(tmux: &dyn Tmux, session: &str) -> String {
    let panes = match tmux.list_panes(session) {
        Ok(panes) => panes,
        Err(err) => return format!("(cannot list the panes of session {session}: {err})"),
    };
    let mut report = format!("session {session}: {} pane(s)\n", panes.len());
    for pane in panes {
        let screen = tmux
            .capture_pane(&pane.pane_id)
            .unwrap_or_else(|err| format!("(cannot capture: {err})"));
        report.push_str(&format!(
            "--- pane {} in window {} '{}' pid {} ({}) dead={} status={:?} signal={:?}\n{}\n",
            pane.pane_id,
            pane.window_id,
            pane.window_name,
            pane.pid,
            process_state(pane.pid),
            pane.dead,
            pane.dead_status,
            pane.dead_signal,
            screen.trim_end()
        ));
    }
    report
}

/// A process's state letter from /proc (Z = zombie: exited, not reaped), to tell a
/// command that is still running from one tmux has not noticed the exit of.
fn process_state(pid: u32) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').next())
            .map_or_else(|| "state ?".to_string(), |s| format!("state {s}")),
        Err(_) => "no such process".to_string(),
    }
}

/// Waits until `session` has a pane for which `pred` holds, and returns it.
pub(crate) fn wait_for_pane(
    tmux: &dyn Tmux,
    session: &str,
    what: &str,
    pred: impl Fn(&PaneState) -> bool,
) -> PaneState {
    let mut found = None;
    wait_until(
        what,
        TIMEOUT,
        || {
            found = tmux
                .list_panes(session)
                .ok()
                .and_then(|panes| panes.into_iter().find(|p| pred(p)));
            found.is_some()
        },
        || session_diagnostics(tmux, session),
    );
    found.expect("wait_until returned, so the pane was found")
}

/// This process's umask, read from /proc: setting it to read it (umask(2)) would change it, for
/// a moment, for every test of the binary, each on a thread of this one process.
pub(crate) fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc is mounted");
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("a Umask line (Linux 4.7 or later)");
    u32::from_str_radix(mask.trim(), 8).expect("an octal umask")
}

/// Every process's command line that holds one of `markers`, as `pid: words`.
pub(crate) fn command_lines_with(markers: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // Gone since the listing, or a kernel thread: nothing to read.
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if markers.iter().any(|m| text.contains(m)) {
            found.push(format!("{pid}: {text}"));
        }
    }
    found
}

/// The process whose pid in its own pid namespace is `inner` (a sandboxed agent's `$$`; for
/// one not boxed, its pid out here) and whose environment `wanted` accepts: its pid out here
/// and its environment (`NAME=value` entries, each ended by a NUL).
pub(crate) fn process_by_inner_pid(
    inner: i32,
    wanted: impl Fn(&[u8]) -> bool,
) -> Option<(i32, Vec<u8>)> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let nspid = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
            if nspid.split_whitespace().last()?.parse::<i32>().ok()? != inner {
                return None;
            }
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            wanted(&environ).then_some((pid, environ))
        })
}
