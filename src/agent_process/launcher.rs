//! What a tmux pane runs for one agent. No user text (request, task, prompt) may ever be typed
//! into a pane or land in a shell command, so everything about the run goes into a JSON spec,
//! and the pane runs a tiny script whose only variable content is two quoted paths orch chose:
//! `exec <orch> agent-run <spec>`. [`crate::agent_process::run`] takes it from there.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The spec's file name in the launcher's directory.
pub const SPEC_FILE: &str = "launch.json";
/// The script's file name in the launcher's directory.
pub const SCRIPT_FILE: &str = "launch.sh";

/// Everything `orch agent-run` needs to run one agent.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    /// Shown at the top of the pane, e.g. "task 2 · agent alice · attempt 1".
    pub title: String,
    /// The agent's argv: `argv[0]` with a '/' is relative to `cwd`, else looked up on PATH.
    pub argv: Vec<String>,
    /// Added to the inherited environment, after `env_file`'s.
    pub env: Vec<(String, String)>,
    /// The run's environment file (the caller's environment, see `state::environ`), set over
    /// the pane's environment before `env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<PathBuf>,
    /// The file the agent reads on stdin (an agent CLI's prompt); none: /dev/null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<PathBuf>,
    /// The project root.
    pub cwd: PathBuf,
    /// Everything the agent printed, stdout and stderr in order of arrival.
    pub output_log: PathBuf,
    /// Stdout only: the agent's answer or event stream.
    pub stdout_log: PathBuf,
    /// `exit.json`, written last and atomically (see [`crate::agent_process::run::ExitRecord`]).
    pub exit_file: PathBuf,
    /// The sandbox the agent runs in; none: unconfined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<crate::sandbox::Jail>,
    /// Shown in the pane under the title (the user's `orch tell` message for this attempt),
    /// read from this file, never from a command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl LaunchSpec {
    pub fn read(path: &Path) -> anyhow::Result<LaunchSpec> {
        let text = std::fs::read(path).with_context(|| {
            format!(
                "cannot read the launch spec {}; orch writes it when it starts a task, so \
                 start the task again with orch rather than running its launcher by hand",
                path.display()
            )
        })?;
        serde_json::from_slice(&text).with_context(|| {
            format!(
                "the launch spec {} is not valid; it was probably edited or written by another \
                 orch version: start the task again with this orch",
                path.display()
            )
        })
    }
}

/// Writes `dir/launch.json` (mode 0600: the env may carry secrets) and `dir/launch.sh` (mode
/// 0700: nothing in a run is for other users), and returns the script's path. The script holds nothing but `orch_exe` and the
/// spec's path, both shell-quoted; the spec's text never reaches it.
pub fn write_launcher(dir: &Path, spec: &LaunchSpec, orch_exe: &Path) -> anyhow::Result<PathBuf> {
    // The pane may start in any directory, so the script must not depend on it.
    let dir = std::path::absolute(dir)
        .with_context(|| format!("cannot make {} an absolute path", dir.display()))?;
    let orch_exe = std::path::absolute(orch_exe)
        .with_context(|| format!("cannot make {} an absolute path", orch_exe.display()))?;
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "cannot create the launcher directory {}; check that .orch is writable",
            dir.display()
        )
    })?;

    let spec_path = dir.join(SPEC_FILE);
    let mut json = serde_json::to_vec_pretty(spec).context("cannot encode the launch spec")?;
    json.push(b'\n');
    // Not fsynced: the pane about to start reads both from the page cache, and after a crash
    // no pane is left to read them (a later attempt writes its own). Four fsyncs less per
    // launch kept the engine's loop free ~1 ms sooner, and cut the stalls that every fsync
    // causes to the file operations around it (see BENCHMARKS.md).
    write_file_atomic(&spec_path, &json, 0o600, Durable::No)?;

    let script_path = dir.join(SCRIPT_FILE);
    let script = script(&orch_exe, &spec_path)?;
    write_file_atomic(&script_path, &script, 0o700, Durable::No)?;
    Ok(script_path)
}

/// The launcher script's exact content.
fn script(orch_exe: &Path, spec_path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    out.extend_from_slice(
        b"#!/bin/sh\n\
          # Written by orch: runs one agent as described by the launch spec named below.\n\
          exec ",
    );
    out.extend_from_slice(&quote(orch_exe)?);
    out.extend_from_slice(b" agent-run ");
    out.extend_from_slice(&quote(spec_path)?);
    out.push(b'\n');
    Ok(out)
}

/// Quotes a path for sh. Works on bytes so that paths which are not UTF-8 survive too.
fn quote(path: &Path) -> anyhow::Result<Vec<u8>> {
    shlex::bytes::try_quote(path.as_os_str().as_bytes())
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot quote the path {} for the launcher ({e}); move the project to a path \
                 without such characters",
                path.display()
            )
        })
}

/// Replaces `path` with `bytes` all at once: readers see the old file or the new one, never
/// a part. The temporary file sits next to `path` (`<name>.tmp`) so the rename stays on one
/// file system. Durable: the content and the rename are on disk when it returns.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    write_file_atomic(path, bytes, mode, Durable::Yes)
}

/// Like [`write_atomic`] for a file that is new (nothing to replace), made visible before it
/// is durable: the rename comes first and the syncs after, so a reader waiting for the file
/// (the engine, for an exit record) does not wait for the disk too; that sync was 4 ms at the
/// median on the benchmark machine under disk load, on the path from an agent's exit to its
/// journal line. A machine crash before the syncs may leave the file empty, which its
/// readers take as unreadable (`orch resume`: an interrupted attempt, retried).
pub fn write_new_then_sync(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    write_file_atomic(path, bytes, mode, Durable::After)
}

/// Whether an atomic write waits for the disk (fsync of the file and of its directory), and
/// when: before the rename, or after it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durable {
    Yes,
    After,
    No,
}

fn write_file_atomic(path: &Path, bytes: &[u8], mode: u32, durable: Durable) -> anyhow::Result<()> {
    let file_name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let failed = |what: &str, e: std::io::Error| {
        anyhow::anyhow!(
            "cannot {what} {}: {e}; check that its directory exists, is writable and the \
             disk is not full",
            tmp.display()
        )
    };
    // A leftover temporary file may have looser permissions than `mode`; never reuse it, as
    // the spec may carry secrets.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed("remove the leftover", e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| failed("create", e))?;
    // The umask may have taken bits away (the script must stay executable).
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| failed("set the permissions of", e))?;
    file.write_all(bytes).map_err(|e| failed("write", e))?;
    if durable == Durable::Yes {
        file.sync_all().map_err(|e| failed("sync", e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        anyhow::anyhow!(
            "cannot rename {} to {}: {e}; check that the directory is writable",
            tmp.display(),
            path.display()
        )
    })?;
    if durable == Durable::No {
        return Ok(());
    }
    if durable == Durable::After {
        // Best effort, as the directory's below: the reader has the file already.
        let _ = file.sync_all();
    }
    // Make the rename itself durable; a failure here loses nothing the reader can see now.
    if let Some(parent) = path.parent()
        && let Ok(dir) = File::open(if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        })
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path) -> LaunchSpec {
        LaunchSpec {
            title: "task 1 · agent a · attempt 1".into(),
            argv: vec!["claude".into(), "-p".into()],
            env: vec![("ORCH_TASK".into(), "1".into())],
            env_file: Some(dir.join("environ")),
            stdin: Some(dir.join("prompt.md")),
            cwd: dir.into(),
            output_log: dir.join("output.log"),
            stdout_log: dir.join("stdout.log"),
            exit_file: dir.join("exit.json"),
            sandbox: None,
            notice: None,
        }
    }

    #[test]
    fn the_script_is_exactly_exec_orch_agent_run_spec() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("plain");
        let script = write_launcher(&dir, &spec(&dir), Path::new("/usr/bin/orch")).unwrap();
        let text = std::fs::read_to_string(&script).unwrap();
        let expected = format!(
            "#!/bin/sh\n# Written by orch: runs one agent as described by the launch spec \
             named below.\nexec /usr/bin/orch agent-run {}/launch.json\n",
            dir.display()
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn odd_paths_are_quoted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("it's a \"dir\" $HOME `x`");
        let script = write_launcher(&dir, &spec(&dir), Path::new("/opt/my orch/orch")).unwrap();
        let text = std::fs::read_to_string(&script).unwrap();
        let last = text.lines().last().unwrap();
        let words = shlex::split(last).unwrap();
        assert_eq!(
            words,
            [
                "exec",
                "/opt/my orch/orch",
                "agent-run",
                &dir.join("launch.json").display().to_string()
            ]
        );
    }

    #[test]
    fn modes_are_0600_for_the_spec_and_0700_for_the_script() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // A leftover temporary file with loose permissions must not be reused.
        std::fs::write(dir.join("launch.json.tmp"), "old").unwrap();
        std::fs::set_permissions(
            dir.join("launch.json.tmp"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        let script = write_launcher(dir, &spec(dir), Path::new("/usr/bin/orch")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("launch.json")), 0o600);
        assert_eq!(mode(&script), 0o700);
        assert!(!dir.join("launch.json.tmp").exists());
        assert_eq!(
            LaunchSpec::read(&dir.join("launch.json")).unwrap(),
            spec(dir)
        );
    }

    #[test]
    fn a_bad_spec_says_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("launch.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = format!("{:#}", LaunchSpec::read(&path).unwrap_err());
        assert!(err.contains("start the task again"), "{err}");
        let err = format!(
            "{:#}",
            LaunchSpec::read(&tmp.path().join("nope")).unwrap_err()
        );
        assert!(err.contains("cannot read the launch spec"), "{err}");
    }

    #[test]
    fn a_new_file_written_then_synced_is_whole_private_and_alone() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exit.json");
        write_new_then_sync(&path, b"{\"code\":0}\n", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"code\":0}\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.path().join("exit.json.tmp").exists());
    }
}
