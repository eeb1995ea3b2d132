//! A run on a branch: the engine's commits. The plan's specs once the plan is accepted, then
//! each task the judge passed, as one commit of exactly its owned files, made (and journaled:
//! `specs_committed`, `task_committed`) before the task is done, so before any task that
//! depends on it launches. A task that fails for good leaves no commit; its last attempt's
//! files are copied into the run directory (`failed/<task>/`). A commit made when the engine
//! died before journaling it is found on resume by its trailers and journaled then: nothing
//! committed is made again.

use super::committer::{Done, How, Job};
use super::core::Engine;
use crate::paths::ProjectPath;
use crate::plan::TaskId;
use crate::state::{Event, TaskStatus, WarningKind};
use crate::workspace::{Committer, TaskSummary, specs_message, task_message};

impl Engine {
    /// The run's committer; `None` for a run in place.
    fn committer(&self) -> Option<Committer> {
        let ws = self.info.workspace.as_ref()?;
        Some(Committer::new(ws, self.dir.path()))
    }

    /// After a commit of the engine's own: the guard takes the branch's new tip as no agent's
    /// doing, and the worktree's index follows the tip (under `isolation: task`, its files
    /// too: the commit was made from the task's own worktree).
    fn after_commit(&mut self, committer: &Committer) {
        if let Ok(tip) = committer.tip() {
            self.commits.know([tip.as_str()]);
        }
        self.take_own_ref();
        if self.isolated() {
            self.update_run_tree(); // see isolation.rs
        } else if let Err(e) = committer.reset_index() {
            let message = format!(
                "cannot reset the worktree's index to the run branch's tip ({e:#}): `git \
                 status` in the worktree may show committed files as changed"
            );
            self.warn(WarningKind::Workspace, message);
        }
    }

    /// The guard takes the run branch's tip as it is now as the engine's doing.
    fn take_own_ref(&mut self) {
        if let Some(guard) = self.watching.git_guard_mut()
            && let Err(e) = guard.accept_own_ref()
        {
            let message = format!(
                "cannot take the run branch's new tip into the copy of .git/'s guarded files \
                 ({e}): it may be reported as a change"
            );
            self.warn(WarningKind::Unpoliced, message);
        }
    }

    /// Whether the run branch points at a commit the engine made (see committer.rs).
    pub(super) fn own_ref_is_ours(&self) -> bool {
        self.watching
            .git_guard()
            .and_then(crate::watch::GitGuard::own_ref_value)
            .is_some_and(|tip| self.commits.is_ours(&tip))
    }

    /// Commits the plan's specs (when the run is on a branch and they changed).
    pub(super) fn commit_specs(&mut self) -> anyhow::Result<()> {
        let Some(committer) = self.committer() else {
            return Ok(());
        };
        if self.state.specs_commit.is_some() {
            return Ok(());
        }
        let files = self.spec_files();
        let message = specs_message(&self.info.run_id, &files);
        match committer.commit(&files, &message, true) {
            Ok(Some(commit)) => {
                self.record(Event::SpecsCommitted { commit, files })?;
                self.after_commit(&committer);
            }
            Ok(None) => {}
            Err(e) => {
                let message = format!(
                    "cannot commit the plan's specs on the run's branch ({e:#}): they are in \
                     the worktree, in no commit of the run"
                );
                self.warn(WarningKind::Workspace, message);
            }
        }
        Ok(())
    }

    /// Asks for the commit of task `id`, which the judge passed (exactly its owned files), off
    /// the loop (see committer.rs): true when asked, and the task is done once it comes back
    /// (`on_committed`); false when there is none to make (a run in place, a task committed
    /// already).
    pub(super) fn submit_commit(&mut self, id: &TaskId) -> anyhow::Result<bool> {
        let Some(committer) = self.committer() else {
            return Ok(false);
        };
        let Some(task) = self.state.tasks.get(id).cloned() else {
            return Ok(false);
        };
        if task.commit.is_some() || self.commits.is_pending(id) {
            return Ok(task.commit.is_none());
        }
        let usage = crate::progress::of_task(&self.dir, &task).usage;
        let verdict = self.state.verdicts.get(id).map_or_else(
            || "pass".into(),
            |v| match v.reason.trim() {
                "" => v.verdict.clone(),
                reason => format!("{} ({})", v.verdict, first_line(reason)),
            },
        );
        let message = task_message(
            &self.info.run_id,
            &TaskSummary {
                id: id.as_str(),
                agent: &task.agent,
                text: &task.task_text,
                attempts: task.attempts,
                verdict,
                tokens: usage.as_ref().map(|u| u.input_tokens + u.output_tokens),
                cost_usd: usage.as_ref().and_then(|u| u.cost_usd),
            },
        );
        // Under `isolation: task`, taken from the task's own worktree (see isolation.rs).
        let how = match self.isolated_job(id) {
            Some(how) => how,
            None if self.isolated() => {
                let why = "passed, but its worktree is not on record: nothing to commit";
                self.fail_task(id, why.to_string())?;
                return Ok(true);
            }
            None => How::Shared(committer),
        };
        // The branch as the journal knows it: the engine's last commit, or the run's start.
        let base = self.state.commits.last().map_or_else(
            || {
                self.info
                    .workspace
                    .as_ref()
                    .map(|w| w.start.clone())
                    .unwrap_or_default()
            },
            |c| c.commit.clone(),
        );
        self.commits.submit(Job {
            task: id.clone(),
            attempt: task.attempts,
            message,
            files: task.files.clone(),
            how,
            base,
            judged: self.dir.baseline(),
        });
        Ok(true)
    }

    /// A commit asked for by `submit_commit` came back: journaled, then the task is done (a
    /// commit git could not make fails it).
    pub(super) fn on_committed(&mut self, done: Done) -> anyhow::Result<()> {
        self.commits.settled(&done.task);
        let id = done.task.clone();
        // (A sync that went wrong is warned of; the run's last sweep compares the tree.)
        if self.isolated()
            && done.troubles.is_empty()
            && self.state.phase == crate::state::Phase::Running
        {
            self.look_after_sync(&id)?; // see ownership.rs
        }
        // The run's own ref moved to a commit the engine made: no agent's doing (see
        // `check_git_meta`); moved anywhere else, it is left for the guard to report.
        if self.own_ref_is_ours() {
            self.take_own_ref();
        }
        // Only for the attempt that passed, in a run still going: otherwise (stopped
        // meanwhile) a resume finds the commit by its trailers.
        let current = self.state.tasks.get(&id).is_some_and(|t| {
            t.state == TaskStatus::Running && t.attempts == done.attempt && t.commit.is_none()
        });
        if !current || self.state.is_finished() {
            return Ok(());
        }
        let commit = match done.commit {
            Ok(commit) => commit,
            Err(why) => {
                return self.fail_task(
                    &id,
                    format!(
                        "passed, but its files could not be committed on the run's branch: {why}"
                    ),
                );
            }
        };
        if let Some(commit) = commit {
            let files = self
                .state
                .tasks
                .get(&id)
                .map(|t| t.files.clone())
                .unwrap_or_default();
            self.record(Event::TaskCommitted {
                task: id.clone(),
                attempt: done.attempt,
                commit,
                files,
            })?;
        }
        self.collected(&id, &done.findings, &done.saved, done.removed)?; // see isolation.rs
        for trouble in done.troubles {
            self.warn(WarningKind::Workspace, trouble);
        }
        self.record(Event::TaskDone {
            task: id,
            attempt: done.attempt,
        })?;
        self.dispatch()
    }

    /// A task failed for good on a branch: its last attempt's owned files, as they are in the
    /// worktree, are copied into the run directory (`failed/<task>/`), where they stay
    /// whatever becomes of the worktree.
    pub(super) fn keep_failed_files(&mut self, id: &TaskId) {
        if self.info.workspace.is_none() {
            return;
        }
        let Some(files) = self.state.tasks.get(id).map(|t| t.files.clone()) else {
            return;
        };
        let dest = self.dir.path().join("failed").join(id.as_str());
        let root = self.task_root(id);
        for file in &files {
            if crate::paths::link_out(&root, file).is_some() {
                continue;
            }
            if let Err(e) = crate::snapshot::save_copy(&root, file, &dest) {
                let message = format!(
                    "cannot keep a copy of {file} as failed task {id} left it ({e:#}); it is \
                     still in the worktree"
                );
                self.warn(WarningKind::Unrecorded, message);
            }
        }
    }

    /// On resume: commits on the run's branch the journal does not hold (the engine died
    /// between making and journaling them) are found by their trailers and journaled; a task
    /// whose commit is there is done, and the guard takes the branch as it is when its tip
    /// is the run's own last commit.
    pub(super) fn recover_commits(&mut self) -> anyhow::Result<()> {
        let Some(committer) = self.committer() else {
            return Ok(());
        };
        let found = match committer.commits() {
            Ok(found) => found,
            Err(e) => {
                let message =
                    format!("cannot read the run's branch ({e:#}): commits are not checked");
                self.warn(WarningKind::Workspace, message);
                return Ok(());
            }
        };
        let run_id = self.info.run_id.clone();
        for commit in &found {
            if commit.trailer("Orch-Run") != Some(run_id.as_str())
                || self.state.commits.iter().any(|c| c.commit == commit.commit)
            {
                continue;
            }
            let files: Vec<ProjectPath> = committer
                .files_of(&commit.commit)
                .unwrap_or_default()
                .iter()
                .filter_map(|f| ProjectPath::new(f).ok())
                .collect();
            if commit.trailer("Orch-Commit") == Some("specs") {
                self.record(Event::SpecsCommitted {
                    commit: commit.commit.clone(),
                    files,
                })?;
            } else if let Some(task) = commit.trailer("Orch-Task") {
                let Some(state) = self.state.tasks.values().find(|t| t.id.as_str() == task) else {
                    continue;
                };
                let (task, attempt, files) =
                    (state.id.clone(), state.attempts, state.files.clone());
                self.record(Event::TaskCommitted {
                    task,
                    attempt,
                    commit: commit.commit.clone(),
                    files,
                })?;
            }
        }
        // Committed is accepted: a task whose commit is there is done, never run again.
        let committed: Vec<(TaskId, u32)> = self
            .state
            .tasks
            .values()
            .filter(|t| t.commit.is_some() && t.state != TaskStatus::Done)
            .map(|t| (t.id.clone(), t.attempts))
            .collect();
        for (task, attempt) in committed {
            self.record(Event::TaskDone { task, attempt })?;
        }
        let ours = self
            .state
            .commits
            .last()
            .map_or(self.info.workspace.as_ref().map(|w| w.start.clone()), |c| {
                Some(c.commit.clone())
            });
        if committer.tip().ok() == ours {
            self.after_commit(&committer);
        }
        Ok(())
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    line.chars().take(120).collect()
}
