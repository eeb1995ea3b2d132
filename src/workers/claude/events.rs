//! Claude Code's `stream-json` events: `system` (`init`, `permission_denied`), `assistant`
//! (text and tool_use blocks), `user` (tool results), and the closing `result`, which holds
//! the answer, `is_error`, `permission_denials`, usage, cost and the session id.

use serde_json::Value;

use crate::transcript::Entry;
use crate::workers::Usage;
use crate::workers::summary::{self, Summary, Tally, count, target_of, text};

/// What one event shows in the transcript.
pub(super) fn entries(event: &Value) -> Option<Vec<Entry>> {
    let kind = event.get("type")?.as_str()?;
    let mut out = Vec::new();
    match kind {
        "system" => match event["subtype"].as_str().unwrap_or("") {
            "init" => out.push(Entry::Start {
                model: text(event, "model"),
                session: text(event, "session_id"),
            }),
            "permission_denied" => out.push(Entry::Denied {
                tool: text(event, "tool_name").unwrap_or_default(),
                target: String::new(),
                message: text(event, "message").unwrap_or_default(),
            }),
            "api_retry" | "retry" => out.push(Entry::Notice(format!(
                "retrying the API: {}",
                text(event, "error").unwrap_or_else(|| event.to_string())
            ))),
            _ => {}
        },
        "assistant" => {
            let api_error = event.get("error").is_some() || event["is_api_error_message"] == true;
            for block in blocks(event) {
                match block["type"].as_str().unwrap_or("") {
                    "text" => {
                        let t = text(block, "text").unwrap_or_default();
                        out.push(if api_error {
                            Entry::Error(t)
                        } else {
                            Entry::Text(t)
                        });
                    }
                    "tool_use" => out.push(Entry::Tool {
                        tool: text(block, "name").unwrap_or_default(),
                        target: target_of(&block["input"]),
                    }),
                    _ => {}
                }
            }
        }
        "user" => {
            // A refused tool call was shown by its `permission_denied` event already.
            let rejected = event["tool_result_meta"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["non_execution_kind"] == "user-rejected"));
            for block in blocks(event) {
                if block["type"] == "tool_result" && block["is_error"] == true && !rejected {
                    out.push(Entry::ToolFailed {
                        tool: String::new(),
                        target: String::new(),
                        message: result_text(&block["content"]),
                    });
                }
            }
        }
        "result" => {
            let mut s = Summary::default();
            summarize_result(event, &mut s);
            if let Some(error) = &s.error {
                out.push(Entry::Error(error.clone()));
            }
            let mut line = format!("finished after {} turn(s)", count(event, "num_turns"));
            if let Some(usage) = &s.usage {
                line.push_str(&format!(" · {}", summary::usage_line(usage)));
            }
            if !s.denied.is_empty() {
                line.push_str(&format!(" · {} action(s) denied", s.denied.len()));
            }
            out.push(Entry::Finished {
                ok: s.error.is_none() && s.denied.is_empty(),
                summary: line,
            });
        }
        "stream_event" | "rate_limit_event" => {}
        _ => return None,
    }
    Some(out)
}

/// What one event counts of the run's token use: each API message's usage as it streams
/// (a message comes in several events, one per content block, with the same id), until the
/// closing `result` gives the totals and the cost.
pub(super) fn tally(t: &mut Tally, event: &Value) {
    match event["type"].as_str().unwrap_or("") {
        "assistant" => {
            let message = &event["message"];
            if let (Some(id), Some(usage)) =
                (message["id"].as_str(), usage(&message["usage"], None))
            {
                t.message(id, usage);
            }
        }
        "result" => {
            if let Some(usage) = usage(&event["usage"], event["total_cost_usd"].as_f64()) {
                t.total(usage);
            }
        }
        _ => {}
    }
}

/// A `usage` object's counts; input counts the cached input too.
fn usage(usage: &Value, cost: Option<f64>) -> Option<Usage> {
    usage.is_object().then(|| Usage {
        input_tokens: count(usage, "input_tokens")
            + count(usage, "cache_creation_input_tokens")
            + count(usage, "cache_read_input_tokens"),
        output_tokens: count(usage, "output_tokens"),
        cost_usd: cost,
    })
}

/// The run, from all of stdout.
pub(super) fn summarize(stdout: &str) -> Summary {
    let mut s = Summary::default();
    let mut api_error = None;
    let mut texts = Vec::new();
    let mut used = Tally::default();
    for event in summary::events(stdout) {
        tally(&mut used, &event);
        match event["type"].as_str().unwrap_or("") {
            "system" if event["subtype"] == "init" => s.session_id = text(&event, "session_id"),
            "assistant" if event.get("error").is_some() => {
                api_error = blocks(&event)
                    .iter()
                    .find_map(|b| text(b, "text"))
                    .or_else(|| text(&event, "error"));
            }
            // The agent's own messages, not those of a subagent it started.
            "assistant" if event["parent_tool_use_id"].is_null() => texts.extend(
                blocks(&event)
                    .iter()
                    .filter(|b| b["type"] == "text")
                    .filter_map(|b| text(b, "text")),
            ),
            "result" => {
                summarize_result(&event, &mut s);
            }
            _ => {}
        }
    }
    if !s.finished && s.error.is_none() {
        s.error = api_error;
    }
    s.usage = used.usage();
    // Without messages in the stream, the result's text (the last message) stands.
    s.answer_from(&texts);
    s
}

/// Reads the closing `result` event into `s`.
fn summarize_result(event: &Value, s: &mut Summary) {
    s.finished = true;
    s.answer = text(event, "result");
    s.session_id = text(event, "session_id").or(s.session_id.take());
    s.usage = usage(&event["usage"], event["total_cost_usd"].as_f64());
    let subtype = event["subtype"].as_str().unwrap_or("success");
    if event["is_error"] == true {
        s.error = Some(
            text(event, "result")
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| format!("the run failed ({subtype})")),
        );
    } else if subtype != "success" {
        // error_max_turns, error_during_execution, ...
        s.error = Some(format!("the run ended with {subtype}"));
    }
    for denial in event["permission_denials"].as_array().into_iter().flatten() {
        s.denied.push(format!(
            "{} {}",
            denial["tool_name"].as_str().unwrap_or("a tool"),
            target_of(&denial["tool_input"])
        ));
    }
}

fn blocks(event: &Value) -> Vec<&Value> {
    event["message"]["content"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// A tool result's content: a string, or text blocks.
fn result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| text(p, "text"))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shapes recorded from Claude Code 2.1.330 (trimmed).
    const DENIED_RUN: &str = r#"{"type":"system","subtype":"init","cwd":"/p","session_id":"s-1","model":"stub-model","permissionMode":"default"}
{"type":"assistant","message":{"content":[{"id":"toolu_1","input":{"file_path":"/p/tests/a_test.sh","content":"x"},"name":"Write","type":"tool_use"}]},"session_id":"s-1"}
{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_1","type":"tool_result","content":"File created successfully at: /p/tests/a_test.sh"}]}}
{"type":"assistant","message":{"content":[{"id":"toolu_3","input":{"file_path":"/p/stray/x.txt","content":"x"},"name":"Write","type":"tool_use"}]}}
{"type":"system","subtype":"permission_denied","tool_name":"Write","tool_use_id":"toolu_3","message":"Claude requested permissions to write to /p/stray/x.txt, but you haven't granted it yet."}
{"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":"Claude requested permissions to write to /p/stray/x.txt, but you haven't granted it yet.","is_error":true,"tool_use_id":"toolu_3"}]},"tool_result_meta":[{"id":"toolu_3","non_execution_kind":"user-rejected"}]}
{"type":"assistant","message":{"content":[{"text":"Task a: done.","type":"text"}]}}
{"type":"result","subtype":"success","is_error":false,"num_turns":4,"result":"Task a: done.","session_id":"s-1","total_cost_usd":0.0032,"usage":{"input_tokens":400,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":80},"permission_denials":[{"tool_name":"Write","tool_use_id":"toolu_3","tool_input":{"file_path":"/p/stray/x.txt","content":"x"}}]}
"#;

    const API_ERROR_RUN: &str = r#"{"type":"system","subtype":"init","session_id":"s-2","model":"stub-model"}
{"type":"assistant","message":{"model":"<synthetic>","content":[{"type":"text","text":"Failed to authenticate. API Error: 401 invalid api key"}]},"error":"authentication_failed","is_api_error_message":true,"api_error_status":401}
{"type":"result","subtype":"success","is_error":true,"num_turns":1,"result":"Failed to authenticate. API Error: 401 invalid api key","session_id":"s-2","total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0},"permission_denials":[],"api_error_status":401}
"#;

    #[test]
    fn a_denied_write_fails_the_run_with_usage_and_session() {
        let s = summarize(DENIED_RUN);
        assert_eq!(s.answer.as_deref(), Some("Task a: done."));
        assert_eq!(s.session_id.as_deref(), Some("s-1"));
        let a = s.assess("claude", "result");
        assert_eq!(
            a.failure.unwrap(),
            "claude refused 1 action(s) outside the agent's permissions: Write /p/stray/x.txt"
        );
        let usage = a.usage.unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (400, 80));
        assert_eq!(usage.cost_usd, Some(0.0032));
    }

    #[test]
    fn a_plan_given_before_a_closing_remark_is_in_the_answer() {
        let stream = r#"{"type":"assistant","parent_tool_use_id":null,"message":{"content":[{"type":"text","text":"Plan: {\"tasks\": [{\"id\": 1}]}"},{"type":"tool_use","name":"Write","input":{"file_path":"/p/specs/a.md"}}]}}
{"type":"assistant","parent_tool_use_id":"toolu_9","message":{"content":[{"type":"text","text":"a subagent's note"}]}}
{"type":"assistant","parent_tool_use_id":null,"message":{"content":[{"type":"text","text":"Done."}]}}
{"type":"result","subtype":"success","is_error":false,"result":"Done.","session_id":"s"}
"#;
        let answer = summarize(stream).answer.unwrap();
        assert_eq!(answer, "Plan: {\"tasks\": [{\"id\": 1}]}\n\nDone.");
        assert!(crate::plan::extract_plan(&answer).is_some());
    }

    /// While the agent works, its messages' usage counts; the result's totals replace them.
    #[test]
    fn token_use_is_known_while_the_stream_arrives() {
        let stream = r#"{"type":"system","subtype":"init","session_id":"s"}
{"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":"Writing."}],"usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":3}}}
{"type":"assistant","message":{"id":"msg_1","content":[{"type":"tool_use","name":"Write","input":{"file_path":"/p/a"}}],"usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":20}}}
{"type":"user","message":{"content":[{"type":"tool_result","content":"ok"}]}}
{"type":"assistant","message":{"id":"msg_2","content":[{"type":"text","text":"Done."}],"usage":{"input_tokens":130,"output_tokens":5}}}
{"type":"result","subtype":"success","is_error":false,"num_turns":2,"result":"Done.","total_cost_usd":0.01,"usage":{"input_tokens":240,"output_tokens":25}}
"#;
        let mut t = Tally::default();
        let mut seen = Vec::new();
        for line in stream.lines() {
            tally(&mut t, &serde_json::from_str(line).unwrap());
            seen.push(
                t.usage()
                    .map(|u| (u.input_tokens, u.output_tokens, u.cost_usd)),
            );
        }
        assert_eq!(
            seen,
            [
                None,
                Some((100, 3, None)),
                Some((100, 20, None)),
                Some((100, 20, None)),
                Some((230, 25, None)),
                Some((240, 25, Some(0.01))),
            ]
        );
        let usage = summarize(stream).usage.unwrap();
        assert_eq!((usage.input_tokens, usage.cost_usd), (240, Some(0.01)));
        // Cut short before its result: what was used so far is still counted.
        let cut: String = stream.lines().take(3).collect::<Vec<_>>().join("\n");
        assert_eq!(summarize(&cut).usage.unwrap().output_tokens, 20);
    }

    #[test]
    fn an_api_error_is_the_reason() {
        let a = summarize(API_ERROR_RUN).assess("claude", "result");
        assert_eq!(
            a.failure.unwrap(),
            "claude reported an error: Failed to authenticate. API Error: 401 invalid api key"
        );
        // Cut short before its result: the API error still explains it.
        let cut: String = API_ERROR_RUN.lines().take(2).collect::<Vec<_>>().join("\n");
        assert!(summarize(&cut).error.unwrap().contains("401"));
    }

    #[test]
    fn the_transcript_shows_tools_denials_text_and_totals() {
        let shown: Vec<Entry> = DENIED_RUN
            .lines()
            .flat_map(|l| entries(&serde_json::from_str(l).unwrap()).unwrap())
            .collect();
        assert!(matches!(&shown[0], Entry::Start { session: Some(s), .. } if s == "s-1"));
        assert!(shown.contains(&Entry::Tool {
            tool: "Write".into(),
            target: "/p/tests/a_test.sh".into()
        }));
        assert_eq!(
            shown
                .iter()
                .filter(|e| matches!(e, Entry::Denied { .. }))
                .count(),
            1,
            "{shown:?}"
        );
        assert!(shown.contains(&Entry::Text("Task a: done.".into())));
        assert!(
            matches!(shown.last(), Some(Entry::Finished { ok: false, summary })
            if summary.contains("4 turn(s)") && summary.contains("1 action(s) denied"))
        );
    }
}
