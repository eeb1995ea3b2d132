//! Throwaway projects and orch runs in them, each on its own private tmux server.
//!
//! Every project is a small git repository under the benchmark's temporary directory whose
//! `orch.yaml` has one `kind: command` agent: [`AGENT`], a bash script. bash because its
//! `$EPOCHREALTIME` reads CLOCK_REALTIME (µs) without starting a process, so an agent can
//! stamp the moment it starts, writes, and exits, on the clock the journal uses.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;

use crate::cleanup::{DirGuard, ServerGuard};
use crate::stats::now_s;
use crate::tail::{Entry, Tail};

/// The tiny agent. `$1` is the mode:
/// - `work`: stamp START, write its own file, sleep 50–299 ms, stamp STRAY and write
///   `stray/<task>.txt` (a file it does not own), sleep 50–299 ms, stamp EXIT and exit 0.
///   The sleeps are fixed per task id, so orch and the baseline get the same agents.
/// - `busy`: the same with sleeps of 10–90 ms, so that exits, violations and launches come
///   thick and fast (the busy scenario).
/// - `silent`: stamp START, write its own file, then sleep without a sound until stopped.
///
/// In any role but worker it answers at once (the judge with a passing verdict), so a judge
/// or planner step costs next to nothing.
pub(crate) const AGENT: &str = r#"[ "${ORCH_ROLE:-worker}" = judge ] && { echo '{"verdict":"pass"}'; exit 0; }
[ "${ORCH_ROLE:-worker}" = worker ] || exit 0
echo "START $EPOCHREALTIME"
printf 'owned\n' > "$ORCH_FILES"
case "$1" in
work|busy)
  id=$ORCH_TASK_ID
  if [ "$1" = busy ]; then lo=10 span=81; else lo=50 span=250; fi
  printf -v a '0.%03d' $(( lo + (id * 7919) % span ))
  printf -v b '0.%03d' $(( lo + (id * 104729) % span ))
  sleep "$a"
  t=$EPOCHREALTIME
  printf 'stray\n' > "stray/$id.txt"
  echo "STRAY $t"
  sleep "$b"
  echo "EXIT $EPOCHREALTIME"
  ;;
silent)
  exec sleep 100000
  ;;
esac
"#;

/// The agent's argv for `mode`.
pub(crate) fn agent_argv(mode: &str) -> Vec<String> {
    ["/bin/bash", "-c", AGENT, "bench-agent", mode]
        .iter()
        .map(std::string::ToString::to_string)
        .collect()
}

/// The task's own file, relative to the project.
pub(crate) fn owned_file(task: usize) -> String {
    format!("out/{task}.txt")
}

/// The orch binary under test: built by cargo alongside this benchmark, or another one named
/// by `ORCH_BENCH_EXE` (to compare two builds back to back on a machine whose load varies).
pub(crate) fn orch_exe() -> PathBuf {
    std::env::var_os("ORCH_BENCH_EXE")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_orch")), PathBuf::from)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique name for a project directory or a tmux socket.
pub(crate) fn unique(purpose: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("orch-bench-{purpose}-{}-{n}", std::process::id())
}

/// A project: a git repository with `out/` (the tasks' files), `stray/` (where `work`
/// agents write what they do not own) and `orch.yaml`. Removed when dropped.
pub(crate) struct Fixture {
    pub root: PathBuf,
    _dir: DirGuard,
}

impl Fixture {
    /// A project under `base` whose agent runs in `mode` with `parallel` agents at once;
    /// `fill` may add files before the first commit.
    pub(crate) fn new(
        base: &Path,
        purpose: &str,
        mode: &str,
        parallel: usize,
        fill: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<Fixture> {
        let root = base.join(unique(purpose));
        let guard = DirGuard::new(&root);
        for dir in ["out", "stray"] {
            std::fs::create_dir_all(root.join(dir))?;
            std::fs::write(root.join(dir).join(".keep"), "")?;
        }
        std::fs::write(root.join(".gitignore"), ".orch/\ntarget/\n")?;
        std::fs::write(root.join("orch.yaml"), config(mode, parallel)?)?;
        fill(&root)?;
        git(&root, &["init", "-q"])?;
        git(&root, &["add", "-A"])?;
        git(
            &root,
            &[
                "-c",
                "user.email=bench@orch.invalid",
                "-c",
                "user.name=orch bench",
                "commit",
                "-qm",
                "fixture",
            ],
        )?;
        Ok(Fixture { root, _dir: guard })
    }

    /// Left in place until the benchmark's end, where its base directory is removed (see
    /// [`DirGuard::keep`]): for the small projects of the timed parts.
    pub(crate) fn keep_until_the_end(mut self) -> Fixture {
        self._dir.keep();
        self
    }

    /// Writes a plan of `tasks` independent tasks beside the project (not in it, so that
    /// the plan file is no change the watcher sees) and returns its path.
    pub(crate) fn plan(&self, tasks: usize) -> anyhow::Result<PathBuf> {
        let tasks: Vec<serde_json::Value> = (1..=tasks)
            .map(|i| {
                serde_json::json!({"id": i, "agent": "bench", "task": format!("bench task {i}"),
                                   "files": [owned_file(i)]})
            })
            .collect();
        let path = self.root.with_extension("plan.json");
        std::fs::write(
            &path,
            serde_json::to_string(&serde_json::json!({"specs": [], "tasks": tasks}))?,
        )?;
        Ok(path)
    }
}

fn config(mode: &str, parallel: usize) -> anyhow::Result<String> {
    // JSON strings are valid YAML double-quoted scalars.
    let argv = serde_json::to_string(&agent_argv(mode))?;
    // The agents' sandbox as orch's default (`auto`), unless ORCH_BENCH_SANDBOX says (`off`:
    // what the box costs, by difference).
    let sandbox = std::env::var("ORCH_BENCH_SANDBOX").unwrap_or_else(|_| "auto".into());
    anyhow::ensure!(
        ["auto", "bwrap", "off"].contains(&sandbox.as_str()),
        "ORCH_BENCH_SANDBOX is auto, bwrap or off, not {sandbox:?}"
    );
    Ok(format!(
        "agents:\n  bench:\n    kind: command\n    command: {argv}\nroles:\n  planner: bench\n  \
         judge: bench\n  workers: [bench]\nlimits:\n  max_parallel: {parallel}\n  \
         task_timeout: 30m\n  retries: 0\ngates:\n  test_pattern: [\"out/**\"]\n\
         sandbox: {sandbox}\n"
    ))
}

pub(crate) fn git(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    checked(
        Command::new("git").args(args).current_dir(root),
        &format!("git {}", args.join(" ")),
    )
}

/// Runs `cmd` (`what`, for its errors) to its end: an error with what it printed on stderr
/// unless it succeeded.
pub(crate) fn checked(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A run of `orch up` in a fixture, on a private tmux server of its own.
pub(crate) struct Run {
    pub socket: String,
    /// When the benchmark started `orch up`.
    pub up_at_s: f64,
    pub dir: PathBuf,
    pub tail: Tail,
    root: PathBuf,
    _server: ServerGuard,
}

impl Run {
    /// `orch up --plan` with `tasks` tasks, detached; returns once `orch up` has returned
    /// (the engine holds the run) and the journal is followed.
    pub(crate) fn up(fixture: &Fixture, tasks: usize) -> anyhow::Result<Run> {
        let plan = fixture.plan(tasks)?;
        let socket = unique("tmux");
        // Registered before the server exists, so an interrupt at any point stops it.
        let server = ServerGuard::new(&socket);
        let up_at_s = now_s();
        let out = orch(&fixture.root, &socket)
            .args(["up", "benchmark", "--plan"])
            .arg(&plan)
            .arg("--detach")
            .output()
            .context("cannot run orch up")?;
        anyhow::ensure!(
            out.status.success(),
            "orch up failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let id = std::fs::read_to_string(fixture.root.join(".orch/current"))?;
        let dir = fixture.root.join(".orch/runs").join(id.trim());
        let tail = Tail::start(&dir.join("events.jsonl"))?;
        Ok(Run {
            socket,
            up_at_s,
            dir,
            tail,
            root: fixture.root.clone(),
            _server: server,
        })
    }

    /// The first journal entry with this event name (and task, if given).
    pub(crate) fn entry(&self, event: &str, task: Option<usize>) -> Option<Entry> {
        self.tail
            .entries()
            .into_iter()
            .find(|e| e.event() == event && task.is_none_or(|t| e.task() == t.to_string()))
    }

    pub(crate) fn engine_pid(&self) -> anyhow::Result<u32> {
        let entry = self
            .entry("engine_started", None)
            .context("no engine_started in the journal")?;
        entry.record["pid"]
            .as_u64()
            .map(|p| p as u32)
            .context("engine_started has no pid")
    }

    /// What task `task`'s agent printed (first attempt): a worker's plain output is kept once,
    /// in `output.log`.
    pub(crate) fn output_log(&self, task: usize) -> PathBuf {
        self.dir.join(format!("tasks/{task}/1/output.log"))
    }

    /// Waits until every task's agent has printed its START stamp; returns the stamps.
    pub(crate) fn wait_started(&self, tasks: usize, timeout: Duration) -> anyhow::Result<Vec<f64>> {
        let logs: Vec<PathBuf> = (1..=tasks).map(|t| self.output_log(t)).collect();
        wait_stamps(&logs, "START", timeout)
    }

    /// `orch down`, then the server is killed (its guard) even if that failed.
    pub(crate) fn down(self) -> anyhow::Result<()> {
        let out = orch(&self.root, &self.socket)
            .arg("down")
            .output()
            .context("cannot run orch down")?;
        anyhow::ensure!(
            out.status.success(),
            "orch down failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

/// An orch command for the project, on the private server `socket`.
fn orch(root: &Path, socket: &str) -> Command {
    let mut cmd = Command::new(orch_exe());
    cmd.current_dir(root)
        .env("ORCH_TMUX_SOCKET", socket)
        .env("ORCH_TMUX_CONFIG", "/dev/null")
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .stdin(Stdio::null());
    cmd
}

/// The pid of the tmux server on `socket`.
pub(crate) fn server_pid(socket: &str) -> anyhow::Result<u32> {
    let out = Command::new("tmux")
        .args(["-L", socket, "display-message", "-p", "#{pid}"])
        .stdin(Stdio::null())
        .output()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("cannot ask the tmux server its pid")
}

/// The value of the first `LABEL <seconds>` line in an agent's log.
pub(crate) fn stamp(log: &Path, label: &str) -> Option<f64> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(label)?.trim();
        // $EPOCHREALTIME follows the locale's decimal point.
        rest.replace(',', ".").parse().ok()
    })
}

/// Polls the logs until each has a `label` stamp (the stamps are the agents', so how
/// often this looks does not affect them; it looks rarely, so as not to compete with the
/// agents and the engine for the CPU while they start).
pub(crate) fn wait_stamps(
    logs: &[PathBuf],
    label: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<f64>> {
    let deadline = std::time::Instant::now() + timeout;
    let mut found: Vec<Option<f64>> = vec![None; logs.len()];
    loop {
        for (slot, log) in found.iter_mut().zip(logs) {
            if slot.is_none() {
                *slot = stamp(log, label);
            }
        }
        if found.iter().all(Option::is_some) {
            return Ok(found.into_iter().flatten().collect());
        }
        let missing = found.iter().filter(|s| s.is_none()).count();
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?}: {missing} of {} agents never printed {label}",
            logs.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
