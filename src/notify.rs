//! Telling the user that something needs them: a run ended, a task failed for good, a budget
//! threshold was crossed, a plan waits for approval. Three ways, each turned on or off under
//! `notify:` in `orch.yaml`:
//! - tmux (`tmux.rs`): a message on the status line of every terminal attached to the run's
//!   session, and the task's window marked (the engine rings the bell in its own window, so
//!   tmux's bell flag and the terminal's urgency hint work);
//! - the desktop (`desktop.rs`): `notify-send` or `osascript`, where one exists;
//! - a hook (`hook.rs`): the user's command, argv without a shell, given one JSON document
//!   ([`Notice`]) on its standard input.
//!
//! Nothing here may hold up or stop a run: each notice is delivered on a thread of its own,
//! a hook gets `notify.hook_timeout` and is then killed, and what went wrong comes back as
//! [`Notifier::problems`] for the engine to journal as warnings.

mod desktop;
mod hook;
mod tmux;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Notify;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The run ended: succeeded, failed or interrupted (`outcome`); not when `orch down`
    /// stopped it.
    RunEnded,
    /// A task failed for good: no attempt follows.
    TaskFailed,
    /// The run's use crossed a threshold of its budget (`percent`: 80 or 100).
    Budget,
    /// A plan waits for the user's approval.
    PlanWaiting,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::RunEnded => "run_ended",
            Kind::TaskFailed => "task_failed",
            Kind::Budget => "budget",
            Kind::PlanWaiting => "plan_waiting",
        }
    }
}

/// One notice: the JSON document a hook gets on its standard input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub event: Kind,
    pub run_id: String,
    /// The user's project.
    pub project: PathBuf,
    /// The task it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// One line for a person: what happened and what to do.
    pub reason: String,
    /// For `run_ended`: succeeded | failed | interrupted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// For `budget`: the threshold crossed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// What the run cost so far, in USD, of the agents whose CLI reports cost.
    pub cost: f64,
    /// The tokens the run used so far.
    pub tokens: u64,
    /// Who used tokens without a reported cost (so `cost` leaves them out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uncosted: Vec<String>,
    /// When it happened (ms since the epoch).
    pub at_ms: u64,
    /// The tmux window to mark (the task's); not in the document.
    #[serde(skip)]
    pub window: Option<String>,
}

impl Notice {
    /// A title for the status line and the desktop.
    pub fn title(&self) -> String {
        let what = match self.event {
            Kind::RunEnded => format!(
                "run {} {}",
                self.run_id,
                self.outcome.as_deref().unwrap_or("ended")
            ),
            Kind::TaskFailed => format!(
                "run {}: task {} failed",
                self.run_id,
                self.task.as_deref().unwrap_or("?")
            ),
            Kind::Budget => format!(
                "run {}: {} % of its budget used",
                self.run_id,
                self.percent.unwrap_or(0)
            ),
            Kind::PlanWaiting => format!("run {}: the plan waits for approval", self.run_id),
        };
        format!("orch: {what}")
    }
}

/// Where a run's notices go: its settings, and its tmux session.
#[derive(Debug, Clone)]
pub struct Target {
    pub config: Notify,
    /// `tmux -L … -f …` for the run's server (the engine's `Tmux::command_prefix`).
    pub tmux: Vec<String>,
    pub session: String,
    /// Where a relative hook command is found, and where it runs.
    pub project: PathBuf,
}

/// Delivers notices off the caller's thread and collects what went wrong.
pub struct Notifier {
    target: Target,
    problems_tx: Sender<String>,
    problems_rx: Receiver<String>,
    running: Vec<JoinHandle<()>>,
    /// Set once a desktop notice failed: said once, not at every notice.
    desktop_failed: Arc<AtomicBool>,
}

impl Notifier {
    pub fn new(target: Target) -> Notifier {
        let (problems_tx, problems_rx) = channel();
        Notifier {
            target,
            problems_tx,
            problems_rx,
            running: Vec::new(),
            desktop_failed: Arc::default(),
        }
    }

    /// Whether the status line and the window are used (the caller rings the bell).
    pub fn tmux_on(&self) -> bool {
        self.target.config.tmux
    }

    /// Delivers `notice` every way turned on, on a thread of its own.
    pub fn send(&mut self, notice: Notice) {
        self.running.retain(|h| !h.is_finished());
        let target = self.target.clone();
        let problems = self.problems_tx.clone();
        let desktop_failed = self.desktop_failed.clone();
        let spawned = std::thread::Builder::new()
            .name("orch-notify".into())
            .spawn(move || deliver(&target, &notice, &problems, &desktop_failed));
        match spawned {
            Ok(handle) => self.running.push(handle),
            Err(e) => {
                let _ = self
                    .problems_tx
                    .send(format!("cannot start a thread to deliver a notice: {e}"));
            }
        }
    }

    /// What went wrong since the last call, one sentence each.
    pub fn problems(&mut self) -> Vec<String> {
        self.problems_rx.try_iter().collect()
    }

    /// Waits (until `deadline` at most) for the notices under way: the last of a run (that it
    /// ended) must not be cut short by the engine's exit.
    pub fn finish(&mut self, deadline: Instant) {
        while self.running.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.running.retain(|h| !h.is_finished());
    }

    /// How long `finish` may have to wait: a hook's timeout and a little.
    pub fn longest(&self) -> Duration {
        self.target.config.hook_timeout + Duration::from_secs(2)
    }
}

fn deliver(
    target: &Target,
    notice: &Notice,
    problems: &Sender<String>,
    desktop_failed: &AtomicBool,
) {
    let config = &target.config;
    if config.tmux
        && let Err(e) = tmux::show(target, notice)
    {
        let _ = problems.send(format!(
            "could not show the `{}` notice in tmux: {e}",
            notice.event.name()
        ));
    }
    if config.desktop
        && let Err(e) = desktop::show(notice)
        && !desktop_failed.swap(true, Ordering::Relaxed)
    {
        let _ = problems.send(format!(
            "could not show the `{}` notice on the desktop: {e}; `notify.desktop: false` \
             in orch.yaml turns desktop notices off",
            notice.event.name()
        ));
    }
    if let Some(argv) = &config.hook
        && let Err(e) = hook::run(argv, &target.project, config.hook_timeout, notice)
    {
        let _ = problems.send(format!(
            "the notify hook {} {e} (for `{}`); the run goes on — check `notify.hook` in \
             orch.yaml",
            crate::invocation::shell_word(&argv[0]),
            notice.event.name()
        ));
    }
}
