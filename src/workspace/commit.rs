//! The engine's commits on a run branch: the specs, then each accepted task, each holding
//! exactly the files it names as they are in the worktree, on top of the branch's tip.
//!
//! Built with plumbing in a temporary index of orch's own (the run directory's
//! `commit.index.*`): `read-tree` of the tip, `update-index --add --remove` of the files,
//! `write-tree`, `commit-tree`, then `update-ref` from the old tip (so a branch moved under
//! the engine fails the commit rather than losing a commit). The engine's committing thread
//! keeps its index between commits ([`Staging`]): after a commit it holds that commit's tree,
//! so the next commit on it skips the `read-tree`. Nothing else of the worktree goes
//! in: a stray file, another task's half-written one. The worktree's own index is then reset
//! to the new tip (its files untouched), so `git status` there shows what is not committed.
//! No hook runs (orch's hardened git).
//!
//! Every commit carries trailers (`Orch-Run`, `Orch-Task` or `Orch-Commit: specs`, …): a
//! commit made when the engine died before journaling it is found by them on resume, and
//! journaled then, rather than made twice.

use std::path::Path;

use super::git::{Git, commit_tree, identity, trailers};
use crate::paths::ProjectPath;

/// The run directory's commit indexes are named after it: `commit.index.<pid>.<n>`.
const INDEX_FILE: &str = "commit.index";

/// Commits on one run's branch.
#[derive(Debug, Clone)]
pub struct Committer {
    worktree: Git,
    /// The temporary index, in the run directory.
    index: std::path::PathBuf,
    /// `refs/heads/orch/<run-id>`.
    branch_ref: String,
    /// The branch's first commit of the run's own (`start`): where the search for commits by
    /// their trailers stops.
    start: String,
}

/// A commit of the run found on its branch, with its trailers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub commit: String,
    pub trailers: Vec<(String, String)>,
}

impl Found {
    pub fn trailer(&self, key: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

impl Committer {
    pub fn new(info: &super::WorkspaceInfo, run_dir: &Path) -> Committer {
        Committer {
            worktree: Git::at(&info.path),
            index: run_dir.join(INDEX_FILE),
            branch_ref: format!("refs/heads/{}", info.branch),
            start: info.start.clone(),
        }
    }

    /// The worktree the commits are made from.
    pub fn root(&self) -> &std::path::Path {
        &self.worktree.root
    }

    /// The branch's tip.
    pub fn tip(&self) -> anyhow::Result<String> {
        self.worktree.commit_of(&self.branch_ref).ok_or_else(|| {
            anyhow::anyhow!(
                "the run's branch {} is gone from the repository",
                self.branch_ref.trim_start_matches("refs/heads/")
            )
        })
    }

    /// Commits `files` as they are in the worktree (a missing one as removed) on the tip,
    /// with `message`. `None` when they are exactly as the tip has them and `skip_empty`.
    pub fn commit(
        &self,
        files: &[ProjectPath],
        message: &str,
        skip_empty: bool,
    ) -> anyhow::Result<Option<String>> {
        self.commit_announcing(files, message, skip_empty, &|_| {})
    }

    /// `commit`, telling `announce` the new commit before the branch moves to it (so that
    /// whoever watches the branch knows the move for the committer's).
    pub fn commit_announcing(
        &self,
        files: &[ProjectPath],
        message: &str,
        skip_empty: bool,
        announce: &dyn Fn(&str),
    ) -> anyhow::Result<Option<String>> {
        let parent = self.tip()?;
        let mut staging = self.staging();
        self.commit_on(&mut staging, &parent, files, message, skip_empty, announce)
    }

    /// A temporary index for commits, removed when dropped.
    pub fn staging(&self) -> Staging {
        // A name of its own for each: a git left running by an engine that died (its lock
        // file with it) is never in the way of the next engine's commit.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut name = self.index.clone().into_os_string();
        name.push(format!(".{}.{n}", std::process::id()));
        Staging {
            file: TempFile(std::path::PathBuf::from(name)),
            holds: None,
        }
    }

    /// `commit_announcing` on `parent`, the tip as the caller knows it (the branch only moves
    /// to the commit if it is still there), built in `staging`.
    pub fn commit_on(
        &self,
        staging: &mut Staging,
        parent: &str,
        files: &[ProjectPath],
        message: &str,
        skip_empty: bool,
        announce: &dyn Fn(&str),
    ) -> anyhow::Result<Option<String>> {
        let staged = self.worktree.with_index(&staging.file.0);
        // Whatever fails below leaves the index holding something else.
        if staging.holds.take().as_deref() != Some(parent) {
            staged.run(["read-tree", parent])?;
        }
        let mut list = Vec::new();
        for file in files {
            list.extend_from_slice(file.as_str().as_bytes());
            list.push(0);
        }
        if !list.is_empty() {
            staged.run_with(
                ["update-index", "--add", "--remove", "-z", "--stdin"],
                Some(&list),
                &[],
            )?;
        }
        let tree = staged.run(["write-tree"])?;
        if skip_empty && tree == self.worktree.tree_of(parent)? {
            staging.holds = Some(parent.to_string());
            return Ok(None);
        }
        let commit = commit_tree(
            &self.worktree,
            &tree,
            parent,
            message,
            &identity(&self.worktree.root),
        )?;
        announce(&commit);
        // Another git may hold the branch's lock for a moment (a `git reset` in the worktree,
        // or one that an engine killed mid-commit left running): git retries for up to 2 s,
        // where its default gives up after 100 ms and the task would fail.
        let wait_for_lock = [
            ("GIT_CONFIG_COUNT".to_string(), "1".to_string()),
            (
                "GIT_CONFIG_KEY_0".to_string(),
                "core.filesRefLockTimeout".to_string(),
            ),
            ("GIT_CONFIG_VALUE_0".to_string(), "2000".to_string()),
        ];
        self.worktree.run_with(
            ["update-ref", &self.branch_ref, &commit, parent],
            None,
            &wait_for_lock,
        )?;
        staging.holds = Some(commit.clone());
        Ok(Some(commit))
    }

    /// Resets the worktree's own index to the tip, its files untouched: after a commit, so
    /// that `git status` and `git diff` in the worktree show what is not committed yet.
    pub fn reset_index(&self) -> anyhow::Result<()> {
        self.worktree.run(["reset", "-q"]).map(drop)
    }

    /// The run's own commits (after `start`), oldest first.
    pub fn commits(&self) -> anyhow::Result<Vec<Found>> {
        let range = format!("{}..{}", self.start, self.branch_ref);
        let out = self
            .worktree
            .run(["log", "--reverse", "--format=%H%x00%B%x01", &range])?;
        Ok(out
            .split('\u{1}')
            .filter_map(|entry| {
                let (commit, message) = entry.trim_start_matches('\n').split_once('\0')?;
                Some(Found {
                    commit: commit.to_string(),
                    trailers: trailers(message),
                })
            })
            .collect())
    }

    /// The files a commit changed against its parent.
    pub fn files_of(&self, commit: &str) -> anyhow::Result<Vec<String>> {
        let out = self.worktree.run([
            "diff-tree",
            "--no-commit-id",
            "--no-renames",
            "--name-only",
            "-r",
            "-z",
            commit,
        ])?;
        Ok(out
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect())
    }
}

/// A task's commit message: a subject naming it, the task's first line, the trailers.
pub fn task_message(run_id: &str, task: &TaskSummary<'_>) -> String {
    let first = task.text.lines().next().unwrap_or("").trim();
    let first: String = first.chars().take(200).collect();
    let mut message = format!("orch: task {} ({})\n\n{first}\n\n", task.id, task.agent);
    message.push_str(&format!(
        "Orch-Run: {run_id}\nOrch-Task: {}\nOrch-Agent: {}\nOrch-Attempts: {}\nOrch-Verdict: \
         {}\n",
        task.id, task.agent, task.attempts, task.verdict
    ));
    if let Some(tokens) = task.tokens {
        message.push_str(&format!("Orch-Tokens: {tokens}\n"));
    }
    if let Some(cost) = task.cost_usd {
        message.push_str(&format!("Orch-Cost: {cost:.4} USD\n"));
    }
    message
}

/// The specs commit's message.
pub fn specs_message(run_id: &str, files: &[ProjectPath]) -> String {
    format!(
        "orch: the plan's specs\n\n{}\n\nOrch-Run: {run_id}\nOrch-Commit: specs\n",
        files
            .iter()
            .map(|f| format!("- {f}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// What a task's commit message says of it.
#[derive(Debug, Clone)]
pub struct TaskSummary<'a> {
    pub id: &'a str,
    pub agent: &'a str,
    pub text: &'a str,
    pub attempts: u32,
    /// `pass`, and the judge's reason when it gave one.
    pub verdict: String,
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// Removes what commits' indexes (and their lock files) an engine that died left in
/// `run_dir`; for the engine that holds the run, before its first commit.
pub fn remove_left_indexes(run_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .and_then(|name| name.strip_prefix(INDEX_FILE))
            .is_some_and(|rest| rest.starts_with('.'))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// orch's own index for commits on a run's branch (see the module's doc).
#[derive(Debug)]
pub struct Staging {
    file: TempFile,
    /// The commit whose tree the index holds, as its last commit left it; none: unknown.
    holds: Option<String>,
}

/// A temporary index, removed (with a lock a git that died left) when dropped.
#[derive(Debug)]
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut lock = self.0.clone().into_os_string();
        lock.push(".lock");
        let _ = std::fs::remove_file(lock);
    }
}
