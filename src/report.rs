//! The run's report: per task its agent, attempts, time, files changed, violations, gates, TDD
//! evidence, the judge's verdict and token use; for the run its outcome and totals. Built from
//! the journal (and the files on disk), so `orch report` can rebuild it at any time.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;
use serde::Serialize;

use crate::config::Config;
use crate::judge::{FileStat, diffstat};
use crate::plan::TaskId;
use crate::project::Project;
use crate::state::{self, Event, RunDir, RunInfo, RunState};
use crate::watch::Snapshot;
use crate::workers;

#[derive(Debug, Serialize)]
pub struct Report {
    pub run_id: String,
    pub request: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub duration_ms: Option<u64>,
    pub tasks: Vec<TaskReport>,
    pub run_gates: Vec<GateLine>,
    pub violations: Vec<ViolationLine>,
    pub totals: Totals,
    /// Set when the run used orch's built-in scripted agent: what it did instead of the
    /// request. Such a run built the sample and must not read as if it built what was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
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
    pub files: Vec<FileStat>,
    pub violations: Vec<u32>,
    /// The gates of its latest checked attempt.
    pub gates: Vec<GateLine>,
    pub tdd: Option<String>,
    pub verdict: Option<String>,
    pub verdict_reason: Option<String>,
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
    let journal = state::read_journal(&dir.events())?;
    let state = RunState::replay(&journal.records);
    let mut durations: BTreeMap<(TaskId, u32), (u64, Option<u64>)> = BTreeMap::new();
    for record in &journal.records {
        match &record.event {
            Event::TaskStarted { task, attempt, .. } => {
                durations.insert((task.clone(), *attempt), (record.t, None));
            }
            Event::TaskExited { task, attempt, .. } => {
                if let Some(entry) = durations.get_mut(&(task.clone(), *attempt)) {
                    entry.1 = Some(record.t);
                }
            }
            _ => {}
        }
    }
    let mut totals = Totals::default();
    let mut tasks = Vec::new();
    for task in state.tasks_in_order() {
        let duration_ms = durations
            .iter()
            .filter(|((id, _), _)| id == &task.id)
            .map(|(_, (start, end))| end.unwrap_or(*start).saturating_sub(*start))
            .sum();
        let files = diffstat(&project.root, snapshot, &task.files);
        let checked = state
            .gates
            .iter()
            .filter(|g| g.task.as_ref() == Some(&task.id))
            .map(|g| g.attempt)
            .max();
        let gates: Vec<GateLine> = state
            .gates
            .iter()
            .filter(|g| g.task.as_ref() == Some(&task.id) && Some(g.attempt) == checked)
            .map(|g| GateLine {
                gate: g.gate.clone(),
                status: g.status.clone(),
                detail: g.detail.clone(),
                log: g.log.clone(),
            })
            .collect();
        let tdd = gates
            .iter()
            .find(|g| g.gate == "tdd")
            .map(|g| g.detail.clone());
        let verdict = state.verdicts.get(&task.id);
        let usage = usage_of(config, dir, &task.id, &task.agent, task.attempts);
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
        });
    }
    totals.tasks = tasks.len();
    totals.violations = state.violations.len();
    let sample = sample_note(config, info.plan_given);
    Ok(Report {
        sample,
        run_id: info.run_id,
        request: info.request,
        outcome: state.phase.name().to_string(),
        reason: state.finish_reason.clone(),
        duration_ms: state
            .finished_at_ms
            .zip(state.started_at_ms)
            .map(|(end, start)| end.saturating_sub(start)),
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
    })
}

/// Token use and cost over a task's attempts, where its agent's output reports them.
fn usage_of(
    config: &Config,
    dir: &RunDir,
    id: &TaskId,
    agent: &str,
    attempts: u32,
) -> Option<UsageLine> {
    let kind = config.agents.get(agent)?.kind;
    let adapter = workers::adapter(kind);
    let mut total: Option<UsageLine> = None;
    for attempt in 1..=attempts {
        let stdout = crate::agent_run::read_stdout(&dir.task_attempt(id, attempt));
        if let Some(usage) = adapter.assess(&stdout).usage {
            let t = total.get_or_insert_with(UsageLine::default);
            t.input_tokens += usage.input_tokens;
            t.output_tokens += usage.output_tokens;
            if let Some(c) = usage.cost_usd {
                *t.cost_usd.get_or_insert(0.0) += c;
            }
        }
    }
    total
}

/// The report as Markdown, for people.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# orch run {}: {}\n", r.run_id, r.outcome);
    if let Some(reason) = &r.reason {
        let _ = writeln!(o, "{reason}\n");
    }
    let request: String = r.request.chars().take(500).collect();
    let more = if r.request.chars().count() > 500 {
        " […]"
    } else {
        ""
    };
    let _ = writeln!(o, "Request: {}{more}\n", request.replace('\n', " "));
    if let Some(sample) = &r.sample {
        let _ = writeln!(o, "**A sample run, not the request**: {sample}\n");
    }
    let t = &r.totals;
    let _ = writeln!(
        o,
        "Time: {} · tasks: {} ({} done, {} failed, {} blocked) · attempts: {} · lines: +{} -{} · violations: {}{}\n",
        r.duration_ms
            .map(crate::engine::ui::duration)
            .unwrap_or_else(|| "-".into()),
        t.tasks,
        t.done,
        t.failed,
        t.blocked,
        t.attempts,
        t.lines_added,
        t.lines_removed,
        t.violations,
        tokens(t.input_tokens, t.output_tokens, t.cost_usd)
    );
    let _ = writeln!(
        o,
        "| task | agent | state | attempts | time | files (+/-) | TDD | judge |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for task in &r.tasks {
        let files: Vec<String> = task
            .files
            .iter()
            .map(|f| format!("{} (+{} -{})", f.path, f.added, f.removed))
            .collect();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            task.id,
            task.agent,
            task.state,
            task.attempts,
            crate::engine::ui::duration(task.duration_ms),
            files.join("<br>"),
            task.tdd.as_deref().unwrap_or("-"),
            task.verdict.as_deref().unwrap_or("-"),
        );
    }
    for task in &r.tasks {
        let _ = writeln!(o, "\n## Task {} ({})\n", task.id, task.state);
        if let Some(reason) = &task.reason {
            let _ = writeln!(o, "Reason: {reason}\n");
        }
        for g in &task.gates {
            let _ = writeln!(
                o,
                "- gate {}: {} — {}",
                g.gate,
                g.status,
                g.detail.lines().next().unwrap_or("")
            );
        }
        if let Some(v) = &task.verdict {
            let _ = writeln!(
                o,
                "- judge: {v} — {}",
                task.verdict_reason.as_deref().unwrap_or("")
            );
        }
        if !task.violations.is_empty() {
            let mut ns: Vec<String> = task
                .violations
                .iter()
                .take(crate::flood::LIST_MAX)
                .map(|n| format!("#{n}"))
                .collect();
            if task.violations.len() > ns.len() {
                ns.push(format!("and {} more", task.violations.len() - ns.len()));
            }
            let _ = writeln!(o, "- suspected in violation(s) {}", ns.join(", "));
        }
        if let Some(u) = &task.usage {
            let _ = writeln!(
                o,
                "- usage:{}",
                tokens(u.input_tokens, u.output_tokens, u.cost_usd)
            );
        }
    }
    if !r.run_gates.is_empty() {
        let _ = writeln!(o, "\n## Run gates\n");
        for g in &r.run_gates {
            let _ = writeln!(
                o,
                "- {}: {} — {}",
                g.gate,
                g.status,
                g.detail.lines().next().unwrap_or("")
            );
        }
    }
    if !r.violations.is_empty() {
        let _ = writeln!(o, "\n## Violations\n");
        // A flood is summarized, as in `orch status` (report.json lists each).
        let records: Vec<crate::state::ViolationRecord> = r
            .violations
            .iter()
            .map(|v| crate::state::ViolationRecord {
                n: v.n,
                path: v.path.clone(),
                change: v.change.clone(),
                suspects: v.suspects.clone(),
                action: v.action.clone(),
                saved: v.saved.clone(),
                at_ms: 0,
            })
            .collect();
        for line in crate::engine::ui::violation_lines(&records) {
            let _ = writeln!(o, "- {line}");
        }
    }
    o
}

fn tokens(input: u64, output: u64, cost: Option<f64>) -> String {
    if input == 0 && output == 0 && cost.is_none() {
        return String::new();
    }
    let cost = cost.map(|c| format!(", ${c:.4}")).unwrap_or_default();
    format!(" · tokens: {input} in, {output} out{cost}")
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
