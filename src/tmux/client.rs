//! `RealTmux` helpers that reach past the command line: showing a session to the user
//! (attach or switch-client, with the terminal inherited), asking the server where its
//! socket is, and poking the server process when it has missed a child's exit.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::args::{check_session, session_target};
use super::parse::Subject;
use super::real::{PROGRAM, join, words};
use super::{RealTmux, TmuxError};

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

    /// The command that shows `session` to the user: `switch-client` from inside this
    /// server, otherwise `attach-session` with `TMUX` removed so tmux does not refuse to
    /// nest. Run it with inherited stdio, or `exec` it.
    pub fn attach_command(&self, session: &str) -> Result<Command, TmuxError> {
        check_session(session)?;
        let mut command = Command::new(PROGRAM);
        command.args(self.global_args());
        if self.inside_this_server()? {
            command.args(["switch-client", "-t", &session_target(session)]);
        } else {
            command.args(["attach-session", "-t", &session_target(session)]);
            command.env_remove("TMUX");
        }
        Ok(command)
    }

    /// Attaches the terminal to `session` (or switches to it, see `attach_command`).
    pub fn attach(&self, session: &str) -> Result<(), TmuxError> {
        let command = self.attach_command(session)?;
        run_interactive(command)
    }

    /// Switches the tmux client this process runs in to `session`.
    pub fn switch_client(&self, session: &str) -> Result<(), TmuxError> {
        check_session(session)?;
        let mut command = Command::new(PROGRAM);
        command
            .args(self.global_args())
            .args(["switch-client", "-t", &session_target(session)]);
        run_interactive(command)
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
