//! A run on a branch: each accepted task's commit made off the loop. A commit is a dozen git
//! processes (a temporary index, a tree, the commit, the branch moved; under `isolation: task`
//! the task's worktree compared with its start, the run's worktree brought up to the branch,
//! the task's worktree removed), tens of milliseconds here and seconds on a big project: on
//! the loop, every exit and violation that came meanwhile waited for it (the busy scenario's
//! exit → journal went from 3.4 ms to 32 ms median when runs got branches: see
//! BENCHMARKS.md). So the loop hands the work to one thread, which makes the commits one at a
//! time (so they never race for the branch), and the result comes back as an input
//! (`Input::Committed`), journaled then: `task_committed`, then `task_done`. Until then the
//! task is not done, so nothing that depends on it starts. In unit tests the work is done
//! inline, its result waiting as the next input.
//!
//! The branch moves before the loop hears of it: meanwhile the `.git/` guard takes a change
//! of the run's own ref as the engine's (see `Engine::check_git_meta`), and the result takes
//! the new tip into the guard's copy.

use std::path::PathBuf;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::paths::ProjectPath;
use crate::plan::TaskId;
use crate::workspace::Committer as Git;
use crate::workspace::task::{Finding, TaskRepo, TaskWorktree};

/// One accepted task's commit, as the loop asks for it.
pub(super) struct Job {
    pub task: TaskId,
    pub attempt: u32,
    pub message: String,
    pub files: Vec<ProjectPath>,
    pub how: How,
}

/// Where the task's work is taken from.
pub(super) enum How {
    /// The run's worktree, shared by its tasks: exactly the owned files, then the worktree's
    /// index reset to the new tip.
    Shared(Git),
    /// The task's own worktree (`isolation: task`): collected, what it holds that is not
    /// the task's copied under `keep`, then the run's worktree (`run_root`) brought up to the
    /// branch (what it had of its own saved under `save`), then the task's worktree removed.
    Isolated {
        repo: TaskRepo,
        tw: TaskWorktree,
        run_root: PathBuf,
        save: PathBuf,
        keep: PathBuf,
    },
}

/// What came of a job.
#[derive(Debug)]
pub(super) struct Done {
    pub task: TaskId,
    pub attempt: u32,
    /// The commit (None: none of its files changed), or why git could not make it.
    pub commit: Result<Option<String>, String>,
    /// Under `isolation: task`: what its worktree held that is not its own.
    pub findings: Vec<Finding>,
    /// What went wrong after the commit (the index, the run's worktree), for warnings.
    pub troubles: Vec<String>,
    /// Files the run's worktree had changed, saved before being brought up to the branch.
    pub saved: Vec<String>,
    /// Whether the task's own worktree was removed (`isolation: task`).
    pub removed: bool,
}

fn work(job: Job) -> Done {
    let Job {
        task,
        attempt,
        message,
        files,
        how,
    } = job;
    let mut done = Done {
        task,
        attempt,
        commit: Ok(None),
        findings: Vec::new(),
        troubles: Vec::new(),
        saved: Vec::new(),
        removed: false,
    };
    match how {
        How::Shared(git) => {
            done.commit = git
                .commit(&files, &message, false)
                .map_err(|e| format!("{e:#}"));
            if matches!(done.commit, Ok(Some(_)))
                && let Err(e) = git.reset_index()
            {
                done.troubles.push(format!(
                    "cannot reset the worktree's index to the run branch's tip ({e:#}): `git \
                     status` in the worktree may show committed files as changed"
                ));
            }
        }
        How::Isolated {
            repo,
            tw,
            run_root,
            save,
            keep,
        } => {
            match repo.collect(&tw, &files, &message) {
                Ok(collected) => {
                    done.commit = Ok(collected.commit);
                    done.findings = collected.findings;
                }
                Err(e) => {
                    done.commit = Err(e.to_string());
                    return done;
                }
            }
            // Nothing is lost with the worktree: what it holds that is not the task's is
            // kept in the run directory first (and journaled as violations by the loop).
            for finding in &done.findings {
                if let Err(e) = crate::snapshot::save_copy(&tw.path, &finding.path, &keep) {
                    done.troubles.push(format!(
                        "cannot keep a copy of {} from task {}'s worktree ({e:#}); the \
                         worktree is kept",
                        finding.path, tw.task
                    ));
                }
            }
            let kept = done.troubles.is_empty();
            match repo.sync_checkout(&run_root, &save) {
                Ok(saved) => done.saved = saved,
                Err(e) => done.troubles.push(format!(
                    "cannot bring the run's worktree up to its branch ({e}): the commits hold \
                     the tasks' work; `git -C {} checkout -f` shows it there",
                    run_root.display()
                )),
            }
            if !kept {
                return done; // the worktree stays, with what could not be copied
            }
            match repo.discard(&tw) {
                Ok(()) => {
                    // The run's directory of them too, once the last is gone.
                    if let Some(parent) = tw.path.parent() {
                        let _ = std::fs::remove_dir(parent);
                    }
                    done.removed = true;
                }
                Err(e) => done.troubles.push(format!(
                    "cannot remove task {}'s worktree {} ({e}): its work is committed; `orch \
                     discard` removes it with the run's",
                    tw.task,
                    tw.path.display()
                )),
            }
        }
    }
    done
}

/// How commits are made: on a thread of their own, or (unit tests) inline.
#[derive(Debug, Clone, Copy)]
pub(super) enum Committing {
    Thread,
    #[cfg(test)]
    Inline,
}

/// Hands jobs to the committing thread and their results back to the loop.
pub(super) struct Commits {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    tx: UnboundedSender<Done>,
    rx: UnboundedReceiver<Done>,
    /// The tasks whose job has not come back yet.
    pending: std::collections::BTreeSet<TaskId>,
}

impl Commits {
    pub(super) fn new(mode: Committing) -> Commits {
        let (tx, rx) = unbounded_channel();
        let (jobs, thread) = match mode {
            Committing::Thread => {
                let (jobs, queue) = std::sync::mpsc::channel::<Job>();
                let back = tx.clone();
                let thread = std::thread::Builder::new()
                    .name("orch-commits".into())
                    .spawn(move || {
                        // Below the agents and the loop: a commit can wait a few
                        // milliseconds, an exit's journal line should not (Linux: the nice
                        // value is the thread's, and its git processes inherit it).
                        // SAFETY: setpriority(2) on the calling thread only.
                        unsafe {
                            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
                        }
                        for job in queue {
                            if back.send(work(job)).is_err() {
                                return;
                            }
                        }
                    })
                    .ok();
                (thread.is_some().then_some(jobs), thread)
            }
            #[cfg(test)]
            Committing::Inline => (None, None),
        };
        Commits {
            jobs,
            thread,
            tx,
            rx,
            pending: std::collections::BTreeSet::new(),
        }
    }

    /// Asks for `job` (inline, when there is no thread).
    pub(super) fn submit(&mut self, job: Job) {
        self.pending.insert(job.task.clone());
        let job = match &self.jobs {
            Some(jobs) => match jobs.send(job) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let _ = self.tx.send(work(job));
    }

    /// The next result, when one comes.
    pub(super) async fn result(&mut self) -> Option<Done> {
        self.rx.recv().await
    }

    pub(super) fn try_result(&mut self) -> Option<Done> {
        self.rx.try_recv().ok()
    }

    /// Whether task `id`'s commit is under way.
    pub(super) fn is_pending(&self, id: &TaskId) -> bool {
        self.pending.contains(id)
    }

    /// Whether any commit is under way: the run branch may move at any moment.
    pub(super) fn any_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub(super) fn settled(&mut self, id: &TaskId) {
        self.pending.remove(id);
    }

    /// Waits for the jobs asked for (the engine is ending): a commit half made is never left
    /// behind; one not journaled is found on resume by its trailers.
    pub(super) fn finish(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
