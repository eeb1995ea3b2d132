//! A throwaway project (a git work tree in a temp dir) and a fluent way to run the real `orch`
//! binary in it, in the spirit of just's test builder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) struct TestProject {
    pub dir: tempfile::TempDir,
}

impl TestProject {
    /// An empty git work tree.
    pub(crate) fn new() -> Self {
        Self::new_in(&std::env::temp_dir())
    }

    /// An empty git work tree in `parent` (under `target/tmp`, the box does not hide it as it
    /// hides `/tmp`).
    pub(crate) fn new_in(parent: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("orch-test-")
            .tempdir_in(parent)
            .unwrap();
        let status = Command::new("git")
            .args(["init", "-q"])
            .current_dir(dir.path())
            .status()
            .expect("git runs");
        assert!(status.success());
        TestProject { dir }
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    /// The tmux session `orch up` makes for this project (named as orch names it).
    pub(crate) fn session(&self) -> String {
        let project = orch::project::Project::discover(&self.root(), None).unwrap();
        format!("orch-{}", project.name())
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub(crate) fn file(&self, rel: &str, content: &str) -> &Self {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    /// An executable script (an agent of `kind: command`).
    pub(crate) fn script(&self, rel: &str, content: &str) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        self.file(rel, content);
        std::fs::set_permissions(self.path(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// Runs git in the project, which must succeed.
    pub(crate) fn git(&self, args: &[&str]) {
        let ok = Command::new("git")
            .args(args)
            .current_dir(self.root())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .expect("git runs")
            .success();
        assert!(ok, "git {args:?}");
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    pub(crate) fn orch(&self) -> Orch {
        Orch {
            cmd: {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_orch"));
                cmd.current_dir(self.root()).stdin(Stdio::null());
                cmd.env_remove("ORCH_SCRIPTED_FAULT");
                cmd
            },
        }
    }
}

pub(crate) struct Orch {
    pub cmd: Command,
}

impl Orch {
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub(crate) fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub(crate) fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Without the agent CLIs' credential variables this machine may have set, so that what
    /// `orch doctor` finds comes from the test alone.
    pub(crate) fn without_credentials(mut self) -> Self {
        for key in [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "CLAUDE_CODE_OAUTH_TOKEN",
            "OPENAI_API_KEY",
            "CODEX_API_KEY",
            "GEMINI_API_KEY",
            "GOOGLE_API_KEY",
            "CODEX_HOME",
            "CLAUDE_CONFIG_DIR",
        ] {
            self.cmd.env_remove(key);
        }
        self
    }

    pub(crate) fn cwd(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub(crate) fn run(mut self) -> Output {
        let output = self.cmd.output().expect("orch runs");
        Output { output }
    }
}

/// What an `orch` command did: its exit code and what it wrote.
pub(crate) struct Output {
    pub output: std::process::Output,
}

impl Output {
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub(crate) fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    /// Asserts the exit code, showing both streams when it differs.
    pub(crate) fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    pub(crate) fn stdout_has(self, needle: &str) -> Self {
        assert!(
            self.stdout().contains(needle),
            "stdout lacks {needle:?}:\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    pub(crate) fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}:\n{}\n--- stdout\n{}",
            self.stderr(),
            self.stdout()
        );
        self
    }
}
