//! Test helpers: contexts built the way orch builds them, and runs of the agent through a
//! real prompt file, with explicit settings instead of the process-wide environment.

use std::path::Path;

use super::agent::{Settings, run_with};
use super::fault::Faults;
use crate::plan;

// The scripted planner's answer, as it wrote it.
type Plan = plan::Plan<String>;
type Task = plan::Task<String>;
use crate::prompt::{Context, Role};

pub(super) struct Ran {
    pub code: i32,
    pub out: String,
    pub err: String,
}

impl Ran {
    /// The `wrote X` lines, in order.
    pub(super) fn wrote(&self) -> Vec<&str> {
        self.out
            .lines()
            .filter_map(|l| l.strip_prefix("wrote "))
            .collect()
    }
}

pub(super) fn ctx(role: Role, dir: &Path) -> Context {
    Context {
        role,
        task: None,
        files: vec![],
        specs: vec![],
        request: super::DEMO_REQUEST.to_string(),
        attempt: 1,
        project_dir: dir.display().to_string(),
        workers: vec![],
        plan_file: None,
        test_pattern: vec!["tests/**".to_string()],
        task_text: None,
        feedback: vec![],
    }
}

pub(super) fn planner_ctx(dir: &Path, workers: &[&str]) -> Context {
    Context {
        workers: workers
            .iter()
            .map(std::string::ToString::to_string)
            .collect(),
        plan_file: Some(".orch/plans/x/planner/1/plan.json".to_string()),
        ..ctx(Role::Planner, dir)
    }
}

/// The planner's paths as orch checks them before handing them to an agent.
fn checked(raw: &[String]) -> Vec<crate::paths::ProjectPath> {
    let raw: Vec<&str> = raw.iter().map(String::as_str).collect();
    crate::paths::project_paths(&raw)
}

/// The context orch gives the worker of `task`.
pub(super) fn worker_ctx(dir: &Path, plan: &Plan, task: &Task) -> Context {
    Context {
        task: Some(task.id.clone()),
        files: checked(&task.files),
        specs: checked(
            &plan
                .specs
                .iter()
                .map(|s| s.file.clone())
                .collect::<Vec<_>>(),
        ),
        task_text: Some(task.task.clone()),
        ..ctx(Role::Worker, dir)
    }
}

/// Runs the agent on a prompt made of some prose and the context line.
pub(super) fn run(ctx: &Context, faults: &str) -> Ran {
    run_prompt(
        &format!(
            "# You are a {}\n\nDo the work.\n\n{}\n",
            ctx.role,
            ctx.line()
        ),
        faults,
    )
}

pub(super) fn run_prompt(prompt: &str, faults: &str) -> Ran {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), prompt).unwrap();
    let settings = Settings {
        faults: Faults::parse(faults).unwrap(),
        pace: std::time::Duration::ZERO,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(file.path(), &settings, &mut out, &mut err).unwrap();
    Ran {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

/// The plan in a planner's answer (the ```json fence).
pub(super) fn plan_of(answer: &str) -> Plan {
    let start = answer.find("```json\n").expect("a json fence") + "```json\n".len();
    let end = start + answer[start..].find("\n```").expect("the fence's end");
    serde_json::from_str(&answer[start..end]).unwrap()
}

/// The tasks in an order where each comes after the tasks it depends on.
pub(super) fn dependency_order(plan: &Plan) -> Vec<&Task> {
    let mut done: Vec<&Task> = Vec::new();
    while done.len() < plan.tasks.len() {
        let next = plan
            .tasks
            .iter()
            .find(|t| {
                !done.iter().any(|d| d.id == t.id)
                    && t.depends_on
                        .iter()
                        .all(|dep| done.iter().any(|d| &d.id == dep))
            })
            .expect("no dependency cycle");
        done.push(next);
    }
    done
}

/// Runs `command` with `sh -c` in `dir`; returns whether it succeeded, and what it printed.
pub(super) fn sh(dir: &Path, command: &str) -> (bool, String) {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}
