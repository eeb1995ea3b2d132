//! `orch init`: write a starter config for the agent CLIs found on PATH.

use std::io::Write as _;

use anyhow::Context as _;

use super::Global;
use crate::config::{AgentKind, starter_config};
use crate::error::{EXIT_OK, usage};

pub fn run(global: &Global, force: bool) -> anyhow::Result<u8> {
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
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    std::fs::write(path, starter_config(&detected))
        .with_context(|| format!("failed to write {}", path.display()))?;
    println!("wrote {}", path.display());
    if detected.is_empty() {
        println!(
            "no agent CLI (claude, codex, opencode, gemini) found on PATH: every role uses the \
             built-in scripted agent for now; edit the file once you install one"
        );
    } else {
        let names: Vec<&str> = detected.iter().map(|k| k.name()).collect();
        println!("agent CLIs found on PATH: {}", names.join(", "));
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
