//! What an agent left running when it exited: background jobs, `setsid` and `nohup` children,
//! ones that ignore TERM. They are found as [`crate::agent_process::orphans`] finds a run's agents (by the
//! `ORCH_RUN_DIR` and `ORCH_PROMPT_FILE` they inherit, which name the attempt), together with
//! whatever they started since (their descendants, even with a cleaned environment). The
//! attempt's own launcher (`orch agent-run`, which outlives the agent by the moment it takes
//! to write the exit record) is not one of them. Inside a sandbox with its own pid namespace
//! the kernel kills them all when the box's first process ends; without one (`sandbox: off`,
//! no bwrap) this is what stops them.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The most bytes of a leftover's command line kept (journal lines are bounded).
const COMMAND_MAX: usize = 200;
/// The most leftovers an event names (the count says how many there were).
pub const LISTED_MAX: usize = 20;
/// How many times stopping looks again for what forked while it was being stopped.
const ROUNDS: usize = 4;

/// One process left behind.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub pid: i32,
    /// Its command line, cut to a bound.
    pub command: String,
}

/// The live (not zombie) processes the attempt in `attempt_dir` of the run in `run_dir` left
/// behind, in pid order.
pub fn find(run_dir: &Path, attempt_dir: &Path) -> Vec<Leftover> {
    let Ok(attempt_dir) = attempt_dir.canonicalize() else {
        return Vec::new();
    };
    let table = processes();
    let mut found: HashSet<i32> = crate::agent_process::orphans::find(run_dir)
        .into_iter()
        .filter(|p| p.attempt_dir.as_ref() == Some(&attempt_dir))
        .map(|p| p.pid)
        .filter(|pid| table.get(pid).is_some_and(|p| p.live && !p.launcher))
        .collect();
    // Their descendants: found by parent, whatever they did to their environment.
    loop {
        let more: Vec<i32> = table
            .iter()
            .filter(|(pid, p)| p.live && !found.contains(pid) && found.contains(&p.ppid))
            .map(|(pid, _)| *pid)
            .collect();
        if more.is_empty() {
            break;
        }
        found.extend(more);
    }
    let mut pids: Vec<i32> = found.into_iter().collect();
    pids.sort_unstable();
    pids.into_iter()
        .map(|pid| Leftover {
            pid,
            command: command_of(pid),
        })
        .collect()
}

/// What the agent left in its box, in the attempt's `box/`: written by `agent-run` from what
/// the run's box's init said, or, in a bwrap of the agent's own, by `orch sandbox-exec`
/// beside its status file (the one place of the run's record that box may write).
pub const BOX_FILE: &str = "box-leftovers.json";

/// Where the box of the attempt in `attempt_dir` lists what its agent left in it.
pub fn box_file(attempt_dir: &Path) -> std::path::PathBuf {
    attempt_dir.join("box").join(BOX_FILE)
}

/// Inside a sandbox's pid namespace, once the agent ended: every live process but the box's
/// init (pid 1) and this one, which die with the box.
pub fn in_this_box() -> Vec<Leftover> {
    // Neither the box's init (`--as-pid-1`) nor its child: not in a pid namespace of our
    // own, where every process would be listed.
    // SAFETY: getppid(2) only reads our parent's pid.
    let parent = unsafe { libc::getppid() };
    if std::process::id() != 1 && parent != 1 {
        return Vec::new();
    }
    let me = std::process::id() as i32;
    let mut pids: Vec<i32> = processes()
        .into_iter()
        .filter(|(pid, p)| p.live && *pid != 1 && *pid != me)
        .map(|(pid, _)| pid)
        .collect();
    pids.sort_unstable();
    pids.into_iter()
        .map(|pid| Leftover {
            pid,
            command: command_of(pid),
        })
        .collect()
}

/// What the box said the agent of the attempt in `attempt_dir` left in it
/// (written inside the box, so bounded and taken as a report, not as proof).
pub fn left_in_box(attempt_dir: &Path) -> Vec<Leftover> {
    use std::io::Read as _;
    let mut text = Vec::new();
    let Ok(file) = std::fs::File::open(box_file(attempt_dir)) else {
        return Vec::new();
    };
    let _ = file.take(1024 * 1024).read_to_end(&mut text);
    serde_json::from_slice::<Vec<Leftover>>(&text).unwrap_or_default()
}

/// Stops what the attempt left behind: TERM to each (and to the group it leads, if it left
/// its agent's), KILL to what is left after `grace`, then looks again for what forked
/// meanwhile. Blocks for up to a few graces: run it off the engine's loop. Returns how many
/// processes it signalled.
pub fn stop(run_dir: &Path, attempt_dir: &Path, grace: Duration) -> usize {
    // SAFETY: getpgrp(2) only reads our own group id.
    let own_group = unsafe { libc::getpgrp() };
    let mut signalled = HashSet::new();
    for _ in 0..ROUNDS {
        let left = find(run_dir, attempt_dir);
        if left.is_empty() {
            break;
        }
        let signal = |sig| {
            for l in &left {
                // SAFETY: kill(2) and getpgid(2) only send a signal and read a group id.
                unsafe {
                    if libc::getpgid(l.pid) == l.pid && l.pid != own_group {
                        libc::kill(-l.pid, sig);
                    }
                    libc::kill(l.pid, sig);
                }
            }
        };
        signal(libc::SIGTERM);
        signalled.extend(left.iter().map(|l| l.pid));
        let deadline = Instant::now() + grace;
        while left.iter().any(|l| alive(l.pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal(libc::SIGKILL);
    }
    signalled.len()
}

/// Whether `pid` is a live process (not a zombie; `/proc` on Linux, else `kill(pid, 0)`).
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_fields(&stat).is_some_and(|(state, _)| state != "Z" && state != "X"),
        Err(_) if Path::new("/proc/self/stat").exists() => false,
        // SAFETY: signal 0 only checks that the process exists.
        Err(_) => unsafe { libc::kill(pid, 0) == 0 },
    }
}

struct Proc {
    ppid: i32,
    live: bool,
    /// `orch agent-run`: an attempt's launcher, not something its agent left.
    launcher: bool,
}

/// Every process, by pid.
fn processes() -> HashMap<i32, Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (state, ppid) = stat_fields(&stat)?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let launcher = cmdline.split(|&b| b == 0).nth(1) == Some(b"agent-run".as_slice());
            Some((
                pid,
                Proc {
                    ppid,
                    live: state != "Z" && state != "X",
                    launcher,
                },
            ))
        })
        .collect()
}

/// A `/proc/<pid>/stat`'s state and parent pid.
fn stat_fields(stat: &str) -> Option<(&str, i32)> {
    // `pid (comm) state ppid ...`: the command may hold anything, so split after it.
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// A process's command line, words separated by spaces, cut to a bound.
fn command_of(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let mut command = if words.is_empty() {
        // A kernel thread or one that cleared its arguments: its name, as ps shows it.
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", c.trim()))
            .unwrap_or_default()
    } else {
        words.join(" ")
    };
    // One line in status and the report, whatever it holds.
    command = command.replace(|c: char| c.is_control(), " ");
    if command.len() > COMMAND_MAX {
        let mut end = COMMAND_MAX;
        while !command.is_char_boundary(end) {
            end -= 1;
        }
        command.truncate(end);
        command.push('…');
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn what_an_agent_left_is_found_with_its_descendants_and_stopped() {
        if !Path::new("/proc/self/environ").exists() {
            return; // no /proc: nothing to find by
        }
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("runs/r1");
        let attempt = run.join("tasks/a/1");
        let other = run.join("tasks/b/1");
        std::fs::create_dir_all(&attempt).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let pidfile = tmp.path().join("pids");
        // The agent: starts a TERM-ignoring child, and a session of its own whose child
        // cleaned its environment, then exits.
        let script = format!(
            "(trap '' TERM; while :; do sleep 0.1; done) & echo $! >> {p}; \
             setsid sh -c 'env -i sh -c \"while :; do sleep 0.1; done\" & echo $! >> {p}; wait' & \
             echo $! >> {p}; \
             while [ $(wc -l < {p}) -lt 3 ]; do sleep 0.01; done",
            p = pidfile.display()
        );
        let spawn = |dir: &Path, script: &str| {
            Command::new("sh")
                .args(["-c", script])
                .env("ORCH_RUN_DIR", &run)
                .env("ORCH_PROMPT_FILE", dir.join("prompt.md"))
                .status()
                .unwrap()
        };
        assert!(spawn(&attempt, &script).success());
        let mut theirs = Command::new("sh")
            .args(["-c", "sleep 30"])
            .env("ORCH_RUN_DIR", &run)
            .env("ORCH_PROMPT_FILE", other.join("prompt.md"))
            .spawn()
            .unwrap();
        let pids: Vec<i32> = std::fs::read_to_string(&pidfile)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        let found = find(&run, &attempt);
        for pid in &pids {
            assert!(found.iter().any(|l| l.pid == *pid), "{pid}: {found:?}");
        }
        assert!(found.iter().all(|l| l.pid != theirs.id() as i32));
        assert!(stop(&run, &attempt, Duration::from_millis(300)) >= 2);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!pids.iter().any(|&p| alive(p)), "still running: {pids:?}");
        assert!(find(&run, &attempt).is_empty());
        assert!(
            theirs.try_wait().unwrap().is_none(),
            "another attempt's process"
        );
        theirs.kill().unwrap();
        theirs.wait().unwrap();
    }
}
