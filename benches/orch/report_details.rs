//! The detailed half of BENCHMARKS.md: each figure with its median, p99 and number of
//! samples, how it was set up, and exactly which two moments it lies between.

use std::fmt::Write as _;

use crate::Results;
use crate::procstat::Usage;
use crate::report::count;
use crate::stats::Samples;

pub(crate) fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.2} ms")
    }
}

pub(crate) fn pct(share: f64) -> String {
    format!("{:.3} %", share * 100.0)
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

pub(crate) fn row(o: &mut String, name: &str, s: &Samples, fmt: fn(f64) -> String) {
    let _ = writeln!(
        o,
        "| {name} | {} | {} | {} | {} |",
        fmt(s.median()),
        fmt(s.p99()),
        fmt(s.max()),
        s.n()
    );
}

pub(crate) fn usage_rows(o: &mut String, name: &str, u: &Usage) {
    let w = Samples::new(u.windows.clone());
    let name = if u.processes > 1 {
        format!("{name} ({} processes)", u.processes)
    } else {
        name.to_string()
    };
    let _ = writeln!(
        o,
        "| {name} | {} (own {}, reaped children {}) | {} / {} | {} | {} / {} |",
        pct(u.total_share),
        pct(u.own_share),
        pct(u.children_share),
        pct(w.median()),
        pct(w.p99()),
        w.n(),
        mib(u.max_rss_kib as f64),
        mib(u.hwm_kib as f64)
    );
}

pub(crate) const USAGE_HEADER: &str = "| process | CPU over the span, share of one core | per window: median / p99 | windows | RSS max seen / VmHWM |\n|---|---|---|---|---|";

pub(crate) fn details(o: &mut String, r: &Results) {
    for l in r.latency.iter().chain(r.busy_run.iter()) {
        let busy = l.mode == "busy";
        let _ = writeln!(
            o,
            "## {}\n\n\
             One run of {} tasks, {} at a time (`max_parallel: {}`), each a `kind: command` \
             agent (a bash script, see `benches/orch/project.rs`) that writes its own file, \
             sleeps {}, writes `stray/<task>.txt` (which it does not own), sleeps \
             {} again and exits 0. Each task is checked and judged (the same script answers \
             as the judge: pass) as in a real run, so exits, violations, gate checks, judge \
             rounds and the launches of the next tasks interleave; the run {} in {:.1} s{}.\n\n\
             - *exit*: from the agent's `EXIT` stamp (`$EPOCHREALTIME`, its last act) to the \
             moment the engine's `task_exited` line could be read from `events.jsonl` (an \
             inotify watch on the file, stamped after the read, so never early). In between: \
             the agent process ends, `orch agent-run` reaps it, drains its output, writes \
             `exit.json` (fsync, rename), the directory watcher reports it, the engine reads \
             it and journals (write, fsync).\n\
             - *violation*: from the `STRAY` stamp, taken just before the agent opens the \
             stray file, to the `violation` line for it.\n\
             - *by `t`*: the same, to the journal's own `t` (ms, truncated, taken just before \
             the engine writes the line): a cross-check{}.\n\
             - *of which*: the exit by `t` cut in two at `exit.json`'s `ended_at_ms` (ms, \
             truncated, when `orch agent-run` learned that the agent ended: its box's init \
             said so, or, in a bwrap of the agent's own, its wait returned): the agent's end \
             through its box and its launcher, then the engine's part.\n",
            if busy {
                "The busy scenario: exits and violations while the engine's loop is crowded"
            } else {
                "Agent exit and ownership violations → the journal"
            },
            l.tasks,
            l.parallel,
            l.parallel,
            if busy { "10–90 ms" } else { "50–299 ms" },
            if busy { "10–90 ms" } else { "50–299 ms" },
            l.outcome,
            l.wall_s,
            if l.outcome == "failed" {
                " (by design: its agents wrote files they do not own, which fails the run's \
                 ownership gate)"
            } else {
                ""
            },
            if busy {
                "; issue 13's targets are by `t`, as its probe measured"
            } else {
                ""
            }
        );
        let _ = writeln!(
            o,
            "| figure | median | p99 | max | n |\n|---|---|---|---|---|"
        );
        row(o, "exit → journal line readable", &l.exit_ms, ms);
        row(o, "exit → journal `t`", &l.exit_t_ms, ms);
        row(
            o,
            "… of which exit → `orch agent-run` knew it (`ended_at_ms`)",
            &l.reaped_ms,
            ms,
        );
        row(
            o,
            "… and knew it → journal `t` (`exit.json` written, seen, read, journaled)",
            &l.after_reap_ms,
            ms,
        );
        row(
            o,
            "stray write → violation line readable",
            &l.violation_ms,
            ms,
        );
        row(o, "stray write → violation `t`", &l.violation_t_ms, ms);
        if let Some((b, dropped)) = r.baseline_exit.as_ref().filter(|_| !busy) {
            row(o, "**baseline**: exit → poller notices", b, ms);
            if !dropped.is_empty() {
                let _ = writeln!(o, "\nBaseline samples not taken: {}", dropped.join("; "));
            }
        }
        if !l.dropped.is_empty() {
            let _ = writeln!(o, "\norch samples not taken: {}", l.dropped.join("; "));
        }
        if busy {
            let _ = writeln!(o);
            continue;
        }
        let _ = writeln!(
            o,
            "\nThe **baseline** ran the same {} agents, {} at a time, launched the way orch \
             launches them (orch's launcher and `orch agent-run`, so the panes show the same \
             thing), and learned of each exit as claude-squad does: every 500 ms, one `tmux \
             capture-pane` process per running agent and a hash of the screen; a changed \
             screen showing agent-run's last line (`==> the agent exited ...`) is an exit, \
             recorded at once. That is kinder than claude-squad (no `git diff` per agent, no \
             wait for an unchanged screen). It has no notion of ownership, so it detects no \
             violation.\n",
            l.tasks, l.parallel
        );
    }
    if !r.launches.is_empty() {
        let _ = writeln!(
            o,
            "## Launching N tasks at once\n\n\
             A plan of N independent tasks with `max_parallel: N`, in a fresh project on a \
             fresh tmux server each time; each agent stamps `START` as its first act. \
             *plan accepted → all started*: from the journal's `plan_accepted` (`t`; the \
             engine has the plan and launches nothing before it) to the last agent's START. \
             *engine's part*: `plan_accepted` → the last `task_agent_started` (both `t`). \
             *`orch up` → all started*: from when the benchmark ran `orch up` (creating the \
             run, the tmux session, the engine, its snapshot and watchers) to the last START. \
             With a handful of repetitions, p99 is the worst one.\n"
        );
        let _ = writeln!(
            o,
            "| N | plan accepted → all started: median / p99 | engine's part: median / p99 | `orch up` → all started: median / p99 | repetitions |\n|---|---|---|---|---|"
        );
        for l in &r.launches {
            let _ = writeln!(
                o,
                "| {} | {} / {} | {} / {} | {} / {} | {} |",
                l.n,
                ms(l.dispatch_ms.median()),
                ms(l.dispatch_ms.p99()),
                ms(l.engine_ms.median()),
                ms(l.engine_ms.p99()),
                ms(l.up_ms.median()),
                ms(l.up_ms.p99()),
                l.dispatch_ms.n()
            );
        }
        let _ = writeln!(o);
    }
    if let Some(s) = &r.scale {
        crate::scale::details(o, s);
    }
    if let Some(i) = &r.idle {
        let _ = writeln!(
            o,
            "## While {} agents work silently\n\n\
             {} `silent` agents (started, own file written, then no output and no file \
             activity), measured from /proc over {:.0} s once all had started and {:.1} s had \
             passed. orch's cost is its engine process and the tmux control-mode client it \
             keeps (together); the baseline's is its poller process. CPU is their own (all \
             threads) plus that of the children they reaped in the span (the baseline's \
             `capture-pane` processes; orch runs none, its tmux commands go through its \
             client); the tmux server's is its own, since it does the other half of every \
             tmux command. Memory is summed over the processes measured together. The \
             baseline polls the same number of the same agents.\n",
            i.agents, i.agents, i.orchestrator.span_s, r.idle_settle_s
        );
        let _ = writeln!(o, "{USAGE_HEADER}");
        usage_rows(o, "orch engine + control client", &i.orchestrator);
        usage_rows(o, "tmux server (orch)", &i.server);
        if let Some(b) = &r.idle_baseline {
            usage_rows(o, "**baseline** poller", &b.orchestrator);
            usage_rows(o, "tmux server (baseline)", &b.server);
        }
        let _ = writeln!(o);
    }
    if let Some(t) = &r.tree {
        let _ = writeln!(
            o,
            "## A project of {} files\n\n\
             {} committed files, 100 per directory ({} directories watched), plus {} files in \
             an ignored `target/` (in `.gitignore`), which is neither walked nor watched. \
             *Set-up*: `Ignore::new` + `TreeWatcher::start` timed in a fresh process of its \
             own (walk, one inotify watch per directory, the set of known files); warm page \
             cache. *Memory*: the resident memory that set-up added to that process. Kernel \
             memory for the inotify watches (about 1 KiB each) is not in any RSS.\n",
            count(t.files),
            count(t.files),
            t.dirs_watched,
            count(t.ignored_files)
        );
        let _ = writeln!(
            o,
            "| figure | median | p99 | max | n |\n|---|---|---|---|---|"
        );
        row(o, "watcher set-up", &t.setup_ms, ms);
        row(o, "resident memory it added", &t.watcher_kib, mib);
        row(
            o,
            "`git diff --stat` once (claude-squad: per agent per loop)",
            &t.git_diff_ms,
            ms,
        );
        let _ = writeln!(
            o,
            "\nThe watcher alone, idle for {:.0} s after set-up: {} of a core. The whole engine \
             on this project with one silent agent (`run_started` → `engine_started`, which \
             includes the watcher's set-up: {}; → `snapshot_taken`: {} more):\n",
            t.probe_idle_s,
            pct(t.probe_idle_share),
            ms(t.engine_start_ms),
            ms(t.snapshot_ms)
        );
        let _ = writeln!(o, "{USAGE_HEADER}");
        usage_rows(o, "orch engine + control client", &t.engine);
        usage_rows(o, "tmux server", &t.server);
        let _ = writeln!(o);
    }
    if let Some(w) = &r.worktrees {
        crate::report_worktrees::details(o, w);
    }
    let _ = writeln!(
        o,
        "## Running it\n\n`scripts/bench` (about {} here; `--quick` for a tiny run that \
         only proves it works, `--out FILE` to write elsewhere). It builds orch in release \
         mode and runs everything on private tmux servers (`tmux -L orch-bench-…`) in \
         temporary projects, all removed at the end, or on Ctrl-C.",
        r.duration
    );
}
