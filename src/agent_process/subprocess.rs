//! Running an agent as a plain subprocess (for `orch plan`, and gates): no shell, stdin from
//! its prompt file (an agent CLI) or /dev/null, output kept in a log, killed with its whole process group when it goes silent
//! for too long.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;

use crate::workers::Invocation;

/// How a subprocess ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
    /// Killed by us after `timeout` without any output.
    TimedOut(Duration),
}

pub struct Finished {
    pub ended: Ended,
    /// Everything it printed on stdout.
    pub stdout: String,
}

/// Runs `inv`, appending stdout and stderr to `log` and passing each line to `echo` as it
/// comes. Kills it (TERM, then KILL) after `timeout` of silence.
pub fn run_logged(
    inv: &Invocation,
    log: &Path,
    timeout: Duration,
    mut echo: impl FnMut(&str),
) -> anyhow::Result<Finished> {
    let (program, args) = inv
        .argv
        .split_first()
        .context("the agent's command is empty")?;
    let log_file =
        File::create(log).with_context(|| format!("failed to create {}", log.display()))?;
    let log_file = Arc::new(Mutex::new(log_file));
    // The prompt, for an agent CLI: never on its command line.
    let stdin = match &inv.stdin {
        None => Stdio::null(),
        Some(path) => File::open(path)
            .map(Stdio::from)
            .with_context(|| format!("cannot open the prompt {}", path.display()))?,
    };
    // In its sandbox when the invocation names one; the status file is where the box says
    // how the agent ended.
    let status_file = log.with_file_name("box").join("sandbox-exit.json");
    if inv.sandbox.is_some()
        && let Some(dir) = status_file.parent()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let agent = crate::sandbox::Agent {
        program,
        args,
        base_env: &[],
        env: &inv.env,
        cwd: &inv.cwd,
        status_file: &status_file,
    };
    let mut command = crate::sandbox::command(inv.sandbox.as_ref(), &agent, &[])
        .map_err(|e| spawn_error(program, e))?;
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    crate::private::user_umask_for(&mut command);
    let mut child = command.spawn().map_err(|e| spawn_error(program, e))?;

    enum Msg {
        Line(String),
        Stdout(Vec<u8>),
        Closed,
    }
    let (tx, rx) = mpsc::channel::<Msg>();
    let pump = |stream: Box<dyn Read + Send>, keep: bool, tx: mpsc::Sender<Msg>| {
        let log_file = Arc::clone(&log_file);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if let Ok(mut f) = log_file.lock() {
                    let _ = f.write_all(&line);
                }
                let text = String::from_utf8_lossy(&line).into_owned();
                let _ = tx.send(if keep {
                    Msg::Stdout(line.clone())
                } else {
                    Msg::Line(text)
                });
                line.clear();
            }
            let _ = tx.send(Msg::Closed);
        });
    };
    pump(
        Box::new(child.stdout.take().expect("piped")),
        true,
        tx.clone(),
    );
    pump(Box::new(child.stderr.take().expect("piped")), false, tx);

    let mut stdout = Vec::new();
    let mut open = 2;
    let mut timed_out = None;
    while open > 0 {
        match rx.recv_timeout(timeout) {
            Ok(Msg::Stdout(bytes)) => {
                echo(String::from_utf8_lossy(&bytes).trim_end_matches('\n'));
                stdout.extend_from_slice(&bytes);
            }
            Ok(Msg::Line(text)) => echo(text.trim_end_matches('\n')),
            Ok(Msg::Closed) => open -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = Some(timeout);
                stop_child(&mut child, Duration::from_secs(3));
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().context("failed to wait for the agent")?;
    use std::os::unix::process::ExitStatusExt;
    let (code, signal) = if inv.sandbox.is_some() {
        crate::sandbox::ended(status, &status_file)
    } else {
        (status.code(), status.signal())
    };
    let ended = match (timed_out, code, signal) {
        (Some(t), _, _) => Ended::TimedOut(t),
        (None, Some(code), _) => Ended::Exited(code),
        (None, None, Some(sig)) => Ended::Signaled(sig),
        (None, None, None) => Ended::Exited(-1),
    };
    Ok(Finished {
        ended,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
    })
}

/// A program named with a slash is taken relative to `cwd` (the project root), like a shell
/// would; a bare name is looked up on PATH.
pub fn resolve(program: &str, cwd: &Path) -> std::path::PathBuf {
    if program.contains('/') {
        cwd.join(program)
    } else {
        program.into()
    }
}

fn spawn_error(program: &str, e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        crate::error::usage(format!(
            "cannot run `{program}`: not found. Install it or fix the agent's command in \
             orch.yaml; `orch doctor` checks every agent"
        ))
    } else {
        anyhow::anyhow!("cannot run `{program}`: {e}")
    }
}

/// Stops our own child and its group: TERM, then KILL if it has not exited after `grace`.
fn stop_child(child: &mut std::process::Child, grace: Duration) {
    let pgid = child.id() as i32;
    signal_group(pgid, libc::SIGTERM);
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            // The leader is gone; make sure nothing it started lingers.
            signal_group(pgid, libc::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_group(pgid, libc::SIGKILL);
}

fn signal_group(pgid: i32, signal: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// Sends TERM to a process group, then KILL if it is still there after `grace`.
pub fn kill_group(pgid: i32, grace: Duration) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        // SAFETY: signal 0 only checks that the group still exists.
        if unsafe { libc::kill(-pgid, 0) } != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}
