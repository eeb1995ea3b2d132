//! A run's budget: what its agents used so far (read live from their logs, see
//! [`crate::progress`]), the limit (`limits.budget` plus the raises `orch budget` made), and
//! how far the one is into the other. The engine acts on it (see `engine/budget.rs`); `orch
//! status`, `orch budget` and the report show it.
//!
//! Cost counts only the agents whose CLI reports one; the others count in tokens alone, and
//! the view names them, so that a USD figure is never read as the whole cost when it is not.
//!
//! A raise is a request file in the run directory (`budget/<id>.json`): the engine watches
//! the directory and journals each request once (by its id), and one that no engine read yet
//! is applied by the next (`orch resume`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Budget;
use crate::state::{RunDir, RunState};
use crate::workers::Usage;

/// The share of the budget at which the user is told.
pub const WARN_PERCENT: u32 = 80;

/// Whether an agent of `kind` reports what it costs: Claude Code and OpenCode do, in their
/// event streams; Codex and Gemini CLI report tokens only; a `kind: command` agent says its
/// own (`ORCH_USAGE`); the scripted agent uses nothing.
pub fn reports_cost(kind: crate::config::AgentKind) -> bool {
    use crate::config::AgentKind::*;
    matches!(kind, Claude | Opencode | Command | Scripted)
}

/// What one agent role used: a task's agent over its attempts, the planner, the judge, the
/// oracle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spender {
    /// The task's id, or `planner`, `judge`, `oracle`.
    pub who: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// None when its CLI reported no cost for some of what it used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// What a run used, in all and by who used it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Used {
    pub tokens: u64,
    /// The cost of the use whose CLI reported one.
    pub usd: f64,
    /// Who used tokens without a reported cost: counted in tokens only.
    pub uncosted: Vec<String>,
    pub by: Vec<Spender>,
}

/// The limit in force: the config's, plus the raises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Limit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

impl Limit {
    pub fn of(config: &Budget, state: &RunState) -> Limit {
        Limit {
            usd: config.usd.map(|u| u + state.budget.raised_usd()),
            tokens: config.tokens.map(|t| t + state.budget.raised_tokens()),
        }
    }

    pub fn is_none(&self) -> bool {
        self.usd.is_none() && self.tokens.is_none()
    }

    /// How far `used` is into the limit, in percent (the larger of cost and tokens); 0 with
    /// no limit.
    pub fn percent(&self, used: &Used) -> f64 {
        let usd = self.usd.map_or(0.0, |l| used.usd / l * 100.0);
        let tokens = self
            .tokens
            .map_or(0.0, |l| used.tokens as f64 / l as f64 * 100.0);
        usd.max(tokens)
    }

    /// The threshold `used` has crossed: 0, [`WARN_PERCENT`] or 100.
    pub fn threshold(&self, used: &Used) -> u32 {
        let percent = self.percent(used);
        if self.is_none() || percent < f64::from(WARN_PERCENT) {
            0
        } else if percent < 100.0 {
            WARN_PERCENT
        } else {
            100
        }
    }

    /// "$4.10 of $5.00 (82 %)", "1.2M of 2M tokens", both joined with "; ".
    pub fn describe(&self, used: &Used) -> String {
        let mut parts = Vec::new();
        if let Some(limit) = self.usd {
            parts.push(format!(
                "${:.2} of ${limit:.2} ({:.0} %)",
                used.usd,
                used.usd / limit * 100.0
            ));
        }
        if let Some(limit) = self.tokens {
            parts.push(format!(
                "{} of {} tokens ({:.0} %)",
                used.tokens,
                limit,
                used.tokens as f64 / limit as f64 * 100.0
            ));
        }
        parts.join("; ")
    }
}

/// What the run in `dir` used so far, by its tasks' agents (all attempts), the planner, the
/// judge and the oracle.
pub fn measure(dir: &RunDir, state: &RunState) -> Used {
    let mut used = Used::default();
    for task in state.tasks_in_order() {
        let usage = crate::progress::usage_of_task(dir, task);
        used.add(task.id.as_str(), usage);
    }
    for role in ["planner", "judge", "oracle"] {
        let mut total: Option<Usage> = None;
        let mut uncosted = false;
        // The oracle's attempts are by task (`oracle/<task>/<n>`).
        let depth = if role == "oracle" { 1 } else { 0 };
        for attempt in attempt_dirs(&dir.path().join(role), depth) {
            if let Some(u) = crate::progress::attempt_usage(&attempt) {
                uncosted |= u.cost_usd.is_none() && u.input_tokens + u.output_tokens > 0;
                let t = total.get_or_insert_with(Usage::default);
                t.input_tokens += u.input_tokens;
                t.output_tokens += u.output_tokens;
                if let Some(c) = u.cost_usd {
                    *t.cost_usd.get_or_insert(0.0) += c;
                }
            }
        }
        if let Some(t) = &mut total
            && uncosted
        {
            // Partly costed: shown as uncosted, with what was costed still counted.
            used.usd += t.cost_usd.take().unwrap_or(0.0);
        }
        used.add(role, total);
    }
    used
}

impl Used {
    fn add(&mut self, who: &str, usage: Option<Usage>) {
        let Some(u) = usage else { return };
        self.tokens += u.input_tokens + u.output_tokens;
        match u.cost_usd {
            Some(c) => self.usd += c,
            None if u.input_tokens + u.output_tokens > 0 => self.uncosted.push(who.to_string()),
            None => {}
        }
        self.by.push(Spender {
            who: who.to_string(),
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cost_usd: u.cost_usd,
        });
    }
}

/// The attempt directories under `role_dir` (`planner/1`, `judge/2`), `depth` levels down
/// (`oracle/<task>/1`: 1).
fn attempt_dirs(role_dir: &Path, depth: u32) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(role_dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if depth > 0 {
            out.extend(attempt_dirs(&path, depth - 1));
        } else if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u32>().is_ok())
        {
            out.push(path);
        }
    }
    out
}

/// The budget as `orch status --json` and `report.json` show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct View {
    pub limit: Limit,
    pub used_usd: f64,
    pub used_tokens: u64,
    /// Round percent of the limit used (the larger of cost and tokens); None with no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// Whether the run's use reached its budget: nothing new launches until it is raised.
    pub reached: bool,
    pub on_budget: &'static str,
    /// Who used tokens without a reported cost (counted in tokens only).
    pub uncosted: Vec<String>,
    pub raises: Vec<crate::state::Raise>,
    /// Raises asked for and not applied yet (no engine read them).
    pub pending_raises: Vec<RaiseRequest>,
}

impl View {
    pub fn of(dir: &RunDir, state: &RunState, config: &crate::config::Config) -> View {
        let used = measure(dir, state);
        let limit = Limit::of(&config.limits.budget, state);
        View {
            percent: (!limit.is_none()).then(|| limit.percent(&used).round() as u32),
            limit,
            used_usd: used.usd,
            used_tokens: used.tokens,
            reached: state.budget.reached(),
            on_budget: config.limits.on_budget.name(),
            uncosted: used.uncosted,
            raises: state.budget.raises.clone(),
            pending_raises: pending(dir, state),
        }
    }

    /// Whether there is anything to say: a budget, a raise, use without a cost.
    pub fn shown(&self) -> bool {
        !self.limit.is_none()
            || !self.raises.is_empty()
            || !self.pending_raises.is_empty()
            || !self.uncosted.is_empty()
    }

    /// One line for a person: the use, and against what.
    pub fn line(&self) -> String {
        let used = Used {
            tokens: self.used_tokens,
            usd: self.used_usd,
            ..Used::default()
        };
        let mut line = if self.limit.is_none() {
            format!(
                "used ${:.2} and {} tokens (no budget set)",
                self.used_usd, self.used_tokens
            )
        } else {
            self.limit.describe(&used)
        };
        if self.reached {
            line.push_str(&format!(
                " — budget reached: nothing new launches; `{} budget +AMOUNT` raises it",
                crate::invocation::orch()
            ));
        }
        if !self.uncosted.is_empty() {
            line.push_str(&format!(
                "; no cost reported by {} (counted in tokens only)",
                self.uncosted.join(", ")
            ));
        }
        if !self.pending_raises.is_empty() {
            line.push_str(&format!(
                "; {} raise(s) waiting for an engine (`orch resume` applies them)",
                self.pending_raises.len()
            ));
        }
        line
    }
}

/// A raise asked for with `orch budget`, as written into the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaiseRequest {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

/// Where raise requests wait for an engine.
pub fn requests_dir(dir: &RunDir) -> PathBuf {
    crate::state::requests::dir(dir, "budget")
}

/// Writes a raise request for the run in `dir` (atomically: an engine never reads half).
pub fn request_raise(dir: &RunDir, request: &RaiseRequest) -> anyhow::Result<PathBuf> {
    crate::state::requests::write(dir, "budget", &request.id, request)
}

/// The raise requests in `dir` not journaled yet, oldest first; an unreadable one is an error
/// of its own, for the engine to report.
pub fn read_requests(dir: &RunDir) -> Vec<(PathBuf, Result<RaiseRequest, String>)> {
    crate::state::requests::read(dir, "budget")
}

fn pending(dir: &RunDir, state: &RunState) -> Vec<RaiseRequest> {
    read_requests(dir)
        .into_iter()
        .filter_map(|(_, r)| r.ok())
        .filter(|r| !state.budget.raised(&r.id))
        .collect()
}

/// What `orch resume` takes from the project's `orch.yaml` as it is now (`edited`), for a run
/// that started with `started`: the raise that brings the run's budget up to the edited one
/// (None when it is not higher, raises already asked for counted), and what of the edit it
/// does not take, to be said. The raise's id is the edited budget's, so that resuming again
/// with the same file raises nothing more.
pub fn raise_from_config(
    dir: &RunDir,
    started: &Budget,
    edited: &Budget,
    state: &RunState,
) -> (Option<RaiseRequest>, Vec<String>) {
    let limit = Limit::of(started, state);
    let asked = pending(dir, state);
    let asked_usd: f64 = asked.iter().filter_map(|r| r.usd).sum();
    let asked_tokens: u64 = asked.iter().filter_map(|r| r.tokens).sum();
    let mut notes = Vec::new();
    let usd = match (limit.usd.map(|l| l + asked_usd), edited.usd) {
        (Some(now), Some(new)) if new > now + 0.005 => Some(new - now),
        (Some(now), Some(new)) if new < now - 0.005 => {
            notes.push(format!(
                "orch.yaml's budget of ${new:.2} is below the run's ${now:.2}: a run's budget \
                 is only ever raised, so it stays"
            ));
            None
        }
        (None, Some(new)) => {
            notes.push(format!(
                "orch.yaml has a budget of ${new:.2}, but the run started without one in USD: \
                 it applies to new runs"
            ));
            None
        }
        _ => None,
    };
    let tokens = match (limit.tokens.map(|l| l + asked_tokens), edited.tokens) {
        (Some(now), Some(new)) if new > now => Some(new - now),
        (Some(now), Some(new)) if new < now => {
            notes.push(format!(
                "orch.yaml's budget of {new} tokens is below the run's {now}: a run's budget \
                 is only ever raised, so it stays"
            ));
            None
        }
        (None, Some(new)) => {
            notes.push(format!(
                "orch.yaml has a budget of {new} tokens, but the run started without one in \
                 tokens: it applies to new runs"
            ));
            None
        }
        _ => None,
    };
    let raise = (usd.is_some() || tokens.is_some()).then(|| RaiseRequest {
        id: format!(
            "config-{}-{}",
            edited
                .usd
                .map_or_else(|| "none".into(), |u| format!("{u:.2}")),
            edited
                .tokens
                .map_or_else(|| "none".into(), |t| t.to_string())
        ),
        usd,
        tokens,
    });
    (raise, notes)
}

/// Reads `+AMOUNT` as `orch budget` takes it: `+5`, `+$5`, `+2.50usd` (US dollars) or
/// `+500k tokens`, `+2M tokens`, `+300000tokens` (tokens).
pub fn parse_amount(text: &str) -> Result<(Option<f64>, Option<u64>), String> {
    let bad = || {
        format!(
            "{text:?} is not an amount to raise the budget by: write `+5` or `+$5` (US \
             dollars), or `+500k tokens` (tokens)"
        )
    };
    let t = text.trim();
    let Some(rest) = t.strip_prefix('+') else {
        return Err(format!(
            "{}; the `+` is required: a budget is only ever raised",
            bad()
        ));
    };
    let rest = rest.trim().to_ascii_lowercase();
    if let Some(n) = rest
        .strip_suffix("tokens")
        .or_else(|| rest.strip_suffix("token"))
    {
        let n = n.trim();
        let (digits, factor) = match n.chars().last() {
            Some('k') => (&n[..n.len() - 1], 1_000.0),
            Some('m') => (&n[..n.len() - 1], 1_000_000.0),
            _ => (n, 1.0),
        };
        let value: f64 = digits.trim().parse().map_err(|_| bad())?;
        let tokens = (value * factor).round();
        if !(1.0..1e18).contains(&tokens) {
            return Err(bad());
        }
        return Ok((None, Some(tokens as u64)));
    }
    let n = rest.strip_prefix('$').unwrap_or(&rest);
    let n = n.strip_suffix("usd").unwrap_or(n).trim();
    let usd: f64 = n.parse().map_err(|_| bad())?;
    if !(usd.is_finite() && usd > 0.0) {
        return Err(bad());
    }
    Ok((Some(usd), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_dollars_or_tokens() {
        assert_eq!(parse_amount("+5"), Ok((Some(5.0), None)));
        assert_eq!(parse_amount("+$2.50"), Ok((Some(2.5), None)));
        assert_eq!(parse_amount("+3 USD"), Ok((Some(3.0), None)));
        assert_eq!(parse_amount("+500k tokens"), Ok((None, Some(500_000))));
        assert_eq!(parse_amount("+2M tokens"), Ok((None, Some(2_000_000))));
        assert_eq!(parse_amount("+1200tokens"), Ok((None, Some(1200))));
        assert!(parse_amount("5").unwrap_err().contains("`+` is required"));
        assert!(parse_amount("+0").is_err());
        assert!(parse_amount("+lots").is_err());
        assert!(parse_amount("+-3").is_err());
    }

    #[test]
    fn the_threshold_is_the_larger_share() {
        let limit = Limit {
            usd: Some(10.0),
            tokens: Some(1000),
        };
        let used = |usd, tokens| Used {
            usd,
            tokens,
            ..Used::default()
        };
        assert_eq!(limit.threshold(&used(1.0, 100)), 0);
        assert_eq!(limit.threshold(&used(8.0, 100)), WARN_PERCENT);
        assert_eq!(limit.threshold(&used(1.0, 1000)), 100);
        assert_eq!(Limit::default().threshold(&used(100.0, 100)), 0);
        assert_eq!(
            limit.describe(&used(8.2, 100)),
            "$8.20 of $10.00 (82 %); 100 of 1000 tokens (10 %)"
        );
    }

    #[test]
    fn an_edited_config_raises_the_budget_once_and_never_lowers_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path(), "r1");
        std::fs::create_dir_all(dir.path()).unwrap();
        let state = RunState::default();
        let started = Budget {
            usd: Some(5.0),
            tokens: Some(1000),
        };
        let edited = Budget {
            usd: Some(8.0),
            tokens: Some(1000),
        };
        let (raise, notes) = raise_from_config(&dir, &started, &edited, &state);
        let raise = raise.unwrap();
        assert_eq!((raise.usd, raise.tokens), (Some(3.0), None));
        assert!(notes.is_empty(), "{notes:?}");
        // Asked for already (a resume that did not start its engine): nothing more.
        request_raise(&dir, &raise).unwrap();
        let (again, _) = raise_from_config(&dir, &started, &edited, &state);
        assert_eq!(again, None);
        // Lower, or in a unit the run has no budget in: said, not taken.
        let lower = Budget {
            usd: Some(2.0),
            tokens: None,
        };
        let none = Budget::default();
        let (raise, notes) = raise_from_config(&dir, &none, &lower, &state);
        assert_eq!(raise, None);
        assert!(notes[0].contains("started without one in USD"), "{notes:?}");
        let (raise, notes) = raise_from_config(&dir, &started, &lower, &state);
        assert_eq!(raise, None);
        assert!(notes[0].contains("only ever raised"), "{notes:?}");
    }

    #[test]
    fn a_request_is_read_back_and_a_bad_one_said_so() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path(), "r1");
        std::fs::create_dir_all(dir.path()).unwrap();
        let r = RaiseRequest {
            id: "1-a".into(),
            usd: Some(1.0),
            tokens: None,
        };
        request_raise(&dir, &r).unwrap();
        std::fs::write(requests_dir(&dir).join("2-b.json"), "{").unwrap();
        let read = read_requests(&dir);
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].1.as_ref().unwrap(), &r);
        assert!(read[1].1.is_err());
    }
}
