//! `set_hook` for `RealTmux`: making a hook cover a whole session.
//!
//! Session hooks (`after-new-window`, `session-closed`...) are set on the session. Pane
//! and window hooks (`pane-died`...) cannot be: tmux 3.3a keeps them on windows and
//! panes only, so they are set on every window and, through an `after-new-window` entry
//! of orch's own, on every window created later, within the same command list that
//! creates it. Only index `[0]` of a hook is set, so a user's other entries survive.

use tmux_interface::{ListWindows, SetHook};

use super::args::{check_session, check_text, session_window_target, tmux_quote};
use super::parse::Subject;
use super::real::strings;
use super::{RealTmux, TmuxError};

/// Hooks that tmux 3.3a keeps on windows and panes only: `set-hook` cannot put them on a
/// session, so `set_hook` sets them on each window and, through `after-new-window`, on
/// windows created later. The position gives each its own `after-new-window` slot.
const WINDOW_HOOKS: &[&str] = &[
    "pane-died",
    "pane-exited",
    "pane-focus-in",
    "pane-focus-out",
    "pane-mode-changed",
    "pane-set-clipboard",
    "pane-title-changed",
    "window-layout-changed",
    "window-linked",
    "window-pane-changed",
    "window-renamed",
    "window-unlinked",
];
/// First `after-new-window` array index orch uses, far from a user's own `[0]`.
const PROPAGATION_SLOT: usize = 100;

impl RealTmux {
    pub(super) fn set_session_hook(
        &self,
        session: &str,
        hook: &str,
        command: &str,
    ) -> Result<(), TmuxError> {
        check_session(session)?;
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if hook.is_empty() || !hook.chars().all(valid) {
            return Err(TmuxError::invalid("hook name", format!("{hook:?}")));
        }
        check_text("hook command", command)?;
        if let Some(position) = WINDOW_HOOKS.iter().position(|h| *h == hook) {
            return self.set_window_hook(session, hook, PROPAGATION_SLOT + position, command);
        }
        // Index 0 only, so orch's own after-new-window slots survive.
        let cmd = SetHook::new()
            .target_session(session_window_target(session))
            .hook_name(format!("{hook}[0]"))
            .command(command)
            .build();
        self.run(vec![strings(cmd)], Subject::Session(session))
            .map(drop)
    }

    /// Sets a window-scoped hook on every window of the session, present and future.
    fn set_window_hook(
        &self,
        session: &str,
        hook: &str,
        slot: usize,
        command: &str,
    ) -> Result<(), TmuxError> {
        // Future windows first, so a window created while this runs is not missed. The
        // after-new-window hook runs right after new-window in the same command list,
        // before the new pane's exit can be noticed.
        let propagate = format!("set-hook -w {hook}[0] {}", tmux_quote(command));
        let install = SetHook::new()
            .target_session(session_window_target(session))
            .hook_name(format!("after-new-window[{slot}]"))
            .command(propagate)
            .build();
        self.run(vec![strings(install)], Subject::Session(session))?;

        let list = ListWindows::new()
            .target_session(session_window_target(session))
            .format("#{window_id}")
            .build();
        let windows = self.run(vec![strings(list)], Subject::Session(session))?;
        for window in windows.lines().filter(|line| !line.is_empty()) {
            let set = SetHook::new()
                .window()
                .target_session(window)
                .hook_name(format!("{hook}[0]"))
                .command(command)
                .build();
            match self.run(vec![strings(set)], Subject::Target(window)) {
                // Killed since it was listed: nothing left to hook.
                Err(TmuxError::CommandFailed { stderr, .. })
                    if stderr.contains("can't find window") => {}
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }
}
