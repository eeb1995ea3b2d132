//! The live table the control window shows, and `orch status` prints: one line per task with
//! its state, agent, attempts, elapsed time and last output line, then the violations.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::state::{RunDir, RunState, TaskStatus};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The terminal's width, so that the table's last column is cut rather than wrapped.
pub fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own; a failure leaves it zeroed.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(120)
    }
}

pub fn table(state: &RunState, dir: &RunDir, now: u64) -> String {
    // The fixed columns take 47 characters; the last output gets what is left.
    let last_width = terminal_width().saturating_sub(48).max(10);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:<8} {:<12} {:>3} {:>8}  LAST OUTPUT",
        "TASK", "STATE", "AGENT", "TRY", "ELAPSED"
    );
    for task in state.tasks_in_order() {
        let elapsed = match (task.started_at_ms, task.ended_at_ms) {
            (Some(start), Some(end)) => duration(end.saturating_sub(start)),
            (Some(start), None) if task.state == TaskStatus::Running => {
                duration(now.saturating_sub(start))
            }
            _ => String::new(),
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
            // Waiting for its next attempt: why the last one stopped.
            TaskStatus::Pending if task.interrupted.is_some() => {
                task.reason.clone().unwrap_or_default()
            }
            _ if task.attempts > 0 => {
                // A CLI's event stream is in its transcript, not in output.log.
                let attempt = dir.task_attempt(&task.id, task.attempts);
                let transcript = attempt.join("transcript.log");
                let log = if transcript.exists() {
                    transcript
                } else {
                    attempt.join("output.log")
                };
                if task.state == TaskStatus::Done {
                    settled_last_line(&log)
                } else {
                    last_line(&log)
                }
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<10} {:<8} {:<12} {:>3} {:>8}  {}",
            clip(task.id.as_str(), 10),
            task.state.name(),
            clip(&task.agent, 12),
            task.attempts,
            elapsed,
            clip(&last, last_width)
        );
    }
    if !state.violations.is_empty() {
        let _ = writeln!(out, "\nVIOLATIONS");
        for line in violation_lines(&state.violations) {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// Up to this many violations are listed one per line; a flood is summarized.
const VIOLATIONS_LISTED: usize = 20;

/// One line per violation, or for a flood the first few and a summary: how many, counted
/// by suspects and by directory.
pub fn violation_lines(violations: &[crate::state::ViolationRecord]) -> Vec<String> {
    let describe = |v: &crate::state::ViolationRecord| {
        describe_violation(
            v.n,
            &v.change,
            &v.path,
            &v.suspects,
            &v.action,
            v.saved.as_deref(),
        )
    };
    if violations.len() <= VIOLATIONS_LISTED {
        return violations.iter().map(describe).collect();
    }
    let first = crate::flood::LIST_MAX;
    let mut lines: Vec<String> = violations.iter().take(first).map(describe).collect();
    let mut by_suspects: BTreeMap<String, usize> = BTreeMap::new();
    for v in violations {
        let who: Vec<String> = v.suspects.iter().map(ToString::to_string).collect();
        let who = if who.is_empty() {
            "nobody running".to_string()
        } else {
            who.join(", ")
        };
        *by_suspects.entry(who).or_default() += 1;
    }
    let suspects: Vec<String> = by_suspects
        .iter()
        .map(|(who, n)| format!("{n} by {who}"))
        .collect();
    let paths: Vec<String> = violations.iter().map(|v| v.path.clone()).collect();
    lines.push(format!(
        "… {} violations in all ({}): {}; `orch status --json` lists each",
        violations.len(),
        suspects.join(", "),
        crate::flood::summarize(&paths, |p| p)
    ));
    lines
}

/// One line about a violation: what changed, who is suspected, what was done.
pub fn describe_violation(
    n: u32,
    change: &str,
    path: &str,
    suspects: &[crate::plan::TaskId],
    action: &str,
    saved: Option<&str>,
) -> String {
    let suspects: Vec<String> = suspects.iter().map(ToString::to_string).collect();
    let suspects = if suspects.is_empty() {
        "nobody running".to_string()
    } else {
        suspects.join(", ")
    };
    let saved = saved.map(|s| format!(" (saved: {s})")).unwrap_or_default();
    format!("#{n} {change} {path}, suspects: {suspects} → {action}{saved}")
}

/// The last line of a done task's log, read once: that log no longer changes, and reading
/// every done task's log at every redraw held up the engine's loop for 5–10 ms a second in
/// a run of 400 tasks (see BENCHMARKS.md).
fn settled_last_line(path: &Path) -> String {
    static SETTLED: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());
    let mut settled = SETTLED.lock().unwrap_or_else(|e| e.into_inner());
    settled
        .entry(path.to_path_buf())
        .or_insert_with(|| last_line(path))
        .clone()
}

/// The last non-empty line a log ends with, cleaned of terminal escapes.
pub fn last_line(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.lines()
        .rev()
        .map(strip_escapes)
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
}

fn strip_escapes(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequences end with a letter; others are two characters long.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\r' {
            out.clear();
        } else if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out.trim().to_string()
}

pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{}.{}s", s, (ms % 1000) / 100)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_carriage_returns_are_cleaned() {
        assert_eq!(strip_escapes("\u{1b}[32mok\u{1b}[0m done"), "ok done");
        assert_eq!(strip_escapes("10%\r50%\r100%"), "100%");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(1_500), "1.5s");
        assert_eq!(duration(125_000), "2m05s");
        assert_eq!(duration(7_500_000), "2h05m");
    }
}
