//! The engine's warnings: what went wrong without stopping the run, journaled (`warning`) so
//! that `orch status`, the report and the control window show it for the whole run, rather
//! than a line on a screen redrawn a second later.
//!
//! Each says what it costs in one of a few kinds, so that a reader (a script on `orch status
//! --json`, a test) can tell a run whose project was not fully policed from one whose record
//! is incomplete without parsing the words.

use serde::{Deserialize, Serialize};

/// What a warning costs the run.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Part of the project (or of its `.git/`) is not policed as the run promises: a watch
    /// failed or could not be set, a sweep could not look, a copy to judge changes against
    /// could not be kept. A change there may be found late (by a later sweep) or judged
    /// against less than it should.
    Unpoliced,
    /// Part of the run's record was not written or was lost: the report, lines of the journal
    /// (torn, unreadable), the run directory deleted under the engine, a full disk.
    Unrecorded,
    /// The user may not have been told something: a `notify` hook failed, hung or could not
    /// start, a desktop notification could not be shown (see [`crate::notify`]).
    Notify,
    /// The budget may not hold as set, or a raise of it was not applied: agents that report
    /// no cost run under a budget in USD alone, a raise request could not be read.
    Budget,
    /// An `orch retry` request was not applied: unreadable, or its task was not failed by the
    /// time the engine read it.
    Retry,
    /// An `orch tell` request was not applied: unreadable, or its task was no longer in a
    /// state to be told by the time the engine read it.
    Tell,
    /// The engine's hold on its agents' processes is weaker, or it acted on processes of its
    /// own accord: tmux could not be asked about panes, the pane-died hook or an exit record's
    /// watch could not be set, what agents left running could not be looked for, agent
    /// processes nobody continues were stopped.
    Agents,
    /// Where the run works is not what the settings asked: a run meant for a branch of its
    /// own works in place (not a git repository, no commit yet); a commit on the run's branch
    /// could not be made.
    Workspace,
    /// A kind this orch does not know (journaled by a newer one): shown, never dropped.
    #[serde(other)]
    Other,
}

impl WarningKind {
    pub fn name(self) -> &'static str {
        match self {
            WarningKind::Unpoliced => "unpoliced",
            WarningKind::Unrecorded => "unrecorded",
            WarningKind::Notify => "notify",
            WarningKind::Budget => "budget",
            WarningKind::Retry => "retry",
            WarningKind::Tell => "tell",
            WarningKind::Agents => "agents",
            WarningKind::Workspace => "workspace",
            WarningKind::Other => "other",
        }
    }
}

impl std::fmt::Display for WarningKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One warning of the run, as `orch status --json` and `report.json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WarningRecord {
    pub kind: WarningKind,
    /// What happened and what it costs, in a sentence or two.
    pub message: String,
    /// When it was journaled (ms since the epoch).
    pub at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_as_journaled_and_an_unknown_one_is_kept() {
        for kind in [
            WarningKind::Unpoliced,
            WarningKind::Unrecorded,
            WarningKind::Notify,
            WarningKind::Budget,
            WarningKind::Retry,
            WarningKind::Tell,
            WarningKind::Agents,
            WarningKind::Workspace,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            assert_eq!(serde_json::from_str::<WarningKind>(&json).unwrap(), kind);
        }
        let newer: WarningKind = serde_json::from_str("\"weather\"").unwrap();
        assert_eq!(newer, WarningKind::Other);
    }
}
