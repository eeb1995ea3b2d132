//! `limits.budget` and `limits.on_budget`: the most a run may use, in USD and/or tokens, and
//! what the agents still running do once it is used up (see [`crate::budget`]).

use serde::{Deserialize, Serialize};

/// `limits.budget`: `usd`, `tokens`, or both (whichever is reached first counts).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Budget {
    /// The most the run may cost, in US dollars, as the agents' CLIs report cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
    /// The most tokens (input and output) the run's agents may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

impl Budget {
    pub fn is_empty(&self) -> bool {
        self.usd.is_none() && self.tokens.is_none()
    }

    /// What is wrong with it, for the config's check.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(usd) = self.usd
            && !(usd.is_finite() && usd > 0.0)
        {
            problems.push(format!(
                "`limits.budget.usd` must be a positive amount of US dollars (it is {usd}); \
                 remove it for no limit on cost"
            ));
        }
        if self.tokens == Some(0) {
            problems.push(
                "`limits.budget.tokens` must be at least 1; remove it for no limit on tokens"
                    .to_string(),
            );
        }
        problems
    }
}

/// `limits.on_budget`: once the budget is used up nothing new is launched, and the agents
/// still running…
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnBudget {
    /// …finish their turn (what they use meanwhile is counted, and may go over).
    #[default]
    Finish,
    /// …are stopped at once, as an interruption: their work stays, and they continue (their
    /// CLI's session, where it can) once the budget is raised.
    Stop,
}

impl OnBudget {
    pub fn name(self) -> &'static str {
        match self {
            OnBudget::Finish => "finish",
            OnBudget::Stop => "stop",
        }
    }
}
