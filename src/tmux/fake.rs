//! `FakeTmux`: an in-memory `Tmux` for unit tests of the engine.
//!
//! It keeps sessions (by name), windows (`@N`) and panes (`%N`) with fake pids, records
//! every call, and lets a test play the world: mark a pane dead, remove it, set what
//! `capture_pane` shows, or make the next call of a method fail. Panes never die by
//! themselves, like panes with `remain-on-exit on`. Names, argv and environment are
//! checked as `RealTmux` checks them, so a spec the fake accepts is one tmux gets right;
//! the working directory is not checked, so tests may use paths that do not exist.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use super::args::{check_name, check_session, env_values, exec_argv};
use super::{PaneInfo, PaneState, Tmux, TmuxError, WindowSpec};

/// Fake pids start above Linux's largest possible pid (`PID_MAX_LIMIT`, 2^22): an engine
/// under test stops its agents' process groups, and must never reach a real process.
const FIRST_PID: u32 = (1 << 22) + 1_000;

/// The checks `RealTmux` makes before calling tmux.
fn check_spec(spec: &WindowSpec, named: bool) -> Result<(), TmuxError> {
    if named {
        check_name("window name", &spec.name)?;
    }
    exec_argv(&spec.argv)?;
    env_values(&spec.env).map(drop)
}

/// One call made to the fake, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Version,
    HasSession(String),
    NewSession(String, WindowSpec, (u16, u16)),
    NewWindow(String, WindowSpec),
    SplitWindow(String, WindowSpec),
    RespawnPane(String, WindowSpec),
    SelectLayout(String, String),
    RenameWindow(String, String),
    SetHook(String, String, String),
    ListPanes(String),
    CapturePane(String),
    KillPane(String),
    KillSession(String),
    KillServer,
}

impl Call {
    /// The trait method's name, as given to `FakeTmux::fail_next`.
    pub fn method(&self) -> &'static str {
        match self {
            Call::Version => "version",
            Call::HasSession(..) => "has_session",
            Call::NewSession(..) => "new_session",
            Call::NewWindow(..) => "new_window",
            Call::SplitWindow(..) => "split_window",
            Call::RespawnPane(..) => "respawn_pane",
            Call::SelectLayout(..) => "select_layout",
            Call::RenameWindow(..) => "rename_window",
            Call::SetHook(..) => "set_hook",
            Call::ListPanes(..) => "list_panes",
            Call::CapturePane(..) => "capture_pane",
            Call::KillPane(..) => "kill_pane",
            Call::KillSession(..) => "kill_session",
            Call::KillServer => "kill_server",
        }
    }
}

/// A pane of the fake, as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePane {
    pub session: String,
    pub window_id: String,
    pub window_name: String,
    pub pane_id: String,
    pub pid: u32,
    pub spec: WindowSpec,
    pub dead: bool,
    pub dead_status: Option<i32>,
    pub dead_signal: Option<i32>,
    pub layout: Option<String>,
    pub screen: String,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    failures: VecDeque<(String, TmuxError)>,
    /// In creation order, which is tmux's window and pane order too.
    panes: Vec<FakePane>,
    sessions: Vec<String>,
    hooks: Vec<(String, String, String)>,
    next_window: u32,
    next_pane: u32,
}

/// In-memory tmux. Thread-safe; every method takes `&self`.
#[derive(Default)]
pub struct FakeTmux {
    state: Mutex<State>,
}

impl FakeTmux {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide its own failure.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Forgets the recorded calls (not the sessions).
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// The next call of `method` (e.g. "split_window") returns `error` instead.
    pub fn fail_next(&self, method: &str, error: TmuxError) {
        self.lock().failures.push_back((method.to_string(), error));
    }

    /// Every pane of every session.
    pub fn panes(&self) -> Vec<FakePane> {
        self.lock().panes.clone()
    }

    /// Hooks set with `set_hook`: (session, hook, command).
    pub fn hooks(&self) -> Vec<(String, String, String)> {
        self.lock().hooks.clone()
    }

    /// Marks a pane's command as exited; false if there is no such pane.
    pub fn mark_dead(&self, pane: &str, status: Option<i32>, signal: Option<i32>) -> bool {
        self.with_pane(pane, |p| {
            p.dead = true;
            p.dead_status = status;
            p.dead_signal = signal;
        })
    }

    /// Sets what `capture_pane` returns for a pane; false if there is no such pane.
    pub fn set_screen(&self, pane: &str, text: &str) -> bool {
        self.with_pane(pane, |p| p.screen = text.to_string())
    }

    /// Makes a pane vanish as if the user killed it; false if there is no such pane.
    pub fn remove_pane(&self, pane: &str) -> bool {
        let mut state = self.lock();
        let before = state.panes.len();
        state.panes.retain(|p| p.pane_id != pane);
        let removed = state.panes.len() != before;
        drop_empty_sessions(&mut state);
        removed
    }

    fn with_pane(&self, pane: &str, change: impl FnOnce(&mut FakePane)) -> bool {
        let mut state = self.lock();
        match state.panes.iter_mut().find(|p| p.pane_id == pane) {
            Some(found) => {
                change(found);
                true
            }
            None => false,
        }
    }

    /// Records the call and pops a failure planned for it.
    fn begin(&self, call: Call) -> Result<MutexGuard<'_, State>, TmuxError> {
        let mut state = self.lock();
        let method = call.method();
        state.calls.push(call);
        let planned = state.failures.iter().position(|(m, _)| m == method);
        if let Some((_, error)) = planned.and_then(|index| state.failures.remove(index)) {
            return Err(error);
        }
        Ok(state)
    }
}

impl State {
    fn add_pane(
        &mut self,
        session: &str,
        window: Option<(String, String)>,
        spec: &WindowSpec,
    ) -> PaneInfo {
        let (window_id, window_name) = window.unwrap_or_else(|| {
            self.next_window += 1;
            (format!("@{}", self.next_window - 1), spec.name.clone())
        });
        self.next_pane += 1;
        let pane_id = format!("%{}", self.next_pane - 1);
        let pid = FIRST_PID + self.next_pane;
        self.panes.push(FakePane {
            session: session.to_string(),
            window_id: window_id.clone(),
            window_name,
            pane_id: pane_id.clone(),
            pid,
            spec: spec.clone(),
            dead: false,
            dead_status: None,
            dead_signal: None,
            layout: None,
            screen: String::new(),
        });
        PaneInfo {
            pane_id,
            window_id,
            pid,
        }
    }

    fn require_session(&self, session: &str) -> Result<(), TmuxError> {
        if self.sessions.iter().any(|s| s == session) {
            Ok(())
        } else {
            Err(TmuxError::SessionNotFound {
                session: session.to_string(),
                list_command: "tmux ls".to_string(),
            })
        }
    }

    /// Resolves `@N`, `%N` or `=name:`/`name` to a window: (session, id, name).
    fn window(&self, target: &str) -> Result<(String, String, String), TmuxError> {
        let session_name = target.trim_start_matches('=').trim_end_matches(':');
        self.panes
            .iter()
            .find(|p| p.window_id == target || p.pane_id == target || p.session == session_name)
            .map(|p| {
                (
                    p.session.clone(),
                    p.window_id.clone(),
                    p.window_name.clone(),
                )
            })
            .ok_or_else(|| not_found("window", target))
    }
}

fn not_found(what: &str, target: &str) -> TmuxError {
    TmuxError::CommandFailed {
        command: format!("tmux (fake) -t {target}"),
        status: Some(1),
        stderr: format!("can't find {what}: {target}"),
    }
}

/// A pane's start command the way tmux shows it: arguments with spaces or quotes in double
/// quotes.
fn start_command(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "\"'\\$;".contains(c))
            {
                format!("\"{}\"", arg.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                arg.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn drop_empty_sessions(state: &mut State) {
    let State {
        sessions, panes, ..
    } = state;
    sessions.retain(|s| panes.iter().any(|p| &p.session == s));
}

impl Tmux for FakeTmux {
    fn version(&self) -> Result<String, TmuxError> {
        drop(self.begin(Call::Version)?);
        Ok("3.3a".to_string())
    }

    fn has_session(&self, session: &str) -> Result<bool, TmuxError> {
        let state = self.begin(Call::HasSession(session.into()))?;
        Ok(state.sessions.iter().any(|s| s == session))
    }

    fn new_session(
        &self,
        session: &str,
        first: &WindowSpec,
        size: (u16, u16),
    ) -> Result<PaneInfo, TmuxError> {
        let mut state = self.begin(Call::NewSession(session.into(), first.clone(), size))?;
        check_session(session)?;
        check_spec(first, true)?;
        if state.sessions.iter().any(|s| s == session) {
            return Err(TmuxError::CommandFailed {
                command: format!("tmux (fake) new-session -s {session}"),
                status: Some(1),
                stderr: format!("duplicate session: {session}"),
            });
        }
        state.sessions.push(session.to_string());
        Ok(state.add_pane(session, None, first))
    }

    fn new_window(&self, session: &str, spec: &WindowSpec) -> Result<PaneInfo, TmuxError> {
        let mut state = self.begin(Call::NewWindow(session.into(), spec.clone()))?;
        check_spec(spec, true)?;
        state.require_session(session)?;
        Ok(state.add_pane(session, None, spec))
    }

    fn split_window(&self, target_window: &str, spec: &WindowSpec) -> Result<PaneInfo, TmuxError> {
        let mut state = self.begin(Call::SplitWindow(target_window.into(), spec.clone()))?;
        check_spec(spec, false)?;
        let (session, window_id, window_name) = state.window(target_window)?;
        Ok(state.add_pane(&session, Some((window_id, window_name)), spec))
    }

    fn respawn_pane(&self, pane: &str, spec: &WindowSpec) -> Result<(), TmuxError> {
        let mut state = self.begin(Call::RespawnPane(pane.into(), spec.clone()))?;
        check_spec(spec, false)?;
        state.next_pane += 1;
        let pid = FIRST_PID + state.next_pane;
        let found = state
            .panes
            .iter_mut()
            .find(|p| p.pane_id == pane)
            .ok_or_else(|| not_found("pane", pane))?;
        found.spec = spec.clone();
        found.pid = pid;
        found.dead = false;
        found.dead_status = None;
        found.dead_signal = None;
        Ok(())
    }

    fn select_layout(&self, target_window: &str, layout: &str) -> Result<(), TmuxError> {
        let mut state = self.begin(Call::SelectLayout(target_window.into(), layout.into()))?;
        let (_, window_id, _) = state.window(target_window)?;
        for pane in state.panes.iter_mut().filter(|p| p.window_id == window_id) {
            pane.layout = Some(layout.to_string());
        }
        Ok(())
    }

    fn rename_window(&self, target_window: &str, name: &str) -> Result<(), TmuxError> {
        let mut state = self.begin(Call::RenameWindow(target_window.into(), name.into()))?;
        check_name("window name", name)?;
        let (_, window_id, _) = state.window(target_window)?;
        for pane in state.panes.iter_mut().filter(|p| p.window_id == window_id) {
            pane.window_name = name.to_string();
        }
        Ok(())
    }

    fn set_hook(&self, session: &str, hook: &str, command: &str) -> Result<(), TmuxError> {
        let mut state = self.begin(Call::SetHook(session.into(), hook.into(), command.into()))?;
        state.require_session(session)?;
        state.hooks.retain(|(s, h, _)| !(s == session && h == hook));
        state
            .hooks
            .push((session.into(), hook.into(), command.into()));
        Ok(())
    }

    fn list_panes(&self, session: &str) -> Result<Vec<PaneState>, TmuxError> {
        let state = self.begin(Call::ListPanes(session.into()))?;
        state.require_session(session)?;
        Ok(state
            .panes
            .iter()
            .filter(|p| p.session == session)
            .map(|p| PaneState {
                pane_id: p.pane_id.clone(),
                window_id: p.window_id.clone(),
                window_name: p.window_name.clone(),
                pid: p.pid,
                dead: p.dead,
                dead_status: p.dead_status,
                dead_signal: p.dead_signal,
                start_command: start_command(&p.spec.argv),
            })
            .collect())
    }

    fn capture_pane(&self, pane: &str) -> Result<String, TmuxError> {
        let state = self.begin(Call::CapturePane(pane.into()))?;
        state
            .panes
            .iter()
            .find(|p| p.pane_id == pane)
            .map(|p| p.screen.clone())
            .ok_or_else(|| not_found("pane", pane))
    }

    fn kill_pane(&self, pane: &str) -> Result<(), TmuxError> {
        let mut state = self.begin(Call::KillPane(pane.into()))?;
        if !state.panes.iter().any(|p| p.pane_id == pane) {
            return Err(not_found("pane", pane));
        }
        state.panes.retain(|p| p.pane_id != pane);
        drop_empty_sessions(&mut state);
        Ok(())
    }

    fn kill_session(&self, session: &str) -> Result<(), TmuxError> {
        let mut state = self.begin(Call::KillSession(session.into()))?;
        state.panes.retain(|p| p.session != session);
        state.hooks.retain(|(s, _, _)| s != session);
        drop_empty_sessions(&mut state);
        Ok(())
    }

    fn kill_server(&self) -> Result<(), TmuxError> {
        let mut state = self.begin(Call::KillServer)?;
        state.panes.clear();
        state.sessions.clear();
        state.hooks.clear();
        Ok(())
    }

    fn command_prefix(&self) -> Vec<String> {
        vec![
            "tmux".to_string(),
            "-L".to_string(),
            "orch-fake".to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> WindowSpec {
        WindowSpec::new(
            name,
            "/tmp",
            vec!["agent".into(), "--task".into(), name.into()],
        )
    }

    #[test]
    fn keeps_sessions_windows_and_panes() {
        let tmux = FakeTmux::new();
        let control = tmux
            .new_session("orch", &spec("control"), (200, 50))
            .unwrap();
        let task = tmux.new_window("orch", &spec("t1")).unwrap();
        let split = tmux.split_window(&task.window_id, &spec("t2")).unwrap();
        assert_eq!(
            (control.pane_id.as_str(), control.window_id.as_str()),
            ("%0", "@0")
        );
        assert_eq!(split.window_id, task.window_id);
        assert_ne!(split.pid, task.pid);
        tmux.select_layout(&task.window_id, "tiled").unwrap();
        tmux.rename_window(&task.pane_id, "tasks").unwrap();

        let panes = tmux.list_panes("orch").unwrap();
        let names: Vec<_> = panes.iter().map(|p| p.window_name.as_str()).collect();
        assert_eq!(names, ["control", "tasks", "tasks"]);
        assert!(tmux.has_session("orch").unwrap());
        assert!(!tmux.has_session("other").unwrap());
        assert!(matches!(
            tmux.new_window("other", &spec("x")),
            Err(TmuxError::SessionNotFound { .. })
        ));
    }

    #[test]
    fn tests_play_deaths_failures_and_screens() {
        let tmux = FakeTmux::new();
        tmux.new_session("orch", &spec("control"), (80, 24))
            .unwrap();
        let task = tmux.new_window("orch", &spec("t1")).unwrap();
        assert!(tmux.mark_dead(&task.pane_id, Some(3), None));
        assert!(tmux.set_screen(&task.pane_id, "done\n"));
        let dead = &tmux.list_panes("orch").unwrap()[1];
        assert_eq!((dead.dead, dead.dead_status), (true, Some(3)));
        assert_eq!(tmux.capture_pane(&task.pane_id).unwrap(), "done\n");

        tmux.fail_next(
            "split_window",
            TmuxError::NoSpace {
                target: "@1".into(),
            },
        );
        assert!(matches!(
            tmux.split_window(&task.window_id, &spec("t2")),
            Err(TmuxError::NoSpace { .. })
        ));
        assert!(tmux.split_window(&task.window_id, &spec("t2")).is_ok());

        assert!(tmux.remove_pane(&task.pane_id));
        assert!(!tmux.mark_dead(&task.pane_id, None, Some(9)));
        let methods: Vec<_> = tmux.calls().iter().map(Call::method).collect();
        assert_eq!(
            methods,
            [
                "new_session",
                "new_window",
                "list_panes",
                "capture_pane",
                "split_window",
                "split_window"
            ]
        );
    }

    #[test]
    fn refuses_what_real_tmux_refuses() {
        let tmux = FakeTmux::new();
        let err = tmux
            .new_session("a:b", &spec("control"), (80, 24))
            .unwrap_err();
        assert!(matches!(err, TmuxError::InvalidArgument { .. }), "{err:?}");
        tmux.new_session("orch", &spec("control"), (80, 24))
            .unwrap();
        let empty = WindowSpec::new("t", "/nowhere", vec![]);
        assert!(matches!(
            tmux.new_window("orch", &empty),
            Err(TmuxError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn kills_are_idempotent_and_hooks_are_kept() {
        let tmux = FakeTmux::new();
        tmux.new_session("orch", &spec("control"), (80, 24))
            .unwrap();
        tmux.set_hook("orch", "pane-died", "run-shell 'x'").unwrap();
        tmux.set_hook("orch", "pane-died", "run-shell 'y'").unwrap();
        assert_eq!(
            tmux.hooks(),
            [("orch".into(), "pane-died".into(), "run-shell 'y'".into())]
        );
        tmux.kill_session("orch").unwrap();
        tmux.kill_session("orch").unwrap();
        tmux.kill_server().unwrap();
        assert!(!tmux.has_session("orch").unwrap());
        assert!(tmux.hooks().is_empty());
    }
}
