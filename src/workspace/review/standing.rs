//! Whether a worktree run's work reached the user: merged (by `orch merge`, or by hand with
//! git), unmerged, or never made; read from the journal and the branch as it is now.

use super::repo::Repo;
use crate::state::RunState;
use crate::workspace::WorkspaceInfo;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "standing", rename_all = "kebab-case")]
pub enum Standing {
    /// The run worked in the checkout: there is nothing to merge.
    InPlace,
    /// The run branch no longer exists.
    BranchGone,
    /// The branch has no commit of the run's own (no task was accepted, yet or at all).
    NoCommits,
    /// `orch merge` merged it into `into`; `since`: commits the branch gained after.
    Merged { into: String, since: usize },
    /// Its tip is in the user's `HEAD` (merged with git, not `orch merge`).
    InHead,
    /// `commits` of the run's own that no merge brought to the user.
    Unmerged { commits: usize },
}

impl Standing {
    /// Whether the branch holds work the user has not got: what `orch discard` keeps.
    pub fn has_unmerged_work(&self) -> bool {
        self.unmerged_commits() > 0
    }

    /// The branch's commits that no merge brought to the user.
    pub fn unmerged_commits(&self) -> usize {
        match self {
            Standing::Unmerged { commits } => *commits,
            Standing::Merged { since, .. } => *since,
            _ => 0,
        }
    }

    pub fn describe(&self) -> String {
        let commits = |n: usize| format!("{n} commit{}", if n == 1 { "" } else { "s" });
        match self {
            Standing::InPlace => "-".into(),
            Standing::BranchGone => "branch deleted".into(),
            Standing::NoCommits => "no commits".into(),
            Standing::Merged { into, since: 0 } => format!("merged into {into}"),
            Standing::Merged { into, since } => {
                format!("merged into {into}, {} since", commits(*since))
            }
            Standing::InHead => "merged (with git)".into(),
            Standing::Unmerged { commits: n } => format!("unmerged: {}", commits(*n)),
        }
    }
}

/// The standing of a run whose record says `ws` and whose journal gives `state`.
pub fn standing(
    repo: &Repo,
    ws: Option<&WorkspaceInfo>,
    state: &RunState,
) -> anyhow::Result<Standing> {
    let Some(ws) = ws else {
        return Ok(Standing::InPlace);
    };
    let Some(tip) = repo.branch_tip(&ws.branch)? else {
        return Ok(Standing::BranchGone);
    };
    let own = repo.commits_between(&ws.start, &tip)?;
    if own.is_empty() {
        return Ok(Standing::NoCommits);
    }
    if let Some(last) = state.merges.last() {
        // A merge recorded before the merged tip was (older runs): taken as the tip now.
        let merged_tip = last.tip.as_deref().unwrap_or(&tip);
        let since = if merged_tip == tip {
            0
        } else {
            repo.commits_between(merged_tip, &tip)?.len()
        };
        return Ok(Standing::Merged {
            into: last.into.clone(),
            since,
        });
    }
    if let Some(head) = repo.commit_of("HEAD")?
        && repo.is_ancestor(&tip, &head)?
    {
        return Ok(Standing::InHead);
    }
    Ok(Standing::Unmerged { commits: own.len() })
}
