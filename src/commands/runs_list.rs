//! `orch runs [--json]`: every run of the project, oldest first: its state, when it started,
//! its request's first line, where it worked, and for a worktree run whether its work was
//! merged, discarded, or waits on its branch.

use serde::Serialize;

use super::Global;
use crate::error::EXIT_OK;
use crate::state::{self, RunDir, RunInfo, RunState};
use crate::workspace::review::{self, Repo, Standing};

/// The widest a request's first line gets in the table.
const REQUEST_WIDTH: usize = 50;

#[derive(Debug, Serialize)]
struct Row {
    run_id: String,
    /// starting | planning | running | succeeded | failed | stopped | interrupted
    state: String,
    live: bool,
    created_at_ms: u64,
    request: String,
    /// worktree | in-place
    workspace: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    branch: Option<String>,
    #[serde(flatten)]
    standing: Standing,
    discarded: bool,
    /// Why the run could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

pub(crate) fn run(global: &Global, json: bool) -> anyhow::Result<u8> {
    let project = global.project()?;
    let state_dir = project.state_dir();
    let repo = Repo::new(&project.root);
    let live: Vec<String> = state::live_runs(&state_dir)
        .into_iter()
        .map(|holder| holder.run_id)
        .collect();
    let mut ids: Vec<String> = std::fs::read_dir(state_dir.join("runs"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|id| state::is_run_id(id))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    let rows: Vec<Row> = ids
        .iter()
        .map(|id| row(&repo, &RunDir::new(&state_dir, id), live.contains(id)))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(EXIT_OK);
    }
    if rows.is_empty() {
        println!(
            "No run in {} yet: start one with `orch up \"what to build\"`.",
            project.root.display()
        );
        return Ok(EXIT_OK);
    }
    print!("{}", table(&rows));
    Ok(EXIT_OK)
}

fn row(repo: &Repo, dir: &RunDir, live: bool) -> Row {
    let mut row = Row {
        run_id: dir.id().to_string(),
        state: "?".into(),
        live,
        created_at_ms: 0,
        request: String::new(),
        workspace: "?",
        branch: None,
        standing: Standing::InPlace,
        discarded: false,
        problem: None,
    };
    let info = match RunInfo::read(&dir.run_json()) {
        Ok(info) => info,
        Err(e) => {
            row.problem = Some(format!("{e:#}"));
            return row;
        }
    };
    let state = match state::read_journal(&dir.events()) {
        Ok(journal) => RunState::replay(&journal.records),
        Err(e) => {
            row.problem = Some(format!("{e:#}"));
            RunState::default()
        }
    };
    // What the run waits for, where it waits for the user: the phase alone would say
    // `planning` for a plan held for approval and `running` for a run held by its budget.
    row.state = if state.approval.waiting() {
        "awaiting approval".to_string()
    } else if !state.is_finished() && state.budget.reached() {
        "budget reached".to_string()
    } else {
        state.phase.name().to_string()
    };
    row.created_at_ms = info.created_at_ms;
    row.request = crate::format::first_line(&info.request);
    row.workspace = if info.workspace.is_some() {
        "worktree"
    } else {
        "in-place"
    };
    row.branch = info.workspace.as_ref().map(|ws| ws.branch.clone());
    row.discarded = state.discarded.is_some();
    match review::standing(repo, info.workspace.as_ref(), &state) {
        Ok(standing) => row.standing = standing,
        Err(e) => row.problem = Some(format!("{e:#}")),
    }
    row
}

fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let mut merge = r.standing.describe();
            if r.discarded {
                merge = match &r.standing {
                    Standing::BranchGone => "discarded".into(),
                    other => format!("discarded, branch kept ({})", other.describe()),
                };
            }
            if let Some(problem) = &r.problem {
                merge = format!("unreadable: {problem}");
            }
            [
                r.run_id.clone(),
                if r.live {
                    format!("{} (live)", r.state)
                } else {
                    r.state.clone()
                },
                when(r.created_at_ms),
                r.branch.clone().unwrap_or_else(|| r.workspace.to_string()),
                merge,
                crate::format::clip(&r.request, REQUEST_WIDTH),
            ]
        })
        .collect();
    let header = ["RUN", "STATE", "STARTED", "BRANCH", "MERGE", "REQUEST"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `2026-12-02 16:21` (UTC), or `?` for a run that did not say.
fn when(ms: u64) -> String {
    if ms == 0 {
        return "?".into();
    }
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!("{} {} UTC", &text[..10], &text[11..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_to_the_minute() {
        assert_eq!(when(0), "?");
        assert_eq!(when(1_764_692_496_000), "2025-12-02 16:21 UTC");
    }
}
