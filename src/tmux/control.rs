//! One long-lived tmux control-mode client (`tmux -C attach-session`) that runs commands
//! without starting a `tmux` process for each.
//!
//! Why: a `tmux` process per command costs about 2 ms of fork, exec and connecting before
//! tmux does anything (4–10 ms on a loaded machine), and the engine's single loop waits
//! for each one; through this client the same `list-panes` takes about 0.5 ms. Measured by
//! `scripts/bench` (see BENCHMARKS.md).
//!
//! How: the client is attached to the run's session with the flags `no-output` (tmux does
//! not send it what panes print) and `ignore-size` (it never resizes windows). A command
//! list is written as one line, its words single-quoted for tmux's parser (the same
//! `tmux_quote` the hooks use, which passes every byte through but a newline), followed by
//! a line of our own, `display-message -p orch-sync-N`. tmux answers every command it ran
//! for this client with a `%begin … 1` … `%end`/`%error` block, in order; a failing
//! command stops the rest of its line, so the number of blocks is not known in advance,
//! hence the sync line: everything before its block is the answer. Blocks with flags 0
//! (commands run by hooks) and notifications (`%window-add`, …) are skipped by the reader
//! thread.
//!
//! Pipelining: `run_many` writes several command lists, each followed by its own sync line,
//! in one write, before reading any answer; tmux answers them in order, and each sync
//! marker closes one list's answer. N lists then cost one round trip instead of N (a launch
//! of many agents: N `new-window`s).
//!
//! When this cannot be used, `run` returns `None` and the caller runs a `tmux` process as
//! before: a word with a newline (it would end the line), an option rather than a command
//! (`-V`), no session yet, or a client that died (the session was killed, the server
//! exited). In that last case a command may have run before the client died; running it
//! again through a process then meets the same dead session or server and fails the same
//! way, so nothing is done twice in practice.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::args::{session_target, tmux_quote};
use super::real::PROGRAM;

/// How long one answer may take before the client is given up (tmux answers in
/// milliseconds; this only keeps a wedged client from hanging the engine).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed connection, how long before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// A command block as tmux sent it: its output lines, and whether it was `%error`.
struct Block {
    lines: Vec<String>,
    error: bool,
}

struct Conn {
    child: Child,
    stdin: ChildStdin,
    blocks: Receiver<Block>,
    sync: u64,
}

/// The control-mode client of one session, connected on first use.
pub(super) struct Control {
    global_args: Vec<String>,
    session: String,
    state: Mutex<(Option<Conn>, Option<Instant>)>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("session", &self.session)
            .finish()
    }
}

impl Control {
    pub(super) fn new(global_args: Vec<String>, session: &str) -> Control {
        Control {
            global_args,
            session: session.to_string(),
            state: Mutex::new((None, None)),
        }
    }

    /// Runs a command list: `Some(Ok(stdout))`, `Some(Err(error text))` as tmux would
    /// print them, or `None` when a `tmux` process must do it instead.
    pub(super) fn run(&self, commands: &[Vec<String>]) -> Option<Result<String, String>> {
        self.run_many(std::slice::from_ref(&commands.to_vec()))
            .and_then(|mut answers| answers.pop())
    }

    /// Runs several command lists pipelined (see the module doc): each one's answer, in
    /// order, or `None` when a `tmux` process must run them instead (then none has run:
    /// every list is checked before anything is sent).
    pub(super) fn run_many(
        &self,
        lists: &[Vec<Vec<String>>],
    ) -> Option<Vec<Result<String, String>>> {
        if lists.is_empty() {
            return Some(Vec::new());
        }
        let lines: Vec<String> = lists
            .iter()
            .map(|commands| line(commands))
            .collect::<Option<_>>()?;
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.0.is_none() {
            if state.1.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
                return None;
            }
            match self.connect() {
                Some(conn) => state.0 = Some(conn),
                None => {
                    state.1 = Some(Instant::now());
                    return None;
                }
            }
        }
        let conn = state.0.as_mut()?;
        match conn.ask_many(&lines) {
            Some(answers) => Some(answers.into_iter().map(answer).collect()),
            None => {
                // The client is gone or wedged: drop it; a process takes over.
                if let Some(conn) = state.0.take() {
                    conn.close();
                }
                state.1 = Some(Instant::now());
                None
            }
        }
    }

    fn connect(&self) -> Option<Conn> {
        // -N: never start a server. Attaching would otherwise start one when none runs,
        // which exits again at once and may take down a client starting the real one.
        let mut child = Command::new(PROGRAM)
            .arg("-N")
            .args(&self.global_args)
            .args(["-C", "attach-session", "-f", "no-output,ignore-size", "-t"])
            .arg(session_target(&self.session))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let stdout = child.stdout.take()?;
        let (tx, blocks) = channel();
        std::thread::Builder::new()
            .name("orch-tmux-control".into())
            .spawn(move || read_blocks(BufReader::new(stdout), tx))
            .ok()?;
        let mut conn = Conn {
            child,
            stdin,
            blocks,
            sync: 0,
        };
        // Proves the client is attached and answering before anything depends on it.
        match conn.ask("display-message -p ''") {
            Some(blocks) if blocks.iter().all(|b| !b.error) => Some(conn),
            _ => {
                conn.close();
                None
            }
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(conn) = state.0.take() {
            conn.close();
        }
    }
}

/// A command list as one line for tmux's parser, or `None` when a line cannot carry it: a
/// word with a newline (it would end the line), an option rather than a command (`-V`).
fn line(commands: &[Vec<String>]) -> Option<String> {
    if commands.is_empty()
        || commands
            .iter()
            .any(|c| c.first().is_none_or(|w| w.starts_with('-')))
        || commands
            .iter()
            .flatten()
            .any(|w| w.contains(['\n', '\r', '\0']))
    {
        return None;
    }
    Some(
        commands
            .iter()
            .map(|c| {
                c.iter()
                    .map(|w| tmux_quote(w))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" ; "),
    )
}

impl Conn {
    /// Sends `line` and the sync line; returns the blocks that answer `line`.
    fn ask(&mut self, line: &str) -> Option<Vec<Block>> {
        self.ask_many(&[line.to_string()])?.pop()
    }

    /// Sends every line, each followed by a sync line of its own, in one write; then reads
    /// the answers in order: the blocks before each marker answer its line.
    fn ask_many(&mut self, lines: &[String]) -> Option<Vec<Vec<Block>>> {
        let mut text = String::new();
        let mut markers = Vec::with_capacity(lines.len());
        for line in lines {
            self.sync += 1;
            let marker = format!("orch-sync-{}", self.sync);
            text.push_str(&format!("{line}\ndisplay-message -p {marker}\n"));
            markers.push(marker);
        }
        self.stdin.write_all(text.as_bytes()).ok()?;
        self.stdin.flush().ok()?;
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        let mut answers = Vec::with_capacity(lines.len());
        let mut answer = Vec::new();
        for marker in &markers {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let block = match self.blocks.recv_timeout(left) {
                    Ok(block) => block,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                        return None;
                    }
                };
                if !block.error && block.lines.len() == 1 && &block.lines[0] == marker {
                    answers.push(std::mem::take(&mut answer));
                    break;
                }
                answer.push(block);
            }
        }
        Some(answers)
    }

    /// Closing stdin detaches the client; kill it if it lingers.
    fn close(mut self) {
        drop(self.stdin);
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text tmux would have printed for the blocks: stdout, or the first error.
fn answer(blocks: Vec<Block>) -> Result<String, String> {
    let mut out = String::new();
    for block in blocks {
        let text: String = block
            .lines
            .iter()
            .flat_map(|l| [l.as_str(), "\n"])
            .collect();
        if block.error {
            return Err(text);
        }
        out.push_str(&text);
    }
    Ok(out)
}

/// The reader thread: passes on the blocks of commands this client sent (flags 1), skips
/// everything else, and ends when the client does.
fn read_blocks(stdout: impl BufRead, tx: std::sync::mpsc::Sender<Block>) {
    let mut current: Option<(String, bool, Vec<String>)> = None;
    for line in stdout.lines() {
        let Ok(line) = line else { return };
        match &mut current {
            None => {
                if let Some(rest) = line.strip_prefix("%begin ") {
                    let ours = rest.rsplit(' ').next() == Some("1");
                    current = Some((rest.to_string(), ours, Vec::new()));
                }
            }
            Some((id, ours, lines)) => {
                let end = line.strip_prefix("%end ").map(|r| (r, false));
                let end = end.or_else(|| line.strip_prefix("%error ").map(|r| (r, true)));
                match end {
                    Some((rest, error)) if rest == id.as_str() => {
                        if *ours {
                            let lines = std::mem::take(lines);
                            if tx.send(Block { lines, error }).is_err() {
                                return;
                            }
                        }
                        current = None;
                    }
                    _ => lines.push(line),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_other_clients_and_notifications_are_skipped() {
        let text = "%session-changed $0 s\n%begin 1 5 1\nhi\n%end 1 5 1\n\
                    %begin 1 6 0\nhook\n%end 1 6 0\n%window-add @3\n\
                    %begin 1 7 1\n%end 1 6 1\nbad\n%error 1 7 1\n";
        let (tx, rx) = channel();
        read_blocks(text.as_bytes(), tx);
        let blocks: Vec<Block> = rx.iter().collect();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].lines, ["hi"]);
        assert!(!blocks[0].error);
        // A line that only looks like an end of another block is output.
        assert_eq!(blocks[1].lines, ["%end 1 6 1", "bad"]);
        assert!(blocks[1].error);
        assert_eq!(answer(blocks), Err("%end 1 6 1\nbad\n".to_string()));
    }

    #[test]
    fn what_a_line_cannot_carry_goes_to_a_process() {
        let control = Control::new(vec!["-L".into(), "orch-never-started".into()], "s");
        assert!(control.run(&[vec!["-V".into()]]).is_none());
        let newline = vec!["display-message".into(), "a\nb".into()];
        assert!(control.run(&[newline]).is_none());
        // No server: no client, and a process reports the error.
        assert!(control.run(&[vec!["list-panes".into()]]).is_none());
    }
}
