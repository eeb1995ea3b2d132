//! Finding a JSON answer in what an agent printed: bare JSON, JSON inside ```json fences, or
//! JSON surrounded by prose. Agents restate and correct themselves, so the last match wins.

use serde_json::Value;

/// The last JSON object in `text` that `accept` approves.
pub fn extract_json(text: &str, accept: impl Fn(&Value) -> bool) -> Option<Value> {
    let whole = text.trim();
    if let Ok(value) = serde_json::from_str::<Value>(whole)
        && accept(&value)
    {
        return Some(value);
    }
    // Scan for objects anywhere; after a successful parse, skip past it so that the objects
    // nested inside it are not candidates of their own.
    let bytes = text.as_bytes();
    let mut found = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
            if let Some(Ok(value)) = stream.next() {
                let end = i + stream.byte_offset();
                if value.is_object() && accept(&value) {
                    found = Some(value);
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
    found
}

/// The last object in `text` that looks like a plan (has a `tasks` field).
pub fn extract_plan(text: &str) -> Option<Value> {
    extract_json(text, |v| v.get("tasks").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_json() {
        let v = extract_plan(r#"  {"tasks": []}  "#).unwrap();
        assert!(v["tasks"].is_array());
    }

    #[test]
    fn fenced_json_in_prose() {
        let text =
            "Here is the plan:\n```json\n{\"specs\": [], \"tasks\": [{\"id\": 1}]}\n```\nDone.";
        assert_eq!(extract_plan(text).unwrap()["tasks"][0]["id"], 1);
    }

    #[test]
    fn json_in_prose_with_braces_in_strings() {
        let text =
            "I think {this} is fine. Plan: {\"tasks\": [{\"task\": \"write fn f() { }\"}]} ok";
        assert_eq!(
            extract_plan(text).unwrap()["tasks"][0]["task"],
            "write fn f() { }"
        );
    }

    #[test]
    fn last_plan_wins_and_nested_objects_are_not_plans() {
        let text = r#"first {"tasks": [{"id": 1}]} then corrected {"tasks": [{"id": 2, "x": {"tasks": 0}}]}"#;
        assert_eq!(extract_plan(text).unwrap()["tasks"][0]["id"], 2);
    }

    #[test]
    fn nothing_found() {
        assert!(extract_plan("I could not make a plan, sorry.").is_none());
        assert!(extract_plan("{\"verdict\": \"pass\"}").is_none());
        assert!(extract_plan("{\"tasks\": [1, 2").is_none());
    }

    #[test]
    fn other_shapes_with_a_predicate() {
        let text = "verdict follows {\"verdict\":\"fail\",\"tasks\":[]}";
        let v = extract_json(text, |v| v.get("verdict").is_some()).unwrap();
        assert_eq!(v["verdict"], "fail");
    }
}
