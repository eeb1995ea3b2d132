//! The run's report: the planner's specs; per task its agent, every attempt (how it ended and
//! why: a failing gate's output, the judge's words, an interruption), time, files changed,
//! violations, gates, TDD evidence, the judge's verdict and token use; for the run its outcome
//! and totals. Built from the journal (and the files on disk), so `orch report` can rebuild it
//! at any time.

use anyhow::Context as _;
use serde::Serialize;

use crate::config::Config;
use crate::judge::{FileStat, diffstat};
use crate::paths::ProjectPath;
use crate::plan::TaskId;
use crate::project::Project;
use crate::snapshot::Snapshot;
use crate::state::{self, AttemptOutcome, Event, Record, RunDir, RunInfo, RunState};
use crate::workers;

mod markdown;

pub use markdown::markdown;

#[derive(Debug, Serialize)]
pub struct Report {
    pub run_id: String,
    pub request: String,
    pub outcome: String,
    pub reason: Option<String>,
    /// From the run's start to its end, downtime between engines included; none before it
    /// ended.
    pub duration_ms: Option<u64>,
    /// The part of it an engine ran (the downtime between an engine's end and the next one's
    /// start left out).
    pub active_ms: u64,
    /// How many times the run was resumed.
    pub resumes: u32,
    /// The spec files the planner wrote (or the plan names), as they are now.
    pub specs: Vec<SpecLine>,
    pub tasks: Vec<TaskReport>,
    pub run_gates: Vec<GateLine>,
    pub violations: Vec<ViolationLine>,
    pub totals: Totals,
    /// Set when the run used orch's built-in scripted agent: what it did instead of the
    /// request. Such a run built the sample and must not read as if it built what was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
    /// Why the agents ran without the sandbox the config wished for, when they did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_off: Option<String>,
    /// Writes the agents' sandboxes refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sandbox_refusals: Vec<crate::state::SandboxRefusal>,
    /// What agents left running when they exited: stopped, or kept (`limits.leftovers`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub leftovers: Vec<crate::state::LeftoverRecord>,
    /// Where the run worked, when on a branch of its own (absent for a run in place).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<crate::workspace::WorkspaceInfo>,
    /// Every commit the run made on its branch, in order: the specs', then each accepted
    /// task's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<CommitLine>,
    /// Each `orch merge` of the run's branch into the user's, in order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub merges: Vec<crate::state::MergeRecord>,
    /// Whether `orch discard` removed the run's worktree (and its branch, when `true`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub discarded: Option<bool>,
    /// The engines' warnings, in order (`{kind, message, at_ms}`: see `orch status --json`):
    /// what went wrong without stopping the run, such as part of the project not policed.
    pub warnings: Vec<crate::state::WarningRecord>,
    /// The budget, and what every agent (the planner and the judge included) used against it.
    pub budget: crate::budget::View,
    /// The plan's approval, for a run whose plan waited for one (see [`crate::approval`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::approval::View>,
}

/// The sentence saying that a run used the built-in scripted agent, if it did.
pub fn sample_note(config: &Config, plan_given: bool) -> Option<String> {
    let scope = if plan_given {
        crate::config::SampleScope::RunWithPlan
    } else {
        crate::config::SampleScope::Run
    };
    let agents = crate::config::sample_agents(config, scope);
    (!agents.is_empty()).then(|| crate::config::sample_summary(&agents))
}

#[derive(Debug, Serialize)]
pub struct TaskReport {
    pub id: TaskId,
    pub agent: String,
    pub state: String,
    pub reason: Option<String>,
    pub attempts: u32,
    /// Time its agents ran, over all attempts.
    pub duration_ms: u64,
    /// Every attempt, in order: how it ended and why.
    pub attempt_history: Vec<AttemptLine>,
    /// Its latest `orch retry`, if it had one: after which attempt, why it had failed, the
    /// user's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retried: Option<crate::state::Retried>,
    /// The user's latest `orch tell` message to the task (see `Event::TaskTold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub told: Option<crate::state::Told>,
    pub files: Vec<FileStat>,
    pub violations: Vec<u32>,
    /// The gates of its latest checked attempt.
    pub gates: Vec<GateLine>,
    pub tdd: Option<String>,
    pub verdict: Option<String>,
    pub verdict_reason: Option<String>,
    pub usage: Option<UsageLine>,
    /// Its commit on the run's branch, once accepted there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Where its last attempt's files were copied when it failed on a branch (relative to
    /// the run directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_files: Option<String>,
}

/// One commit of the run on its branch.
#[derive(Debug, Serialize)]
pub struct CommitLine {
    pub commit: String,
    /// The task it holds; none for the specs.
    pub task: Option<TaskId>,
    pub files: Vec<ProjectPath>,
    pub at_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct SpecLine {
    /// Relative to the project root, as the plan names it.
    pub path: ProjectPath,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub exists: bool,
    /// Its size in bytes, when it exists.
    pub bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct AttemptLine {
    pub attempt: u32,
    /// running | done | refused | failed | interrupted
    pub outcome: AttemptOutcome,
    /// Why it was refused, failed or was interrupted, whole: a failing gate's output, the
    /// judge's reason, the oracle's advice, the interruption.
    pub reasons: Vec<String>,
    /// How long its agent ran.
    pub duration_ms: u64,
    pub started_at_ms: u64,
    pub ended_at_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Its gates, when it was checked.
    pub gates: Vec<GateLine>,
    pub usage: Option<UsageLine>,
}

#[derive(Debug, Serialize)]
pub struct GateLine {
    pub gate: String,
    pub status: String,
    pub detail: String,
    pub log: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ViolationLine {
    pub n: u32,
    pub path: String,
    pub change: String,
    pub suspects: Vec<TaskId>,
    pub action: String,
    pub saved: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct UsageLine {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub tasks: usize,
    pub done: usize,
    pub failed: usize,
    pub blocked: usize,
    pub attempts: u32,
    pub lines_added: usize,
    pub lines_removed: usize,
    pub violations: usize,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: Option<f64>,
}

/// Builds the report from the run's journal and files.
pub fn build(
    project: &Project,
    config: &Config,
    dir: &RunDir,
    snapshot: Option<&Snapshot>,
) -> anyhow::Result<Report> {
    let info = RunInfo::read(&dir.run_json())?;
    // The files are where the agents worked: the run's worktree, or the project.
    let root = info
        .workspace
        .as_ref()
        .map_or_else(|| project.root.clone(), |ws| ws.path.clone());
    let journal = state::read_journal(&dir.events())?;
    let state = RunState::replay(&journal.records);
    let now = state::now_ms();
    let mut totals = Totals::default();
    let mut tasks = Vec::new();
    for task in state.tasks_in_order() {
        // The attempts' own running time, from the journal (see `AttemptRecord`).
        let duration_ms = task.ran_ms(now);
        // Under `isolation: task`, a task not committed (at work, failed) has its files in
        // its own worktree, kept until `orch discard`.
        let task_root = state
            .task_worktrees
            .get(&task.id)
            .map_or(root.as_path(), |tw| tw.path.as_path());
        let files = diffstat(task_root, snapshot, &task.files);
        let checked = state
            .gates
            .iter()
            .filter(|g| g.task.as_ref() == Some(&task.id))
            .map(|g| g.attempt)
            .max();
        let gates_of = |attempt: u32| -> Vec<GateLine> {
            state
                .gates
                .iter()
                .filter(|g| g.task.as_ref() == Some(&task.id) && g.attempt == attempt)
                .map(|g| GateLine {
                    gate: g.gate.clone(),
                    status: g.status.clone(),
                    detail: g.detail.clone(),
                    log: g.log.clone(),
                })
                .collect()
        };
        let gates = checked.map(gates_of).unwrap_or_default();
        let attempt_history: Vec<AttemptLine> = task
            .history
            .iter()
            .map(|a| AttemptLine {
                attempt: a.attempt,
                outcome: a.outcome,
                reasons: a.reasons.clone(),
                duration_ms: a.ran_ms(now),
                started_at_ms: a.started_at_ms,
                ended_at_ms: a.ended_at_ms,
                exit_code: a.exit_code,
                signal: a.signal,
                gates: gates_of(a.attempt),
                usage: attempt_usage(config, dir, &task.id, &task.agent, a.attempt),
            })
            .collect();
        let tdd = gates
            .iter()
            .find(|g| g.gate == "tdd")
            .map(|g| g.detail.clone());
        let verdict = state.verdicts.get(&task.id);
        let mut usage: Option<UsageLine> = None;
        for u in attempt_history.iter().filter_map(|a| a.usage.as_ref()) {
            let t = usage.get_or_insert_with(UsageLine::default);
            t.input_tokens += u.input_tokens;
            t.output_tokens += u.output_tokens;
            if let Some(c) = u.cost_usd {
                *t.cost_usd.get_or_insert(0.0) += c;
            }
        }
        totals.attempts += task.attempts;
        totals.lines_added += files.iter().map(|f| f.added).sum::<usize>();
        totals.lines_removed += files.iter().map(|f| f.removed).sum::<usize>();
        match task.state {
            state::TaskStatus::Done => totals.done += 1,
            state::TaskStatus::Failed => totals.failed += 1,
            state::TaskStatus::Blocked => totals.blocked += 1,
            _ => {}
        }
        if let Some(u) = &usage {
            totals.input_tokens += u.input_tokens;
            totals.output_tokens += u.output_tokens;
            if let Some(c) = u.cost_usd {
                *totals.cost_usd.get_or_insert(0.0) += c;
            }
        }
        tasks.push(TaskReport {
            id: task.id.clone(),
            agent: task.agent.clone(),
            state: task.state.name().to_string(),
            reason: task.reason.clone(),
            attempts: task.attempts,
            duration_ms,
            attempt_history,
            retried: task.retried.clone(),
            told: task.told.clone(),
            files,
            violations: state
                .violations
                .iter()
                .filter(|v| v.suspects.contains(&task.id))
                .map(|v| v.n)
                .collect(),
            gates,
            tdd,
            verdict: verdict.map(|v| v.verdict.clone()),
            verdict_reason: verdict.map(|v| v.reason.clone()),
            usage,
            commit: task.commit.clone(),
            failed_files: {
                let rel = format!("failed/{}", task.id);
                (task.state == state::TaskStatus::Failed && dir.path().join(&rel).is_dir())
                    .then_some(rel)
            },
        });
    }
    totals.tasks = tasks.len();
    totals.violations = state.violations.len();
    let sample = sample_note(config, info.plan_given);
    let (active_ms, resumes) = engine_time(&journal.records);
    Ok(Report {
        approval: crate::approval::View::of(dir, &state, &info.run_id),
        budget: crate::budget::View::of(dir, &state, config),
        sample,
        run_id: info.run_id,
        request: info.request,
        outcome: state.phase.name().to_string(),
        reason: state.finish_reason.clone(),
        duration_ms: state
            .finished_at_ms
            .zip(state.started_at_ms)
            .map(|(end, start)| end.saturating_sub(start)),
        active_ms,
        resumes,
        specs: state
            .plan()
            .map(|plan| specs_of(&root, &plan.specs))
            .unwrap_or_default(),
        tasks,
        run_gates: state
            .gates
            .iter()
            .filter(|g| g.task.is_none())
            .map(|g| GateLine {
                gate: g.gate.clone(),
                status: g.status.clone(),
                detail: g.detail.clone(),
                log: g.log.clone(),
            })
            .collect(),
        violations: state
            .violations
            .iter()
            .map(|v| ViolationLine {
                n: v.n,
                path: v.path.clone(),
                change: v.change.clone(),
                suspects: v.suspects.clone(),
                action: v.action.clone(),
                saved: v.saved.clone(),
            })
            .collect(),
        totals,
        sandbox_off: state.sandbox_off.clone(),
        sandbox_refusals: state.sandbox_refusals.clone(),
        leftovers: state.leftovers.clone(),
        commits: state
            .commits
            .iter()
            .map(|c| CommitLine {
                commit: c.commit.clone(),
                task: c.task.clone(),
                files: c.files.clone(),
                at_ms: c.at_ms,
            })
            .collect(),
        workspace: info.workspace.clone(),
        merges: state.merges.clone(),
        discarded: state.discarded,
        warnings: state.warnings.clone(),
    })
}

/// Token use and cost of one attempt, where its agent's output reports them.
fn attempt_usage(
    config: &Config,
    dir: &RunDir,
    id: &TaskId,
    agent: &str,
    attempt: u32,
) -> Option<UsageLine> {
    let kind = config.agents.get(agent)?.kind;
    let attempt_dir = dir.task_attempt(id, attempt);
    let usage = if kind == crate::config::AgentKind::Command {
        // Its `ORCH_USAGE` lines, as its exit record counts them (or its log, while it runs).
        crate::progress::attempt_usage(&attempt_dir)?
    } else {
        let stdout = crate::agent_process::run::read_stdout(&attempt_dir);
        workers::adapter(kind).assess(&stdout).usage?
    };
    Some(UsageLine {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cost_usd: usage.cost_usd,
    })
}

/// The time engines ran the run, and how many times it was resumed: each engine's span runs
/// from the run's start (or its resume) to the last journal entry before the next resume, so
/// that the downtime in between is left out.
fn engine_time(records: &[Record]) -> (u64, u32) {
    let mut active = 0;
    let mut resumes = 0;
    let mut span: Option<(u64, u64)> = None;
    for record in records {
        if matches!(record.event, Event::RunResumed {}) {
            if let Some((start, end)) = span.take() {
                active += end.saturating_sub(start);
            }
            resumes += 1;
        }
        let start = span.map_or(record.t, |(start, _)| start);
        span = Some((start, record.t));
    }
    if let Some((start, end)) = span {
        active += end.saturating_sub(start);
    }
    (active, resumes)
}

/// The plan's spec files, as they are on disk now.
fn specs_of(root: &std::path::Path, specs: &[crate::plan::Spec]) -> Vec<SpecLine> {
    specs
        .iter()
        .map(|spec| {
            let meta = std::fs::metadata(root.join(&spec.file))
                .ok()
                .filter(std::fs::Metadata::is_file);
            SpecLine {
                path: spec.file.clone(),
                description: spec.description.clone(),
                exists: meta.is_some(),
                bytes: meta.map(|m| m.len()),
            }
        })
        .collect()
}

/// Writes `report.md` and `report.json` into the run directory.
pub fn write(
    project: &Project,
    config: &Config,
    dir: &RunDir,
    snapshot: Option<&Snapshot>,
) -> anyhow::Result<Report> {
    let report = build(project, config, dir, snapshot)?;
    std::fs::write(dir.report_md(), markdown(&report)).context("failed to write report.md")?;
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(dir.report_json(), json + "\n").context("failed to write report.json")?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_downtime_between_engines_is_not_the_runs_time() {
        let at = |t: u64, event: Event| Record { t, event };
        let records = vec![
            at(
                1_000,
                Event::RunStarted {
                    run_id: "r".into(),
                    request_bytes: 1,
                },
            ),
            at(1_500, Event::EngineStarted { pid: 1 }),
            at(
                2_000,
                Event::EngineStopped {
                    reason: "killed".into(),
                },
            ),
            // 2 min 40 s later.
            at(162_000, Event::RunResumed {}),
            at(162_100, Event::EngineStarted { pid: 2 }),
            at(
                162_500,
                Event::RunFinished {
                    outcome: state::Outcome::Succeeded,
                    reason: None,
                },
            ),
        ];
        assert_eq!(engine_time(&records), (1_000 + 500, 1));
        assert_eq!(engine_time(&records[..3]), (1_000, 0));
    }

    #[test]
    fn specs_are_listed_as_they_are_on_disk() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("specs")).unwrap();
        std::fs::write(root.path().join("specs/a.md"), "12345").unwrap();
        let spec = |file: &str| crate::plan::Spec {
            file: crate::paths::ProjectPath::new(file).unwrap(),
            description: String::new(),
        };
        let lines = specs_of(
            root.path(),
            &[spec("specs/a.md"), spec("specs/b.md"), spec("specs")],
        );
        let got: Vec<(&str, bool, Option<u64>)> = lines
            .iter()
            .map(|l| (l.path.as_str(), l.exists, l.bytes))
            .collect();
        assert_eq!(
            got,
            [
                ("specs/a.md", true, Some(5)),
                ("specs/b.md", false, None),
                ("specs", false, None)
            ]
        );
    }
}
