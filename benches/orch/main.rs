//! orch's benchmarks: how fast it notices agents exiting and writing where they must not,
//! how it scales at launch, what watching costs while agents work and on a big project,
//! all side by side with a screen-polling baseline run on the same agents. Writes
//! BENCHMARKS.md. Run it with `scripts/bench` (see the README).
//!
//! The same program is also started again by itself, as `poll` (the baseline's poller, see
//! `baseline.rs`) and as `watch-probe` (see `bigtree.rs`), so that those run in processes
//! of their own and are measured apart.

mod baseline;
mod bigtree;
mod cleanup;
mod idle;
mod latency;
mod launch;
mod procstat;
mod project;
mod report;
mod report_details;
mod report_worktrees;
mod scale;
mod stats;
mod tail;
mod worktrees;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use idle::Span;

/// Everything measured, for the report.
pub struct Results {
    pub quick: bool,
    pub date: String,
    pub machine: String,
    pub version: String,
    pub tmux: String,
    pub load_start: f64,
    pub load_end: f64,
    pub load_max: f64,
    /// Per part: the share of all CPUs busy while it ran (every process).
    pub busy: Vec<(String, f64)>,
    pub duration: String,
    pub latency: Option<latency::Latency>,
    /// The busy scenario: shorter agents, so that everything crowds the engine's loop.
    pub busy_run: Option<latency::Latency>,
    pub scale: Option<scale::Scale>,
    pub baseline_exit: Option<(stats::Samples, Vec<String>)>,
    pub launches: Vec<launch::Launch>,
    pub idle: Option<idle::Idle>,
    pub idle_baseline: Option<idle::Idle>,
    pub idle_settle_s: f64,
    pub tree: Option<bigtree::BigTree>,
    pub worktrees: Option<worktrees::Worktrees>,
}

/// How big each part is: the real sizes, or tiny ones (`--quick`).
struct Sizes {
    latency_tasks: usize,
    busy_tasks: usize,
    parallel: usize,
    scale_agents: usize,
    scale_small: usize,
    scale_reps: usize,
    launch_ns: Vec<usize>,
    launch_reps: usize,
    idle_agents: usize,
    idle: Span,
    tree_files: usize,
    tree_ignored: usize,
    tree_probes: usize,
    tree: Span,
    worktree_files: usize,
    worktree_reps: usize,
    worktree_wave: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        let span = |settle: u64, every: u64, windows| Span {
            settle: Duration::from_millis(settle),
            every: Duration::from_millis(every),
            windows,
        };
        if quick {
            return Sizes {
                latency_tasks: 6,
                busy_tasks: 12,
                parallel: 3,
                scale_agents: 8,
                scale_small: 2,
                scale_reps: 1,
                launch_ns: vec![1, 4],
                launch_reps: 1,
                idle_agents: 4,
                idle: span(300, 500, 2),
                tree_files: 2_000,
                tree_ignored: 200,
                tree_probes: 1,
                tree: span(300, 500, 2),
                worktree_files: 2_000,
                worktree_reps: 1,
                worktree_wave: 2,
            };
        }
        Sizes {
            // More than the 200 asked for, so that p99 (the 396th of 400) is not one outlier.
            latency_tasks: 400,
            // The probe ran 120 to 400; 240 makes p99 the 238th, not one outlier.
            busy_tasks: 240,
            parallel: 8,
            scale_agents: 256,
            scale_small: 64,
            scale_reps: 3,
            launch_ns: vec![1, 8, 32, 64],
            launch_reps: 5,
            idle_agents: 64,
            idle: span(3_000, 5_000, 12),
            tree_files: 100_000,
            tree_ignored: 20_000,
            tree_probes: 5,
            tree: span(3_000, 5_000, 6),
            worktree_files: 100_000,
            worktree_reps: 5,
            worktree_wave: 4,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("poll") => baseline::poll_main(&args[1..]),
        Some("watch-probe") => bigtree::probe_main(&args[1..]),
        _ => bench(&args),
    };
    if let Err(e) = result {
        eprintln!("bench: {e:#}");
        std::process::exit(1);
    }
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    let mut out = None;
    let mut only: Option<Vec<String>> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--out" => out = it.next().map(PathBuf::from),
            "--only" => {
                only = it
                    .next()
                    .map(|s| s.split(',').map(str::to_string).collect());
            }
            // What `cargo bench` passes to every bench program.
            "--bench" => {}
            other => anyhow::bail!(
                "unknown argument {other:?}; usage: [--quick] [--out FILE] \
                 [--only latency,busy,launch,scale,idle,tree,worktrees]"
            ),
        }
    }
    let out = out.unwrap_or_else(|| {
        PathBuf::from(if quick {
            "target/BENCHMARKS.quick.md"
        } else {
            "BENCHMARKS.md"
        })
    });
    let part = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|p| p == name));
    cleanup::on_signals();
    let sizes = Sizes::new(quick);
    let base = std::env::temp_dir().join(project::unique("run"));
    std::fs::create_dir_all(&base)?;
    let _base = cleanup::DirGuard::new(&base);

    let started = Instant::now();
    let mut loads = vec![procstat::loadavg()];
    let mut r = Results {
        quick,
        date: date(),
        machine: procstat::machine(),
        version: version(),
        tmux: command_line("tmux", &["-V"]),
        load_start: loads[0],
        load_end: 0.0,
        load_max: 0.0,
        busy: Vec::new(),
        duration: String::new(),
        latency: None,
        busy_run: None,
        scale: None,
        baseline_exit: None,
        launches: Vec::new(),
        idle: None,
        idle_baseline: None,
        idle_settle_s: sizes.idle.settle.as_secs_f64(),
        tree: None,
        worktrees: None,
    };
    let step = |what: &str| eprintln!("bench: {what} (load {:.2})", procstat::loadavg());
    // How busy the whole machine was during each part, to tell a quiet run from a loaded one.
    let mut busy: Vec<(String, f64)> = Vec::new();
    let mut mark = procstat::machine_jiffies();
    let mut phase_done = |name: &str, loads: &mut Vec<f64>| {
        let now = procstat::machine_jiffies();
        let (b, t) = (now.0 - mark.0, now.1 - mark.1);
        busy.push((name.to_string(), b as f64 / t.max(1) as f64));
        mark = now;
        loads.push(procstat::loadavg());
    };
    if part("latency") {
        step("exit and violation latency, orch");
        r.latency = Some(latency::run(
            &base,
            "work",
            sizes.latency_tasks,
            sizes.parallel,
        )?);
        phase_done("exit and violation latency (orch)", &mut loads);
        step("exit latency, polling baseline");
        r.baseline_exit = Some(baseline::exit_latency(
            &base,
            sizes.latency_tasks,
            sizes.parallel,
        )?);
        phase_done("exit latency (baseline)", &mut loads);
    }
    if part("busy") {
        step("the busy scenario");
        r.busy_run = Some(latency::run(
            &base,
            "busy",
            sizes.busy_tasks,
            sizes.parallel,
        )?);
        phase_done("busy scenario (orch)", &mut loads);
    }
    if part("launch") {
        for &n in &sizes.launch_ns {
            step(&format!("launching {n} at once"));
            r.launches.push(launch::run(&base, n, sizes.launch_reps)?);
            phase_done(&format!("launch {n}"), &mut loads);
        }
    }
    if part("idle") {
        step("silent agents, orch");
        r.idle = Some(idle::orch(&base, sizes.idle_agents, sizes.idle)?);
        phase_done("silent agents (orch)", &mut loads);
        step("silent agents, polling baseline");
        r.idle_baseline = Some(idle::baseline(&base, sizes.idle_agents, sizes.idle)?);
        phase_done("silent agents (baseline)", &mut loads);
    }
    if part("scale") {
        step(&format!("{} agents in one run", sizes.scale_agents));
        r.scale = Some(scale::run(
            &base,
            sizes.scale_agents,
            sizes.scale_small,
            sizes.scale_reps,
            sizes.idle,
        )?);
        phase_done(&format!("{} agents", sizes.scale_agents), &mut loads);
    }
    if part("tree") {
        step("a big project");
        r.tree = Some(bigtree::run(
            &base,
            sizes.tree_files,
            sizes.tree_ignored,
            sizes.tree_probes,
            sizes.tree,
        )?);
        phase_done(
            "big project (writing and committing its files included)",
            &mut loads,
        );
    }
    if part("worktrees") {
        step("task worktrees on a big project (isolation: task)");
        r.worktrees = Some(worktrees::run(
            &base,
            sizes.worktree_files,
            sizes.worktree_reps,
            sizes.worktree_wave,
        )?);
        phase_done(
            "task worktrees (writing and committing the project's files included)",
            &mut loads,
        );
    }
    r.load_end = *loads.last().unwrap_or(&f64::NAN);
    r.load_max = loads.iter().copied().fold(0.0, f64::max);
    r.busy = busy;
    let took = started.elapsed().as_secs_f64();
    r.duration = if took < 120.0 {
        format!("{took:.0} s")
    } else {
        format!("{:.0} minutes", took / 60.0)
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, report::render(&r))?;
    eprintln!("bench: wrote {}", out.display());
    Ok(())
}

/// The orch version and the commit it was built from (`-dirty` with local changes).
fn version() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let commit = command_line("git", &["-C", dir, "rev-parse", "--short", "HEAD"]);
    let dirty = !command_line("git", &["-C", dir, "status", "--porcelain"]).is_empty();
    format!(
        "{} at commit {commit}{}",
        command_line(&project::orch_exe().display().to_string(), &["--version"]),
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        }
    )
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn date() -> String {
    command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}
