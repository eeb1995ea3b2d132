//! A run's agent processes found by what they carry rather than by their tmux pane: every
//! agent gets `ORCH_RUN_DIR` and `ORCH_PROMPT_FILE` in its environment (and its children inherit
//! them), and `orch agent-run` has its launch spec on its command line. So an agent that
//! outlived its pane (it ignored the hangup when the tmux server died, or its `agent-run` was
//! killed) is still found, and `orch down` or a resumed engine can stop it rather than leave
//! it running beside a new attempt. Linux reads `/proc`; elsewhere nothing is found, and the
//! panes are all there is to go by.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One process of a run's agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProcess {
    pub pid: i32,
    /// Its process group (the pane's, unless it left it).
    pub pgid: i32,
    /// The attempt directory it works for (`planner/<n>` or `tasks/<id>/<n>`), when known.
    pub attempt_dir: Option<PathBuf>,
}

/// Every live process working for the run in `run_dir`, except orch's own process.
pub fn find(run_dir: &Path) -> Vec<AgentProcess> {
    let Ok(run_dir) = run_dir.canonicalize() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Some(attempt_dir) = attempt_of(&entry.path(), &run_dir) else {
            continue;
        };
        // SAFETY: getpgid(2) only reads another process's group id.
        let pgid = unsafe { libc::getpgid(pid) };
        if pgid <= 0 {
            continue; // gone meanwhile
        }
        found.push(AgentProcess {
            pid,
            pgid,
            attempt_dir,
        });
    }
    found
}

/// Whether the process at `/proc/<pid>` works for the run: `Some(attempt dir)` if so.
fn attempt_of(proc_dir: &Path, run_dir: &Path) -> Option<Option<PathBuf>> {
    let under_run = |path: &str| {
        let path = Path::new(path);
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        path.starts_with(run_dir).then_some(path)
    };
    // `orch agent-run <run dir>/.../launch.json`: the pane's own process.
    if let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) {
        let argv: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if argv.len() >= 3 && argv[1] == b"agent-run" {
            let spec = String::from_utf8_lossy(argv[2]);
            if let Some(spec) = under_run(&spec) {
                return Some(spec.parent().map(Path::to_path_buf));
            }
        }
    }
    // The agent and whatever it started: they inherit ORCH_RUN_DIR and ORCH_PROMPT_FILE.
    let environ = std::fs::read(proc_dir.join("environ")).ok()?;
    let var = |name: &str| {
        environ.split(|&b| b == 0).find_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            entry
                .strip_prefix(name)?
                .strip_prefix('=')
                .map(String::from)
        })
    };
    let dir = var("ORCH_RUN_DIR")?;
    under_run(&dir).filter(|d| d == run_dir)?;
    let prompt = var("ORCH_PROMPT_FILE");
    Some(
        prompt
            .as_deref()
            .and_then(under_run)
            .and_then(|p| p.parent().map(Path::to_path_buf)),
    )
}

/// Stops the processes' groups (or the process alone, when its group is orch's own): TERM,
/// then KILL for what is left after `grace`. Returns how many groups it signalled.
pub fn stop(processes: &[AgentProcess], grace: Duration) -> usize {
    // SAFETY: getpgrp(2) only reads our own group id.
    let own_group = unsafe { libc::getpgrp() };
    let mut targets: Vec<i32> = processes
        .iter()
        .map(|p| {
            if p.pgid > 1 && p.pgid != own_group {
                -p.pgid
            } else {
                p.pid
            }
        })
        .collect();
    targets.sort_unstable();
    targets.dedup();
    let signal_all = |sig| {
        for &target in &targets {
            // SAFETY: kill(2) only sends a signal.
            unsafe {
                libc::kill(target, sig);
            }
        }
    };
    signal_all(libc::SIGTERM);
    let deadline = Instant::now() + grace;
    let alive = || targets.iter().any(|&t| target_alive(t));
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_all(libc::SIGKILL);
    targets.len()
}

/// Whether a process (`target` > 0) or a group (`-pgid`) still has a member that is not a
/// zombie: a process whose parent died is reaped by init, which in a container may never
/// happen, and a zombie holds nothing.
fn target_alive(target: i32) -> bool {
    // SAFETY: signal 0 only checks that the target exists.
    if unsafe { libc::kill(target, 0) } != 0 {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true; // cannot tell a zombie apart: assume alive
    };
    entries.flatten().any(|entry| {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`: the command may hold anything, so split after it.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let (Some(&state), Some(pgrp)) = (fields.first(), fields.get(2)) else {
            return false;
        };
        let member = if target > 0 {
            pid == target
        } else {
            pgrp.parse::<i32>().ok() == Some(-target)
        };
        member && state != "Z" && state != "X"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt as _;
    use std::process::Command;

    #[test]
    fn an_agent_is_found_by_its_environment_and_stopped_with_its_group() {
        if !Path::new("/proc/self/environ").exists() {
            return; // no /proc: nothing to find by
        }
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("runs/r1");
        let attempt = run.join("tasks/a/2");
        std::fs::create_dir_all(&attempt).unwrap();
        let other = tmp.path().join("runs/r2");
        std::fs::create_dir_all(&other).unwrap();
        let spawn = |run_dir: &Path| {
            Command::new("sh")
                .args(["-c", "sleep 30 & wait"])
                .env("ORCH_RUN_DIR", run_dir)
                .env("ORCH_PROMPT_FILE", attempt.join("prompt.md"))
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let mut mine = spawn(&run);
        let mut theirs = spawn(&other);
        let mut found = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The shell and its `sleep` child: both carry the variables.
        while found.len() < 2 && Instant::now() < deadline {
            found = find(&run);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(found.len(), 2, "{found:?}");
        let canonical = attempt.canonicalize().unwrap();
        assert!(
            found
                .iter()
                .all(|p| p.pgid == mine.id() as i32 && p.attempt_dir.as_ref() == Some(&canonical)),
            "{found:?}"
        );
        assert_eq!(stop(&found, Duration::from_secs(5)), 1);
        mine.wait().unwrap();
        assert!(find(&run).is_empty());
        assert!(theirs.try_wait().unwrap().is_none(), "another run's agent");
        theirs.kill().unwrap();
        theirs.wait().unwrap();
    }
}
