//! Follows a run's journal (`events.jsonl`) as the engine writes it, and stamps each line
//! with the moment it became readable: the "journal entry" end of the latency figures.
//!
//! Raw inotify on the file (IN_MODIFY fires on the engine's write(2), before its fsync), a
//! thread blocked in poll(2), and the stamp taken right after the new bytes were read, so a
//! stamp can only be late, never early: the figures err against orch. The journal's own `t`
//! (milliseconds, taken by the engine just before the write) is kept for cross-checks.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use crate::stats::now_s;

/// One journal line.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// When the line became readable (seconds since the epoch, CLOCK_REALTIME).
    pub seen_s: f64,
    /// False for lines already there when the tail started: their `seen_s` means nothing.
    pub fresh: bool,
    pub record: Value,
}

impl Entry {
    pub(crate) fn event(&self) -> &str {
        self.record["event"].as_str().unwrap_or("")
    }

    /// The journal's own timestamp, in seconds.
    pub(crate) fn t_s(&self) -> f64 {
        self.record["t"].as_f64().unwrap_or(f64::NAN) / 1000.0
    }

    /// A task id as text (ids may be numbers or strings).
    pub(crate) fn task(&self) -> String {
        match &self.record["task"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

pub(crate) struct Tail {
    entries: Arc<Mutex<Vec<Entry>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Tail {
    pub(crate) fn start(path: &Path) -> anyhow::Result<Tail> {
        // SAFETY: plain syscalls; the fd is owned right away.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        anyhow::ensure!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: a valid fd and NUL-terminated path.
        let wd =
            unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c_path.as_ptr(), libc::IN_MODIFY) };
        anyhow::ensure!(
            wd >= 0,
            "cannot watch {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        // Watch first, then read what is there: a line written in between is read now (not
        // fresh) and never missed.
        let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
        let entries = Arc::new(Mutex::new(Vec::new()));
        let mut pending = Vec::new();
        read_new(&mut file, &mut pending, &entries, false);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let entries = entries.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("bench-tail".into())
                .spawn(move || follow(fd, file, pending, entries, stop))?
        };
        Ok(Tail {
            entries,
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.entries.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the entries so far.
    pub(crate) fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Entry]) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.entries.lock().unwrap()) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn follow(
    fd: OwnedFd,
    mut file: File,
    mut pending: Vec<u8>,
    entries: Arc<Mutex<Vec<Entry>>>,
    stop: Arc<AtomicBool>,
) {
    let mut events = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; the timeout only lets us see `stop`.
        let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
        if ready <= 0 {
            continue;
        }
        // Drain the notifications; which write it was does not matter, the file says.
        // SAFETY: reading into our own buffer of the given length.
        while unsafe { libc::read(fd.as_raw_fd(), events.as_mut_ptr().cast(), events.len()) } > 0 {}
        read_new(&mut file, &mut pending, &entries, true);
    }
}

/// Reads what was appended since the last call and records each complete line.
fn read_new(file: &mut File, pending: &mut Vec<u8>, entries: &Mutex<Vec<Entry>>, fresh: bool) {
    let before = pending.len();
    let _ = file.read_to_end(pending);
    if pending.len() == before {
        return;
    }
    let seen_s = now_s();
    let mut list = entries.lock().unwrap();
    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = pending.drain(..=end).collect();
        if let Ok(record) = serde_json::from_slice::<Value>(&line) {
            list.push(Entry {
                seen_s,
                fresh,
                record,
            });
        }
    }
}
