//! `orch tell TASK`: a running task told something (its turn stopped as an interruption by the
//! user, not a failure; the next attempt's prompt carries the message byte for byte; the run
//! succeeds), a done task whose dependent has not started reopened, and refusals that say what
//! it would take. `kind: command` workers, which name no session: the next attempt is new.

use std::io::Write as _;
use std::process::Stdio;

use serde_json::Value;

use crate::support::{Options, Up};

/// a works until its prompt holds MAGIC (only a message can bring it); c writes its files,
/// and says it was reopened when its prompt holds REOPEN; d writes its files.
const WORKER: &str = r#"#!/bin/sh
id="$ORCH_TASK_ID"
mkdir -p counts
touch "counts/$id-started"
if [ "$id" = a ]; then
  echo "half of a" > a.txt
  while ! grep -q MAGIC "$ORCH_PROMPT_FILE"; do sleep 0.05; done
fi
word="done"
if [ "$id" = c ] && grep -q REOPEN "$ORCH_PROMPT_FILE"; then word="reopened"; fi
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$id $word" > "$f"; done
"#;

/// a and c on their own; d after both.
const PLAN: &str = r#"{"specs": [{"file": "specs/s.md"}], "tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "c", "agent": "mine", "task": "write c", "files": ["tests/c_test.txt", "c.txt"]},
  {"id": "d", "agent": "mine", "task": "write d", "files": ["tests/d_test.txt", "d.txt"], "depends_on": ["a", "c"]}
]}"#;

/// A message no shell or pane may touch: quotes, a command substitution, backticks, a tab,
/// newlines, a fence of its own, and text past ASCII.
const MESSAGE: &str = "MAGIC: stop that, it's \"quoted\" $(touch pwned) `touch pwned2`\n\tsecond line ; rm -rf nothing\n```\nnot a fence's end\n``` héllo ✓\n";

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

fn events(up: &Up, name: &str) -> Vec<Value> {
    up.journal_events()
        .into_iter()
        .filter(|e| e["event"] == name)
        .collect()
}

#[test]
fn a_running_task_is_told_a_done_one_reopened_and_the_rest_refused() {
    let up = Options::new("tellrun")
        .worker(WORKER)
        .limit("max_parallel: 3")
        .limit("retries: 0")
        .plan(PLAN)
        .file("specs/s.md", "# the spec\n")
        .ignore("counts/\nplan.json\nworker.sh\norch.yaml\n")
        .start();
    up.start();
    up.wait_until("a to run and c to be done, d not started", || {
        let status = up.status();
        state(&status, "a").0 == "running"
            && up.p.path("counts/a-started").exists()
            && state(&status, "c") == ("done".into(), 1)
    });

    // A done task whose dependent (d) has not started: reopened, run and judged again.
    let reopen = up
        .orch()
        .args(["tell", "c", "REOPEN: say so in your files"])
        .run();
    assert_eq!(
        reopen.code(),
        0,
        "{}{}\n{}",
        reopen.stdout(),
        reopen.stderr(),
        up.diagnostics()
    );
    assert!(
        reopen.stdout().contains("task c is reopened"),
        "{}",
        reopen.stdout()
    );
    up.wait_until("c to be done again while a still runs", || {
        let status = up.status();
        state(&status, "c") == ("done".into(), 2) && state(&status, "a").0 == "running"
    });
    assert!(prompt_of(&up, "c", 2).contains("REOPEN: say so in your files"));
    assert!(!prompt_of(&up, "c", 1).contains("REOPEN"));
    assert_eq!(
        std::fs::read_to_string(up.work_path("c.txt")).unwrap(),
        "c reopened\n"
    );

    // The running task, from standard input: its turn is stopped, and the next attempt has
    // the message whole.
    let mut tell = up.orch().args(["tell", "a", "-"]);
    tell.cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = tell.cmd.spawn().unwrap();
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
    assert!(said.contains("task a's turn is stopped"), "{said}");
    up.wait(0);

    let status = up.status();
    assert_eq!(status["phase"], "succeeded", "{status:#}");
    // Interrupted, not failed: with `retries: 0` the second attempt was still allowed.
    assert_eq!(state(&status, "a"), ("done".into(), 2), "{status:#}");
    assert_eq!(Up::task(&status, "a")["interruptions"], 1, "{status:#}");
    assert_eq!(state(&status, "d"), ("done".into(), 1), "{status:#}");
    assert!(events(&up, "task_failed").is_empty());
    assert!(events(&up, "task_requeued").is_empty());
    let interrupted = events(&up, "task_interrupted");
    assert_eq!(interrupted.len(), 1, "{interrupted:#?}");
    assert_eq!(interrupted[0]["task"], "a");
    assert!(
        interrupted[0]["reason"]
            .as_str()
            .unwrap()
            .contains("stopped by the user"),
        "{interrupted:#?}"
    );
    let told = events(&up, "task_told");
    assert_eq!(told.len(), 2, "{told:#?}");
    assert_eq!(told[0]["task"], "c");
    assert_eq!(told[0]["reopened"], true);
    assert_eq!(told[1]["task"], "a");
    assert_eq!(told[1]["message"], MESSAGE);
    assert_eq!(
        Up::task(&status, "a")["told"]["message"],
        MESSAGE,
        "{status:#}"
    );
    assert_eq!(
        Up::task(&status, "c")["told"]["reopened"],
        true,
        "{status:#}"
    );
    let report = up.run_file("report.md");
    assert!(
        report.contains("Told by the user with `orch tell`, after attempt 1")
            && report.contains("Told by the user with `orch tell`, reopened after attempt 1"),
        "{report}"
    );
    let prompt = prompt_of(&up, "a", 2);
    assert!(prompt.contains(MESSAGE), "{prompt}");
    assert!(prompt.contains("The user stopped attempt 1"), "{prompt}");
    assert!(!prompt_of(&up, "a", 1).contains("MAGIC"));
    // The pane of the attempt after the message shows it under its title (from the launch
    // spec, a file), and only that one.
    let launch = |task: &str, attempt: u32| -> Value {
        let path = up.attempt(task, attempt).join("launch.json");
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    assert_eq!(launch("a", 2)["notice"], MESSAGE);
    assert_eq!(launch("a", 1).get("notice"), None);
    assert_eq!(launch("c", 2)["notice"], "REOPEN: say so in your files");
    for stray in ["pwned", "pwned2"] {
        assert!(!up.p.path(stray).exists() && !up.work_path(stray).exists());
    }

    // Refused, with what it would take.
    let started = up.orch().args(["tell", "c", "again"]).run();
    assert_ne!(started.code(), 0);
    assert!(
        started
            .stderr()
            .contains("tasks that depend on it have started (d)"),
        "{}",
        started.stderr()
    );
    let unknown = up.orch().args(["tell", "zz", "hello"]).run();
    assert_ne!(unknown.code(), 0);
    assert!(
        unknown.stderr().contains("no task zz (its tasks: a, c, d)"),
        "{}",
        unknown.stderr()
    );
    let leaf = up.orch().args(["tell", "d", "more"]).run();
    assert_ne!(leaf.code(), 0);
    assert!(
        leaf.stderr().contains("has no engine") && leaf.stderr().contains("a new run"),
        "{}",
        leaf.stderr()
    );
    assert_eq!(events(&up, "task_told").len(), 2);
}
