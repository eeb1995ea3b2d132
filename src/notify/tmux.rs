//! The tmux side of a notice: the message on the status line of every terminal attached to
//! the run's session (`display-message -c`, which tmux also keeps in its message log,
//! `show-messages`), and the task's window marked: its `@orch_notice` option holds the
//! message (for a status format of the user's) and its name shows in reverse in the window
//! list (the style of tmux's own bell flag) for as long as the window stays. Control-mode
//! clients (the engine's
//! own) are left out: they have no status line. The bell is the engine's to ring, in its
//! own window (see `engine/notices.rs`).

use std::process::{Command, Stdio};

use super::{Notice, Target};

pub(super) fn show(target: &Target, notice: &Notice) -> Result<(), String> {
    let text = crate::tmux::escape_format(&format!("{} — {}", notice.title(), notice.reason));
    let clients = match tmux(
        target,
        &[
            "list-clients",
            "-t",
            &target.session,
            "-F",
            "#{client_control_mode} #{client_name}",
        ],
    ) {
        Ok(clients) => clients,
        // The session is gone (its server died, `orch down`): no one to show it to.
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    for line in clients.lines() {
        if let Some(client) = line.strip_prefix("0 ") {
            tmux(
                target,
                &["display-message", "-c", client, "-d", "15000", &text],
            )?;
        }
    }
    if let Some(window) = &notice.window {
        let marked = tmux(
            target,
            &["set-option", "-w", "-t", window, "@orch_notice", &text],
        )
        .and_then(|_| {
            tmux(
                target,
                &[
                    "set-option",
                    "-w",
                    "-t",
                    window,
                    "window-status-style",
                    "reverse",
                ],
            )
        });
        match marked {
            // Closed meanwhile: nothing left to mark.
            Err(e) if !gone(&e) => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Whether tmux's words say the session or its server is gone.
fn gone(said: &str) -> bool {
    [
        "can't find session",
        "can't find window",
        "no server running",
        "error connecting",
    ]
    .iter()
    .any(|w| said.contains(w))
}

/// Runs one tmux command on the run's server; its stdout, or what tmux said.
fn tmux(target: &Target, args: &[&str]) -> Result<String, String> {
    let (program, prefix) = target.tmux.split_first().ok_or("no tmux command to run")?;
    let out = Command::new(program)
        .args(prefix)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run tmux: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`tmux {}` failed: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
