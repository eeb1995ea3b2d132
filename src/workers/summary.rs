//! What an agent CLI's event stream says about its run, in one shape for all CLIs: the final
//! answer, an error that ended it, the actions its permissions refused, token use and cost,
//! the session id. Each adapter fills a [`Summary`] from its own events; [`Summary::assess`]
//! turns it into the one-line failure the engine records.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Assessment, Usage};
use crate::transcript::first_line;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// The agent's text: every message it wrote, in order, the final one last. Answers are
    /// read by their last match (a plan, a verdict), so one given before a closing remark is
    /// not lost.
    pub answer: Option<String>,
    /// Why the run failed, as the CLI put it (an API error, a failed turn).
    pub error: Option<String>,
    /// Actions the CLI's permissions refused, e.g. `Write /p/stray.txt`.
    pub denied: Vec<String>,
    pub usage: Option<Usage>,
    pub session_id: Option<String>,
    /// Whether the stream's closing event came (a result, a finished turn).
    pub finished: bool,
}

impl Summary {
    /// The run as the engine sees it. `cli` names the CLI in the reason; `closing` names the
    /// event whose absence means the output is incomplete.
    pub fn assess(&self, cli: &str, closing: &str) -> Assessment {
        let failure = if let Some(error) = &self.error {
            Some(format!("{cli} reported an error: {}", first_line(error)))
        } else if !self.denied.is_empty() {
            let shown: Vec<String> = self.denied.iter().take(3).map(|d| first_line(d)).collect();
            let more = match self.denied.len() {
                n if n > 3 => format!(" and {} more", n - 3),
                _ => String::new(),
            };
            Some(format!(
                "{cli} refused {} action(s) outside the agent's permissions: {}{more}",
                self.denied.len(),
                shown.join("; ")
            ))
        } else if !self.finished {
            Some(format!(
                "{cli}'s output has no {closing} event, so the run cannot be checked: did it \
                 stop early, or do the agent's args change its output format?"
            ))
        } else {
            None
        };
        Assessment {
            failure,
            usage: self.usage.clone(),
            session_id: self.session_id.clone(),
        }
    }

    /// Sets the answer from the agent's messages, when it wrote any.
    pub fn answer_from(&mut self, texts: &[String]) {
        let texts: Vec<&str> = texts
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if !texts.is_empty() {
            self.answer = Some(texts.join("\n\n"));
        }
    }

    /// The answer, or else all of stdout (an answer that cannot be found is better judged
    /// whole than lost).
    pub fn answer_or(&self, stdout: &str) -> String {
        self.answer.clone().unwrap_or_else(|| stdout.to_string())
    }
}

/// Token use and cost so far, tallied event by event as a CLI's stream arrives, so that the
/// live table shows them while the agent works, not only once it exited. Each adapter says
/// what its events count ([`crate::workers::Adapter::tally`]); its [`Summary`] takes its
/// usage from the same tally, so the live count and the final one agree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Use counted from finished units: a step, a turn.
    counted: Option<Usage>,
    /// Use of messages that arrive in several events, by message id: each one's latest count.
    messages: BTreeMap<String, Usage>,
    /// The run's totals from its closing event: they replace what was tallied before.
    total: Option<Usage>,
}

impl Tally {
    /// Adds a finished unit's use.
    pub fn add(&mut self, input: u64, output: u64, cost: Option<f64>) {
        let usage = self.counted.get_or_insert_with(Usage::default);
        usage.input_tokens += input;
        usage.output_tokens += output;
        if let Some(cost) = cost {
            *usage.cost_usd.get_or_insert(0.0) += cost;
        }
    }

    /// A message's use so far (a later count for the same message replaces the earlier).
    pub fn message(&mut self, id: &str, usage: Usage) {
        self.messages.insert(id.to_string(), usage);
    }

    /// The run's totals, from its closing event.
    pub fn total(&mut self, usage: Usage) {
        self.total = Some(usage);
    }

    /// The use so far: the totals once given, else what was tallied; `None` when no event
    /// counted any.
    pub fn usage(&self) -> Option<Usage> {
        if let Some(total) = &self.total {
            return Some(total.clone());
        }
        let mut sum = self.counted.clone();
        for usage in self.messages.values() {
            let s = sum.get_or_insert_with(Usage::default);
            s.input_tokens += usage.input_tokens;
            s.output_tokens += usage.output_tokens;
            if let Some(cost) = usage.cost_usd {
                *s.cost_usd.get_or_insert(0.0) += cost;
            }
        }
        sum
    }
}

/// The JSON objects among stdout's lines; other lines (warnings some CLIs print) are skipped.
pub fn events(stdout: &str) -> impl Iterator<Item = Value> + '_ {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
}

/// A string field, if present and a string.
pub fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(String::from)
}

/// A number field as u64 (0 when absent).
pub fn count(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// What a tool call acts on, from its input: the file, the command, the pattern; else the
/// input itself, compact.
pub fn target_of(input: &Value) -> String {
    const KEYS: [&str; 10] = [
        "file_path",
        "filePath",
        "path",
        "notebook_path",
        "command",
        "cmd",
        "pattern",
        "url",
        "query",
        "description",
    ];
    for key in KEYS {
        match input.get(key) {
            Some(Value::String(s)) => return s.clone(),
            // Codex's shell tool takes an argv.
            Some(Value::Array(words)) => {
                let words: Vec<&str> = words.iter().filter_map(Value::as_str).collect();
                return words.join(" ");
            }
            _ => {}
        }
    }
    match input {
        Value::Null => String::new(),
        Value::Object(map) if map.is_empty() => String::new(),
        other => other.to_string(),
    }
}

/// `bash -lc 'cmd'` (how Codex reports its commands) as `cmd`.
pub fn unwrap_shell(command: &str) -> String {
    match shlex::split(command).as_deref() {
        Some([shell, flag, inner])
            if shell.ends_with("sh") && flag.starts_with('-') && flag.ends_with('c') =>
        {
            inner.clone()
        }
        _ => command.to_string(),
    }
}

/// "12 in / 3 out tokens · $0.0042", for the transcript.
pub fn usage_line(usage: &Usage) -> String {
    let mut line = format!(
        "{} in / {} out tokens",
        usage.input_tokens, usage.output_tokens
    );
    if let Some(cost) = usage.cost_usd {
        line.push_str(&format!(" · ${cost:.4}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_in_one_line_and_in_order_of_weight() {
        let mut s = Summary {
            finished: true,
            ..Summary::default()
        };
        assert_eq!(s.assess("x", "result").failure, None);
        s.denied = (1..=5).map(|i| format!("Write /p/{i}")).collect();
        assert_eq!(
            s.assess("x", "result").failure.unwrap(),
            "x refused 5 action(s) outside the agent's permissions: Write /p/1; Write /p/2; \
             Write /p/3 and 2 more"
        );
        s.error = Some("API Error: 401\nstack".into());
        assert_eq!(
            s.assess("x", "result").failure.unwrap(),
            "x reported an error: API Error: 401"
        );
        let unfinished = Summary::default().assess("x", "result").failure.unwrap();
        assert!(unfinished.contains("no result event"), "{unfinished}");
    }

    #[test]
    fn a_tally_counts_units_and_messages_until_the_totals_replace_them() {
        let mut t = Tally::default();
        assert_eq!(t.usage(), None);
        t.add(10, 2, Some(0.5));
        let message = |input, output| Usage {
            input_tokens: input,
            output_tokens: output,
            cost_usd: None,
        };
        t.message("m1", message(100, 1));
        // The same message again, with its output grown: counted once, at its latest.
        t.message("m1", message(100, 30));
        t.message("m2", message(50, 5));
        assert_eq!(
            t.usage(),
            Some(Usage {
                input_tokens: 160,
                output_tokens: 37,
                cost_usd: Some(0.5)
            })
        );
        t.total(message(7, 7));
        assert_eq!(t.usage(), Some(message(7, 7)));
    }

    #[test]
    fn targets_and_shell_commands() {
        assert_eq!(
            target_of(&serde_json::json!({"file_path": "/a", "content": "x"})),
            "/a"
        );
        assert_eq!(
            target_of(&serde_json::json!({"command": ["ls", "-l"]})),
            "ls -l"
        );
        assert_eq!(unwrap_shell("/bin/bash -lc \"echo 'hi'\""), "echo 'hi'");
        assert_eq!(unwrap_shell("ls -l"), "ls -l");
    }
}
