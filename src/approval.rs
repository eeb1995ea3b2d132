//! Plan approval: with `orch up --review` or `plan_approval: ask`, a valid plan waits for the
//! user before anything is dispatched. The plan waits in the run directory's `plan.json`,
//! which the user may edit; `orch approve` is a request file in the run directory
//! (`approve/<id>.json`) that the live engine answers (journaled, by the request's id): it
//! validates the plan file again, as it is then, and either dispatches it or lists its
//! problems and goes on waiting. A request no engine read is answered by the next (`orch
//! resume`). `orch tell planner "..."` goes the same way, with the user's feedback: the plan
//! held is dropped and the planner plans again with it. The engine's side is `engine/approval.rs`; the command's `commands/approve.rs`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::plan::{self, Plan};
use crate::state::{RunDir, RunState};

/// An `orch approve` (or, with `feedback`, an `orch tell planner`: re-plan with it), as
/// written into the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApproveRequest {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// Where approve requests wait for an engine.
pub fn requests_dir(dir: &RunDir) -> PathBuf {
    crate::state::requests::dir(dir, "approve")
}

/// Writes an approve request for the run in `dir` (atomically: an engine never reads half).
pub fn request(dir: &RunDir, request: &ApproveRequest) -> anyhow::Result<PathBuf> {
    crate::state::requests::write(dir, "approve", &request.id, request)
}

/// The approve requests in `dir`, oldest first; an unreadable one is an error of its own,
/// for the engine to report.
pub fn read_requests(dir: &RunDir) -> Vec<(PathBuf, Result<ApproveRequest, String>)> {
    crate::state::requests::read(dir, "approve")
}

/// Whether a valid plan of a run with `config` (started `--review` or not) waits for
/// approval.
pub fn asked(config: &Config, review: bool) -> bool {
    review || config.plan_approval == crate::config::PlanApproval::Ask
}

/// Reads the plan file `file` as the user left it and checks it as a plan is checked when
/// the planner gives it: its shape, its tasks, agents and files against the tree in `root`,
/// and its specs written. Returns the plan, or every problem found.
pub fn check_file(file: &Path, root: &Path, config: &Config) -> Result<Plan, Vec<String>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            return Err(vec![format!(
                "cannot read the plan file {} ({e}): write the plan there as JSON",
                file.display()
            )]);
        }
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(e) => {
            return Err(vec![format!(
                "{} is not valid JSON ({e}): fix it (one JSON object with `specs` and `tasks`)",
                file.display()
            )]);
        }
    };
    let plan = plan::parse_and_validate(&value, root, &config.roles.workers)
        .map_err(|problems| problems.into_iter().map(|p| p.message).collect::<Vec<_>>())?;
    let missing = crate::planner::missing_specs(root, &plan);
    if !missing.is_empty() {
        return Err(missing);
    }
    Ok(plan)
}

/// What to do with a plan that waits, for a person: approve, edit and approve, or stop.
pub fn how_to_go_on(dir: &RunDir, run_id: &str) -> String {
    let orch = crate::invocation::orch();
    format!(
        "the plan waits for your approval: `{orch} approve --run {run_id}` dispatches it; or \
         edit {} and then approve (it is checked again); `{orch} down --run {run_id}` stops \
         the run",
        dir.plan().display()
    )
}

/// A run's plan approval as `orch status --json` shows it (only for a run that held a plan).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    /// Whether the plan waits for `orch approve` now.
    pub waiting: bool,
    /// The file to edit before approving.
    pub plan_file: PathBuf,
    /// The plan held, as waves of task ids (each wave runs together, after the one before).
    pub waves: Vec<Vec<String>>,
    /// Each `orch approve` refused, with the plan file's problems.
    pub refusals: Vec<crate::state::ApprovalRefusal>,
    /// How many times the planner planned again with the user's feedback (`orch tell
    /// planner`).
    pub replans: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved: Option<crate::state::Approved>,
    /// What to do next, while the plan waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl View {
    /// None for a run that never held a plan.
    pub fn of(dir: &RunDir, state: &RunState, run_id: &str) -> Option<View> {
        let record = &state.approval;
        let plan = record
            .held
            .as_ref()
            .or(state.plan())
            .or(record.last_held.as_ref())?;
        record.held_at_ms?; // the run never held a plan
        Some(View {
            waiting: record.waiting(),
            plan_file: dir.plan(),
            waves: plan::waves(plan)
                .into_iter()
                .map(|wave| wave.iter().map(ToString::to_string).collect())
                .collect(),
            refusals: record.refusals.clone(),
            replans: record.revisions.len(),
            approved: record.approved.clone(),
            next: record.waiting().then(|| how_to_go_on(dir, run_id)),
        })
    }
}

impl View {
    /// One line for the report: approved (as edited) after how many refusals, or waiting.
    pub fn line(&self) -> String {
        let mut refused = match self.replans {
            0 => String::new(),
            n => format!(", after {n} re-plan(s) with your feedback"),
        };
        if !self.refusals.is_empty() {
            refused.push_str(&format!(
                ", after {} approval(s) refused for the plan file's problems",
                self.refusals.len()
            ));
        }
        match &self.approved {
            Some(a) if a.edited => format!("approved as edited by the user{refused}"),
            Some(_) => format!("approved as planned{refused}"),
            None => format!("never approved (the run ended while its plan waited){refused}"),
        }
    }
}

/// For a person, while the plan waits (the control window, `orch status`): the plan as
/// waves, the problems of the latest refused approval, and what to do.
pub fn waiting_text(dir: &RunDir, state: &RunState, run_id: &str) -> Option<String> {
    let plan = state.approval.held.as_ref()?;
    let mut out = format!(
        "PLAN WAITING FOR YOUR APPROVAL (nothing runs until then)\n{}",
        crate::commands::output::plan_summary(plan)
    );
    if let Some(refused) = state.approval.refusals.last() {
        out.push_str(&format!(
            "the latest `orch approve` was refused: {} has problems:\n",
            dir.plan().display()
        ));
        for problem in &refused.problems {
            out.push_str(&format!("  - {problem}\n"));
        }
    }
    out.push_str(&how_to_go_on(dir, run_id));
    out.push('\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_read_back_and_a_bad_one_said_so() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path(), "r1");
        std::fs::create_dir_all(dir.path()).unwrap();
        let r = ApproveRequest {
            id: "1-a".into(),
            feedback: Some("fewer tasks\n`quoted`".into()),
        };
        request(&dir, &r).unwrap();
        std::fs::write(requests_dir(&dir).join("2-b.json"), "{").unwrap();
        let read = read_requests(&dir);
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].1.as_ref().unwrap(), &r);
        assert!(read[1].1.is_err());
    }
}
