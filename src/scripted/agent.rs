//! The agent's entry point: read the prompt, find its context, read the knobs from the
//! environment, then act by role. Bad input (no context, an unknown fault, a refused path) is
//! reported on stderr with exit code 2, the way a real agent CLI rejects bad arguments.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::fault::{Active, FAULT_ENV, Fault, Faults};
use super::{judge, planner, worker};
use crate::prompt::{CONTEXT_MARKER, Context, Role};

/// The environment variable that sets the wait before each file written.
pub const PACE_ENV: &str = "ORCH_SCRIPTED_PACE";

/// The pace of the `slow` fault.
const SLOW_PACE: Duration = Duration::from_secs(2);

/// Exit code for bad input.
const EXIT_BAD_INPUT: i32 = 2;

/// Input the agent cannot act on; reported on stderr and exits 2 rather than 1, so that a
/// caller can tell "you called me wrong" from "I failed".
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct BadInput(pub String);

pub(super) fn bad_input(message: impl Into<String>) -> anyhow::Error {
    BadInput(message.into()).into()
}

/// What the environment sets: the fault list and the pace.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub faults: Faults,
    pub pace: Duration,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        let var = |name: &str| match std::env::var(name) {
            Ok(value) => Ok(value),
            Err(std::env::VarError::NotPresent) => Ok(String::new()),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(bad_input(format!("{name} is not valid UTF-8")))
            }
        };
        Settings::parse(&var(FAULT_ENV)?, &var(PACE_ENV)?)
    }

    /// From the values of `ORCH_SCRIPTED_FAULT` and `ORCH_SCRIPTED_PACE` (empty when unset).
    pub fn parse(faults: &str, pace: &str) -> anyhow::Result<Settings> {
        let faults = Faults::parse(faults).map_err(|e| bad_input(e.to_string()))?;
        let pace = parse_pace(pace)?;
        Ok(Settings { faults, pace })
    }
}

/// `700ms`, `1s`, `1m 30s`; a bare number is seconds, as in orch.yaml; empty is no pace.
pub(super) fn parse_pace(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Duration::ZERO);
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| {
        bad_input(format!(
            "{PACE_ENV}: invalid duration `{text}` ({e}): write it like `700ms` or `1s`"
        ))
    })
}

/// Everything one run of the agent works with.
pub(super) struct Session<'a> {
    pub ctx: Context,
    /// The whole prompt, for the judge, which looks for task ids and gate results in it.
    pub prompt: String,
    pub root: PathBuf,
    pub faults: Active,
    pub pace: Duration,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

impl Session<'_> {
    /// One line of the answer (or of progress, for a worker).
    pub(super) fn say(&mut self, line: impl AsRef<str>) -> anyhow::Result<()> {
        writeln!(self.out, "{}", line.as_ref()).context("failed to write to stdout")?;
        self.out.flush().context("failed to write to stdout")
    }

    /// Waits before writing a file, so that a person watching sees the work happen.
    pub(super) fn wait_pace(&self) {
        let pace = if self.faults.has(Fault::Slow) {
            SLOW_PACE
        } else {
            self.pace
        };
        if !pace.is_zero() {
            std::thread::sleep(pace);
        }
    }

    /// The `crash` fault: a message on stderr, exit code 3.
    pub(super) fn crash(&mut self) -> i32 {
        let _ = writeln!(
            self.err,
            "scripted agent: crashing on purpose ({FAULT_ENV} has `crash`)"
        );
        3
    }

    /// The `hang` fault: no output, no files, no CPU, until a signal ends the process.
    pub(super) fn hang(&mut self) -> ! {
        let _ = self.out.flush();
        super::files::block_forever()
    }
}

/// Reads the prompt file, acts by role, prints the answer on stdout; returns the exit code.
pub fn run(prompt_file: &Path) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let (mut out, mut err) = (stdout.lock(), stderr.lock());
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => return report(e, &mut err),
    };
    run_with(prompt_file, &settings, &mut out, &mut err)
}

/// [`run`] with explicit settings and streams, for tests (the environment is process-wide).
pub fn run_with(
    prompt_file: &Path,
    settings: &Settings,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let result = session(prompt_file, settings, out, err).and_then(|mut s| act(&mut s));
    match result {
        Err(e) => report(e, err),
        ok => ok,
    }
}

/// Bad input becomes a message on stderr and exit code 2; anything else stays an error.
pub(super) fn report(e: anyhow::Error, err: &mut dyn Write) -> anyhow::Result<i32> {
    if e.chain()
        .any(<dyn std::error::Error + 'static>::is::<BadInput>)
    {
        let _ = writeln!(err, "orch scripted-agent: {e:#}");
        Ok(EXIT_BAD_INPUT)
    } else {
        Err(e)
    }
}

fn session<'a>(
    prompt_file: &Path,
    settings: &Settings,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
) -> anyhow::Result<Session<'a>> {
    let prompt = std::fs::read_to_string(prompt_file).map_err(|e| {
        bad_input(format!(
            "cannot read the prompt file {}: {e}",
            prompt_file.display()
        ))
    })?;
    let ctx = find_context(&prompt, prompt_file)?;
    let root = PathBuf::from(&ctx.project_dir);
    if !root.is_absolute() || !root.is_dir() {
        return Err(bad_input(format!(
            "the context's project_dir `{}` is not an existing absolute directory",
            ctx.project_dir
        )));
    }
    let faults = settings.faults.active(ctx.role, ctx.task.as_ref());
    Ok(Session {
        ctx,
        prompt,
        root,
        faults,
        pace: settings.pace,
        out,
        err,
    })
}

/// The context, or an error saying whether the line is missing or malformed (and why).
fn find_context(prompt: &str, prompt_file: &Path) -> anyhow::Result<Context> {
    if let Some(ctx) = Context::find(prompt) {
        return Ok(ctx);
    }
    let file = prompt_file.display();
    let last = prompt.lines().rev().find_map(|line| {
        let json = line.trim_start().strip_prefix(CONTEXT_MARKER)?;
        Some(serde_json::from_str::<Context>(json.trim_end()))
    });
    Err(bad_input(match last {
        Some(Err(e)) => format!("{file}: the {CONTEXT_MARKER}line is not a valid context: {e}"),
        _ => format!(
            "{file} has no `{CONTEXT_MARKER}{{json}}` line: the scripted agent acts only on \
             prompts written by orch"
        ),
    }))
}

fn act(s: &mut Session) -> anyhow::Result<i32> {
    // A worker misbehaves part way through its files; other roles before answering.
    if s.ctx.role != Role::Worker {
        if s.faults.has(Fault::Crash) {
            return Ok(s.crash());
        }
        if s.faults.has(Fault::Hang) {
            s.hang();
        }
        if s.faults.has(Fault::Garbage) {
            s.say(garbage(s.ctx.role))?;
            return Ok(0);
        }
    }
    match s.ctx.role {
        Role::Planner => planner::run(s),
        Role::Worker => worker::run(s),
        Role::Judge => judge::judge(s),
        Role::Oracle => judge::oracle(s),
    }
}

/// An answer with no JSON in it (not even a brace), whatever parser reads it.
pub(super) fn garbage(role: Role) -> String {
    format!(
        "Hmm. As the {role} I have been thinking about this for a while, and honestly the \
         answer depends on [many things] (mostly the weather). Let me get back to you."
    )
}
