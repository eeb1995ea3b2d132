//! What the journal says of a run's budget: the raises `orch budget` asked for (each applied
//! once, by its id) and the latest threshold the run's use crossed. The limit itself is the
//! config's `limits.budget` plus the raises; what the run used is read from its agents' logs
//! (see [`crate::budget`]).

use serde::Serialize;

use super::Event;

/// One raise of the budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Raise {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetRecord {
    /// Every raise, in order.
    pub raises: Vec<Raise>,
    /// The latest threshold crossed (0, 80 or 100), against the budget as it was then.
    pub percent: u32,
    /// When the run's use reached its budget (while it still is: a raise clears it).
    pub reached_at_ms: Option<u64>,
}

impl BudgetRecord {
    pub(super) fn apply(&mut self, t: u64, event: &Event) {
        match event {
            Event::BudgetRaised { id, usd, tokens } => {
                if self.raised(id) {
                    return;
                }
                self.raises.push(Raise {
                    id: id.clone(),
                    usd: *usd,
                    tokens: *tokens,
                    at_ms: t,
                });
                // Measured again against the new limit by the engine, which says so.
                self.percent = 0;
                self.reached_at_ms = None;
            }
            Event::BudgetCrossed { percent, .. } => {
                self.percent = *percent;
                self.reached_at_ms = (*percent >= 100).then_some(t);
            }
            _ => {}
        }
    }

    /// Whether the raise `id` was applied already.
    pub fn raised(&self, id: &str) -> bool {
        self.raises.iter().any(|r| r.id == id)
    }

    /// The USD the raises add.
    pub fn raised_usd(&self) -> f64 {
        self.raises.iter().filter_map(|r| r.usd).sum()
    }

    /// The tokens the raises add.
    pub fn raised_tokens(&self) -> u64 {
        self.raises.iter().filter_map(|r| r.tokens).sum()
    }

    /// Whether the run's use reached its budget: nothing new launches until it is raised.
    pub fn reached(&self) -> bool {
        self.reached_at_ms.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crossed(percent: u32) -> Event {
        Event::BudgetCrossed {
            percent,
            usd: None,
            tokens: 1,
            limit_usd: None,
            limit_tokens: Some(1),
        }
    }

    #[test]
    fn a_raise_counts_once_and_clears_what_was_reached() {
        let mut b = BudgetRecord::default();
        b.apply(1, &crossed(80));
        assert!(!b.reached());
        b.apply(2, &crossed(100));
        assert!(b.reached());
        let raise = Event::BudgetRaised {
            id: "r1".into(),
            usd: Some(2.5),
            tokens: None,
        };
        b.apply(3, &raise);
        b.apply(4, &raise);
        assert!(!b.reached());
        assert_eq!(b.percent, 0);
        assert_eq!(b.raises.len(), 1);
        assert!((b.raised_usd() - 2.5).abs() < 1e-9);
        assert_eq!(b.raised_tokens(), 0);
    }
}
