//! The scripted model server on its own, over HTTP: each wire protocol's answers, the script
//! (planner, worker tests-first, judge), the faults, and the tolerant reading of the context
//! line. Needs no agent CLI, so it always runs.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::{Value, json};
use support::model_server::ModelServer;
use support::model_server::script::context_in;

/// POSTs `body` to `path` and returns (status, body).
fn post(server: &ModelServer, path: &str, body: &Value) -> (u16, String) {
    let mut conn = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let body = body.to_string();
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The `data:` payloads of an SSE body that are JSON.
fn events(sse: &str) -> Vec<Value> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

fn prompt(ctx: &Value) -> String {
    format!("# You are an agent\n\nORCH_CONTEXT {ctx}\n")
}

fn worker(task_text: &str) -> Value {
    json!({"role": "worker", "task": "w", "files": ["src/w.sh", "tests/w_test.sh"],
           "specs": [], "request": "r", "attempt": 1, "project_dir": "/p",
           "task_text": task_text})
}

fn anthropic(ctx: &Value, results: usize) -> Value {
    let mut messages =
        vec![json!({"role": "user", "content": [{"type": "text", "text": prompt(ctx)}]})];
    for i in 0..results {
        messages.push(json!({"role": "assistant", "content": [{"type": "tool_use", "id": i, "name": "Write", "input": {}}]}));
        messages.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": i, "content": "ok"}]}));
    }
    json!({"model": "m", "stream": true, "tools": [{"name": "Write"}], "messages": messages})
}

#[test]
fn a_worker_writes_its_tests_first_then_its_code_then_answers() {
    let server = ModelServer::start();
    let ctx = worker("do it");
    let (status, body) = post(&server, "/v1/messages?beta=true", &anthropic(&ctx, 0));
    assert_eq!(status, 200);
    let start = events(&body)
        .into_iter()
        .find(|e| e["type"] == "content_block_start")
        .unwrap();
    assert_eq!(start["content_block"]["name"], "Write");
    let delta = events(&body)
        .into_iter()
        .find(|e| e["type"] == "content_block_delta")
        .unwrap();
    let input: Value =
        serde_json::from_str(delta["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(input["file_path"], "/p/tests/w_test.sh");
    assert!(
        input["content"]
            .as_str()
            .unwrap()
            .contains("written through anthropic-messages")
    );
    let (_, body) = post(&server, "/v1/messages", &anthropic(&ctx, 1));
    assert!(body.contains("/p/src/w.sh"));
    let (_, body) = post(&server, "/v1/messages", &anthropic(&ctx, 2));
    assert!(
        body.contains("\"end_turn\"") && body.contains("is done"),
        "{body}"
    );
    let log = server.exchanges();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].task.as_deref(), Some("w"));
}

#[test]
fn each_protocol_gets_its_own_tool_call() {
    let server = ModelServer::start();
    let text = prompt(&worker("x"));
    // Responses API (Codex): a shell command that writes the file.
    let (_, body) = post(
        &server,
        "/v1/responses",
        &json!({"model": "m", "stream": true, "tools": [{"type": "function", "name": "exec_command"}],
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}]}),
    );
    let done = events(&body)
        .into_iter()
        .find(|e| e["type"] == "response.output_item.done")
        .unwrap();
    assert_eq!(done["item"]["name"], "exec_command");
    assert!(
        done["item"]["arguments"]
            .as_str()
            .unwrap()
            .contains("mkdir -p")
    );
    assert!(
        events(&body)
            .iter()
            .any(|e| e["type"] == "response.completed")
    );
    // Chat Completions (OpenCode): the `write` tool, a usage chunk, [DONE].
    let (_, body) = post(
        &server,
        "/v1/chat/completions",
        &json!({"model": "m", "stream": true, "tools": [{"type": "function", "function": {"name": "write"}}],
                "messages": [{"role": "user", "content": text}]}),
    );
    let call = &events(&body)[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "write");
    assert!(body.trim_end().ends_with("data: [DONE]"));
    // Gemini: one functionCall to write_file.
    let (_, body) = post(
        &server,
        "/v1beta/models/m:streamGenerateContent?alt=sse",
        &json!({"contents": [{"role": "user", "parts": [{"text": text}]}],
                "tools": [{"functionDeclarations": [{"name": "write_file"}]}]}),
    );
    let part = &events(&body)[0]["candidates"][0]["content"]["parts"][0];
    assert_eq!(part["functionCall"]["name"], "write_file");
}

#[test]
fn the_planner_writes_a_spec_then_plans_a_task_per_worker() {
    let server = ModelServer::start();
    let ctx = json!({"role": "planner", "task": null, "files": [], "specs": [], "request": "r",
                     "attempt": 1, "project_dir": "/p", "workers": ["a", "b"]});
    let (_, body) = post(&server, "/v1/messages", &anthropic(&ctx, 0));
    assert!(body.contains("/p/specs/overview.md"));
    let (_, body) = post(&server, "/v1/messages", &anthropic(&ctx, 1));
    let delta = events(&body)
        .into_iter()
        .find(|e| e["type"] == "content_block_delta")
        .unwrap();
    let answer = delta["delta"]["text"].as_str().unwrap();
    let plan = orch::plan::extract_plan(answer).expect("a plan in the answer");
    assert_eq!(plan["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(plan["tasks"][1]["files"][0], "tests/b_test.sh");
}

#[test]
fn faults_answer_as_each_provider_would() {
    let server = ModelServer::start();
    let (status, body) = post(
        &server,
        "/v1/messages",
        &anthropic(&worker("[model:401]"), 0),
    );
    assert_eq!(status, 401);
    assert!(body.contains("authentication_error"));
    let (status, _) = post(
        &server,
        "/v1/messages",
        &anthropic(&worker("[model:500]"), 0),
    );
    assert_eq!(status, 500);
    let (status, body) = post(
        &server,
        "/v1/messages",
        &anthropic(&worker("[model:garbage]"), 0),
    );
    assert_eq!(status, 200);
    assert!(events(&body).is_empty());
    let (status, _) = post(&server, "/v1/nothing", &json!({}));
    assert_eq!(status, 404);
}

#[test]
fn a_stray_write_comes_after_the_owned_files() {
    let server = ModelServer::start();
    let ctx = worker("[model:stray=elsewhere/x.txt]");
    let (_, body) = post(&server, "/v1/messages", &anthropic(&ctx, 2));
    assert!(body.contains("/p/elsewhere/x.txt"), "{body}");
}

#[test]
fn the_context_is_found_however_the_cli_quoted_the_prompt() {
    let ctx = json!({"role": "worker", "task": "a", "request": "say \"hi\"\nplease"});
    let plain = prompt(&ctx);
    assert_eq!(context_in(&plain).unwrap()["request"], "say \"hi\"\nplease");
    // JSON-quoted once, and twice.
    let quoted = serde_json::to_string(&plain).unwrap();
    assert_eq!(context_in(&quoted).unwrap()["task"], "a");
    let twice = serde_json::to_string(&quoted).unwrap();
    assert_eq!(context_in(&twice).unwrap()["task"], "a");
    // OpenCode's way: wrapped in quotes, inner quotes escaped, newlines left raw.
    let loose = format!("\"{}\"", plain.replace('\\', "\\\\").replace('"', "\\\""));
    assert_eq!(context_in(&loose).unwrap()["request"], "say \"hi\"\nplease");
    // A fake context line earlier in the prompt does not win over the real, last one.
    let fake = format!("ORCH_CONTEXT {{\"role\": \"judge\"}}\n{plain}");
    assert_eq!(context_in(&fake).unwrap()["role"], "worker");
}
