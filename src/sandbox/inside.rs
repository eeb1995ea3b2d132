//! `orch sandbox-exec`: the first program in an agent's box (its pid 1, which reaps what
//! ends in it). bwrap runs with the stop signals ignored (so that a TERM meant for the agent
//! does not kill the box around it first); this starts the agent with them back at their
//! default, waits for it while still ignoring them, and writes how it ended where the launcher
//! outside reads it, when its exit status would not say it.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::Path;
use std::process::Command;

use super::launch::Recorded;

/// Runs the agent `program` with `args`, with `reset_signals` back at their default, and
/// records how it ended in `status_file`. Returns the code to exit with: the agent's, or
/// 128 + the signal that killed it (127 when it could not be started, as a shell does).
pub fn exec(
    reset_signals: &[i32],
    status_file: &Path,
    program: &OsString,
    args: &[OsString],
) -> u8 {
    let reset = reset_signals.to_vec();
    let mut command = Command::new(program);
    command.args(args);
    // SAFETY: only async-signal-safe calls (signal(2)) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            for &sig in &reset {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    let recorded = match command.spawn().and_then(|child| wait_reaping(&child)) {
        Ok(status) => Recorded {
            code: status.code(),
            signal: status.signal(),
        },
        Err(e) => {
            eprintln!(
                "orch: cannot run `{}` in the sandbox: {e} — is it installed where the \
                 sandbox can see it (not under a hidden directory)? `orch doctor` checks the \
                 sandbox",
                Path::new(program).display()
            );
            Recorded {
                code: Some(crate::agent_process::run::NOT_STARTED),
                signal: None,
            }
        }
    };
    // What the agent left in the box ends with it (the kernel kills a pid namespace whose
    // first process ends): said here, where it can still be seen, for the engine to journal.
    let left = crate::agent_process::leftovers::in_this_box();
    if !left.is_empty()
        && let Ok(json) = serde_json::to_vec(&left)
    {
        let _ = std::fs::write(
            status_file.with_file_name(crate::agent_process::leftovers::BOX_FILE),
            json,
        );
    }
    // Only where bwrap's own exit status would be misread (a signal, or a status above 128,
    // which reads as one): a file less to create at most agents' ends, on the way from the
    // agent's end to its launcher hearing of it (see `super::ended`).
    if !super::launch::says_it_all(recorded.code, recorded.signal)
        && let Ok(json) = serde_json::to_vec(&recorded)
    {
        let _ = std::fs::write(status_file, json);
    }
    exit_code(recorded.code, recorded.signal) as u8
}

/// How the box's first process ends for an agent that ended so: as a shell says it, 128 + a
/// signal that killed it.
pub(super) fn exit_code(code: Option<i32>, signal: Option<i32>) -> i32 {
    match (code, signal) {
        (_, Some(sig)) => (128 + sig).clamp(0, 255),
        (Some(code), None) => code.clamp(0, 255),
        (None, None) => 1,
    }
}

/// Waits for `child`, reaping on the way whatever else ends in the box: this is the box's
/// first process (bwrap's `--as-pid-1`: no init of bwrap's in between, one process less to
/// start and to end for every agent), so what the agent leaves running is ours to reap.
fn wait_reaping(child: &std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    reap_until(child.id() as libc::pid_t).map(std::process::ExitStatus::from_raw)
}

/// Waits for `pid`, reaping whatever else ends on the way (a box's first process does);
/// its raw wait status.
pub(super) fn reap_until(pid: libc::pid_t) -> std::io::Result<libc::c_int> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) writes only to `status`.
        let got = unsafe { libc::waitpid(-1, &raw mut status, 0) };
        if got == pid {
            return Ok(status);
        }
        if got < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// `--reset-signals`'s value: signal numbers, comma-separated.
pub fn parse_signals(text: &str) -> Result<Vec<i32>, String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim()
                .parse::<i32>()
                .map_err(|_| format!("`{s}` is not a signal number"))
        })
        .collect()
}
