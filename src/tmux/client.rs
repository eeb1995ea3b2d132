//! `RealTmux` helpers that reach past the command line: showing a session to the user
//! (attach with the terminal inherited, or switch-client), asking the server where its
//! socket is, and poking the server process when it has missed a child's exit.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::args::{check_session, session_target};
use super::parse::Subject;
use super::real::{PROGRAM, join, words};
use super::{RealTmux, Tmux as _, TmuxError};

impl RealTmux {
    /// Sends SIGCHLD to the server so that it reaps pane commands whose exit it missed.
    ///
    /// tmux built with libutempter (Debian's 3.3a is) loses a SIGCHLD that arrives while
    /// utempter's helper runs with its own handler (tmux issue #311); tmux runs it when it
    /// closes a pane's terminal, which is often the very moment the pane's command exits.
    /// The command then stays a zombie, the pane is dead with no exit status, and
    /// `pane-died` does not fire, until some other SIGCHLD arrives. `list_panes` calls
    /// this when it sees such a pane, so the next listing has the status and the hook
    /// fires. The signal only makes tmux call waitpid. Best effort: errors are ignored.
    pub fn nudge_reaper(&self) {
        let Ok(out) = self.run(
            vec![words(["display-message", "-p", "#{pid}"])],
            Subject::Other,
        ) else {
            return;
        };
        let pid = out.trim().parse::<libc::pid_t>().unwrap_or(0);
        if pid > 1 {
            // SAFETY: kill has no memory-safety preconditions; the pid is the server's
            // own, as it reported it.
            unsafe {
                libc::kill(pid, libc::SIGCHLD);
            }
        }
    }

    /// The server's socket path (asks the server, so it must be running).
    pub fn socket_path(&self) -> Result<PathBuf, TmuxError> {
        let out = self.run(
            vec![words(["display-message", "-p", "#{socket_path}"])],
            Subject::Other,
        )?;
        Ok(PathBuf::from(out.trim_end_matches('\n')))
    }

    /// Whether this process runs inside a pane of this very server (then attaching
    /// would nest tmux; switching the client is what the user wants).
    fn inside_this_server(&self) -> Result<bool, TmuxError> {
        let Some(value) = std::env::var_os("TMUX") else {
            return Ok(false);
        };
        // Without -L/-S a client inside tmux talks to $TMUX's server anyway.
        if self.socket.is_none() {
            return Ok(true);
        }
        let value = value.to_string_lossy().into_owned();
        let theirs = PathBuf::from(value.split(',').next().unwrap_or_default());
        match self.socket_path() {
            Ok(ours) => Ok(same_file(&ours, &theirs)),
            Err(TmuxError::ServerNotRunning { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Shows `session` to the user: from inside this server, switches the client this
    /// process runs in (`TmuxError::NoClient` when no client looks at it, e.g. in a session
    /// nobody is attached to); otherwise attaches the terminal, with `TMUX` removed so that
    /// tmux does not refuse to nest.
    pub fn attach(&self, session: &str) -> Result<(), TmuxError> {
        check_session(session)?;
        if self.inside_this_server()? {
            return self.switch_client(session);
        }
        let mut command = Command::new(PROGRAM);
        command
            .args(self.global_args())
            .args(["attach-session", "-t", &session_target(session)])
            .env_remove("TMUX");
        run_interactive(command)
    }

    /// Switches the tmux client this process runs in to `session`. Needs no terminal: the
    /// server finds the client from `$TMUX`, and tmux's complaint is captured.
    fn switch_client(&self, session: &str) -> Result<(), TmuxError> {
        let target = session_target(session);
        let switch = words(["switch-client", "-t", &target]);
        match self.run(vec![switch], Subject::Session(session)) {
            Ok(_) => Ok(()),
            Err(TmuxError::CommandFailed { stderr, .. })
                if stderr.contains("no current client") =>
            {
                Err(TmuxError::NoClient {
                    session: session.to_string(),
                    attach: self.attach_hint(session),
                })
            }
            Err(err) => Err(err),
        }
    }

    /// The tmux command a user types in a terminal to watch `session`. The target has no
    /// `=` (exact match): zsh would expand a word starting with `=` as a command's path,
    /// and tmux prefers an exact name anyway.
    pub fn attach_hint(&self, session: &str) -> String {
        let mut line = self.command_prefix();
        line.extend(["attach".to_string(), "-t".to_string(), session.to_string()]);
        join(&line)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn run_interactive(mut command: Command) -> Result<(), TmuxError> {
    let status = command.status().map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => TmuxError::NotInstalled,
        _ => TmuxError::Spawn {
            reason: err.to_string(),
        },
    })?;
    if status.success() {
        return Ok(());
    }
    let mut line = vec![command.get_program().to_string_lossy().into_owned()];
    line.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    Err(TmuxError::CommandFailed {
        command: join(&line),
        status: status.code(),
        stderr: "(tmux printed its error on the terminal)".to_string(),
    })
}
