//! Violations in a few lines: one per violation, or for a flood the first few and a summary.

use std::collections::BTreeMap;

/// Up to this many violations are listed one per line; a flood is summarized.
const VIOLATIONS_LISTED: usize = 20;

/// One line per violation, or for a flood the first few and a summary: how many, counted
/// by suspects and by directory.
pub fn violation_lines(violations: &[crate::state::ViolationRecord]) -> Vec<String> {
    let describe = |v: &crate::state::ViolationRecord| {
        describe_violation(
            v.n,
            &v.change,
            &v.path,
            &v.suspects,
            &v.action,
            v.saved.as_deref(),
        )
    };
    if violations.len() <= VIOLATIONS_LISTED {
        return violations.iter().map(describe).collect();
    }
    let first = crate::flood::LIST_MAX;
    let mut lines: Vec<String> = violations.iter().take(first).map(describe).collect();
    let mut by_suspects: BTreeMap<String, usize> = BTreeMap::new();
    for v in violations {
        let who: Vec<String> = v.suspects.iter().map(ToString::to_string).collect();
        let who = if who.is_empty() {
            "nobody running".to_string()
        } else {
            who.join(", ")
        };
        *by_suspects.entry(who).or_default() += 1;
    }
    let suspects: Vec<String> = by_suspects
        .iter()
        .map(|(who, n)| format!("{n} by {who}"))
        .collect();
    let paths: Vec<String> = violations.iter().map(|v| v.path.clone()).collect();
    lines.push(format!(
        "… {} violations in all ({}): {}; `orch status --json` lists each",
        violations.len(),
        suspects.join(", "),
        crate::flood::summarize(&paths, |p| p)
    ));
    lines
}

/// One line about a violation: what changed, who is suspected, what was done.
pub fn describe_violation(
    n: u32,
    change: &str,
    path: &str,
    suspects: &[crate::plan::TaskId],
    action: &str,
    saved: Option<&str>,
) -> String {
    let suspects: Vec<String> = suspects.iter().map(ToString::to_string).collect();
    let suspects = if suspects.is_empty() {
        "nobody running".to_string()
    } else {
        suspects.join(", ")
    };
    let saved = saved.map(|s| format!(" (saved: {s})")).unwrap_or_default();
    format!("#{n} {change} {path}, suspects: {suspects} → {action}{saved}")
}
