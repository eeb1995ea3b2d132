//! A run on a branch: each accepted task's commit made off the loop. A commit is several git
//! processes (the task's files into orch's own index, a tree, the commit, the branch moved,
//! the worktree's index reset; under `isolation: task` also the task's worktree compared with
//! its start, the run's worktree brought up to the branch, the task's worktree removed), tens
//! of milliseconds here and seconds on a big project: on
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
    /// The run branch's tip as the journal knows it: the engine's last commit, or the run's
    /// start. The thread builds on it, or on the commit it made last, and on nothing else.
    pub base: String,
    /// The copies of the task's files as the judge passed them (the run directory's
    /// `baseline/`, out of the agents' reach): what is committed must be exactly them.
    pub judged: PathBuf,
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

/// What the thread keeps between jobs, and shares with the loop.
#[derive(Default)]
struct Made {
    /// The commit it made last (None: none yet in this engine).
    last: Option<String>,
    /// The index its commits are built in, kept from one to the next (see
    /// `crate::workspace::commit`).
    staging: Option<crate::workspace::Staging>,
}

fn work(job: Job, made: &mut Made, ours: &Ours) -> Done {
    let Job {
        task,
        attempt,
        message,
        files,
        how,
        base,
        judged,
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
    // Known for the engine's before the branch moves to it (see `Engine::check_git_meta`),
    // and forgotten if it does not: the guard must not take a move to it for the engine's.
    let announced = std::cell::RefCell::new(None::<String>);
    let announce = |commit: &str| {
        if let Ok(mut ours) = ours.lock() {
            ours.insert(commit.to_string());
        }
        *announced.borrow_mut() = Some(commit.to_string());
    };
    let forget = || {
        if let (Some(commit), Ok(mut ours)) = (announced.borrow_mut().take(), ours.lock()) {
            ours.remove(&commit);
        }
    };
    let expected = made.last.clone().unwrap_or(base);
    // Only on the tip the engine made: a branch moved by anyone else is theirs to explain
    // (the .git/ guard reports it), never built on.
    let moved = |tip: Option<String>| {
        format!(
            "the run's branch moved under the engine (its tip is {}, where the engine left \
             {expected}): nothing is built on a commit it did not make",
            tip.as_deref().unwrap_or("unreadable"),
        )
    };
    let root = match &how {
        // Checked by the commit itself, which moves the branch from `expected` or not at all:
        // a git process less for every task.
        How::Shared(git) => git.root().to_path_buf(),
        How::Isolated { repo, tw, .. } => {
            let tip = repo.tip().ok();
            if tip.as_deref() != Some(expected.as_str()) {
                done.commit = Err(moved(tip));
                return done;
            }
            tw.path.clone()
        }
    };
    // Exactly what the judge passed: a file changed since is not taken.
    if let Some(changed) = changed_since_judged(&root, &judged, &files) {
        done.commit = Err(format!(
            "{changed} changed after the judge passed it: not committed (what was judged is \
             in the run directory's baseline/)"
        ));
        return done;
    }
    match how {
        How::Shared(git) => {
            let staging = made.staging.get_or_insert_with(|| git.staging());
            done.commit = git
                .commit_on(staging, &expected, &files, &message, false, &announce)
                .map_err(|e| {
                    forget();
                    match git.tip() {
                        Ok(tip) if tip == expected => format!("{e:#}"),
                        tip => moved(tip.ok()),
                    }
                });
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
            match repo.collect_announcing(&tw, &files, &message, &announce) {
                Ok(collected) => {
                    done.commit = Ok(collected.commit);
                    done.findings = collected.findings;
                }
                Err(e) => {
                    forget();
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
                Ok(()) => done.removed = true,
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

/// The first of `files` whose content in `root` differs from its copy under `judged` (both
/// absent is the same), if any.
fn changed_since_judged(
    root: &std::path::Path,
    judged: &std::path::Path,
    files: &[ProjectPath],
) -> Option<String> {
    files
        .iter()
        .find(|f| {
            let read = |dir| crate::paths::read_inside(dir, f.as_str()).ok();
            read(root) != read(judged)
        })
        .map(ToString::to_string)
}

/// The commits the engine's thread made, shared with the loop (see `Commits::is_ours`).
type Ours = std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>;

/// Runs `job`, a panic in it being its failure (the task fails; the run goes on), and keeps
/// the commit it made.
fn run_job(job: Job, made: &mut Made, ours: &Ours) -> Done {
    let (task, attempt) = (job.task.clone(), job.attempt);
    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(job, made, ours)))
        .unwrap_or_else(|_| Done {
            task,
            attempt,
            commit: Err("orch's commit of it failed (a bug: please report it)".into()),
            findings: Vec::new(),
            troubles: Vec::new(),
            saved: Vec::new(),
            removed: false,
        });
    if let Ok(Some(commit)) = &done.commit {
        made.last = Some(commit.clone());
        if let Ok(mut ours) = ours.lock() {
            ours.insert(commit.clone());
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
    /// Every commit the thread made.
    ours: Ours,
    /// Set when the engine ends: jobs still queued are not started (their tasks are not done,
    /// and `orch resume` takes them up again).
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The inline mode's state (unit tests).
    made: Made,
}

impl Commits {
    pub(super) fn new(mode: Committing) -> Commits {
        let (tx, rx) = unbounded_channel();
        let ours = Ours::default();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (jobs, thread) = match mode {
            Committing::Thread => {
                let (jobs, queue) = std::sync::mpsc::channel::<Job>();
                let back = tx.clone();
                let (ours, stop) = (ours.clone(), stop.clone());
                let thread = std::thread::Builder::new()
                    .name("orch-commits".into())
                    .spawn(move || {
                        // Below the agents and the loop: a commit can wait a few
                        // milliseconds, an exit's journal line should not. (Linux only: there
                        // the nice value is the thread's, and its git processes inherit it;
                        // elsewhere it would be the whole engine's.)
                        #[cfg(target_os = "linux")]
                        // SAFETY: setpriority(2) on the calling thread only.
                        unsafe {
                            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
                        }
                        let mut made = Made::default();
                        for job in queue {
                            if stop.load(std::sync::atomic::Ordering::Acquire) {
                                return;
                            }
                            if back.send(run_job(job, &mut made, &ours)).is_err() {
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
            ours,
            stop,
            made: Made::default(),
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
        let done = run_job(job, &mut self.made, &self.ours);
        let _ = self.tx.send(done);
    }

    /// Takes `commits` (the run's own, from the journal: an earlier engine's) as the
    /// engine's.
    pub(super) fn know<'a>(&self, commits: impl IntoIterator<Item = &'a str>) {
        if let Ok(mut ours) = self.ours.lock() {
            ours.extend(commits.into_iter().map(str::to_string));
        }
    }

    /// Whether `commit` is one the engine made (the run's branch pointing at it is the
    /// engine's doing).
    pub(super) fn is_ours(&self, commit: &str) -> bool {
        self.ours.lock().is_ok_and(|ours| ours.contains(commit))
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

    pub(super) fn settled(&mut self, id: &TaskId) {
        self.pending.remove(id);
    }

    /// Waits for the job under way (the engine is ending), and starts no other: a commit half
    /// made is never left behind; one not journaled is found on resume by its trailers.
    pub(super) fn finish(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::{Mode, Prepared, Uncommitted, Wanted, prepare};

    /// `git ARGS` in `dir` as a user would run it, which must succeed: its output.
    fn git(dir: &std::path::Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// A committed repository, its run branch and worktree as `orch up` makes them, a run
    /// directory, and `a.txt` written in the worktree and kept as judged.
    fn setup() -> (tempfile::TempDir, Git, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        git(&root, &["init", "-q"]);
        std::fs::write(root.join(".gitignore"), ".orch/\n").unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "base"]);
        let wanted = Wanted {
            mode: Mode::Worktree,
            uncommitted: Uncommitted::Include,
            isolation: crate::workspace::Isolation::Run,
        };
        let Prepared::Worktree { info, .. } =
            prepare(&root, &root.join(".orch"), "r1", wanted).unwrap()
        else {
            panic!("a worktree run was expected");
        };
        let run_dir = root.join(".orch/runs/r1");
        std::fs::create_dir_all(run_dir.join("baseline")).unwrap();
        std::fs::write(info.path.join("a.txt"), "judged\n").unwrap();
        std::fs::write(run_dir.join("baseline/a.txt"), "judged\n").unwrap();
        let committer = Git::new(&info, &run_dir);
        (dir, committer, run_dir, info.path.join("a.txt"))
    }

    fn job(committer: &Git, run_dir: &std::path::Path, base: String) -> Job {
        Job {
            task: TaskId::new("a"),
            attempt: 1,
            message: "a\n\nOrch-Task: a\n".into(),
            files: vec![ProjectPath::new("a.txt").unwrap()],
            how: How::Shared(committer.clone()),
            base,
            judged: run_dir.join("baseline"),
        }
    }

    #[test]
    fn a_commit_is_made_on_the_engines_tip_and_known_before_the_branch_moves() {
        let (_dir, committer, run_dir, _) = setup();
        let (mut made, ours) = (Made::default(), Ours::default());
        let base = committer.tip().unwrap();
        let done = run_job(job(&committer, &run_dir, base), &mut made, &ours);
        let commit = done.commit.unwrap().unwrap();
        assert_eq!(committer.tip().unwrap(), commit);
        assert!(ours.lock().unwrap().contains(&commit));
        assert_eq!(made.last.as_deref(), Some(commit.as_str()));
    }

    #[test]
    fn a_branch_moved_by_someone_else_is_never_built_on() {
        let (_dir, committer, run_dir, _) = setup();
        let (mut made, ours) = (Made::default(), Ours::default());
        // The journal's idea of the tip is not the branch's: someone moved it.
        let done = run_job(job(&committer, &run_dir, "0".repeat(40)), &mut made, &ours);
        let why = done.commit.unwrap_err();
        assert!(why.contains("moved under the engine"), "{why}");
        assert!(ours.lock().unwrap().is_empty());
    }

    #[test]
    fn a_file_changed_after_the_judge_passed_it_is_not_committed() {
        let (_dir, committer, run_dir, file) = setup();
        let (mut made, ours) = (Made::default(), Ours::default());
        let base = committer.tip().unwrap();
        std::fs::write(&file, "changed since\n").unwrap();
        let done = run_job(job(&committer, &run_dir, base.clone()), &mut made, &ours);
        let why = done.commit.unwrap_err();
        assert!(
            why.contains("a.txt changed after the judge passed it"),
            "{why}"
        );
        assert_eq!(committer.tip().unwrap(), base, "nothing committed");
    }

    #[test]
    fn commits_in_a_row_build_on_the_kept_index_and_read_the_tree_again_after_a_failure() {
        let (_dir, committer, run_dir, _) = setup();
        let root = committer.root().to_path_buf();
        let (mut made, ours) = (Made::default(), Ours::default());
        // Every file of the commit's tree, not only what it changed.
        let files_of = |commit: &str| {
            let listed = git(&root, &["ls-tree", "-r", "--name-only", commit]);
            let mut files: Vec<String> = listed.lines().map(String::from).collect();
            files.sort();
            files
        };
        run_job(
            job(&committer, &run_dir, committer.tip().unwrap()),
            &mut made,
            &ours,
        )
        .commit
        .unwrap()
        .unwrap();
        // The next task's file, on the first commit through the index it left.
        std::fs::write(root.join("b.txt"), "b\n").unwrap();
        std::fs::write(run_dir.join("baseline/b.txt"), "b\n").unwrap();
        let mut b = job(&committer, &run_dir, String::new());
        b.task = TaskId::new("b");
        b.files = vec![ProjectPath::new("b.txt").unwrap()];
        let second = run_job(b, &mut made, &ours).commit.unwrap().unwrap();
        assert_eq!(files_of(&second), [".gitignore", "a.txt", "b.txt"]);
        assert_eq!(made.last.as_deref(), Some(second.as_str()));

        // Someone commits on the branch: the engine's next commit is refused, and one on the
        // new tip (as a resumed engine would make) holds their file too, not the old tree.
        std::fs::write(root.join("c.txt"), "theirs\n").unwrap();
        git(&root, &["add", "c.txt"]);
        git(&root, &["commit", "-qm", "theirs"]);
        let theirs = committer.tip().unwrap();
        std::fs::write(root.join("a.txt"), "judged again\n").unwrap();
        std::fs::write(run_dir.join("baseline/a.txt"), "judged again\n").unwrap();
        let refused = run_job(job(&committer, &run_dir, String::new()), &mut made, &ours);
        let why = refused.commit.unwrap_err();
        assert!(why.contains("moved under the engine"), "{why}");
        assert_eq!(committer.tip().unwrap(), theirs);
        // The commit it made and announced, never on the branch, is not taken for its own.
        assert_eq!(
            ours.lock().unwrap().len(),
            2,
            "the two commits made, no third"
        );
        made.last = None;
        let on_theirs = run_job(job(&committer, &run_dir, theirs.clone()), &mut made, &ours)
            .commit
            .unwrap()
            .unwrap();
        assert_eq!(
            files_of(&on_theirs),
            [".gitignore", "a.txt", "b.txt", "c.txt"]
        );
        assert_eq!(committer.tip().unwrap(), on_theirs);
    }

    #[test]
    fn a_file_committed_again_is_read_again_whatever_the_repository_says_of_stat() {
        let (_dir, committer, run_dir, file) = setup();
        let root = committer.root().to_path_buf();
        // Would have the kept index take what it added as unchanged ever after.
        git(&root, &["config", "core.ignoreStat", "true"]);
        let (mut made, ours) = (Made::default(), Ours::default());
        let base = committer.tip().unwrap();
        run_job(job(&committer, &run_dir, base), &mut made, &ours)
            .commit
            .unwrap()
            .unwrap();
        std::fs::write(&file, "judged again\n").unwrap();
        std::fs::write(run_dir.join("baseline/a.txt"), "judged again\n").unwrap();
        let again = run_job(job(&committer, &run_dir, String::new()), &mut made, &ours)
            .commit
            .unwrap()
            .unwrap();
        assert_eq!(
            git(&root, &["show", &format!("{again}:a.txt")]),
            "judged again\n"
        );
    }

    #[test]
    fn a_branch_another_git_holds_for_a_moment_is_waited_for() {
        let (_dir, committer, run_dir, _) = setup();
        let root = committer.root().to_path_buf();
        let common = git(
            &root,
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        );
        let common = PathBuf::from(common.trim());
        // As `git reset` or `update-ref` holds it: the ref's lock file, let go a little later.
        let lock = common.join("refs/heads/orch/r1.lock");
        let (mut made, ours) = (Made::default(), Ours::default());
        let base = committer.tip().unwrap();
        std::fs::write(&lock, "").unwrap();
        // Held longer than git's own 100 ms: the scenario, not a wait for something.
        let letting_go = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            std::fs::remove_file(&lock).unwrap();
        });
        let done = run_job(job(&committer, &run_dir, base), &mut made, &ours);
        letting_go.join().unwrap();
        let commit = done.commit.unwrap().unwrap();
        assert_eq!(committer.tip().unwrap(), commit);
    }
}
