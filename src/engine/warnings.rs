//! The engine's warnings go into the journal (`warning` events), so that `orch status`, the
//! report and the control window show them for the rest of the run; see
//! [`crate::state::WarningKind`] for what each kind costs.
//!
//! A warning raised before this engine journaled its start (reading the journal, setting up
//! the watchers) waits until it has: journaled earlier, it would stand between the previous
//! engine's last event and the `run_resumed` that measures the downtime from it. One the
//! journal refuses (a full disk, `.orch/` unwritable) goes to stderr and stays on the control
//! window's screen; it never raises another warning. A warning this engine journaled already,
//! word for word, is not journaled again (a pane listing that fails at every check, a copy
//! tried at each of a task's exits): the journal stays small and the screen readable.

use super::core::Engine;
use crate::state::{Event, WarningKind};

/// A warning not in the journal: waiting for the engine's start, or refused by the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unjournaled {
    pub kind: WarningKind,
    pub message: String,
}

/// The warnings the journal does not hold (yet).
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// Set once this engine journaled its start: from then on warnings are journaled at once.
    started: bool,
    /// How many of the run's warnings earlier engines journaled: this engine's come after.
    before: usize,
    list: Vec<Unjournaled>,
}

impl Pending {
    /// Warnings raised before the engine exists (while it opens the run), held for `warn`.
    pub(super) fn new(early: Vec<Unjournaled>) -> Pending {
        Pending {
            started: false,
            before: 0,
            list: early,
        }
    }

    /// Those not journaled: shown under the table, and said again when the engine ends.
    pub(super) fn list(&self) -> &[Unjournaled] {
        &self.list
    }
}

/// A warning raised while the engine opens the run, before it exists.
pub(super) fn early(kind: WarningKind, message: impl Into<String>) -> Unjournaled {
    Unjournaled {
        kind,
        message: message.into(),
    }
}

impl Engine {
    /// Journals a warning (or holds it until this engine journaled its start; see the module
    /// doc). Never fails: a warning the journal refuses goes to stderr.
    pub(super) fn warn(&mut self, kind: WarningKind, message: impl Into<String>) {
        let message = message.into();
        let same = |w_kind: WarningKind, w_message: &str| w_kind == kind && w_message == message;
        if self.warnings.list.iter().any(|w| same(w.kind, &w.message)) {
            return; // held, or refused and said on stderr already
        }
        if !self.warnings.started {
            self.warnings.list.push(Unjournaled { kind, message });
            return;
        }
        let said = self
            .state
            .warnings
            .get(self.warnings.before..)
            .unwrap_or_default();
        if said.iter().any(|w| same(w.kind, &w.message)) {
            return;
        }
        let event = Event::Warning {
            kind,
            message: message.clone(),
        };
        // `record` calls nothing that warns while the journal cannot be written (keeper.rs
        // warns only once it put the journal back), so this cannot come back here endlessly.
        if let Err(e) = self.record(event) {
            eprintln!("warning: {message} (not journaled: {e:#})");
            self.warnings.list.push(Unjournaled { kind, message });
        }
    }

    /// Journals the warnings held until this engine's start (called once it is journaled).
    pub(super) fn journal_early_warnings(&mut self) {
        self.warnings.started = true;
        self.warnings.before = self.state.warnings.len();
        for Unjournaled { kind, message } in std::mem::take(&mut self.warnings.list) {
            self.warn(kind, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::event_loop::Stop;
    use crate::engine::fake_run::FakeRun;
    use crate::state::{Event, Outcome, RunState, WarningKind};
    use crate::tmux::TmuxError;

    const CONFIG: &str = "agents:\n  mine:\n    kind: command\n    command: [\"./w.sh\"]\n\
                          roles:\n  planner: mine\n  judge: mine\n  workers: [mine]\n";
    const PLAN: &str =
        r#"{"tasks": [{"id": "a", "agent": "mine", "task": "t", "files": ["a.txt"]}]}"#;

    fn names(run: &FakeRun) -> Vec<String> {
        run.journal()
            .iter()
            .map(|r| serde_json::to_value(r).unwrap()["event"].to_string())
            .collect()
    }

    #[test]
    fn warnings_are_journaled_after_the_engines_start_even_those_raised_before_it() {
        // The pane-died hook is set as the engine starts: its failure is journaled, not
        // printed on a screen redrawn a second later.
        let mut run = FakeRun::start_with("build it", CONFIG, PLAN, &[], |tmux| {
            tmux.fail_next(
                "set_hook",
                TmuxError::CommandFailed {
                    command: "set-hook".into(),
                    status: Some(1),
                    stderr: "no such hook".into(),
                },
            );
        });
        let warning = run.wait_event("the hook's warning", |e| matches!(e, Event::Warning { .. }));
        let Event::Warning { kind, message } = warning else {
            unreachable!()
        };
        assert_eq!(kind, WarningKind::Agents);
        assert!(message.contains("pane-died hook"), "{message}");
        let _a = run.next_agent();
        run.stop(Stop::Interrupt);
        assert_eq!(run.outcome(), Some(Outcome::Interrupted));

        // A journal line no orch can read, found as the next engine opens the run (before it
        // journaled anything): journaled once it started, after `run_resumed`, so that the
        // downtime is still measured from the previous engine's last event.
        let mut journal = std::fs::OpenOptions::new()
            .append(true)
            .open(run.dir.events())
            .unwrap();
        std::io::Write::write_all(&mut journal, b"{\"t\":1,\"event\":\"nonsense\"}\n").unwrap();
        // And a line torn by a crash mid-write: cut off, and said once.
        std::io::Write::write_all(&mut journal, b"{\"t\":2,\"eve").unwrap();
        let before = run.journal().len();
        run.resume();
        // Both of the journal's warnings; others may come with them (the resume may find and
        // stop what the first engine's agents left), so they are found by what they say.
        let unrecorded = |state: &RunState| -> Vec<String> {
            state
                .warnings
                .iter()
                .filter(|w| w.kind == WarningKind::Unrecorded)
                .map(|w| w.message.clone())
                .collect()
        };
        run.wait_for("the unreadable line's warning", |run| {
            let state = RunState::replay(&run.journal());
            (unrecorded(&state).len() == 2).then_some(())
        });
        let names = names(&run);
        let resumed = names.iter().position(|n| n == "\"run_resumed\"").unwrap();
        let started = names
            .iter()
            .rposition(|n| n == "\"engine_started\"")
            .unwrap();
        // The first warning after the resume comes after this engine's start.
        let warned = resumed
            + names[resumed..]
                .iter()
                .position(|n| n == "\"warning\"")
                .unwrap();
        assert!(
            before <= resumed && resumed < started && started < warned,
            "{names:?}"
        );
        let state = RunState::replay(&run.journal());
        let unrecorded = unrecorded(&state);
        assert!(
            unrecorded[0].contains(&format!("events.jsonl line {}", before + 1)),
            "{:?}",
            state.warnings
        );
        assert!(
            unrecorded[1].contains("cut off a torn last line (11 bytes"),
            "{:?}",
            state.warnings
        );
        run.stop(Stop::Interrupt);
        let _ = run.outcome();
    }
}
