//! After a task's agent exits: its gates (lint and tests run in the background, off the
//! loop), then the judge agent's verdict on the tasks whose gates passed, then done — or back
//! to the agent with the reasons, with the oracle's advice once it has failed twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;

use super::core::{Engine, GateDone, Live};
use crate::config::AgentKind;
use crate::judge::{self, GateOutcome};
use crate::plan::TaskId;
use crate::prompt::{self, Context, JudgedGate, JudgedTask, Role};
use crate::state::{Event, TaskStatus};
use crate::workers::{self, AgentCall};

/// The most of a spec shown to the judge; it can read the rest in the project.
const SPEC_EXCERPT: usize = 20_000;

impl Engine {
    /// The agent exited 0 with its files written: check the task.
    pub(super) fn start_checks(&mut self, id: &TaskId, attempt: u32) -> anyhow::Result<()> {
        // .git/ is watched apart from the tree (no barrier covers it): look now.
        self.check_git_meta()?;
        let task = self.state.tasks.get(id).context("no such task")?.clone();
        let root = self.project.root.clone();
        let gates = &self.config.gates;
        let first_writes: BTreeMap<String, u64> = task
            .files
            .iter()
            .filter_map(|f| self.state.first_writes.get(f).map(|t| (f.clone(), *t)))
            .collect();
        let specs = self
            .plan
            .as_ref()
            .map(|p| p.spec_files())
            .unwrap_or_default();
        let mut outcomes = vec![
            judge::spec_gate(&root, &specs),
            judge::test_file_gate(&root, &task.files, &gates.test_pattern),
            judge::tdd_gate(&task.files, &gates.test_pattern, &first_writes, gates.tdd),
            judge::violation_gate(
                Some(id),
                &self.state.violations,
                task.started_at_ms.unwrap_or(0),
                &self
                    .dir
                    .gates()
                    .join(format!("{}-{attempt}-ownership.txt", id.as_str())),
            ),
        ];
        let lint = gates.lint.clone();
        let test = gates.test.clone();
        let timeout = self.config.limits.task_timeout;
        let logs = self.dir.path().join("gates");
        let tx = self.gate_tx.clone();
        let task_id = id.clone();
        self.checks_running += 1;
        tokio::spawn(async move {
            let name = format!("{}-{attempt}", task_id.as_str());
            for (gate, command) in [("lint", lint), ("test", test)] {
                let log = logs.join(format!("{name}-{gate}.log"));
                outcomes.push(
                    judge::command_gate(gate, command.as_deref(), &root, &log, timeout).await,
                );
            }
            let _ = tx.send(GateDone {
                task: Some(task_id),
                attempt,
                outcomes,
            });
        });
        Ok(())
    }

    pub(super) fn on_gates_done(&mut self, done: GateDone) -> anyhow::Result<()> {
        self.checks_running = self.checks_running.saturating_sub(1);
        let Some(id) = done.task.clone() else {
            return self.on_run_gates_done(done);
        };
        let current = self
            .state
            .tasks
            .get(&id)
            .is_some_and(|t| t.state == TaskStatus::Running && t.attempts == done.attempt);
        if !current {
            return Ok(());
        }
        let command_failed = done
            .outcomes
            .iter()
            .any(|o| o.failed() && matches!(o.gate, "lint" | "test"));
        let others_busy = !self.live.is_empty() || self.checks_running > 0;
        if command_failed && others_busy && self.rechecked.insert((id.clone(), done.attempt)) {
            // Lint and tests see the whole project, other agents' half-done work included:
            // a failure seen while others work is checked again once they are idle.
            self.parked.push(id);
            return Ok(());
        }
        self.record_gates(Some(&id), done.attempt, &done.outcomes)?;
        let failed: Vec<String> = done
            .outcomes
            .iter()
            .filter(|o| o.failed())
            .map(|o| self.describe_failure(o))
            .collect();
        if failed.is_empty() {
            self.judge_queue.push(id);
            self.maybe_start_judge()?;
        } else {
            self.refuse_task(&id, failed)?;
        }
        self.dispatch()
    }

    fn describe_failure(&self, o: &GateOutcome) -> String {
        let log = o
            .log
            .as_ref()
            .map(|l| format!(" (full output: {})", self.project.display(l)))
            .unwrap_or_default();
        format!("gate `{}` failed: {}{log}", o.gate, o.detail)
    }

    pub(super) fn record_gates(
        &mut self,
        task: Option<&TaskId>,
        attempt: u32,
        outcomes: &[GateOutcome],
    ) -> anyhow::Result<()> {
        // One group commit for all of them, not a sync each (see Engine::record_all).
        let events = outcomes
            .iter()
            .map(|o| Event::GateChecked {
                task: task.cloned(),
                attempt,
                gate: o.gate.to_string(),
                status: o.status.name().to_string(),
                detail: o.detail.clone(),
                log: o.log.as_ref().map(|l| self.project.display(l).to_string()),
            })
            .collect();
        self.record_all(events)
    }

    /// Parked checks run again once no agent works: the project is quiet.
    pub(super) fn recheck_parked(&mut self) -> anyhow::Result<()> {
        if !self.live.is_empty() || self.checks_running > 0 || self.parked.is_empty() {
            return Ok(());
        }
        for id in std::mem::take(&mut self.parked) {
            let attempt = self.state.tasks.get(&id).map(|t| t.attempts).unwrap_or(0);
            self.start_checks(&id, attempt)?;
        }
        Ok(())
    }

    /// Whether new agents must wait: rechecks want a quiet project.
    pub(super) fn holding_for_rechecks(&self) -> bool {
        !self.parked.is_empty()
            || (self.checks_running > 0 && !self.rechecked.is_empty() && self.live.is_empty())
    }

    /// A failed check: another attempt with the reasons, while attempts are left.
    pub(super) fn refuse_task(&mut self, id: &TaskId, reasons: Vec<String>) -> anyhow::Result<()> {
        let attempt = self.state.tasks.get(id).map(|t| t.attempts).unwrap_or(0);
        if attempt > self.config.limits.retries {
            let first = reasons
                .first()
                .map(|r| r.lines().next().unwrap_or(""))
                .unwrap_or("");
            return self.fail_task(
                id,
                format!("refused after {attempt} attempt(s); last: {first}"),
            );
        }
        if attempt >= 2 && self.config.roles.oracle.is_some() {
            return self.start_oracle(id, attempt, reasons);
        }
        self.record(Event::TaskRequeued {
            task: id.clone(),
            attempt,
            reasons,
        })?;
        Ok(())
    }

    /// Asks for the judge to be started on the queued tasks; like `dispatch`, the loop does
    /// it between events (`Engine::launch_step`).
    pub(super) fn maybe_start_judge(&mut self) -> anyhow::Result<()> {
        self.launch_wanted = true;
        Ok(())
    }

    /// Starts the judge on the queued tasks unless it is busy; whether it started.
    pub(super) fn start_judge_now(&mut self) -> anyhow::Result<bool> {
        if self.judge.is_some() || self.judge_queue.is_empty() {
            return Ok(false);
        }
        let tasks = std::mem::take(&mut self.judge_queue);
        self.judge_tries = 0;
        self.launch_judge(tasks, vec![])?;
        Ok(true)
    }

    fn launch_judge(&mut self, tasks: Vec<TaskId>, feedback: Vec<String>) -> anyhow::Result<()> {
        self.judge_attempts += 1;
        self.judge_tries += 1;
        let attempt = self.judge_attempts;
        let dir = self.dir.path().join("judge").join(attempt.to_string());
        let specs: Vec<(String, String)> = self
            .plan
            .as_ref()
            .map(|p| p.spec_files())
            .unwrap_or_default()
            .into_iter()
            .map(|s| {
                let mut text =
                    std::fs::read_to_string(self.project.root.join(&s)).unwrap_or_default();
                if text.len() > SPEC_EXCERPT {
                    let cut = (0..=SPEC_EXCERPT)
                        .rev()
                        .find(|i| text.is_char_boundary(*i))
                        .unwrap_or(0);
                    text.truncate(cut);
                    text.push_str("\n[…the rest is in the file]");
                }
                (s, text)
            })
            .collect();
        let plan_json = serde_json::to_string_pretty(&self.plan).unwrap_or_default();
        let judged: Vec<JudgedTask> = tasks
            .iter()
            .filter_map(|id| self.state.tasks.get(id))
            .map(|t| JudgedTask {
                id: t.id.clone(),
                agent: t.agent.clone(),
                task: t.task_text.clone(),
                files: judge::diffstat(&self.project.root, self.snapshot.as_ref(), &t.files)
                    .into_iter()
                    .map(|f| format!("{} (+{} -{}, {})", f.path, f.added, f.removed, f.change))
                    .collect(),
                gates: self
                    .state
                    .gates
                    .iter()
                    .filter(|g| g.task.as_ref() == Some(&t.id) && g.attempt == t.attempts)
                    .map(|g| JudgedGate {
                        gate: g.gate.clone(),
                        status: g.status.clone(),
                        detail: g.detail.clone(),
                    })
                    .collect(),
            })
            .collect();
        let ctx = self.role_context(Role::Judge, None, attempt, feedback);
        let text = prompt::judge_prompt(&ctx, &specs, &plan_json, &judged);
        let name = self.config.roles.judge.clone();
        self.record(Event::JudgeStarted {
            attempt,
            tasks: tasks.clone(),
        })?;
        // One judge window at a time: the previous one's output is in its log.
        if let Some(previous) = self.last_judge_pane.take() {
            let _ = self.tmux.kill_pane(&previous);
        }
        let (live, pane) =
            self.launch_role_agent(&name, Role::Judge, None, &[], dir, &text, "judge")?;
        self.record(Event::JudgeAgentStarted {
            attempt,
            pane,
            pid: live.pid,
        })?;
        self.last_judge_pane = Some(live.pane.clone());
        self.judge = Some((live, tasks));
        Ok(())
    }

    pub(super) fn on_judge_exit(&mut self, code: Option<i32>) -> anyhow::Result<()> {
        let Some((live, tasks)) = self.judge.take() else {
            return Ok(());
        };
        self.dir_watcher.unwatch(&live.dir);
        let stdout = std::fs::read_to_string(live.dir.join("stdout.log")).unwrap_or_default();
        let kind = self.agent_kind(&self.config.roles.judge);
        let answer = workers::adapter(kind).answer(&stdout);
        let parsed = match code {
            Some(0) => judge::parse_verdict(&answer, &tasks),
            Some(code) => Err(format!("the judge exited with status {code}")),
            None => Err("the judge was killed before it answered".to_string()),
        };
        match parsed {
            Ok(verdict) => {
                self.record(Event::JudgeVerdict {
                    attempt: live.attempt,
                    verdicts: verdict.tasks.clone(),
                })?;
                for v in verdict.tasks {
                    if v.verdict == "pass" {
                        self.finish_task_done(&v.id)?;
                    } else {
                        self.refuse_task(&v.id, vec![format!("the judge: {}", v.reason)])?;
                    }
                }
            }
            Err(problem) => {
                self.record(Event::JudgeRefused {
                    attempt: live.attempt,
                    problem: problem.clone(),
                })?;
                if self.judge_tries < 1 + self.config.limits.judge_retries {
                    return self.launch_judge(tasks, vec![problem]);
                }
                for id in tasks {
                    self.fail_task(
                        &id,
                        format!(
                            "the judge gave no valid verdict after {} attempt(s): {problem}",
                            self.judge_tries
                        ),
                    )?;
                }
            }
        }
        self.maybe_start_judge()?;
        self.dispatch()
    }

    pub(super) fn finish_task_done(&mut self, id: &TaskId) -> anyhow::Result<()> {
        let attempt = self.state.tasks.get(id).map(|t| t.attempts).unwrap_or(0);
        self.keep_baseline(id);
        self.record(Event::TaskDone {
            task: id.clone(),
            attempt,
        })?;
        Ok(())
    }

    fn start_oracle(
        &mut self,
        id: &TaskId,
        attempt: u32,
        reasons: Vec<String>,
    ) -> anyhow::Result<()> {
        let Some(oracle) = self.config.roles.oracle.clone() else {
            return Ok(());
        };
        let task = self.state.tasks.get(id).context("no such task")?.clone();
        let dir = self
            .dir
            .path()
            .join("oracle")
            .join(id.as_str())
            .join(attempt.to_string());
        let mut ctx = self.role_context(Role::Oracle, Some(id), attempt, vec![]);
        ctx.files = task.files.clone();
        ctx.task_text = Some(task.task_text.clone());
        let text = prompt::oracle_prompt(&ctx, &reasons);
        self.record(Event::OracleStarted {
            task: id.clone(),
            attempt,
        })?;
        let (live, _) = self.launch_role_agent(
            &oracle,
            Role::Oracle,
            Some(id),
            &task.files,
            dir,
            &text,
            &format!("oracle-{id}"),
        )?;
        self.oracles.insert(id.clone(), (live, reasons));
        Ok(())
    }

    pub(super) fn on_oracle_exit(&mut self, id: &TaskId, code: Option<i32>) -> anyhow::Result<()> {
        let Some((live, mut reasons)) = self.oracles.remove(id) else {
            return Ok(());
        };
        self.dir_watcher.unwatch(&live.dir);
        let oracle = self.config.roles.oracle.clone().unwrap_or_default();
        let stdout = std::fs::read_to_string(live.dir.join("stdout.log")).unwrap_or_default();
        let advice = workers::adapter(self.agent_kind(&oracle)).answer(&stdout);
        let advice: String = advice.trim().chars().take(4000).collect();
        if code == Some(0) && !advice.is_empty() {
            self.record(Event::OracleAdvice {
                task: id.clone(),
                advice: advice.clone(),
            })?;
            reasons.push(format!("advice from the oracle:\n{advice}"));
        }
        let attempt = self.state.tasks.get(id).map(|t| t.attempts).unwrap_or(0);
        self.record(Event::TaskRequeued {
            task: id.clone(),
            attempt,
            reasons,
        })?;
        self.dispatch()
    }

    fn agent_kind(&self, name: &str) -> AgentKind {
        self.config
            .agents
            .get(name)
            .map(|a| a.kind)
            .unwrap_or(AgentKind::Command)
    }

    fn role_context(
        &self,
        role: Role,
        task: Option<&TaskId>,
        attempt: u32,
        feedback: Vec<String>,
    ) -> Context {
        Context {
            role,
            task: task.cloned(),
            files: vec![],
            specs: self
                .plan
                .as_ref()
                .map(|p| p.spec_files())
                .unwrap_or_default(),
            request: self.info.request.clone(),
            attempt,
            project_dir: self.project.root.display().to_string(),
            workers: vec![],
            plan_file: None,
            test_pattern: self.config.gates.test_pattern.clone(),
            task_text: None,
            feedback,
        }
    }

    /// Runs the judge or the oracle in a window of its own, like the planner.
    #[expect(clippy::too_many_arguments)]
    fn launch_role_agent(
        &mut self,
        name: &str,
        role: Role,
        task: Option<&TaskId>,
        files: &[String],
        dir: PathBuf,
        prompt_text: &str,
        window: &str,
    ) -> anyhow::Result<(Live, String)> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let prompt_file = dir.join("prompt.md");
        std::fs::write(&prompt_file, prompt_text)
            .with_context(|| format!("failed to write {}", prompt_file.display()))?;
        let agent = self
            .config
            .agents
            .get(name)
            .with_context(|| format!("agent `{name}` is not in the config"))?;
        let mut invocation = workers::invocation(&AgentCall {
            name,
            agent,
            role,
            task,
            files,
            prompt_file: &prompt_file,
            project_dir: &self.project.root,
            run_dir: self.dir.path(),
            session: None,
        })?;
        crate::sandbox::confine(
            &mut invocation,
            role,
            &self.config,
            agent,
            &self.project.root,
            self.dir.path(),
        );
        let window = self.prepare_pane(
            &dir,
            format!("{role} · agent {name}"),
            invocation,
            window.to_string(),
        )?;
        let pane = self.panes.window(self.tmux.as_ref(), &window)?;
        let attempt = if role == Role::Judge {
            self.judge_attempts
        } else {
            1
        };
        Ok((
            Live {
                attempt,
                dir,
                pane: pane.pane_id.clone(),
                pid: pane.pid,
                last_activity: Instant::now(),
            },
            pane.pane_id,
        ))
    }
}
