//! Codex's `exec --json` events: `thread.started` (the session id), `turn.started`,
//! `item.started` / `item.completed` (agent messages, commands, file changes, non-fatal
//! `error` items), then `turn.completed` (usage) or `turn.failed`; a fatal `error` comes
//! before `turn.failed`.

use serde_json::Value;

use crate::transcript::Entry;
use crate::workers::summary::{self, Summary, Tally, count, text, unwrap_shell};

pub(super) fn entries(event: &Value) -> Option<Vec<Entry>> {
    let kind = event.get("type")?.as_str()?;
    let mut out = Vec::new();
    match kind {
        "thread.started" => out.push(Entry::Start {
            model: None,
            session: text(event, "thread_id"),
        }),
        "item.started" => {
            let item = &event["item"];
            match item["type"].as_str().unwrap_or("") {
                "command_execution" => out.push(Entry::Tool {
                    tool: "shell".into(),
                    target: unwrap_shell(item["command"].as_str().unwrap_or("")),
                }),
                "mcp_tool_call" => out.push(Entry::Tool {
                    tool: format!(
                        "{}/{}",
                        item["server"].as_str().unwrap_or("mcp"),
                        item["tool"].as_str().unwrap_or("?")
                    ),
                    target: String::new(),
                }),
                "web_search" => out.push(Entry::Tool {
                    tool: "search".into(),
                    target: text(item, "query").unwrap_or_default(),
                }),
                _ => {}
            }
        }
        "item.completed" => out.extend(completed(&event["item"])),
        "turn.completed" => {
            let mut used = Tally::default();
            tally(&mut used, event);
            let usage = used
                .usage()
                .map(|u| summary::usage_line(&u))
                .unwrap_or_default();
            out.push(Entry::Finished {
                ok: true,
                summary: format!("turn completed · {usage}"),
            });
        }
        "turn.failed" => out.push(Entry::Finished {
            ok: false,
            summary: format!("turn failed: {}", failed_message(event)),
        }),
        "error" => out.push(Entry::Error(text(event, "message").unwrap_or_default())),
        "turn.started" | "item.updated" => {}
        _ => return None,
    }
    Some(out)
}

fn completed(item: &Value) -> Vec<Entry> {
    let status = item["status"].as_str().unwrap_or("");
    match item["type"].as_str().unwrap_or("") {
        "agent_message" => vec![Entry::Text(text(item, "text").unwrap_or_default())],
        "command_execution" if declined(status) => vec![Entry::Denied {
            tool: "shell".into(),
            target: unwrap_shell(item["command"].as_str().unwrap_or("")),
            message: format!("the command was {status}"),
        }],
        "command_execution" => match item["exit_code"].as_i64() {
            Some(code) if code != 0 => {
                let output = item["aggregated_output"].as_str().unwrap_or("");
                let last = output.lines().rev().find(|l| !l.trim().is_empty());
                vec![Entry::ToolFailed {
                    tool: "shell".into(),
                    target: unwrap_shell(item["command"].as_str().unwrap_or("")),
                    message: format!("exit code {code}: {}", last.unwrap_or("")),
                }]
            }
            _ => vec![],
        },
        "file_change" => {
            let paths: Vec<String> = item["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{} ({})",
                        c["path"].as_str().unwrap_or("?"),
                        c["kind"].as_str().unwrap_or("change")
                    )
                })
                .collect();
            let entry = if status == "failed" || declined(status) {
                Entry::ToolFailed {
                    tool: "edit".into(),
                    target: paths.join(", "),
                    message: format!("the change {status}"),
                }
            } else {
                Entry::Tool {
                    tool: "edit".into(),
                    target: paths.join(", "),
                }
            };
            vec![entry]
        }
        // Codex reports problems it carries on from as error items.
        "error" => vec![Entry::Notice(text(item, "message").unwrap_or_default())],
        _ => vec![],
    }
}

fn declined(status: &str) -> bool {
    matches!(status, "declined" | "rejected" | "denied")
}

fn failed_message(event: &Value) -> String {
    text(&event["error"], "message").unwrap_or_else(|| "unknown error".into())
}

/// What one event counts of the run's token use: each completed turn's usage.
pub(super) fn tally(t: &mut Tally, event: &Value) {
    let usage = &event["usage"];
    if event["type"] == "turn.completed" && usage.is_object() {
        // Codex counts cached input inside input_tokens.
        t.add(
            count(usage, "input_tokens"),
            count(usage, "output_tokens"),
            None,
        );
    }
}

pub(super) fn summarize(stdout: &str) -> Summary {
    let mut s = Summary::default();
    let mut last_error = None;
    let mut texts = Vec::new();
    let mut used = Tally::default();
    for event in summary::events(stdout) {
        tally(&mut used, &event);
        match event["type"].as_str().unwrap_or("") {
            "thread.started" => s.session_id = text(&event, "thread_id"),
            "item.completed" => {
                let item = &event["item"];
                match item["type"].as_str().unwrap_or("") {
                    "agent_message" => texts.extend(text(item, "text")),
                    "command_execution" | "file_change"
                        if declined(item["status"].as_str().unwrap_or("")) =>
                    {
                        s.denied.push(format!(
                            "{} {}",
                            item["type"].as_str().unwrap_or(""),
                            unwrap_shell(item["command"].as_str().unwrap_or(""))
                        ));
                    }
                    _ => {}
                }
            }
            "turn.completed" => {
                s.finished = true;
                last_error = None;
            }
            "turn.failed" => {
                s.finished = true;
                s.error = Some(failed_message(&event));
            }
            "error" => last_error = text(&event, "message"),
            _ => {}
        }
    }
    // A fatal error that no turn event followed (the stream was cut short).
    if s.error.is_none() && !s.finished {
        s.error = last_error;
    }
    s.answer_from(&texts);
    s.usage = used.usage();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shapes recorded from codex-cli 0.169.0 (trimmed).
    const RUN: &str = r#"{"type":"thread.started","thread_id":"t-1"}
{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `stub-model` not found."}}
{"type":"turn.started"}
{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc \"mkdir -p /p/tests && printf x > /p/tests/a_test.sh\"","aggregated_output":"","exit_code":null,"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc \"mkdir -p /p/tests && printf x > /p/tests/a_test.sh\"","aggregated_output":"","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"command_execution","command":"/bin/bash -lc \"sh tests/a_test.sh\"","aggregated_output":"not ok 1\n","exit_code":1,"status":"failed"}}
{"type":"item.completed","item":{"id":"item_4","type":"agent_message","text":"Task a is done."}}
{"type":"turn.completed","usage":{"input_tokens":400,"cached_input_tokens":0,"output_tokens":80,"reasoning_output_tokens":0}}
"#;

    const FAILED: &str = r#"{"type":"thread.started","thread_id":"t-2"}
{"type":"turn.started"}
{"type":"error","message":"unexpected status 401 Unauthorized: invalid api key, url: http://127.0.0.1:1/v1/responses"}
{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized: invalid api key, url: http://127.0.0.1:1/v1/responses"}}
"#;

    #[test]
    fn a_completed_turn_passes_even_with_a_failing_command_and_a_warning() {
        let s = summarize(RUN);
        assert_eq!(s.answer.as_deref(), Some("Task a is done."));
        let a = s.assess("codex", "turn.completed");
        assert_eq!(a.failure, None);
        assert_eq!(a.session_id.as_deref(), Some("t-1"));
        assert_eq!(a.usage.unwrap().input_tokens, 400);
    }

    #[test]
    fn a_failed_turn_is_the_reason() {
        let failure = summarize(FAILED).assess("codex", "turn.completed").failure;
        assert!(
            failure
                .unwrap()
                .starts_with("codex reported an error: unexpected status 401"),
        );
    }

    #[test]
    fn the_transcript_shows_commands_their_failures_and_the_turn() {
        let shown: Vec<Entry> = RUN
            .lines()
            .flat_map(|l| entries(&serde_json::from_str(l).unwrap()).unwrap())
            .collect();
        assert!(shown.contains(&Entry::Tool {
            tool: "shell".into(),
            target: "mkdir -p /p/tests && printf x > /p/tests/a_test.sh".into()
        }));
        assert!(
            shown
                .iter()
                .any(|e| matches!(e, Entry::ToolFailed { message, .. }
            if message == "exit code 1: not ok 1"))
        );
        assert!(matches!(
            shown.last(),
            Some(Entry::Finished { ok: true, .. })
        ));
    }
}
