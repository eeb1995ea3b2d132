//! The live table the control window shows, and `orch status` prints: one line per task with
//! its state, agent, attempts, the time its attempts ran, its token use and cost so far, and
//! what its agent is doing now (its transcript's last line); then, per task, why its latest
//! attempt sent back was refused or interrupted; then the sandbox, leftovers, violations and
//! the engines' warnings.

use std::fmt::Write as _;

use super::{clip, duration, first_line, terminal_width, violation_lines, warning_lines};
use crate::progress::{self, Progress};
use crate::state::{AttemptOutcome, RunDir, RunState, TaskState, TaskStatus};

/// Up to this many distinct warnings are listed (the latest): the table must fit a screen.
const WARNINGS_LISTED: usize = 10;

/// The run's table at `now` (ms since the epoch), from its state and its agents' logs: every
/// task's row (`orch status`).
pub fn table(state: &RunState, dir: &RunDir, now: u64) -> String {
    table_of(state, dir, now, None)
}

/// The table as a screen of `lines` lines shows it (the control window, redrawn every
/// second): as many tasks' rows as fit, those at work first, and how many more there are. Its
/// cost (the rows made, the logs looked at) is the screen's, not the run's: an engine with 256
/// silent agents costs what one with 20 does.
pub fn screen(state: &RunState, dir: &RunDir, now: u64, lines: usize) -> String {
    // The header, the table's head, the line of what is not shown, and room for the sections
    // under the table (sent back, violations, warnings), which are cut to a few lines each.
    table_of(state, dir, now, Some(lines.saturating_sub(12).max(5)))
}

/// Which tasks' rows a screen with room for `room` of them shows: those at work first, then
/// those that failed, those waiting, and those done; in plan order.
fn shown(state: &RunState, room: Option<usize>) -> (Vec<&TaskState>, usize) {
    let all: Vec<&TaskState> = state.tasks_in_order().collect();
    let Some(room) = room.filter(|&room| room < all.len()) else {
        return (all, 0);
    };
    let rank = |t: &TaskState| match t.state {
        TaskStatus::Running => 0,
        TaskStatus::Failed | TaskStatus::Blocked => 1,
        TaskStatus::Pending => 2,
        _ => 3,
    };
    let mut by_rank: Vec<(usize, &TaskState)> = all.iter().copied().enumerate().collect();
    by_rank.sort_by_key(|&(i, t)| (rank(t), i));
    let mut kept: Vec<(usize, &TaskState)> = by_rank.into_iter().take(room).collect();
    kept.sort_by_key(|&(i, _)| i);
    let hidden = all.len() - kept.len();
    (kept.into_iter().map(|(_, t)| t).collect(), hidden)
}

fn table_of(state: &RunState, dir: &RunDir, now: u64, room: Option<usize>) -> String {
    let (shown, hidden) = shown(state, room);
    let rows: Vec<(&TaskState, Progress)> = shown
        .into_iter()
        .map(|task| (task, progress::of_task(dir, task)))
        .collect();
    // Token columns only where some agent reports its use (agent CLIs do; scripts do not).
    let with_usage = rows.iter().any(|(_, p)| p.usage.is_some());
    let fixed = if with_usage { 48 + 18 } else { 48 };
    let width = terminal_width();
    let last_width = width.saturating_sub(fixed).max(10);
    let mut out = String::new();
    let usage_head = if with_usage {
        format!(" {:>9} {:>7}", "TOKENS", "COST")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{:<10} {:<8} {:<12} {:>3} {:>8}{usage_head}  LAST OUTPUT",
        "TASK", "STATE", "AGENT", "TRY", "ELAPSED"
    );
    for (task, progress) in &rows {
        // The attempts' own running time, from the journal: not the time since the first
        // start, which would count waits and the downtime between engines.
        let elapsed = if task.history.is_empty() {
            String::new()
        } else {
            duration(task.ran_ms(now))
        };
        let judged = state
            .judging
            .as_ref()
            .is_some_and(|(_, ids)| ids.contains(&task.id));
        // The agent has exited but the task is not settled: it is being checked.
        let checking = task.state == TaskStatus::Running && task.ended_at_ms.is_some();
        let last = match task.state {
            TaskStatus::Failed | TaskStatus::Blocked => task.reason.clone().unwrap_or_default(),
            _ if judged => "with the judge…".to_string(),
            _ if checking => "checking its gates…".to_string(),
            // Waiting for its next attempt: why the last one was sent back.
            TaskStatus::Pending if task.attempts > 0 => task
                .reason
                .as_deref()
                .map(|r| format!("to retry: {}", first_line(r)))
                .unwrap_or_default(),
            _ => progress.last_line.clone(),
        };
        let usage = match (&progress.usage, with_usage) {
            (_, false) => String::new(),
            (None, true) => format!(" {:>9} {:>7}", "", ""),
            (Some(u), true) => format!(
                " {:>9} {:>7}",
                progress::tokens_short(u),
                u.cost_usd.map(progress::cost_short).unwrap_or_default()
            ),
        };
        let _ = writeln!(
            out,
            "{:<10} {:<8} {:<12} {:>3} {:>8}{usage}  {}",
            clip(task.id.as_str(), 10),
            task.state.name(),
            clip(&task.agent, 12),
            task.attempts,
            elapsed,
            clip(&first_line(&last), last_width)
        );
    }
    if with_usage {
        // Every agent's use: all the tasks' (those not shown too), the planner's, the judge's.
        let used = crate::budget::measure(dir, state);
        let total = crate::workers::Usage {
            input_tokens: used.by.iter().map(|s| s.input_tokens).sum(),
            output_tokens: used.by.iter().map(|s| s.output_tokens).sum(),
            cost_usd: Some(used.usd).filter(|&c| c > 0.0),
        };
        let uncosted = if used.uncosted.is_empty() {
            String::new()
        } else {
            format!("no cost reported by {}", used.uncosted.join(", "))
        };
        let _ = writeln!(
            out,
            "{:<10} {:<8} {:<12} {:>3} {:>8} {:>9} {:>7}  {}",
            "TOTAL",
            "",
            "all agents",
            "",
            "",
            progress::tokens_short(&total),
            total.cost_usd.map(progress::cost_short).unwrap_or_default(),
            clip(&uncosted, last_width)
        );
    }
    if hidden > 0 {
        let _ = writeln!(
            out,
            "… {hidden} more task(s) not shown here: `{} status` lists every one",
            crate::invocation::orch()
        );
    }
    let setbacks: Vec<String> = rows
        .iter()
        .filter_map(|(task, _)| Some((task, task.last_setback()?)))
        // A task failed for good shows why in its row.
        .filter(|(_, a)| a.outcome != AttemptOutcome::Failed)
        .map(|(task, a)| {
            let reasons: Vec<String> = a.reasons.iter().map(|r| first_line(r)).collect();
            let line = format!(
                "  {}: attempt {} {} after {}: {}",
                task.id,
                a.attempt,
                a.outcome.name(),
                duration(a.ran_ms(now)),
                reasons.join("; ")
            );
            clip(&line, width.max(40))
        })
        .collect();
    if !setbacks.is_empty() {
        let _ = writeln!(
            out,
            "\nSENT BACK (the latest per task; `orch report` has every attempt)"
        );
        for line in setbacks {
            let _ = writeln!(out, "{line}");
        }
    }
    if let Some(reason) = &state.sandbox_off {
        let _ = writeln!(out, "\nNO SANDBOX: the agents run unconfined: {reason}");
    }
    if !state.sandbox_refusals.is_empty() {
        let _ = writeln!(out, "\nREFUSED BY THE SANDBOX");
        for r in &state.sandbox_refusals {
            let _ = writeln!(out, "  task {} (attempt {}): {}", r.task, r.attempt, r.line);
        }
    }
    if !state.leftovers.is_empty() {
        let _ = writeln!(out, "\nLEFT RUNNING BY AGENTS (limits.leftovers)");
        for line in state
            .leftovers
            .iter()
            .flat_map(crate::state::LeftoverRecord::lines)
        {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !state.violations.is_empty() {
        let _ = writeln!(out, "\nVIOLATIONS");
        for line in violation_lines(&state.violations) {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !state.warnings.is_empty() {
        let _ = writeln!(
            out,
            "\nWARNINGS (the engine's: what went wrong without stopping the run)"
        );
        for line in warning_lines(&state.warnings, WARNINGS_LISTED) {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TaskId;
    use crate::state::{Event, Record};

    /// A Claude Code worker mid-run: its pane shows the transcript, its logs keep the JSON.
    const CLAUDE_SO_FAR: &str = r#"{"type":"system","subtype":"init","session_id":"s"}
{"type":"assistant","message":{"id":"msg_1","content":[{"type":"tool_use","name":"Write","input":{"file_path":"/p/src/api/auth.py"}}],"usage":{"input_tokens":36000,"output_tokens":2400}}}
{"type":"user","message":{"content":[{"type":"tool_result","content":"ok"}]}}
{"duration_api_ms":70,"stop_reason":"end_turn"}
"#;

    fn run(dir: &RunDir, events: Vec<Event>) -> RunState {
        let plan: crate::plan::Plan = serde_json::from_str(
            r#"{"tasks":[{"id":"api","agent":"claude","task":"t","files":["src/api/auth.py"]},
                {"id":"db","agent":"claude","task":"t","files":["db.py"]}]}"#,
        )
        .unwrap();
        let mut all = vec![Event::PlanAccepted { plan }];
        all.extend(events);
        // The attempt's launch spec names its agent's kind.
        let attempt = dir.task_attempt(&TaskId::new("api"), 1);
        std::fs::create_dir_all(&attempt).unwrap();
        let spec = crate::agent_process::launcher::LaunchSpec {
            title: "api".into(),
            argv: vec!["claude".into()],
            env: vec![("ORCH_AGENT_KIND".into(), "claude".into())],
            cwd: "/p".into(),
            output_log: attempt.join("output.log"),
            stdout_log: attempt.join("stdout.log"),
            exit_file: attempt.join("exit.json"),
            env_file: None,
            stdin: None,
            sandbox: None,
            notice: None,
        };
        std::fs::write(
            attempt.join(crate::agent_process::launcher::SPEC_FILE),
            serde_json::to_vec(&spec).unwrap(),
        )
        .unwrap();
        replay(all)
    }

    /// The state after `events`, the n-th journaled at n s.
    fn replay(events: Vec<Event>) -> RunState {
        let records: Vec<Record> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Record {
                t: 1_000 * (i as u64 + 1),
                event,
            })
            .collect();
        RunState::replay(&records)
    }

    #[test]
    fn a_screen_shows_the_tasks_at_work_first_and_how_many_more_there_are() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path(), "r");
        let tasks: Vec<String> = (1..=30)
            .map(|i| format!(r#"{{"id":"t{i}","agent":"a","task":"t","files":["f{i}"]}}"#))
            .collect();
        let plan = serde_json::from_str(&format!(r#"{{"tasks":[{}]}}"#, tasks.join(","))).unwrap();
        let mut events = vec![Event::PlanAccepted { plan }];
        // The last five are at work; the rest wait.
        events.extend((26..=30).map(|i| Event::TaskStarted {
            task: TaskId::new(format!("t{i}")),
            attempt: 1,
            continues: None,
        }));
        let state = replay(events);
        let all = table(&state, &dir, 9_000);
        assert!(all.contains("t1 ") && all.contains("t30"), "{all}");
        assert!(!all.contains("more task"), "{all}");

        // 20 lines leave room for 8 rows: the five at work, then the first three waiting.
        let screen = screen(&state, &dir, 9_000, 20);
        let rows: Vec<&str> = screen.lines().filter(|l| l.starts_with('t')).collect();
        assert_eq!(rows.len(), 8, "{screen}");
        assert!(
            rows[0].starts_with("t1 ") && rows[3].starts_with("t26"),
            "{screen}"
        );
        assert!(rows[7].starts_with("t30"), "{screen}");
        assert!(
            screen.contains("… 22 more task(s) not shown here"),
            "{screen}"
        );
    }

    #[test]
    fn an_agent_clis_row_shows_its_transcript_and_its_use_so_far() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path(), "r");
        let a = || TaskId::new("api");
        let state = run(
            &dir,
            vec![Event::TaskStarted {
                task: a(),
                attempt: 1,
                continues: None,
            }],
        );
        let attempt = dir.task_attempt(&a(), 1);
        std::fs::write(attempt.join("stdout.log"), CLAUDE_SO_FAR).unwrap();
        std::fs::write(attempt.join("output.log"), CLAUDE_SO_FAR).unwrap();
        std::fs::write(
            attempt.join("transcript.log"),
            "· session started\n→ Write src/api/auth.py\n",
        )
        .unwrap();
        let table = table(&state, &dir, 4_500);
        let row = table.lines().find(|l| l.starts_with("api")).unwrap();
        assert!(row.contains("→ Write src/api/auth.py"), "{table}");
        assert!(!row.contains('{'), "no raw JSON: {table}");
        assert!(row.contains("36k/2.4k"), "the tokens so far: {table}");
        assert!(row.contains("2.5s"), "running since 2 000: {table}");
        assert!(
            table.starts_with("TASK") && table.contains("TOKENS"),
            "{table}"
        );

        // More of the stream arrives: the count follows it.
        let more = r#"{"type":"assistant","message":{"id":"msg_2","content":[],"usage":{"input_tokens":1000,"output_tokens":100}}}
{"type":"result","subtype":"success","is_error":false,"num_turns":2,"total_cost_usd":0.192,"usage":{"input_tokens":37000,"output_tokens":2500}}
"#;
        let mut stdout = std::fs::OpenOptions::new()
            .append(true)
            .open(attempt.join("stdout.log"))
            .unwrap();
        std::io::Write::write_all(&mut stdout, more.as_bytes()).unwrap();
        let table = super::table(&state, &dir, 4_500);
        let row = table.lines().find(|l| l.starts_with("api")).unwrap();
        assert!(
            row.contains("37k/2.5k") && row.contains("$0.192"),
            "{table}"
        );
    }

    #[test]
    fn an_attempt_sent_back_says_why_and_elapsed_is_the_attempts_own_time() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path(), "r");
        let a = || TaskId::new("api");
        let state = run(
            &dir,
            vec![
                Event::TaskStarted {
                    task: a(),
                    attempt: 1,
                    continues: None,
                },
                Event::TaskExited {
                    task: a(),
                    attempt: 1,
                    code: Some(0),
                    signal: None,
                    ended_at_ms: None,
                },
                Event::TaskRequeued {
                    task: a(),
                    attempt: 1,
                    reasons: vec![
                        "gate `test` failed: 1 failed\nFAILED test_auth.py::test_expiry".into(),
                    ],
                },
                Event::TaskStarted {
                    task: a(),
                    attempt: 2,
                    continues: None,
                },
            ],
        );
        // Attempt 1 ran 1 s (2 000 to 3 000); attempt 2 runs since 5 000.
        let table = table(&state, &dir, 5_500);
        let row = table.lines().find(|l| l.starts_with("api")).unwrap();
        assert!(
            row.contains("1.5s"),
            "1 s + 0.5 s, not the wait between: {table}"
        );
        assert!(table.contains("SENT BACK"), "{table}");
        assert!(
            table.contains("api: attempt 1 refused after 1.0s: gate `test` failed: 1 failed"),
            "{table}"
        );
        assert!(
            !table.contains("TOKENS"),
            "no agent reported its use: {table}"
        );
    }

    #[test]
    fn the_engines_warnings_are_listed_under_the_table() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path(), "r");
        let state = run(&dir, vec![]);
        assert!(
            !table(&state, &dir, 5_000).contains("WARNINGS"),
            "none, none said"
        );
        let state = run(
            &dir,
            vec![Event::Warning {
                kind: crate::state::WarningKind::Unpoliced,
                message: "cannot watch the project's .git/ (gone)".into(),
            }],
        );
        let table = table(&state, &dir, 5_000);
        let section = table.split("\nWARNINGS").nth(1).expect(&table);
        assert!(
            section.contains("\n  unpoliced: cannot watch the project's .git/ (gone)\n"),
            "{table}"
        );
    }
}
