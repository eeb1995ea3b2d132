//! `RealTmux`: the `Tmux` trait over the tmux program.
//!
//! Commands are built with `tmux_interface` and run with `std::process::Command` (stdin
//! null, output captured), so that every invocation is `tmux [-L socket|-S path]
//! [-f config] ...` and nothing goes through a shell.
//!
//! remain-on-exit without a race: the option is set in the *same* tmux invocation that
//! creates the pane, chained with `;`. tmux runs a command list from one client back to
//! back without returning to its event loop, and it only learns that a child exited
//! (SIGCHLD, EOF on the pty) in that loop; so the option is in place before tmux can
//! act on the exit, even for a command that exits at once. `new-window -d` does not make
//! the new window current, so it is appended with `-a -t =S:{end}` and the chained
//! command targets `=S:{end}`, which inside the list can only be the new window. For a
//! split the window option is set first, and the new pane inherits it. The option is set
//! on windows (`-w`), so panes the user splits in orch's windows keep it too.

use std::borrow::Cow;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use tmux_interface::{
    CapturePane, HasSession, KillPane, KillServer, KillSession, ListPanes, NewSession, NewWindow,
    RenameWindow, RespawnPane, SelectLayout, SetOption, SplitWindow, TmuxCommand,
};

use super::args::{
    check_name, check_session, check_text, cwd_arg, env_values, escape_arg, escape_format,
    exec_argv, session_target, session_window_target,
};
use super::control::Control;
use super::parse::{self, Failure, PANE_INFO_FORMAT, PANE_STATE_FORMAT, Subject};
use super::{PaneInfo, PaneState, Tmux, TmuxError, WindowSpec};

/// Environment variable naming the socket orch uses (`-L name`, or `-S path` if it
/// contains a `/`); unset means tmux's default server.
pub const SOCKET_ENV: &str = "ORCH_TMUX_SOCKET";
/// Environment variable naming the config file a new server reads (`-f`); tests set
/// `/dev/null` so that the user's `~/.tmux.conf` cannot change tmux's behaviour.
pub const CONFIG_ENV: &str = "ORCH_TMUX_CONFIG";

pub(super) const PROGRAM: &str = "tmux";

/// A tmux server reached through the tmux program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RealTmux {
    /// `-L name` (or `-S path` when it contains `/`); `None` is the default server.
    pub socket: Option<String>,
    /// `-f file`, read when this client starts the server.
    pub config: Option<PathBuf>,
    /// A control-mode client commands go through, when `with_control_mode` asked for one.
    control: ControlSlot,
}

/// How commands reach tmux is not part of which server it is: every `RealTmux` of the
/// same socket and config compares equal.
#[derive(Debug, Clone, Default)]
struct ControlSlot(Option<Arc<Control>>);

impl PartialEq for ControlSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ControlSlot {}

impl RealTmux {
    pub fn new(socket: Option<String>, config: Option<PathBuf>) -> Self {
        Self {
            socket,
            config,
            control: ControlSlot::default(),
        }
    }

    /// Sends commands through one long-lived control-mode client attached to `session`
    /// (see `control`), instead of a `tmux` process per command; falls back to a process
    /// whenever the client cannot be used. For a process that talks to tmux all the time,
    /// such as the engine.
    pub fn with_control_mode(mut self, session: &str) -> Self {
        self.control = ControlSlot(Some(Arc::new(Control::new(self.global_args(), session))));
        self
    }

    /// Socket from `socket`, else `$ORCH_TMUX_SOCKET`; config from `$ORCH_TMUX_CONFIG`.
    pub fn from_env(socket: Option<String>) -> Self {
        let from_var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self::new(
            socket.or_else(|| from_var(SOCKET_ENV)),
            from_var(CONFIG_ENV).map(PathBuf::from),
        )
    }

    pub(super) fn global_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(socket) = &self.socket {
            let flag = if socket.contains('/') { "-S" } else { "-L" };
            args.extend([flag.to_string(), socket.clone()]);
        }
        if let Some(config) = &self.config {
            args.extend(["-f".to_string(), config.to_string_lossy().into_owned()]);
        }
        args
    }

    /// Sets a pane option (`set-option -p`) on one pane, e.g. `remain-on-exit-format`.
    pub fn set_pane_option(&self, pane: &str, option: &str, value: &str) -> Result<(), TmuxError> {
        check_text("pane", pane)?;
        check_name("option", option)?;
        let cmd = words(["set-option", "-p", "-t", pane, option, value]);
        self.run(vec![cmd], Subject::Target(pane)).map(drop)
    }

    fn server_description(&self) -> String {
        match &self.socket {
            Some(socket) => format!("tmux socket '{socket}'"),
            None => "the default tmux socket".to_string(),
        }
    }

    fn list_command(&self) -> String {
        let mut words = self.command_prefix();
        words.push("ls".to_string());
        join(&words)
    }

    /// Runs several command lists, each as `run` would, pipelined through the control-mode
    /// client when there is one (one round trip for all; see `control`), else one process
    /// each. Each list's answer, in order; a failing list does not stop the next ones.
    pub(super) fn run_many(
        &self,
        lists: Vec<(Vec<Vec<String>>, Subject<'_>)>,
    ) -> Vec<Result<String, TmuxError>> {
        if let Some(control) = &self.control.0 {
            let commands: Vec<Vec<Vec<String>>> = lists.iter().map(|(c, _)| c.clone()).collect();
            if let Some(answers) = control.run_many(&commands) {
                return answers
                    .into_iter()
                    .zip(lists)
                    .map(|(answer, (commands, subject))| {
                        self.control_answer(answer, &commands, subject)
                    })
                    .collect();
            }
        }
        lists
            .into_iter()
            .map(|(commands, subject)| self.run_process(commands, subject))
            .collect()
    }

    /// Runs one tmux invocation of one or more commands chained with `;`.
    pub(super) fn run(
        &self,
        commands: Vec<Vec<String>>,
        subject: Subject<'_>,
    ) -> Result<String, TmuxError> {
        if let Some(control) = &self.control.0
            && let Some(answer) = control.run(&commands)
        {
            return self.control_answer(answer, &commands, subject);
        }
        self.run_process(commands, subject)
    }

    /// What the control-mode client's answer means, as `run` reports it.
    fn control_answer(
        &self,
        answer: Result<String, String>,
        commands: &[Vec<String>],
        subject: Subject<'_>,
    ) -> Result<String, TmuxError> {
        answer.map_err(|stderr| {
            let line: Vec<String> = commands.join(&";".to_string());
            parse::classify(Failure {
                command: format!("(control mode) {}", join(&line)),
                status: Some(1),
                stderr: &stderr,
                subject,
                server: self.server_description(),
                list_command: self.list_command(),
            })
        })
    }

    /// `run` through a `tmux` process of its own.
    fn run_process(
        &self,
        commands: Vec<Vec<String>>,
        subject: Subject<'_>,
    ) -> Result<String, TmuxError> {
        let mut args = self.global_args();
        for (index, command) in commands.into_iter().enumerate() {
            if index > 0 {
                args.push(";".to_string());
            }
            args.extend(command.iter().map(|arg| escape_arg(arg)));
        }
        let mut command = Command::new(PROGRAM);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A server started by this command keeps its umask for every pane: the user's.
        crate::private::user_umask_for(&mut command);
        let output = command.output().map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => TmuxError::NotInstalled,
            _ => TmuxError::Spawn {
                reason: err.to_string(),
            },
        })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let mut line = vec![PROGRAM.to_string()];
        line.extend(args);
        Err(parse::classify(Failure {
            command: join(&line),
            status: output.status.code(),
            stderr: &String::from_utf8_lossy(&output.stderr),
            subject,
            server: self.server_description(),
            list_command: self.list_command(),
        }))
    }
}

impl Tmux for RealTmux {
    fn version(&self) -> Result<String, TmuxError> {
        let out = self.run(vec![words(["-V"])], Subject::Other)?;
        let line = out.trim();
        Ok(line.strip_prefix("tmux ").unwrap_or(line).to_string())
    }

    fn has_session(&self, session: &str) -> Result<bool, TmuxError> {
        check_session(session)?;
        let cmd = HasSession::new()
            .target_session(session_target(session))
            .build();
        match self.run(vec![strings(cmd)], Subject::Session(session)) {
            Ok(_) => Ok(true),
            Err(TmuxError::SessionNotFound { .. } | TmuxError::ServerNotRunning { .. }) => {
                Ok(false)
            }
            // The server was exiting (its last session just closed) as it was asked: it
            // answers so, or that it has no session to look in.
            Err(TmuxError::CommandFailed { stderr, .. })
                if stderr.contains("server exited unexpectedly")
                    || stderr.contains("no current target") =>
            {
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    fn new_session(
        &self,
        session: &str,
        first: &WindowSpec,
        size: (u16, u16),
    ) -> Result<PaneInfo, TmuxError> {
        check_session(session)?;
        check_name("window name", &first.name)?;
        if size.0 == 0 || size.1 == 0 {
            return Err(TmuxError::invalid(
                "session size",
                format!("{size:?} is empty"),
            ));
        }
        let create = NewSession::new()
            .detached()
            .print()
            .format(PANE_INFO_FORMAT)
            .session_name(escape_format(session))
            .window_name(escape_format(&first.name))
            .start_directory(cwd_arg(&first.cwd)?)
            .width(usize::from(size.0))
            .height(usize::from(size.1))
            .build();
        let create = with_command(create, first)?;
        // new-session makes the session current, so =S: is its only window.
        let remain = remain_on_exit(session_window_target(session));
        let out = self.run(vec![create, remain], Subject::Session(session))?;
        parse::pane_info("new-session", &out)
    }

    fn new_window(&self, session: &str, spec: &WindowSpec) -> Result<PaneInfo, TmuxError> {
        let out = self.run(
            new_window_commands(session, spec)?,
            Subject::Session(session),
        )?;
        parse::pane_info("new-window", &out)
    }

    fn new_windows(&self, session: &str, specs: &[WindowSpec]) -> Vec<Result<PaneInfo, TmuxError>> {
        // Bad input is refused alone; the rest go in one pipelined batch.
        let built: Vec<Result<Vec<Vec<String>>, TmuxError>> = specs
            .iter()
            .map(|spec| new_window_commands(session, spec))
            .collect();
        let lists = built
            .iter()
            .filter_map(|b| b.as_ref().ok())
            .map(|commands| (commands.clone(), Subject::Session(session)))
            .collect();
        let mut answers = self.run_many(lists).into_iter();
        built
            .into_iter()
            .map(|b| {
                b.and_then(|_| {
                    let out = answers.next().unwrap_or_else(|| {
                        Err(TmuxError::Spawn {
                            reason: "tmux gave fewer answers than commands".into(),
                        })
                    })?;
                    parse::pane_info("new-window", &out)
                })
            })
            .collect()
    }

    fn respawn_pane(&self, pane: &str, spec: &WindowSpec) -> Result<(), TmuxError> {
        check_text("pane", pane)?;
        let cmd = RespawnPane::new()
            .kill()
            .target_pane(pane)
            .start_directory(cwd_arg(&spec.cwd)?)
            .build();
        // The pane keeps its window's `remain-on-exit`: nothing to set again.
        let cmd = with_command(cmd, spec)?;
        self.run(vec![cmd], Subject::Target(pane)).map(drop)
    }

    fn split_window(&self, target_window: &str, spec: &WindowSpec) -> Result<PaneInfo, TmuxError> {
        check_text("split target", target_window)?;
        let split = SplitWindow::new()
            .detached()
            .print()
            .format(PANE_INFO_FORMAT)
            .target_pane(target_window)
            .start_directory(cwd_arg(&spec.cwd)?)
            .build();
        let split = with_command(split, spec)?;
        let remain = remain_on_exit(target_window.to_string());
        let out = self.run(vec![remain, split], Subject::Target(target_window))?;
        parse::pane_info("split-window", &out)
    }

    fn select_layout(&self, target_window: &str, layout: &str) -> Result<(), TmuxError> {
        check_text("layout target", target_window)?;
        check_name("layout", layout)?;
        // tmux 3.3a's server crashes on a layout name it does not know ("server exited
        // unexpectedly"): only its own names, or a custom layout string, are sent.
        const NAMED: [&str; 5] = [
            "even-horizontal",
            "even-vertical",
            "main-horizontal",
            "main-vertical",
            "tiled",
        ];
        if !NAMED.contains(&layout) && !layout.contains(',') {
            return Err(TmuxError::InvalidArgument {
                what: format!("layout `{layout}`"),
                reason: format!("not a tmux layout: use one of {}", NAMED.join(", ")),
            });
        }
        let cmd = SelectLayout::new()
            .target_pane(target_window)
            .layout_name(layout)
            .build();
        self.run(vec![strings(cmd)], Subject::Target(target_window))
            .map(drop)
    }

    fn rename_window(&self, target_window: &str, name: &str) -> Result<(), TmuxError> {
        check_text("window", target_window)?;
        check_name("window name", name)?;
        let cmd = RenameWindow::new()
            .target_window(target_window)
            .new_name(escape_format(name))
            .build();
        self.run(vec![strings(cmd)], Subject::Target(target_window))
            .map(drop)
    }

    fn set_hook(&self, session: &str, hook: &str, command: &str) -> Result<(), TmuxError> {
        self.set_session_hook(session, hook, command)
    }

    fn list_panes(&self, session: &str) -> Result<Vec<PaneState>, TmuxError> {
        check_session(session)?;
        let cmd = ListPanes::new()
            .session()
            .target(session_window_target(session))
            .format(PANE_STATE_FORMAT)
            .build();
        let out = self.run(vec![strings(cmd)], Subject::Session(session))?;
        let panes = parse::pane_states("list-panes", &out)?;
        if panes
            .iter()
            .any(|p| p.dead && p.dead_status.is_none() && p.dead_signal.is_none())
        {
            self.nudge_reaper();
        }
        Ok(panes)
    }

    fn capture_pane(&self, pane: &str) -> Result<String, TmuxError> {
        check_text("pane", pane)?;
        let cmd = CapturePane::new().stdout().target_pane(pane).build();
        self.run(vec![strings(cmd)], Subject::Target(pane))
    }

    fn kill_pane(&self, pane: &str) -> Result<(), TmuxError> {
        check_text("pane", pane)?;
        let cmd = KillPane::new().target_pane(pane).build();
        ok_if_server_exited(self.run(vec![strings(cmd)], Subject::Target(pane)))
    }

    fn kill_session(&self, session: &str) -> Result<(), TmuxError> {
        check_session(session)?;
        let cmd = KillSession::new()
            .target_session(session_target(session))
            .build();
        match ok_if_server_exited(self.run(vec![strings(cmd)], Subject::Session(session))) {
            Ok(())
            | Err(TmuxError::SessionNotFound { .. } | TmuxError::ServerNotRunning { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    fn kill_server(&self) -> Result<(), TmuxError> {
        let result = self.run(vec![strings(KillServer::new().build())], Subject::Other);
        match ok_if_server_exited(result) {
            Ok(()) | Err(TmuxError::ServerNotRunning { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    fn command_prefix(&self) -> Vec<String> {
        let mut prefix = vec![PROGRAM.to_string()];
        prefix.extend(self.global_args());
        prefix
    }
}

/// A new window at the end of `session` running `spec`, with `remain-on-exit` set in the same
/// command list (see the module doc).
fn new_window_commands(session: &str, spec: &WindowSpec) -> Result<Vec<Vec<String>>, TmuxError> {
    check_session(session)?;
    check_name("window name", &spec.name)?;
    let last = format!("{}{{end}}", session_window_target(session));
    let create = NewWindow::new()
        .detached()
        .after()
        .print()
        .format(PANE_INFO_FORMAT)
        .target_window(last.clone())
        .window_name(escape_format(&spec.name))
        .start_directory(cwd_arg(&spec.cwd)?)
        .build();
    Ok(vec![with_command(create, spec)?, remain_on_exit(last)])
}

/// Appends `-e` pairs and `-- argv` (after the builder's options: order matters).
fn with_command(mut cmd: TmuxCommand<'_>, spec: &WindowSpec) -> Result<Vec<String>, TmuxError> {
    for pair in env_values(&spec.env)? {
        cmd.push_option("-e", pair);
    }
    // "--" so that an argv starting with '-' is not read as tmux options.
    cmd.push_param("--");
    for word in exec_argv(&spec.argv)? {
        cmd.push_param(word);
    }
    Ok(strings(cmd))
}

/// Killing the last pane or session makes the server exit, sometimes before it answers
/// the client, which then reports "server exited unexpectedly": the kill did happen.
fn ok_if_server_exited(result: Result<String, TmuxError>) -> Result<(), TmuxError> {
    match result {
        Err(TmuxError::CommandFailed { stderr, .. })
            if stderr.contains("server exited unexpectedly") =>
        {
            Ok(())
        }
        other => other.map(drop),
    }
}

fn remain_on_exit(target: String) -> Vec<String> {
    strings(
        SetOption::new()
            .window()
            .target_pane(target)
            .option("remain-on-exit")
            .value("on")
            .build(),
    )
}

pub(super) fn strings(cmd: TmuxCommand<'_>) -> Vec<String> {
    cmd.to_vec().into_iter().map(Cow::into_owned).collect()
}

pub(super) fn words<const N: usize>(list: [&str; N]) -> Vec<String> {
    list.iter().map(std::string::ToString::to_string).collect()
}

/// For messages: the command as a user could paste it into a shell.
pub(super) fn join(words: &[String]) -> String {
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_names_socket_and_config() {
        let tmux = RealTmux::new(Some("orch-x".into()), Some("/dev/null".into()));
        assert_eq!(
            tmux.command_prefix(),
            ["tmux", "-L", "orch-x", "-f", "/dev/null"]
        );
        let tmux = RealTmux::new(Some("/tmp/sock".into()), None);
        assert_eq!(tmux.command_prefix(), ["tmux", "-S", "/tmp/sock"]);
        assert_eq!(RealTmux::default().command_prefix(), ["tmux"]);
    }

    #[test]
    fn creation_commands_put_options_before_the_argv() {
        let spec = WindowSpec::new("w", "/tmp", vec!["prog".into(), "-d".into(), "a;".into()])
            .with_env("K", "v");
        let cmd = with_command(NewWindow::new().detached().build(), &spec).unwrap();
        assert_eq!(
            cmd,
            ["new-window", "-d", "-e", "K=v", "--", "prog", "-d", "a;"]
        );
        assert_eq!(
            remain_on_exit("=s:{end}".into()),
            ["set-option", "-w", "-t", "=s:{end}", "remain-on-exit", "on"]
        );
    }

    #[test]
    fn bad_input_is_refused_before_running_tmux() {
        let tmux = RealTmux::new(Some("orch-never-started".into()), None);
        let spec = WindowSpec::new("w", "/tmp", vec![]);
        assert!(matches!(
            tmux.new_window("s", &spec),
            Err(TmuxError::InvalidArgument { .. })
        ));
        assert!(matches!(
            tmux.has_session("a:b"),
            Err(TmuxError::InvalidArgument { .. })
        ));
        assert!(matches!(
            tmux.set_hook("s", "pane-died[3]", "x"),
            Err(TmuxError::InvalidArgument { .. })
        ));
    }
}
