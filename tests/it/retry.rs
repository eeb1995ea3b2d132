//! `orch retry`: a task that failed for good tried again, on a run that ended failed (a new
//! engine, on a branch: the retried task gets its commit) and on a live run (a request the
//! engine applies, its blocked dependent pending again then done). `kind: command` workers:
//! task a fails unless its prompt carries the user's message, which must arrive in it whole.

use std::io::Write as _;
use std::process::Stdio;

use serde_json::Value;

use crate::support::{Options, Up};

/// a fails (exit 1, half its work written) unless its prompt holds MAGIC; c waits while `counts/hold` is there until
/// `counts/release`; the others write their files.
const WORKER: &str = r#"#!/bin/sh
id="$ORCH_TASK_ID"
mkdir -p counts
touch "counts/$id-started"
if [ "$id" = a ] && ! grep -q MAGIC "$ORCH_PROMPT_FILE"; then
  echo "half of a" > a.txt
  echo "a cannot be done without the magic word"
  exit 1
fi
if [ "$id" = c ] && [ -e counts/hold ]; then
  while [ ! -e counts/release ]; do sleep 0.05; done
fi
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$id done" > "$f"; done
"#;

/// a; b after a; c on its own.
const PLAN: &str = r#"{"specs": [{"file": "specs/s.md"}], "tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"], "depends_on": ["a"]},
  {"id": "c", "agent": "mine", "task": "write c", "files": ["tests/c_test.txt", "c.txt"]}
]}"#;

/// A message no shell or pane may touch: quotes, a command substitution, backticks, a tab,
/// newlines, a fence of its own, and text past ASCII.
const MESSAGE: &str = "MAGIC: it's \"quoted\" $(touch pwned) `touch pwned2`\n\tsecond line ; rm -rf nothing\n```\nnot a fence's end\n``` héllo ✓\n";

/// `ignored`: what `.gitignore` lists besides `.orch/`.
fn options(name: &str, ignored: &str) -> Options {
    Options::new(name)
        .worker(WORKER)
        .limit("max_parallel: 3")
        .plan(PLAN)
        .file("specs/s.md", "# the spec\n")
        .ignore(ignored)
}

/// Task `id`'s state and attempts (none before the plan is accepted).
fn state(status: &Value, id: &str) -> (String, u64) {
    let Some(task) = status["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["id"] == id))
    else {
        return (String::new(), 0);
    };
    (
        task["state"].as_str().unwrap_or("").to_string(),
        task["attempts"].as_u64().unwrap_or(0),
    )
}

fn prompt_of(up: &Up, task: &str, attempt: u32) -> String {
    let dir = up.attempt(task, attempt);
    let path = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", dir.display(), up.diagnostics()))
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("prompt"))
        })
        .unwrap_or_else(|| panic!("no prompt in {}", dir.display()));
    std::fs::read_to_string(path).unwrap()
}

fn retried_events(up: &Up) -> Vec<Value> {
    up.journal_events()
        .into_iter()
        .filter(|e| e["event"] == "task_retried")
        .collect()
}

#[test]
fn a_failed_run_retried_with_a_message_succeeds_and_the_task_gets_its_commit() {
    // On a branch: the worker and the plan are committed, and so in the worktree.
    let up = options("retryended", "counts/\nmessage.txt\n")
        .committed()
        .start();
    up.start();
    let waited = up.orch().args(["wait", "--timeout", "60"]).run();
    assert_eq!(waited.code(), 1, "{}", up.diagnostics());
    // What ends a run with a failed task says how to try it again.
    assert!(
        waited
            .stdout()
            .contains("retry a [--message TEXT]` tries failed task a again"),
        "{}",
        waited.stdout()
    );
    let status = up.status();
    assert_eq!(state(&status, "a"), ("failed".into(), 1), "{status:#}");
    assert_eq!(state(&status, "b").0, "blocked", "{status:#}");
    assert_eq!(state(&status, "c"), ("done".into(), 1), "{status:#}");

    // Refused, with what to do: a blocked task, a done one, one the plan has not.
    let blocked = up.orch().args(["retry", "b"]).run();
    assert_ne!(blocked.code(), 0);
    assert!(
        blocked.stderr().contains("retry the task it waits for (a)"),
        "{}",
        blocked.stderr()
    );
    let done = up.orch().args(["retry", "c"]).run();
    assert!(
        done.stderr().contains("task c is done"),
        "{}",
        done.stderr()
    );
    let unknown = up.orch().args(["retry", "zz"]).run();
    assert!(
        unknown.stderr().contains("no task zz (its tasks: a, b, c)"),
        "{}",
        unknown.stderr()
    );
    assert!(retried_events(&up).is_empty());

    // From a file: a new engine takes the failed run over and applies it.
    std::fs::write(up.p.path("message.txt"), MESSAGE).unwrap();
    let retry = up
        .orch()
        .args(["retry", "a", "--message-file", "message.txt", "--detach"])
        .run();
    assert_eq!(
        retry.code(),
        0,
        "{}{}\n{}",
        retry.stdout(),
        retry.stderr(),
        up.diagnostics()
    );
    assert!(
        retry
            .stdout()
            .contains("task a is tried again, with 1 attempt(s); pending again: b"),
        "{}",
        retry.stdout()
    );
    up.wait(0);
    let status = up.status();
    assert_eq!(status["phase"], "succeeded", "{status:#}");
    assert_eq!(state(&status, "a"), ("done".into(), 2), "{status:#}");
    assert_eq!(state(&status, "b"), ("done".into(), 1), "{status:#}");
    // Done stays done: c never ran again.
    assert_eq!(state(&status, "c"), ("done".into(), 1), "{status:#}");
    // The half-done work the failure left is the retry's to finish, no one's violation.
    assert_eq!(status["violations"], serde_json::json!([]), "{status:#}");
    assert_eq!(
        std::fs::read_to_string(up.work_path("a.txt")).unwrap(),
        "a done\n"
    );

    // The message, whole, in the retry's prompt; nothing in it ran.
    let prompt = prompt_of(&up, "a", 2);
    assert!(prompt.contains(MESSAGE), "{prompt}");
    assert!(prompt.contains("failed for good at attempt 1"), "{prompt}");
    assert!(!prompt_of(&up, "a", 1).contains("MAGIC"));
    for stray in ["pwned", "pwned2"] {
        assert!(!up.p.path(stray).exists() && !up.work_path(stray).exists());
    }
    // The report says so, and report.json and status carry the message.
    let report = up.run_file("report.md");
    assert!(
        report
            .contains("Tried again by `orch retry` after attempt 1 failed for good with a message"),
        "{report}"
    );
    assert_eq!(Up::task(&status, "a")["retried"]["message"], MESSAGE);
    let events = retried_events(&up);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["message"], MESSAGE);
    assert_eq!(events[0]["unblocked"], serde_json::json!(["b"]));

    // On the branch: a's commit, exactly its files, then b's.
    let branch = up.workspace()["branch"].as_str().unwrap().to_string();
    let log = std::process::Command::new("git")
        .current_dir(up.p.root())
        .args([
            "log",
            "--format=%(trailers:key=Orch-Task,valueonly)",
            &branch,
        ])
        .output()
        .unwrap();
    let tasks: Vec<String> = String::from_utf8_lossy(&log.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(tasks, ["b", "a", "c"], "{}", up.diagnostics());
    let a_commit = up
        .journal_events()
        .into_iter()
        .find(|e| e["event"] == "task_committed" && e["task"] == "a")
        .unwrap_or_else(|| panic!("no commit of a\n{}", up.diagnostics()));
    let mut files: Vec<String> = a_commit["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    files.sort();
    assert_eq!(files, ["a.txt", "tests/a_test.txt"]);
}

#[test]
fn a_retry_on_a_live_run_unblocks_the_dependent_and_the_run_succeeds() {
    let up = options("retrylive", "counts/\nplan.json\nworker.sh\norch.yaml\n").start();
    std::fs::create_dir_all(up.p.path("counts")).unwrap();
    std::fs::write(up.p.path("counts/hold"), "").unwrap();
    up.start();
    up.wait_until(
        "a to fail for good and b to be blocked while c runs",
        || {
            let status = up.status();
            state(&status, "a").0 == "failed"
                && state(&status, "b").0 == "blocked"
                && state(&status, "c").0 == "running"
        },
    );

    // From standard input, to the live engine.
    let mut retry = up.orch().args(["retry", "a", "--message-file", "-"]);
    retry.cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    retry.cmd.stderr(Stdio::piped());
    let mut child = retry.cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(MESSAGE.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}\n{}", up.diagnostics());
    assert!(said.contains("pending again: b"), "{said}");

    up.wait_until("a and b to be done while c still runs", || {
        let status = up.status();
        state(&status, "a") == ("done".into(), 2)
            && state(&status, "b") == ("done".into(), 1)
            && state(&status, "c").0 == "running"
    });
    assert!(prompt_of(&up, "a", 2).contains(MESSAGE));
    std::fs::write(up.p.path("counts/release"), "").unwrap();
    up.wait(0);
    let status = up.status();
    assert_eq!(status["phase"], "succeeded", "{status:#}");
    assert_eq!(state(&status, "c"), ("done".into(), 1), "{status:#}");
    // One engine did it all: the retry was not a resume.
    let engines = up
        .journal_events()
        .iter()
        .filter(|e| e["event"] == "engine_started")
        .count();
    assert_eq!(engines, 1);
    assert_eq!(retried_events(&up).len(), 1);
}

#[test]
fn a_retry_on_a_stopped_run_resumes_it_with_the_task_tried_again() {
    let up = options("retrydown", "counts/\nplan.json\nworker.sh\norch.yaml\n").start();
    std::fs::create_dir_all(up.p.path("counts")).unwrap();
    std::fs::write(up.p.path("counts/hold"), "").unwrap();
    up.start();
    up.wait_until("a to fail for good while c runs", || {
        let status = up.status();
        state(&status, "a").0 == "failed" && state(&status, "c").0 == "running"
    });
    up.orch().args(["down"]).run().expect(0);
    assert_eq!(up.status()["phase"], "stopped");
    std::fs::write(up.p.path("counts/release"), "").unwrap();

    let retry = up
        .orch()
        .args(["retry", "a", "--message", "MAGIC, in short", "--detach"])
        .run();
    assert_eq!(
        retry.code(),
        0,
        "{}{}\n{}",
        retry.stdout(),
        retry.stderr(),
        up.diagnostics()
    );
    assert!(
        retry.stdout().contains("pending again: b"),
        "{}",
        retry.stdout()
    );
    up.wait(0);
    let status = up.status();
    assert_eq!(state(&status, "a"), ("done".into(), 2), "{status:#}");
    assert_eq!(state(&status, "b"), ("done".into(), 1), "{status:#}");
    // c, stopped by `orch down`, was taken up again as any resume does.
    assert_eq!(state(&status, "c"), ("done".into(), 2), "{status:#}");
    assert!(prompt_of(&up, "a", 2).contains("MAGIC, in short"));
}
