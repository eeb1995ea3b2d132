//! `orch plan "REQUEST"`: run the planner agent as a subprocess until it gives a valid plan.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;

use anyhow::Context as _;

use super::{Global, output};
use crate::agent_process::subprocess::{self, Ended};
use crate::error::{EXIT_FAILED, EXIT_OK, usage};
use crate::planner::Planning;
use crate::project;

/// The name of the file, beside an accepted plan, that holds the request it was made for.
pub(crate) const REQUEST_FILE: &str = "request.txt";

/// The request `orch up` runs: the one given, else (with `--plan`) the one `orch plan` saved
/// beside the plan, so that the command `orch plan` suggests works as printed.
pub(crate) fn request_for_up(
    global: &Global,
    request: Option<String>,
    plan: Option<&Path>,
) -> anyhow::Result<String> {
    if let Some(request) = request {
        return Ok(request);
    }
    let Some(plan) = plan else {
        return Err(usage(
            "say what to build, e.g. orch up \"Build a CLI that counts words\", or run a plan \
             with `orch up --plan FILE`",
        ));
    };
    let saved = global
        .cwd
        .join(plan)
        .parent()
        .map_or_else(|| REQUEST_FILE.into(), |dir| dir.join(REQUEST_FILE));
    match std::fs::read_to_string(&saved) {
        Ok(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(usage(format!(
            "{} has no request saved beside it ({}, which `orch plan` writes): say what the \
             plan is for, e.g. orch up \"Build a CLI that counts words\" --plan {}",
            plan.display(),
            saved.display(),
            plan.display()
        ))),
    }
}

pub(crate) fn run(global: &Global, request: &str) -> anyhow::Result<u8> {
    if request.trim().is_empty() {
        return Err(usage(
            "the request is empty: say what to build, e.g. orch plan \"Build a CLI that counts words\"",
        ));
    }
    let project = global.project()?;
    let config = project.load_config()?;
    let planner = &config.roles.planner;
    let sample = crate::config::check_sample(
        &config,
        &project.config_path,
        crate::config::SampleScope::Planner,
    )?;
    if let Some(notice) = crate::config::sample_notice(&sample) {
        eprintln!("{notice}");
    }
    // The request and the prompts are this user's alone; the planner gets the user's umask.
    crate::private::restrict();
    if let Some(why) = crate::sandbox::check(&config)? {
        eprintln!("warning: the planner will run without a sandbox: {why}");
    }
    let dir = project.state_dir().join("plans").join(project::new_id());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("failed to create {}", dir.display()))?;
    std::fs::write(dir.join(REQUEST_FILE), request)
        .with_context(|| format!("failed to write the request into {}", dir.display()))?;
    let planning = Planning {
        project: &project,
        config: &config,
        request,
        dir: dir.clone(),
    };
    let kind = config.agents[planner].kind;
    let max = planning.max_attempts();
    let mut feedback = Vec::new();
    for attempt in 1..=max {
        let prepared = planning.prepare(attempt, &feedback)?;
        eprintln!("planner `{planner}` ({kind}), attempt {attempt} of {max}");
        let finished = subprocess::run_logged(
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
                // As a path from where the user is, so that the command works as printed.
                let shown = path
                    .strip_prefix(&global.cwd)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                let quoted = crate::invocation::shell_word(&shown);
                println!("next: orch up --plan {quoted}   # runs it for the same request");
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
