//! The control window: the run's table (see [`crate::format::table`]) under a header,
//! redrawn every second, with the engines' warnings under it until the run ends; and the
//! final screen the window keeps when the engine ends.

use std::fmt::Write as _;

use super::core::Engine;
use super::warnings::Unjournaled;
use crate::state::{Outcome, Phase};

impl Engine {
    /// Draws the control window: the header, the run's table (its warnings under it, for
    /// as long as the run goes), and the warnings the journal could not take.
    pub(super) fn render(&self) {
        if !self.draw {
            return;
        }
        let header = self.header();
        let now = crate::state::now_ms();
        let table = match crate::format::terminal_height() {
            Some(lines) => crate::format::screen(&self.state, &self.dir, now, lines),
            None => crate::format::table(&self.state, &self.dir, now),
        };
        // A plan waiting for approval is what there is to see (see approval.rs): no task
        // has started, and the planner's row would push the plan off a small window.
        let table = crate::approval::waiting_text(&self.dir, &self.state, &self.info.run_id)
            .unwrap_or(table);
        let unjournaled = unjournaled(self.warnings.list());
        // Clear the screen and home the cursor, then redraw: the control window is ours. A
        // window that is gone fails the write, which must not bring the engine down.
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ =
            write!(out, "\x1b[H\x1b[2J{header}\n{table}{unjournaled}").and_then(|()| out.flush());
    }

    fn header(&self) -> String {
        let phase = match self.state.phase {
            Phase::Planning if self.state.approval.waiting() => {
                "plan waiting for approval".to_string()
            }
            Phase::Planning => format!("planning (attempt {})", self.state.planning_attempt()),
            other => other.name().to_string(),
        };
        let orch = crate::invocation::orch();
        let branch = self
            .info
            .workspace
            .as_ref()
            .map(|ws| format!(" · branch {}", ws.branch))
            .unwrap_or_default();
        // Only for a run with a budget: with none, the table's TOTAL row says what was used.
        let budget = if self.config.limits.budget.is_empty() {
            String::new()
        } else {
            let view = crate::budget::View::of(&self.dir, &self.state, &self.config);
            format!("budget: {}\n", view.line())
        };
        format!(
            "orch · run {} · {} · {}{branch}\nattach: {orch} attach · detach: C-b d · stop: {orch} \
             down\n{budget}",
            self.info.run_id, self.info.session, phase
        )
    }

    /// The final screen: the table as the run ended, and what to do next.
    pub(super) fn render_final(&self, outcome: Result<Outcome, &anyhow::Error>) {
        self.render();
        let orch = crate::invocation::orch();
        let message = match outcome {
            Ok(outcome @ (Outcome::Interrupted | Outcome::Stopped)) => format!(
                "run {}: {outcome}. `{orch} resume` continues it; `{orch} down` closes this \
                 session.",
                self.info.run_id
            ),
            Ok(outcome) => {
                let work = self.info.workspace.as_ref().map_or_else(String::new, |ws| {
                    format!(
                        " Its work is on branch {} (worktree {}).",
                        ws.branch,
                        self.project.display(&ws.path)
                    )
                });
                let retry = super::retry::hint(&self.state)
                    .map_or_else(String::new, |hint| format!("\n{hint}."));
                format!(
                    "run {}: {}.{work} Its files are in {}. `{orch} down` closes this \
                     session.{retry}",
                    self.info.run_id,
                    outcome.name(),
                    self.project.display(self.dir.path())
                )
            }
            Err(e) => format!(
                "the engine stopped on an error: {e:#}\nthe agents keep running; once the cause \
                 is fixed, `{orch} resume` continues the run (`{orch} down` stops it)"
            ),
        };
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), "\n{message}");
    }
}

/// Warnings the journal does not hold: said here, since no one else can show them.
fn unjournaled(list: &[Unjournaled]) -> String {
    let mut out = String::new();
    if !list.is_empty() {
        let _ = writeln!(out, "\nWARNINGS NOT IN THE JOURNAL (yet)");
        for w in list {
            let _ = writeln!(out, "  {}: {}", w.kind, w.message);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::WarningKind;

    #[test]
    fn warnings_the_journal_refused_stay_on_screen() {
        assert_eq!(unjournaled(&[]), "");
        let shown = unjournaled(&[super::super::warnings::early(
            WarningKind::Unrecorded,
            "the disk is full",
        )]);
        assert!(shown.contains("NOT IN THE JOURNAL"), "{shown}");
        assert!(shown.contains("unrecorded: the disk is full"), "{shown}");
    }
}
