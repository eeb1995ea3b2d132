//! `orch validate PLAN`: check a plan by hand, reporting every problem at once.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;

use super::{Global, output};
use crate::config::ConfigError;
use crate::error::{EXIT_FAILED, EXIT_OK, usage};
use crate::plan;

pub(crate) fn run(global: &Global, plan_path: &Path) -> anyhow::Result<u8> {
    let project = global.project()?;
    let text = if plan_path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("failed to read the plan from stdin")?;
        text
    } else {
        let path = global.cwd.join(plan_path);
        std::fs::read_to_string(&path)
            .map_err(|e| usage(format!("cannot read the plan {}: {e}", plan_path.display())))?
    };
    // Without a config the agent names cannot be checked; say so rather than skip silently.
    let workers = match project.load_config() {
        Ok(config) => Some(config.roles.workers),
        Err(ConfigError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let shown = plan_path.display();
    let Some(value) = plan::extract_plan(&text) else {
        println!("{shown}: no plan found: expected a JSON object with a `tasks` list");
        return Ok(EXIT_FAILED);
    };
    let any_agent: Vec<String>;
    let worker_list = match &workers {
        Some(w) => w,
        None => {
            any_agent = value["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["agent"].as_str().map(String::from))
                .collect();
            &any_agent
        }
    };
    match plan::parse_and_validate(&value, &project.root, worker_list) {
        Ok(plan) => {
            println!("{shown}: valid");
            print!("{}", output::plan_summary(&plan));
            if workers.is_none() {
                println!(
                    "note: no {} found, so agent names were not checked against roles.workers",
                    project.display(&project.config_path)
                );
            }
            Ok(EXIT_OK)
        }
        Err(problems) => {
            println!("{shown}: {} problem(s)", problems.len());
            for problem in problems {
                println!("  - {problem}");
            }
            Ok(EXIT_FAILED)
        }
    }
}
