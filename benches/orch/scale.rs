//! Scale past the peers (which choke at 60–100 sessions): N agents in one run.
//!
//! - launch: a plan of N independent `silent` tasks with `max_parallel: N` (see `launch`),
//!   a few repetitions: plan accepted → the last agent's START; and the floor under it,
//!   tmux alone starting the same agents without orch (see `launch::floor`).
//! - idle cost: the engine and its control client while the N agents are silent, next to
//!   the same measure at a smaller count, so that "flat in the number of agents" is a ratio
//!   read off one run on one machine.

use std::path::Path;

use crate::idle::{self, Idle, Span};
use crate::launch::{self, Launch};
use crate::stats::Samples;

pub struct Scale {
    pub launch: Launch,
    /// tmux alone starting as many agents, no orch (see `launch::floor`): ms, per repetition.
    pub floor_ms: Samples,
    /// Idle cost at the smaller count, then at N.
    pub idle_small: Idle,
    pub idle: Idle,
}

pub(crate) fn run(
    base: &Path,
    agents: usize,
    small: usize,
    reps: usize,
    span: Span,
) -> anyhow::Result<Scale> {
    eprintln!("bench:   launching {agents} at once");
    let launch = launch::run(base, agents, reps)?;
    eprintln!("bench:   launching {agents} at once with tmux alone");
    let floor_ms = launch::floor(base, agents, reps)?;
    eprintln!("bench:   {small} silent agents");
    let idle_small = idle::orch(base, small, span)?;
    eprintln!("bench:   {agents} silent agents");
    let idle = idle::orch(base, agents, span)?;
    Ok(Scale {
        launch,
        floor_ms,
        idle_small,
        idle,
    })
}

pub(crate) fn details(o: &mut String, s: &Scale) {
    use crate::report_details::{USAGE_HEADER, ms, pct, usage_rows};
    use std::fmt::Write as _;
    let l = &s.launch;
    let per_agent = |i: &Idle| i.orchestrator.total_share / i.agents.max(1) as f64;
    let _ = writeln!(
        o,
        "## {n} agents in one run\n\n\
         *Launch*: a plan of {n} independent `silent` tasks with `max_parallel: {n}`, as in \
         *Launching N tasks at once* below, {reps} times: plan accepted → all started {} \
         median, {} worst; the engine's part (→ the last `task_agent_started`) {} / {}; `orch \
         up` → all started {} / {}.\n\n\
         *The floor under it*: tmux alone, no orch, on a fresh private server, making the {n} \
         windows in one command list, each running the same agent through `sh` (as orch's \
         launcher runs `orch agent-run`), its output in a file: sent → all started {} median, \
         {} worst ({reps} times). What this machine takes to give {n} agents a pane each and \
         start them; orch's own part is the difference, {} at the median.\n\n\
         *Idle cost*: the engine and its control client while {small} and then {n} agents are \
         silent, each measured as in *While N agents work silently* below: {} and {} of a \
         core ({} and {} per agent).\n",
        ms(l.dispatch_ms.median()),
        ms(l.dispatch_ms.p99()),
        ms(l.engine_ms.median()),
        ms(l.engine_ms.p99()),
        ms(l.up_ms.median()),
        ms(l.up_ms.p99()),
        ms(s.floor_ms.median()),
        ms(s.floor_ms.p99()),
        ms(l.dispatch_ms.median() - s.floor_ms.median()),
        pct(s.idle_small.orchestrator.total_share),
        pct(s.idle.orchestrator.total_share),
        pct(per_agent(&s.idle_small)),
        pct(per_agent(&s.idle)),
        n = s.idle.agents,
        reps = l.dispatch_ms.n(),
        small = s.idle_small.agents,
    );
    let _ = writeln!(o, "{USAGE_HEADER}");
    for i in [&s.idle_small, &s.idle] {
        usage_rows(
            o,
            &format!("orch engine + control client, {} agents", i.agents),
            &i.orchestrator,
        );
        usage_rows(o, &format!("tmux server, {} agents", i.agents), &i.server);
    }
    let _ = writeln!(o);
}
