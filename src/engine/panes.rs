//! Where each agent's pane goes, as the layout says: a window per task, or panes sharing a
//! window (a new one when the current is full or tmux has no room left).

use crate::layout::{Layout, Placement};
use crate::tmux::{PaneInfo, Tmux, TmuxError, WindowSpec};

pub(in crate::engine) struct Panes {
    layout: Layout,
    session: String,
    /// The window worker panes currently go into, and how many it holds.
    current: Option<(String, usize)>,
    /// How many worker windows `workers: panes` has opened, for their names.
    opened: usize,
}

impl Panes {
    pub(super) fn new(layout: Layout, session: String) -> Self {
        Panes {
            layout,
            session,
            current: None,
            opened: 0,
        }
    }

    /// A window of its own (the planner's, or a task's in the `windows` layout).
    pub(super) fn window(&self, tmux: &dyn Tmux, spec: &WindowSpec) -> Result<PaneInfo, TmuxError> {
        tmux.new_window(&self.session, spec)
    }

    /// Whether each task gets a window of its own (then `windows` can make several at once).
    pub(super) fn own_windows(&self) -> bool {
        self.layout.workers == Placement::Windows
    }

    /// Windows of their own for several tasks, in one batch (see `Tmux::new_windows`).
    pub(super) fn windows(
        &self,
        tmux: &dyn Tmux,
        specs: &[WindowSpec],
    ) -> Vec<Result<PaneInfo, TmuxError>> {
        tmux.new_windows(&self.session, specs)
    }

    /// A task's pane, placed by the layout.
    pub(super) fn place(
        &mut self,
        tmux: &dyn Tmux,
        spec: &WindowSpec,
    ) -> Result<PaneInfo, TmuxError> {
        if self.layout.workers == Placement::Windows {
            return self.window(tmux, spec);
        }
        let max = self.layout.max_panes.unwrap_or(usize::MAX);
        if self.current.is_none() && self.layout.window.as_deref() == Some("control") {
            // Beside the engine's own pane: tmux tells every pane its id.
            if let Ok(pane) = std::env::var("TMUX_PANE") {
                self.current = Some((pane, 0));
            }
        }
        if let Some((target, count)) = self.current.clone()
            && count < max
        {
            match tmux.split_window(&target, spec) {
                Ok(info) => {
                    self.current = Some((info.window_id.clone(), count + 1));
                    self.arrange(tmux, &info.window_id);
                    return Ok(info);
                }
                Err(TmuxError::NoSpace { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.opened += 1;
        let base = match self.layout.window.as_deref() {
            Some(name) if name != "control" => name.to_string(),
            _ => "workers".to_string(),
        };
        let name = if self.opened == 1 {
            base
        } else {
            format!("{base}-{}", self.opened)
        };
        let info = tmux.new_window(
            &self.session,
            &WindowSpec {
                name,
                ..spec.clone()
            },
        )?;
        self.current = Some((info.window_id.clone(), 1));
        Ok(info)
    }

    fn arrange(&self, tmux: &dyn Tmux, window: &str) {
        if let Some(arrange) = &self.layout.arrange {
            // A layout tmux cannot apply leaves the panes usable as they are.
            let _ = tmux.select_layout(window, arrange);
        }
    }
}
