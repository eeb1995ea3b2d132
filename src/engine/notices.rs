//! The engine tells the user (see [`crate::notify`]) what needs them, as it journals it: the
//! run ended, a task failed for good, a budget threshold was crossed. The bell rings in the
//! control window (the engine's own terminal), so tmux flags the window and passes the bell on
//! to the user's terminal; the rest goes off the loop, and what went wrong with it comes back
//! as `notify` warnings, journaled at the next tick. `Engine::tell` is the one way in, for a
//! notice the journal does not imply (a plan waiting for approval, when plans can be held).

use std::time::Instant;

use super::core::Engine;
use crate::notify::{Kind, Notice, Notifier, Target};
use crate::state::{Event, WarningKind};

/// What a notice is about (see `Engine::tell`).
pub(super) struct About {
    pub kind: Kind,
    /// The task's id, when it is about one (its window is marked).
    pub task: Option<String>,
    /// One line for a person: what happened, and what to do.
    pub reason: String,
    /// For `Kind::RunEnded`: the outcome's name.
    pub outcome: Option<String>,
    /// For `Kind::Budget`: the threshold crossed.
    pub percent: Option<u32>,
}

impl Engine {
    /// After `event` was journaled: a notice, if it is one the user is told of.
    pub(super) fn notice_for(&mut self, event: &Event) {
        // A unit test's engine has no window and tells no one.
        if !self.draw {
            return;
        }
        let (kind, task, reason, outcome, percent) = match event {
            // Stopped by `orch down`: the user did it, and needs no telling.
            Event::RunFinished {
                outcome: crate::state::Outcome::Stopped,
                ..
            } => return,
            Event::RunFinished { outcome, reason } => (
                Kind::RunEnded,
                None,
                match reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
                    Some(r) => format!("{outcome}: {r}"),
                    None => outcome.to_string(),
                },
                Some(outcome.to_string()),
                None,
            ),
            Event::TaskFailed { task, reason, .. } => (
                Kind::TaskFailed,
                Some(task.to_string()),
                reason.clone(),
                None,
                None,
            ),
            Event::BudgetCrossed {
                percent,
                limit_usd,
                limit_tokens,
                usd,
                tokens,
            } if *percent > 0 => {
                let limit = crate::budget::Limit {
                    usd: *limit_usd,
                    tokens: *limit_tokens,
                };
                let used = crate::budget::Used {
                    usd: usd.unwrap_or(0.0),
                    tokens: *tokens,
                    ..Default::default()
                };
                let orch = crate::invocation::orch();
                let then = if *percent >= 100 {
                    match self.config.limits.on_budget {
                        crate::config::OnBudget::Finish => format!(
                            "nothing new launches, the agents running finish their turn; \
                             `{orch} budget +AMOUNT` raises it"
                        ),
                        crate::config::OnBudget::Stop => format!(
                            "nothing new launches and the running agents were stopped (they \
                             continue once it is raised); `{orch} budget +AMOUNT` raises it"
                        ),
                    }
                } else {
                    format!("at 100 % nothing new launches; `{orch} budget +AMOUNT` raises it")
                };
                (
                    Kind::Budget,
                    None,
                    format!("used {}: {then}", limit.describe(&used)),
                    None,
                    Some(*percent),
                )
            }
            _ => return,
        };
        self.tell(About {
            kind,
            task,
            reason,
            outcome,
            percent,
        });
    }

    /// Tells the user `about` every way `notify:` turns on. For what the journal does not
    /// say by itself: a plan that waits for approval is told with `Kind::PlanWaiting` (the
    /// plan approval's hook point).
    pub(super) fn tell(&mut self, about: About) {
        if !self.draw {
            return;
        }
        let About {
            kind,
            task,
            reason,
            outcome,
            percent,
        } = about;
        let window = task.as_ref().and_then(|id| {
            let id = crate::plan::TaskId::new(id.as_str());
            self.state.tasks.get(&id).and_then(|t| t.window.clone())
        });
        let used = crate::budget::measure(&self.dir, &self.state);
        let notice = Notice {
            event: kind,
            run_id: self.info.run_id.clone(),
            project: self.project.root.clone(),
            task,
            reason,
            outcome,
            percent,
            cost: used.usd,
            tokens: used.tokens,
            uncosted: used.uncosted,
            at_ms: crate::state::now_ms(),
            window,
        };
        let notifier = self.notifier();
        let bell = notifier.tmux_on();
        notifier.send(notice);
        if bell {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"\x07");
            let _ = out.flush();
        }
    }

    /// The run's notifier, made at its first notice.
    fn notifier(&mut self) -> &mut Notifier {
        let target = || Target {
            config: self.config.notify.clone(),
            tmux: self.tmux.command_prefix(),
            session: self.info.session.clone(),
            project: self.project.root.clone(),
        };
        if self.notifier.is_none() {
            self.notifier = Some(Notifier::new(target()));
        }
        self.notifier.as_mut().expect("made above")
    }

    /// Journals what went wrong telling the user, as warnings.
    pub(super) fn journal_notice_problems(&mut self) {
        let Some(notifier) = &mut self.notifier else {
            return;
        };
        for problem in notifier.problems() {
            self.warn(WarningKind::Notify, problem);
        }
    }

    /// As the engine ends: waits for the notices under way (a hook's timeout at most), and
    /// journals what went wrong with them.
    pub(super) fn finish_notices(&mut self) {
        if let Some(notifier) = &mut self.notifier {
            let deadline = Instant::now() + notifier.longest();
            notifier.finish(deadline);
        }
        self.journal_notice_problems();
    }

    /// What the loop does for the user at each tick: the budget checked, the notices'
    /// problems journaled.
    pub(super) fn user_tick(&mut self) -> anyhow::Result<()> {
        self.journal_notice_problems();
        self.check_budget()
    }
}
