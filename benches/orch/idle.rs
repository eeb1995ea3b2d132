//! What watching costs while agents work: N `silent` agents (started, then quiet: no output,
//! no file writes) for a while, once under orch and once under the polling baseline.
//!
//! Measured from /proc once all N agents have started and a settling pause has passed:
//! - the orchestrator: orch's engine process and its tmux control-mode client, or the
//!   baseline's poller process; CPU is their own (all threads) plus that of the children
//!   they reaped (the baseline's `capture-pane` processes), as a share of one core;
//! - the tmux server, which does the other half of every tmux command (its own CPU only:
//!   nothing it reaps exits while agents are silent);
//! - the orchestrator's resident memory (largest VmRSS seen, and VmHWM), summed likewise.

use std::path::Path;
use std::time::Duration;

use crate::baseline::Baseline;
use crate::procstat::{Usage, watch_usage};
use crate::project::{Fixture, Run, server_pid, wait_stamps};

pub struct Idle {
    pub agents: usize,
    pub orchestrator: Usage,
    pub server: Usage,
}

/// How the sampling goes: `windows` windows of `every`, after `settle`.
#[derive(Clone, Copy)]
pub(crate) struct Span {
    pub settle: Duration,
    pub every: Duration,
    pub windows: usize,
}

pub(crate) fn orch(base: &Path, agents: usize, span: Span) -> anyhow::Result<Idle> {
    let fixture = Fixture::new(base, "idle", "silent", agents, |_| Ok(()))?.keep_until_the_end();
    let run = Run::up(&fixture, agents)?;
    run.wait_started(agents, Duration::from_secs(60))?;
    std::thread::sleep(span.settle);
    let engine = run.engine_pid()?;
    let server = server_pid(&run.socket)?;
    let (orchestrator, server) = sample_both(engine, server, span)?;
    run.down()?;
    Ok(Idle {
        agents,
        orchestrator,
        server,
    })
}

pub(crate) fn baseline(base: &Path, agents: usize, span: Span) -> anyhow::Result<Idle> {
    let fixture =
        Fixture::new(base, "idle-baseline", "silent", agents, |_| Ok(()))?.keep_until_the_end();
    let baseline = Baseline::start(&fixture, "silent", agents, agents)?;
    let logs: Vec<_> = baseline
        .agents
        .iter()
        .map(|d| d.join("output.log"))
        .collect();
    wait_stamps(&logs, "START", Duration::from_secs(60))?;
    std::thread::sleep(span.settle);
    let poller = baseline.poller.0.id();
    let server = server_pid(&baseline.socket)?;
    let (orchestrator, server) = sample_both(poller, server, span)?;
    drop(baseline);
    Ok(Idle {
        agents,
        orchestrator,
        server,
    })
}

/// Samples the orchestrator and the tmux server over the same span.
pub(crate) fn sample_both(
    orchestrator: u32,
    server: u32,
    span: Span,
) -> anyhow::Result<(Usage, Usage)> {
    std::thread::scope(|scope| {
        let server = scope.spawn(move || watch_usage(server, false, span.every, span.windows));
        let orchestrator = watch_usage(orchestrator, true, span.every, span.windows);
        let server = server.join().ok().flatten();
        match (orchestrator, server) {
            (Some(o), Some(s)) => Ok((o, s)),
            _ => anyhow::bail!("a measured process went away while it was measured"),
        }
    })
}
