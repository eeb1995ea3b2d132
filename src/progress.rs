//! What a task's agent is doing now and what it has used so far, as the logs of its attempts
//! tell it, for the live table and `orch status` (with or without an engine):
//! - the last line of its transcript: for an agent CLI, the readable rendering of its event
//!   stream that its pane shows (`transcript.log`), not the raw JSON its logs keep;
//! - its token use and cost over all its attempts: an ended attempt's from its exit record,
//!   the running one's tallied from its event stream as it arrives.
//!
//! Reading is cached, since the engine redraws every second: a settled attempt's files are
//! read once, a running attempt's stream only from where the last read stopped, and a last
//! line again only when its file's size or time changed (a `stat`, not an open: opening a log
//! in a watched directory also queues an inotify event for the engine's own watcher, and at
//! 256 silent agents those opens were most of the idle engine's time; see BENCHMARKS.md).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::agent_process::launcher::LaunchSpec;
use crate::agent_process::run::ExitRecord;
use crate::state::{RunDir, TaskState, TaskStatus};
use crate::workers::summary::Tally;
use crate::workers::{self, Adapter, Usage};

/// A task's progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// The last line its current (or last) attempt's agent showed; empty before any.
    pub last_line: String,
    /// Token use and cost over its attempts, where its agent's output reports them.
    pub usage: Option<Usage>,
}

/// The progress of `task`, from its attempts' directories in `dir`.
pub fn of_task(dir: &RunDir, task: &TaskState) -> Progress {
    if task.attempts == 0 {
        return Progress::default();
    }
    let current = dir.task_attempt(&task.id, task.attempts);
    // A settled task's last attempt no longer changes (the table shows a failed task's
    // reason, not this line, in the few seconds a killed agent's output may still drain).
    let last_line = if matches!(task.state, TaskStatus::Done | TaskStatus::Failed) {
        settled_last_line(&current)
    } else {
        shown_last_line(&current)
    };
    Progress {
        last_line,
        usage: usage_of_task(dir, task),
    }
}

/// `task`'s token use and cost over its attempts (its progress without its last line: what
/// the budget reads at every tick).
pub fn usage_of_task(dir: &RunDir, task: &TaskState) -> Option<Usage> {
    let mut usage: Option<Usage> = None;
    for attempt in 1..=task.attempts {
        if let Some(used) = attempt_usage(&dir.task_attempt(&task.id, attempt)) {
            add(&mut usage, &used);
        }
    }
    usage
}

fn add(total: &mut Option<Usage>, usage: &Usage) {
    let t = total.get_or_insert_with(Usage::default);
    t.input_tokens += usage.input_tokens;
    t.output_tokens += usage.output_tokens;
    if let Some(cost) = usage.cost_usd {
        *t.cost_usd.get_or_insert(0.0) += cost;
    }
}

/// The last line the attempt in `dir` showed: its transcript's when its agent streams events
/// (what its pane shows), else its output's.
fn shown_last_line(dir: &Path) -> String {
    let transcript = last_line(&dir.join("transcript.log"));
    if transcript.is_empty() {
        last_line(&dir.join("output.log"))
    } else {
        transcript
    }
}

/// `shown_last_line`, read once: a settled task's logs no longer change, and reading every
/// done task's log at every redraw held up the engine's loop for 5–10 ms a second in a run of 400
/// tasks (see BENCHMARKS.md).
fn settled_last_line(dir: &Path) -> String {
    static SETTLED: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);
    let mut settled = SETTLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    settled
        .get_or_insert_with(HashMap::new)
        .entry(dir.to_path_buf())
        .or_insert_with(|| shown_last_line(dir))
        .clone()
}

/// What one attempt used: its exit record's count once it ended (the same the report gives),
/// else its event stream's tally so far (a `kind: command` agent's `ORCH_USAGE` lines).
pub(crate) fn attempt_usage(dir: &Path) -> Option<Usage> {
    static CACHE: Mutex<Option<HashMap<PathBuf, Reading>>> = Mutex::new(None);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let reading = cache
        .get_or_insert_with(HashMap::new)
        .entry(dir.to_path_buf())
        .or_insert_with(|| Reading::Stream(Stream::default()));
    // The exit record is written last, once the stream is complete.
    let exit_file = dir.join("exit.json");
    // `exists` first: a failed read builds an error (with its backtrace, when enabled).
    if matches!(reading, Reading::Stream(_))
        && exit_file.exists()
        && let Ok(exit) = ExitRecord::read(&exit_file)
    {
        *reading = Reading::Ended(exit.usage);
    }
    match reading {
        Reading::Ended(usage) => usage.clone(),
        Reading::Stream(stream) => {
            stream.advance(dir);
            stream.tally.usage()
        }
    }
}

enum Reading {
    /// The attempt ended: its exit record's count, final.
    Ended(Option<Usage>),
    /// Its agent runs (or was lost without a record): its stream, read so far.
    Stream(Stream),
}

/// An attempt's event stream, read up to `offset`.
#[derive(Default)]
struct Stream {
    /// Its agent's adapter when it is an agent CLI that streams events (else `Some(None)`),
    /// from the attempt's launch spec, which names the kind of agent that ran; `None` until
    /// the spec is there (the attempt is journaled before its launcher is written).
    adapter: Option<Option<&'static dyn Adapter>>,
    /// A `kind: command` agent: its usage lines are read from its output instead.
    command: bool,
    offset: u64,
    /// An incomplete last line, waiting for the rest.
    partial: Vec<u8>,
    tally: Tally,
}

impl Stream {
    /// Tallies the events of the attempt in `dir` that arrived since the last read.
    fn advance(&mut self, dir: &Path) {
        if self.adapter.is_none() {
            let Ok(spec) = LaunchSpec::read(&dir.join(crate::agent_process::launcher::SPEC_FILE))
            else {
                return;
            };
            let kind = workers::kind_in_env(&spec.env);
            self.command = kind == Some(crate::config::AgentKind::Command);
            self.adapter = Some(kind.map(workers::adapter).filter(|a| a.streams_events()));
        }
        let (log, adapter) = match self.adapter {
            Some(Some(adapter)) => ("stdout.log", Some(adapter)),
            Some(None) if self.command => ("output.log", None),
            _ => return,
        };
        let Ok(mut file) = std::fs::File::open(dir.join(log)) else {
            return;
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            // Rewritten from the start (an attempt directory used again): read it anew.
            self.offset = 0;
            self.partial.clear();
            self.tally = Tally::default();
        }
        if len == self.offset || file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut new = Vec::new();
        let Ok(n) = file.take(len - self.offset).read_to_end(&mut new) else {
            return;
        };
        self.offset += n as u64;
        self.partial.extend_from_slice(&new);
        let complete = match self.partial.iter().rposition(|&b| b == b'\n') {
            Some(end) => self.partial.drain(..=end).collect::<Vec<u8>>(),
            None => return,
        };
        for line in complete.split(|&b| b == b'\n') {
            let Some(adapter) = adapter else {
                if let Some(u) = workers::command::usage_of_line(line) {
                    self.tally.add(u.input_tokens, u.output_tokens, u.cost_usd);
                }
                continue;
            };
            if line.first() != Some(&b'{') {
                continue;
            }
            if let Ok(event) = serde_json::from_slice::<serde_json::Value>(line) {
                adapter.tally(&mut self.tally, &event);
            }
        }
    }
}

/// The last non-empty line a log ends with, cleaned of terminal escapes.
pub fn last_line(path: &Path) -> String {
    /// Per file: its size and time when it was read, and the line read then.
    type Seen = (u64, Option<std::time::SystemTime>, String);
    static SEEN: Mutex<Option<HashMap<PathBuf, Seen>>> = Mutex::new(None);
    let Ok(meta) = std::fs::metadata(path) else {
        return String::new();
    };
    let stamp = (meta.len(), meta.modified().ok());
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let seen = seen.get_or_insert_with(HashMap::new);
    if let Some((len, modified, line)) = seen.get(path)
        && (*len, *modified) == stamp
    {
        return line.clone();
    }
    let line = read_last_line(path);
    seen.insert(path.to_path_buf(), (stamp.0, stamp.1, line.clone()));
    line
}

fn read_last_line(path: &Path) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
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

/// "36k/2.4k" (tokens in/out), compact for the table.
pub fn tokens_short(usage: &Usage) -> String {
    format!(
        "{}/{}",
        count_short(usage.input_tokens),
        count_short(usage.output_tokens)
    )
}

/// "$0.192", "$12.40".
pub fn cost_short(cost: f64) -> String {
    if cost < 1.0 {
        format!("${cost:.3}")
    } else {
        format!("${cost:.2}")
    }
}

fn count_short(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..10_000 => format!("{:.1}k", n as f64 / 1e3),
        10_000..1_000_000 => format!("{}k", n / 1_000),
        _ => format!("{:.1}M", n as f64 / 1e6),
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

    /// The line is cached by the file's size and time: a line appended is seen at the next
    /// read, and a file that went away shows nothing.
    #[test]
    fn a_last_line_is_read_again_only_when_its_file_changed() {
        use std::io::Write as _;
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("output.log");
        assert_eq!(last_line(&log), "");
        std::fs::write(&log, "first\n").unwrap();
        assert_eq!(last_line(&log), "first");
        assert_eq!(last_line(&log), "first");
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(b"second\n\n").unwrap();
        assert_eq!(last_line(&log), "second");
        std::fs::remove_file(&log).unwrap();
        assert_eq!(last_line(&log), "");
    }

    /// The attempt is journaled before its launcher (and its launch spec) is written: a read
    /// in between must not keep the attempt from being tallied once its stream comes.
    #[test]
    fn a_stream_read_before_its_launch_spec_is_tallied_once_it_is_there() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(attempt_usage(dir), None);
        let spec = LaunchSpec {
            title: "t".into(),
            argv: vec!["codex".into()],
            env: vec![("ORCH_AGENT_KIND".into(), "codex".into())],
            cwd: "/p".into(),
            output_log: dir.join("output.log"),
            stdout_log: dir.join("stdout.log"),
            exit_file: dir.join("exit.json"),
            env_file: None,
            stdin: None,
            sandbox: None,
            notice: None,
        };
        std::fs::write(
            dir.join(crate::agent_process::launcher::SPEC_FILE),
            serde_json::to_vec(&spec).unwrap(),
        )
        .unwrap();
        // A turn completed, and half of the next event's line.
        std::fs::write(
            dir.join("stdout.log"),
            "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":5,\"output_tokens\":2}}\n{\"type\":\"turn.comp",
        )
        .unwrap();
        assert_eq!(attempt_usage(dir).map(|u| u.input_tokens), Some(5));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("stdout.log"))
            .unwrap();
        std::io::Write::write_all(
            &mut file,
            b"leted\",\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}\n",
        )
        .unwrap();
        assert_eq!(attempt_usage(dir).map(|u| u.input_tokens), Some(12));
        // Once ended, the exit record's count is the word.
        let exit = ExitRecord {
            code: Some(0),
            signal: None,
            started_at_ms: 0,
            ended_at_ms: 1,
            failure: None,
            usage: Some(Usage {
                input_tokens: 13,
                output_tokens: 3,
                cost_usd: None,
            }),
            session_id: None,
            stopped_by: None,
            sandbox_refused: Vec::new(),
        };
        std::fs::write(dir.join("exit.json"), serde_json::to_vec(&exit).unwrap()).unwrap();
        assert_eq!(attempt_usage(dir).map(|u| u.input_tokens), Some(13));
    }

    #[test]
    fn counts_read_short() {
        let usage = Usage {
            input_tokens: 36_000,
            output_tokens: 2_400,
            cost_usd: Some(0.192),
        };
        assert_eq!(tokens_short(&usage), "36k/2.4k");
        assert_eq!(count_short(999), "999");
        assert_eq!(count_short(1_500_000), "1.5M");
        assert_eq!(cost_short(0.192), "$0.192");
        assert_eq!(cost_short(12.4), "$12.40");
    }
}
