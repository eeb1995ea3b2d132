//! The one way an agent is launched, whatever its role: its invocation built and confined,
//! its start journaled, the agent registered (agents.rs) — and then its files written and its
//! pane asked of tmux off the loop.
//!
//! Making a pane is a tmux round trip (about 3 ms, more on a busy server), and writing an
//! attempt's directory, prompt and launcher costs the file system a millisecond or more
//! (creating inodes is slow on a disk where many files were deleted: see BENCHMARKS.md); the
//! loop must wait on neither while exits and violations queue behind them. So the `Launcher`
//! sends the request to a thread that owns the tmux connection and the layout (`Panes`),
//! writes the files and asks for the pane, and the answer (pane and pid, or the error) comes
//! back as an input of the loop (`Input::Launched`), journaled then. Only then is the
//! attempt's directory watched, and an exit record already there is handled at once (watch,
//! then look: nothing slips between). An exit record that arrives before the answer is
//! handled as any other: the registry knows the agent by its directory, and the late answer
//! finds it gone. In unit tests the launcher runs inline, its answer waiting as the next
//! input.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::agents::{Agent, Pane, Role};
use super::core::Engine;
use super::panes::Panes;
use crate::paths::ProjectPath;
use crate::tmux::{PaneInfo, Tmux, WindowSpec};
use crate::workers::{self, AgentCall};

/// How long the end of the engine waits for launches tmux has not answered yet.
const SETTLE_PATIENCE: Duration = Duration::from_secs(10);

/// What the engine wants launched.
pub(super) struct Launch {
    pub role: Role,
    pub attempt: u32,
    pub dir: PathBuf,
    /// The agent's name in the config.
    pub agent: String,
    pub prompt: String,
    /// The files the agent may write (a task's, shown to its oracle too).
    pub files: Vec<ProjectPath>,
    /// The agent CLI's session a task's attempt continues (see interrupted.rs).
    pub session: Option<String>,
    /// The pane's title and its window's name.
    pub title: String,
    pub window: String,
    pub placement: Placement,
}

/// Where a pane goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// A window of its own (the planner, the judge, an oracle).
    Window,
    /// As the layout places workers.
    Layout,
}

/// The answer to a launch: the agent's pane, or why its files or its pane could not be made.
#[derive(Debug)]
pub(super) struct Launched {
    pub dir: PathBuf,
    pub pane: Result<PaneInfo, anyhow::Error>,
}

/// What a launch writes into its attempt's directory before its pane starts.
pub(super) struct Files {
    pub prompt: String,
    pub spec: crate::agent_process::launcher::LaunchSpec,
    pub exe: PathBuf,
}

impl Files {
    /// Writes the attempt's directory, prompt and launcher (see `launcher::write_launcher`).
    fn write(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let prompt_file = dir.join("prompt.md");
        std::fs::write(&prompt_file, &self.prompt)
            .with_context(|| format!("failed to write {}", prompt_file.display()))?;
        crate::agent_process::launcher::write_launcher(dir, &self.spec, &self.exe)?;
        // A directory used before (a judge or an oracle asked again after a resume) may hold
        // an old exit record: it must not pass for this run's.
        match std::fs::remove_file(dir.join("exit.json")) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context("failed to clear an old exit record"),
        }
    }
}

enum Request {
    Open {
        dir: PathBuf,
        /// Its files, until they are written.
        files: Option<Box<Files>>,
        spec: WindowSpec,
        placement: Placement,
    },
    /// A pane to close (the previous judge's), in order with the launches.
    Kill(String),
}

/// Whether the launcher works on a thread of its own (the engine) or inline (unit tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Launching {
    Thread,
    #[cfg(test)]
    Inline,
}

/// Sends launches to tmux and hands back its answers.
pub(super) struct Launcher {
    mode: Mode,
    /// Where the answers go (the launcher's threads share it), and where they are read.
    answer: Answers,
    answers: UnboundedReceiver<Launched>,
}

enum Mode {
    Thread(std::sync::mpsc::Sender<Request>),
    #[cfg(test)]
    Inline(Arc<dyn Tmux>, Panes),
}

impl Launcher {
    pub(super) fn new(launching: Launching, tmux: Arc<dyn Tmux>, panes: Panes) -> Launcher {
        let (answers_tx, answers) = unbounded_channel();
        let pending = Arc::new((Mutex::new(0), Condvar::new()));
        let mode = match launching {
            #[cfg(test)]
            Launching::Inline => Mode::Inline(tmux, panes),
            Launching::Thread => {
                // Two stages, so that the next launches' files are written while tmux makes
                // the last ones' panes (the tmux server is a process of its own).
                let (tx, rx) = std::sync::mpsc::channel();
                let (written_tx, written) = std::sync::mpsc::channel();
                let answer = Answers {
                    tx: answers_tx.clone(),
                    pending: pending.clone(),
                };
                let answer_too = answer.clone();
                std::thread::Builder::new()
                    .name("orch-files".into())
                    .spawn(move || write_files(&rx, &written_tx, &answer_too))
                    .expect("failed to start the launcher's files thread");
                std::thread::Builder::new()
                    .name("orch-launcher".into())
                    .spawn(move || serve(&written, tmux.as_ref(), panes, &answer))
                    .expect("failed to start the launcher thread");
                Mode::Thread(tx)
            }
        };
        Launcher {
            mode,
            answer: Answers {
                tx: answers_tx,
                pending,
            },
            answers,
        }
    }

    fn send(&mut self, request: Request) {
        match &mut self.mode {
            Mode::Thread(tx) => {
                if matches!(request, Request::Open { .. }) {
                    *self.answer.pending.0.lock().expect("launcher lock") += 1;
                }
                // The thread is gone (it panicked): a launch fails as if tmux said so.
                if let Err(std::sync::mpsc::SendError(Request::Open { dir, .. })) = tx.send(request)
                {
                    self.answer.answer(Launched {
                        dir,
                        pane: Err(anyhow::anyhow!(
                            "orch's launcher thread is gone: see the engine's log, then \
                             `orch resume`"
                        )),
                    });
                }
            }
            #[cfg(test)]
            Mode::Inline(tmux, panes) => {
                // Nothing was counted as pending: the answer is there at once.
                if let Some(answer) = execute(tmux.as_ref(), panes, request) {
                    let _ = self.answer.tx.send(answer);
                }
            }
        }
    }

    /// Asks for the files and a pane of the agent of `dir`; the answer comes as
    /// `Input::Launched`.
    pub(super) fn open(
        &mut self,
        dir: PathBuf,
        files: Files,
        spec: WindowSpec,
        placement: Placement,
    ) {
        self.send(Request::Open {
            dir,
            files: Some(Box::new(files)),
            spec,
            placement,
        });
    }

    pub(super) fn kill_pane(&mut self, pane: String) {
        self.send(Request::Kill(pane));
    }

    /// The next answer, when there is one.
    pub(super) async fn answer(&mut self) -> Option<Launched> {
        self.answers.recv().await
    }

    pub(super) fn try_answer(&mut self) -> Option<Launched> {
        self.answers.try_recv().ok()
    }

    /// Waits (a while at most) until every launch sent has its answer, and returns those not
    /// taken yet: when agents are stopped, or the engine ends, no pane may still be coming.
    pub(super) fn settle(&mut self) -> Vec<Launched> {
        let (count, answered) = &*self.answer.pending;
        let deadline = Instant::now() + SETTLE_PATIENCE;
        let mut left = count.lock().expect("launcher lock");
        while *left > 0 {
            let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            left = answered.wait_timeout(left, wait).expect("launcher lock").0;
        }
        drop(left);
        std::iter::from_fn(|| self.try_answer()).collect()
    }
}

/// How many windows the launcher asks of tmux in one pipelined round trip at most.
const WINDOWS_AT_ONCE: usize = 32;

/// Where the launcher's threads answer launches.
#[derive(Clone)]
struct Answers {
    tx: UnboundedSender<Launched>,
    /// Launches sent and not answered yet (see `Launcher::settle`).
    pending: Arc<(Mutex<usize>, Condvar)>,
}

impl Answers {
    fn answer(&self, launched: Launched) {
        let _ = self.tx.send(launched);
        let (count, answered) = &*self.pending;
        let mut count = count.lock().expect("launcher lock");
        *count = count.saturating_sub(1);
        answered.notify_all();
    }
}

/// The launcher's first stage: writes each launch's files and hands it on, in order; a launch
/// whose files cannot be written is answered here.
fn write_files(
    requests: &std::sync::mpsc::Receiver<Request>,
    written: &std::sync::mpsc::Sender<Request>,
    answers: &Answers,
) {
    for mut request in requests {
        if let Request::Open { dir, files, .. } = &mut request
            && let Some(files) = files.take()
            && let Err(e) = files.write(dir)
        {
            let dir = dir.clone();
            answers.answer(Launched { dir, pane: Err(e) });
            continue;
        }
        if written.send(request).is_err() {
            return;
        }
    }
}

/// The launcher thread: makes the panes asked for, in order, and answers each. Requests that
/// queued up while tmux answered the last ones are taken together: consecutive windows of
/// their own are made in one pipelined round trip (`Tmux::new_windows`), which is what lets
/// hundreds of agents start within a second.
fn serve(
    requests: &std::sync::mpsc::Receiver<Request>,
    tmux: &dyn Tmux,
    mut panes: Panes,
    answers: &Answers,
) {
    while let Ok(first) = requests.recv() {
        let mut queued = vec![first];
        queued.extend(requests.try_iter());
        let mut queued = queued.into_iter().peekable();
        while let Some(request) = queued.next() {
            let own_window = |r: &Request| match r {
                Request::Open { placement, .. } => {
                    *placement == Placement::Window || panes.own_windows()
                }
                Request::Kill(_) => false,
            };
            if !own_window(&request) {
                if let Some(launched) = execute(tmux, &mut panes, request) {
                    answers.answer(launched);
                }
                continue;
            }
            let mut batch = vec![request];
            while batch.len() < WINDOWS_AT_ONCE && queued.peek().is_some_and(own_window) {
                batch.extend(queued.next());
            }
            let (dirs, specs): (Vec<PathBuf>, Vec<WindowSpec>) = batch
                .into_iter()
                .filter_map(|r| match r {
                    Request::Open { dir, spec, .. } => Some((dir, spec)),
                    Request::Kill(_) => None,
                })
                .unzip();
            for (dir, pane) in dirs.into_iter().zip(panes.windows(tmux, &specs)) {
                answers.answer(Launched {
                    dir,
                    pane: pane.map_err(anyhow::Error::new),
                });
            }
        }
    }
}

fn execute(tmux: &dyn Tmux, panes: &mut Panes, request: Request) -> Option<Launched> {
    match request {
        Request::Open {
            dir,
            files,
            spec,
            placement,
        } => {
            if let Some(files) = files
                && let Err(e) = files.write(&dir)
            {
                return Some(Launched { dir, pane: Err(e) });
            }
            let pane = match placement {
                Placement::Window => panes.window(tmux, &spec),
                Placement::Layout => panes.place(tmux, &spec),
            };
            Some(Launched {
                dir,
                pane: pane.map_err(anyhow::Error::new),
            })
        }
        Request::Kill(pane) => {
            // Gone already is as good.
            let _ = tmux.kill_pane(&pane);
            None
        }
    }
}

impl Engine {
    /// Launches an agent (see the module doc): everything but its pane is done now; a
    /// failure here is the caller's to handle, one of tmux's comes back as an input.
    pub(super) fn launch_agent(&mut self, launch: Launch) -> anyhow::Result<()> {
        let Launch {
            role,
            attempt,
            dir,
            agent: name,
            prompt,
            files,
            session,
            title,
            window,
            placement,
        } = launch;
        let prompt_file = dir.join("prompt.md");
        // The run's worktree, or a task's own (see isolation.rs).
        let root = self.agent_root(&role);
        let agent = self
            .config
            .agents
            .get(&name)
            .with_context(|| format!("agent `{name}` is not in the config"))?;
        let mut invocation = workers::invocation(&AgentCall {
            name: &name,
            agent,
            role: role.prompt_role(),
            task: role.about(),
            files: &files,
            prompt_file: &prompt_file,
            project_dir: &root,
            run_dir: self.dir.path(),
            session: session.as_deref(),
        })?;
        crate::sandbox::confine(
            &mut invocation,
            role.prompt_role(),
            &self.config,
            agent,
            &root,
            self.dir.path(),
        );
        self.record(role.started(attempt, invocation.continues.clone()))?;
        let (mut files, spec) =
            self.prepare_pane(&root, &dir, prompt, title, invocation, window)?;
        if let Role::Task(id) = &role {
            files.spec.notice = self.tell_notice(id, attempt); // see tell.rs
        }
        self.agents
            .insert(Agent::new(role, attempt, dir.clone(), None));
        self.launcher.open(dir, files, spec, placement);
        Ok(())
    }

    /// Tmux answered a launch: the agent's pane is journaled, or its launch failed.
    pub(super) fn on_launched(&mut self, launched: Launched) -> anyhow::Result<()> {
        let Launched { dir, pane } = launched;
        if dir.starts_with(self.dir.path().join("judge"))
            && let Ok(info) = &pane
        {
            // One judge window at a time: closed when the next judge starts.
            self.judging.set_last_pane(info.pane_id.clone());
        }
        let Some(agent) = self.agents.get(&dir).cloned() else {
            // Its agent ended before tmux answered, or was given up on (a stop): a pane
            // whose agent has no exit record yet is one nobody waits for.
            if let Ok(info) = pane
                && !dir.join("exit.json").exists()
                && info.pid > 1
            {
                super::tasks::stop_pane(info.pid);
            }
            return Ok(());
        };
        match pane {
            Ok(info) => {
                let started = agent.role.pane_started(agent.attempt, &info);
                self.agents.set_pane(
                    &dir,
                    Pane {
                        id: info.pane_id,
                        pid: info.pid,
                    },
                );
                if let Some(event) = started {
                    self.record(event)?;
                }
                // Its files exist now: watched, then looked at, so that an exit record
                // written before the watch is not missed.
                if let Err(e) = self.watch_dir(&dir) {
                    let cost = super::event_loop::found_by_the_listing();
                    let cost = format!("its end is {cost}");
                    let what = format!("cannot watch {} ({e:#}): {cost}", dir.display());
                    self.warn(crate::state::WarningKind::Agents, what);
                }
                let exit = dir.join("exit.json");
                if exit.exists() {
                    return self.on_run_file(&exit);
                }
                Ok(())
            }
            Err(e) => self.launch_failed(agent, e),
        }
    }

    fn launch_failed(&mut self, agent: Agent, e: anyhow::Error) -> anyhow::Result<()> {
        self.agents.remove(&agent.dir);
        self.unwatch_dir(&agent.dir);
        match agent.role {
            Role::Task(id) => self.task_not_launched(&id, &e),
            // No window for the planner, the judge or an oracle: the engine cannot go on.
            role => Err(e.context(format!(
                "failed to open a window for the {}",
                role.prompt_role()
            ))),
        }
    }

    /// Task `id`'s agent could not be launched: no session to launch into is no fault of the
    /// task's (see interrupted.rs); anything else fails it.
    pub(super) fn task_not_launched(
        &mut self,
        id: &crate::plan::TaskId,
        e: &anyhow::Error,
    ) -> anyhow::Result<()> {
        if self.tmux_lost() {
            return self.detach("its tmux session is gone");
        }
        self.fail_task(id, format!("could not be launched: {e:#}"))?;
        self.finish_if_settled()
    }

    /// Launches tmux has not answered, settled before agents are stopped: their panes are
    /// journaled, so that what is stopped is all there is.
    pub(super) fn settle_launches(&mut self) -> anyhow::Result<()> {
        for launched in self.launcher.settle() {
            if launched.pane.is_ok() {
                self.on_launched(launched)?;
            }
        }
        Ok(())
    }
}
