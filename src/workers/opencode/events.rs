//! OpenCode's `run --format json` events: per step a `step_start`, then `text`, `tool_use`
//! (with the tool's state: completed or error) and `reasoning` parts, then `step_finish`
//! (tokens, cost, and `reason: "stop"` on the last step); an `error` event for an error that
//! ends the run (an API error, with its status code).

use serde_json::Value;

use crate::transcript::Entry;
use crate::workers::summary::{self, Summary, Tally, count, target_of, text};

pub(super) fn entries(event: &Value) -> Option<Vec<Entry>> {
    let kind = event.get("type")?.as_str()?;
    let part = &event["part"];
    let mut out = Vec::new();
    match kind {
        "text" => out.push(Entry::Text(text(part, "text").unwrap_or_default())),
        "tool_use" => {
            let tool = text(part, "tool").unwrap_or_default();
            let state = &part["state"];
            let target = target_of(&state["input"]);
            match state["status"].as_str().unwrap_or("") {
                "error" => {
                    let message = text(state, "error").unwrap_or_default();
                    out.push(if is_denial(&message) {
                        Entry::Denied {
                            tool,
                            target,
                            message,
                        }
                    } else {
                        Entry::ToolFailed {
                            tool,
                            target,
                            message,
                        }
                    });
                }
                _ => out.push(Entry::Tool { tool, target }),
            }
        }
        "step_finish" if part["reason"] == "stop" => out.push(Entry::Finished {
            ok: true,
            summary: "finished".into(),
        }),
        "error" => out.push(Entry::Error(error_message(event))),
        "step_start" | "step_finish" | "reasoning" => {}
        _ => return None,
    }
    Some(out)
}

/// Whether a tool's error says a permission rule refused it.
fn is_denial(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("rule which prevents")
        || lower.contains("permission") && lower.contains("denied")
}

/// "API error 401: invalid api key", from an `error` event.
fn error_message(event: &Value) -> String {
    let error = &event["error"];
    let data = &error["data"];
    let message = text(data, "message")
        .or_else(|| text(error, "message"))
        .unwrap_or_else(|| error.to_string());
    let name = text(error, "name").unwrap_or_else(|| "error".into());
    match data["statusCode"].as_u64() {
        Some(status) => format!("{name} {status}: {message}"),
        None => format!("{name}: {message}"),
    }
}

/// What one event counts of the run's token use: each finished step's tokens and cost.
pub(super) fn tally(t: &mut Tally, event: &Value) {
    if event["type"] == "step_finish" {
        let part = &event["part"];
        let tokens = &part["tokens"];
        t.add(
            count(tokens, "input") + count(&tokens["cache"], "read"),
            count(tokens, "output") + count(tokens, "reasoning"),
            part["cost"].as_f64(),
        );
    }
}

pub(super) fn summarize(stdout: &str) -> Summary {
    let mut s = Summary::default();
    let mut texts: Vec<String> = Vec::new();
    let mut used = Tally::default();
    for event in summary::events(stdout) {
        tally(&mut used, &event);
        if s.session_id.is_none() {
            s.session_id = text(&event, "sessionID");
        }
        let part = &event["part"];
        match event["type"].as_str().unwrap_or("") {
            "text" => texts.extend(text(part, "text")),
            "tool_use" if part["state"]["status"] == "error" => {
                let message = text(&part["state"], "error").unwrap_or_default();
                if is_denial(&message) {
                    s.denied.push(format!(
                        "{} {}",
                        text(part, "tool").unwrap_or_default(),
                        target_of(&part["state"]["input"])
                    ));
                }
            }
            "step_finish" if part["reason"] != "tool-calls" => s.finished = true,
            "error" => s.error = Some(error_message(&event)),
            _ => {}
        }
    }
    s.answer_from(&texts);
    s.usage = used.usage();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shapes recorded from OpenCode 1.18.33 (trimmed).
    const RUN: &str = r#"{"type":"step_start","sessionID":"ses_1","part":{"type":"step-start"}}
{"type":"tool_use","sessionID":"ses_1","part":{"type":"tool","tool":"write","state":{"status":"completed","input":{"content":"x","filePath":"/p/tests/a_test.sh"},"output":"Wrote file successfully."}}}
{"type":"step_finish","sessionID":"ses_1","part":{"reason":"tool-calls","type":"step-finish","tokens":{"total":120,"input":100,"output":20,"reasoning":0,"cache":{"write":0,"read":0}},"cost":0}}
{"type":"step_start","sessionID":"ses_1","part":{"type":"step-start"}}
{"type":"tool_use","sessionID":"ses_1","part":{"type":"tool","tool":"write","state":{"status":"error","input":{"content":"x","filePath":"/p/stray/x.txt"},"error":"The user has specified a rule which prevents you from using this specific tool call."}}}
{"type":"step_finish","sessionID":"ses_1","part":{"reason":"tool-calls","tokens":{"input":100,"output":20,"reasoning":0,"cache":{"write":0,"read":0}},"cost":0.5}}
{"type":"step_start","sessionID":"ses_1","part":{"type":"step-start"}}
{"type":"text","sessionID":"ses_1","part":{"type":"text","text":"Task a is done."}}
{"type":"step_finish","sessionID":"ses_1","part":{"reason":"stop","tokens":{"input":100,"output":20,"reasoning":0,"cache":{"write":0,"read":0}},"cost":0}}
"#;

    const API_ERROR: &str = r#"{"type":"error","sessionID":"ses_2","error":{"name":"APIError","data":{"message":"invalid api key","statusCode":401,"isRetryable":false}}}
"#;

    #[test]
    fn a_refused_write_fails_the_run() {
        let s = summarize(RUN);
        assert_eq!(s.answer.as_deref(), Some("Task a is done."));
        let a = s.assess("opencode", "step_finish");
        assert_eq!(
            a.failure.unwrap(),
            "opencode refused 1 action(s) outside the agent's permissions: write /p/stray/x.txt"
        );
        let usage = a.usage.unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (300, 60));
        assert_eq!(usage.cost_usd, Some(0.5));
        assert_eq!(a.session_id.as_deref(), Some("ses_1"));
    }

    #[test]
    fn an_api_error_is_the_reason() {
        let a = summarize(API_ERROR).assess("opencode", "step_finish");
        assert_eq!(
            a.failure.unwrap(),
            "opencode reported an error: APIError 401: invalid api key"
        );
    }

    #[test]
    fn the_transcript_shows_writes_and_denials() {
        let shown: Vec<Entry> = RUN
            .lines()
            .flat_map(|l| entries(&serde_json::from_str(l).unwrap()).unwrap())
            .collect();
        assert_eq!(
            shown[0],
            Entry::Tool {
                tool: "write".into(),
                target: "/p/tests/a_test.sh".into()
            }
        );
        assert!(matches!(&shown[1], Entry::Denied { target, .. } if target == "/p/stray/x.txt"));
        assert_eq!(shown[2], Entry::Text("Task a is done.".into()));
    }
}
