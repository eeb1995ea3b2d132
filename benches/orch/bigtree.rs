//! A big project: 100,000 committed files in 1,000 directories (plus an ignored `target/`
//! that must cost nothing), and what orch's ownership watching costs on it.
//!
//! - watcher set-up: this program started again as `watch-probe`, which times
//!   `Ignore::new` + `TreeWatcher::start` (walking the tree, one inotify watch per
//!   directory, the set of known files) in a fresh process, reports the resident memory it
//!   added, then sits idle with the watcher running and reports its own CPU;
//! - the engine on that project: `orch up` with one `silent` agent; the engine's memory
//!   and idle CPU, and the journal's `run_started` → `engine_started` (which includes the
//!   watcher's set-up) and `engine_started` → `snapshot_taken`;
//! - for comparison, one `git diff` in the project: what claude-squad runs per agent on
//!   every 500 ms loop besides the capture (our baseline leaves it out).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::cleanup::ChildGuard;
use crate::idle::{Span, sample_both};
use crate::procstat::{Usage, cpu, rss_kib};
use crate::project::{Fixture, Run, server_pid};
use crate::stats::Samples;

pub struct BigTree {
    pub files: usize,
    pub ignored_files: usize,
    pub dirs_watched: u64,
    pub setup_ms: Samples,
    /// Resident memory the watcher added, KiB (one per probe).
    pub watcher_kib: Samples,
    /// The probe's CPU while idle with the watcher running, share of one core.
    pub probe_idle_share: f64,
    pub probe_idle_s: f64,
    pub engine: Usage,
    pub server: Usage,
    pub engine_start_ms: f64,
    pub snapshot_ms: f64,
    pub git_diff_ms: Samples,
}

/// Files `a00/b00/f00.txt`…: `files` of them, 100 per directory, 100 directories per top
/// directory; and `ignored` more under `target/`.
pub(crate) fn fill(root: &Path, files: usize, ignored: usize) -> anyhow::Result<()> {
    let write = |base: &Path, n: usize| -> anyhow::Result<()> {
        for i in 0..n {
            let dir = base.join(format!("a{:02}/b{:02}", i / 10_000, (i / 100) % 100));
            if i % 100 == 0 {
                std::fs::create_dir_all(&dir)?;
            }
            std::fs::write(
                dir.join(format!("f{:02}.txt", i % 100)),
                format!("file {i}\n"),
            )?;
        }
        Ok(())
    };
    write(root, files)?;
    write(&root.join("target"), ignored)
}

pub(crate) fn run(
    base: &Path,
    files: usize,
    ignored: usize,
    probes: usize,
    span: Span,
) -> anyhow::Result<BigTree> {
    let fixture = Fixture::new(base, "bigtree", "silent", 1, |root| {
        fill(root, files, ignored)
    })?;

    let (mut setup, mut added, mut idle, mut dirs) = (vec![], vec![], (0.0, 0.0), 0);
    for i in 0..probes {
        // Only the first probe idles: set-up is what the repetitions are for.
        let idle_s = if i == 0 {
            span.every.as_secs_f64() * span.windows as f64
        } else {
            0.0
        };
        let report = probe(&fixture.root, idle_s)?;
        setup.push(report["setup_ms"].as_f64().unwrap_or(f64::NAN));
        added.push(report["added_kib"].as_f64().unwrap_or(f64::NAN));
        dirs = report["dirs"].as_u64().unwrap_or(0);
        if i == 0 {
            idle = (report["idle_cpu_s"].as_f64().unwrap_or(f64::NAN), idle_s);
        }
    }

    let mut diffs = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let out = std::process::Command::new("git")
            .args(["--no-optional-locks", "diff", "--stat"])
            .current_dir(&fixture.root)
            .output()?;
        anyhow::ensure!(out.status.success(), "git diff failed");
        diffs.push(start.elapsed().as_secs_f64() * 1000.0);
    }

    let run = Run::up(&fixture, 1)?;
    run.wait_started(1, Duration::from_secs(60))?;
    std::thread::sleep(span.settle);
    let (engine, server) = sample_both(run.engine_pid()?, server_pid(&run.socket)?, span)?;
    let t = |event: &str| run.entry(event, None).map_or(f64::NAN, |e| e.t_s());
    let engine_start_ms = (t("engine_started") - t("run_started")) * 1000.0;
    let snapshot_ms = (t("snapshot_taken") - t("engine_started")) * 1000.0;
    run.down()?;
    Ok(BigTree {
        files,
        ignored_files: ignored,
        dirs_watched: dirs,
        setup_ms: Samples::new(setup),
        watcher_kib: Samples::new(added),
        probe_idle_share: idle.0 / idle.1.max(f64::MIN_POSITIVE),
        probe_idle_s: idle.1,
        engine,
        server,
        engine_start_ms,
        snapshot_ms,
        git_diff_ms: Samples::new(diffs),
    })
}

/// Runs one `watch-probe` and returns its report.
fn probe(root: &Path, idle_s: f64) -> anyhow::Result<Value> {
    let child = std::process::Command::new(std::env::current_exe()?)
        .arg("watch-probe")
        .arg(root)
        .arg(idle_s.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut guard = ChildGuard::new(child);
    let mut text = String::new();
    use std::io::Read as _;
    guard
        .0
        .stdout
        .take()
        .context("no probe output")?
        .read_to_string(&mut text)?;
    serde_json::from_str(text.trim()).with_context(|| format!("bad probe report: {text}"))
}

/// `watch-probe ROOT IDLE_S`: sets up orch's tree watcher on ROOT the way the engine does,
/// and prints a JSON report.
pub(crate) fn probe_main(args: &[String]) -> anyhow::Result<()> {
    let [root, idle_s] = args else {
        anyhow::bail!("usage: watch-probe ROOT IDLE_SECONDS");
    };
    let idle_s: f64 = idle_s.parse()?;
    let me = std::process::id();
    let root = Path::new(root);
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    // As the engine does: the project's ignore globs from its orch.yaml, and .gitignore.
    let config = orch::config::load(&root.join("orch.yaml"))?;
    let before = rss_kib(me).map_or(0, |r| r.0);
    let start = Instant::now();
    let ignore = orch::watch::Ignore::new(root, &config.ownership.ignore)?;
    let watcher = orch::watch::TreeWatcher::start(root, ignore, tx)?;
    let setup_ms = start.elapsed().as_secs_f64() * 1000.0;
    let after = rss_kib(me).map_or(0, |r| r.0);
    let cpu_before = cpu(me).map_or(0.0, |c| c.total());
    std::thread::sleep(Duration::from_secs_f64(idle_s));
    let idle_cpu_s = cpu(me).map_or(0.0, |c| c.total()) - cpu_before;
    println!(
        "{}",
        json!({
            "setup_ms": setup_ms,
            "added_kib": after.saturating_sub(before),
            "dirs": watcher.watched_dirs(),
            "idle_cpu_s": idle_cpu_s,
        })
    );
    drop(watcher);
    Ok(())
}
