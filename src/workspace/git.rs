//! git for a run's workspace: the user's repository and the run's worktree, always through
//! orch's hardened command ([`crate::git::command`]: no hooks, no filters, no config but the
//! repository's own), and, for the commits orch makes, a temporary index of its own so that
//! neither the user's index nor the worktree's is ever what a commit is built from.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;

/// git in the work tree `root` (the user's checkout, or the run's worktree), with `index`
/// as its index when given (`GIT_INDEX_FILE`).
#[derive(Debug, Clone)]
pub struct Git {
    pub root: PathBuf,
    index: Option<PathBuf>,
    /// Whether the repository's objects are SHA-256 ones (asked once, not per command).
    sha256: bool,
}

impl Git {
    pub fn at(root: &Path) -> Git {
        Git {
            root: root.to_path_buf(),
            index: None,
            sha256: crate::git::RepoDirs::of(root).is_some_and(|r| r.is_sha256()),
        }
    }

    /// The same work tree with a temporary index of orch's own at `index`.
    pub fn with_index(&self, index: &Path) -> Git {
        Git {
            root: self.root.clone(),
            index: Some(index.to_path_buf()),
            sha256: self.sha256,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = crate::git::in_work_tree(&self.root, self.sha256);
        if let Some(index) = &self.index {
            cmd.env("GIT_INDEX_FILE", index);
            // orch's index is kept from one commit to the next (see commit.rs): a file is
            // hashed again unless its full stat says it is unchanged, whatever the repository
            // says (`core.ignoreStat` would mark what is added as assumed unchanged, and a
            // minimal stat check misses a rewrite of the same size that kept its mtime).
            cmd.args([
                "-c",
                "core.ignoreStat=false",
                "-c",
                "core.checkStat=default",
                "-c",
                "core.trustctime=true",
            ]);
        }
        cmd
    }

    /// Runs `git ARGS`, its standard output trimmed of the last newline.
    pub fn run<I, S>(&self, args: I) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_with(args, None, &[])
    }

    /// `run` with `input` on its standard input and `env` set.
    pub fn run_with<I, S>(
        &self,
        args: I,
        input: Option<&[u8]>,
        env: &[(String, String)],
    ) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut cmd = self.command();
        cmd.args(&args);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let shown = || {
            args.iter()
                .take(3)
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run git {} (is git installed?)", shown()))?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(input)
                .with_context(|| format!("cannot write to git {}", shown()))?;
        }
        let out = child
            .wait_with_output()
            .with_context(|| format!("git {} did not finish", shown()))?;
        if !out.status.success() {
            anyhow::bail!(
                "git {} in {} failed: {}",
                shown(),
                self.root.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    }

    /// Whether `git ARGS` succeeds (its output unused).
    pub fn ok<I, S>(&self, args: I) -> bool
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    /// The commit `rev` names, if any.
    pub fn commit_of(&self, rev: &str) -> Option<String> {
        self.run(["rev-parse", "--verify", "-q", &format!("{rev}^{{commit}}")])
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// The tree of commit `rev`.
    pub fn tree_of(&self, rev: &str) -> anyhow::Result<String> {
        self.run(["rev-parse", "--verify", &format!("{rev}^{{tree}}")])
    }
}

/// Who orch's commits are by (see [`crate::git::identity`]), read again after a few seconds:
/// it took two of the ten git processes of every accepted task's commit (see BENCHMARKS.md),
/// and a `user.name` changed during a run is still taken soon.
pub(super) fn identity(root: &Path) -> Vec<(String, String)> {
    type Known = std::collections::HashMap<PathBuf, (std::time::Instant, Vec<(String, String)>)>;
    static KNOWN: std::sync::Mutex<Option<Known>> = std::sync::Mutex::new(None);
    const FRESH: std::time::Duration = std::time::Duration::from_secs(10);
    let mut known = KNOWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let known = known.get_or_insert_with(Known::new);
    if let Some((at, ident)) = known.get(root)
        && at.elapsed() < FRESH
    {
        return ident.clone();
    }
    let ident = crate::git::identity(root);
    known.insert(
        root.to_path_buf(),
        (std::time::Instant::now(), ident.clone()),
    );
    ident
}

/// A commit of `tree` on `parent` with `message`, by `ident`.
pub(super) fn commit_tree(
    git: &Git,
    tree: &str,
    parent: &str,
    message: &str,
    ident: &[(String, String)],
) -> anyhow::Result<String> {
    // The message on stdin: it names the task, and nothing of a task is put on a command line.
    git.run_with(
        ["commit-tree", tree, "-p", parent, "-F", "-"],
        Some(message.as_bytes()),
        ident,
    )
}

/// The trailers of a commit message (`Key: value` lines of its last paragraph).
pub(super) fn trailers(message: &str) -> Vec<(String, String)> {
    let last = message.trim_end().rsplit("\n\n").next().unwrap_or_default();
    last.lines()
        .filter_map(|line| {
            let (k, v) = line.split_once(": ")?;
            (!k.is_empty() && !k.contains(' ')).then(|| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}
