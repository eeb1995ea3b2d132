//! The polling baseline: what claude-squad does to learn that an agent is done, run on the
//! same agents as orch.
//!
//! The poller is this benchmark's own program started again as `poll` (a process of its
//! own, so that its CPU and memory are measured apart). It launches the agents itself into
//! windows of a private tmux server, exactly as orch does (the launcher orch writes, then
//! `orch agent-run`, so the panes show the same thing), at most `parallel` at a time. Then,
//! like claude-squad's loop: for each running agent, one `tmux capture-pane` process and a
//! hash of the screen; when the hash changed, look at the screen, and if it shows that the
//! agent exited (agent-run's last line, `==> the agent ...`), record the moment and launch
//! the next agent; then sleep 500 ms, and again.
//!
//! Kinder to the baseline than claude-squad is: a 64-bit hash rather than SHA-256, no
//! `git diff` per agent per loop, and an exit counts as detected on the first capture that
//! shows it (claude-squad waits for a capture that did *not* change).

use std::collections::VecDeque;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use orch::agent_process::launcher::{LaunchSpec, write_launcher};
use orch::tmux::{RealTmux, Tmux, WindowSpec};

use crate::cleanup::{ChildGuard, ServerGuard};
use crate::project::{Fixture, agent_argv, orch_exe, owned_file, unique};
use crate::stats::now_s;

/// claude-squad's loop period.
const POLL_EVERY: Duration = Duration::from_millis(500);
const SESSION: &str = "bench-baseline";

/// A baseline run: its tmux server, its agents' directories and the poller.
pub(crate) struct Baseline {
    pub socket: String,
    pub agents: Vec<PathBuf>,
    pub out: PathBuf,
    pub poller: ChildGuard,
    _server: ServerGuard,
}

impl Baseline {
    /// Writes one launcher per agent (`tasks` of them, in `mode`) and starts the poller.
    pub(crate) fn start(
        fixture: &Fixture,
        mode: &str,
        tasks: usize,
        parallel: usize,
    ) -> anyhow::Result<Baseline> {
        let runs = fixture.root.with_extension("baseline");
        let mut queue = String::new();
        let mut agents = Vec::new();
        for task in 1..=tasks {
            let dir = runs.join(task.to_string());
            let spec = LaunchSpec {
                title: format!("task {task} · agent bench · attempt 1"),
                argv: agent_argv(mode),
                env: vec![
                    ("ORCH_ROLE".into(), "worker".into()),
                    ("ORCH_TASK_ID".into(), task.to_string()),
                    ("ORCH_FILES".into(), owned_file(task)),
                    (
                        "ORCH_PROJECT_DIR".into(),
                        fixture.root.display().to_string(),
                    ),
                ],
                env_file: None,
                stdin: None,
                cwd: fixture.root.clone(),
                output_log: dir.join("output.log"),
                stdout_log: dir.join("stdout.log"),
                exit_file: dir.join("exit.json"),
                sandbox: None,
                notice: None,
            };
            let script = write_launcher(&dir, &spec, &orch_exe())?;
            queue.push_str(&format!("{task}\t{}\n", script.display()));
            agents.push(dir);
        }
        let queue_file = runs.join("queue.tsv");
        std::fs::write(&queue_file, queue)?;
        let out = runs.join("detected.tsv");

        let socket = unique("tmux-baseline");
        let server = ServerGuard::new(&socket);
        let tmux = RealTmux::new(Some(socket.clone()), Some("/dev/null".into()));
        // The session's first window only holds it open.
        tmux.new_session(
            SESSION,
            &WindowSpec::new(
                "hold",
                &fixture.root,
                vec!["sleep".into(), "1000000".into()],
            ),
            (200, 50),
        )?;
        let child = std::process::Command::new(std::env::current_exe()?)
            .arg("poll")
            .args([&socket, SESSION, &parallel.to_string()])
            .arg(&fixture.root)
            .arg(&queue_file)
            .arg(&out)
            .stdin(std::process::Stdio::null())
            .spawn()
            .context("cannot start the poller")?;
        Ok(Baseline {
            socket,
            agents,
            out,
            poller: ChildGuard::new(child),
            _server: server,
        })
    }

    /// Waits for the poller to finish (every agent detected), up to `timeout`.
    pub(crate) fn wait(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.poller.0.try_wait()? {
                anyhow::ensure!(status.success(), "the poller failed: {status}");
                return Ok(());
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the poller did not finish within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// (task, when the poller saw it exit).
    pub(crate) fn detected(&self) -> Vec<(usize, f64)> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (task, at) = l.split_once('\t')?;
                Some((task.parse().ok()?, at.parse().ok()?))
            })
            .collect()
    }
}

/// `poll SOCKET SESSION PARALLEL PROJECT QUEUE OUT`: the poller's own process.
pub(crate) fn poll_main(args: &[String]) -> anyhow::Result<()> {
    let [socket, session, parallel, project, queue, out] = args else {
        anyhow::bail!("usage: poll SOCKET SESSION PARALLEL PROJECT QUEUE OUT");
    };
    let parallel: usize = parallel.parse()?;
    let tmux = RealTmux::new(Some(socket.clone()), Some("/dev/null".into()));
    let mut queue: VecDeque<(String, String)> = std::fs::read_to_string(queue)?
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(t, s)| (t.to_string(), s.to_string()))
        .collect();
    let mut out = std::fs::File::create(out)?;
    // (task, pane, hash of the last capture)
    let mut running: Vec<(String, String, u64)> = Vec::new();
    loop {
        while running.len() < parallel
            && let Some((task, script)) = queue.pop_front()
        {
            let spec = WindowSpec::new(
                format!("{task}-bench"),
                Path::new(project),
                vec!["/bin/sh".into(), script],
            );
            let pane = tmux.new_window(session, &spec)?;
            running.push((task, pane.pane_id, 0));
        }
        if running.is_empty() {
            return Ok(());
        }
        let mut still = Vec::with_capacity(running.len());
        for (task, pane, last) in running {
            let screen = tmux.capture_pane(&pane)?;
            let mut hasher = DefaultHasher::new();
            screen.hash(&mut hasher);
            let hash = hasher.finish();
            if hash != last && screen.contains("==> the agent ") {
                writeln!(out, "{task}\t{:.6}", now_s())?;
            } else {
                still.push((task, pane, hash));
            }
        }
        running = still;
        std::thread::sleep(POLL_EVERY);
    }
}

/// The baseline's exit detection on `tasks` `work` agents, `parallel` at a time: from each
/// agent's EXIT stamp to the moment the poller recorded it (milliseconds), and the tasks
/// it never saw end.
pub(crate) fn exit_latency(
    base: &Path,
    tasks: usize,
    parallel: usize,
) -> anyhow::Result<(crate::stats::Samples, Vec<String>)> {
    let fixture =
        Fixture::new(base, "baseline-exit", "work", parallel, |_| Ok(()))?.keep_until_the_end();
    let mut baseline = Baseline::start(&fixture, "work", tasks, parallel)?;
    baseline.wait(Duration::from_secs(
        60 + (tasks / parallel.max(1)) as u64 * 3,
    ))?;
    let detected = baseline.detected();
    let mut latencies = Vec::new();
    let mut dropped = Vec::new();
    for (task, dir) in (1..=tasks).zip(&baseline.agents) {
        let seen = detected.iter().find(|(t, _)| *t == task).map(|(_, at)| *at);
        match (crate::project::stamp(&dir.join("output.log"), "EXIT"), seen) {
            (Some(exit), Some(seen)) => latencies.push((seen - exit) * 1000.0),
            (exit, seen) => dropped.push(format!("task {task}: stamp {exit:?}, seen {seen:?}")),
        }
    }
    Ok((crate::stats::Samples::new(latencies), dropped))
}
