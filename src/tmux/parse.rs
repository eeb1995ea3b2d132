//! Reading what tmux prints: `-F` formats, `list-panes` lines and error messages.
//!
//! Fields are separated by tabs because tmux escapes tabs and newlines in names (`\t`,
//! `\n`), so neither can appear inside a field; the window name still comes last so that
//! a line is split into a fixed number of fields whatever the name holds.

use super::{PaneInfo, PaneState, TmuxError};

/// Printed by `new-session`/`new-window`/`split-window -P`.
pub(crate) const PANE_INFO_FORMAT: &str = "#{pane_id}\t#{window_id}\t#{pane_pid}";

/// One `list-panes` line. tmux escapes tabs and newlines in the start command too
/// (`\t`, `\n`), so it holds no separator either.
pub(crate) const PANE_STATE_FORMAT: &str = "#{pane_id}\t#{window_id}\t#{pane_pid}\t#{pane_dead}\t\
     #{pane_dead_status}\t#{pane_dead_signal}\t#{pane_start_command}\t#{window_name}";

pub(crate) fn pane_info(command: &str, output: &str) -> Result<PaneInfo, TmuxError> {
    let unexpected = || TmuxError::UnexpectedOutput {
        command: command.to_string(),
        output: output.to_string(),
    };
    let line = output
        .lines()
        .find(|l| !l.is_empty())
        .ok_or_else(unexpected)?;
    let fields: Vec<&str> = line.split('\t').collect();
    let [pane_id, window_id, pid] = fields[..] else {
        return Err(unexpected());
    };
    if !pane_id.starts_with('%') || !window_id.starts_with('@') {
        return Err(unexpected());
    }
    Ok(PaneInfo {
        pane_id: pane_id.to_string(),
        window_id: window_id.to_string(),
        pid: pid.parse().map_err(|_| unexpected())?,
    })
}

pub(crate) fn pane_states(command: &str, output: &str) -> Result<Vec<PaneState>, TmuxError> {
    output
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            pane_state(line).ok_or_else(|| TmuxError::UnexpectedOutput {
                command: command.to_string(),
                output: line.to_string(),
            })
        })
        .collect()
}

fn pane_state(line: &str) -> Option<PaneState> {
    let mut fields = line.splitn(8, '\t');
    let pane_id = fields.next()?;
    let window_id = fields.next()?;
    let pid = fields.next()?.parse().ok()?;
    let dead = match fields.next()? {
        "1" => true,
        "0" => false,
        _ => return None,
    };
    let dead_status = optional_number(fields.next()?)?;
    let dead_signal = optional_number(fields.next()?)?;
    let start_command = fields.next()?;
    let window_name = fields.next()?;
    if !pane_id.starts_with('%') || !window_id.starts_with('@') {
        return None;
    }
    Some(PaneState {
        pane_id: pane_id.to_string(),
        window_id: window_id.to_string(),
        window_name: window_name.to_string(),
        pid,
        dead,
        dead_status,
        dead_signal,
        start_command: start_command.to_string(),
    })
}

/// Empty means "not known yet" (tmux prints nothing until it has the exit status).
fn optional_number(field: &str) -> Option<Option<i32>> {
    if field.is_empty() {
        Some(None)
    } else {
        field.parse().ok().map(Some)
    }
}

/// What a failed command was about, to name it in the error.
pub(crate) enum Subject<'a> {
    Session(&'a str),
    Target(&'a str),
    Other,
}

/// Everything needed to turn tmux's stderr into a `TmuxError`.
pub(crate) struct Failure<'a> {
    pub command: String,
    pub status: Option<i32>,
    pub stderr: &'a str,
    pub subject: Subject<'a>,
    /// Names the server in messages, e.g. "tmux socket 'orch'".
    pub server: String,
    /// How the user lists this server's sessions.
    pub list_command: String,
}

pub(crate) fn classify(failure: Failure<'_>) -> TmuxError {
    let stderr = failure.stderr.trim();
    let refused = stderr.starts_with("error connecting to")
        && (stderr.contains("No such file or directory") || stderr.contains("Connection refused"));
    // A server caught shutting down (its last session just closed) answers "server exited
    // unexpectedly": for the caller it is as gone as one that never ran.
    let exiting = stderr.contains("server exited unexpectedly");
    if stderr.starts_with("no server running on") || refused || exiting {
        return TmuxError::ServerNotRunning {
            server: failure.server,
        };
    }
    if stderr.contains("can't find session") || stderr.contains("no such session") {
        let session = match failure.subject {
            Subject::Session(name) => name.to_string(),
            _ => stderr.rsplit(": ").next().unwrap_or(stderr).to_string(),
        };
        return TmuxError::SessionNotFound {
            session,
            list_command: failure.list_command,
        };
    }
    if stderr.contains("no space for new pane") || stderr.contains("pane too small") {
        let target = match failure.subject {
            Subject::Target(target) | Subject::Session(target) => target.to_string(),
            Subject::Other => "the window".to_string(),
        };
        return TmuxError::NoSpace { target };
    }
    TmuxError::CommandFailed {
        command: failure.command,
        status: failure.status,
        stderr: stderr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure<'a>(stderr: &'a str, subject: Subject<'a>) -> TmuxError {
        classify(Failure {
            command: "tmux x".into(),
            status: Some(1),
            stderr,
            subject,
            server: "tmux socket 's'".into(),
            list_command: "tmux -L s ls".into(),
        })
    }

    #[test]
    fn pane_info_reads_the_first_line() {
        let info = pane_info("c", "%3\t@2\t1234\n").unwrap();
        assert_eq!(info.pane_id, "%3");
        assert_eq!(info.window_id, "@2");
        assert_eq!(info.pid, 1234);
        assert!(pane_info("c", "").is_err());
        assert!(pane_info("c", "%3 @2 1234").is_err());
        assert!(pane_info("c", "%3\t@2\tx").is_err());
    }

    #[test]
    fn pane_states_read_dead_fields_and_names_with_tabs() {
        let out = "%0\t@0\t10\t0\t\t\torch engine /r\tcontrol\n\
                   %1\t@1\t11\t1\t3\t\t/bin/sh \"/a b/launch.sh\"\ttask\tone\n\
                   %2\t@1\t12\t1\t\t15\t\tx\n";
        let panes = pane_states("c", out).unwrap();
        assert_eq!(panes.len(), 3);
        assert!(!panes[0].dead && panes[0].dead_status.is_none());
        assert_eq!(panes[0].window_name, "control");
        assert_eq!(panes[0].start_command, "orch engine /r");
        assert_eq!(panes[1].start_command, "/bin/sh \"/a b/launch.sh\"");
        assert_eq!(panes[2].start_command, "");
        assert_eq!(
            (panes[1].dead, panes[1].dead_status, panes[1].dead_signal),
            (true, Some(3), None)
        );
        assert_eq!(panes[1].window_name, "task\tone");
        assert_eq!(panes[2].dead_signal, Some(15));
        assert!(pane_states("c", "%0\t@0\t10\t2\t\t\t\tx").is_err());
        assert!(pane_states("c", "%0\t@0\t10\t0\t\t\tx").is_err());
        assert!(pane_states("c", "").unwrap().is_empty());
    }

    #[test]
    fn stderr_is_classified() {
        let err = failure("no server running on /tmp/tmux-0/s\n", Subject::Other);
        assert!(matches!(err, TmuxError::ServerNotRunning { .. }));
        let err = failure(
            "error connecting to /tmp/tmux-0/s (Connection refused)",
            Subject::Other,
        );
        assert!(matches!(err, TmuxError::ServerNotRunning { .. }));
        let err = failure("can't find session: nope", Subject::Other);
        assert!(matches!(err, TmuxError::SessionNotFound { ref session, .. } if session == "nope"));
        let err = failure("can't find session: =x", Subject::Session("x"));
        assert!(matches!(err, TmuxError::SessionNotFound { ref session, .. } if session == "x"));
        let err = failure("no space for new pane", Subject::Target("@1"));
        assert_eq!(
            err,
            TmuxError::NoSpace {
                target: "@1".into()
            }
        );
        let err = failure("can't find pane: %9", Subject::Target("%9"));
        assert!(matches!(err, TmuxError::CommandFailed { .. }));
    }
}
