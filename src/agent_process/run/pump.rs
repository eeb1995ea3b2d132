//! Copying the agent's output as it arrives, to the pane (raw, or for a CLI that streams
//! events, as its live transcript, also kept in `transcript.log`) and to one log per byte:
//! an event stream goes to `stdout.log` (where orch reads it) and the rest to `output.log`;
//! other agents' stdout and stderr go to `output.log` in order of arrival, and stdout also to
//! `stdout.log` only for the roles whose answer orch reads from it (planner, judge, oracle).
//! Each log is capped per attempt (`limits.output_cap`, see [`super::capped`]): the pane and
//! the stream parser see everything, the disk keeps the beginning and the end. The end of
//! stderr is kept to explain a failed exit.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

pub(super) use super::capped::Capped;
use super::capped::DEFAULT_CAP;
use crate::agent_process::launcher::LaunchSpec;
use crate::transcript::Transcript;

/// The launch spec's env entry that carries `limits.output_cap` (bytes).
pub const CAP_ENV: &str = "ORCH_OUTPUT_CAP";

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Stream {
    Stdout,
    Stderr,
}

/// Where the agent's output goes besides the pane.
pub(super) struct Sinks {
    output: Capped,
    /// Stdout alone, when orch reads it.
    stdout: Option<Capped>,
    /// Whether stdout goes to `output.log` too (not an event stream, kept in `stdout.log`).
    stdout_in_output: bool,
    /// Set once the exit record is about to be written.
    pub closed: bool,
    /// Whether a log write failed already (said once, not for every chunk).
    failed: bool,
}

impl Sinks {
    pub(super) fn open(spec: &LaunchSpec, streams_events: bool) -> Result<Sinks, String> {
        let cap = cap(spec);
        let role = env(spec, "ORCH_ROLE");
        // A worker's plain output is read by no one but people: `output.log` is its copy.
        let keep_stdout = streams_events || role != Some("worker");
        Ok(Sinks {
            output: Capped::new(create(&spec.output_log)?, cap),
            stdout: if keep_stdout {
                Some(Capped::new(create(&spec.stdout_log)?, cap))
            } else {
                None
            },
            stdout_in_output: !streams_events,
            closed: false,
            failed: false,
        })
    }

    fn write(&mut self, bytes: &[u8], stream: Stream) {
        if self.closed {
            return;
        }
        // Files are unbuffered: each chunk is in the file (and seen by watchers) at once.
        let mut result = Ok(());
        if stream == Stream::Stderr || self.stdout_in_output {
            result = self.output.write(bytes);
        }
        if stream == Stream::Stdout
            && let Some(stdout) = &mut self.stdout
        {
            result = result.and_then(|()| stdout.write(bytes));
        }
        if let Err(e) = result {
            self.failed_once(&e);
        }
    }

    fn failed_once(&mut self, e: &std::io::Error) {
        if !self.failed {
            self.failed = true;
            super::say(&format!(
                "orch: cannot write the agent's logs ({e}); its output still shows here — \
                 check that the disk is not full"
            ));
        }
    }

    /// A message of ours for whoever reads the output log after the pane is gone.
    pub(super) fn note(&mut self, message: &str) {
        self.write(format!("{message}\n").as_bytes(), Stream::Stderr);
    }

    /// Nothing more reaches the logs: each is left as it stays (cut with its marker).
    pub(super) fn close(&mut self) {
        self.closed = true;
        let mut result = self.output.finish();
        if let Some(stdout) = &mut self.stdout {
            result = result.and_then(|()| stdout.finish());
        }
        if let Err(e) = result {
            self.failed_once(&e);
        }
    }
}

/// `limits.output_cap` as the engine put it in the spec's env, else the default.
pub(super) fn cap(spec: &LaunchSpec) -> u64 {
    env(spec, CAP_ENV)
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CAP)
}

fn env<'a>(spec: &'a LaunchSpec, key: &str) -> Option<&'a str> {
    spec.env
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn create(path: &Path) -> Result<File, String> {
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    File::create(path).map_err(|e| {
        format!(
            "orch: cannot create the agent's log {}: {e} — check that the run directory is \
             writable and the disk is not full",
            path.display()
        )
    })
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The live transcript of a CLI's event stream, and the file that keeps it.
pub(super) struct Rendered {
    pub transcript: Transcript,
    pub log: Option<Capped>,
}

impl Rendered {
    /// `transcript.log` beside the stdout log.
    pub(super) fn log_path(spec: &LaunchSpec) -> PathBuf {
        spec.stdout_log.with_file_name("transcript.log")
    }

    fn show(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(log) = &mut self.log {
            let _ = log.write(text.as_bytes());
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
}

/// The last bytes of a stream.
#[derive(Default)]
pub(super) struct Tail {
    bytes: VecDeque<u8>,
}

impl Tail {
    const KEEP: usize = 8 * 1024;

    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(Self::KEEP);
        self.bytes.drain(..excess);
    }

    /// The last non-empty line, e.g. the error a CLI printed before it exited.
    pub(super) fn last_line(&self) -> Option<String> {
        let (a, b) = self.bytes.as_slices();
        let text = String::from_utf8_lossy(&[a, b].concat()).into_owned();
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(crate::transcript::printable)
    }
}

/// Copies one of the agent's streams, chunk by chunk as it arrives (partial lines included),
/// to the logs and then to the pane, until the agent closes it.
pub(super) fn spawn(
    mut from: impl Read + Send + 'static,
    stream: Stream,
    sinks: Arc<Mutex<Sinks>>,
    mut rendered: Option<Rendered>,
    tail: Option<Arc<Mutex<Tail>>>,
    done: mpsc::Sender<()>,
) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let chunk = &buf[..n];
            lock(&sinks).write(chunk, stream);
            if let Some(tail) = &tail {
                lock(tail).push(chunk);
            }
            // A closed pane fails these writes; keep reading so the agent never blocks on a
            // full pipe and the logs stay complete.
            match (&mut rendered, stream) {
                (Some(r), _) => {
                    let text = r.transcript.feed(chunk);
                    r.show(&text);
                }
                (None, Stream::Stdout) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(chunk).and_then(|()| out.flush());
                }
                (None, Stream::Stderr) => {
                    let _ = std::io::stderr().lock().write_all(chunk);
                }
            }
        }
        if let Some(r) = &mut rendered {
            let text = r.transcript.finish();
            r.show(&text);
            if let Some(log) = &mut r.log {
                let _ = log.finish();
            }
        }
        let _ = done.send(());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_line() {
        let mut tail = Tail::default();
        assert_eq!(tail.last_line(), None);
        tail.push(b"first\nError: 401 \x1b[31mbad key\n\n");
        assert_eq!(tail.last_line().as_deref(), Some("Error: 401 ?[31mbad key"));
        tail.push(&vec![b'x'; 20_000]);
        assert_eq!(tail.last_line().unwrap().len(), Tail::KEEP);
    }
}
