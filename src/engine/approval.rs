//! Plan approval in the engine (see [`crate::approval`]). A valid plan, the planner's or
//! `--plan`'s, is held when the run asks for approval: it is written to the run's
//! `plan.json`, journaled (`PlanHeld`), shown as waves in the control window and told
//! (`Kind::PlanWaiting`), and nothing is dispatched. At every tick the engine answers the
//! `orch approve` requests: the plan file is checked again as it is then; a bad one is
//! refused with its problems (journaled, the plan still waits), a good one is approved and
//! accepted, and the run goes on exactly as with a plan accepted at once.
//!
//! A run resumed while its plan waits waits again: the held plan is in the journal, the
//! user's edits in the file.

use super::core::Engine;
use super::notices::About;
use crate::approval::{ApproveRequest, check_file, read_requests};
use crate::notify::Kind;
use crate::plan::Plan;
use crate::state::Event;

impl Engine {
    /// Whether a valid plan must wait for the user's approval before it is dispatched.
    pub(super) fn approval_asked(&self) -> bool {
        crate::approval::asked(&self.config, self.info.review)
            && self.state.approval.approved.is_none()
    }

    /// A valid plan that needs the user's approval: kept in `plan.json` for them to read
    /// and edit, journaled, told; nothing is dispatched.
    pub(super) fn hold_plan(&mut self, plan: Plan) -> anyhow::Result<()> {
        if !self.state.approval.waiting() {
            // The user's edits of an earlier hold are kept: only a new hold writes it.
            write_plan(&self.dir.plan(), &plan)?;
            self.record(Event::PlanHeld { plan })?;
        }
        self.tell_plan_waits();
        self.render();
        // A request written before this engine started (no engine read it) is answered now.
        self.answer_approvals()
    }

    fn tell_plan_waits(&mut self) {
        let tasks = self
            .state
            .approval
            .held
            .as_ref()
            .map_or(0, |p| p.tasks.len());
        let reason = format!(
            "a plan of {tasks} task(s) waits: {}",
            crate::approval::how_to_go_on(&self.dir, &self.info.run_id)
        );
        self.tell(About {
            kind: Kind::PlanWaiting,
            task: None,
            reason,
            outcome: None,
            percent: None,
        });
    }

    /// Answers each `orch approve` not answered yet, and removes its file. Only while a
    /// plan waits: a request that comes later is answered by the state of the run (the
    /// command says the plan was approved already).
    pub(super) fn answer_approvals(&mut self) -> anyhow::Result<()> {
        for (path, request) in read_requests(&self.dir) {
            if !self.state.approval.waiting() {
                // Approved by an earlier request: nothing left to answer.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let (id, feedback) = match request {
                Ok(ApproveRequest { id, feedback }) => (id, feedback),
                Err(e) => {
                    let id = path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    self.record(Event::ApprovalRefused {
                        id,
                        problems: vec![format!(
                            "the approve request {} cannot be read ({e}): run `orch approve` \
                             again",
                            path.display()
                        )],
                    })?;
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
            };
            if !self.state.approval.answered(&id) {
                match feedback {
                    Some(feedback) => self.replan(id, feedback)?,
                    None => self.answer(id)?,
                }
            }
            // Answered, and said in the journal: not read again.
            let _ = std::fs::remove_file(&path);
        }
        Ok(())
    }

    /// `orch tell planner`: the plan held is dropped and the planner plans again, its prompt
    /// carrying the plan it gave and the user's feedback on it.
    fn replan(&mut self, id: String, feedback: String) -> anyhow::Result<()> {
        use anyhow::Context as _;
        // Kept whole beside the journal, which holds no text of unbounded size.
        let file = format!("feedback/{id}.md");
        let path = self.dir.path().join(&file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, &feedback)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.record(Event::PlanRevisionAsked {
            id,
            file,
            bytes: feedback.len(),
        })?;
        self.start_replanning()
    }

    /// The planner's attempt for the feedback journaled last (`orch tell planner`): also at
    /// a resume, when the engine that journaled it died before starting it.
    pub(super) fn start_replanning(&mut self) -> anyhow::Result<()> {
        let file = self.state.approval.replan.clone().unwrap_or_default();
        let path = self.dir.path().join(&file);
        let feedback = match std::fs::read_to_string(&path) {
            Ok(feedback) => feedback,
            Err(e) => {
                let lost = format!(
                    "the feedback for the planner in {} cannot be read ({e}): it plans again \
                     without it; `orch tell planner` again once its plan waits",
                    path.display()
                );
                self.warn(crate::state::WarningKind::Unrecorded, lost);
                "(the user's feedback was lost: keep the plan's intent, and fix what you \
                 think is weakest)"
                    .to_string()
            }
        };
        let previous = self
            .state
            .approval
            .last_held
            .as_ref()
            .and_then(|plan| serde_json::to_string_pretty(plan).ok())
            .unwrap_or_default();
        self.planning_state.set_feedback(vec![format!(
            "The user reviewed your plan and wants it changed. Their words:\n\n{feedback}\n\n\
             The plan you gave (write the specs again where they must change):\n\n{previous}"
        )]);
        self.start_planning(self.state.planning_attempt() + 1)
    }

    /// Checks the plan file as it is now: approved and accepted, or refused with its
    /// problems.
    fn answer(&mut self, id: String) -> anyhow::Result<()> {
        match check_file(&self.dir.plan(), &self.work.root, &self.config) {
            Err(problems) => {
                self.record(Event::ApprovalRefused { id, problems })?;
                self.render();
                Ok(())
            }
            Ok(plan) => {
                let edited = self.state.approval.held.as_ref() != Some(&plan);
                self.record(Event::PlanApproved { id, edited })?;
                self.accept_plan(plan)
            }
        }
    }
}

/// Writes `plan` to `file` for the user to read and edit, whole or not at all.
fn write_plan(file: &std::path::Path, plan: &Plan) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let json = serde_json::to_string_pretty(plan).context("failed to serialize the plan")?;
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, json + "\n").with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("cannot write {}", file.display()))
}
