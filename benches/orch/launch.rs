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
use std::time::Duration;

use crate::project::{Fixture, Run};
use crate::stats::Samples;

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
