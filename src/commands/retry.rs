//! `orch retry TASK [--run ID] [--message TEXT | --message-file FILE|-]`: a task that failed
//! for good tried again, with a fresh set of attempts; the tasks it blocked are pending again.
//! The retry is a request file in the run directory (see `engine::retry`): a live engine
//! journals it at once and launches the task, and this command waits to say so; for a run
//! without an engine (failed, interrupted, stopped, crashed) this command starts one, like
//! `orch resume`, which applies it before anything else. The message goes from here into a
//! file and from there into the prompt of the task's next attempts, never through a pane.

use std::io::{IsTerminal as _, Read as _};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{Global, resume, runs, up};
use crate::engine::retry::{RetryRequest, refusal, request};
use crate::error::{EXIT_OK, usage};
use crate::plan::TaskId;
use crate::state::{Outcome, Phase};

/// How long an engine gets to journal a retry (a live one looks at every tick, once a second).
const APPLIED_WITHIN: Duration = Duration::from_secs(15);

/// The longest message taken: the longest text the journal keeps whole (it goes into every
/// prompt of the retry, from the journal).
const MESSAGE_MAX: usize = crate::state::TEXT_MAX;

/// Where the message comes from.
pub(crate) enum Message<'a> {
    None,
    Text(&'a str),
    /// A file, or standard input for `-`.
    File(&'a Path),
}

pub(crate) fn run(
    global: &Global,
    task: &str,
    run: Option<&str>,
    message: Message,
    detach: bool,
) -> anyhow::Result<u8> {
    let message = read_message(message)?;
    let loaded = runs::load(global, run)?;
    let run_id = loaded.info.run_id.clone();
    let orch = crate::invocation::orch();
    let task = TaskId::new(task);
    if let Some(why) = refusal(&loaded.state, &task) {
        return Err(usage(format!("run {run_id}: {why}")));
    }
    if let Phase::Finished(Outcome::Succeeded) = loaded.state.phase {
        return Err(usage(format!(
            "run {run_id} succeeded: there is nothing to retry"
        )));
    }
    let retry = RetryRequest {
        id: format!("{}-{}", crate::state::now_ms(), std::process::id()),
        task: task.clone(),
        message,
    };
    let retries = crate::config::load(&loaded.dir.config()).map_or(0, |c| c.limits.retries);
    let told = |unblocked: &[TaskId]| {
        let mut line = format!(
            "run {run_id}: task {task} is tried again, with {} attempt(s)",
            retries + 1
        );
        if !unblocked.is_empty() {
            let names: Vec<String> = unblocked.iter().map(ToString::to_string).collect();
            line.push_str(&format!("; pending again: {}", names.join(", ")));
        }
        line
    };
    let written = request(&loaded.dir, &retry)?;
    if loaded.engine_alive {
        match wait_applied(global, &run_id, &retry.id)? {
            Applied::Yes(unblocked) => {
                println!("{}", told(&unblocked));
                println!(
                    "  watch: {orch} attach --run {run_id}   wait: {orch} wait --run {run_id}"
                );
                return Ok(EXIT_OK);
            }
            Applied::Refused(why) => return Err(usage(format!("run {run_id}: {why}"))),
            Applied::Waiting => {
                println!(
                    "run {run_id}: the retry of task {task} is recorded; its engine has not \
                     applied it yet (`{orch} status` shows when it has)"
                );
                return Ok(EXIT_OK);
            }
            // Ended meanwhile (the run finished before it read the request): a new engine
            // applies it, below.
            Applied::EngineGone => {}
        }
    }
    let loaded = runs::load(global, Some(&run_id))?;
    if loaded.state.retry_requests.contains(&retry.id) {
        println!("{}", told(&unblocked_in_journal(&loaded.dir, &retry.id)));
        return Ok(EXIT_OK);
    }
    let started = match resume::start_loaded(loaded, true) {
        Ok(started) => started,
        Err(e) => {
            // Not applied, and never to be by surprise: the request goes with the refusal.
            let _ = std::fs::remove_file(&written);
            return Err(e);
        }
    };
    match wait_applied(global, &run_id, &retry.id)? {
        Applied::Yes(unblocked) => println!("{}", told(&unblocked)),
        Applied::Refused(why) => return Err(usage(format!("run {run_id}: {why}"))),
        Applied::Waiting | Applied::EngineGone => println!(
            "run {run_id}: the retry of task {task} is recorded and a new engine started; it \
             has not applied it yet (`{orch} status` shows when it has)"
        ),
    }
    let detach = detach || !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal();
    if detach {
        println!(
            "run {run_id} goes on in tmux session {}{}",
            started.session,
            up::server_note(&started.tmux)
        );
        up::print_hints(&started, None);
        return Ok(EXIT_OK);
    }
    up::show(&started, "goes on", None)
}

enum Applied {
    /// Journaled, freeing these tasks.
    Yes(Vec<TaskId>),
    /// The engine would not apply it, for this reason.
    Refused(String),
    /// Not yet, and the engine still runs.
    Waiting,
    /// Not applied, and the engine is gone.
    EngineGone,
}

/// Waits for the run's engine to journal the retry `id`.
fn wait_applied(global: &Global, run_id: &str, id: &str) -> anyhow::Result<Applied> {
    let deadline = Instant::now() + APPLIED_WITHIN;
    loop {
        let now = runs::load(global, Some(run_id))?;
        if now.state.retry_requests.contains(id) {
            return Ok(Applied::Yes(unblocked_in_journal(&now.dir, id)));
        }
        if let Some(w) = now
            .state
            .warnings
            .iter()
            .rev()
            .find(|w| w.message.contains(&format!("retry {id} ")))
        {
            return Ok(Applied::Refused(w.message.clone()));
        }
        if !now.engine_alive {
            return Ok(Applied::EngineGone);
        }
        if Instant::now() >= deadline {
            return Ok(Applied::Waiting);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The tasks the journal's `task_retried` for request `id` made pending again.
fn unblocked_in_journal(dir: &crate::state::RunDir, id: &str) -> Vec<TaskId> {
    let Ok(replay) = crate::state::read_journal(&dir.events()) else {
        return Vec::new();
    };
    replay
        .records
        .into_iter()
        .find_map(|r| match r.event {
            crate::state::Event::TaskRetried {
                id: i, unblocked, ..
            } if i == id => Some(unblocked),
            _ => None,
        })
        .unwrap_or_default()
}

/// The message, whole: any text, newlines and quotes included. It must be UTF-8 (it goes
/// into a prompt, which is text) and not empty.
fn read_message(message: Message) -> anyhow::Result<Option<String>> {
    let (bytes, from) = match message {
        Message::None => return Ok(None),
        Message::Text(text) => (text.as_bytes().to_vec(), "--message".to_string()),
        Message::File(path) if path == Path::new("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| usage(format!("cannot read the message from standard input: {e}")))?;
            (bytes, "standard input".to_string())
        }
        Message::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                usage(format!(
                    "cannot read the message file {}: {e}; give an existing file, or `-` for \
                     standard input",
                    path.display()
                ))
            })?;
            (bytes, path.display().to_string())
        }
    };
    if bytes.is_empty() {
        return Err(usage(format!(
            "the message from {from} is empty: leave the message out to retry without one"
        )));
    }
    if bytes.len() > MESSAGE_MAX {
        return Err(usage(format!(
            "the message from {from} is {} bytes, more than {MESSAGE_MAX}: it goes into every \
             prompt of the retry; put the long part in a file of the project and say in the \
             message where it is",
            bytes.len()
        )));
    }
    String::from_utf8(bytes).map(Some).map_err(|e| {
        usage(format!(
            "the message from {from} is not UTF-8 text (invalid byte at offset {}): a prompt \
             is text; convert it (e.g. with iconv) and try again",
            e.utf8_error().valid_up_to()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_taken_whole_or_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m");
        std::fs::write(&file, "a \"b\"\n\tc $(d)\n").unwrap();
        assert_eq!(
            read_message(Message::File(&file)).unwrap().as_deref(),
            Some("a \"b\"\n\tc $(d)\n")
        );
        assert_eq!(
            read_message(Message::Text("x")).unwrap().as_deref(),
            Some("x")
        );
        assert_eq!(read_message(Message::None).unwrap(), None);
        std::fs::write(&file, b"ok \xff no").unwrap();
        let err = read_message(Message::File(&file)).unwrap_err().to_string();
        assert!(
            err.contains("not UTF-8 text (invalid byte at offset 3)"),
            "{err}"
        );
        std::fs::write(&file, "").unwrap();
        let err = read_message(Message::File(&file)).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
        std::fs::write(&file, vec![b'x'; MESSAGE_MAX + 1]).unwrap();
        let err = read_message(Message::File(&file)).unwrap_err().to_string();
        assert!(err.contains("more than 16384"), "{err}");
        let err = read_message(Message::File(&dir.path().join("gone")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the message file"), "{err}");
    }
}
