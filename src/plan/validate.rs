//! Checking a plan before anything runs. Every problem is reported at once, each naming the
//! task(s) and path(s) involved, so that a planner (or a person) can fix them in one go.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::model::{Plan, Spec, Task, TaskId};
use super::overlap::{self, Holder};
use crate::paths::{self, ProjectPath};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not the plan's JSON shape (missing or misspelled field, wrong type).
    Schema,
    NoTasks,
    BadId,
    DuplicateId,
    UnknownAgent,
    UnknownDependency,
    Cycle,
    SharedFile,
    DuplicateFile,
    NoFiles,
    BadPath,
    BadSpecPath,
    /// Two paths that are one file on a case- or normalization-insensitive file system, or a
    /// file that another path needs as a directory.
    PathClash,
    EmptyTask,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub message: String,
}

impl Problem {
    fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        Problem {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Reads a plan from its JSON value, element by element so that one malformed task does not
/// hide the problems of the others, then validates it. On success the plan's paths are
/// normalized (`./src//a.rs` → `src/a.rs`).
pub fn parse_and_validate(
    value: &Value,
    root: &Path,
    workers: &[String],
) -> Result<Plan, Vec<Problem>> {
    let mut problems = Vec::new();
    let Some(object) = value.as_object() else {
        return Err(vec![Problem::new(
            ProblemKind::Schema,
            "the plan must be a JSON object with `specs` and `tasks`",
        )]);
    };
    for key in object.keys() {
        if key != "specs" && key != "tasks" {
            problems.push(Problem::new(
                ProblemKind::Schema,
                format!("unknown top-level field `{key}`: a plan has only `specs` and `tasks`"),
            ));
        }
    }
    let mut specs = Vec::new();
    match object.get("specs") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match serde_json::from_value::<Spec<String>>(item.clone()) {
                    Ok(spec) => specs.push(spec),
                    Err(e) => problems.push(Problem::new(
                        ProblemKind::Schema,
                        format!("spec #{}: {e}", i + 1),
                    )),
                }
            }
        }
        Some(_) => problems.push(Problem::new(
            ProblemKind::Schema,
            "`specs` must be a list of {\"file\", \"description\"}",
        )),
    }
    let mut tasks = Vec::new();
    match object.get("tasks") {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match serde_json::from_value::<Task<String>>(item.clone()) {
                    Ok(task) => tasks.push(task),
                    Err(e) => {
                        let id = item
                            .get("id")
                            .map(|id| format!(" (id {id})"))
                            .unwrap_or_default();
                        problems.push(Problem::new(
                            ProblemKind::Schema,
                            format!("task #{}{id}: {e}", i + 1),
                        ));
                    }
                }
            }
        }
        Some(_) => problems.push(Problem::new(
            ProblemKind::Schema,
            "`tasks` must be a list of {\"id\", \"agent\", \"task\", \"files\", \"depends_on\"}",
        )),
        None => problems.push(Problem::new(
            ProblemKind::NoTasks,
            "the plan has no `tasks` list",
        )),
    }
    let plan = Plan { specs, tasks };
    let checked = validate(plan, root, workers);
    match checked {
        Ok(plan) if problems.is_empty() => Ok(plan),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

/// Validates a plan as answered; returns it with checked, normalized paths, or every problem
/// found.
pub fn validate(plan: Plan<String>, root: &Path, workers: &[String]) -> Result<Plan, Vec<Problem>> {
    let mut problems = Vec::new();
    let p = &mut problems;

    if plan.tasks.is_empty() {
        p.push(Problem::new(ProblemKind::NoTasks, "the plan has no tasks"));
    }

    // Ids: safe, unique.
    let mut seen: BTreeMap<&TaskId, usize> = BTreeMap::new();
    for (i, task) in plan.tasks.iter().enumerate() {
        if !task.id.is_safe() {
            p.push(Problem::new(
                ProblemKind::BadId,
                format!(
                    "task #{}: id {:?} must be a number or a short name of letters, digits, \
                     `-`, `_` or `.`",
                    i + 1,
                    task.id.as_str()
                ),
            ));
        }
        if let Some(first) = seen.insert(&task.id, i) {
            p.push(Problem::new(
                ProblemKind::DuplicateId,
                format!(
                    "tasks #{} and #{} both have id {}: ids must be unique",
                    first + 1,
                    i + 1,
                    task.id
                ),
            ));
        }
    }

    for task in &plan.tasks {
        let id = &task.id;
        if task.task.trim().is_empty() {
            p.push(Problem::new(
                ProblemKind::EmptyTask,
                format!("task {id}: the task text is empty: say what to build"),
            ));
        }
        if !workers.iter().any(|w| w == &task.agent) {
            p.push(Problem::new(
                ProblemKind::UnknownAgent,
                format!(
                    "task {id}: agent `{}` is not one of the workers ({})",
                    task.agent,
                    workers.join(", ")
                ),
            ));
        }
        for dep in &task.depends_on {
            if dep == id {
                p.push(Problem::new(
                    ProblemKind::Cycle,
                    format!("task {id} depends on itself"),
                ));
            } else if !seen.contains_key(dep) {
                p.push(Problem::new(
                    ProblemKind::UnknownDependency,
                    format!("task {id}: depends on {dep}, which is not a task in the plan"),
                ));
            }
        }
        if task.files.is_empty() {
            p.push(Problem::new(
                ProblemKind::NoFiles,
                format!("task {id}: owns no files: list every file it will create or change"),
            ));
        }
    }

    for cycle in cycles(&plan.tasks) {
        let names: Vec<String> = cycle.iter().map(ToString::to_string).collect();
        p.push(Problem::new(
            ProblemKind::Cycle,
            format!(
                "tasks {} → {} form a dependency cycle",
                names.join(" → "),
                names[0]
            ),
        ));
    }

    // Paths: each checked and normalized; each owned by one task.
    let mut owner: BTreeMap<ProjectPath, TaskId> = BTreeMap::new();
    let mut tasks = Vec::with_capacity(plan.tasks.len());
    for task in plan.tasks {
        let mut normalized = Vec::with_capacity(task.files.len());
        for raw in &task.files {
            match paths::check_planned(root, raw) {
                Ok(rel) => {
                    if normalized.contains(&rel) {
                        p.push(Problem::new(
                            ProblemKind::DuplicateFile,
                            format!("task {}: lists {rel} twice", task.id),
                        ));
                        continue;
                    }
                    match owner.get(&rel) {
                        Some(other) => p.push(Problem::new(
                            ProblemKind::SharedFile,
                            format!(
                                "{rel} is owned by both task {other} and task {}: a file \
                                 belongs to one task",
                                task.id
                            ),
                        )),
                        None => {
                            owner.insert(rel.clone(), task.id.clone());
                        }
                    }
                    normalized.push(rel);
                }
                Err(problem) => p.push(Problem::new(
                    ProblemKind::BadPath,
                    format!("task {}: file {raw:?} {problem}", task.id),
                )),
            }
        }
        tasks.push(Task {
            id: task.id,
            agent: task.agent,
            task: task.task,
            files: normalized,
            depends_on: task.depends_on,
        });
    }
    let mut spec_seen = BTreeSet::new();
    let mut specs = Vec::with_capacity(plan.specs.len());
    for spec in plan.specs {
        match paths::check_planned(root, &spec.file) {
            Ok(rel) => {
                if !spec_seen.insert(rel.clone()) {
                    p.push(Problem::new(
                        ProblemKind::BadSpecPath,
                        format!("spec {rel} is listed twice"),
                    ));
                }
                specs.push(Spec {
                    file: rel,
                    description: spec.description,
                });
            }
            Err(problem) => p.push(Problem::new(
                ProblemKind::BadSpecPath,
                format!("spec file {:?} {problem}", spec.file),
            )),
        }
    }
    let plan = Plan { specs, tasks };

    let held: Vec<(Holder, String)> = plan
        .tasks
        .iter()
        .flat_map(|t| {
            let holder = Holder::Task(t.id.to_string());
            t.files.iter().map(move |f| (holder.clone(), f.to_string()))
        })
        .chain(
            plan.specs
                .iter()
                .map(|s| (Holder::Spec, s.file.to_string())),
        )
        .collect();
    for clash in overlap::clashes(&held) {
        problems.push(Problem::new(ProblemKind::PathClash, clash.message()));
    }

    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}

/// The dependency cycles, each once, each as the path around it starting from its smallest id.
fn cycles<P>(tasks: &[Task<P>]) -> Vec<Vec<TaskId>> {
    // Tasks sharing an id (reported elsewhere) pool their dependencies.
    let mut deps: BTreeMap<&TaskId, Vec<&TaskId>> = BTreeMap::new();
    for t in tasks {
        let known = t
            .depends_on
            .iter()
            .filter(|d| *d != &t.id && tasks.iter().any(|o| &o.id == *d));
        deps.entry(&t.id).or_default().extend(known);
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut mark: BTreeMap<&TaskId, Mark> = deps.keys().map(|k| (*k, Mark::New)).collect();
    let mut found: Vec<Vec<TaskId>> = Vec::new();
    let mut seen_sets: BTreeSet<Vec<TaskId>> = BTreeSet::new();

    fn visit<'a>(
        node: &'a TaskId,
        deps: &BTreeMap<&'a TaskId, Vec<&'a TaskId>>,
        mark: &mut BTreeMap<&'a TaskId, Mark>,
        stack: &mut Vec<&'a TaskId>,
        found: &mut Vec<Vec<TaskId>>,
        seen_sets: &mut BTreeSet<Vec<TaskId>>,
    ) {
        mark.insert(node, Mark::OnStack);
        stack.push(node);
        for next in deps.get(node).into_iter().flatten() {
            match mark.get(next).copied().unwrap_or(Mark::Done) {
                Mark::New => visit(next, deps, mark, stack, found, seen_sets),
                Mark::OnStack => {
                    let start = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle: Vec<TaskId> =
                        stack[start..].iter().map(|n| (*n).clone()).collect();
                    let mut key = cycle.clone();
                    key.sort();
                    if seen_sets.insert(key) {
                        // Start from the smallest id so the message is stable.
                        let min = (0..cycle.len()).min_by_key(|i| &cycle[*i]).unwrap_or(0);
                        cycle.rotate_left(min);
                        found.push(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        mark.insert(node, Mark::Done);
    }

    let nodes: Vec<&TaskId> = deps.keys().copied().collect();
    for node in nodes {
        if mark[node] == Mark::New {
            visit(
                node,
                &deps,
                &mut mark,
                &mut Vec::new(),
                &mut found,
                &mut seen_sets,
            );
        }
    }
    found
}

/// The execution waves of a valid plan: each wave's tasks depend only on earlier waves.
pub fn waves(plan: &Plan) -> Vec<Vec<TaskId>> {
    let mut done: BTreeSet<&TaskId> = BTreeSet::new();
    let mut left: Vec<&Task> = plan.tasks.iter().collect();
    let mut waves = Vec::new();
    while !left.is_empty() {
        let (ready, rest): (Vec<&Task>, Vec<&Task>) = left
            .into_iter()
            .partition(|t| t.depends_on.iter().all(|d| done.contains(d)));
        if ready.is_empty() {
            break; // a cycle: validation reports it
        }
        let mut wave: Vec<TaskId> = ready.iter().map(|t| t.id.clone()).collect();
        wave.sort();
        done.extend(ready.iter().map(|t| &t.id));
        waves.push(wave);
        left = rest;
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workers() -> Vec<String> {
        vec!["claude".into(), "codex".into()]
    }

    fn check(value: Value) -> Result<Plan, Vec<Problem>> {
        let dir = tempfile::tempdir().unwrap();
        parse_and_validate(&value, dir.path(), &workers())
    }

    fn kinds(value: Value) -> Vec<(ProblemKind, String)> {
        check(value)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.kind, p.message))
            .collect()
    }

    fn task(id: Value, files: &[&str], deps: &[Value]) -> Value {
        json!({"id": id, "agent": "claude", "task": "do it", "files": files, "depends_on": deps})
    }

    #[test]
    fn a_valid_plan_passes_with_normalized_paths_and_waves() {
        let plan = check(json!({
            "specs": [{"file": "./specs/api.md", "description": "api"}],
            "tasks": [
                task(json!(1), &["./src//a.rs", "tests/a.rs"], &[]),
                task(json!("b"), &["src/b.rs"], &[json!(1)]),
                task(json!(3), &["src/c.rs"], &[json!(1)]),
                task(json!(4), &["src/d.rs"], &[json!("b"), json!(3)]),
            ]
        }))
        .unwrap();
        assert_eq!(plan.tasks[0].files, vec!["src/a.rs", "tests/a.rs"]);
        assert_eq!(plan.specs[0].file, "specs/api.md");
        let waves: Vec<Vec<String>> = waves(&plan)
            .into_iter()
            .map(|w| w.into_iter().map(|t| t.to_string()).collect())
            .collect();
        assert_eq!(waves, vec![vec!["1"], vec!["3", "b"], vec!["4"]]);
    }

    #[test]
    fn duplicate_ids() {
        let found =
            kinds(json!({"tasks": [task(json!(1), &["a"], &[]), task(json!("1"), &["b"], &[])]}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, ProblemKind::DuplicateId);
        assert!(found[0].1.contains("#1 and #2 both have id 1"), "{found:?}");
    }

    #[test]
    fn unknown_agent_names_the_workers() {
        let mut t = task(json!(1), &["a"], &[]);
        t["agent"] = json!("gpt");
        let found = kinds(json!({"tasks": [t]}));
        assert_eq!(found[0].0, ProblemKind::UnknownAgent);
        assert!(found[0].1.contains("task 1: agent `gpt`") && found[0].1.contains("claude, codex"));
    }

    #[test]
    fn unknown_and_self_dependencies() {
        let found = kinds(json!({"tasks": [task(json!(1), &["a"], &[json!(9), json!(1)])]}));
        assert!(
            found
                .iter()
                .any(|(k, m)| *k == ProblemKind::UnknownDependency && m.contains("depends on 9"))
        );
        assert!(
            found
                .iter()
                .any(|(k, m)| *k == ProblemKind::Cycle && m.contains("task 1 depends on itself"))
        );
    }

    #[test]
    fn cycle_is_named() {
        let found = kinds(json!({"tasks": [
            task(json!(1), &["a"], &[json!(3)]),
            task(json!(2), &["b"], &[json!(1)]),
            task(json!(3), &["c"], &[json!(2)]),
            task(json!(4), &["d"], &[]),
        ]}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, "tasks 1 → 3 → 2 → 1 form a dependency cycle");
    }

    #[test]
    fn shared_file_names_both_tasks() {
        let found = kinds(json!({"tasks": [
            task(json!(1), &["src/x.rs"], &[]),
            task(json!(2), &["./src/x.rs"], &[]),
        ]}));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, ProblemKind::SharedFile);
        assert!(
            found[0]
                .1
                .contains("src/x.rs is owned by both task 1 and task 2")
        );
    }

    #[test]
    fn empty_files_and_empty_text() {
        let mut t = task(json!(1), &[], &[]);
        t["task"] = json!("  ");
        let found = kinds(json!({"tasks": [t]}));
        assert!(found.iter().any(|(k, _)| *k == ProblemKind::NoFiles));
        assert!(found.iter().any(|(k, _)| *k == ProblemKind::EmptyTask));
    }

    #[test]
    fn bad_paths_each_reported() {
        let found = kinds(
            json!({"tasks": [task(json!(1), &["/etc/passwd", "../x", ".git/config", ".orch/a", "ok.rs"], &[])]}),
        );
        let messages: Vec<&String> = found.iter().map(|(_, m)| m).collect();
        assert_eq!(found.len(), 4, "{messages:?}");
        assert!(found.iter().all(|(k, _)| *k == ProblemKind::BadPath));
        assert!(messages[0].contains("\"/etc/passwd\" is absolute"));
        assert!(messages[1].contains("\"../x\" contains `..`"));
        assert!(messages[2].contains("inside `.git/`"));
        assert!(messages[3].contains("inside `.orch/`"));
    }

    #[test]
    fn symlink_escape_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let value = json!({"tasks": [task(json!(1), &["link/a.rs"], &[])]});
        let found = parse_and_validate(&value, dir.path(), &workers()).unwrap_err();
        assert!(
            found[0]
                .message
                .contains("leaves the project through the symlink `link`"),
            "{found:?}"
        );
    }

    #[test]
    fn control_characters_in_task_and_spec_paths() {
        let found = kinds(json!({"specs": [{"file": "specs/a\tb.md"}],
                                 "tasks": [task(json!(1), &["a\nb.py", "ok\r.py", "c.py"], &[])]}));
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0]
                .1
                .contains("task 1: file \"a\\nb.py\" contains the control character U+000A"),
            "{found:?}"
        );
        assert!(
            found[1].1.contains("U+000D (a carriage return)"),
            "{found:?}"
        );
        assert_eq!(found[2].0, ProblemKind::BadSpecPath);
        assert!(found[2].1.contains("U+0009 (a tab)"), "{found:?}");
    }

    #[test]
    fn paths_that_clash_on_macos_or_as_directories() {
        let found = kinds(json!({"specs": [{"file": "docs/x.md"}],
                                 "tasks": [
            task(json!(1), &["src/Main.py", "a/b"], &[]),
            task(json!(2), &["src/main.py", "a/b/c", "docs/x.md/y"], &[]),
            task(json!(3), &["caf\u{e9}.py"], &[]),
            task(json!(4), &["cafe\u{301}.py"], &[]),
        ]}));
        let messages: Vec<&String> = found.iter().map(|(_, m)| m).collect();
        assert_eq!(found.len(), 4, "{messages:#?}");
        assert!(found.iter().all(|(k, _)| *k == ProblemKind::PathClash));
        assert!(
            messages[0].contains("task 1's `src/Main.py` and task 2's `src/main.py`"),
            "{messages:#?}"
        );
        assert!(
            messages[1].contains("task 3's `caf\u{e9}.py` and task 4's `cafe\u{301}.py`"),
            "{messages:#?}"
        );
        assert!(
            messages[2].contains("task 1's `a/b` and task 2's `a/b/c`"),
            "{messages:#?}"
        );
        assert!(
            messages[3].contains("spec `docs/x.md` and task 2's `docs/x.md/y`"),
            "{messages:#?}"
        );
    }

    #[test]
    fn bad_spec_paths() {
        let found = kinds(json!({"specs": [{"file": "/abs.md"}, {"file": "../up.md"}],
                                 "tasks": [task(json!(1), &["a"], &[])]}));
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|(k, _)| *k == ProblemKind::BadSpecPath));
    }

    #[test]
    fn schema_problems_name_the_task_and_do_not_hide_others() {
        let found = kinds(json!({"tasks": [
            {"id": 1, "task": "x", "files": ["a"]},
            {"id": 2, "agent": "claude", "task": "x", "files": ["b"], "dependencies": [1]},
            task(json!(3), &["b"], &[json!(8)]),
        ], "extra": true}));
        let messages: Vec<&String> = found.iter().map(|(_, m)| m).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("task #1 (id 1): missing field `agent`")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("task #2 (id 2): unknown field `dependencies`")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("unknown top-level field `extra`")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("depends on 8")),
            "{messages:?}"
        );
    }

    #[test]
    fn several_problems_at_once() {
        let mut bad_agent = task(json!(2), &["a"], &[json!(1)]);
        bad_agent["agent"] = json!("nobody");
        let found = kinds(json!({"tasks": [
            task(json!(1), &["a", "/abs"], &[json!(2)]),
            bad_agent,
            task(json!(1), &[], &[]),
        ]}));
        let got: BTreeSet<String> = found.iter().map(|(k, _)| format!("{k:?}")).collect();
        for want in [
            "DuplicateId",
            "UnknownAgent",
            "Cycle",
            "SharedFile",
            "NoFiles",
            "BadPath",
        ] {
            assert!(got.contains(want), "missing {want} in {found:?}");
        }
    }

    #[test]
    fn not_an_object_or_no_tasks() {
        assert_eq!(kinds(json!([1, 2]))[0].0, ProblemKind::Schema);
        assert_eq!(kinds(json!({"specs": []}))[0].0, ProblemKind::NoTasks);
        assert_eq!(kinds(json!({"tasks": []}))[0].0, ProblemKind::NoTasks);
    }
}
