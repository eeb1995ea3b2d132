//! What the command line says about itself: shell completion scripts (clap_complete) and
//! manual pages (clap_mangen), both generated from the clap definitions so they cannot drift
//! from what orch accepts.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap_complete::Shell;

use crate::error::{EXIT_OK, usage};

/// Prints the completion script for `shell`.
pub(super) fn completions(cmd: clap::Command, shell: Shell) -> anyhow::Result<u8> {
    let mut cmd = without_hidden(cmd);
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "orch", &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("failed to write the completion script")?;
    Ok(EXIT_OK)
}

/// The command without its hidden subcommands (orch's internals, which clap_complete would
/// otherwise offer): the same options, the visible subcommands.
fn without_hidden(cmd: clap::Command) -> clap::Command {
    let mut clean = clap::Command::new("orch").version(env!("CARGO_PKG_VERSION"));
    if let Some(about) = cmd.get_about() {
        clean = clean.about(about.clone());
    }
    for arg in cmd
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
    {
        clean = clean.arg(arg.clone());
    }
    clean.subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// Prints orch's manual page, or `command`'s; with `dir`, writes every page there.
pub(super) fn man(
    cmd: clap::Command,
    command: Option<&str>,
    dir: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let mut cmd = cmd.disable_help_subcommand(true);
    // Built so that subcommands get their full names (`orch-up`) and inherited options.
    cmd.build();
    if let Some(dir) = dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        clap_mangen::generate_to(cmd.clone(), &dir)
            .with_context(|| format!("failed to write the manual pages into {}", dir.display()))?;
        let pages = 1 + cmd.get_subcommands().filter(|s| !s.is_hide_set()).count();
        println!(
            "wrote {pages} manual pages into {} (orch.1 and orch-<command>.1); `man orch` \
             finds them when that directory is under a man path (e.g. ~/.local/share/man/man1)",
            dir.display()
        );
        return Ok(EXIT_OK);
    }
    let page = match command {
        None => cmd,
        Some(name) => cmd
            .get_subcommands()
            .find(|s| !s.is_hide_set() && s.get_name() == name)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = cmd
                    .get_subcommands()
                    .filter(|s| !s.is_hide_set())
                    .map(clap::Command::get_name)
                    .collect();
                usage(format!(
                    "no command `{name}`: `orch man` has a page for each of {}",
                    names.join(", ")
                ))
            })?,
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .context("failed to render the manual page")?;
    std::io::stdout()
        .write_all(&out)
        .context("failed to write the manual page")?;
    Ok(EXIT_OK)
}
