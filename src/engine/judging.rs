//! After a task's gates passed (gates.rs): the judge agent's verdict on the tasks whose gates
//! passed, then done — or back to the agent with the reasons, with the oracle's advice once
//! it has failed twice.

use anyhow::Context as _;

use super::agents::{Agent, Role};
use super::core::Engine;
use super::launch::{Launch, Placement};
use crate::config::AgentKind;
use crate::judge;
use crate::paths::ProjectPath;
use crate::plan::TaskId;
use crate::prompt::{self, JudgedGate, JudgedTask};
use crate::state::Event;
use crate::workers;

/// The most of a spec shown to the judge; it can read the rest in the project.
const SPEC_EXCERPT: usize = 20_000;

/// The judge's rounds: the tasks waiting for it, its attempts, its window.
pub(super) struct Judging {
    /// Tasks whose gates passed, waiting for the judge.
    queue: Vec<TaskId>,
    /// Judge attempts so far, in this run (numbers its directories).
    attempts: u32,
    /// Tries for the current batch.
    tries: u32,
    /// The last judge's pane, closed when the next judge starts.
    last_pane: Option<String>,
}

impl Judging {
    /// Numbers continue after `attempts` (those on disk): after a resume, a new judge never
    /// reuses a directory.
    pub(super) fn new(attempts: u32) -> Judging {
        Judging {
            queue: Vec::new(),
            attempts,
            tries: 0,
            last_pane: None,
        }
    }

    pub(super) fn enqueue(&mut self, id: TaskId) {
        self.queue.push(id);
    }

    /// The tasks waiting for the judge, as a new batch: all of them, or (`one`) the first,
    /// when each task is judged in its own worktree (see isolation.rs).
    fn take_batch(&mut self, one: bool) -> Option<Vec<TaskId>> {
        if self.queue.is_empty() {
            return None;
        }
        self.tries = 0;
        if one {
            return Some(vec![self.queue.remove(0)]);
        }
        Some(std::mem::take(&mut self.queue))
    }

    /// A new judge attempt for the current batch: its number.
    fn next_attempt(&mut self) -> u32 {
        self.attempts += 1;
        self.tries += 1;
        self.attempts
    }

    pub(super) fn set_last_pane(&mut self, pane: String) {
        self.last_pane = Some(pane);
    }
}

impl Engine {
    /// A failed check: another attempt with the reasons, while attempts are left.
    pub(super) fn refuse_task(&mut self, id: &TaskId, reasons: Vec<String>) -> anyhow::Result<()> {
        let attempt = self.state.tasks.get(id).map_or(0, |t| t.attempts);
        // Since its latest `orch retry`, if it had one (see retry.rs).
        let counted = super::retry::counted(&self.state, id, attempt);
        if counted > self.config.limits.retries {
            let first = reasons
                .first()
                .map_or("", |r| r.lines().next().unwrap_or(""));
            return self.fail_task(
                id,
                format!("refused after {counted} attempt(s); last: {first}"),
            );
        }
        if counted >= 2 && self.config.roles.oracle.is_some() {
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
    /// it between events (`Input::LaunchStep`).
    pub(super) fn maybe_start_judge(&mut self) -> anyhow::Result<()> {
        self.sched.want_launch();
        Ok(())
    }

    /// Starts the judge on the queued tasks unless it is busy; whether it started.
    pub(super) fn start_judge_now(&mut self) -> anyhow::Result<bool> {
        if self.agents.judge().is_some() {
            return Ok(false);
        }
        let Some(tasks) = self.judging.take_batch(self.isolated()) else {
            return Ok(false);
        };
        self.launch_judge(tasks, vec![])?;
        Ok(true)
    }

    fn launch_judge(&mut self, tasks: Vec<TaskId>, feedback: Vec<String>) -> anyhow::Result<()> {
        let attempt = self.judging.next_attempt();
        let dir = self.dir.path().join("judge").join(attempt.to_string());
        let specs: Vec<(ProjectPath, String)> = self
            .spec_files()
            .into_iter()
            .map(|s| {
                let mut text = std::fs::read_to_string(self.work.root.join(&s)).unwrap_or_default();
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
                files: judge::diffstat(&self.task_root(&t.id), self.snapshot.as_ref(), &t.files)
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
        let mut ctx = self.prompt_context(prompt::Role::Judge, None, attempt);
        // Where it judges: the run's worktree, or the one task's own (see isolation.rs).
        ctx.project_dir = self
            .agent_root(&Role::Judge(tasks.clone()))
            .display()
            .to_string();
        ctx.feedback = feedback;
        let text = prompt::judge_prompt(&ctx, &specs, &plan_json, &judged);
        // One judge window at a time: the previous one's output is in its log.
        if let Some(previous) = self.judging.last_pane.take() {
            self.launcher.kill_pane(previous);
        }
        let name = self.config.roles.judge.clone();
        self.launch_agent(Launch {
            role: Role::Judge(tasks),
            attempt,
            dir,
            title: format!("judge · agent {name}"),
            agent: name,
            prompt: text,
            files: vec![],
            session: None,
            window: "judge".into(),
            placement: Placement::Window,
        })
    }

    /// The judge on `tasks` ended (`code`: None when killed or lost).
    pub(super) fn on_judge_exit(
        &mut self,
        judge: Agent,
        tasks: Vec<TaskId>,
        code: Option<i32>,
    ) -> anyhow::Result<()> {
        let stdout = std::fs::read_to_string(judge.dir.join("stdout.log")).unwrap_or_default();
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
                    attempt: judge.attempt,
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
                    attempt: judge.attempt,
                    problem: problem.clone(),
                })?;
                if self.judging.tries < 1 + self.config.limits.judge_retries {
                    return self.launch_judge(tasks, vec![problem]);
                }
                for id in tasks {
                    self.fail_task(
                        &id,
                        format!(
                            "the judge gave no valid verdict after {} attempt(s): {problem}",
                            self.judging.tries
                        ),
                    )?;
                }
            }
        }
        self.maybe_start_judge()?;
        self.dispatch()
    }

    pub(super) fn finish_task_done(&mut self, id: &TaskId) -> anyhow::Result<()> {
        let attempt = self.state.tasks.get(id).map_or(0, |t| t.attempts);
        self.keep_baseline(id);
        // On a branch: its commit first, so that a dependent launched next starts from a
        // branch that holds it; made off the loop, the task is done when it comes back (see
        // commits.rs, committer.rs).
        if self.submit_commit(id)? {
            return Ok(());
        }
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
        let mut ctx = self.prompt_context(prompt::Role::Oracle, Some(id), attempt);
        ctx.files = task.files.clone();
        ctx.task_text = Some(task.task_text.clone());
        let text = prompt::oracle_prompt(&ctx, &reasons);
        self.launch_agent(Launch {
            role: Role::Oracle(id.clone(), reasons),
            attempt,
            dir,
            title: format!("oracle · agent {oracle}"),
            agent: oracle,
            prompt: text,
            files: task.files,
            session: None,
            window: format!("oracle-{id}"),
            placement: Placement::Window,
        })
    }

    /// The oracle advising task `id` ended: its advice joins the reasons of the task's next
    /// attempt.
    pub(super) fn on_oracle_exit(
        &mut self,
        oracle: Agent,
        id: &TaskId,
        mut reasons: Vec<String>,
        code: Option<i32>,
    ) -> anyhow::Result<()> {
        let name = self.config.roles.oracle.clone().unwrap_or_default();
        let stdout = std::fs::read_to_string(oracle.dir.join("stdout.log")).unwrap_or_default();
        let advice = workers::adapter(self.agent_kind(&name)).answer(&stdout);
        let advice: String = advice.trim().chars().take(4000).collect();
        if code == Some(0) && !advice.is_empty() {
            self.record(Event::OracleAdvice {
                task: id.clone(),
                advice: advice.clone(),
            })?;
            reasons.push(format!("advice from the oracle:\n{advice}"));
        }
        let attempt = self.state.tasks.get(id).map_or(0, |t| t.attempts);
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
            .map_or(AgentKind::Command, |a| a.kind)
    }
}
