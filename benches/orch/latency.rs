//! How fast orch notices: one run of many `work` agents, a few at a time, each of which
//! writes a file it does not own and then exits.
//!
//! - exit: from the agent's EXIT stamp (its last act before exiting) to the moment the
//!   engine's `task_exited` line became readable in the journal. Between the two: the
//!   agent's process ends, `orch agent-run` reaps it, drains its output and writes
//!   `exit.json`, the directory watcher reports it, the engine reads it and journals.
//! - violation: from the STRAY stamp (taken just before the agent opens the stray file) to
//!   the `violation` line for that file.
//!
//! Exits and violations interleave with launches of the next tasks, as in a real run. The
//! light scenario's agents (`work`) sleep 50–299 ms twice; the busy one's (`busy`) 10–90 ms,
//! so that exits, violations, judge rounds and launches crowd the engine's loop.

use std::path::Path;
use std::time::Duration;

use crate::project::{Fixture, Run, stamp};
use crate::stats::Samples;

pub struct Latency {
    /// The agents' mode: `work` (the light scenario) or `busy` (shorter sleeps).
    pub mode: &'static str,
    pub tasks: usize,
    pub parallel: usize,
    /// Milliseconds, by the journal's readable line.
    pub exit_ms: Samples,
    /// Milliseconds, by the journal's own `t` (ms, taken just before the write).
    pub exit_t_ms: Samples,
    /// The exit's two halves, by `exit.json`'s `ended_at_ms` (ms, truncated): the agent's
    /// EXIT stamp → `orch agent-run` knows of its end (the agent's end, through its box), and
    /// → the journal's `t` (the record written, seen, read and journaled).
    pub reaped_ms: Samples,
    pub after_reap_ms: Samples,
    pub violation_ms: Samples,
    pub violation_t_ms: Samples,
    /// Samples that could not be taken (a line already there when the tail started, or
    /// a stamp missing), with why.
    pub dropped: Vec<String>,
    pub outcome: String,
    pub wall_s: f64,
}

pub(crate) fn run(
    base: &Path,
    mode: &'static str,
    tasks: usize,
    parallel: usize,
) -> anyhow::Result<Latency> {
    let fixture = Fixture::new(base, mode, mode, parallel, |_| Ok(()))?.keep_until_the_end();
    let run = Run::up(&fixture, tasks)?;
    // Each task takes 0.1–0.6 s; allow for a slow machine.
    let timeout = Duration::from_secs(60 + (tasks / parallel.max(1)) as u64 * 3);
    run.tail.wait_for("the run to finish", timeout, |entries| {
        entries.iter().any(|e| e.event() == "run_finished")
    })?;
    let entries = run.tail.entries();
    let mut result = Latency {
        mode,
        tasks,
        parallel,
        exit_ms: Samples::default(),
        exit_t_ms: Samples::default(),
        reaped_ms: Samples::default(),
        after_reap_ms: Samples::default(),
        violation_ms: Samples::default(),
        violation_t_ms: Samples::default(),
        dropped: Vec::new(),
        outcome: run
            .entry("run_finished", None)
            .and_then(|e| e.record["outcome"].as_str().map(str::to_string))
            .unwrap_or_default(),
        wall_s: entries.last().map_or(0.0, |e| e.seen_s) - run.up_at_s,
    };
    let (mut exit, mut exit_t, mut viol, mut viol_t) = (vec![], vec![], vec![], vec![]);
    let (mut reaped, mut after_reap) = (vec![], vec![]);
    for task in 1..=tasks {
        let log = run.output_log(task);
        let exited = entries
            .iter()
            .find(|e| e.event() == "task_exited" && e.task() == task.to_string());
        match (stamp(&log, "EXIT"), exited) {
            (Some(at), Some(e)) if e.fresh => {
                if let Some(ended) = ended_at_s(&log.with_file_name("exit.json")) {
                    reaped.push((ended - at) * 1000.0);
                    after_reap.push((e.t_s() - ended) * 1000.0);
                }
                exit.push((e.seen_s - at) * 1000.0);
                exit_t.push((e.t_s() - at) * 1000.0);
            }
            (at, e) => result.dropped.push(format!(
                "task {task} exit: stamp {at:?}, journal entry {}",
                e.map_or("missing", |e| if e.fresh { "ok" } else { "not fresh" })
            )),
        }
        let path = format!("stray/{task}.txt");
        let violation = entries
            .iter()
            .find(|e| e.event() == "violation" && e.record["path"] == path.as_str());
        match (stamp(&log, "STRAY"), violation) {
            (Some(at), Some(e)) if e.fresh => {
                viol.push((e.seen_s - at) * 1000.0);
                viol_t.push((e.t_s() - at) * 1000.0);
            }
            (at, e) => result.dropped.push(format!(
                "task {task} violation: stamp {at:?}, journal entry {}",
                e.map_or("missing", |e| if e.fresh { "ok" } else { "not fresh" })
            )),
        }
    }
    result.exit_ms = Samples::new(exit);
    result.exit_t_ms = Samples::new(exit_t);
    result.violation_ms = Samples::new(viol);
    result.violation_t_ms = Samples::new(viol_t);
    result.reaped_ms = Samples::new(reaped);
    result.after_reap_ms = Samples::new(after_reap);
    run.down()?;
    Ok(result)
}

/// When `orch agent-run` saw the agent end, from its exit record (seconds).
fn ended_at_s(exit_file: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(exit_file).ok()?;
    let record: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(record["ended_at_ms"].as_f64()? / 1000.0)
}
