//! The judge and the oracle. The judge passes every task it can find unless the prompt says a
//! gate failed; it looks for task ids in the context and in any JSON in the prompt (a plan,
//! a list of tasks), and for gate results on lines such as `lint: failed` or
//! `- test gate: FAILED (exit 1)`. The oracle gives short, fixed advice.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::agent::Session;

pub(super) fn judge(s: &mut Session) -> anyhow::Result<i32> {
    let ids = task_ids(&s.prompt, s.ctx.task.as_ref().map(|t| id_value(t.as_str())));
    let failed = s
        .prompt
        .lines()
        .chain(s.ctx.feedback.iter().flat_map(|f| f.lines()))
        .find(|line| says_a_gate_failed(line))
        .map(|line| line.trim().to_string());
    let (verdict, reason) = match &failed {
        Some(line) => ("fail", format!("a gate failed: {line}")),
        None => (
            "pass",
            "the gates passed and nothing in the report points at a problem".to_string(),
        ),
    };
    let tasks: Vec<Value> = ids
        .into_iter()
        .map(|id| json!({ "id": id, "verdict": verdict, "reason": reason }))
        .collect();
    let answer = json!({ "verdict": verdict, "tasks": tasks });
    s.say(serde_json::to_string_pretty(&answer)?)?;
    Ok(0)
}

pub(super) fn oracle(s: &mut Session) -> anyhow::Result<i32> {
    let mut a = String::new();
    match &s.ctx.task {
        Some(task) => {
            let _ = writeln!(a, "Advice for task {task} (attempt {}):", s.ctx.attempt);
        }
        None => {
            let _ = writeln!(a, "Advice (attempt {}):", s.ctx.attempt);
        }
    }
    if !s.ctx.feedback.is_empty() {
        a.push_str("- Start from why the last attempt was refused:\n");
        for item in s.ctx.feedback.iter().take(3) {
            let _ = writeln!(a, "    - {}", item.lines().next().unwrap_or(""));
        }
    }
    if !s.ctx.specs.is_empty() {
        let _ = writeln!(
            a,
            "- Re-read the specs ({}) and do exactly what they say.",
            s.ctx.specs.join(", ")
        );
    }
    a.push_str(
        "- Make the smallest failing test that shows the problem, then fix the code until the \
         test gate passes; run the lint gate too.\n\
         - Change only the files your task owns; if another file must change, say so instead.",
    );
    s.say(a)?;
    Ok(0)
}

/// A task id as it goes back in JSON: a number when it is one, as plans write them.
fn id_value(id: &str) -> Value {
    match id.parse::<u64>() {
        Ok(n) if !id.starts_with('0') || id == "0" => json!(n),
        _ => json!(id),
    }
}

/// The task ids in the prompt, each once, in order of appearance.
fn task_ids(prompt: &str, own: Option<Value>) -> Vec<Value> {
    let mut ids: Vec<Value> = own.into_iter().collect();
    let mut push = |id: &Value| {
        let id = match id {
            Value::String(s) => id_value(s),
            other => other.clone(),
        };
        if (id.is_u64() || id.is_string()) && !ids.contains(&id) {
            ids.push(id);
        }
    };
    for value in json_objects(prompt) {
        if let Some(tasks) = value.get("tasks").and_then(Value::as_array) {
            for id in tasks.iter().filter_map(|t| t.get("id")) {
                push(id);
            }
        }
    }
    ids
}

/// Every top-level JSON object in `text` (objects nested in one are not listed again).
fn json_objects(text: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(offset) = text[i..].find('{') {
        let start = i + offset;
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                found.push(value);
                i = start + stream.byte_offset().max(1);
            }
            _ => i = start + 1,
        }
    }
    found
}

/// `lint: failed`, `- test gate: FAILED (exit 1)`, `gate lint failed`, `tests: fail`. Only a
/// line that starts with the gate's name counts, so that instructions such as "fail a task
/// whose test gate failed" do not.
fn says_a_gate_failed(line: &str) -> bool {
    let line = line
        .trim()
        .trim_start_matches(['-', '*', '#', '>', ' '])
        .to_ascii_lowercase();
    let line = line.strip_prefix("gate ").unwrap_or(&line);
    ["lint", "test"].iter().any(|gate| {
        let Some(rest) = line.strip_prefix(gate) else {
            return false;
        };
        let rest = rest.strip_prefix('s').unwrap_or(rest);
        let rest = rest.trim_start_matches([' ', ':', '=']);
        let rest = rest.strip_prefix("gate").unwrap_or(rest);
        rest.trim_start_matches([' ', ':', '=']).starts_with("fail")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_failures_are_recognized_and_instructions_are_not() {
        for line in [
            "lint: failed",
            "- test gate: FAILED (exit 1)",
            "gate lint failed",
            "Tests: fail",
            "## Lint gate = failure",
        ] {
            assert!(says_a_gate_failed(line), "{line}");
        }
        for line in [
            "lint: passed",
            "Fail a task whose test gate failed.",
            "test_pattern: failing",
            "latest: failed",
            "",
        ] {
            assert!(!says_a_gate_failed(line), "{line}");
        }
    }

    #[test]
    fn task_ids_come_from_json_in_the_prompt() {
        let prompt = "Judge these.\n```json\n{\"tasks\":[{\"id\":1,\"files\":[\"a\"]},\
                      {\"id\":\"api\"}]}\n```\nand {not json} {\"tasks\":[{\"id\":\"1\"},\
                      {\"id\":\"007\"}]}";
        let ids = task_ids(prompt, Some(json!("own")));
        assert_eq!(
            ids,
            vec![json!("own"), json!(1), json!("api"), json!("007")]
        );
        assert!(task_ids("nothing here {", None).is_empty());
    }
}
