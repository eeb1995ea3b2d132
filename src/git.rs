//! Every git command orch runs starts here, hardened so that nothing a repository, its
//! attributes, or a config file an agent could have written can make it run a program.
//!
//! A repository can name commands in many places: hooks (`core.hooksPath`, `.git/hooks/`),
//! `core.fsmonitor`, clean/smudge/process filters (a driver in config, chosen by
//! `.gitattributes`, `.git/info/attributes` or `core.attributesFile`), textconv and external
//! diff drivers, `diff.external`, pagers, editors, credential helpers, ssh commands,
//! transports. The defence is in layers:
//! - no config but orch's own: the system file is skipped (`GIT_CONFIG_NOSYSTEM`), the global
//!   one too (`GIT_CONFIG_GLOBAL=/dev/null`), and orch's snapshot never runs git in the
//!   project's repository but in a private one (see `watch::git`), so `.git/config`,
//!   `.git/hooks/` and `.git/info/` are never read;
//! - every command-naming setting is overridden on the command line (`-c`), which wins over
//!   any file;
//! - no attributes: no system or global attributes file, and (git 2.40 and later) attributes
//!   read from the empty tree rather than from the work tree (`GIT_ATTR_SOURCE`), so no
//!   filter or diff driver is ever chosen;
//! - every `GIT_*` variable of the caller's environment is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Settings that name a command, or start something in the background, each set to nothing.
const OVERRIDES: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.untrackedCache=false",
    "core.splitIndex=false",
    "core.attributesFile=/dev/null",
    "core.pager=cat",
    "core.editor=false",
    "core.sshCommand=false",
    "core.askPass=",
    "core.alternateRefsCommand=",
    "core.autocrlf=false",
    "core.safecrlf=false",
    "credential.helper=",
    "diff.external=",
    "sequence.editor=false",
    "gpg.program=false",
    "log.showSignature=false",
    "protocol.allow=never",
    "gc.auto=0",
    "maintenance.auto=false",
    "init.defaultBranch=orch",
    "init.templateDir=",
];

/// A `git` command with the caller's `GIT_*` environment dropped, no system or global config,
/// no system or global attributes, and every setting of [`OVERRIDES`] on its command line.
/// Add `--no-ext-diff --no-textconv` to anything that diffs.
pub fn command() -> Command {
    let mut cmd = Command::new("git");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_ATTR_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_PAGER", "cat")
        .env("PAGER", "cat")
        .env("LC_ALL", "C")
        .env_remove("LANGUAGE")
        .env_remove("SSH_ASKPASS")
        .stdin(Stdio::null());
    for setting in OVERRIDES {
        cmd.arg("-c").arg(setting);
    }
    cmd
}

/// The hardened command run in the work tree `root` of a repository whose objects are
/// SHA-256 ones when `sha256`: attributes read from the empty tree (no filter, merge or diff
/// driver can be chosen; files are taken byte for byte, as the snapshot takes them), and the
/// user's global excludes file, so that what their git ignores, orch's does too. Every git
/// orch runs in the user's repository or a run's worktree starts here.
pub fn in_work_tree(root: &Path, sha256: bool) -> Command {
    let mut cmd = command();
    cmd.env("GIT_ATTR_SOURCE", empty_tree(sha256));
    if let Some(excludes) = user_excludes_file() {
        let mut setting = std::ffi::OsString::from("core.excludesFile=");
        setting.push(excludes.as_os_str());
        cmd.arg("-c").arg(setting);
    }
    cmd.current_dir(root);
    cmd
}

/// Who the commits orch makes are by, as `GIT_AUTHOR_*`/`GIT_COMMITTER_*` variables: the
/// caller's own such variables, else `user.name`/`user.email` of the user's git config at
/// `root` (which the hardened command does not read; reading a value runs nothing), else
/// `orch <orch@localhost>`: a missing identity never fails a run.
pub fn identity(root: &Path) -> Vec<(String, String)> {
    let configured = |key: &str| -> Option<String> {
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

/// The empty tree of a repository of the given object format, as `GIT_ATTR_SOURCE` wants it:
/// attributes read from it are none at all.
pub fn empty_tree(sha256: bool) -> &'static str {
    if sha256 {
        "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"
    } else {
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    }
}

/// The files at the top of a git directory that can make git run a command or act for the
/// user (its config) or change what is checked out (HEAD, packed refs): guarded by the
/// watcher ([`crate::watch`]) and read-only in the sandbox ([`crate::sandbox`]).
pub const GUARDED_FILES: [&str; 4] = ["config", "config.worktree", "HEAD", "packed-refs"];
/// The directories of a git directory guarded with all they hold: hooks, attributes and
/// excludes (`info/`), refs.
pub const GUARDED_DIRS: [&str; 3] = ["hooks", "info", "refs"];

/// Where a work tree's repository keeps its files, found by reading them (never by running
/// git in it): `git_dir` holds HEAD and the index (`.git`, or for a linked worktree or a
/// submodule the directory its `.git` file names), `common_dir` holds config, hooks, info,
/// refs and objects (the same directory, except for linked worktrees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoDirs {
    pub git_dir: PathBuf,
    pub common_dir: PathBuf,
}

impl RepoDirs {
    /// The repository of the work tree at `root`, if it is one.
    pub fn of(root: &Path) -> Option<RepoDirs> {
        let dot_git = root.join(".git");
        let meta = std::fs::symlink_metadata(&dot_git).ok()?;
        let git_dir = if meta.is_dir() {
            dot_git
        } else if meta.is_file() {
            let text = std::fs::read_to_string(&dot_git).ok()?;
            let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
            root.join(target)
        } else {
            return None;
        };
        let common_dir = match std::fs::read_to_string(git_dir.join("commondir")) {
            Ok(text) => git_dir.join(text.trim()),
            Err(_) => git_dir.clone(),
        };
        let git_dir = git_dir.canonicalize().unwrap_or(git_dir);
        let common_dir = common_dir.canonicalize().unwrap_or(common_dir);
        Some(RepoDirs {
            git_dir,
            common_dir,
        })
    }

    /// Whether the repository's objects are SHA-256 ones (`extensions.objectFormat`), read
    /// from its config file alone (no includes, nothing run but `git config --file`).
    pub fn is_sha256(&self) -> bool {
        // Asked once per repository: a repository's object format never changes, and the
        // engine asked at every accepted task (a git process on its loop).
        static KNOWN: std::sync::Mutex<Option<std::collections::HashMap<PathBuf, bool>>> =
            std::sync::Mutex::new(None);
        let mut known = KNOWN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = known.get_or_insert_with(std::collections::HashMap::new);
        if let Some(&sha256) = known.get(&self.common_dir) {
            return sha256;
        }
        let out = command()
            .args(["config", "--file"])
            .arg(self.common_dir.join("config"))
            .args(["--get", "extensions.objectformat"])
            .output();
        let Ok(out) = out else {
            return false; // not known: asked again next time
        };
        let sha256 = out.stdout.trim_ascii().eq_ignore_ascii_case(b"sha256");
        // 0: set, 1: not set; anything else (an unreadable config) is asked again.
        if matches!(out.status.code(), Some(0 | 1)) {
            known.insert(self.common_dir.clone(), sha256);
        }
        sha256
    }
}

/// The user's global excludes file (`core.excludesFile` of their global config), which the
/// hardened command no longer reads, so that orch ignores what the user's git ignores.
/// Asked once: `git config` reads files and runs nothing.
pub fn user_excludes_file() -> Option<&'static Path> {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let out = command()
                .env_remove("GIT_CONFIG_GLOBAL")
                .args([
                    "config",
                    "--global",
                    "--type=path",
                    "--get",
                    "core.excludesFile",
                ])
                .output()
                .ok()?;
            let text = String::from_utf8(out.stdout).ok()?;
            let path = text.trim_end_matches('\n');
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_dirs_of_a_repository_a_worktree_and_a_plain_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        assert_eq!(RepoDirs::of(&root), None);
        std::fs::create_dir_all(root.join("main/.git/worktrees/wt")).unwrap();
        std::fs::write(root.join("main/.git/worktrees/wt/commondir"), "../..\n").unwrap();
        std::fs::create_dir(root.join("wt")).unwrap();
        std::fs::write(
            root.join("wt/.git"),
            format!(
                "gitdir: {}\n",
                root.join("main/.git/worktrees/wt").display()
            ),
        )
        .unwrap();
        let main = RepoDirs::of(&root.join("main")).unwrap();
        assert_eq!(main.git_dir, root.join("main/.git"));
        assert_eq!(main.common_dir, root.join("main/.git"));
        let wt = RepoDirs::of(&root.join("wt")).unwrap();
        assert_eq!(wt.git_dir, root.join("main/.git/worktrees/wt"));
        assert_eq!(wt.common_dir, root.join("main/.git"));
    }

    #[test]
    fn the_command_drops_the_callers_git_environment() {
        let cmd = command();
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(
            envs.iter()
                .any(|(k, v)| *k == "GIT_CONFIG_GLOBAL" && *v == Some("/dev/null".as_ref()))
        );
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"core.hooksPath=/dev/null".to_string()));
        assert!(args.contains(&"core.fsmonitor=false".to_string()));
    }
}
