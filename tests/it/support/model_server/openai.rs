//! OpenAI's two wire protocols: the Responses API (`POST /v1/responses`, as Codex calls it)
//! and Chat Completions (`POST /v1/chat/completions`, as OpenCode's openai-compatible provider
//! calls it), each parsed into a [`Conversation`] and answered as SSE.

use serde_json::{Value, json};

use super::script::Action;
use super::{Conversation, Protocol, Response};

pub(super) fn parse_responses(body: &Value) -> Conversation {
    let mut tool_results = 0;
    let mut last_result_failed = false;
    for item in body["input"].as_array().into_iter().flatten() {
        let kind = item["type"].as_str().unwrap_or("");
        if kind == "function_call_output" || kind == "custom_tool_call_output" {
            tool_results += 1;
            let output = match &item["output"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            last_result_failed = failed_command(&output);
        }
    }
    Conversation {
        protocol: Protocol::Responses,
        model: body["model"].as_str().unwrap_or("stub-model").to_string(),
        tools: body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().or(t["type"].as_str()).map(String::from))
            .collect(),
        tool_results,
        last_result_failed,
        stream: body["stream"].as_bool().unwrap_or(false),
        body: body.clone(),
    }
}

/// Whether a command's output says it failed ("exited with code 1", "exit code: 2").
fn failed_command(output: &str) -> bool {
    let lower = output.to_ascii_lowercase();
    ["exited with code ", "exit code: ", "exit_code\":"]
        .iter()
        .any(|marker| {
            lower.match_indices(marker).any(|(at, m)| {
                let rest = lower[at + m.len()..].trim_start();
                rest.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit() && c != '0')
            })
        })
}

/// Codex writes files through its shell tool; `mkdir -p` first, as its commands do not
/// create directories.
fn write_command(path: &str, content: &str) -> String {
    let dir = path.rsplit_once('/').map_or(".", |(dir, _)| dir);
    format!(
        "mkdir -p {} && printf '%s' {} > {}",
        sh_quote(dir),
        sh_quote(content),
        sh_quote(path)
    )
}

fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

pub(super) fn render_responses(c: &Conversation, action: &Action) -> Response {
    let n = c.tool_results;
    let item = match action {
        Action::Write { path, content } => {
            let cmd = write_command(path, content);
            let (name, arguments) = if c.tools.iter().any(|t| t == "exec_command") {
                ("exec_command", json!({"cmd": cmd}))
            } else {
                ("shell", json!({"command": ["bash", "-lc", cmd]}))
            };
            json!({
                "type": "function_call", "id": format!("fc_{n}"), "call_id": format!("call_{n}"),
                "name": name, "arguments": arguments.to_string(), "status": "completed"
            })
        }
        Action::Text(text) => json!({
            "type": "message", "id": format!("msg_{n}"), "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]
        }),
    };
    let usage = json!({
        "input_tokens": 100, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 120
    });
    let id = format!("resp_{n}");
    let mut events = vec![
        json!({"type": "response.created", "response": {
            "id": id, "object": "response", "status": "in_progress", "model": c.model,
            "output": []
        }}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": item}),
    ];
    if let Action::Text(text) = action {
        events.push(json!({
            "type": "response.output_text.delta", "item_id": format!("msg_{n}"),
            "output_index": 0, "content_index": 0, "delta": text
        }));
    }
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
    events.push(json!({"type": "response.completed", "response": {
        "id": id, "object": "response", "status": "completed", "model": c.model,
        "output": [item], "usage": usage
    }}));
    let mut body = String::new();
    for event in events {
        body.push_str(&format!(
            "event: {}\ndata: {event}\n\n",
            event["type"].as_str().unwrap_or("")
        ));
    }
    sse(body)
}

pub(super) fn parse_chat(body: &Value) -> Conversation {
    let mut tool_results = 0;
    let mut last_result_failed = false;
    for message in body["messages"].as_array().into_iter().flatten() {
        if message["role"] == "tool" {
            tool_results += 1;
            let content = match &message["content"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            last_result_failed = content.to_ascii_lowercase().contains("error");
        }
    }
    Conversation {
        protocol: Protocol::Chat,
        model: body["model"].as_str().unwrap_or("stub-model").to_string(),
        tools: body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["function"]["name"].as_str().map(String::from))
            .collect(),
        tool_results,
        last_result_failed,
        stream: body["stream"].as_bool().unwrap_or(false),
        body: body.clone(),
    }
}

pub(super) fn render_chat(c: &Conversation, action: &Action) -> Response {
    let n = c.tool_results;
    let chunk = |choices: Value, usage: Value| {
        json!({
            "id": format!("chatcmpl-{n}"), "object": "chat.completion.chunk", "created": 0,
            "model": c.model, "choices": choices, "usage": usage
        })
    };
    let (delta, finish) = match action {
        Action::Write { path, content } => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "index": 0, "id": format!("call_{n}"), "type": "function",
                "function": {
                    "name": "write",
                    "arguments": json!({"filePath": path, "content": content}).to_string()
                }
            }]}),
            "tool_calls",
        ),
        Action::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
    };
    if !c.stream {
        let mut message = delta.clone();
        if let Some(calls) = message["tool_calls"].as_array_mut() {
            for call in calls {
                call.as_object_mut().map(|o| o.remove("index"));
            }
        }
        return Response::json(
            200,
            &json!({
                "id": format!("chatcmpl-{n}"), "object": "chat.completion", "created": 0,
                "model": c.model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
            }),
        );
    }
    let chunks = [
        chunk(
            json!([{"index": 0, "delta": delta, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": finish}]),
            Value::Null,
        ),
        chunk(
            json!([]),
            json!({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}),
        ),
    ];
    let mut body = String::new();
    for chunk in chunks {
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    sse(body)
}

fn sse(body: String) -> Response {
    Response {
        status: 200,
        content_type: "text/event-stream",
        body: body.into_bytes(),
    }
}
