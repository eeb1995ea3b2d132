//! The `Tmux` trait and the values it takes and returns.
//!
//! The trait is what the engine is written against: `RealTmux` talks to a tmux server,
//! `FakeTmux` keeps everything in memory for unit tests. Ids are tmux's own (`%3`, `@2`)
//! because they never change for the life of a pane or window, unlike indexes and names.

use std::path::PathBuf;

use super::TmuxError;

/// What to run in a new window or pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window name (ignored by `split_window`: tmux panes have no names).
    pub name: String,
    /// Working directory of the command; made absolute against orch's own cwd.
    pub cwd: PathBuf,
    /// The program and its arguments, executed directly: never read by a shell.
    pub argv: Vec<String>,
    /// Variables set for the command, on top of the tmux server's environment (the
    /// caller's own environment does not reach the pane, except PATH). They are given to
    /// tmux as `-e NAME=VALUE` arguments, which every user can read in the process table
    /// (and a server started by that command keeps them for its life): never a secret.
    /// orch itself passes nothing here (see `state::environ`).
    pub env: Vec<(String, String)>,
}

impl WindowSpec {
    /// A spec with no extra environment.
    pub fn new(name: impl Into<String>, cwd: impl Into<PathBuf>, argv: Vec<String>) -> Self {
        Self {
            name: name.into(),
            cwd: cwd.into(),
            argv,
            env: Vec::new(),
        }
    }

    /// Adds one variable to the command's environment.
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
}

/// A pane just created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneInfo {
    /// tmux pane id, e.g. `%3`.
    pub pane_id: String,
    /// tmux window id, e.g. `@2`.
    pub window_id: String,
    /// Process id of the command running in the pane.
    pub pid: u32,
}

/// One pane as `list_panes` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneState {
    pub pane_id: String,
    pub window_id: String,
    /// As tmux shows it (tmux escapes non-printable characters).
    pub window_name: String,
    /// Process id of the pane's command (still reported after it died).
    pub pid: u32,
    /// The command has exited; the pane stays because of `remain-on-exit`.
    pub dead: bool,
    /// Exit status, once tmux has reaped the command and it exited normally.
    pub dead_status: Option<i32>,
    /// Signal number, when the command was killed by a signal.
    pub dead_signal: Option<i32>,
    /// The command the pane was started with, as tmux shows it (arguments with spaces or
    /// quotes in double quotes, control characters escaped): tells which agent a pane runs
    /// even when nothing else recorded it.
    pub start_command: String,
}

/// orch's interface to tmux.
///
/// Targets: `session` is a session name (matched exactly); `target_window` is a window or
/// pane id (`@2`, `%3`) or any tmux target; `pane` is a pane id.
///
/// Every pane created through this trait has `remain-on-exit on` before its command can
/// exit, so a finished agent's last output stays readable and `pane-died` hooks fire.
pub trait Tmux: Send + Sync {
    /// The tmux version, e.g. `3.3a`.
    fn version(&self) -> Result<String, TmuxError>;

    /// Whether a session of exactly this name exists (false if no server runs).
    fn has_session(&self, session: &str) -> Result<bool, TmuxError>;

    /// Creates a detached session whose first window runs `first`. `size` is
    /// (columns, rows) and also becomes the size of the session's later windows. The
    /// `first.env` variables become the session environment, so later windows inherit
    /// them unless their own spec overrides them.
    fn new_session(
        &self,
        session: &str,
        first: &WindowSpec,
        size: (u16, u16),
    ) -> Result<PaneInfo, TmuxError>;

    /// Creates a window after the last one, without selecting it.
    fn new_window(&self, session: &str, spec: &WindowSpec) -> Result<PaneInfo, TmuxError>;

    /// Several `new_window`s at once, each one's result in order: `RealTmux` pipelines them
    /// through its control-mode client, one round trip for all (a launch of many agents).
    fn new_windows(&self, session: &str, specs: &[WindowSpec]) -> Vec<Result<PaneInfo, TmuxError>> {
        specs
            .iter()
            .map(|spec| self.new_window(session, spec))
            .collect()
    }

    /// Runs `spec` in an existing pane again (its name is ignored), killing what still runs
    /// there: the pane keeps its id, window and place. For a dead pane (`remain-on-exit`).
    fn respawn_pane(&self, pane: &str, spec: &WindowSpec) -> Result<(), TmuxError>;

    /// Splits the target (a window's active pane, or a given pane) without selecting
    /// the new pane. `TmuxError::NoSpace` when the pane is too small to split.
    fn split_window(&self, target_window: &str, spec: &WindowSpec) -> Result<PaneInfo, TmuxError>;

    /// Applies a layout (`tiled`, `even-horizontal`, ...) to a window.
    fn select_layout(&self, target_window: &str, layout: &str) -> Result<(), TmuxError>;

    /// Renames a window.
    fn rename_window(&self, target_window: &str, name: &str) -> Result<(), TmuxError>;

    /// Sets a hook for the whole session, windows created later included. `command` is a
    /// tmux command (e.g. `run-shell '...'`), quoted by the caller for tmux's parser
    /// (see `tmux_quote`); `#{hook_pane}` and other formats are expanded by commands
    /// that expand formats, like `run-shell`. Replaces a previous `set_hook` of the
    /// same hook.
    ///
    /// Hooks are a hint, not a guarantee: reconcile with `list_panes`, which also gets
    /// tmux to notice exits it missed (see `RealTmux::nudge_reaper`), and prefer
    /// `run-shell -b`: tmux 3.3a skips hooks for events raised while a hook command
    /// runs, and a `run-shell` without `-b` keeps its hook running until the shell ends.
    fn set_hook(&self, session: &str, hook: &str, command: &str) -> Result<(), TmuxError>;

    /// All panes of all windows of the session. A pane can be listed dead before its
    /// exit status is known; poll until the status is there.
    fn list_panes(&self, session: &str) -> Result<Vec<PaneState>, TmuxError>;

    /// The visible screen of a pane, as text.
    fn capture_pane(&self, pane: &str) -> Result<String, TmuxError>;

    /// Kills a pane (and its window if it was the last pane).
    fn kill_pane(&self, pane: &str) -> Result<(), TmuxError>;

    /// Kills a session; a missing session or server is not an error.
    fn kill_session(&self, session: &str) -> Result<(), TmuxError>;

    /// Kills the server; a server that is not running is not an error.
    fn kill_server(&self) -> Result<(), TmuxError>;

    /// The argv prefix that reaches the same server, e.g.
    /// `["tmux", "-L", "orch", "-f", "/dev/null"]`, for `exec tmux attach` and scripts.
    fn command_prefix(&self) -> Vec<String>;
}
