//! The engine's loop: one `select!` over everything that can happen to a run (a stop, an
//! exit record or a run file, a change in the project, gate results, the clock, a launch
//! waiting), in that order of priority, with a fair turn for the rest when agents' events
//! never let up.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::core::{Engine, GateDone};
use crate::state::{Outcome, Phase};
use crate::watch::FsChange;

/// How often tmux is asked which panes are alive, besides the pane-died hook: tmux's own exit
/// report is not always reliable. A safety net, so rare: exits come as exit records and dead
/// panes through the hook, both at once, and a listing costs in proportion to the panes (at 256
/// agents, every 2 s, it had the idle engine use 4 times what it uses at 64).
const RECONCILE_EVERY: Duration = Duration::from_secs(10);
/// How soon the next listing comes while a pane is gone without its exit record, so that its
/// loss is settled soon after the grace it gets (see interrupted.rs).
const RECONCILE_PENDING: Duration = Duration::from_secs(2);
/// How often the control window's table is redrawn and timeouts are checked.
const TICK_EVERY: Duration = Duration::from_secs(1);
/// The loop's select is biased toward agents' events (see `run`), so an agent that writes
/// without pause would starve the rest: after this many agents' events in a row, the rest
/// get a turn (`starved_turn`). High enough that it never comes between a burst of exits.
const FAIR_AFTER: u32 = 64;

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

impl Engine {
    /// Runs the loop until the run ends (its outcome), or the engine detaches from it (`None`).
    pub(super) async fn run(&mut self, inputs: Inputs) -> anyhow::Result<Option<Outcome>> {
        let Inputs {
            fs: mut fs_rx,
            run_files: mut dir_rx,
            gates: mut gate_rx,
            mut stops,
        } = inputs;
        let mut tick = tokio::time::interval(TICK_EVERY);
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
        // After a long turn or a flood, one redraw and one listing, not a burst of them.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

        self.begin()?;
        // Agents' events handled in a row: see FAIR_AFTER.
        let mut streak = 0u32;
        loop {
            if self.detached {
                return Ok(None);
            }
            if let Phase::Finished(outcome) = self.state.phase {
                return Ok(Some(outcome));
            }
            if streak >= FAIR_AFTER {
                streak = 0;
                self.starved_turn(&mut fs_rx, &mut gate_rx, &mut tick, &mut reconcile)?;
                continue;
            }
            // In this order when several are ready, not at random: a stop first, then what
            // agents did (exit records, file changes: their journal entries are what the
            // latency figures measure), then work that can wait a few milliseconds (gate
            // results, redraws, listings), and launches last, one per turn, when nothing else
            // is waiting: a launch blocks the loop for several milliseconds (files, journal,
            // tmux), so an exit or a write that arrives meanwhile waits for one launch at
            // most, never for a batch of them.
            tokio::select! {
                biased;
                Some(stop) = stops.recv() => match stop {
                    Stop::Interrupt => self.interrupt("interrupted (Ctrl-C)")?,
                    Stop::Terminate => self.interrupt("terminated (SIGTERM)")?,
                    Stop::Hangup => {
                        self.detach("its window was closed, or its tmux server died")?;
                    }
                },
                Some(path) = dir_rx.recv() => {
                    streak += 1;
                    let gone = self.gone_since.len();
                    self.on_run_file(&path)?;
                    if self.gone_since.len() > gone {
                        reconcile.reset_after(RECONCILE_PENDING);
                    }
                }
                Some(change) = fs_rx.recv() => {
                    streak += 1;
                    self.on_fs(change)?;
                }
                Some(done) = gate_rx.recv() => {
                    streak = 0;
                    self.on_gates_done(done)?;
                }
                _ = tick.tick() => {
                    streak = 0;
                    self.keep_record()?; // see keeper.rs
                    self.check_timeouts()?;
                    self.render();
                }
                _ = reconcile.tick() => {
                    streak = 0;
                    self.reconcile_if_tmux()?;
                    if !self.gone_since.is_empty() {
                        reconcile.reset_after(RECONCILE_PENDING);
                    }
                }
                _ = std::future::ready(()), if !self.leftovers_due.is_empty() => {
                    streak = 0;
                    self.look_for_leftovers()?; // see leftovers.rs
                }
                _ = std::future::ready(()), if self.launch_wanted => {
                    streak = 0;
                    self.launch_step()?;
                }
            }
        }
    }

    /// A turn for the work a biased select puts last, taken after FAIR_AFTER agents' events
    /// in a row: the first of gate results, a due tick, a due reconciliation, a launch, and
    /// else a change in the project (which run files, say a chatty agent's log, come before).
    fn starved_turn(
        &mut self,
        fs_rx: &mut UnboundedReceiver<FsChange>,
        gate_rx: &mut UnboundedReceiver<GateDone>,
        tick: &mut tokio::time::Interval,
        reconcile: &mut tokio::time::Interval,
    ) -> anyhow::Result<()> {
        use std::task::{Context, Waker};
        // Asking an interval without waiting: the select polls it again with its own waker.
        let mut cx = Context::from_waker(Waker::noop());
        if let Ok(done) = gate_rx.try_recv() {
            return self.on_gates_done(done);
        }
        if tick.poll_tick(&mut cx).is_ready() {
            self.keep_record()?;
            self.check_timeouts()?;
            self.render();
            return Ok(());
        }
        if reconcile.poll_tick(&mut cx).is_ready() {
            return self.reconcile_if_tmux();
        }
        if !self.leftovers_due.is_empty() {
            return self.look_for_leftovers();
        }
        if self.launch_wanted {
            return self.launch_step();
        }
        if let Ok(change) = fs_rx.try_recv() {
            return self.on_fs(change);
        }
        Ok(())
    }

    /// One launch: the judge if it waits for one, else one ready task; asks for another
    /// turn while more may be waiting.
    fn launch_step(&mut self) -> anyhow::Result<()> {
        self.launch_wanted = false;
        if self.start_judge_now()? {
            self.launch_wanted = true;
            return Ok(());
        }
        self.dispatch_one()
    }
}
