//! How orch scales at launch: a plan of N independent tasks with `max_parallel: N`, so all
//! N start at once, each agent `silent` (it stamps START as its first act, writes its own
//! file and sleeps). Repeated, each time in a fresh project on a fresh tmux server.
//!
//! - dispatch → all started: from the journal's `plan_accepted` (`t`, ms, taken before the
//!   engine launches anything) to the last agent's START stamp: what the engine, tmux,
//!   the launcher and `orch agent-run` take to get N agents running.
//! - `orch up` → all started: from when the benchmark ran `orch up` to the last START; adds
//!   creating the run, the tmux session, starting the engine, its snapshot and watchers.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cleanup::{DirGuard, ServerGuard};
use crate::project::{AGENT, Fixture, Run, checked, unique, wait_stamps};
use crate::stats::{Samples, now_s};

pub struct Launch {
    pub n: usize,
    /// Milliseconds, one per repetition.
    pub dispatch_ms: Samples,
    pub up_ms: Samples,
    /// The engine's own share: `plan_accepted` → the last `task_agent_started` (both `t`).
    pub engine_ms: Samples,
}

pub(crate) fn run(base: &Path, n: usize, reps: usize) -> anyhow::Result<Launch> {
    let (mut dispatch, mut up, mut engine) = (vec![], vec![], vec![]);
    for _ in 0..reps {
        let fixture = Fixture::new(base, "launch", "silent", n, |_| Ok(()))?.keep_until_the_end();
        let run = Run::up(&fixture, n)?;
        let starts = run.wait_started(n, Duration::from_secs(30 + n as u64))?;
        let last = starts.iter().copied().fold(f64::MIN, f64::max);
        let accepted = run
            .entry("plan_accepted", None)
            .ok_or_else(|| anyhow::anyhow!("no plan_accepted in the journal"))?
            .t_s();
        // Its agents have all started, so every task_agent_started is journaled.
        run.tail
            .wait_for("every task_agent_started", Duration::from_secs(10), |e| {
                e.iter()
                    .filter(|e| e.event() == "task_agent_started")
                    .count()
                    >= n
            })?;
        let last_agent = run
            .tail
            .entries()
            .iter()
            .filter(|e| e.event() == "task_agent_started")
            .map(super::tail::Entry::t_s)
            .fold(f64::MIN, f64::max);
        dispatch.push((last - accepted) * 1000.0);
        up.push((last - run.up_at_s) * 1000.0);
        engine.push((last_agent - accepted) * 1000.0);
        run.down()?;
    }
    Ok(Launch {
        n,
        dispatch_ms: Samples::new(dispatch),
        up_ms: Samples::new(up),
        engine_ms: Samples::new(engine),
    })
}

/// The floor under `run`'s figure: tmux alone, no orch. A fresh private tmux server makes `n`
/// windows in one command list (one round trip, as fast as tmux takes them), each running the
/// same `silent` agent through `sh` (as orch's launcher runs `orch agent-run`), its output in
/// a file: from just before the command list is sent to the last agent's START, `reps` times.
/// What this machine takes to give `n` agents a pane each and start them; orch's own share of
/// `run`'s figure is what it adds to this.
pub(crate) fn floor(base: &Path, n: usize, reps: usize) -> anyhow::Result<Samples> {
    // The command list names the benchmark's own paths, unquoted.
    anyhow::ensure!(
        !base
            .to_string_lossy()
            .contains(['"', '\\', '\'', ' ', '$', ';', '#']),
        "the benchmark's directory {} has a character that tmux's command list would read as \
         syntax: set TMPDIR to a plain path",
        base.display()
    );
    let mut took = vec![];
    for _ in 0..reps {
        let dir = base.join(unique("floor"));
        // Kept until the benchmark's end, as the timed parts' projects are (see DirGuard::keep).
        let mut guard = DirGuard::new(&dir);
        guard.keep();
        std::fs::create_dir_all(&dir)?;
        let agent = dir.join("agent.sh");
        std::fs::write(&agent, AGENT)?;
        let socket = unique("tmux");
        let _server = ServerGuard::new(&socket);
        tmux(
            &socket,
            &["new-session", "-d", "-s", "floor", "-x", "200", "-y", "50"],
        )?;
        let mut commands = String::new();
        let mut logs = vec![];
        for i in 1..=n {
            let log = dir.join(format!("{i}.log"));
            let line = format!(
                "new-window -d -t floor: -e ORCH_TASK_ID={i} -e ORCH_FILES={files} \
                 \"exec /bin/bash {agent} silent >{log} 2>&1\"\n",
                files = dir.join(format!("{i}.owned")).display(),
                agent = agent.display(),
                log = log.display(),
            );
            commands.push_str(&line);
            logs.push(log);
        }
        let list = dir.join("windows.tmux");
        std::fs::write(&list, commands)?;
        let t0 = now_s();
        tmux(&socket, &["source-file", &list.to_string_lossy()])?;
        let starts = wait_stamps(&logs, "START", Duration::from_secs(30 + n as u64))?;
        let last = starts.iter().copied().fold(f64::MIN, f64::max);
        took.push((last - t0) * 1000.0);
    }
    Ok(Samples::new(took))
}

fn tmux(socket: &str, args: &[&str]) -> anyhow::Result<()> {
    checked(
        Command::new("tmux")
            .args(["-L", socket, "-f", "/dev/null"])
            .args(args),
        &format!("tmux {}", args.first().copied().unwrap_or_default()),
    )
}
