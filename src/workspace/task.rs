//! `isolation: task`: each task of a worktree run works in a linked worktree of its own,
//! `<project>/.orch/worktrees/<run-id>-tasks/<task>`, on a detached `HEAD` at the run branch's
//! tip when it starts (so it holds the commits of the tasks it depends on, accepted before it
//! launched), and one task's tests never see another task's half-written files.
//!
//! - [`TaskRepo::prepare`] makes the task's worktree: a full checkout, because the task's
//!   gates and tests need the whole tree (BENCHMARKS.md has what that costs on a big project
//!   and the options measured against it).
//! - [`TaskRepo::collect`] takes the task's work back as ONE commit on the run branch: the
//!   worktree's whole content is written as a tree through a temporary index (a copy of the
//!   worktree's own, so unchanged files are not hashed again), compared with the commit the
//!   task started from, and of what changed exactly the owned files go into a commit on the
//!   run branch's current tip, built with plumbing in a second temporary index; the branch moves
//!   with `update-ref` given its old value, so collects of independent tasks running at the same
//!   time each land (one that lost the race rebuilds on the new tip). Every other change found
//!   in the worktree is returned as a [`Finding`]: this is ownership checked exactly at the
//!   point the work is taken, whatever the live watcher saw or missed.
//! - [`TaskRepo::discard`] removes a task's worktree (after collect, or for a failed task once
//!   its files are kept elsewhere).
//!
//! The task worktrees are not on a branch: `orch/<run-id>/<task>` cannot exist next to the run
//! branch `orch/<run-id>` (a ref cannot be both a file and a directory), and a task's work only
//! counts once collected onto the run branch, so a branch per task would only be one more thing
//! to clean up.
//!
//! What counts as a change is judged by the ignore rules of the task's start, as the watcher
//! and the sweep judge it ([`crate::watch::Ignore`], frozen): a `.gitignore` the task plants
//! or edits hides nothing (and is itself reported), and `ownership.ignore`'s globs are left
//! alone. Owned files are taken whatever the rules say, as the run's own commits take them.
//!
//! Every git command is the hardened one of [`crate::git`], with no attributes read (no filter
//! runs, and bytes go in and out of the task worktree unchanged) and the user's global excludes
//! file honoured, as the snapshot does.
//!
//! The engine's side (when each is called, what is journaled) is `src/engine/isolation.rs`.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::git::RepoDirs;
use crate::paths::ProjectPath;
use crate::plan::TaskId;

/// How many times a collect rebuilds its commit on a run branch that moved under it before
/// giving up: each retry means another collect landed, so this is only reached when something
/// keeps moving the branch.
const COLLECT_TRIES: u32 = 32;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(
        "`git {what}` failed in {}: {stderr}\n\
         Check that the repository is intact (`git fsck`) and that the path is not in use, \
         then run the command again.", dir.display()
    )]
    Git {
        what: String,
        dir: PathBuf,
        stderr: String,
    },
    #[error("`ownership.ignore` has a bad glob `{}`: {}; fix it in orch.yaml", .0.glob, .0.reason)]
    Ignore(crate::watch::IgnoreError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "task id `{0}` cannot name a worktree (letters, digits, `-`, `_`, `.`, at most 64, not \
         starting with `.`): fix the plan"
    )]
    UnsafeTask(String),
    #[error(
        "a task worktree is already at {}: discard it first (`git worktree remove --force {}`) \
         or collect what it holds", .0.display(), .0.display()
    )]
    Exists(PathBuf),
    #[error(
        "the run branch `{0}` does not exist: the run's worktree was discarded or the branch \
         deleted; start a new run (`orch up`)"
    )]
    NoBranch(String),
    #[error(
        "task {task}'s commit could not be put on `{branch}`: the branch moved {tries} times \
         while it was being made. Nothing was lost (the task's worktree is untouched): collect \
         it again once nothing else moves the branch"
    )]
    Contended {
        task: String,
        branch: String,
        tries: u32,
    },
}

/// One run's repository, as the task worktrees see it.
#[derive(Debug, Clone)]
pub struct TaskRepo {
    /// A work tree of the project's repository where git is run (the run's worktree).
    pub repo: PathBuf,
    /// The project's `.orch/`.
    pub state_dir: PathBuf,
    pub run_id: String,
    /// The run branch, `orch/<run-id>` (without `refs/heads/`).
    pub branch: String,
    /// Where temporary indexes live for a moment (the run directory): never in a worktree.
    pub scratch: PathBuf,
    /// `ownership.ignore`: paths no task is reported for.
    pub ignore_globs: Vec<String>,
}

/// A task's worktree and the commit it started from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskWorktree {
    pub task: TaskId,
    pub path: PathBuf,
    /// The run branch's tip when the worktree was made; what the task's changes are measured
    /// against (whatever it does to its own `HEAD`).
    pub start: String,
}

/// A change in a task worktree to a file the task does not own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub path: String,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Added,
    Modified,
    Deleted,
    /// A file became a symlink or the reverse, or its executable bit changed.
    TypeChanged,
}

/// What [`TaskRepo::collect`] took back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collected {
    /// The task's commit on the run branch; None when none of its owned files changed.
    pub commit: Option<String>,
    /// The owned files the commit holds (added, changed or deleted), sorted.
    pub files: Vec<String>,
    /// Every other change in the task's worktree, sorted by path: none of it is in the commit.
    pub findings: Vec<Finding>,
}

/// A task worktree's changes at one moment ([`TaskRepo::inspect`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspected {
    /// The worktree's content as a tree object.
    pub tree: String,
    /// The owned files that changed since the start, sorted.
    pub files: Vec<String>,
    /// Every other change, sorted by path.
    pub findings: Vec<Finding>,
}

/// `<project>/.orch/worktrees/<run-id>-tasks`: the run's task worktrees.
pub fn tasks_dir(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir.join("worktrees").join(format!("{run_id}-tasks"))
}

impl TaskRepo {
    pub fn new(repo: &Path, state_dir: &Path, run_id: &str, scratch: &Path) -> TaskRepo {
        TaskRepo {
            repo: repo.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            run_id: run_id.to_string(),
            branch: crate::workspace::branch_name(run_id),
            scratch: scratch.to_path_buf(),
            ignore_globs: Vec::new(),
        }
    }

    /// With `ownership.ignore`'s globs.
    pub fn with_ignore(mut self, globs: &[String]) -> TaskRepo {
        self.ignore_globs = globs.to_vec();
        self
    }

    pub fn task_path(&self, task: &TaskId) -> PathBuf {
        tasks_dir(&self.state_dir, &self.run_id).join(task.as_str())
    }

    /// The run branch's tip.
    pub fn tip(&self) -> Result<String, TaskError> {
        let spec = format!("refs/heads/{}^{{commit}}", self.branch);
        let out = self
            .git(&self.repo)
            .args(["rev-parse", "--verify", "--quiet", &spec])
            .output()
            .map_err(io(&self.repo))?;
        let tip = text(&out.stdout);
        if !out.status.success() || tip.is_empty() {
            return Err(TaskError::NoBranch(self.branch.clone()));
        }
        Ok(tip)
    }

    /// Makes the task's worktree at the run branch's tip, fully checked out.
    pub fn prepare(&self, task: &TaskId) -> Result<TaskWorktree, TaskError> {
        if !task.is_safe() {
            return Err(TaskError::UnsafeTask(task.to_string()));
        }
        let path = self.task_path(task);
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(TaskError::Exists(path));
        }
        let parent = tasks_dir(&self.state_dir, &self.run_id);
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        let start = self.tip()?;
        let mut cmd = self.git(&self.repo);
        // A checkout worker per core: the files' creation, not git, is the cost (see
        // BENCHMARKS.md, *Task worktrees*), and in parallel it took a seventh of the time.
        cmd.args(["-c", "checkout.workers=0"])
            .args(["worktree", "add", "--quiet", "--detach"])
            .arg(&path)
            .arg(&start);
        run(cmd, &self.repo, "worktree add", None)?;
        // Its index as git wrote it, before any agent could touch it: what each look at the
        // worktree starts from (see `worktree_tree`).
        let private = self.private_index(task);
        let _ = std::fs::create_dir_all(&self.scratch);
        let copied = RepoDirs::of(&path)
            .map(|dirs| dirs.git_dir.join("index"))
            .is_some_and(|own| std::fs::copy(own, &private).is_ok());
        if !copied {
            let _ = std::fs::remove_file(&private);
        }
        Ok(TaskWorktree {
            task: task.clone(),
            path,
            start,
        })
    }

    /// Where the engine keeps its own copy of a task worktree's index, made when the worktree
    /// was: in the run directory, which no agent can write.
    fn private_index(&self, task: &TaskId) -> PathBuf {
        self.scratch.join(format!("index.tree-{}", task.as_str()))
    }

    /// Takes the task's owned files back as one commit on the run branch (see the module's
    /// doc); `message` is the commit's whole message, trailers included. [`TaskRepo::inspect`]
    /// then [`TaskRepo::commit`], for a caller with nothing to decide in between.
    pub fn collect(
        &self,
        tw: &TaskWorktree,
        owned: &[ProjectPath],
        message: &str,
    ) -> Result<Collected, TaskError> {
        self.collect_announcing(tw, owned, message, &|_| {})
    }

    /// `collect`, telling `announce` the new commit before the branch moves to it.
    pub fn collect_announcing(
        &self,
        tw: &TaskWorktree,
        owned: &[ProjectPath],
        message: &str,
        announce: &dyn Fn(&str),
    ) -> Result<Collected, TaskError> {
        let inspected = self.inspect(tw, owned)?;
        if inspected.files.is_empty() {
            return Ok(Collected {
                commit: None,
                files: inspected.files,
                findings: inspected.findings,
            });
        }
        let entries = self.index_info(&inspected.tree, &inspected.files)?;
        let commit = self.commit_on_branch(tw, &entries, message, announce)?;
        Ok(Collected {
            commit,
            files: inspected.files,
            findings: inspected.findings,
        })
    }

    /// What the task changed, owned or not, without committing anything: for an engine that
    /// checks ownership when the task's agent ends (its gate) and commits only once the judge
    /// passed it. The tree is the worktree's content at this moment: [`TaskRepo::commit`]
    /// takes the owned files as they were then.
    pub fn inspect(
        &self,
        tw: &TaskWorktree,
        owned: &[ProjectPath],
    ) -> Result<Inspected, TaskError> {
        let owned: BTreeSet<&str> = owned.iter().map(ProjectPath::as_str).collect();
        let ignore = self.start_rules(tw)?;
        let tree = self.worktree_tree(tw, &owned, &ignore)?;
        let mut files = Vec::new();
        let mut findings = Vec::new();
        for (change, path) in self.changes(&tw.start, &tree)? {
            if owned.contains(path.as_str()) {
                files.push(path);
            } else if !ignore.is_ignored(&path, false) {
                findings.push(Finding { path, change });
            }
        }
        Ok(Inspected {
            tree,
            files,
            findings,
        })
    }

    /// Commits the owned files an inspection found changed on the run branch's tip; None when
    /// there were none (or the tip already holds them as they are).
    pub fn commit(
        &self,
        tw: &TaskWorktree,
        inspected: &Inspected,
        message: &str,
    ) -> Result<Option<String>, TaskError> {
        if inspected.files.is_empty() {
            return Ok(None);
        }
        let entries = self.index_info(&inspected.tree, &inspected.files)?;
        self.commit_on_branch(tw, &entries, message, &|_| {})
    }

    /// Brings a checkout of the run branch (the run's worktree) up to its tip after collects
    /// moved it: a one-tree `read-tree -m -u`, which writes only what changed and refuses
    /// rather than overwrite a file changed in that checkout.
    pub fn update_checkout(&self, checkout: &Path) -> Result<(), TaskError> {
        let mut cmd = self.git(checkout);
        cmd.args(["read-tree", "-m", "-u", "HEAD"]);
        run(cmd, checkout, "read-tree -m -u HEAD", None).map(drop)
    }

    /// Brings a checkout of the run branch (the run's worktree) to the branch's tip, its index
    /// and its files, whatever its index says now (behind by the commits collected from the
    /// tasks, or by one the engine died before following, or ahead of its files after a commit
    /// made from them, such as the specs'). Only what differs from the tip is written (or
    /// removed); a file there whose content is neither what its index had nor the tip's (a
    /// change made in the run's worktree) is first copied into `save_dir`. Returns the files
    /// so saved.
    pub fn sync_checkout(
        &self,
        checkout: &Path,
        save_dir: &Path,
    ) -> Result<Vec<String>, TaskError> {
        let mut cmd = self.git(checkout);
        cmd.args([
            "diff-index",
            "--cached",
            "-z",
            "--name-only",
            "--no-renames",
            "HEAD",
        ]);
        let differ = run(cmd, checkout, "diff-index", None)?;
        let paths: Vec<String> = differ
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        let mut write = Vec::new();
        let mut remove = Vec::new();
        let mut saved = Vec::new();
        for path in &paths {
            let tip = self.blob(checkout, &format!("HEAD:{path}"))?;
            let indexed = self.blob(checkout, &format!(":{path}"))?;
            let current = match std::fs::symlink_metadata(checkout.join(path)) {
                Err(_) => None,
                Ok(meta) if meta.is_dir() => None,
                Ok(_) => Some(crate::paths::read_inside(checkout, path).map_err(io(checkout))?),
            };
            if current.is_some() && current == tip {
                continue; // as the tip has it already (a file the commit was made from)
            }
            if current.is_some() && current != indexed {
                crate::snapshot::save_copy(checkout, path, save_dir).map_err(|e| {
                    TaskError::Io {
                        path: checkout.join(path),
                        source: std::io::Error::other(format!("{e:#}")),
                    }
                })?;
                saved.push(path.clone());
            }
            if tip.is_some() {
                write.push(path.clone());
            } else {
                remove.push(path.clone());
            }
        }
        let mut cmd = self.git(checkout);
        cmd.args(["reset", "-q"]);
        run(cmd, checkout, "reset", None)?;
        for path in &remove {
            let file = checkout.join(path);
            if std::fs::symlink_metadata(&file).is_ok_and(|m| !m.is_dir()) {
                std::fs::remove_file(&file).map_err(io(&file))?;
            }
        }
        if !write.is_empty() {
            let mut input = Vec::new();
            for path in &write {
                input.extend_from_slice(path.as_bytes());
                input.push(0);
            }
            let mut cmd = self.git(checkout);
            cmd.args(["checkout-index", "-f", "-z", "--stdin"]);
            run(cmd, checkout, "checkout-index", Some(&input))?;
        }
        Ok(saved)
    }

    /// Whether `path` in a checkout of the run branch is as the branch's tip has it (absent
    /// included): the run's worktree under `isolation: task` is the engine's to keep so.
    pub fn matches_tip(&self, checkout: &Path, path: &str) -> bool {
        let current = match std::fs::symlink_metadata(checkout.join(path)) {
            Err(_) => None,
            Ok(meta) if meta.is_dir() => return false,
            Ok(_) => match crate::paths::read_inside(checkout, path) {
                Ok(content) => Some(content),
                Err(_) => return false,
            },
        };
        self.blob(checkout, &format!("HEAD:{path}"))
            .is_ok_and(|tip| tip == current)
    }

    /// The content of the blob `spec` names (`HEAD:path`, `:path` for the index) as a file
    /// of that mode holds it; None when there is none.
    fn blob(&self, dir: &Path, spec: &str) -> Result<Option<Vec<u8>>, TaskError> {
        let mut cmd = self.git(dir);
        cmd.args(["cat-file", "blob", spec]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        let out = cmd.output().map_err(io(dir))?;
        Ok(out.status.success().then_some(out.stdout))
    }

    /// Removes the task's worktree and git's record of it, whatever it holds.
    pub fn discard(&self, tw: &TaskWorktree) -> Result<(), TaskError> {
        let _ = std::fs::remove_file(self.private_index(&tw.task));
        self.remove_worktree(&tw.path)?;
        // The run's directory of them too, once the last is gone (a directory left in it by
        // hand is the user's).
        let _ = std::fs::remove_dir(tasks_dir(&self.state_dir, &self.run_id));
        Ok(())
    }

    /// Removes every task worktree of the run (`orch discard`, or the end of a run).
    pub fn discard_all(&self) -> Result<(), TaskError> {
        for path in self.task_worktrees()? {
            if let Some(task) = path.file_name().and_then(|n| n.to_str()) {
                let _ = std::fs::remove_file(self.private_index(&TaskId::new(task)));
            }
            self.remove_worktree(&path)?;
        }
        let dir = tasks_dir(&self.state_dir, &self.run_id);
        // Only once empty: a directory left in it by hand is the user's.
        let _ = std::fs::remove_dir(&dir);
        Ok(())
    }

    /// The task worktrees git knows of for this run.
    pub fn task_worktrees(&self) -> Result<Vec<PathBuf>, TaskError> {
        let mut cmd = self.git(&self.repo);
        cmd.args(["worktree", "list", "--porcelain", "-z"]);
        let out = run(cmd, &self.repo, "worktree list", None)?;
        let dir = tasks_dir(&self.state_dir, &self.run_id);
        let dir = dir.canonicalize().unwrap_or(dir);
        Ok(out
            .split(|&b| b == 0)
            .filter_map(|field| field.strip_prefix(b"worktree "))
            .map(|p| PathBuf::from(OsStr::from_bytes(p)))
            // git may keep the path as given or resolved: compare both ways.
            .filter(|p| {
                p.parent().is_some_and(|parent| {
                    parent == dir || parent.canonicalize().is_ok_and(|c| c == dir)
                })
            })
            .collect())
    }

    fn remove_worktree(&self, path: &Path) -> Result<(), TaskError> {
        let ours = tasks_dir(&self.state_dir, &self.run_id);
        if std::fs::symlink_metadata(path).is_ok() {
            let mut cmd = self.git(&self.repo);
            // Twice: also when the worktree is locked.
            cmd.args(["worktree", "remove", "--force", "--force"])
                .arg(path);
            if let Err(e) = run(cmd, &self.repo, "worktree remove", None) {
                // Not a worktree git knows (an engine killed within `worktree add`): a
                // directory of ours all the same, removed as one.
                if !path.starts_with(&ours) {
                    return Err(e);
                }
                std::fs::remove_dir_all(path).map_err(io(path))?;
            }
        }
        // A worktree whose directory went missing leaves a record behind: this one's alone
        // is removed (`git worktree prune` would forget the user's own worktrees on a disk
        // not mounted now).
        self.forget(path)
    }

    /// Removes git's record of the worktree that was at `path`, if it has one.
    fn forget(&self, path: &Path) -> Result<(), TaskError> {
        forget_worktree(&self.repo, path).map_err(io(path))
    }

    /// What `path` held at the task's start, as git keeps it (content and mode: a symlink's
    /// content is its target); None when it did not exist then. What a revert in the task's
    /// worktree puts back, and what a write is compared with.
    pub fn original(
        &self,
        tw: &TaskWorktree,
        path: &str,
    ) -> Result<Option<(Vec<u8>, u32)>, TaskError> {
        let mut cmd = self.git(&self.repo);
        cmd.env("GIT_LITERAL_PATHSPECS", "1").args([
            "ls-tree",
            "-z",
            "--full-tree",
            &tw.start,
            "--",
            path,
        ]);
        let listed = run(cmd, &self.repo, "ls-tree", None)?;
        let listed = String::from_utf8_lossy(&listed).into_owned();
        let Some((meta, listed_path)) = listed.trim_end_matches('\0').split_once('\t') else {
            return Ok(None);
        };
        let mut parts = meta.split(' ');
        let (Some(mode), Some("blob"), Some(oid)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None); // a directory (or a submodule) there: no file content
        };
        if listed_path != path {
            return Ok(None);
        }
        let mode = u32::from_str_radix(mode, 8).unwrap_or(0o100_644);
        let mut cmd = self.git(&self.repo);
        cmd.args(["cat-file", "blob", oid]);
        Ok(Some((run(cmd, &self.repo, "cat-file", None)?, mode)))
    }

    /// The ignore rules of the task's start: each `.gitignore` as the start commit holds it,
    /// `.git/info/exclude` (guarded while agents work), the user's excludes, `ownership.ignore`.
    pub fn start_rules(&self, tw: &TaskWorktree) -> Result<crate::watch::Ignore, TaskError> {
        let ignore =
            crate::watch::Ignore::new(&tw.path, &self.ignore_globs).map_err(TaskError::Ignore)?;
        let (repo, start) = (self.clone(), tw.start.clone());
        let gitignore = Box::new(move |dir: &str| {
            let file = if dir.is_empty() {
                ".gitignore".to_string()
            } else {
                format!("{dir}/.gitignore")
            };
            let mut cmd = repo.git(&repo.repo);
            cmd.env("GIT_LITERAL_PATHSPECS", "1")
                .args(["ls-tree", "-z", &start, "--", &file]);
            let listed = run(cmd, &repo.repo, "ls-tree", None).ok()?;
            let listed = String::from_utf8_lossy(&listed).into_owned();
            let mut parts = listed.split(['\t', ' ']);
            let (mode, kind, oid) = (parts.next()?, parts.next()?, parts.next()?);
            // git does not follow a symlinked .gitignore.
            if kind != "blob" || mode == "120000" {
                return None;
            }
            let mut cmd = repo.git(&repo.repo);
            cmd.args(["cat-file", "blob", oid]);
            run(cmd, &repo.repo, "cat-file", None).ok()
        });
        ignore.freeze(
            gitignore,
            crate::watch::Ignore::exclude_now(&tw.path).as_deref(),
        );
        Ok(ignore)
    }

    /// The task worktree's content as a tree: what git does not ignore, what it ignores now
    /// but did not at the start, and the owned files whatever the rules.
    fn worktree_tree(
        &self,
        tw: &TaskWorktree,
        owned: &BTreeSet<&str>,
        ignore: &crate::watch::Ignore,
    ) -> Result<String, TaskError> {
        let index = TempIndex::new(&self.scratch, tw.task.as_str())?;
        // From the engine's own copy of the index git wrote with the worktree, so that only
        // the files changed since (by their ctime, which nobody can set back) are hashed again;
        // never from the worktree's own index, which its agent can write: an entry with a
        // file's times but another blob would put that blob in the commit, unseen by the
        // gates and the judge. Without the copy, from the start: every file hashed.
        let copied = std::fs::copy(self.private_index(&tw.task), &index.0).is_ok();
        if !copied {
            let mut cmd = self.git_with_index(&tw.path, &index.0);
            cmd.args(["read-tree", &tw.start]);
            run(cmd, &tw.path, "read-tree", None)?;
        }
        let mut cmd = self.git_with_index(&tw.path, &index.0);
        cmd.args(["add", "--all", "--", "."]);
        run(cmd, &tw.path, "add --all", None)?;

        let mut cmd = self.git_with_index(&tw.path, &index.0);
        cmd.args([
            "ls-files",
            "-z",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
        ]);
        let hidden = run(cmd, &tw.path, "ls-files --ignored", None)?;
        let mut more: BTreeSet<String> = owned.iter().map(|p| (*p).to_string()).collect();
        for entry in hidden.split(|&b| b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            let is_dir = entry.ends_with('/');
            let rel = entry.trim_end_matches('/');
            if ignore.is_ignored(rel, is_dir) {
                continue; // ignored at the start too
            }
            if is_dir {
                more.extend(crate::watch::files_under(&tw.path, rel, ignore));
            } else {
                more.insert(rel.to_string());
            }
        }
        let mut input = Vec::new();
        for path in &more {
            input.extend_from_slice(path.as_bytes());
            input.push(0);
        }
        let mut cmd = self.git_with_index(&tw.path, &index.0);
        cmd.args(["update-index", "--add", "--remove", "-z", "--stdin"]);
        run(cmd, &tw.path, "update-index --add --remove", Some(&input))?;

        let mut cmd = self.git_with_index(&tw.path, &index.0);
        cmd.arg("write-tree");
        Ok(text(&run(cmd, &tw.path, "write-tree", None)?))
    }

    /// What differs between a commit and a tree: `(change, path)`, sorted by path.
    fn changes(&self, start: &str, tree: &str) -> Result<Vec<(Change, String)>, TaskError> {
        let mut cmd = self.git(&self.repo);
        cmd.args([
            "diff-tree",
            "-r",
            "-z",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            "--name-status",
            start,
            tree,
        ]);
        let out = run(cmd, &self.repo, "diff-tree", None)?;
        let mut fields = out.split(|&b| b == 0).filter(|f| !f.is_empty());
        let mut changes = Vec::new();
        while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
            let change = match status.first() {
                Some(b'A') => Change::Added,
                Some(b'D') => Change::Deleted,
                Some(b'T') => Change::TypeChanged,
                _ => Change::Modified,
            };
            changes.push((change, String::from_utf8_lossy(path).into_owned()));
        }
        Ok(changes)
    }

    /// `update-index --index-info` input that sets `files` as `tree` has them (a file absent
    /// from it is removed).
    fn index_info(&self, tree: &str, files: &[String]) -> Result<Vec<u8>, TaskError> {
        let mut cmd = self.git(&self.repo);
        cmd.env("GIT_LITERAL_PATHSPECS", "1")
            .args(["ls-tree", "-r", "-z", "--full-tree", tree, "--"])
            .args(files);
        let out = run(cmd, &self.repo, "ls-tree", None)?;
        let mut present = BTreeSet::new();
        let mut input = Vec::new();
        for record in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            // `<mode> <type> <oid>\t<path>`: --index-info takes `<mode> <oid>\t<path>`.
            let Some(tab) = record.iter().position(|&b| b == b'\t') else {
                continue;
            };
            let (meta, path) = (&record[..tab], &record[tab + 1..]);
            let meta = String::from_utf8_lossy(meta);
            let mut parts = meta.split(' ');
            let (Some(mode), Some(_), Some(oid)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            input.extend_from_slice(format!("{mode} {oid}\t").as_bytes());
            input.extend_from_slice(path);
            input.push(0);
            present.insert(String::from_utf8_lossy(path).into_owned());
        }
        let zero = "0".repeat(tree.len());
        for gone in files.iter().filter(|f| !present.contains(*f)) {
            // Mode 0 removes the path.
            input.extend_from_slice(format!("0 {zero}\t{gone}").as_bytes());
            input.push(0);
        }
        Ok(input)
    }

    /// Commits `entries` on the run branch's tip and moves the branch to it, compare-and-swap,
    /// again on the new tip whenever another collect got there first.
    fn commit_on_branch(
        &self,
        tw: &TaskWorktree,
        entries: &[u8],
        message: &str,
        announce: &dyn Fn(&str),
    ) -> Result<Option<String>, TaskError> {
        let refname = format!("refs/heads/{}", self.branch);
        let identity = self.identity();
        for attempt in 0..COLLECT_TRIES {
            let tip = self.tip()?;
            let index = TempIndex::new(&self.scratch, tw.task.as_str())?;
            let mut cmd = self.git_with_index(&self.repo, &index.0);
            cmd.args(["read-tree", &tip]);
            run(cmd, &self.repo, "read-tree", None)?;
            let mut cmd = self.git_with_index(&self.repo, &index.0);
            cmd.args(["update-index", "-z", "--index-info"]);
            run(cmd, &self.repo, "update-index --index-info", Some(entries))?;
            let mut cmd = self.git_with_index(&self.repo, &index.0);
            cmd.arg("write-tree");
            let tree = text(&run(cmd, &self.repo, "write-tree", None)?);
            let mut cmd = self.git(&self.repo);
            cmd.args(["rev-parse", &format!("{tip}^{{tree}}")]);
            if text(&run(cmd, &self.repo, "rev-parse", None)?) == tree {
                // The tip already holds exactly these files: nothing to commit.
                return Ok(None);
            }
            let mut cmd = self.git(&self.repo);
            cmd.envs(identity.iter().map(|(k, v)| (k, v))).args([
                "commit-tree",
                &tree,
                "-p",
                &tip,
                "-F",
                "-",
            ]);
            let commit = text(&run(
                cmd,
                &self.repo,
                "commit-tree",
                Some(message.as_bytes()),
            )?);
            announce(&commit);
            let mut cmd = self.git(&self.repo);
            cmd.args([
                "update-ref",
                "-m",
                &format!("orch: task {} collected", tw.task),
                &refname,
                &commit,
                &tip,
            ]);
            match run(cmd, &self.repo, "update-ref", None) {
                Ok(_) => return Ok(Some(commit)),
                Err(err) => {
                    if self.tip()? == tip {
                        // Not moved, so the ref was locked by another update: wait for it
                        // to finish, a little longer each time.
                        if attempt + 1 == COLLECT_TRIES {
                            return Err(err);
                        }
                        std::thread::sleep(std::time::Duration::from_millis(
                            5 * u64::from(attempt + 1),
                        ));
                    }
                }
            }
        }
        Err(TaskError::Contended {
            task: tw.task.to_string(),
            branch: self.branch.clone(),
            tries: COLLECT_TRIES,
        })
    }

    /// Who the commit is by, as for the run's own commits ([`crate::git::identity`]).
    fn identity(&self) -> Vec<(String, String)> {
        crate::git::identity(&self.repo)
    }

    /// The hardened git command in `dir`, reading no attributes and the user's excludes.
    fn git(&self, dir: &Path) -> Command {
        crate::git::in_work_tree(dir, RepoDirs::of(dir).is_some_and(|d| d.is_sha256()))
    }

    fn git_with_index(&self, dir: &Path, index: &Path) -> Command {
        let mut cmd = self.git(dir);
        cmd.env("GIT_INDEX_FILE", index);
        cmd
    }
}

/// A temporary index file in the scratch directory, removed when dropped (with its lock, if a
/// git that died left one).
struct TempIndex(PathBuf);

impl TempIndex {
    fn new(scratch: &Path, task: &str) -> Result<TempIndex, TaskError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(scratch).map_err(io(scratch))?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("index.task-{task}.{}.{n}", std::process::id());
        Ok(TempIndex(scratch.join(name)))
    }
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut lock = self.0.clone().into_os_string();
        lock.push(".lock");
        let _ = std::fs::remove_file(lock);
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TaskError + '_ {
    move |source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// Runs `cmd` (with `input` on its standard input), returning its standard output.
fn run(
    mut cmd: Command,
    dir: &Path,
    what: &str,
    input: Option<&[u8]>,
) -> Result<Vec<u8>, TaskError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(io(dir))?;
    if let Some(input) = input
        && let Some(mut stdin) = child.stdin.take()
    {
        // A git that exits early closes its end: its status says why, not this write.
        let _ = stdin.write_all(input);
    }
    let out = child.wait_with_output().map_err(io(dir))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    Err(TaskError::Git {
        what: what.to_string(),
        dir: dir.to_path_buf(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Removes the record that the repository of the work tree `repo` keeps of the linked worktree
/// that was at `path` (whose directory is gone), and only that one: `git worktree prune` would
/// also forget the user's own worktrees whose disk is not mounted now.
pub fn forget_worktree(repo: &Path, path: &Path) -> std::io::Result<()> {
    let Some(dirs) = RepoDirs::of(repo) else {
        return Ok(());
    };
    let records = dirs.common_dir.join("worktrees");
    let dot_git = path.join(".git");
    for entry in std::fs::read_dir(&records).into_iter().flatten().flatten() {
        let Ok(gitdir) = std::fs::read(entry.path().join("gitdir")) else {
            continue;
        };
        let named = PathBuf::from(OsStr::from_bytes(gitdir.trim_ascii_end()));
        // As given, or with its directories resolved (git may keep either).
        let same = named == dot_git
            || (named.file_name() == dot_git.file_name()
                && named.parent().and_then(|p| p.file_name()) == path.file_name()
                && named
                    .parent()
                    .and_then(Path::parent)
                    .and_then(|p| p.canonicalize().ok())
                    == path.parent().and_then(|p| p.canonicalize().ok()));
        if same {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
