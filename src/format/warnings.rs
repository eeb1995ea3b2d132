//! The engines' warnings in a few lines: each with its kind, the same warning said again
//! counted rather than repeated, and for many only the latest (the journal and `orch status
//! --json` keep each).

use crate::state::{WarningKind, WarningRecord};

/// One line per distinct warning (kind and message), in the order they were first raised,
/// with how many times it was raised when more than once; at most `max` of them (the latest),
/// after a line counting those left out.
pub fn warning_lines(warnings: &[WarningRecord], max: usize) -> Vec<String> {
    let mut distinct: Vec<(WarningKind, &str, usize)> = Vec::new();
    for w in warnings {
        match distinct
            .iter_mut()
            .find(|(kind, message, _)| *kind == w.kind && *message == w.message)
        {
            Some((_, _, n)) => *n += 1,
            None => distinct.push((w.kind, &w.message, 1)),
        }
    }
    let left_out = distinct.len().saturating_sub(max.max(1));
    let mut lines = Vec::new();
    if left_out > 0 {
        lines.push(format!(
            "… {left_out} earlier warning(s) not shown; `orch status --json` lists each"
        ));
    }
    for (kind, message, n) in &distinct[left_out..] {
        let times = if *n > 1 {
            format!(" ({n} times)")
        } else {
            String::new()
        };
        // One warning, one line: a multi-line message is joined.
        let message = message
            .split('\n')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(format!("{kind}: {message}{times}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(kind: WarningKind, message: &str) -> WarningRecord {
        WarningRecord {
            kind,
            message: message.into(),
            at_ms: 1,
        }
    }

    #[test]
    fn each_warning_says_its_kind_once_with_how_often() {
        let warnings = [
            w(WarningKind::Unpoliced, "cannot watch src/\n(too many)"),
            w(WarningKind::Agents, "could not list the panes"),
            w(WarningKind::Agents, "could not list the panes"),
            w(WarningKind::Unrecorded, "could not write the report"),
        ];
        assert_eq!(
            warning_lines(&warnings, 10),
            [
                "unpoliced: cannot watch src/ (too many)",
                "agents: could not list the panes (2 times)",
                "unrecorded: could not write the report",
            ]
        );
        assert_eq!(
            warning_lines(&warnings, 2),
            [
                "… 1 earlier warning(s) not shown; `orch status --json` lists each",
                "agents: could not list the panes (2 times)",
                "unrecorded: could not write the report",
            ]
        );
        assert!(warning_lines(&[], 5).is_empty());
    }
}
