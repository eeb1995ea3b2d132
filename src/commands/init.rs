//! `orch init`: write a starter config for the agent CLIs found on PATH and the gates that fit
//! the project, and say what it found and what is left to do.

use std::io::Write as _;

use anyhow::Context as _;

use super::Global;
use crate::config::{AGENT_INSTALL, AgentKind, PROJECT_MARKERS, detect_project, starter_config};
use crate::error::{EXIT_OK, usage};

pub(crate) fn run(global: &Global, force: bool) -> anyhow::Result<u8> {
    let project = global.project()?;
    let path = &project.config_path;
    if path.exists() && !force {
        return Err(usage(format!(
            "{} already exists: edit it, or run `orch init --force` to replace it",
            path.display()
        )));
    }
    let detected: Vec<AgentKind> = AgentKind::ALL
        .into_iter()
        .filter(|kind| kind.binary().is_some_and(|bin| which::which(bin).is_ok()))
        .collect();
    let gates = detect_project(&project.root, &|program| which::which(program).is_ok());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    std::fs::write(path, starter_config(&detected, gates.as_ref()))
        .with_context(|| format!("failed to write {}", path.display()))?;
    println!("wrote {}", path.display());
    if detected.is_empty() {
        println!(
            "no agent CLI found: orch looked on PATH for claude, codex, opencode and gemini.\n\
             Every role uses the built-in scripted agent, a sample that ignores your request and \
             builds a small sh project, so `orch up` refuses to run until you configure a real \
             agent:\n  \
             - install one, then run `orch init --force` again:"
        );
        for (kind, install) in AGENT_INSTALL {
            println!("      {install:<44} ({kind})");
        }
        println!(
            "    (installed elsewhere? put its directory on PATH)\n  \
             - or define a `kind: command` agent that runs your own program (an example is in \
             {})\n  \
             - to run the sample anyway, add `sample: true` under agent `scripted`.\n\
             `orch demo` shows orch at work meanwhile, in a project of its own.",
            path.display()
        );
    } else {
        let names: Vec<&str> = detected.iter().map(|k| k.name()).collect();
        println!("agent CLIs found on PATH: {}", names.join(", "));
    }
    match &gates {
        Some(g) => {
            let show = |c: &Option<String>| {
                c.as_deref()
                    .map_or_else(|| "none".into(), |c| format!("`{c}`"))
            };
            println!(
                "gates for a {} project (found {}): lint {}, test {}; check that they pass",
                g.kind,
                g.evidence,
                show(&g.lint),
                show(&g.test)
            );
            for note in &g.notes {
                println!("  note: {note}");
            }
        }
        None => println!(
            "gates: orch did not recognise this kind of project (it looks for \
             {PROJECT_MARKERS}); they are left commented in the file, with examples: without \
             a test gate the judge relies on the agents' word"
        ),
    }
    if project.is_git && ignore_state_dir(&project.root)? {
        println!("added .orch/ to .gitignore (orch keeps its runs there)");
    }
    println!("next: `orch doctor` to check everything, then `orch plan \"what to build\"`");
    Ok(EXIT_OK)
}

/// Adds `.orch/` to the project's .gitignore unless it is already there. Returns whether it
/// changed anything.
fn ignore_state_dir(root: &std::path::Path) -> anyhow::Result<bool> {
    let path = root.join(".gitignore");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let present = text
        .lines()
        .any(|l| matches!(l.trim(), ".orch" | ".orch/" | "/.orch" | "/.orch/"));
    if present {
        return Ok(false);
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    writeln!(file, "{sep}.orch/").with_context(|| format!("failed to write {}", path.display()))?;
    Ok(true)
}
