//! The Gemini API as Gemini CLI calls it: `POST /v1beta/models/MODEL:streamGenerateContent
//! ?alt=sse` (one `data:` line per chunk) and `:generateContent` (one JSON object). Side
//! questions the CLI asks for in JSON (is the model done? which model to route to?) get a
//! JSON answer that says "done".

use serde_json::{Value, json};

use super::script::Action;
use super::{Conversation, Protocol, Response};

/// `None` for endpoints that are not a generation (`:countTokens`).
pub(super) fn parse(path: &str, body: &Value) -> Option<Conversation> {
    let (model, method) = path.trim_start_matches("/v1beta/models/").split_once(':')?;
    let stream = match method {
        "streamGenerateContent" => true,
        "generateContent" => false,
        _ => return None,
    };
    let mut tool_results = 0;
    let mut last_result_failed = false;
    for content in body["contents"].as_array().into_iter().flatten() {
        for part in content["parts"].as_array().into_iter().flatten() {
            if let Some(response) = part.get("functionResponse") {
                tool_results += 1;
                last_result_failed = response["response"].get("error").is_some();
            }
        }
    }
    Some(Conversation {
        protocol: Protocol::Gemini,
        model: model.to_string(),
        tools: body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["functionDeclarations"].as_array().into_iter().flatten())
            .filter_map(|f| f["name"].as_str().map(String::from))
            .collect(),
        tool_results,
        last_result_failed,
        stream,
        body: body.clone(),
    })
}

/// Whether the CLI wants a JSON answer (its own checks, not the agent's turn).
fn wants_json(c: &Conversation) -> bool {
    let config = &c.body["generationConfig"];
    config["responseMimeType"] == "application/json"
        || config.get("responseSchema").is_some()
        || config.get("responseJsonSchema").is_some()
}

pub(super) fn render(c: &Conversation, action: &Action) -> Response {
    let part = if wants_json(c) {
        let answer = json!({
            "next_speaker": "user",
            "reasoning": "the scripted model is done",
            "model_choice": "flash",
            "complexity_reasoning": "scripted",
            "complexity_score": 1
        });
        json!({"text": answer.to_string()})
    } else {
        match action {
            Action::Write { path, content } => json!({"functionCall": {
                "name": "write_file",
                "args": {"file_path": path, "content": content}
            }}),
            Action::Text(text) => json!({"text": text}),
        }
    };
    let chunk = json!({
        "candidates": [{
            "content": {"role": "model", "parts": [part]},
            "finishReason": "STOP",
            "index": 0
        }],
        "usageMetadata": {
            "promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 120
        },
        "modelVersion": c.model
    });
    if c.stream {
        Response {
            status: 200,
            content_type: "text/event-stream",
            body: format!("data: {chunk}\r\n\r\n").into_bytes(),
        }
    } else {
        Response::json(200, &chunk)
    }
}
