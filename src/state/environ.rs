//! The environment of whoever started (or resumed) a run, kept in the run's `environ` file
//! (mode 0600) for its engine and its agents.
//!
//! Why a file: the engine and the agents run in tmux panes, which get the tmux server's
//! environment, not the caller's (the server may have been started long ago, from another
//! shell). Handing the caller's variables to tmux as `new-session -e NAME=VALUE` put every API
//! key in the command line of the tmux client and, when that client started the server, of
//! the server for its whole life, where `ps` shows it to every user. So `orch up` writes them
//! here, the engine loads them over its own environment before anything else, and
//! `orch agent-run` gives them to the agent; no command line ever holds a value.
//!
//! The format is that of `/proc/PID/environ`: `NAME=VALUE` entries each ended by a NUL, byte
//! for byte, so that values that are not UTF-8 or hold newlines come through unchanged.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::Path;

use anyhow::Context as _;

/// Variables that describe the caller's own terminal multiplexer and shell, not the run's
/// session and panes: tmux sets `PWD` to the pane's directory, and a CLI that believes a
/// caller's `PWD` over its working directory (OpenCode does) would take the project for a
/// directory outside its workspace.
const NOT_PASSED: [&str; 4] = ["TMUX", "TMUX_PANE", "PWD", "OLDPWD"];

/// The caller's environment, as the run's panes should get it.
pub fn caller() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| !NOT_PASSED.iter().any(|n| OsStr::new(n) == k))
        .collect()
}

/// Writes `vars` to `path` (mode 0600, atomically: an agent starting meanwhile reads the old
/// file or the new one).
pub fn write(path: &Path, vars: &[(OsString, OsString)]) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    for (name, value) in vars {
        // Neither can come from a real environment; refused rather than written ambiguous.
        if name.is_empty() || name.as_bytes().contains(&b'=') || name.as_bytes().contains(&0) {
            continue;
        }
        if value.as_bytes().contains(&0) {
            continue;
        }
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(b'=');
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
    }
    crate::agent_process::launcher::write_atomic(path, &bytes, 0o600)
        .context("cannot keep the caller's environment for the run")
}

/// Reads what [`write`] wrote.
pub fn read(path: &Path) -> anyhow::Result<Vec<(OsString, OsString)>> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read the run's environment {}: `orch resume` writes it again",
            path.display()
        )
    })?;
    Ok(parse(&bytes))
}

fn parse(bytes: &[u8]) -> Vec<(OsString, OsString)> {
    bytes
        .split(|b| *b == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            // Never print an entry: its value may be a secret.
            let at = entry.iter().position(|b| *b == b'=').filter(|at| *at > 0)?;
            Some((
                OsString::from_vec(entry[..at].to_vec()),
                OsString::from_vec(entry[at + 1..].to_vec()),
            ))
        })
        .collect()
}

/// Sets the variables of the run's environment file over this process's environment (the
/// engine's, at its start: everything it runs, gates and git included, inherits them). A run
/// without the file (started by an older orch) keeps the environment it has.
///
/// # Safety
/// No other thread may exist: changing the environment races with any thread reading it.
pub unsafe fn load_into_process(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    for (name, value) in read(path)? {
        // SAFETY: the caller promises a single thread.
        unsafe { std::env::set_var(name, value) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn values_survive_byte_for_byte_in_a_private_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("environ");
        let vars = vec![
            (OsString::from("A"), OsString::from("x=y\nz")),
            (OsString::from("EMPTY"), OsString::new()),
            (
                OsString::from("BYTES"),
                OsString::from_vec(vec![0xff, b' ', 0xfe]),
            ),
        ];
        write(&path, &vars).unwrap();
        assert_eq!(read(&path).unwrap(), vars);
        let mode = path.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn the_callers_tmux_and_directory_are_not_the_runs() {
        let names: Vec<OsString> = caller().into_iter().map(|(k, _)| k).collect();
        for name in NOT_PASSED {
            assert!(!names.iter().any(|n| n == name), "{name}");
        }
        assert!(names.iter().any(|n| n == "PATH"));
    }

    #[test]
    fn what_no_environment_can_hold_is_left_out() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("environ");
        let vars = vec![
            (OsString::from("A=B"), OsString::from("1")),
            (OsString::from(""), OsString::from("2")),
            (OsString::from("OK"), OsString::from("3")),
        ];
        write(&path, &vars).unwrap();
        assert_eq!(
            read(&path).unwrap(),
            [(OsString::from("OK"), OsString::from("3"))]
        );
        assert_eq!(parse(b"=x\0NOEQUALS\0K=v\0"), [("K".into(), "v".into())]);
    }
}
