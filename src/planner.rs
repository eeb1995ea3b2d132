//! Planning: ask the planner agent for specs and a plan, check what comes back, and ask again
//! with the exact problems until a valid plan comes or the attempts run out. The steps are
//! separate so that `orch plan` can run them in a subprocess and the engine in a tmux window.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Config;
use crate::plan::{self, Plan};
use crate::project::Project;
use crate::prompt::{self, Context, Role};
use crate::workers::{self, AgentCall, Invocation};

/// One planning: the request, and the directory where its prompts, answers and plan are kept
/// (`.orch/plans/<id>/` for `orch plan`, the run directory for `orch up`).
pub struct Planning<'a> {
    pub project: &'a Project,
    pub config: &'a Config,
    pub request: &'a str,
    pub dir: PathBuf,
}

/// What one attempt needs to run.
pub struct Prepared {
    pub prompt_file: PathBuf,
    pub output_log: PathBuf,
    pub invocation: Invocation,
}

impl Planning<'_> {
    /// How many attempts in all: the first and `planner_retries` more.
    pub fn max_attempts(&self) -> u32 {
        1 + self.config.limits.planner_retries
    }

    pub fn attempt_dir(&self, attempt: u32) -> PathBuf {
        self.dir.join("planner").join(attempt.to_string())
    }

    /// Where the planner may write its plan instead of printing it.
    pub fn plan_file(&self, attempt: u32) -> PathBuf {
        self.attempt_dir(attempt).join("plan.json")
    }

    /// The accepted plan.
    pub fn accepted_plan_file(&self) -> PathBuf {
        self.dir.join("plan.json")
    }

    fn context(&self, attempt: u32, feedback: &[String]) -> Context {
        let plan_file = self.plan_file(attempt);
        let mut ctx = Context::new(
            Role::Planner,
            self.request,
            &self.project.root,
            &self.config.gates.test_pattern,
            vec![],
            attempt,
        );
        ctx.workers = self.config.roles.workers.clone();
        ctx.plan_file = Some(
            plan_file
                .strip_prefix(&self.project.root)
                .unwrap_or(&plan_file)
                .display()
                .to_string(),
        );
        ctx.feedback = feedback.to_vec();
        ctx
    }

    /// Attempt `attempt`'s prompt, with the previous attempt's problems.
    pub fn prompt(&self, attempt: u32, feedback: &[String]) -> String {
        prompt::planner_prompt(&self.context(attempt, feedback))
    }

    /// Writes attempt `attempt`'s prompt (with the previous attempt's problems) and returns
    /// how to run it.
    pub fn prepare(&self, attempt: u32, feedback: &[String]) -> anyhow::Result<Prepared> {
        let dir = self.attempt_dir(attempt);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let prompt_file = dir.join("prompt.md");
        let text = self.prompt(attempt, feedback);
        std::fs::write(&prompt_file, text)
            .with_context(|| format!("failed to write {}", prompt_file.display()))?;
        let name = &self.config.roles.planner;
        let agent = &self.config.agents[name];
        let mut invocation = workers::invocation(&AgentCall {
            name,
            agent,
            role: Role::Planner,
            task: None,
            files: &[],
            prompt_file: &prompt_file,
            project_dir: &self.project.root,
            run_dir: &self.dir,
            session: None,
        })?;
        crate::sandbox::confine(
            &mut invocation,
            Role::Planner,
            self.config,
            agent,
            &self.project.root,
            &self.dir,
        );
        Ok(Prepared {
            prompt_file,
            output_log: dir.join("output.log"),
            invocation,
        })
    }

    /// Checks what attempt `attempt` produced: its exit, its answer (or the plan file it was
    /// allowed to write), the plan's validity, and the spec files on disk. Returns the plan,
    /// or the problems to send back.
    pub fn evaluate(
        &self,
        attempt: u32,
        exit: Option<i32>,
        stdout: &str,
    ) -> Result<Plan, Vec<String>> {
        let agent = &self.config.agents[&self.config.roles.planner];
        let answer = workers::adapter(agent.kind).answer(stdout);
        let problem_exit = match exit {
            Some(0) => None,
            Some(code) => Some(format!("the planner exited with status {code}")),
            None => Some("the planner was killed before it finished".to_string()),
        };
        // Written by the agent with the user's umask: the run's files are the user's alone.
        let _ = crate::private::tighten(&self.plan_file(attempt));
        let from_file = || {
            std::fs::read_to_string(self.plan_file(attempt))
                .ok()
                .and_then(|text| plan::extract_plan(&text))
        };
        let Some(value) = plan::extract_plan(&answer).or_else(from_file) else {
            let mut problems: Vec<String> = problem_exit.into_iter().collect();
            problems.push(
                "no plan found in the answer: answer with one JSON object \
                 {\"specs\": [...], \"tasks\": [...]}"
                    .to_string(),
            );
            return Err(problems);
        };
        let plan = plan::parse_and_validate(&value, &self.project.root, &self.config.roles.workers)
            .map_err(|problems| problems.into_iter().map(|p| p.message).collect::<Vec<_>>())?;
        let missing = missing_specs(&self.project.root, &plan);
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(plan)
    }

    /// Keeps the accepted plan as `plan.json` in the planning's directory.
    pub fn accept(&self, plan: &Plan) -> anyhow::Result<PathBuf> {
        let path = self.accepted_plan_file();
        let json = serde_json::to_string_pretty(plan).context("failed to serialize the plan")?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("failed to write {}", path.display()))?;
        Ok(path)
    }
}

/// Spec files the plan lists that are missing or empty on disk.
pub fn missing_specs(root: &Path, plan: &Plan) -> Vec<String> {
    let mut problems = Vec::new();
    for spec in &plan.specs {
        if let Some(out) = crate::paths::link_out(root, &spec.file)
            && matches!(out, crate::paths::LinkOut::Symlink { .. })
        {
            problems.push(format!(
                "spec {} is {out}: write the spec as a file in the project",
                spec.file
            ));
            continue;
        }
        match std::fs::metadata(root.join(&spec.file)) {
            Ok(meta) if meta.is_file() && meta.len() > 0 => {}
            Ok(meta) if meta.is_file() => problems.push(format!(
                "spec {} is empty: write its content before answering",
                spec.file
            )),
            _ => problems.push(format!(
                "spec {} is listed in the plan but was not written: write the spec files \
                 first, then answer with the plan",
                spec.file
            )),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn setup() -> (tempfile::TempDir, Project, Config) {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::discover(dir.path(), None).unwrap();
        let config = parse(
            "agents:\n  a:\n    kind: command\n    command: [x]\nroles:\n  planner: a\n  judge: a\n  workers: [a]\n",
            Path::new("orch.yaml"),
        )
        .unwrap();
        (dir, project, config)
    }

    #[test]
    fn evaluate_reports_missing_specs_and_accepts_a_good_plan() {
        let (_dir, project, config) = setup();
        let planning = Planning {
            project: &project,
            config: &config,
            request: "r",
            dir: project.state_dir().join("plans/x"),
        };
        let answer = r#"Plan: ```json
{"specs":[{"file":"specs/a.md"}],"tasks":[{"id":1,"agent":"a","task":"t","files":["a.sh"]}]}
```"#;
        let problems = planning.evaluate(1, Some(0), answer).unwrap_err();
        assert!(problems[0].contains("spec specs/a.md is listed in the plan but was not written"));
        std::fs::create_dir_all(project.root.join("specs")).unwrap();
        std::fs::write(project.root.join("specs/a.md"), "").unwrap();
        assert!(planning.evaluate(1, Some(0), answer).unwrap_err()[0].contains("is empty"));
        std::fs::write(project.root.join("specs/a.md"), "# A").unwrap();
        let plan = planning.evaluate(1, Some(0), answer).unwrap();
        assert_eq!(plan.tasks.len(), 1);
    }

    #[test]
    fn evaluate_falls_back_to_the_plan_file_and_reports_a_bad_exit() {
        let (_dir, project, config) = setup();
        let planning = Planning {
            project: &project,
            config: &config,
            request: "r",
            dir: project.state_dir().join("plans/x"),
        };
        let problems = planning.evaluate(1, Some(3), "oops").unwrap_err();
        assert!(problems.iter().any(|p| p.contains("exited with status 3")));
        assert!(problems.iter().any(|p| p.contains("no plan found")));
        planning.prepare(1, &[]).unwrap();
        std::fs::write(
            planning.plan_file(1),
            r#"{"tasks":[{"id":1,"agent":"a","task":"t","files":["a.sh"]}]}"#,
        )
        .unwrap();
        assert!(planning.evaluate(1, Some(0), "see the file").is_ok());
    }
}
