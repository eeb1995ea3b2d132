//! The Anthropic Messages API (`POST /v1/messages`), as Claude Code calls it: the request's
//! tools and tool results, and the answer as SSE (`message_start`, content blocks,
//! `message_delta`, `message_stop`) or as one JSON message when no stream was asked for.

use serde_json::{Value, json};

use super::script::Action;
use super::{Conversation, Protocol, Response};

pub(super) fn parse(body: &Value) -> Conversation {
    let mut tool_results = 0;
    let mut last_result_failed = false;
    for message in body["messages"].as_array().into_iter().flatten() {
        for block in message["content"].as_array().into_iter().flatten() {
            if block["type"] == "tool_result" {
                tool_results += 1;
                last_result_failed = block["is_error"].as_bool().unwrap_or(false);
            }
        }
    }
    Conversation {
        protocol: Protocol::Anthropic,
        model: body["model"].as_str().unwrap_or("stub-model").to_string(),
        tools: body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(String::from))
            .collect(),
        tool_results,
        last_result_failed,
        stream: body["stream"].as_bool().unwrap_or(false),
        body: body.clone(),
    }
}

pub(super) fn render(c: &Conversation, action: &Action) -> Response {
    let id = format!("msg_{}", c.tool_results);
    let (block, stop_reason) = match action {
        Action::Write { path, content } => (
            json!({
                "type": "tool_use",
                "id": format!("toolu_{}", c.tool_results + 1),
                "name": "Write",
                "input": {"file_path": path, "content": content}
            }),
            "tool_use",
        ),
        Action::Text(text) => (json!({"type": "text", "text": text}), "end_turn"),
    };
    let usage = json!({"input_tokens": 100, "output_tokens": 20});
    if !c.stream {
        return Response::json(
            200,
            &json!({
                "id": id, "type": "message", "role": "assistant", "model": c.model,
                "content": [block], "stop_reason": stop_reason, "stop_sequence": null,
                "usage": usage
            }),
        );
    }
    let mut events = vec![(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": c.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 100, "output_tokens": 1}
        }}),
    )];
    // The block starts empty and its content arrives as deltas, as the real API does.
    let (start, delta) = match action {
        Action::Write { .. } => {
            let mut start = block.clone();
            start["input"] = json!({});
            let partial = block["input"].to_string();
            (
                start,
                json!({"type": "input_json_delta", "partial_json": partial}),
            )
        }
        Action::Text(text) => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": text}),
        ),
    };
    events.push((
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": start}),
    ));
    events.push((
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": delta}),
    ));
    events.push((
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push((
        "message_delta",
        json!({"type": "message_delta",
               "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": 20}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    let mut body = String::new();
    for (name, data) in events {
        body.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    }
    Response {
        status: 200,
        content_type: "text/event-stream",
        body: body.into_bytes(),
    }
}
