//! `isolation: task` on a big project (the files of `bigtree.rs`): what a task's worktree
//! costs to make, collect and remove, with orch's own code (`orch::workspace::task`), and what
//! the other ways git offers to make one cost on the same project, side by side:
//!
//! - *full checkout* (what orch does): `git worktree add --detach` of the run branch's tip,
//!   with `checkout.workers=0` (one checkout worker per core);
//! - *serial checkout*: the same with `checkout.workers=1` (git's default, what orch did
//!   before);
//! - *no checkout*: `git worktree add --no-checkout`, git's bookkeeping alone (no file written:
//!   a lower bound, useless to a task that runs tests);
//! - *sparse, the task's directory*: no checkout, then a sparse checkout of the one directory
//!   the task's file is in (what a task that needed only its own files would cost);
//! - *copy of the run's worktree*: `cp -a` of a checked-out tree (no git at all);
//! - a *wave*: several task worktrees made at once, as a wave of independent tasks launches.
//!
//! Each is timed end to end from the benchmark (process start included), warm page cache,
//! one after another on the same project, each after a `sync` (see [`settle`]).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;
use orch::paths::ProjectPath;
use orch::plan::TaskId;
use orch::workspace::task::TaskRepo;

use crate::project::Fixture;
use crate::stats::Samples;

pub struct Worktrees {
    pub files: usize,
    pub reps: usize,
    /// The run's own worktree (`git worktree add -b orch/<id>`), once: what `orch up` adds.
    pub run_worktree_ms: f64,
    pub prepare_ms: Samples,
    pub serial_ms: Samples,
    pub no_checkout_ms: Samples,
    pub sparse_ms: Samples,
    pub copy_ms: Samples,
    pub wave: usize,
    /// Wall time until all of a wave's worktrees exist.
    pub wave_ms: Samples,
    /// One owned file changed and one stray written, collected.
    pub collect_ms: Samples,
    pub discard_ms: Samples,
    /// One task worktree on disk (`du -sk`), KiB.
    pub disk_kib: u64,
    pub git_version: String,
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// orch's hardened git in `dir`, failing with git's own words.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = orch::git::command()
        .current_dir(dir)
        .args(args)
        .output()
        .context("cannot run git")?;
    anyhow::ensure!(
        out.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn remove_worktree(repo: &Path, path: &Path) -> anyhow::Result<()> {
    let p = path.to_str().context("non-UTF-8 path")?;
    git(repo, &["worktree", "remove", "--force", "--force", p])?;
    settle();
    Ok(())
}

/// Waits until the file system has done with what came before (`sync`): removing 100,000
/// files leaves work behind (written back, on a disk mounted with `discard` trimmed), which
/// would otherwise land on the next figure.
fn settle() {
    let _ = Command::new("sync").status();
}

fn disk_kib(path: &Path) -> u64 {
    Command::new("du")
        .arg("-sk")
        .arg(path)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

pub(crate) fn run(
    base: &Path,
    files: usize,
    reps: usize,
    wave: usize,
) -> anyhow::Result<Worktrees> {
    let fixture = Fixture::new(base, "worktrees", "silent", 1, |root| {
        crate::bigtree::fill(root, files, 0)
    })?;
    settle();
    let root = &fixture.root;
    let state = root.join(".orch");
    let run_id = "bench";
    let run_wt = orch::workspace::worktree_path(&state, run_id);
    let branch = orch::workspace::branch_name(run_id);
    let start = Instant::now();
    git(
        root,
        &[
            "worktree",
            "add",
            "--quiet",
            "-b",
            &branch,
            run_wt.to_str().context("non-UTF-8 path")?,
        ],
    )?;
    let run_worktree_ms = ms_since(start);
    settle();
    let repo = TaskRepo::new(&run_wt, &state, run_id, &state.join("runs").join(run_id));
    let tip = repo.tip()?;
    let scratch = state.join("worktrees").join("bench-alternatives");
    std::fs::create_dir_all(&scratch)?;
    let owned = "a00/b00/f00.txt";

    let mut w = Worktrees {
        files,
        reps,
        run_worktree_ms,
        prepare_ms: Samples::default(),
        serial_ms: Samples::default(),
        no_checkout_ms: Samples::default(),
        sparse_ms: Samples::default(),
        copy_ms: Samples::default(),
        wave,
        wave_ms: Samples::default(),
        collect_ms: Samples::default(),
        discard_ms: Samples::default(),
        disk_kib: 0,
        git_version: git(root, &["--version"])?,
    };
    let (mut prepare, mut collect, mut discard) = (vec![], vec![], vec![]);
    let (mut serial, mut none, mut sparse, mut copy) = (vec![], vec![], vec![], vec![]);
    for rep in 0..reps {
        // orch's own: prepare, a task's work, collect, discard.
        let task = TaskId::new(format!("t{rep}"));
        let start = Instant::now();
        let tw = repo.prepare(&task)?;
        prepare.push(ms_since(start));
        if rep == 0 {
            w.disk_kib = disk_kib(&tw.path);
        }
        std::fs::write(tw.path.join(owned), format!("changed by {task}\n"))?;
        std::fs::write(tw.path.join(format!("stray/{task}.txt")), "stray\n")?;
        let start = Instant::now();
        let got = repo.collect(&tw, &[ProjectPath::new(owned)?], &format!("task {task}"))?;
        collect.push(ms_since(start));
        anyhow::ensure!(
            got.files == [owned] && got.findings.len() == 1,
            "collect took {:?} and found {:?}",
            got.files,
            got.findings
        );
        let start = Instant::now();
        repo.discard(&tw)?;
        discard.push(ms_since(start));
        settle();

        // The other ways, each removed (untimed) before the next.
        let path = |name: &str| scratch.join(format!("{name}-{rep}"));
        let p = path("serial");
        let start = Instant::now();
        git(
            &run_wt,
            &[
                "-c",
                "checkout.workers=1",
                "worktree",
                "add",
                "--quiet",
                "--detach",
                p.to_str().context("path")?,
                &tip,
            ],
        )?;
        serial.push(ms_since(start));
        remove_worktree(&run_wt, &p)?;

        let p = path("none");
        let start = Instant::now();
        git(
            &run_wt,
            &[
                "worktree",
                "add",
                "--quiet",
                "--no-checkout",
                "--detach",
                p.to_str().context("path")?,
                &tip,
            ],
        )?;
        none.push(ms_since(start));
        remove_worktree(&run_wt, &p)?;

        let p = path("sparse");
        let start = Instant::now();
        git(
            &run_wt,
            &[
                "worktree",
                "add",
                "--quiet",
                "--no-checkout",
                "--detach",
                p.to_str().context("path")?,
                &tip,
            ],
        )?;
        git(&p, &["sparse-checkout", "set", "--no-cone", "/a00/b00/"])?;
        git(&p, &["read-tree", "-mu", "HEAD"])?;
        sparse.push(ms_since(start));
        anyhow::ensure!(p.join(owned).is_file(), "the sparse checkout lacks {owned}");
        remove_worktree(&run_wt, &p)?;

        let p = path("copy");
        let start = Instant::now();
        let status = Command::new("cp").arg("-a").arg(&run_wt).arg(&p).status()?;
        anyhow::ensure!(status.success(), "cp -a failed");
        copy.push(ms_since(start));
        std::fs::remove_dir_all(&p)?;
        settle();
    }

    // Waves: `wave` worktrees at once, as independent tasks launch together.
    let mut waves = vec![];
    for rep in 0..reps.min(3) {
        let start = Instant::now();
        let made: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..wave)
                .map(|i| {
                    let repo = &repo;
                    s.spawn(move || {
                        repo.prepare(&TaskId::new(format!("w{rep}-{i}")))
                            .map(drop)
                            .map_err(anyhow::Error::from)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))
                })
                .collect()
        });
        waves.push(ms_since(start));
        for result in made {
            result?;
        }
        repo.discard_all()?;
        settle();
    }
    w.prepare_ms = Samples::new(prepare);
    w.collect_ms = Samples::new(collect);
    w.discard_ms = Samples::new(discard);
    w.serial_ms = Samples::new(serial);
    w.no_checkout_ms = Samples::new(none);
    w.sparse_ms = Samples::new(sparse);
    w.copy_ms = Samples::new(copy);
    w.wave_ms = Samples::new(waves);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(w)
}
