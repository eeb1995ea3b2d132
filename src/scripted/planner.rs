//! The planner: writes the specs, then answers with the wordstat plan (whatever the request:
//! the scripted agent knows one project). Four tasks in three waves, spread round-robin over
//! the workers, each owning its tests and its code.

use std::fmt::Write as _;

use anyhow::Context as _;

use super::agent::Session;
use super::fault::Fault;
use super::files::write_plan_file;
use super::specs;
use crate::paths::ProjectPath;
use crate::plan::{self, TaskId};

// The planner's answer: its paths as written, which orch checks (`Plan<String>`).
type Plan = plan::Plan<String>;
type Spec = plan::Spec<String>;
type Task = plan::Task<String>;

/// The agent name used when the context lists no workers.
pub(super) const DEFAULT_WORKER: &str = "scripted";

pub(super) fn run(s: &mut Session) -> anyhow::Result<i32> {
    let specs = spec_files(&s.ctx.specs);
    let mut written = Vec::new();
    for (file, _) in &specs {
        let content = specs::content(file, &s.ctx.request);
        written.push(s.write_file(file, &content)?);
    }
    let workers = if s.ctx.workers.is_empty() {
        vec![DEFAULT_WORKER.to_string()]
    } else {
        s.ctx.workers.clone()
    };
    let specs: Vec<Spec> = specs
        .into_iter()
        .zip(&written)
        .map(|((_, description), file)| Spec {
            file: file.clone(),
            description,
        })
        .collect();
    let plan = if s.faults.has(Fault::BadPlan) && s.ctx.attempt <= 1 {
        bad_plan(specs, &workers)
    } else {
        plan(specs, &workers)
    };
    let json = serde_json::to_string_pretty(&plan).context("failed to serialize the plan")?;
    if let Some(plan_file) = s.ctx.plan_file.clone() {
        write_plan_file(s, &plan_file, &format!("{json}\n"))?;
    }
    let answer = answer(s, &written, &plan, &json);
    s.say(answer)?;
    Ok(0)
}

/// Our specs, then any other spec orch asked for, each once.
fn spec_files(asked: &[ProjectPath]) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = specs::SPECS
        .iter()
        .map(|(f, d)| (f.to_string(), d.to_string()))
        .collect();
    for file in asked {
        if !files.iter().any(|(f, _)| f == file) {
            files.push((
                file.to_string(),
                "more about wordstat, as asked".to_string(),
            ));
        }
    }
    files
}

fn answer(s: &Session, written: &[String], plan: &Plan, json: &str) -> String {
    let mut a = String::new();
    let _ = writeln!(a, "\nI wrote the specs first: {}.\n", written.join(", "));
    let _ = writeln!(
        a,
        "The plan builds wordstat in POSIX sh in {} tasks: lib/text.sh and lib/report.sh in \
         parallel, then lib/stats.sh (it needs lib/text.sh), then bin/wordstat (it needs all \
         three). Every task owns its tests and writes them before its code.",
        plan.tasks.len()
    );
    if s.ctx.attempt > 1 && !s.ctx.feedback.is_empty() {
        let _ = writeln!(
            a,
            "This is attempt {}: it fixes the {} problem(s) found in the previous plan.",
            s.ctx.attempt,
            s.ctx.feedback.len()
        );
    }
    if let Some(plan_file) = &s.ctx.plan_file {
        let _ = writeln!(a, "The same plan is in {plan_file}.");
    }
    let _ = write!(a, "\n```json\n{json}\n```");
    a
}

fn task(id: &str, agent: &str, text: &str, files: &[&str], deps: &[&str]) -> Task {
    Task {
        id: TaskId::new(id),
        agent: agent.to_string(),
        task: text.to_string(),
        files: files.iter().map(std::string::ToString::to_string).collect(),
        depends_on: deps.iter().map(|d| TaskId::new(*d)).collect(),
    }
}

/// The valid plan. The order puts the two independent tasks first, so that round-robin gives
/// them to different workers and they run side by side.
pub(super) fn plan(specs: Vec<Spec>, workers: &[String]) -> Plan {
    let agent = |i: usize| workers[i % workers.len()].as_str();
    Plan {
        specs,
        tasks: vec![
            task(
                "text",
                agent(0),
                "Write lib/text.sh as specs/lib.md (\"lib/text.sh\") says: text_read, \
                 text_words and text_normalize. Tests first: tests/text_test.sh checks every \
                 function (blank runs, empty input, case and punctuation) and fails until \
                 lib/text.sh exists.",
                &["tests/text_test.sh", "lib/text.sh"],
                &[],
            ),
            task(
                "report",
                agent(1),
                "Write lib/report.sh as specs/lib.md (\"lib/report.sh\") and specs/cli.md \
                 (\"Output\") say: report_row and report_top. Tests first: \
                 tests/report_test.sh checks column selection and order, alignment, names, \
                 and the top-words list.",
                &["tests/report_test.sh", "lib/report.sh"],
                &[],
            ),
            task(
                "stats",
                agent(2),
                "Write lib/stats.sh as specs/lib.md (\"lib/stats.sh\") says: stats_lines, \
                 stats_words, stats_chars and stats_top, built on lib/text.sh. Tests first: \
                 tests/stats_test.sh checks the counts against wc's rules and the ranking of \
                 stats_top, ties included.",
                &["tests/stats_test.sh", "lib/stats.sh"],
                &["text"],
            ),
            task(
                "cli",
                agent(3),
                "Write bin/wordstat as specs/cli.md says: options -l -w -c -t N -h, files or \
                 standard input, a total row, exit codes 0, 1 and 2. Tests first: the fixture \
                 tests/fixtures/poem.txt and tests/wordstat_test.sh, which runs the command \
                 on it.",
                &[
                    "tests/wordstat_test.sh",
                    "tests/fixtures/poem.txt",
                    "bin/wordstat",
                ],
                &["text", "stats", "report"],
            ),
        ],
    }
}

/// An invalid plan with one problem of each common kind: a file owned by two tasks, a
/// dependency cycle (text → cli → stats → text) and an agent that is not a worker.
pub(super) fn bad_plan(specs: Vec<Spec>, workers: &[String]) -> Plan {
    let mut plan = plan(specs, workers);
    let ghost = (0..)
        .map(|i| match i {
            0 => "ghost".to_string(),
            i => format!("ghost{i}"),
        })
        .find(|name| !workers.contains(name))
        .unwrap_or_default();
    for task in &mut plan.tasks {
        match task.id.as_str() {
            "text" => {
                task.agent = ghost.clone();
                task.depends_on.push(TaskId::new("cli"));
            }
            "report" => task.files.push("lib/text.sh".to_string()),
            _ => {}
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::scripted::files::TestMatcher;
    use crate::scripted::testing::{self, plan_of, planner_ctx};

    /// What orch's validator would refuse, checked independently of it.
    fn problems(plan: &Plan, workers: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        let tests = TestMatcher::new(&["tests/**".to_string()]).unwrap();
        let mut owner: BTreeMap<&str, &TaskId> = BTreeMap::new();
        for task in &plan.tasks {
            if !workers.contains(&task.agent.as_str()) {
                problems.push(format!("unknown agent {}", task.agent));
            }
            if !task.files.iter().any(|f| tests.is_test(f)) {
                problems.push(format!("task {} owns no test", task.id));
            }
            for file in &task.files {
                if let Some(other) = owner.insert(file, &task.id) {
                    problems.push(format!("{file} in {other} and {}", task.id));
                }
            }
            for dep in &task.depends_on {
                if plan.task(dep).is_none() {
                    problems.push(format!("unknown dependency {dep}"));
                }
            }
        }
        // Peel off tasks whose dependencies are all peeled; what remains is in a cycle.
        let mut left: Vec<&Task> = plan.tasks.iter().collect();
        loop {
            let before = left.len();
            let ids: Vec<TaskId> = left.iter().map(|t| t.id.clone()).collect();
            left.retain(|t| t.depends_on.iter().any(|d| ids.contains(d)));
            if left.len() == before {
                break;
            }
        }
        if !left.is_empty() {
            problems.push("cycle".to_string());
        }
        problems
    }

    #[test]
    fn writes_specs_then_answers_a_valid_plan() {
        let dir = tempfile::tempdir().unwrap();
        let workers = ["alice", "bob"];
        let ran = testing::run(&planner_ctx(dir.path(), &workers), "");
        assert_eq!(ran.code, 0, "{}", ran.err);
        let plan = plan_of(&ran.out);
        assert!(plan.tasks.len() >= 3);
        assert!(plan.tasks.iter().any(|t| !t.depends_on.is_empty()));
        assert_eq!(problems(&plan, &workers), Vec::<String>::new());
        let agents: Vec<&str> = plan.tasks.iter().map(|t| t.agent.as_str()).collect();
        assert_eq!(agents, ["alice", "bob", "alice", "bob"]);
        assert_eq!(
            ran.wrote(),
            plan.specs
                .iter()
                .map(|s| s.file.clone())
                .collect::<Vec<_>>()
        );
        for spec in &plan.specs {
            let text = std::fs::read_to_string(dir.path().join(&spec.file)).unwrap();
            assert!(text.len() > 200, "{}", spec.file);
        }
        let arch = std::fs::read_to_string(dir.path().join("specs/architecture.md")).unwrap();
        assert!(arch.contains(crate::scripted::DEMO_REQUEST));
        let file = dir.path().join(".orch/plans/x/planner/1/plan.json");
        let from_file: Plan = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert_eq!(from_file, plan);
    }

    #[test]
    fn without_workers_the_plan_uses_the_default_agent_and_asked_specs_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = planner_ctx(dir.path(), &[]);
        ctx.specs = crate::paths::project_paths(&["specs/extra.md"]);
        ctx.request = "odd ``` request\nORCH_CONTEXT {}".to_string();
        let ran = testing::run(&ctx, "");
        let plan = plan_of(&ran.out);
        assert!(plan.tasks.iter().all(|t| t.agent == DEFAULT_WORKER));
        assert!(plan.specs.iter().any(|s| s.file == "specs/extra.md"));
        let extra = std::fs::read_to_string(dir.path().join("specs/extra.md")).unwrap();
        assert!(extra.contains(&ctx.request), "{extra}");
    }

    #[test]
    fn bad_plan_is_invalid_on_the_first_attempt_only() {
        let dir = tempfile::tempdir().unwrap();
        let workers = ["alice", "ghost"];
        let mut ctx = planner_ctx(dir.path(), &workers);
        let first = plan_of(&testing::run(&ctx, "bad-plan@planner").out);
        let problems1 = problems(&first, &workers);
        assert!(
            problems1
                .iter()
                .any(|p| p.starts_with("unknown agent ghost1"))
        );
        assert!(
            problems1
                .iter()
                .any(|p| p == "lib/text.sh in text and report")
        );
        assert!(problems1.iter().any(|p| p == "cycle"), "{problems1:?}");
        ctx.attempt = 2;
        ctx.feedback = problems1;
        let ran = testing::run(&ctx, "bad-plan@planner");
        assert!(ran.out.contains("attempt 2"), "{}", ran.out);
        assert_eq!(problems(&plan_of(&ran.out), &workers), Vec::<String>::new());
    }
}
