//! The judge's verdict, found in its answer the same tolerant way as a plan.

use serde_json::Value;

use crate::plan::{TaskId, extract_json};
use crate::state::TaskVerdict;

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub pass: bool,
    /// One per task asked about: a task the judge did not mention takes the overall verdict.
    pub tasks: Vec<TaskVerdict>,
}

/// Reads `{"verdict":"pass"|"fail","tasks":[{"id","verdict","reason"}]}` from `answer`.
/// The error says what was wrong, for the judge's next attempt.
pub fn parse_verdict(answer: &str, asked: &[TaskId]) -> Result<Verdict, String> {
    let value = extract_json(answer, |v| v.get("verdict").is_some()).ok_or_else(|| {
        "no verdict found: answer with one JSON object {\"verdict\": \"pass\"|\"fail\", \
         \"tasks\": [{\"id\": ..., \"verdict\": \"pass\"|\"fail\", \"reason\": \"...\"}]}"
            .to_string()
    })?;
    let pass = word(&value["verdict"]).ok_or("`verdict` must be \"pass\" or \"fail\"")?;
    let overall_reason = value
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or(if pass {
            "the judge passed the work"
        } else {
            "the judge failed the work"
        })
        .to_string();
    let mut tasks = Vec::new();
    let listed = value
        .get("tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for id in asked {
        let entry = listed.iter().find(|t| {
            let v = &t["id"];
            v.as_str() == Some(id.as_str())
                || v.as_u64().map(|n| n.to_string()).as_deref() == Some(id.as_str())
        });
        let (pass, reason) = match entry {
            Some(t) => (
                word(&t["verdict"])
                    .ok_or_else(|| format!("task {id}: `verdict` must be \"pass\" or \"fail\""))?,
                t["reason"].as_str().unwrap_or("").to_string(),
            ),
            None => (pass, overall_reason.clone()),
        };
        tasks.push(TaskVerdict {
            id: id.clone(),
            verdict: if pass { "pass" } else { "fail" }.into(),
            reason: if reason.is_empty() {
                overall_reason.clone()
            } else {
                reason
            },
        });
    }
    Ok(Verdict { pass, tasks })
}

fn word(v: &Value) -> Option<bool> {
    match v.as_str()?.trim().to_ascii_lowercase().as_str() {
        "pass" | "passed" => Some(true),
        "fail" | "failed" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<TaskId> {
        v.iter().map(|s| TaskId::new(*s)).collect()
    }

    #[test]
    fn per_task_verdicts_in_prose() {
        let answer = "Judging now.\n```json\n{\"verdict\":\"fail\",\"tasks\":[{\"id\":1,\"verdict\":\"pass\",\"reason\":\"ok\"},{\"id\":\"api\",\"verdict\":\"fail\",\"reason\":\"no tests\"}]}\n```";
        let v = parse_verdict(answer, &ids(&["1", "api"])).unwrap();
        assert!(!v.pass);
        assert_eq!(v.tasks[0].verdict, "pass");
        assert_eq!(v.tasks[1].reason, "no tests");
    }

    #[test]
    fn unmentioned_tasks_take_the_overall_verdict() {
        let v = parse_verdict("{\"verdict\":\"pass\"}", &ids(&["a"])).unwrap();
        assert_eq!(v.tasks[0].verdict, "pass");
    }

    #[test]
    fn garbage_and_bad_words_are_errors() {
        assert!(
            parse_verdict("looks good to me!", &ids(&["a"]))
                .unwrap_err()
                .contains("no verdict found")
        );
        assert!(parse_verdict("{\"verdict\":\"maybe\"}", &ids(&["a"])).is_err());
        assert!(
            parse_verdict(
                "{\"verdict\":\"pass\",\"tasks\":[{\"id\":\"a\",\"verdict\":\"?\"}]}",
                &ids(&["a"])
            )
            .is_err()
        );
    }
}
