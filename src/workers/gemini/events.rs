//! Gemini CLI's `-o stream-json` events: `init` (session, model), `message` (the user's and
//! the assistant's text, the latter in `delta` pieces), `tool_use`, `tool_result` (with an
//! error type such as `policy_violation`), `error`, and the closing `result` (status and
//! token stats).

use std::collections::HashMap;

use serde_json::Value;

use crate::transcript::Entry;
use crate::workers::summary::{self, Summary, Tally, count, target_of, text};

pub(super) fn entries(event: &Value) -> Option<Vec<Entry>> {
    let kind = event.get("type")?.as_str()?;
    let mut out = Vec::new();
    match kind {
        "init" => out.push(Entry::Start {
            model: text(event, "model"),
            session: text(event, "session_id"),
        }),
        "message" if event["role"] == "assistant" => {
            let content = text(event, "content").unwrap_or_default();
            out.push(if event["delta"] == true {
                Entry::TextPiece(content)
            } else {
                Entry::Text(content)
            });
        }
        "tool_use" => out.push(Entry::Tool {
            tool: text(event, "tool_name").unwrap_or_default(),
            target: target_of(&event["parameters"]),
        }),
        "tool_result" if event["status"] == "error" => {
            let error = &event["error"];
            let message = text(error, "message")
                .or_else(|| text(event, "output"))
                .unwrap_or_default();
            out.push(if error["type"] == "policy_violation" {
                Entry::Denied {
                    tool: String::new(),
                    target: String::new(),
                    message,
                }
            } else {
                Entry::ToolFailed {
                    tool: String::new(),
                    target: String::new(),
                    message,
                }
            });
        }
        "error" => {
            let message = text(event, "message").unwrap_or_default();
            out.push(if event["severity"] == "warning" {
                Entry::Notice(message)
            } else {
                Entry::Error(message)
            });
        }
        "result" => {
            let ok = event["status"] == "success";
            if !ok {
                out.push(Entry::Error(result_error(event)));
            }
            let stats = &event["stats"];
            out.push(Entry::Finished {
                ok,
                summary: format!(
                    "finished · {} tool call(s) · {} in / {} out tokens",
                    count(stats, "tool_calls"),
                    count(stats, "input_tokens"),
                    count(stats, "output_tokens")
                ),
            });
        }
        "message" | "tool_result" => {}
        _ => return None,
    }
    Some(out)
}

fn result_error(event: &Value) -> String {
    text(&event["error"], "message").unwrap_or_else(|| "the run failed".into())
}

/// What one event counts of the run's token use: the closing `result`'s stats (the stream
/// gives none before).
pub(super) fn tally(t: &mut Tally, event: &Value) {
    let stats = &event["stats"];
    if event["type"] == "result" && stats.is_object() {
        t.add(
            count(stats, "input_tokens"),
            count(stats, "output_tokens"),
            None,
        );
    }
}

pub(super) fn summarize(stdout: &str) -> Summary {
    let mut s = Summary::default();
    let mut calls: HashMap<String, String> = HashMap::new();
    // The assistant's messages; one arrives in delta pieces until a tool call ends it.
    let mut texts: Vec<String> = Vec::new();
    let mut turn_text = String::new();
    let mut used = Tally::default();
    for event in summary::events(stdout) {
        tally(&mut used, &event);
        match event["type"].as_str().unwrap_or("") {
            "init" => s.session_id = text(&event, "session_id"),
            "message" if event["role"] == "assistant" => {
                if event["delta"] != true {
                    texts.push(std::mem::take(&mut turn_text));
                }
                turn_text.push_str(&text(&event, "content").unwrap_or_default());
            }
            "tool_use" => {
                let call = format!(
                    "{} {}",
                    text(&event, "tool_name").unwrap_or_default(),
                    target_of(&event["parameters"])
                );
                calls.insert(text(&event, "tool_id").unwrap_or_default(), call);
            }
            "tool_result" => {
                texts.push(std::mem::take(&mut turn_text));
                if event["error"]["type"] == "policy_violation" {
                    let id = text(&event, "tool_id").unwrap_or_default();
                    s.denied.push(
                        calls
                            .get(&id)
                            .cloned()
                            .unwrap_or_else(|| "a tool call".into()),
                    );
                }
            }
            "result" => {
                s.finished = true;
                if event["status"] != "success" {
                    s.error = Some(result_error(&event));
                }
            }
            _ => {}
        }
    }
    texts.push(turn_text);
    s.answer_from(&texts);
    s.usage = used.usage();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shapes recorded from Gemini CLI 0.61.0 (trimmed).
    const RUN: &str = r##"{"type":"init","session_id":"g-1","model":"stub-model"}
{"type":"message","role":"user","content":"# w"}
{"type":"tool_use","tool_name":"write_file","tool_id":"w1","parameters":{"content":"x","file_path":"/p/tests/a_test.sh"}}
{"type":"tool_result","tool_id":"w1","status":"success"}
{"type":"tool_use","tool_name":"write_file","tool_id":"w3","parameters":{"content":"x","file_path":"/p/stray/x.txt"}}
{"type":"tool_result","tool_id":"w3","status":"error","output":"Tool execution denied by policy.","error":{"type":"policy_violation","message":"Tool execution denied by policy. orch: this task may only write its own files"}}
{"type":"message","role":"assistant","content":"Task a: ","delta":true}
{"type":"message","role":"assistant","content":"done.","delta":true}
{"type":"result","status":"success","stats":{"total_tokens":480,"input_tokens":400,"output_tokens":80,"tool_calls":3}}
"##;

    const API_ERROR: &str = r#"{"type":"init","session_id":"g-2","model":"stub-model"}
{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: {\"error\":{\"code\":401,\"message\":\"invalid api key\"}}]"},"stats":{"input_tokens":0,"output_tokens":0}}
"#;

    #[test]
    fn a_refused_write_fails_the_run() {
        let s = summarize(RUN);
        assert_eq!(s.answer.as_deref(), Some("Task a: done."));
        let a = s.assess("gemini", "result");
        assert_eq!(
            a.failure.unwrap(),
            "gemini refused 1 action(s) outside the agent's permissions: write_file /p/stray/x.txt"
        );
        assert_eq!(a.usage.unwrap().output_tokens, 80);
        assert_eq!(a.session_id.as_deref(), Some("g-1"));
    }

    #[test]
    fn an_api_error_is_the_reason() {
        let failure = summarize(API_ERROR)
            .assess("gemini", "result")
            .failure
            .unwrap();
        assert!(
            failure.starts_with("gemini reported an error: [API Error:"),
            "{failure}"
        );
        assert!(failure.contains("401"), "{failure}");
    }

    #[test]
    fn the_transcript_streams_text_pieces() {
        let shown: Vec<Entry> = RUN
            .lines()
            .flat_map(|l| entries(&serde_json::from_str(l).unwrap()).unwrap())
            .collect();
        assert!(shown.contains(&Entry::TextPiece("Task a: ".into())));
        assert!(shown.iter().any(|e| matches!(e, Entry::Denied { .. })));
        assert!(matches!(
            shown.last(),
            Some(Entry::Finished { ok: true, .. })
        ));
    }
}
