//! BENCHMARKS.md's rows and section on `isolation: task`: what a task's worktree costs on a
//! big project, orch's way and the others measured against it.

use std::fmt::Write as _;

use crate::report::count;
use crate::report_details::{ms, row};
use crate::worktrees::Worktrees;

pub(crate) fn summary_rows(o: &mut String, w: &Worktrees) {
    let _ = writeln!(
        o,
        "| {} files, `isolation: task`: a task's worktree made (full checkout), median (worst of {}) | | {} ({}) | | | |",
        count(w.files),
        w.prepare_ms.n(),
        ms(w.prepare_ms.median()),
        ms(w.prepare_ms.p99())
    );
    let _ = writeln!(
        o,
        "| {} files, `isolation: task`: a task's work collected as its commit, median | | {} | | | |",
        count(w.files),
        ms(w.collect_ms.median())
    );
}

pub(crate) fn details(o: &mut String, w: &Worktrees) {
    let _ = writeln!(
        o,
        "## Task worktrees on a project of {files} files (`isolation: task`)\n\n\
         A project like the previous section's ({files} committed files, 100 per directory), a \
         run branch and the run's worktree made as `orch up` makes them (`git worktree add \
         -b orch/<id>`: {run}), then, {reps} times each, one after another, timed from this \
         program (git's start included), warm page cache, {git}. Before each figure, `sync`: \
         what the file system still owes for the files removed before (written back, and on \
         a disk mounted with `discard` trimmed; without it, a figure taken just after 100,000 \
         files were removed came out many times slower here) is not counted in the next one:\n\n\
         - *orch: prepare*: `orch::workspace::task::TaskRepo::prepare`, what a task's launch \
         adds under `isolation: task`: `git worktree add --detach` at the run branch's tip, a \
         full checkout with a checkout worker per core (`checkout.workers=0`);\n\
         - *orch: collect*: the task changed its one owned file and wrote one stray file; \
         `collect` wrote the worktree's content as a tree (from the engine's own copy of the \
         index git wrote with the worktree, so the {files} unchanged files are only stat'ed, \
         by a ctime no agent can set back), compared it with the start, committed the owned \
         file on the run branch and reported the stray;\n\
         - *orch: discard*: `git worktree remove --force`;\n\
         - *serial checkout*: the full checkout with `checkout.workers=1` (git's default, \
         what orch did before);\n\
         - *no checkout*: `git worktree add --no-checkout`, git's bookkeeping alone, no file \
         written: the floor, and no use to a task whose tests need the tree;\n\
         - *sparse*: no checkout, then a sparse checkout of the one directory (100 files) \
         that holds the task's file;\n\
         - *copy*: `cp -a` of the run's checked-out worktree, no git at all;\n\
         - *{wave} at once*: {wave} task worktrees prepared by {wave} threads at once (a wave \
         of independent tasks launching), until the last exists.\n",
        files = count(w.files),
        run = ms(w.run_worktree_ms),
        reps = w.reps,
        git = w.git_version,
        wave = w.wave,
    );
    let _ = writeln!(
        o,
        "| figure | median | p99 | max | n |\n|---|---|---|---|---|"
    );
    row(o, "orch: prepare (full checkout)", &w.prepare_ms, ms);
    row(
        o,
        "orch: collect (one owned file, one stray)",
        &w.collect_ms,
        ms,
    );
    row(o, "orch: discard", &w.discard_ms, ms);
    row(
        o,
        "serial checkout (`checkout.workers=1`)",
        &w.serial_ms,
        ms,
    );
    row(o, "no checkout (floor)", &w.no_checkout_ms, ms);
    row(o, "sparse: the task's directory only", &w.sparse_ms, ms);
    row(o, "copy of the run's worktree (`cp -a`)", &w.copy_ms, ms);
    row(
        o,
        &format!("{} at once, until the last exists", w.wave),
        &w.wave_ms,
        ms,
    );
    let per = w.wave_ms.median() / w.wave.max(1) as f64;
    let full = w.prepare_ms.median();
    // What the figures say, not what one expects them to say.
    let compare = |other: f64, what: &str| {
        let r = other / full;
        if r < 0.9 {
            format!("{what} took {:.0} % of it", r * 100.0)
        } else if r > 1.1 {
            format!("{what} took {:.1} times as long", r)
        } else {
            format!("{what} took as long (within 10 %)")
        }
    };
    let _ = writeln!(
        o,
        "\nOne task worktree takes {:.0} MiB on disk ({} files of a few bytes: one block \
         each). At {} at once: {} per worktree. Against orch's full checkout ({}): {}; {}; \
         only not writing the files is much cheaper (no checkout {}, sparse {}), and a task \
         then has not the tree its build and tests need. A full checkout's cost is writing \
         every file, the kernel's work more than git's, so it follows the file system: what \
         would cut it is a copy-on-write one (`cp --reflink`, an overlay of the run's \
         worktree), which this machine's ext4 is not.\n",
        w.disk_kib as f64 / 1024.0,
        count(w.files),
        w.wave,
        ms(per),
        ms(full),
        compare(w.serial_ms.median(), "a serial checkout"),
        compare(w.copy_ms.median(), "a copy without git"),
        ms(w.no_checkout_ms.median()),
        ms(w.sparse_ms.median()),
    );
}
