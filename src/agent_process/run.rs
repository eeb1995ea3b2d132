//! `orch agent-run SPEC`: what a task's tmux pane runs (through its launcher, see
//! [`crate::agent_process::launcher`]). Runs the agent with no shell (the run's environment file over the
//! pane's environment, an agent CLI's prompt file on its stdin: neither ever an argument),
//! copies what it prints to the pane and to the logs as it arrives, and records how it ended
//! in `exit.json`, which is how the engine learns that a task's agent is done, whether it
//! exited, was stopped, or never started.
//!
//! For an agent CLI that prints an event stream (the launch spec's env names the agent's kind
//! in `ORCH_AGENT_KIND`), the pane shows the stream as a live transcript while the logs keep
//! it raw, and the exit record says what the stream tells of the run: why it failed, its
//! token use and cost, its session id.

mod capped;
mod pump;

pub use capped::{DEFAULT_CAP as DEFAULT_OUTPUT_CAP, MIN_CAP as MIN_OUTPUT_CAP};
pub use pump::CAP_ENV as OUTPUT_CAP_ENV;

use std::io::Write;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::agent_process::launcher::{self, LaunchSpec};
use crate::state::environ;
use crate::transcript::Transcript;
use crate::workers::{self, Adapter, Usage};
use pump::{Rendered, Sinks, Stream, Tail, lock};

/// The code recorded when the agent could not be started, as a shell does for a command it
/// cannot run.
pub const NOT_STARTED: i32 = 127;

/// Where, next to `exit.json`, a sandbox records how the agent in it ended.
const SANDBOX_STATUS_FILE: &str = "sandbox-exit.json";
/// The directory of the attempt's that holds it, writable in the box (see sandbox/mounts.rs).
const SANDBOX_STATUS_DIR: &str = "box";

/// How long to keep copying output after the agent exited. Only a process the agent left
/// behind, still holding its stdout or stderr, keeps the pipes open that long; the engine
/// must not wait on it for `exit.json`.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What an agent attempt printed on stdout, as far as its logs keep it (see
/// [`pump`]): `stdout.log`, else, for a worker whose plain output is kept once, `output.log`
/// (its stderr interleaved). Empty when neither can be read.
pub fn read_stdout(attempt_dir: &Path) -> String {
    std::fs::read_to_string(attempt_dir.join("stdout.log"))
        .or_else(|_| std::fs::read_to_string(attempt_dir.join("output.log")))
        .unwrap_or_default()
}

/// How the agent ended: the content of `exit.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ExitRecord {
    /// The exit status, when it exited (127 when it could not be started).
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub ended_at_ms: u64,
    /// Why the run failed, in one line, when its output says (an API error, a denied edit),
    /// or for a failed exit, the last line the agent printed on stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Token use and cost, from an agent CLI's event stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The agent CLI's session id, to resume the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The stop signal (TERM, INT, HUP) `agent-run` itself received while the agent ran, if
    /// any: the agent was stopped from outside (by orch, `orch down`, or its pane or tmux
    /// server going away) rather than ending of its own accord.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<i32>,
    /// The lines of the agent's output that show its sandbox refusing a write (a few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sandbox_refused: Vec<String>,
}

impl ExitRecord {
    pub fn read(path: &Path) -> anyhow::Result<ExitRecord> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the agent's exit record {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "the agent's exit record {} is not valid; it is written by `orch agent-run`, \
                 so run the task again",
                path.display()
            )
        })
    }

    /// E.g. "exited with status 3", "killed by signal 9 (SIGKILL)", "exited with status 1:
    /// claude reported an error: API Error: 401 ...".
    pub fn describe(&self) -> String {
        let how = self.how();
        match (&self.failure, self.code, self.signal) {
            (None, _, _) => how,
            (Some(failure), Some(0), None) => format!("{how}, but {failure}"),
            (Some(failure), _, _) => format!("{how}: {failure}"),
        }
    }

    fn how(&self) -> String {
        match (self.code, self.signal) {
            (_, Some(sig)) => match signal_name(sig) {
                Some(name) => format!("killed by signal {sig} ({name})"),
                None => format!("killed by signal {sig}"),
            },
            (Some(code), None) => format!("exited with status {code}"),
            (None, None) => "ended without an exit status".to_string(),
        }
    }

    /// The exit code a shell would report: the status, or 128 + the signal.
    pub fn exit_code(&self) -> u8 {
        match (self.code, self.signal) {
            (_, Some(sig)) => u8::try_from(128 + sig.clamp(0, 127)).unwrap_or(255),
            (Some(code), None) => u8::try_from(code).unwrap_or(1),
            (None, None) => 1,
        }
    }
}

/// The usual name of a signal, e.g. "SIGTERM".
pub fn signal_name(sig: i32) -> Option<&'static str> {
    const NAMES: &[(i32, &str)] = &[
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    NAMES.iter().find(|(n, _)| *n == sig).map(|(_, name)| *name)
}

/// Runs the agent described by the spec at `spec_path`, and returns its exit code (128 + the
/// signal when a signal killed it), so that the pane's dead status matches `exit.json`.
/// The user's message (`orch tell`) as the pane and the transcript show it, each line made
/// printable.
fn notice_lines(notice: &str) -> Vec<String> {
    std::iter::once("==> the user's message (orch tell):".to_string())
        .chain(
            notice
                .lines()
                .map(|line| format!("    {}", printable(line))),
        )
        .collect()
}

pub fn run(spec_path: &Path) -> anyhow::Result<u8> {
    // First of all, so that a stop request arriving at any point is recorded, not fatal.
    catch_stop_signals()?;
    // The logs and the exit record are this user's alone; the agent gets the user's umask.
    crate::private::restrict();
    let spec = LaunchSpec::read(spec_path)?;
    // exit.json means "done": one left by an earlier run of this spec must not say so now.
    match std::fs::remove_file(&spec.exit_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot remove the old exit record {}; check that the run directory is \
                     writable",
                    spec.exit_file.display()
                )
            });
        }
    }
    say(&format!("==> {}", printable(&spec.title)));
    if let Some(notice) = &spec.notice {
        for line in notice_lines(notice) {
            say(&line);
        }
    }
    let started_at_ms = now_ms();
    let kind = workers::kind_in_env(&spec.env);
    let adapter = kind.map(workers::adapter).filter(|a| a.streams_events());
    let stderr_tail = Arc::new(Mutex::new(Tail::default()));
    // The agent's box, held open from its end until that end is recorded (see
    // sandbox/hold.rs): its taking down is no part of the time an exit takes to be heard.
    let mut hold = None;
    let (code, signal) = execute(&spec, adapter, &stderr_tail, &mut hold)?;
    let mut record = ExitRecord {
        code,
        signal,
        started_at_ms,
        ended_at_ms: now_ms(),
        failure: None,
        usage: None,
        session_id: None,
        stopped_by: received(),
        sandbox_refused: Vec::new(),
    };
    // Read once, for both uses below: it lies between the agent's end and exit.json.
    let command_kind = kind == Some(crate::config::AgentKind::Command);
    let output = if spec.sandbox.is_some() || command_kind {
        std::fs::read(&spec.output_log).unwrap_or_default()
    } else {
        Vec::new()
    };
    if spec.sandbox.is_some() {
        record.sandbox_refused = crate::sandbox::refusals(&String::from_utf8_lossy(&output), 5);
    }
    assess(&mut record, &spec, adapter, &lock(&stderr_tail));
    if command_kind {
        // Its `ORCH_USAGE` lines, in its output (where a worker's stdout goes).
        record.usage = workers::command::usage_in(&output);
    }
    say(&format!("==> the agent {}", record.describe()));
    let mut json = serde_json::to_vec(&record).context("cannot encode the exit record")?;
    json.push(b'\n');
    // The last act: once exit.json exists, the engine may take the logs as complete.
    let written = launcher::write_new_then_sync(&spec.exit_file, &json, 0o600);
    drop(hold);
    if let Err(e) = written {
        // A full disk, say. The pane's exit status still says how the agent ended, and the
        // engine reads it from there: exit with the agent's status, not an error of ours.
        say(&format!(
            "==> cannot record how the agent ended ({e:#}); orch takes it from this pane's \
             exit status"
        ));
    }
    Ok(record.exit_code())
}

/// What the run's output says beyond its exit status: an agent CLI's assessment of its event
/// stream, else for a failed exit the last line of stderr. A run that was not started or was
/// killed by a signal needs no more words.
fn assess(
    record: &mut ExitRecord,
    spec: &LaunchSpec,
    adapter: Option<&'static dyn Adapter>,
    stderr: &Tail,
) {
    if record.code == Some(NOT_STARTED) {
        return;
    }
    if let Some(adapter) = adapter {
        let stdout = std::fs::read_to_string(&spec.stdout_log).unwrap_or_default();
        let assessment = adapter.assess(&stdout);
        record.usage = assessment.usage;
        record.session_id = assessment.session_id;
        record.failure = assessment.failure;
    }
    if record.signal.is_none() && record.code != Some(0) && record.failure.is_none() {
        record.failure = stderr
            .last_line()
            .map(|l| crate::transcript::truncate(&format!("its last words: {l}"), 300));
    }
    if record.signal.is_some() {
        // Killed: the stream is cut short, which says nothing new.
        record.failure = None;
    }
}

/// Runs the agent to its end and returns its (code, signal). A problem that keeps the agent
/// from starting is shown in the pane and the output log, and becomes code 127.
fn execute(
    spec: &LaunchSpec,
    adapter: Option<&'static dyn Adapter>,
    stderr_tail: &Arc<Mutex<Tail>>,
    hold: &mut Option<crate::sandbox::Hold>,
) -> anyhow::Result<(Option<i32>, Option<i32>)> {
    let sinks = match Sinks::open(spec, adapter.is_some()) {
        Ok(sinks) => Arc::new(Mutex::new(sinks)),
        Err(message) => {
            say(&message);
            return Ok((Some(NOT_STARTED), None));
        }
    };
    let not_started = |message: String| -> anyhow::Result<(Option<i32>, Option<i32>)> {
        say(&message);
        lock(&sinks).note(&message);
        Ok((Some(NOT_STARTED), None))
    };
    let Some((program, args)) = spec.argv.split_first() else {
        return not_started(
            "orch: cannot run the agent: its command is empty — fix the agent's command in \
             orch.yaml; `orch doctor` checks every agent"
                .to_string(),
        );
    };
    if let Some((key, _)) = spec
        .env
        .iter()
        .find(|(k, _)| k.is_empty() || k.contains(['=', '\0']))
    {
        return not_started(format!(
            "orch: cannot run `{}`: {key:?} is not a valid environment variable name — fix \
             the agent's env in orch.yaml",
            printable(program)
        ));
    }
    if !spec.cwd.is_dir() {
        return not_started(format!(
            "orch: cannot run `{}`: its directory {} does not exist — was the project moved?",
            printable(program),
            spec.cwd.display()
        ));
    }
    // The caller's environment and the prompt come from files, never from a command line.
    let run_env = match spec.env_file.as_deref().map(environ::read).transpose() {
        Ok(vars) => vars.unwrap_or_default(),
        Err(e) => return not_started(format!("orch: cannot run `{}`: {e:#}", printable(program))),
    };
    let stdin = match &spec.stdin {
        None => None,
        Some(path) => match std::fs::File::open(path) {
            Ok(file) => Some(file),
            Err(e) => {
                return not_started(format!(
                    "orch: cannot run `{}`: cannot open its prompt {}: {e} — start the task \
                     again with orch",
                    printable(program),
                    path.display()
                ));
            }
        },
    };
    if let Some(sig) = received() {
        // Stopped before it started: record it as if the agent had got the signal.
        say("orch: stopped before the agent started");
        return Ok((None, Some(sig)));
    }

    // No process_group(): the agent stays in our group, which is what the engine signals.
    // In its sandbox when the spec names one (the sandbox's module says how stops reach it).
    // In a directory of its own: the only place of the run's record the box may write.
    let status_file = spec
        .exit_file
        .with_file_name(SANDBOX_STATUS_DIR)
        .join(SANDBOX_STATUS_FILE);
    let agent = crate::sandbox::Agent {
        program,
        args,
        base_env: &run_env,
        env: &spec.env,
        cwd: &spec.cwd,
        status_file: &status_file,
    };
    let (mut child, ending) = match spawn(spec, &agent, stdin.as_ref(), &sinks) {
        Ok(spawned) => spawned,
        Err(e) => return not_started(cannot_start(program, &e)),
    };
    if let Some(sig) = received() {
        // The signal may have reached the child between fork and exec, where our handler
        // swallowed it; pass it on so that the stop is not lost. A sandbox ignores it
        // until the agent starts: it has done nothing yet, so kill it.
        let sig = if spec.sandbox.is_some() {
            libc::SIGKILL
        } else {
            sig
        };
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(child.id() as libc::pid_t, sig);
        }
    }

    let (done_tx, done_rx) = mpsc::channel();
    let mut open = 0;
    if let Some(out) = child.stdout.take() {
        // The CLI's events become the pane's transcript; the logs keep them raw.
        let rendered = adapter.map(|adapter| Rendered {
            transcript: Transcript::new(move |event| adapter.entries(event), &spec.cwd),
            log: std::fs::File::create(Rendered::log_path(spec))
                .ok()
                .map(|mut file| {
                    // The transcript opens with the user's message, as the pane does: the
                    // turn it starts is the answer to it.
                    if let Some(notice) = &spec.notice {
                        for line in notice_lines(notice) {
                            let _ = writeln!(file, "{line}");
                        }
                    }
                    pump::Capped::new(file, pump::cap(spec))
                }),
        });
        pump::spawn(
            out,
            Stream::Stdout,
            Arc::clone(&sinks),
            rendered,
            None,
            done_tx.clone(),
        );
        open += 1;
    }
    if let Some(err) = child.stderr.take() {
        pump::spawn(
            err,
            Stream::Stderr,
            Arc::clone(&sinks),
            None,
            Some(Arc::clone(stderr_tail)),
            done_tx,
        );
        open += 1;
    }
    // How the agent ended: its own status, or what its box says.
    let ended = match ending {
        None => {
            let status = child.wait().context("failed to wait for the agent")?;
            (status.code(), status.signal())
        }
        Some(crate::sandbox::Ending::Own(info)) => {
            // Held until the exit record is written (see sandbox/hold.rs).
            *hold = info.hold();
            let status = child.wait().context("failed to wait for the agent")?;
            // Its record, where its status would mislead.
            crate::sandbox::ended(status, &status_file)
        }
        Some(crate::sandbox::Ending::Shared(status)) => match status.read() {
            crate::sandbox::Said::Ended(ended) => {
                if !ended.left.is_empty() {
                    record_left(spec, &ended.left);
                }
                // Said before the copy of the box is taken down (as its child, which holds
                // it, ends): that is reaped once the exit record is written.
                *hold = Some(crate::sandbox::Hold::Entered(child));
                (ended.code, ended.signal)
            }
            // (A box not entered fails the spawn: only a killed init says nothing here.)
            crate::sandbox::Said::Failed { .. } | crate::sandbox::Said::Nothing => {
                let status = child.wait().context("failed to wait for the agent")?;
                crate::sandbox::from_status(status)
            }
        },
    };

    let deadline = Instant::now() + DRAIN_GRACE;
    while open > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(()) => open -= 1,
            Err(_) => {
                say(
                    "orch: the agent exited but something it started still holds its output; \
                     no longer logging it",
                );
                break;
            }
        }
    }
    // Nothing may reach the logs once exit.json says they are complete.
    lock(&sinks).close();
    Ok(ended)
}

/// Spawns the agent: in the run's shared box where it can enter one, else as it is to run.
fn spawn(
    spec: &LaunchSpec,
    agent: &crate::sandbox::Agent,
    stdin: Option<&std::fs::File>,
    sinks: &Arc<Mutex<Sinks>>,
) -> std::io::Result<(std::process::Child, Option<crate::sandbox::Ending>)> {
    let keep = inherited_ignored();
    let tell = |note: &str| {
        say(note);
        lock(sinks).note(note);
    };
    let mut share = true;
    loop {
        let prepared = crate::sandbox::command_holding(spec.sandbox.as_ref(), agent, &keep, share)?;
        if let Some(note) = &prepared.note {
            tell(note);
        }
        let mut command = prepared.command;
        command
            .stdin(match stdin {
                None => Stdio::null(),
                Some(file) => Stdio::from(file.try_clone()?),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        crate::private::user_umask_for(&mut command);
        let spawned = command.spawn();
        // Our copies of the pipes the command's pre-exec steps hold go with it.
        drop(command);
        match (spawned, prepared.ending) {
            (Ok(child), ending) => return Ok((child, ending)),
            (Err(e), Some(crate::sandbox::Ending::Shared(status))) => match status.failure() {
                // Found here, not in the box.
                None if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(std::io::Error::other(
                        "not found in the sandbox: is it installed where the sandbox can see \
                         it (not under a hidden directory)?",
                    ));
                }
                None => return Err(e),
                Some(why) => {
                    tell(&format!(
                        "orch: cannot enter the run's sandbox ({why}); this agent gets a box \
                         of its own"
                    ));
                    share = false;
                }
            },
            (Err(e), _) => return Err(e),
        }
    }
}

/// What the agent left running in its box, where the engine reads it (see
/// `leftovers::left_in_box`).
fn record_left(spec: &LaunchSpec, left: &[crate::agent_process::leftovers::Leftover]) {
    let Some(attempt) = spec.exit_file.parent() else {
        return;
    };
    let file = crate::agent_process::leftovers::box_file(attempt);
    if let (Some(dir), Ok(json)) = (file.parent(), serde_json::to_vec(left)) {
        let _ = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&file, json));
    }
}

fn cannot_start(program: &str, e: &std::io::Error) -> String {
    let program = printable(program);
    let why = match e.kind() {
        std::io::ErrorKind::NotFound => "not found".to_string(),
        std::io::ErrorKind::PermissionDenied => "not executable (permission denied)".to_string(),
        _ => e.to_string(),
    };
    format!(
        "orch: cannot run `{program}`: {why} — install it or fix the agent's command in \
         orch.yaml; `orch doctor` checks every agent"
    )
}

/// Prints one of our own lines to the pane. Never fails: the pane may be gone.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// `text` without control characters, which could drive the pane's terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The last stop signal received, 0 for none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// Whether we lead our session, i.e. the launcher was exec'd straight into the pane.
static SESSION_LEADER: AtomicBool = AtomicBool::new(false);
/// Whether a hangup was passed on to our process group already.
static HANGUP_PASSED_ON: AtomicBool = AtomicBool::new(false);
/// The stop signals whoever started us had ignored (a bit per signal number).
static INHERITED_IGNORED: AtomicU64 = AtomicU64::new(0);

/// The stop signals whoever started us had ignored, which the agent keeps ignoring.
fn inherited_ignored() -> Vec<i32> {
    let bits = INHERITED_IGNORED.load(Ordering::SeqCst);
    (1..64).filter(|sig| bits & (1 << sig) != 0).collect()
}

extern "C" fn on_stop_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: atomics and kill(2).
    RECEIVED.store(sig, Ordering::SeqCst);
    // When a pane closes, the kernel sends SIGHUP to the session leader only, and to its
    // process group only once the leader exits. We lead and stay to record the exit, so do
    // what our exit would have done: pass the hangup to the group, agent included (once:
    // we get it back ourselves).
    if sig == libc::SIGHUP
        && SESSION_LEADER.load(Ordering::SeqCst)
        && !HANGUP_PASSED_ON.swap(true, Ordering::SeqCst)
    {
        let saved = errno::get();
        // SAFETY: kill(2) is async-signal-safe; 0 means our own process group.
        unsafe {
            libc::kill(0, libc::SIGHUP);
        }
        // The interrupted code may be about to read errno.
        errno::set(saved);
    }
}

fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// Keeps SIGTERM, SIGINT and SIGHUP from killing us before `exit.json` is written. The agent
/// is in our process group, so it gets the same signal and dies of it (or not) by itself; we
/// then record how it ended. A handler, not SIG_IGN: handlers are reset by exec, while an
/// ignored signal would stay ignored in the agent, which then could not be stopped.
fn catch_stop_signals() -> anyhow::Result<()> {
    // SAFETY: getsid(2) and getpid(2) only read our own ids.
    let leader = unsafe { libc::getsid(0) == libc::getpid() };
    SESSION_LEADER.store(leader, Ordering::SeqCst);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: sigaction(2) with zeroed, then filled, structs that live across the call;
        // the handler is async-signal-safe.
        let result = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                -1
            } else if old.sa_sigaction == libc::SIG_IGN {
                // Whoever started us wants this signal ignored (nohup, a background job), and
                // the agent inherits that; keep it so.
                INHERITED_IGNORED.fetch_or(1 << sig, Ordering::SeqCst);
                0
            } else {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_stop_signal as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut())
            }
        };
        if result != 0 {
            anyhow::bail!(
                "cannot install a handler for signal {sig}: {}; the agent was not started",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

/// errno access for the signal handler, which must leave it as it found it.
mod errno {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn location() -> *mut libc::c_int {
        // SAFETY: returns this thread's errno slot; always valid.
        unsafe { libc::__errno_location() }
    }

    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    fn location() -> *mut libc::c_int {
        // SAFETY: returns this thread's errno slot; always valid.
        unsafe { libc::__error() }
    }

    pub(super) fn get() -> libc::c_int {
        // SAFETY: the slot is valid for the calling thread.
        unsafe { *location() }
    }

    pub(super) fn set(value: libc::c_int) {
        // SAFETY: as above.
        unsafe { *location() = value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(code: Option<i32>, signal: Option<i32>) -> ExitRecord {
        ExitRecord {
            code,
            signal,
            started_at_ms: 1,
            ended_at_ms: 2,
            failure: None,
            usage: None,
            session_id: None,
            stopped_by: None,
            sandbox_refused: Vec::new(),
        }
    }

    #[test]
    fn describe_and_exit_code() {
        assert_eq!(record(Some(3), None).describe(), "exited with status 3");
        assert_eq!(record(Some(3), None).exit_code(), 3);
        assert_eq!(
            record(None, Some(9)).describe(),
            "killed by signal 9 (SIGKILL)"
        );
        assert_eq!(record(None, Some(15)).exit_code(), 143);
        assert_eq!(record(None, Some(99)).describe(), "killed by signal 99");
        assert_eq!(record(Some(-1), None).exit_code(), 1);
    }

    #[test]
    fn a_failure_explains_the_exit() {
        let mut r = record(Some(1), None);
        r.failure = Some("claude reported an error: API Error: 401".into());
        assert_eq!(
            r.describe(),
            "exited with status 1: claude reported an error: API Error: 401"
        );
        r.code = Some(0);
        r.failure = Some("claude refused 1 action(s)".into());
        assert_eq!(
            r.describe(),
            "exited with status 0, but claude refused 1 action(s)"
        );
    }

    #[test]
    fn the_exit_record_has_the_documented_shape() {
        let json = serde_json::to_value(record(None, Some(15))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": null, "signal": 15, "started_at_ms": 1, "ended_at_ms": 2})
        );
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("exit.json");
        std::fs::write(&path, json.to_string()).unwrap();
        assert_eq!(ExitRecord::read(&path).unwrap(), record(None, Some(15)));
        std::fs::write(&path, "{").unwrap();
        assert!(ExitRecord::read(&path).is_err());
    }

    #[test]
    fn control_characters_never_reach_the_pane_from_a_title() {
        assert_eq!(printable("task\x1b[2J 1\n"), "task?[2J 1?");
    }
}
