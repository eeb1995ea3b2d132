//! BENCHMARKS.md: the machine and how loaded it was, orch's version, a summary against the
//! targets with orch's figures as ratios to the baseline's, then each figure with its
//! median, p99 and number of samples, and what exactly it measures.

use std::fmt::Write as _;

use crate::Results;

/// What issue 13's changes bought, measured before and after each (see the file).
const CHANGES: &str = include_str!("changes.md");

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// 100000 as "100,000".
pub(crate) fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn pct(share: f64) -> String {
    format!("{:.2} %", share * 100.0)
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

fn ratio(orch: f64, baseline: f64) -> String {
    if orch == 0.0 {
        "0 (nothing measurable)".into()
    } else if baseline > 0.0 && orch.is_finite() {
        let r = orch / baseline;
        if r < 0.1 {
            format!("{r:.4} (1/{:.0})", 1.0 / r)
        } else {
            format!("{r:.2}")
        }
    } else {
        "–".into()
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

pub(crate) fn render(r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Benchmarks\n");
    if r.quick {
        let _ = writeln!(
            o,
            "> **Quick mode**: tiny sizes, only to prove the benchmark runs. These are not the \
             figures; run `scripts/bench` for those.\n"
        );
    }
    let _ = writeln!(
        o,
        "Written by `scripts/bench` ({}). Every figure comes from one run of it; re-run it to \
         check them. Timestamps are all CLOCK_REALTIME (the agents' `$EPOCHREALTIME`, the \
         journal's `t`, the benchmark's own), so they compare directly. Medians and p99 are \
         nearest-rank: each is a value actually measured.\n",
        r.date
    );
    let _ = writeln!(o, "- **Machine**: {}", r.machine);
    let _ = writeln!(o, "- **orch**: {} (release build), {}", r.version, r.tmux);
    // Creating files costs very different amounts from one file system to another (see
    // "What issue 13's changes bought"): where the projects lay is part of every figure.
    let _ = writeln!(
        o,
        "- **Projects in**: `{}` (`TMPDIR`)",
        std::env::temp_dir().display()
    );
    let busy: Vec<String> = r
        .busy
        .iter()
        .map(|(name, share)| format!("{name} {:.0} %", share * 100.0))
        .collect();
    let _ = writeln!(
        o,
        "- **Load**: 1-minute load average {:.2} when the benchmark started, {:.2} when it \
         ended, {:.2} at most between parts. Share of both cores busy during each part \
         (every process: the benchmark, its agents, anything else running): {}.\n",
        r.load_start,
        r.load_end,
        r.load_max,
        busy.join(", ")
    );
    summary(&mut o, r);
    // Not measured by this run: what earlier changes bought, measured back to back when they
    // were made (kept here so that a re-run does not lose it).
    o.push_str(CHANGES);
    crate::report_details::details(&mut o, r);
    o
}

fn summary(o: &mut String, r: &Results) {
    let _ = writeln!(o, "## Summary\n");
    let _ = writeln!(
        o,
        "| figure | target | orch | polling baseline | orch ÷ baseline | |\n|---|---|---|---|---|---|"
    );
    if let Some(l) = &r.latency {
        let b = r
            .baseline_exit
            .as_ref()
            .map(|(s, _)| s.clone())
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "| agent exit → journal, median | < 5 ms | {} | {} | {} | {} |",
            ms(l.exit_ms.median()),
            ms(b.median()),
            ratio(l.exit_ms.median(), b.median()),
            met(l.exit_ms.median() < 5.0)
        );
        let _ = writeln!(
            o,
            "| agent exit → journal, p99 (n) | < 20 ms, n ≥ 200 | {} ({}) | {} ({}) | {} | {} |",
            ms(l.exit_ms.p99()),
            l.exit_ms.n(),
            ms(b.p99()),
            b.n(),
            ratio(l.exit_ms.p99(), b.p99()),
            met(l.exit_ms.p99() < 20.0 && l.exit_ms.n() >= 200)
        );
        let _ = writeln!(
            o,
            "| write outside a task's files → violation, p99 (n) | < 20 ms | {} ({}) | not detected | | {} |",
            ms(l.violation_ms.p99()),
            l.violation_ms.n(),
            met(l.violation_ms.p99() < 20.0)
        );
    }
    if let Some(l) = &r.busy_run {
        busy_rows(o, l);
    }
    if let Some(s) = &r.scale {
        scale_rows(o, s);
    }
    for launch in &r.launches {
        let target = if launch.n == 64 { "< 1 s" } else { "" };
        let verdict = if launch.n == 64 {
            met(launch.dispatch_ms.p99() < 1000.0)
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "| launch {} at once → all started, median (worst of {}) | {target} | {} ({}) | | | {verdict} |",
            launch.n,
            launch.dispatch_ms.n(),
            ms(launch.dispatch_ms.median()),
            ms(launch.dispatch_ms.p99())
        );
    }
    if let Some(i) = &r.idle {
        let b = r.idle_baseline.as_ref();
        let bo = b.map_or(f64::NAN, |b| b.orchestrator.total_share);
        let both = |x: &crate::idle::Idle| x.orchestrator.total_share + x.server.total_share;
        let _ = writeln!(
            o,
            "| {} silent agents: orchestrator CPU | < 1 % of a core | {} | {} | {} | {} |",
            i.agents,
            pct(i.orchestrator.total_share),
            b.map_or("–".into(), |_| pct(bo)),
            ratio(i.orchestrator.total_share, bo),
            met(i.orchestrator.total_share < 0.01)
        );
        let _ = writeln!(
            o,
            "| {} silent agents: orchestrator + tmux server CPU | | {} | {} | {} | |",
            i.agents,
            pct(both(i)),
            b.map_or("–".into(), |b| pct(both(b))),
            b.map_or("–".into(), |b| ratio(both(i), both(b)))
        );
        let _ = writeln!(
            o,
            "| {} silent agents: orchestrator memory (VmHWM) | < 50 MB | {} | {} | {} | {} |",
            i.agents,
            mib(i.orchestrator.hwm_kib as f64),
            b.map_or("–".into(), |b| mib(b.orchestrator.hwm_kib as f64)),
            b.map_or("–".into(), |b| ratio(
                i.orchestrator.hwm_kib as f64,
                b.orchestrator.hwm_kib as f64
            )),
            met((i.orchestrator.hwm_kib as f64) * 1024.0 < 50e6)
        );
    }
    if let Some(t) = &r.tree {
        let _ = writeln!(
            o,
            "| {} files: watcher set-up, median (worst of {}) | < 3 s | {} ({}) | | | {} |",
            count(t.files),
            t.setup_ms.n(),
            ms(t.setup_ms.median()),
            ms(t.setup_ms.p99()),
            met(t.setup_ms.p99() < 3000.0)
        );
        let _ = writeln!(
            o,
            "| {} files: engine memory (VmHWM) / idle CPU | ~0 CPU | {} / {} | | | {} |",
            count(t.files),
            mib(t.engine.hwm_kib as f64),
            pct(t.engine.total_share),
            met(t.engine.total_share < 0.01)
        );
    }
    if let Some(w) = &r.worktrees {
        crate::report_worktrees::summary_rows(o, w);
    }
    let _ = writeln!(
        o,
        "\nTargets are issue 7's, but the busy scenario's and the scale rows' (issue 13's). \
         *orch ÷ baseline* below 1 means orch does better; the \
         baseline is a claude-squad-style screen poller run on the same agents (details \
         below). A target is *met* when the figure it names is within it in this run.\n"
    );
}

/// The busy scenario against issue 13's targets, which are by the journal's `t`.
fn busy_rows(o: &mut String, l: &crate::latency::Latency) {
    let _ = writeln!(
        o,
        "| busy: agent exit → journal `t`, median | < 3 ms | {} | | | {} |",
        ms(l.exit_t_ms.median()),
        met(l.exit_t_ms.median() < 3.0)
    );
    let _ = writeln!(
        o,
        "| busy: agent exit → journal `t`, p99 (n) | < 10 ms | {} ({}) | | | {} |",
        ms(l.exit_t_ms.p99()),
        l.exit_t_ms.n(),
        met(l.exit_t_ms.p99() < 10.0)
    );
    let _ = writeln!(
        o,
        "| busy: stray write → violation `t`, p99 (n) | < 10 ms | {} ({}) | | | {} |",
        ms(l.violation_t_ms.p99()),
        l.violation_t_ms.n(),
        met(l.violation_t_ms.p99() < 10.0)
    );
}

/// How much more of a core N silent agents cost than the smaller count may, and still be
/// called flat: 3 clock ticks over a minute, what one measure of it varies by.
pub(crate) const FLAT_SLACK: f64 = 0.0005;

fn scale_rows(o: &mut String, s: &crate::scale::Scale) {
    let l = &s.launch;
    let _ = writeln!(
        o,
        "| launch {} at once → all started, median (worst of {}) | < 1 s | {} ({}) | | | {} |",
        l.n,
        l.dispatch_ms.n(),
        ms(l.dispatch_ms.median()),
        ms(l.dispatch_ms.p99()),
        met(l.dispatch_ms.p99() < 1000.0)
    );
    let _ = writeln!(
        o,
        "| … tmux alone starting the same {} agents, no orch (the floor), median (worst) | | {} \
         ({}) | | | |",
        l.n,
        ms(s.floor_ms.median()),
        ms(s.floor_ms.p99()),
    );
    let (small, big) = (
        s.idle_small.orchestrator.total_share,
        s.idle.orchestrator.total_share,
    );
    let _ = writeln!(
        o,
        "| silent agents: orchestrator CPU at {} / at {} | flat | {} / {} | | | {} |",
        s.idle_small.agents,
        s.idle.agents,
        pct(small),
        pct(big),
        met(big <= small + FLAT_SLACK)
    );
}
