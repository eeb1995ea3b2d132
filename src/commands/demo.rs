//! `orch demo [DIR]`: a small sample project on the built-in scripted agent, run with
//! `orch up`, so that a newcomer sees the whole thing with no agent CLI and no account.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use super::{Global, status, up, wait};

/// How long the scripted agents wait before each file they write when the demo is watched:
/// about a minute in all, time to follow each agent with `C-b n`. Without a terminal (CI, a
/// pipe) the demo runs unpaced.
const DEMO_PACE: &str = "5s";
use crate::error::{EXIT_OK, usage};

pub(crate) fn run(
    global: &Global,
    dir: Option<PathBuf>,
    detach: bool,
    socket: Option<String>,
) -> anyhow::Result<u8> {
    let dir = match dir {
        Some(dir) => global.cwd.join(dir),
        // A fresh directory each time, so that the demo can be run again as it is.
        None => (1..)
            .map(|n| match n {
                1 => global.cwd.join("orch-demo"),
                n => global.cwd.join(format!("orch-demo-{n}")),
            })
            .find(|d| !d.exists())
            .expect("some name is free"),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        return Err(usage(format!(
            "{} exists and is not empty: name another directory, e.g. `orch demo /tmp/orch-demo-2`",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    for (path, content) in crate::scripted::demo_files() {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)
            .with_context(|| format!("failed to write {}", target.display()))?;
    }
    // The user's repository, not one of orch's own: its branch gets the usual name.
    git(&dir, &["-c", "init.defaultBranch=main", "init", "-q"])?;
    git(&dir, &["add", "-A"])?;
    git(
        &dir,
        &[
            "-c",
            "user.name=orch demo",
            "-c",
            "user.email=demo@orch.invalid",
            "commit",
            "-q",
            "-m",
            "The demo project, before orch",
        ],
    )?;
    println!("demo project: {}", dir.display());
    let global = Global {
        config: None,
        cwd: dir.clone(),
    };
    let interactive = !detach && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let args = up::UpArgs {
        request: crate::scripted::DEMO_REQUEST.to_string(),
        plan: None,
        layout: "windows".into(),
        detach: !interactive,
        socket,
        // The demo shows the agents' files where it says they are: in its project.
        in_place: true,
        uncommitted: None,
        review: false,
    };
    let orch = crate::invocation::orch();
    if interactive {
        // Paced for a person to follow each agent's files (`C-b n`); an explicit
        // ORCH_SCRIPTED_PACE wins (`up` only adds what the environment does not set).
        let pace = [(crate::scripted::PACE_ENV.to_string(), DEMO_PACE.to_string())];
        if std::env::var_os(crate::scripted::PACE_ENV).is_none() {
            println!(
                "paced to be watched: the agents take {DEMO_PACE} per file \
                 (`ORCH_SCRIPTED_PACE=0 {orch} demo` runs it at full speed)"
            );
        }
        let started = up::start_with(&global, args, &pace)?;
        return up::show(&started, "started", Some(&dir));
    }
    // No terminal to attach: follow the run to its end and show the result.
    let started = up::start(&global, args)?;
    up::print_detached(&started);
    let code = wait::run(&global, None, Some(Duration::from_secs(600)))?;
    status::run(&global, None, false)?;
    let dir = crate::invocation::shell_word(&dir.to_string_lossy());
    println!(
        "\nlook around: cd {dir} && {orch} status; {orch} report; {orch} logs text; {orch} down"
    );
    Ok(if code == 0 { EXIT_OK } else { code })
}

fn git(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<()> {
    // Hardened like every git orch runs: no hooks, templates or filters from anyone's config.
    let status = crate::git::command()
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|e| {
            usage(format!(
                "cannot run git ({e}): the demo needs git installed"
            ))
        })?;
    anyhow::ensure!(
        status.success(),
        "git {} failed in {}",
        args.join(" "),
        dir.display()
    );
    Ok(())
}
