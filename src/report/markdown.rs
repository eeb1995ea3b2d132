//! The report as Markdown, for people: the summary, the tasks' table, the specs, then per task
//! its attempts (how each ended and why), gates, verdict and use; the run's gates and the
//! violations.

use std::fmt::Write as _;

use super::{AttemptLine, Report};
use crate::format::duration;
use crate::state::AttemptOutcome;

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
    let resumed = match r.resumes {
        0 => String::new(),
        n => format!(
            " (engines ran {} of it; resumed {n} time(s))",
            duration(r.active_ms)
        ),
    };
    let _ = writeln!(
        o,
        "Time: {}{resumed} · tasks: {} ({} done, {} failed, {} blocked) · attempts: {} · lines: +{} -{} · violations: {}{}{}\n",
        r.duration_ms.map_or_else(|| "-".into(), duration),
        t.tasks,
        t.done,
        t.failed,
        t.blocked,
        t.attempts,
        t.lines_added,
        t.lines_removed,
        t.violations,
        tokens(t.input_tokens, t.output_tokens, t.cost_usd),
        match r.warnings.len() {
            0 => String::new(),
            n => format!(" · warnings: {n} (see Warnings)"),
        }
    );
    if let Some(approval) = &r.approval {
        let _ = writeln!(o, "Plan approval: {}\n", approval.line());
    }
    if !r.budget.limit.is_none() || !r.budget.raises.is_empty() {
        let _ = writeln!(o, "Budget: {}\n", r.budget.line());
    } else if !r.budget.uncosted.is_empty() {
        let _ = writeln!(
            o,
            "Cost: no cost reported by {} (counted in tokens only)\n",
            r.budget.uncosted.join(", ")
        );
    }
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
            duration(task.duration_ms),
            files.join("<br>"),
            task.tdd.as_deref().unwrap_or("-"),
            task.verdict.as_deref().unwrap_or("-"),
        );
    }
    branch_markdown(&mut o, r);
    if !r.specs.is_empty() {
        let _ = writeln!(o, "\n## Specs\n");
        for spec in &r.specs {
            let state = match spec.bytes {
                Some(bytes) if spec.exists => format!("{bytes} bytes"),
                _ => "MISSING".to_string(),
            };
            let about = match spec.description.as_str() {
                "" => String::new(),
                d => format!(" ({})", d.replace('\n', " ")),
            };
            let _ = writeln!(o, "- {} — {state}{about}", spec.path);
        }
    }
    for task in &r.tasks {
        let _ = writeln!(o, "\n## Task {} ({})\n", task.id, task.state);
        if let Some(reason) = &task.reason {
            let _ = writeln!(o, "Reason: {reason}\n");
        }
        if let Some(commit) = &task.commit {
            let _ = writeln!(o, "Commit: {commit}\n");
        }
        if let Some(kept) = &task.failed_files {
            let _ = writeln!(
                o,
                "Its last attempt's files are kept in the run directory: {kept}/\n"
            );
        }
        if let Some(r) = &task.retried {
            let message = if r.message.is_some() {
                " with a message (in `report.json` and the attempts' prompts)"
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "Tried again by `orch retry` after attempt {} failed for good{message}.\n",
                r.after_attempt
            );
        }
        if let Some(t) = &task.told {
            let how = if t.reopened {
                format!("reopened after attempt {} had done it", t.after_attempt)
            } else if t.after_attempt == 0 {
                "before its first attempt".to_string()
            } else {
                format!("after attempt {}", t.after_attempt)
            };
            let _ = writeln!(
                o,
                "Told by the user with `orch tell`, {how} (the message is in `report.json` and \
                 the next attempts' prompts).\n"
            );
        }
        // One attempt that did it says nothing the table does not.
        let single_done = matches!(
            task.attempt_history.as_slice(),
            [a] if a.outcome == AttemptOutcome::Done
        );
        if !task.attempt_history.is_empty() && !single_done {
            let _ = writeln!(o, "Attempts:\n");
            for a in &task.attempt_history {
                attempt_markdown(&mut o, a);
            }
            let _ = writeln!(o);
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
    if let Some(reason) = &r.sandbox_off {
        let _ = writeln!(o, "\n## No sandbox\n\nThe agents ran unconfined: {reason}");
    }
    if !r.sandbox_refusals.is_empty() {
        let _ = writeln!(o, "\n## Refused by the sandbox\n");
        for refusal in &r.sandbox_refusals {
            let _ = writeln!(
                o,
                "- task {} (attempt {}): {}",
                refusal.task, refusal.attempt, refusal.line
            );
        }
    }
    if !r.leftovers.is_empty() {
        let _ = writeln!(o, "\n## Left running by agents\n");
        for leftover in &r.leftovers {
            for line in leftover.lines() {
                // Each attempt a list item, its processes nested under it.
                let _ = match line.strip_prefix(' ') {
                    Some(process) => writeln!(o, "  -{process}"),
                    None => writeln!(o, "- {line}"),
                };
            }
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
                swept: false,
                worktree: None,
                at_ms: 0,
            })
            .collect();
        for line in crate::format::violation_lines(&records) {
            let _ = writeln!(o, "- {line}");
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(
            o,
            "\n## Warnings\n\nWhat went wrong without stopping the run (`unpoliced`: part of \
             the project not policed as it should be; `unrecorded`: part of the record not \
             written; `agents`: the engine's hold on the agents' processes):\n"
        );
        for line in crate::format::warning_lines(&r.warnings, WARNINGS_LISTED) {
            let _ = writeln!(o, "- {line}");
        }
    }
    o
}

/// Distinct warnings listed in the report before the earlier ones are only counted
/// (report.json lists each).
const WARNINGS_LISTED: usize = 100;

/// One attempt as a list item: how it ended, after how long, and why, a reason's further lines
/// (a gate's output) in a block of their own.
fn attempt_markdown(o: &mut String, a: &AttemptLine) {
    let exit = match (a.exit_code, a.signal) {
        (_, Some(signal)) => format!(", killed by signal {signal}"),
        (Some(code), None) if code != 0 => format!(", exit {code}"),
        _ => String::new(),
    };
    let usage = a
        .usage
        .as_ref()
        .map(|u| tokens(u.input_tokens, u.output_tokens, u.cost_usd))
        .unwrap_or_default();
    let how = match a.outcome {
        AttemptOutcome::Running => format!("running for {}", duration(a.duration_ms)),
        outcome => format!("{} after {}", outcome.name(), duration(a.duration_ms)),
    };
    let _ = writeln!(o, "- attempt {}: {how}{exit}{usage}", a.attempt);
    for reason in &a.reasons {
        let mut lines = reason.trim().lines();
        let _ = writeln!(o, "  - {}", lines.next().unwrap_or(""));
        let rest: Vec<&str> = lines.collect();
        if rest.is_empty() {
            continue;
        }
        let _ = writeln!(o, "    ```");
        for line in shortened(&rest, 20) {
            let _ = writeln!(o, "    {line}");
        }
        let _ = writeln!(o, "    ```");
    }
}

/// At most `max` lines: the first ones and the last (where a gate names its full output),
/// with a line that says how many were left out.
fn shortened(lines: &[&str], max: usize) -> Vec<String> {
    if lines.len() <= max {
        return lines.iter().map(std::string::ToString::to_string).collect();
    }
    let head = max.saturating_sub(2);
    let mut out: Vec<String> = lines[..head]
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    out.push(format!("… ({} lines left out)", lines.len() - head - 1));
    out.push(lines[lines.len() - 1].to_string());
    out
}

fn tokens(input: u64, output: u64, cost: Option<f64>) -> String {
    if input == 0 && output == 0 && cost.is_none() {
        return String::new();
    }
    let cost = cost.map(|c| format!(", ${c:.4}")).unwrap_or_default();
    format!(" · tokens: {input} in, {output} out{cost}")
}

/// A run on a branch: the branch, where it started, and every commit the run made on it.
fn branch_markdown(o: &mut String, r: &Report) {
    let Some(ws) = &r.workspace else { return };
    let _ = writeln!(o, "\n## Branch\n");
    let from = match &ws.user_branch {
        Some(branch) => format!("{branch} at {}", short(&ws.base)),
        None => short(&ws.base).to_string(),
    };
    let _ = writeln!(
        o,
        "The run worked on branch `{}` in the worktree {}, started from {from}.",
        ws.branch,
        ws.path.display()
    );
    if let Some(uncommitted) = &ws.uncommitted {
        let _ = writeln!(
            o,
            "Your checkout's uncommitted changes at `orch up` are its first commit, {} (a merge \
             leaves it out: they are still in your checkout).",
            short(uncommitted)
        );
    }
    if r.commits.is_empty() {
        let _ = writeln!(o, "\nNo commit yet.");
        return;
    }
    let _ = writeln!(o, "\n| commit | of | files |\n|---|---|---|");
    for c in &r.commits {
        let of = c
            .task
            .as_ref()
            .map_or_else(|| "specs".to_string(), |t| format!("task {t}"));
        let files: Vec<&str> = c
            .files
            .iter()
            .map(crate::paths::ProjectPath::as_str)
            .collect();
        let _ = writeln!(
            o,
            "| {} | {of} | {} |",
            short(&c.commit),
            files.join("<br>")
        );
    }
    for m in &r.merges {
        let how = if m.squash {
            "squashed into"
        } else {
            "merged into"
        };
        let _ = writeln!(o, "\n{how} `{}` as {}.", m.into, short(&m.commit));
    }
    match r.discarded {
        Some(true) => {
            let _ = writeln!(o, "\nDiscarded: its worktree and branch removed.");
        }
        Some(false) => {
            let _ = writeln!(o, "\nDiscarded: its worktree removed, its branch kept.");
        }
        None => {}
    }
}

/// A commit id as git shows it short.
fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TaskId;
    use crate::report::{CommitLine, SpecLine, TaskReport, Totals, UsageLine};

    fn attempt(n: u32, outcome: AttemptOutcome, reasons: &[&str], ms: u64) -> AttemptLine {
        AttemptLine {
            attempt: n,
            outcome,
            reasons: reasons
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            duration_ms: ms,
            started_at_ms: 0,
            ended_at_ms: Some(ms),
            exit_code: Some(0),
            signal: None,
            gates: vec![],
            usage: None,
        }
    }

    fn report() -> Report {
        let test_output: String = (1..=30).fold(String::new(), |mut s, i| {
            let _ = write!(s, "\nline {i}");
            s
        });
        Report {
            approval: None,
            budget: crate::budget::View::default(),
            sample: None,
            sandbox_off: None,
            sandbox_refusals: Vec::new(),
            leftovers: Vec::new(),
            warnings: Vec::new(),
            workspace: Some(crate::workspace::WorkspaceInfo {
                path: "/p/.orch/worktrees/r1".into(),
                branch: "orch/r1".into(),
                base: "b".repeat(40),
                start: "u".repeat(40),
                uncommitted: Some("u".repeat(40)),
                user_branch: Some("main".into()),
                isolation: crate::workspace::Isolation::Run,
            }),
            commits: vec![CommitLine {
                commit: "c".repeat(40),
                task: Some(TaskId::new("api")),
                files: vec![crate::paths::ProjectPath::new("src/api.rs").unwrap()],
                at_ms: 1,
            }],
            merges: vec![crate::state::MergeRecord {
                into: "main".into(),
                commit: "m".repeat(40),
                squash: false,
                at_ms: 2,
                tip: None,
            }],
            discarded: Some(false),
            run_id: "r1".into(),
            request: "build it".into(),
            outcome: "succeeded".into(),
            reason: None,
            duration_ms: Some(160_000),
            active_ms: 1_200,
            resumes: 1,
            specs: vec![
                SpecLine {
                    path: crate::paths::ProjectPath::new("specs/auth.md").unwrap(),
                    description: "the tokens".into(),
                    exists: true,
                    bytes: Some(1234),
                },
                SpecLine {
                    path: crate::paths::ProjectPath::new("specs/gone.md").unwrap(),
                    description: String::new(),
                    exists: false,
                    bytes: None,
                },
            ],
            tasks: vec![TaskReport {
                id: TaskId::new("api"),
                agent: "claude".into(),
                state: "done".into(),
                reason: None,
                attempts: 3,
                duration_ms: 1_200,
                attempt_history: vec![
                    attempt(
                        1,
                        AttemptOutcome::Refused,
                        &[&format!("gate `test` failed: 1 failed{test_output}")],
                        400,
                    ),
                    attempt(
                        2,
                        AttemptOutcome::Interrupted,
                        &["the tmux server died"],
                        300,
                    ),
                    AttemptLine {
                        usage: Some(UsageLine {
                            input_tokens: 36000,
                            output_tokens: 2400,
                            cost_usd: Some(0.192),
                        }),
                        ..attempt(3, AttemptOutcome::Done, &[], 500)
                    },
                ],
                retried: None,
                told: None,
                files: vec![],
                violations: vec![],
                gates: vec![],
                tdd: None,
                verdict: Some("pass".into()),
                verdict_reason: Some("good".into()),
                usage: None,
                commit: Some("c".repeat(40)),
                failed_files: None,
            }],
            run_gates: vec![],
            violations: vec![],
            totals: Totals::default(),
        }
    }

    #[test]
    fn a_run_on_a_branch_lists_its_commits() {
        let md = markdown(&report());
        assert!(md.contains("## Branch"), "{md}");
        assert!(
            md.contains("branch `orch/r1`") && md.contains("started from main at bbbbbbbbbbbb"),
            "{md}"
        );
        assert!(md.contains("first commit, uuuuuuuuuuuu"), "{md}");
        assert!(
            md.contains("| cccccccccccc | task api | src/api.rs |"),
            "{md}"
        );
        assert!(md.contains(&format!("Commit: {}", "c".repeat(40))), "{md}");
        assert!(md.contains("merged into `main` as mmmmmmmmmmmm."), "{md}");
        assert!(md.contains("its branch kept"), "{md}");
    }

    #[test]
    fn every_attempt_says_how_it_ended_and_why() {
        let md = markdown(&report());
        let attempts = md.split("Attempts:").nth(1).unwrap();
        assert!(
            attempts.contains("- attempt 1: refused after 0.4s\n  - gate `test` failed: 1 failed\n    ```\n    line 1\n"),
            "{md}"
        );
        // A long output is cut in its middle: its end (where a gate names its log) stays.
        assert!(
            attempts.contains("    … (11 lines left out)\n    line 30\n    ```"),
            "{md}"
        );
        assert!(
            attempts.contains("- attempt 2: interrupted after 0.3s\n  - the tmux server died\n"),
            "{md}"
        );
        assert!(
            attempts.contains("- attempt 3: done after 0.5s · tokens: 36000 in, 2400 out, $0.1920"),
            "{md}"
        );
    }

    #[test]
    fn a_task_done_at_its_first_attempt_lists_no_attempts() {
        let mut r = report();
        r.tasks[0].attempt_history = vec![attempt(1, AttemptOutcome::Done, &[], 500)];
        assert!(!markdown(&r).contains("Attempts:"), "{}", markdown(&r));
    }

    #[test]
    fn the_specs_and_the_engines_time_are_reported() {
        let md = markdown(&report());
        assert!(
            md.contains(
                "## Specs\n\n- specs/auth.md — 1234 bytes (the tokens)\n- specs/gone.md — MISSING\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("Time: 2m40s (engines ran 1.2s of it; resumed 1 time(s))"),
            "{md}"
        );
    }

    #[test]
    fn the_engines_warnings_are_counted_up_top_and_listed_with_their_kind() {
        assert!(!markdown(&report()).contains("Warnings"), "none, none said");
        let mut r = report();
        let w = |kind, message: &str| crate::state::WarningRecord {
            kind,
            message: message.into(),
            at_ms: 1,
        };
        r.warnings = vec![
            w(
                crate::state::WarningKind::Unpoliced,
                "cannot watch src/: too many",
            ),
            w(crate::state::WarningKind::Unrecorded, "could not write x"),
        ];
        let md = markdown(&r);
        assert!(md.contains("· warnings: 2 (see Warnings)"), "{md}");
        let section = md.split("## Warnings").nth(1).expect(&md);
        assert!(
            section.contains(
                "- unpoliced: cannot watch src/: too many\n- unrecorded: could not write x\n"
            ),
            "{md}"
        );
    }
}
