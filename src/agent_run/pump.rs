//! Copying the agent's output as it arrives: everything, raw, to the logs (`output.log`, and
//! `stdout.log` for stdout, which holds a CLI's event stream), and to the pane either raw or,
//! for a CLI that streams events, as its live transcript (also kept in `transcript.log`).
//! The end of stderr is kept to explain a failed exit.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use crate::launcher::LaunchSpec;
use crate::transcript::Transcript;

#[derive(Clone, Copy, PartialEq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Where the agent's output goes besides the pane.
pub struct Sinks {
    output: File,
    stdout: File,
    /// Set once the exit record is about to be written.
    pub closed: bool,
    /// Whether a log write failed already (said once, not for every chunk).
    failed: bool,
}

impl Sinks {
    pub fn open(spec: &LaunchSpec) -> Result<Sinks, String> {
        Ok(Sinks {
            output: create(&spec.output_log)?,
            stdout: create(&spec.stdout_log)?,
            closed: false,
            failed: false,
        })
    }

    fn write(&mut self, bytes: &[u8], stream: Stream) {
        if self.closed {
            return;
        }
        // Files are unbuffered: each chunk is in the file (and seen by watchers) at once.
        let mut result = self.output.write_all(bytes);
        if stream == Stream::Stdout {
            result = result.and_then(|()| self.stdout.write_all(bytes));
        }
        if let Err(e) = result
            && !self.failed
        {
            self.failed = true;
            super::say(&format!(
                "orch: cannot write the agent's logs ({e}); its output still shows here — \
                 check that the disk is not full"
            ));
        }
    }

    /// A message of ours for whoever reads the output log after the pane is gone.
    pub fn note(&mut self, message: &str) {
        self.write(format!("{message}\n").as_bytes(), Stream::Stderr);
    }
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

pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The live transcript of a CLI's event stream, and the file that keeps it.
pub struct Rendered {
    pub transcript: Transcript,
    pub log: Option<File>,
}

impl Rendered {
    /// `transcript.log` beside the stdout log.
    pub fn log_path(spec: &LaunchSpec) -> PathBuf {
        spec.stdout_log.with_file_name("transcript.log")
    }

    fn show(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(log) = &mut self.log {
            let _ = log.write_all(text.as_bytes());
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
}

/// The last bytes of a stream.
#[derive(Default)]
pub struct Tail {
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
    pub fn last_line(&self) -> Option<String> {
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
pub fn spawn(
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
