//! The engine's loop. Everything that can happen to a run becomes one [`Input`] (a stop, a
//! run file, a change in the project, gate results, tmux's answer to a launch, the clock, work
//! the engine left itself), and [`Engine::handle`] applies it. Which input goes next is the
//! [`Chooser`]'s call alone: a priority order, and a fair turn for the rest when agents'
//! events never let up. So the engine can be driven input by input, as its unit tests do.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::core::{Engine, GateDone};
use super::launch::Launched;
use crate::state::{Outcome, Phase};
use crate::watch::FsChange;

/// How often tmux is asked which panes are alive, besides the pane-died hook: tmux's own exit
/// report is not always reliable.
///
/// A safety net, so rare: exits come as exit records and dead panes through the pane-died
/// hook, and a listing costs in proportion to the panes (at 256 agents, every 2 s, it had the
/// idle engine use 4 times what it uses at 64: see BENCHMARKS.md).
pub(super) const RECONCILE_EVERY: Duration = Duration::from_secs(10);
/// What a missed end costs while the listing is the only way to hear of it, for warnings.
pub(super) fn found_by_the_listing() -> String {
    format!(
        "found by the check of the panes every {} s",
        RECONCILE_EVERY.as_secs()
    )
}
/// How soon the next listing comes while a pane is gone without its exit record, so that its
/// loss is settled soon after the grace it gets (see interrupted.rs).
const RECONCILE_PENDING: Duration = Duration::from_secs(2);
/// How often the control window's table is redrawn and timeouts are checked.
const TICK_EVERY: Duration = Duration::from_secs(1);
/// The loop's select is biased toward agents' events (see `run`), so an agent that writes
/// without pause would starve the rest: after this many agents' events in a row, the rest
/// get a turn (see `Chooser`). High enough that it never comes between a burst of exits.
pub(super) const FAIR_AFTER: u32 = 64;

/// A request to stop from outside the run: the OS's signals in the control window, a test's
/// requests in unit tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// Ctrl-C: agents stopped, the run interrupted.
    Interrupt,
    /// SIGTERM (`orch down`, a shutdown): the same.
    Terminate,
    /// SIGHUP: the window closed or tmux died; the engine leaves the agents running.
    Hangup,
}

/// What feeds the loop, besides the clock.
pub(super) struct Inputs {
    /// Changes in the project tree (ownership).
    pub fs: UnboundedReceiver<FsChange>,
    /// Changes in the task worktrees, with their task (`isolation: task`).
    pub task_fs: UnboundedReceiver<(crate::plan::TaskId, FsChange)>,
    /// Files appearing in the run directory: exit records, logs, pane-died markers.
    pub run_files: UnboundedReceiver<PathBuf>,
    /// Gate results from the tasks that ran them.
    pub gates: UnboundedReceiver<GateDone>,
    pub stops: UnboundedReceiver<Stop>,
}

/// Ctrl-C, SIGTERM and SIGHUP, as stop requests. Registered now, so that a signal that
/// comes before the loop starts is not lost.
pub(super) fn os_stops() -> anyhow::Result<UnboundedReceiver<Stop>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        loop {
            let stop = tokio::select! {
                _ = sigint.recv() => Stop::Interrupt,
                _ = sigterm.recv() => Stop::Terminate,
                _ = sighup.recv() => Stop::Hangup,
            };
            if tx.send(stop).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// One thing for the engine to handle.
#[derive(Debug)]
pub(super) enum Input {
    /// A request to stop from outside.
    Stop(Stop),
    /// A file changed under the run directory: an exit record, a log, a pane-died marker.
    RunFile(PathBuf),
    /// A change in the project tree (or a barrier, or the watcher's own trouble).
    Fs(FsChange),
    /// A change in a task's own worktree (`isolation: task`).
    TaskFs(crate::plan::TaskId, FsChange),
    /// A task's or the run's gates finished.
    GatesDone(GateDone),
    /// Tmux answered a launch (see launch.rs).
    Launched(Launched),
    /// An accepted task's commit was made, or could not be (see committer.rs).
    Committed(super::committer::Done),
    /// The clock: the record kept, timeouts checked, the table redrawn.
    Tick,
    /// Time to ask tmux which panes are alive.
    Reconcile,
    /// Ended attempts wait to have their leftovers looked for (see leftovers.rs).
    LeftoversDue,
    /// Tasks or the judge wait to be launched: one launch.
    LaunchStep,
}

impl Input {
    /// Whether the input is an agent's doing (what the latency figures measure), which the
    /// chooser serves first.
    fn is_agents_doing(&self) -> bool {
        matches!(self, Input::RunFile(_) | Input::Fs(_) | Input::TaskFs(..))
    }
}

/// Chooses the next input: a stop first, then what agents did (exit records, file changes:
/// their journal entries are what the latency figures measure), then work that can wait a few
/// milliseconds (tmux's answers, gate results, redraws, listings, leftovers), and launches
/// last, one per turn, when nothing else is waiting, so that an exit or a write that arrives
/// meanwhile never waits for a batch of them. After FAIR_AFTER agents' events in a row, the
/// rest get a turn first.
pub(super) struct Chooser {
    inputs: Inputs,
    tick: tokio::time::Interval,
    reconcile: tokio::time::Interval,
    /// Agents' events chosen in a row.
    streak: u32,
    /// Whether the next listing was brought forward for a pane gone without its exit record.
    listing_soon: bool,
}

impl Chooser {
    pub(super) fn new(inputs: Inputs) -> Chooser {
        let mut tick = tokio::time::interval(TICK_EVERY);
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
        // After a long turn or a flood, one redraw and one listing, not a burst of them.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Chooser {
            inputs,
            tick,
            reconcile,
            streak: 0,
            listing_soon: false,
        }
    }

    /// After `engine` handled `input`: while a pane is gone without its exit record, the
    /// panes are listed every RECONCILE_PENDING rather than every RECONCILE_EVERY.
    pub(super) fn handled(&mut self, engine: &Engine, input_was_listing: bool) {
        let gone = engine.agents.any_gone();
        if gone && (!self.listing_soon || input_was_listing) {
            self.reconcile.reset_after(RECONCILE_PENDING);
        }
        self.listing_soon = gone;
    }

    /// The next input for `engine`.
    pub(super) async fn next(&mut self, engine: &mut Engine) -> Input {
        if self.streak >= FAIR_AFTER {
            self.streak = 0;
            if let Some(input) = self.starved(engine) {
                return input;
            }
        }
        let input = self.by_priority(engine).await;
        if input.is_agents_doing() {
            self.streak += 1;
        } else {
            self.streak = 0;
        }
        input
    }

    async fn by_priority(&mut self, engine: &mut Engine) -> Input {
        let leftovers = engine.leftovers_due();
        let launch = engine.launch_wanted();
        let Inputs {
            fs,
            task_fs,
            run_files,
            gates,
            stops,
        } = &mut self.inputs;
        tokio::select! {
            biased;
            Some(stop) = stops.recv() => Input::Stop(stop),
            Some(path) = run_files.recv() => Input::RunFile(path),
            Some(change) = fs.recv() => Input::Fs(change),
            Some((task, change)) = task_fs.recv() => Input::TaskFs(task, change),
            Some(launched) = engine.launcher.answer() => Input::Launched(launched),
            Some(done) = engine.commits.result() => Input::Committed(done),
            Some(done) = gates.recv() => Input::GatesDone(done),
            _ = self.tick.tick() => Input::Tick,
            _ = self.reconcile.tick() => Input::Reconcile,
            () = std::future::ready(()), if leftovers => Input::LeftoversDue,
            () = std::future::ready(()), if launch => Input::LaunchStep,
        }
    }

    /// The fair turn: the first of what the biased order puts after agents' events, and else
    /// a change in the project (which run files, say a chatty agent's log, come before).
    fn starved(&mut self, engine: &mut Engine) -> Option<Input> {
        use std::task::{Context, Waker};
        // Asking an interval without waiting: the select polls it again with its own waker.
        let mut cx = Context::from_waker(Waker::noop());
        if let Some(launched) = engine.launcher.try_answer() {
            return Some(Input::Launched(launched));
        }
        if let Ok(done) = self.inputs.gates.try_recv() {
            return Some(Input::GatesDone(done));
        }
        if let Some(done) = engine.commits.try_result() {
            return Some(Input::Committed(done));
        }
        if self.tick.poll_tick(&mut cx).is_ready() {
            return Some(Input::Tick);
        }
        if self.reconcile.poll_tick(&mut cx).is_ready() {
            return Some(Input::Reconcile);
        }
        if engine.leftovers_due() {
            return Some(Input::LeftoversDue);
        }
        if engine.launch_wanted() {
            return Some(Input::LaunchStep);
        }
        if let Ok(change) = self.inputs.fs.try_recv() {
            return Some(Input::Fs(change));
        }
        self.inputs
            .task_fs
            .try_recv()
            .ok()
            .map(|(task, change)| Input::TaskFs(task, change))
    }
}

impl Engine {
    /// Runs the loop until the run ends (its outcome), or the engine detaches from it (`None`).
    pub(super) async fn run(&mut self, inputs: Inputs) -> anyhow::Result<Option<Outcome>> {
        let mut chooser = Chooser::new(inputs);
        let mut trace = TurnTrace::from_env();
        self.begin()?;
        loop {
            if let Some(end) = self.ended() {
                return Ok(end);
            }
            let input = chooser.next(self).await;
            let listing = matches!(input, Input::Reconcile);
            let turn = trace.begin(&input);
            self.handle(input)?;
            trace.end(turn);
            chooser.handled(self, listing);
        }
    }

    /// Whether the loop is over: `Some(None)` once detached, `Some(outcome)` once finished.
    pub(super) fn ended(&self) -> Option<Option<Outcome>> {
        if self.detached {
            return Some(None);
        }
        match self.state.phase {
            Phase::Finished(outcome) => Some(Some(outcome)),
            _ => None,
        }
    }

    /// Applies one input.
    pub(super) fn handle(&mut self, input: Input) -> anyhow::Result<()> {
        match input {
            Input::Stop(Stop::Interrupt) => self.interrupt("interrupted (Ctrl-C)"),
            Input::Stop(Stop::Terminate) => self.interrupt("terminated (SIGTERM)"),
            Input::Stop(Stop::Hangup) => {
                self.detach("its window was closed, or its tmux server died")
            }
            Input::RunFile(path) => self.on_run_file(&path),
            Input::Fs(change) => self.on_fs(change),
            Input::TaskFs(task, change) => self.on_task_fs(&task, change), // see isolation.rs
            Input::GatesDone(done) => self.on_gates_done(done),
            Input::Launched(launched) => self.on_launched(launched),
            Input::Committed(done) => self.on_committed(done), // see commits.rs
            Input::Tick => {
                self.keep_record()?; // see keeper.rs
                self.check_timeouts()?;
                self.user_tick()?; // see notices.rs, budget.rs
                self.answer_approvals()?; // see approval.rs
                self.apply_retries()?; // see retry.rs
                self.apply_tells()?; // see tell.rs
                self.render();
                Ok(())
            }
            Input::Reconcile => self.reconcile_if_tmux(),
            Input::LeftoversDue => self.look_for_leftovers(), // see leftovers.rs
            Input::LaunchStep => self.launch_step(),
        }
    }

    /// One launch: the judge if it waits for one, else one ready task; asks for another
    /// turn while more may be waiting.
    fn launch_step(&mut self) -> anyhow::Result<()> {
        self.sched.take_launch();
        // Nothing new launches while the budget is used up (see budget.rs); a raise asks
        // for launches again.
        self.check_budget_before_launch()?;
        if self.budget_holds() {
            return Ok(());
        }
        if self.start_judge_now()? {
            self.sched.want_launch();
            return Ok(());
        }
        self.dispatch_one()
    }

    fn leftovers_due(&self) -> bool {
        self.sched.leftovers_due()
    }

    fn launch_wanted(&self) -> bool {
        self.sched.launch_wanted()
    }
}

/// With `ORCH_TRACE_TURNS=<file>` in the engine's environment, each turn of the loop is
/// appended to that file as `<start, s since the epoch> <ms taken> <the input>`: what held
/// the loop when an exit waited (how BENCHMARKS.md's profile of the busy scenario was made).
struct TurnTrace(Option<std::io::BufWriter<std::fs::File>>);

impl TurnTrace {
    fn from_env() -> TurnTrace {
        let file = std::env::var_os("ORCH_TRACE_TURNS").and_then(|path| {
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .ok()
        });
        TurnTrace(file.map(std::io::BufWriter::new))
    }

    fn begin(&self, input: &Input) -> Option<(std::time::SystemTime, std::time::Instant, String)> {
        self.0.as_ref()?;
        let what: String = format!("{input:?}").chars().take(200).collect();
        Some((
            std::time::SystemTime::now(),
            std::time::Instant::now(),
            what,
        ))
    }

    fn end(&mut self, turn: Option<(std::time::SystemTime, std::time::Instant, String)>) {
        use std::io::Write as _;
        let (Some(file), Some((at, began, what))) = (self.0.as_mut(), turn) else {
            return;
        };
        let at = at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let took = began.elapsed().as_secs_f64() * 1000.0;
        let _ = writeln!(file, "{at:.6} {took:.3} {what}");
    }
}
