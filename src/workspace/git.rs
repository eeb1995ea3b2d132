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
        let mut cmd = crate::git::command();
        // No attributes from the work tree: no filter can be chosen, files are taken byte for
        // byte (as the snapshot takes them).
        cmd.env("GIT_ATTR_SOURCE", crate::git::empty_tree(self.sha256));
        if let Some(index) = &self.index {
            cmd.env("GIT_INDEX_FILE", index);
        }
        if let Some(excludes) = crate::git::user_excludes_file() {
            let mut setting = std::ffi::OsString::from("core.excludesFile=");
            setting.push(excludes.as_os_str());
            cmd.arg("-c").arg(setting);
        }
        cmd.arg("-C").arg(&self.root);
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

/// Who orch's commits are by: the user's identity (their `GIT_AUTHOR_*`/`GIT_COMMITTER_*`
/// variables, else `user.name`/`user.email` of their git config, which orch's hardened
/// command does not read), else `orch <orch@localhost>`: a missing identity never fails a run.
pub(super) fn identity(root: &Path) -> Vec<(String, String)> {
    let configured = |key: &str| -> Option<String> {
        // Reading a config value runs nothing; it is the user's own config (global included)
        // that is wanted here.
        let mut cmd = Command::new("git");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("GIT_") {
                cmd.env_remove(k);
            }
        }
        let out = cmd
            .arg("-C")
            .arg(root)
            .args(["config", "--get", key])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !value.is_empty()).then_some(value)
    };
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let name = configured("user.name").unwrap_or_else(|| "orch".into());
    let email = configured("user.email").unwrap_or_else(|| "orch@localhost".into());
    let mut env = Vec::new();
    for (role, k) in [
        ("AUTHOR", "NAME"),
        ("AUTHOR", "EMAIL"),
        ("COMMITTER", "NAME"),
        ("COMMITTER", "EMAIL"),
    ] {
        let key = format!("GIT_{role}_{k}");
        let fallback = if k == "NAME" { &name } else { &email };
        env.push((key.clone(), var(&key).unwrap_or_else(|| fallback.clone())));
    }
    env
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
