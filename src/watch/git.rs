//! Running git for the snapshot, isolated from whatever the caller's environment says about
//! repositories (`GIT_DIR`, `GIT_INDEX_FILE`... are all dropped), from the system config, and
//! from the user's real index: every command that touches an index gets the private one.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::snapshot::SnapshotError;

/// Where the snapshot's objects live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    /// The project is a git work tree: objects go into its own object store.
    Repo,
    /// Not a git work tree: a private bare repository at `<store>/git`.
    Private,
}

#[derive(Debug, Clone)]
pub(crate) struct Git {
    pub root: PathBuf,
    pub store: PathBuf,
    pub kind: Store,
}

impl Git {
    pub fn private_dir(&self) -> PathBuf {
        self.store.join("git")
    }

    pub fn index(&self) -> PathBuf {
        self.store.join("index")
    }

    /// A git command for this project; `with_index` points it at the private index.
    pub fn command(&self, with_index: bool) -> Command {
        let mut cmd = Command::new("git");
        // Objects go into the user's repository: with the user's umask, not the engine's.
        crate::private::user_umask_for(&mut cmd);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GIT_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env_remove("LANGUAGE");
        if with_index {
            cmd.env("GIT_INDEX_FILE", self.index());
        }
        // Keep the private index self-contained and git from starting daemons or upkeep.
        for setting in [
            "core.splitIndex=false",
            "core.untrackedCache=false",
            "core.fsmonitor=false",
            "gc.auto=0",
            "maintenance.auto=false",
            "init.defaultBranch=orch",
        ] {
            cmd.arg("-c").arg(setting);
        }
        if self.kind == Store::Private {
            cmd.arg(prefixed("--git-dir=", self.private_dir().as_os_str()));
            cmd.arg(prefixed("--work-tree=", self.root.as_os_str()));
        }
        cmd.current_dir(&self.root).stdin(Stdio::null());
        cmd
    }

    /// Runs `git <args>` and returns its standard output.
    pub fn run<I, S>(&self, with_index: bool, args: I) -> Result<Vec<u8>, SnapshotError>
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
    pub fn run_literal<I, S>(&self, args: I) -> Result<Vec<u8>, SnapshotError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut cmd = self.command(true);
        cmd.env("GIT_LITERAL_PATHSPECS", "1").args(&args);
        run(cmd, &self.root, &args)
    }

    /// Creates the private repository if it is not there yet.
    pub fn init_private(&self) -> Result<(), SnapshotError> {
        if self.private_dir().join("HEAD").is_file() {
            return Ok(());
        }
        let mut cmd = Command::new("git");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GIT_") {
                cmd.env_remove(key);
            }
        }
        let args: Vec<OsString> = vec![
            "init".into(),
            "--bare".into(),
            "-q".into(),
            self.private_dir().into(),
        ];
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LC_ALL", "C")
            .args(["-c", "init.defaultBranch=orch"])
            .args(&args)
            .stdin(Stdio::null());
        run(cmd, &self.root, &args).map(|_| ())
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
