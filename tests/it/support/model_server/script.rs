//! What the scripted model says next, decided from the request alone.
//!
//! The prompt's `ORCH_CONTEXT {json}` line says the role, the task, its files and the request;
//! the number of tool results already in the conversation says which step comes next:
//! - planner: write `specs/overview.md` through the CLI's file tool, then answer with a plan
//!   that gives one task to each worker the context names (`tests/<w>_test.sh`, `src/<w>.sh`);
//! - worker: write each owned file through the file tool, tests first, then a short summary;
//! - judge: a verdict JSON that passes; oracle: a line of advice.
//!
//! Directives in the task text (workers) or the request (others) change the script:
//! `[model:401]`, `[model:500]`, `[model:garbage]` answer every request with that fault, and
//! `[model:stray=PATH]` makes a worker also write PATH, which it does not own, and
//! `[model:hold=N]` makes the server hold a worker's request (no answer until the CLI goes
//! away) once it has N tool results, the first time only: a test can then interrupt the
//! agent mid-turn, and see its session continued (the next attempt's first request then
//! carries those N results).

use serde_json::{Value, json};

use super::{Conversation, Protocol};

/// The prompt line's marker (as in `orch::prompt::CONTEXT_MARKER`).
const MARKER: &str = "ORCH_CONTEXT ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// HTTP 401 with the provider's error body.
    Unauthorized,
    /// HTTP 500 with the provider's error body.
    ServerError,
    /// HTTP 200 whose body is not the protocol at all.
    Garbage,
}

impl Fault {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fault::Unauthorized => "401",
            Fault::ServerError => "500",
            Fault::Garbage => "garbage",
        }
    }
}

/// One model turn, independent of the wire protocol.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Call the CLI's file tool: write `content` to `path` (absolute).
    Write { path: String, content: String },
    /// Answer with text and end the turn.
    Text(String),
}

impl Action {
    pub(crate) fn summary(&self) -> String {
        match self {
            Action::Write { path, .. } => format!("write {path}"),
            Action::Text(text) => format!("text ({} bytes)", text.len()),
        }
    }
}

pub(crate) struct Decision {
    pub role: Option<String>,
    pub task: Option<String>,
    pub outcome: Result<Action, Fault>,
    /// Answer nothing: hold the request (`[model:hold=N]`).
    pub hold: bool,
}

pub(crate) fn decide(conversation: &Conversation) -> Decision {
    let Some(ctx) = find_context(&conversation.body) else {
        // Not an agent's prompt: a session title, a summary, a probe.
        return Decision {
            role: None,
            task: None,
            outcome: Ok(Action::Text("orch task".into())),
            hold: false,
        };
    };
    let role = ctx["role"].as_str().unwrap_or("").to_string();
    let task = match &ctx["task"] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let directives_in = if role == "worker" {
        ctx["task_text"].as_str().unwrap_or("")
    } else {
        ctx["request"].as_str().unwrap_or("")
    };
    let directives = directives(directives_in);
    let fault = directives.iter().find_map(|d| match d.as_str() {
        "401" => Some(Fault::Unauthorized),
        "500" => Some(Fault::ServerError),
        "garbage" => Some(Fault::Garbage),
        _ => None,
    });
    let outcome = match fault {
        Some(fault) => Err(fault),
        // A request without tools is a side question (OpenCode asks for a title first).
        None if conversation.tools.is_empty() => Ok(Action::Text("orch task".into())),
        None => Ok(match role.as_str() {
            "planner" => planner(&ctx, conversation),
            "worker" => worker(&ctx, conversation, &directives, task.as_deref()),
            "judge" => judge(&ctx),
            _ => {
                Action::Text("Advice: re-read the specs, then write the failing test first.".into())
            }
        }),
    };
    let hold = role == "worker"
        && !conversation.tools.is_empty()
        && directives
            .iter()
            .filter_map(|d| d.strip_prefix("hold=")?.parse::<usize>().ok())
            .any(|n| n == conversation.tool_results)
        && first_hold(&ctx, task.as_deref());
    Decision {
        role: Some(role),
        task,
        outcome,
        hold,
    }
}

/// Whether this task of this project was not held before (and now is).
fn first_hold(ctx: &Value, task: Option<&str>) -> bool {
    static HELD: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let key = format!("{}\n{}", ctx["project_dir"], task.unwrap_or(""));
    let mut held = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if held.contains(&key) {
        return false;
    }
    held.push(key);
    true
}

fn planner(ctx: &Value, c: &Conversation) -> Action {
    let root = ctx["project_dir"].as_str().unwrap_or(".");
    if c.tool_results == 0 {
        return Action::Write {
            path: format!("{root}/specs/overview.md"),
            content: format!(
                "# Overview\n\nWritten through {} by the scripted planner.\n\nEach worker \
                 writes `src/<worker>.sh`, which prints `<worker> ok`, and its test \
                 `tests/<worker>_test.sh`.\n",
                c.protocol.name()
            ),
        };
    }
    let tasks: Vec<Value> = ctx["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|w| {
            let id = slug(w);
            json!({
                "id": id,
                "agent": w,
                "task": format!("Write src/{id}.sh and its test, as specs/overview.md says."),
                "files": [format!("tests/{id}_test.sh"), format!("src/{id}.sh")],
                "depends_on": []
            })
        })
        .collect();
    let plan = json!({
        "specs": [{"file": "specs/overview.md", "description": "what each worker builds"}],
        "tasks": tasks
    });
    Action::Text(format!(
        "The spec is written. Here is the plan:\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(&plan).expect("a plan serializes")
    ))
}

fn worker(ctx: &Value, c: &Conversation, directives: &[String], task: Option<&str>) -> Action {
    let root = ctx["project_dir"].as_str().unwrap_or(".");
    let task = task.unwrap_or("?");
    let mut files: Vec<String> = ctx["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    let tests = test_globs(ctx);
    // Tests first: a stable sort keeps the plan's order within each group.
    files.sort_by_key(|f| !tests.is_match(f));
    files.extend(
        directives
            .iter()
            .filter_map(|d| d.strip_prefix("stray="))
            .map(String::from),
    );
    match files.get(c.tool_results) {
        Some(file) => Action::Write {
            path: format!("{root}/{file}"),
            content: file_content(file, task, c.protocol),
        },
        None if c.last_result_failed => Action::Text(format!(
            "Task {task}: I wrote what I could, but the last write was refused."
        )),
        None => Action::Text(format!(
            "Task {task} is done: I wrote {}.",
            files.join(", ")
        )),
    }
}

fn judge(ctx: &Value) -> Action {
    let verdict = json!({
        "verdict": "pass",
        "tasks": [],
        "reason": format!("the scripted judge passes (attempt {})", ctx["attempt"]),
    });
    Action::Text(format!("```json\n{verdict}\n```"))
}

/// What a worker writes: a tiny shell script naming the protocol it came through, so that a
/// test can tell which CLI wrote which file.
pub(crate) fn file_content(file: &str, task: &str, protocol: Protocol) -> String {
    format!(
        "#!/bin/sh\n# {file}: written through {} for task {task}\necho \"{task} ok\"\n",
        protocol.name()
    )
}

fn test_globs(ctx: &Value) -> globset::GlobSet {
    let mut builder = globset::GlobSetBuilder::new();
    let patterns: Vec<&str> = ctx["test_pattern"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let defaults = ["tests/**", "test/**", "**/*_test.*", "**/*.test.*"];
    for pattern in if patterns.is_empty() {
        &defaults[..]
    } else {
        &patterns[..]
    } {
        if let Ok(glob) = globset::Glob::new(pattern) {
            builder.add(glob);
        }
    }
    builder
        .build()
        .unwrap_or_else(|_| globset::GlobSet::empty())
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The `[model:...]` directives in `text`.
pub(crate) fn directives(text: &str) -> Vec<String> {
    text.match_indices("[model:")
        .filter_map(|(at, open)| {
            let rest = &text[at + open.len()..];
            rest.find(']').map(|end| rest[..end].trim().to_string())
        })
        .collect()
}

/// The context of the agent's prompt, from anywhere in the request body: the first string
/// holding a context line that parses (the last such line in that string: a request quoted
/// earlier in the prompt may contain a fake one).
pub(crate) fn find_context(body: &Value) -> Option<Value> {
    let mut strings = Vec::new();
    collect_strings(body, &mut strings);
    strings.into_iter().find_map(context_in)
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Parses the context after the last marker in `text` that parses. Tolerant: a CLI may hand
/// the prompt on JSON-quoted (OpenCode does: wrapped in quotes, inner quotes escaped), so a
/// marker followed by `{\"role\":...` is unescaped, as many times as it was escaped.
pub(crate) fn context_in(text: &str) -> Option<Value> {
    text.rmatch_indices(MARKER).find_map(|(at, _)| {
        let mut rest = text[at + MARKER.len()..].to_string();
        for _ in 0..4 {
            if let Some(value) = first_json_object(&rest) {
                return Some(value);
            }
            rest = unquote_once(&rest)?;
        }
        None
    })
}

fn first_json_object(text: &str) -> Option<Value> {
    let mut values = serde_json::Deserializer::from_str(text.trim_start()).into_iter::<Value>();
    match values.next()? {
        Ok(value) if value.get("role").is_some() => Some(value),
        _ => None,
    }
}

/// Reads `text` as the inside of a JSON string, up to its first unescaped quote, and returns
/// what that string holds.
fn unquote_once(text: &str) -> Option<String> {
    let mut end = None;
    let mut escaped = false;
    for (i, ch) in text.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    // The quoting is loose: OpenCode escapes quotes but leaves newlines raw, which JSON
    // does not allow inside a string.
    let inner: String = text[..end.unwrap_or(text.len())]
        .chars()
        .map(|c| match c {
            c if c.is_control() => format!("\\u{:04x}", c as u32),
            c => c.to_string(),
        })
        .collect();
    serde_json::from_str::<String>(&format!("\"{inner}\"")).ok()
}
