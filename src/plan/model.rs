//! The plan's data: what the planner answers, in the seed's JSON shape.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::paths::ProjectPath;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
/// `P`, the type of the plan's paths: [`ProjectPath`] once the plan is checked (the default),
/// `String` as the planner answered it (see [`super::parse_and_validate`]).
pub struct Plan<P = ProjectPath> {
    #[serde(default = "Vec::new")]
    pub specs: Vec<Spec<P>>,
    pub tasks: Vec<Task<P>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec<P = ProjectPath> {
    pub file: P,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Task<P = ProjectPath> {
    pub id: TaskId,
    pub agent: String,
    pub task: String,
    pub files: Vec<P>,
    #[serde(default)]
    pub depends_on: Vec<TaskId>,
}

/// A task's id: the plan may use numbers (`1`) or short strings (`"api"`). Kept as text, and
/// written back the way it came. Identity is the text: `1` and `"1"` are the same task.
#[derive(Debug, Clone)]
pub struct TaskId {
    text: String,
    numeric: bool,
}

impl TaskId {
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        TaskId {
            numeric: !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
            text,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Safe as one path component and a tmux window name.
    pub fn is_safe(&self) -> bool {
        !self.text.is_empty()
            && self.text.len() <= 64
            && self
                .text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !self.text.starts_with('.')
    }
}

impl PartialEq for TaskId {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for TaskId {}

impl std::hash::Hash for TaskId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl PartialOrd for TaskId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TaskId {
    /// Numbers in numeric order, before names.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let num = |t: &TaskId| t.text.parse::<u64>().ok();
        match (num(self), num(other)) {
            (Some(a), Some(b)) => a.cmp(&b).then_with(|| self.text.cmp(&other.text)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => self.text.cmp(&other.text),
        }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<&str> for TaskId {
    fn from(s: &str) -> Self {
        TaskId::new(s)
    }
}

impl Serialize for TaskId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.text.parse::<u64>() {
            Ok(n) if self.numeric => s.serialize_u64(n),
            _ => s.serialize_str(&self.text),
        }
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TaskId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a task id: a number or a short string")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<TaskId, E> {
                Ok(TaskId::new(n.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<TaskId, E> {
                Err(E::custom(format!("task id {n} is negative")))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TaskId, E> {
                Ok(TaskId {
                    text: s.to_string(),
                    numeric: false,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl<P> Default for Plan<P> {
    fn default() -> Self {
        Plan {
            specs: Vec::new(),
            tasks: Vec::new(),
        }
    }
}

impl<P: AsRef<str>> Plan<P> {
    pub fn task(&self, id: &TaskId) -> Option<&Task<P>> {
        self.tasks.iter().find(|t| &t.id == id)
    }
}

impl Plan {
    /// The spec files, as the prompts and gates take them.
    pub fn spec_files(&self) -> Vec<ProjectPath> {
        self.specs.iter().map(|s| s.file.clone()).collect()
    }

    /// Which task owns each file.
    pub fn owners(&self) -> BTreeMap<&ProjectPath, &TaskId> {
        let mut owners = BTreeMap::new();
        for task in &self.tasks {
            for file in &task.files {
                owners.entry(file).or_insert(&task.id);
            }
        }
        owners
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_as_numbers_or_strings() {
        let plan: Plan = serde_json::from_str(
            r#"{"tasks":[{"id":1,"agent":"a","task":"t","files":["x"]},
                         {"id":"api","agent":"a","task":"t","files":["y"],"depends_on":[1]}]}"#,
        )
        .unwrap();
        assert_eq!(plan.tasks[1].depends_on[0], TaskId::new("1"));
        let back = serde_json::to_string(&plan).unwrap();
        assert!(
            back.contains(r#""id":1"#) && back.contains(r#""id":"api""#),
            "{back}"
        );
    }
}
