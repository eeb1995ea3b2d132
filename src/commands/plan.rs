//! `orch plan "REQUEST"`: run the planner agent as a subprocess until it gives a valid plan.

use anyhow::Context as _;

use super::{Global, output};
use crate::error::{EXIT_FAILED, EXIT_OK, usage};
use crate::planner::Planning;
use crate::process::{self, Ended};
use crate::project;

pub fn run(global: &Global, request: &str) -> anyhow::Result<u8> {
    if request.trim().is_empty() {
        return Err(usage(
            "the request is empty: say what to build, e.g. orch plan \"Build a CLI that counts words\"",
        ));
    }
    let project = global.project()?;
    let config = project.load_config()?;
    if let Some(why) = crate::sandbox::check(&config)? {
        eprintln!("warning: the planner will run without a sandbox: {why}");
    }
    let dir = project.state_dir().join("plans").join(project::new_id());
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    std::fs::write(dir.join("request.txt"), request)
        .with_context(|| format!("failed to write the request into {}", dir.display()))?;
    let planning = Planning {
        project: &project,
        config: &config,
        request,
        dir: dir.clone(),
    };
    let planner = &config.roles.planner;
    let kind = config.agents[planner].kind;
    let max = planning.max_attempts();
    let mut feedback = Vec::new();
    for attempt in 1..=max {
        let prepared = planning.prepare(attempt, &feedback)?;
        eprintln!("planner `{planner}` ({kind}), attempt {attempt} of {max}");
        let finished = process::run_logged(
            &prepared.invocation,
            &prepared.output_log,
            config.limits.task_timeout,
            |line| eprintln!("  │ {line}"),
        )?;
        let exit = match finished.ended {
            Ended::Exited(code) => Some(code),
            Ended::Signaled(_) => None,
            Ended::TimedOut(after) => {
                feedback = vec![format!(
                    "the planner was stopped after {} without output",
                    humantime::format_duration(after)
                )];
                eprintln!("attempt {attempt}: {}", feedback[0]);
                continue;
            }
        };
        match planning.evaluate(attempt, exit, &finished.stdout) {
            Ok(plan) => {
                let path = planning.accept(&plan)?;
                print!("{}", output::plan_summary(&plan));
                println!("plan: {}", project.display(&path));
                println!("next: orch up --plan {}", project.display(&path));
                return Ok(EXIT_OK);
            }
            Err(problems) => {
                eprintln!(
                    "attempt {attempt}: the plan was refused ({} problem(s)):",
                    problems.len()
                );
                for problem in &problems {
                    eprintln!("  - {problem}");
                }
                feedback = problems;
            }
        }
    }
    eprintln!(
        "error: no valid plan after {max} attempt(s); the last problems are above. Every \
         prompt and raw answer is in {}/planner/<attempt>/",
        project.display(&dir)
    );
    Ok(EXIT_FAILED)
}
