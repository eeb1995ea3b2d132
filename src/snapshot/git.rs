//! Running git for the snapshot, always in a private bare repository (`<store>/git`) with
//! the project as its work tree, through orch's hardened git command (`crate::git`): the
//! project's own `.git/` (its config, hooks, info/attributes, index, refs) is never read or
//! written by git, so nothing an agent plants there can run. When the project is a git work
//! tree, the private repository borrows its objects (`objects/info/alternates`), and its
//! index seeds the private one, so unchanged files are not hashed again.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::SnapshotError;
use crate::git::RepoDirs;

/// Where the snapshot's index is seeded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    /// The project is a git work tree: its objects are borrowed and its index seeds ours.
    Repo,
    /// Not a git work tree: everything is hashed afresh.
    Private,
}

#[derive(Debug, Clone)]
pub(crate) struct Git {
    pub root: PathBuf,
    pub store: PathBuf,
    pub kind: Store,
    /// The private repository's objects are SHA-256 ones (as its project's are).
    pub sha256: bool,
}

impl Git {
    pub(crate) fn private_dir(&self) -> PathBuf {
        self.store.join("git")
    }

    pub(crate) fn index(&self) -> PathBuf {
        self.store.join("index")
    }

    /// A git command for this project; `with_index` points it at the private index.
    pub(crate) fn command(&self, with_index: bool) -> Command {
        let mut cmd = crate::git::command();
        // No attributes from the work tree either: no filter or diff driver can be chosen.
        cmd.env("GIT_ATTR_SOURCE", crate::git::empty_tree(self.sha256));
        if with_index {
            cmd.env("GIT_INDEX_FILE", self.index());
        }
        if let Some(excludes) = crate::git::user_excludes_file() {
            cmd.arg("-c")
                .arg(prefixed("core.excludesFile=", excludes.as_os_str()));
        }
        cmd.arg(prefixed("--git-dir=", self.private_dir().as_os_str()));
        cmd.arg(prefixed("--work-tree=", self.root.as_os_str()));
        cmd.current_dir(&self.root);
        cmd
    }

    /// Runs `git <args>` and returns its standard output.
    pub(crate) fn run<I, S>(&self, with_index: bool, args: I) -> Result<Vec<u8>, SnapshotError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut cmd = self.command(with_index);
        cmd.args(&args);
        run(cmd, &self.root, &args)
    }

    /// Like [`Git::run`], with pathspecs taken literally (a file may be named `*.rs`).
    pub(crate) fn run_literal<I, S>(&self, args: I) -> Result<Vec<u8>, SnapshotError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut cmd = self.command(true);
        cmd.env("GIT_LITERAL_PATHSPECS", "1").args(&args);
        run(cmd, &self.root, &args)
    }

    /// Creates the private repository if it is not there yet, borrowing the objects of the
    /// project's repository (`repo`) when there is one. Also for a store an older orch made
    /// (whose snapshot went into the project's repository): the borrowed objects hold it.
    pub(crate) fn init_private(&self, repo: Option<&RepoDirs>) -> Result<(), SnapshotError> {
        let dir = self.private_dir();
        if !dir.join("HEAD").is_file() {
            let mut args: Vec<OsString> = vec!["init".into(), "--bare".into(), "-q".into()];
            if self.sha256 {
                args.push("--object-format=sha256".into());
            }
            args.push(dir.clone().into());
            let mut cmd = crate::git::command();
            cmd.args(&args);
            run(cmd, &self.root, &args)?;
        }
        if let Some(repo) = repo {
            let info = dir.join("objects/info");
            std::fs::create_dir_all(&info).map_err(super::io_error(&info))?;
            let file = info.join("alternates");
            let mut line = repo.common_dir.join("objects").into_os_string();
            line.push("\n");
            use std::os::unix::ffi::OsStrExt as _;
            std::fs::write(&file, line.as_bytes()).map_err(super::io_error(&file))?;
        }
        Ok(())
    }
}

fn prefixed(prefix: &str, value: &OsStr) -> OsString {
    let mut out = OsString::from(prefix);
    out.push(value);
    out
}

fn run(mut cmd: Command, root: &Path, args: &[OsString]) -> Result<Vec<u8>, SnapshotError> {
    let output = cmd.output().map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            SnapshotError::GitNotFound
        } else {
            SnapshotError::Io {
                path: PathBuf::from("git"),
                source: err,
            }
        }
    })?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let command = args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    Err(SnapshotError::Git {
        command,
        root: root.to_path_buf(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_git_says_to_install_it() {
        let err = run(Command::new("orch-test-no-such-git"), Path::new("/"), &[]).unwrap_err();
        assert!(matches!(err, SnapshotError::GitNotFound));
        assert!(
            err.to_string().starts_with("git not found: install git"),
            "{err}"
        );
    }
}
