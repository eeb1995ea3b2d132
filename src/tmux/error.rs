//! The errors of the tmux module that a caller may want to branch on.
//!
//! Every message ends with what to do next, because these reach the user as they are
//! (through anyhow) when orch cannot recover. The enum is `Clone` and `PartialEq` so
//! that `FakeTmux` can be told to return a given error and tests can compare them.

/// Something went wrong talking to tmux.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TmuxError {
    /// The `tmux` program is not on PATH.
    #[error(
        "tmux not found on PATH: install it (apt-get install tmux, brew install tmux) \
         or add its directory to PATH"
    )]
    NotInstalled,

    /// tmux exists but could not be started (permissions, resource limits...).
    #[error("could not run tmux: {reason}; check that the tmux on PATH is executable")]
    Spawn { reason: String },

    /// No server listens on the socket orch uses.
    #[error(
        "no tmux server is running on {server}: it starts with the first session, so the \
         session has ended or the server was killed; start orch again"
    )]
    ServerNotRunning { server: String },

    /// The server runs but has no session of that exact name.
    #[error(
        "tmux session '{session}' not found: list the sessions with `{list_command}` and \
         check the name, or start the session again"
    )]
    SessionNotFound {
        session: String,
        list_command: String,
    },

    /// orch runs inside tmux, but no client looks at its server to be switched to the
    /// session (nobody is attached).
    #[error(
        "no tmux client to switch to session {session} (orch runs inside tmux, and nobody \
         is attached to it): watch the run from a terminal with `{attach}`"
    )]
    NoClient { session: String, attach: String },

    /// tmux refused to split because the pane is too small.
    #[error(
        "no space for a new pane in {target}: make the terminal larger, use fewer panes \
         per window, or give the task a window of its own"
    )]
    NoSpace { target: String },

    /// orch refused a value before calling tmux, because tmux would misread it.
    #[error("invalid {what}: {reason}")]
    InvalidArgument { what: String, reason: String },

    /// tmux ran and failed for a reason not listed above.
    #[error(
        "tmux failed ({status}) running `{command}`: {stderr}\nrun that command by hand to \
         see the problem",
        status = describe_status(*.status)
    )]
    CommandFailed {
        command: String,
        status: Option<i32>,
        stderr: String,
    },

    /// tmux succeeded but printed something orch cannot read.
    #[error(
        "unexpected output from `{command}`: {output:?}; orch needs tmux 3.3a or later, \
         check `tmux -V`"
    )]
    UnexpectedOutput { command: String, output: String },
}

impl TmuxError {
    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

fn describe_status(status: Option<i32>) -> String {
    match status {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do_next() {
        let text = TmuxError::NotInstalled.to_string();
        assert!(text.contains("apt-get install tmux"), "{text}");
        let text = TmuxError::CommandFailed {
            command: "tmux kill-pane -t %9".into(),
            status: Some(1),
            stderr: "can't find pane: %9".into(),
        }
        .to_string();
        assert!(text.contains("exit status 1"), "{text}");
        assert!(text.contains("can't find pane: %9"), "{text}");
        assert!(text.contains("by hand"), "{text}");
    }
}
