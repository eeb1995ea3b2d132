//! The user's repository as the review commands use it: hardened git (see `crate::git`) for
//! everything that reads or writes objects and refs, and the user's own git only for what
//! moves or reads their checkout, as if they ran it themselves (their filters and hooks).

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context as _, bail};

/// A git repository's work tree: the user's checkout, or a run's worktree.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    sha256: std::cell::OnceCell<bool>,
    ident: std::cell::OnceCell<Ident>,
}

/// Who a commit orch makes is by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub email: String,
}

/// An existing commit's author, message and tree, read from its object.
#[derive(Debug, Clone)]
pub(crate) struct CommitInfo {
    pub tree: String,
    pub parents: Vec<String>,
    /// `Name <email> <seconds> <zone>`, as in the object.
    pub author: String,
    /// The message, byte for byte.
    pub message: Vec<u8>,
}

impl Repo {
    pub fn new(root: &Path) -> Repo {
        Repo {
            root: root.to_path_buf(),
            sha256: std::cell::OnceCell::new(),
            ident: std::cell::OnceCell::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A hardened git command in this work tree, with attributes read from the empty tree,
    /// so that no attribute (one an agent committed, say) picks a merge driver or a filter.
    pub(crate) fn cmd(&self) -> Command {
        crate::git::in_work_tree(&self.root, self.is_sha256())
    }

    fn is_sha256(&self) -> bool {
        *self.sha256.get_or_init(|| {
            crate::git::RepoDirs::of(&self.root).is_some_and(|dirs| dirs.is_sha256())
        })
    }

    /// The user's own git in this work tree: their config, filters and hooks, as if they
    /// typed the command, but always on this work tree whatever `GIT_DIR` they have set.
    pub(crate) fn user_cmd(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.root)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env_remove("GIT_COMMON_DIR");
        cmd
    }

    /// Runs a hardened git command that must succeed; its standard output.
    pub(crate) fn git<S: AsRef<OsStr>>(&self, args: &[S]) -> anyhow::Result<Vec<u8>> {
        let out = run(self.cmd().args(args), None)?;
        check(&out, args)?;
        Ok(out.stdout)
    }

    /// The same, with `input` on its standard input.
    pub(crate) fn git_input<S: AsRef<OsStr>>(
        &self,
        cmd: &mut Command,
        args: &[S],
        input: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        let out = run(cmd.args(args), Some(input))?;
        check(&out, args)?;
        Ok(out.stdout)
    }

    /// Runs a hardened git command whatever its exit status.
    pub(crate) fn git_output<S: AsRef<OsStr>>(&self, args: &[S]) -> anyhow::Result<Output> {
        run(self.cmd().args(args), None)
    }

    /// One line of output, trimmed.
    pub(crate) fn line<S: AsRef<OsStr>>(&self, args: &[S]) -> anyhow::Result<String> {
        Ok(String::from_utf8_lossy(&self.git(args)?).trim().to_string())
    }

    /// The commit a revision names, if it names one.
    pub fn commit_of(&self, rev: &str) -> anyhow::Result<Option<String>> {
        let out = self.git_output(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{rev}^{{commit}}"),
        ])?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
    }

    /// The tip of a local branch, if it exists.
    pub fn branch_tip(&self, branch: &str) -> anyhow::Result<Option<String>> {
        self.commit_of(&format!("refs/heads/{branch}"))
    }

    /// The checkout's `HEAD` commit.
    pub fn head(&self) -> anyhow::Result<String> {
        self.commit_of("HEAD")?.with_context(|| {
            format!(
                "{} has no commit checked out (a new repository?): commit something first",
                self.root.display()
            )
        })
    }

    /// The branch `HEAD` is on, or `None` when it is detached.
    pub fn current_branch(&self) -> anyhow::Result<Option<String>> {
        let out = self.git_output(&["symbolic-ref", "--quiet", "--short", "HEAD"])?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
    }

    pub fn tree_of(&self, commit: &str) -> anyhow::Result<String> {
        self.line(&["rev-parse", "--verify", &format!("{commit}^{{tree}}")])
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> anyhow::Result<bool> {
        let out = self.git_output(&["merge-base", "--is-ancestor", ancestor, descendant])?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => {
                check(&out, &["merge-base", "--is-ancestor"])?;
                Ok(false)
            }
        }
    }

    /// The commits of `from..to`, oldest first.
    pub fn commits_between(&self, from: &str, to: &str) -> anyhow::Result<Vec<String>> {
        let out = self.git(&[
            "rev-list",
            "--reverse",
            "--topo-order",
            &format!("{from}..{to}"),
        ])?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// `<short hash> <subject>` of the commits of `from..to`, newest first, at most `max`
    /// (then a line saying how many more).
    pub fn log_lines(&self, from: &str, to: &str, max: usize) -> anyhow::Result<Vec<String>> {
        let out = self.git(&[
            "log",
            "--no-show-signature",
            "--format=%h %s",
            &format!("{from}..{to}"),
        ])?;
        let all: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_string)
            .collect();
        let more = all.len().saturating_sub(max);
        let mut lines: Vec<String> = all.into_iter().take(max).collect();
        if more > 0 {
            lines.push(format!("… and {more} more"));
        }
        Ok(lines)
    }

    /// A commit's subject line.
    pub fn subject(&self, commit: &str) -> anyhow::Result<String> {
        self.line(&["log", "-1", "--no-show-signature", "--format=%s", commit])
    }

    pub(crate) fn read_commit(&self, commit: &str) -> anyhow::Result<CommitInfo> {
        let raw = self.git(&["cat-file", "commit", commit])?;
        let split = raw
            .windows(2)
            .position(|w| w == b"\n\n")
            .map_or(raw.len(), |i| i + 2);
        let (header, message) = raw.split_at(split.min(raw.len()));
        let header = String::from_utf8_lossy(header);
        let mut info = CommitInfo {
            tree: String::new(),
            parents: Vec::new(),
            author: String::new(),
            message: message.to_vec(),
        };
        for line in header.lines() {
            if let Some(tree) = line.strip_prefix("tree ") {
                info.tree = tree.to_string();
            } else if let Some(parent) = line.strip_prefix("parent ") {
                info.parents.push(parent.to_string());
            } else if let Some(author) = line.strip_prefix("author ") {
                info.author = author.to_string();
            }
        }
        Ok(info)
    }

    /// Paths that differ between two commits, without rename detection.
    pub fn changed_paths(&self, from: &str, to: &str) -> anyhow::Result<Vec<Change>> {
        let out = self.git(&[
            "diff-tree",
            "-r",
            "-z",
            "--no-renames",
            "--name-status",
            from,
            to,
        ])?;
        let mut fields = out.split(|b| *b == 0).filter(|f| !f.is_empty());
        let mut changes = Vec::new();
        while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
            changes.push(Change {
                added: status.first() == Some(&b'A'),
                path: String::from_utf8_lossy(path).into_owned(),
            });
        }
        Ok(changes)
    }

    /// A new commit of `tree` on `parents`, by `author` (`Name <email> <when>`, else the
    /// user), committed by the user, with `message` byte for byte. No hook runs.
    pub fn commit_tree(
        &self,
        tree: &str,
        parents: &[&str],
        author: Option<&str>,
        message: &[u8],
    ) -> anyhow::Result<String> {
        let me = self.ident();
        let mut cmd = self.cmd();
        cmd.env("GIT_COMMITTER_NAME", &me.name)
            .env("GIT_COMMITTER_EMAIL", &me.email);
        match author.and_then(parse_ident) {
            Some((name, email, date)) => {
                cmd.env("GIT_AUTHOR_NAME", name)
                    .env("GIT_AUTHOR_EMAIL", email)
                    .env("GIT_AUTHOR_DATE", date);
            }
            None => {
                cmd.env("GIT_AUTHOR_NAME", &me.name)
                    .env("GIT_AUTHOR_EMAIL", &me.email);
            }
        }
        let mut args = vec!["commit-tree".to_string(), tree.to_string()];
        for parent in parents {
            args.push("-p".into());
            args.push((*parent).to_string());
        }
        let out = self.git_input(&mut cmd, &args, message)?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// The user's identity: `GIT_COMMITTER_NAME`/`_EMAIL` when set, else `user.name` and
    /// `user.email` from their config, else orch's own (`orch <orch@localhost>`): a missing
    /// identity never stops a merge.
    pub fn ident(&self) -> Ident {
        self.ident.get_or_init(|| self.find_ident()).clone()
    }

    /// The committer of the engine's own commits ([`crate::git::identity`]), for those a
    /// merge makes.
    fn find_ident(&self) -> Ident {
        let identity = crate::git::identity(&self.root);
        let get = |key: &str| {
            identity
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        Ident {
            name: get("GIT_COMMITTER_NAME"),
            email: get("GIT_COMMITTER_EMAIL"),
        }
    }

    /// An operation the user has under way in the checkout (a merge, a rebase...), which a
    /// merge must not cut into, with how to end it.
    pub fn operation_in_progress(&self) -> Option<&'static str> {
        let dirs = crate::git::RepoDirs::of(&self.root)?;
        let git_dir = dirs.git_dir;
        [
            (
                "MERGE_HEAD",
                "a merge: finish it (`git commit`) or `git merge --abort`",
            ),
            (
                "rebase-merge",
                "a rebase: finish it (`git rebase --continue`) or `git rebase --abort`",
            ),
            (
                "rebase-apply",
                "a rebase or `git am`: finish it or abort it (`git rebase --abort`, `git am \
                 --abort`)",
            ),
            (
                "CHERRY_PICK_HEAD",
                "a cherry-pick: finish it or `git cherry-pick --abort`",
            ),
            ("REVERT_HEAD", "a revert: finish it or `git revert --abort`"),
        ]
        .into_iter()
        .find(|(file, _)| git_dir.join(file).exists())
        .map(|(_, what)| what)
    }
}

/// One path of a diff between two trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    /// Absent before, present after.
    pub added: bool,
}

/// `Name <email> 1700000000 +0000` as (name, email, date).
fn parse_ident(ident: &str) -> Option<(String, String, String)> {
    let (name, rest) = ident.split_once(" <")?;
    let (email, date) = rest.split_once("> ")?;
    Some((name.to_string(), email.to_string(), date.to_string()))
}

fn run(cmd: &mut Command, input: Option<&[u8]>) -> anyhow::Result<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .context("failed to run git: is it installed and on PATH? (`orch doctor` checks)")?;
    if let Some(input) = input {
        let mut stdin = child.stdin.take().context("git's standard input")?;
        stdin.write_all(input).context("failed to write to git")?;
    }
    child.wait_with_output().context("failed to run git")
}

fn check<S: AsRef<OsStr>>(out: &Output, args: &[S]) -> anyhow::Result<()> {
    if out.status.success() {
        return Ok(());
    }
    let words: Vec<String> = args
        .iter()
        .take(2)
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    bail!(
        "`git {}` failed ({}): {}\nWhat git says is about the repository itself: `git status` \
         and `git fsck` there tell more.",
        words.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idents_split_into_name_email_and_date() {
        assert_eq!(
            parse_ident("A B <a@b.c> 1700000000 +0100"),
            Some(("A B".into(), "a@b.c".into(), "1700000000 +0100".into()))
        );
        assert_eq!(parse_ident("nonsense"), None);
    }
}
