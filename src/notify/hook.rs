//! The `notify` hook: the user's command (argv, no shell), run in the project with the
//! notice as one JSON document on its standard input. It gets `notify.hook_timeout`; one that
//! takes longer is killed with everything it started (its own process group). Its output is
//! not shown anywhere but in what a failure says (its last line of stderr).

use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Notice;

/// Runs the hook `argv` for `notice`; `Err` says what went wrong, as the end of a sentence
/// that starts with the hook's name.
pub(super) fn run(
    argv: &[String],
    project: &Path,
    timeout: Duration,
    notice: &Notice,
) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("is empty")?;
    // A relative path is the project's (as `kind: command` agents' are); a bare name is
    // looked up on PATH.
    let program = if program.contains('/') && Path::new(program).is_relative() {
        project.join(program)
    } else {
        program.into()
    };
    let mut document =
        serde_json::to_vec(notice).map_err(|e| format!("cannot be given its notice: {e}"))?;
    document.push(b'\n');
    let mut child = Command::new(&program)
        .args(args)
        .current_dir(project)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not start: {e}"))?;
    // Written on a thread: a hook that never reads must not hold this one past its timeout.
    let stdin = child.stdin.take();
    std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&document);
        }
    });
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(stderr) = stderr {
            let _ = stderr.take(64 * 1024).read_to_end(&mut text);
        }
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                // The whole group: a shell script's children too.
                if let Ok(pgid) = i32::try_from(child.id()) {
                    // SAFETY: a plain syscall; the group is the hook's own (`process_group(0)`).
                    unsafe { libc::killpg(pgid, libc::SIGKILL) };
                }
                let _ = child.wait();
                return Err(format!(
                    "did not finish within {} (`notify.hook_timeout`) and was stopped",
                    humantime::format_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    };
    if status.success() {
        return Ok(());
    }
    // Its stderr is complete once it exited (unless something it started keeps it open:
    // then its words are not waited for).
    let words = if reader.is_finished() {
        reader.join().unwrap_or_default()
    } else {
        Vec::new()
    };
    let last = String::from_utf8_lossy(&words)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| {
            format!(
                ": its last words: {}",
                crate::transcript::truncate(l.trim(), 200)
            )
        })
        .unwrap_or_default();
    Err(format!("failed ({status}){last}"))
}
