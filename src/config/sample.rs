//! The built-in scripted agent is a sample, not an agent: as planner it plans wordstat whatever
//! the request says, as worker it writes wordstat's files (or placeholders), as judge it
//! passes whatever the gates pass. A starter config falls back to it when no agent CLI is
//! installed, so a run on it must be asked for (`sample: true` on the agent) and is said to be
//! one, before it starts and in its status and report.

use std::path::Path;

use super::load::ConfigError;
use super::schema::{AgentKind, Config};

/// One scripted agent a run would use, and the roles it would play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleAgent {
    pub name: String,
    pub roles: Vec<&'static str>,
    /// Whether the config says `sample: true` for it.
    pub allowed: bool,
}

/// Which roles a command will run: a whole run, a run given its plan (which never asks the
/// planner), or `orch plan` (the planner alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Run,
    RunWithPlan,
    Planner,
}

/// The scripted agents that `scope` would use, with their roles.
pub fn sample_agents(config: &Config, scope: Scope) -> Vec<SampleAgent> {
    let mut roles: Vec<(&str, &'static str)> = Vec::new();
    if scope != Scope::RunWithPlan {
        roles.push((&config.roles.planner, "planner"));
    }
    if scope != Scope::Planner {
        roles.push((&config.roles.judge, "judge"));
        if let Some(oracle) = &config.roles.oracle {
            roles.push((oracle, "oracle"));
        }
        for worker in &config.roles.workers {
            roles.push((worker, "worker"));
        }
    }
    let mut found: Vec<SampleAgent> = Vec::new();
    for (name, role) in roles {
        let Some(agent) = config.agents.get(name) else {
            continue;
        };
        if agent.kind != AgentKind::Scripted {
            continue;
        }
        match found.iter_mut().find(|s| s.name == name) {
            Some(s) if !s.roles.contains(&role) => s.roles.push(role),
            Some(_) => {}
            None => found.push(SampleAgent {
                name: name.to_string(),
                roles: vec![role],
                allowed: agent.sample,
            }),
        }
    }
    found
}

/// Refuses a run that would use a scripted agent the config has not marked `sample: true`;
/// otherwise returns the scripted agents it will use (to be announced), if any.
pub fn check_sample(
    config: &Config,
    config_path: &Path,
    scope: Scope,
) -> Result<Vec<SampleAgent>, ConfigError> {
    let agents = sample_agents(config, scope);
    let refused: Vec<SampleAgent> = agents.iter().filter(|a| !a.allowed).cloned().collect();
    if refused.is_empty() {
        return Ok(agents);
    }
    let file = config_path
        .file_name()
        .map_or_else(|| "orch.yaml".into(), |n| n.to_string_lossy().into_owned());
    let names: Vec<String> = refused.iter().map(|a| format!("`{}`", a.name)).collect();
    let message = format!(
        "{}\n\
         To run your request, configure a real agent: install Claude Code (claude), Codex \
         (codex), OpenCode (opencode) or Gemini CLI (gemini) and run `orch init --force`, which \
         finds them on PATH; or define a `kind: command` agent that runs your own program (see \
         the comments in {file}). `orch doctor` then checks it.\n\
         To run the sample anyway, add `sample: true` under agent {} in {file}; `orch demo` \
         shows it in a project of its own.",
        summary(&refused),
        names.join(", ")
    );
    Err(ConfigError::SampleNotAllowed {
        path: config_path.to_path_buf(),
        message,
    })
}

/// What the scripted agents do in their roles, in one sentence: `orch's built-in scripted
/// agent plays `bot` (planner, worker): a sample that ignores the request and builds ...`.
pub fn summary(agents: &[SampleAgent]) -> String {
    let plays: Vec<String> = agents
        .iter()
        .map(|a| format!("`{}` ({})", a.name, a.roles.join(", ")))
        .collect();
    let has = |role: &str| agents.iter().any(|a| a.roles.contains(&role));
    let mut does = Vec::new();
    if has("planner") || has("worker") {
        does.push("ignores the request and builds wordstat, a small sh project");
    }
    if has("judge") {
        does.push("as judge passes every task whose gates pass, without reading the work");
    }
    if does.is_empty() {
        does.push("gives canned advice, whatever the task");
    }
    format!(
        "orch's built-in scripted agent plays {}: it is a sample that {}.",
        plays.join(", "),
        does.join(", and ")
    )
}

/// The note a command prints before it runs on scripted agents (`None` when it does not).
pub fn notice(agents: &[SampleAgent]) -> Option<String> {
    (!agents.is_empty())
        .then(|| format!("note: a sample run (`sample: true`): {}", summary(agents)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn config(text: &str) -> Config {
        parse(text, Path::new("orch.yaml")).unwrap()
    }

    const MIXED: &str = "\
agents:
  bot:
    kind: scripted
  mine:
    kind: command
    command: [\"./w.sh\"]
roles:
  planner: bot
  judge: bot
  workers: [mine, bot]
";

    #[test]
    fn a_scripted_agent_without_sample_is_refused_with_the_way_out() {
        let err = check_sample(&config(MIXED), Path::new("/p/orch.yaml"), Scope::Run)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("scripted agent plays `bot` (planner, judge, worker)"),
            "{err}"
        );
        assert!(err.contains("ignores the request"), "{err}");
        assert!(err.contains("orch init --force"), "{err}");
        assert!(err.contains("`sample: true` under agent `bot`"), "{err}");
        assert!(err.contains("/p/orch.yaml"), "{err}");
    }

    #[test]
    fn sample_true_allows_it_and_names_it() {
        let text = MIXED.replace("kind: scripted", "kind: scripted\n    sample: true");
        let agents = check_sample(&config(&text), Path::new("orch.yaml"), Scope::Run).unwrap();
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].roles, vec!["planner", "judge", "worker"]);
        let note = notice(&agents).unwrap();
        assert!(
            note.starts_with("note: a sample run (`sample: true`)"),
            "{note}"
        );
        assert_eq!(notice(&[]), None);
    }

    #[test]
    fn an_unused_scripted_agent_or_a_plan_given_needs_nothing() {
        let text = MIXED
            .replace("judge: bot", "judge: mine")
            .replace("workers: [mine, bot]", "workers: [mine]");
        assert!(
            check_sample(&config(&text), Path::new("orch.yaml"), Scope::RunWithPlan)
                .unwrap()
                .is_empty()
        );
        let text = text.replace("planner: bot", "planner: mine");
        assert!(
            check_sample(&config(&text), Path::new("orch.yaml"), Scope::Run)
                .unwrap()
                .is_empty()
        );
        // `orch plan` runs the planner alone: a scripted judge is not its business.
        let text = MIXED.replace("planner: bot", "planner: mine");
        assert!(
            check_sample(&config(&text), Path::new("orch.yaml"), Scope::Planner)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn sample_on_another_kind_is_a_config_error() {
        let text = MIXED.replace(
            "    command: [\"./w.sh\"]",
            "    command: [\"./w.sh\"]\n    sample: true",
        );
        let err = parse(&text, Path::new("orch.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`sample` only applies to `kind: scripted`"),
            "{err}"
        );
    }
}
