//! A desktop notice: `notify-send` where it is installed (Linux), else `osascript` (macOS);
//! nothing where neither is. The text goes as arguments (never through a shell); for
//! `osascript` it is passed as the script's arguments, not written into the script.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Notice;

/// How long a desktop notifier may take (it normally returns at once).
const TIMEOUT: Duration = Duration::from_secs(5);

/// Set to `off`, no desktop notice is shown whatever the config says (orch's own tests set it,
/// so that running them shows nothing on the tester's desktop).
pub(super) const OFF_VAR: &str = "ORCH_NOTIFY_DESKTOP";

pub(super) fn show(notice: &Notice) -> Result<(), String> {
    if std::env::var(OFF_VAR).is_ok_and(|v| v == "off") {
        return Ok(());
    }
    let mut command = if which::which("notify-send").is_ok() {
        let mut c = Command::new("notify-send");
        c.args(["--app-name=orch", "--", &notice.title(), &notice.reason]);
        c
    } else if which::which("osascript").is_ok() {
        let mut c = Command::new("osascript");
        c.args([
            "-e",
            "on run argv",
            "-e",
            "display notification (item 2 of argv) with title (item 1 of argv)",
            "-e",
            "end run",
            &notice.title(),
            &notice.reason,
        ]);
        c
    } else {
        return Ok(()); // no desktop to tell
    };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{e}"))?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{:?} {status}", command.get_program())),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{:?} did not return", command.get_program()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
}
