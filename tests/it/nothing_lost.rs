//! Nothing missed, nothing lost: hostile `kind: command` workers change what they do not own
//! while no engine watches, plant a `.gitignore` to hide their writes, remove and move other
//! tasks' directories, and fill the disk; every change is found, attributed and handled by
//! the configured policy, and reverts land.
//!
//! Task `a` writes its files and ends; task `b` (after `a`) writes its own, then does what
//! the test's `rogue.sh` says, once. `counts/` is git-ignored: the test's bookkeeping.

use serde_json::Value;

use crate::support::{self, Options, Up};

const WORKER: &str = r#"#!/bin/sh
id="$ORCH_TASK_ID"
mkdir -p counts
echo "start $$" >> "counts/starts-$id"
word=done
if [ "$(wc -l < "counts/starts-$id")" -gt 1 ]; then word="done again"; fi
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$id $word" > "$f"; done
# Held when the test says so (hold-again: from its second attempt on), until let go.
if [ -e "counts/hold-$id" ] || { [ -e "counts/hold-again-$id" ] && [ "$word" != done ]; }; then
  while [ ! -e "counts/release-$id" ]; do sleep 0.02; done
fi
if [ "$id" = b ] && [ ! -e counts/b-went-rogue ]; then
  touch counts/b-went-rogue
  . ./rogue.sh
fi
echo "task $id finished"
"#;

/// Kills the engine (its pid is in the journal) and waits until it is dead.
const KILL_ENGINE: &str = r#"
pid=$(sed -n 's/.*"event":"engine_started","pid":\([0-9]*\).*/\1/p' "$ORCH_RUN_DIR/events.jsonl" | tail -n 1)
kill -9 "$pid"
while [ -e "/proc/$pid" ] && ! grep -q ') Z' "/proc/$pid/stat" 2>/dev/null; do sleep 0.02; done
"#;

const PLAN: &str = r#"{"specs": [{"file": "specs/s.md"}],
 "tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "src/a.txt", "lib/deep/a.txt"]},
  {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"], "depends_on": ["a"]}
 ]}"#;

/// The project, with `b`'s rogue act and the ownership policy.
fn project(name: &str, policy: &str, rogue: &str) -> Up {
    options(name, policy, rogue, PLAN).start()
}

/// The workers run outside orch's sandbox (which would keep them from the engine's pid and from
/// much of what they try here): these tests check orch's own accounting, the net under every
/// agent where no sandbox confines it.
fn options(name: &str, policy: &str, rogue: &str, plan: &str) -> Options {
    Options::new(name)
        .worker(WORKER)
        .agent("sandbox: off")
        .worker_plans()
        .limit("task_timeout: 600s")
        .limit("retries: 1")
        .on_violation(policy)
        .plan(plan)
        .file("specs/s.md", "# the spec\n")
        .file("src/tracked.txt", "tracked\n")
        .file("rogue.sh", rogue)
        // The test's own files are no one's business.
        .ignore("counts/\nplan.json\nrogue.sh\nworker.sh\norch.yaml\n")
}

/// The journal's violations, with how each was settled.
fn violations(project: &Up) -> Vec<Value> {
    let events: Vec<Value> = project
        .journal()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut found: Vec<Value> = events
        .iter()
        .filter(|e| e["event"] == "violation")
        .cloned()
        .collect();
    for settled in events.iter().filter(|e| e["event"] == "violation_settled") {
        for v in found.iter_mut().filter(|v| v["n"] == settled["n"]) {
            v["action"] = settled["action"].clone();
            v["saved"] = settled["saved"].clone();
        }
    }
    found
}

fn violation<'a>(all: &'a [Value], path: &str, project: &Up) -> &'a Value {
    all.iter().find(|v| v["path"] == path).unwrap_or_else(|| {
        panic!(
            "no violation on {path}: {all:#?}\n{}",
            project.diagnostics()
        )
    })
}

/// Runs the project until `b`'s rogue act killed the engine and `b` ended, then resumes.
fn kill_then_resume(project: &Up) {
    project.start();
    let exit = project.run_dir().join("tasks/b/1/exit.json");
    project.wait_until("b to kill the engine and end", || {
        exit.exists() && project.status()["engine_alive"] == false
    });
    project.resume();
}

const DEFACE_WHILE_NO_ENGINE_WATCHES: &str = "
echo defaced > README.md
echo 'b was here' > src/a.txt
printf '*\\n' > src/.gitignore
echo hidden > src/hidden.txt
";

#[test]
fn changes_made_while_no_engine_watched_are_found_on_resume_and_reverted() {
    let rogue = format!("{KILL_ENGINE}{DEFACE_WHILE_NO_ENGINE_WATCHES}");
    let project = project("swept-revert", "revert", &rogue);
    kill_then_resume(&project);
    project.wait(0);

    let p = &project.p;
    assert_eq!(p.read("README.md"), "# the project\n");
    assert_eq!(p.read("src/a.txt"), "a done\n", "a's file is as a left it");
    assert!(!p.path("src/.gitignore").exists());
    assert!(!p.path("src/hidden.txt").exists());
    let all = violations(&project);
    for (path, action, content) in [
        ("README.md", "reverted", "defaced\n"),
        ("src/a.txt", "reverted", "b was here\n"),
        ("src/.gitignore", "deleted", "*\n"),
        ("src/hidden.txt", "deleted", "hidden\n"),
    ] {
        let v = violation(&all, path, &project);
        assert_eq!(v["suspects"], serde_json::json!(["b"]), "{v}");
        assert_eq!(v["swept"], true, "{v}");
        assert_eq!(v["action"], action, "{v}");
        let saved = v["saved"].as_str().expect("saved first");
        assert_eq!(p.read(saved), content, "{v}");
    }
}

#[test]
fn changes_made_while_no_engine_watched_fail_the_run_under_warn() {
    let rogue = format!("{KILL_ENGINE}{DEFACE_WHILE_NO_ENGINE_WATCHES}");
    let project = project("swept-warn", "warn", &rogue);
    kill_then_resume(&project);
    project.wait(1);

    let all = violations(&project);
    for path in ["README.md", "src/a.txt", "src/.gitignore", "src/hidden.txt"] {
        let v = violation(&all, path, &project);
        assert_eq!(v["suspects"], serde_json::json!(["b"]), "{v}");
        assert_eq!(v["action"], "found-by-sweep", "{v}");
    }
    let status = project.status();
    assert_eq!(status["phase"], "failed", "{status:#}");
}

#[test]
fn a_planted_gitignore_hides_nothing() {
    let rogue = "
printf '*\\n' > src/.gitignore
echo 'b was here' > src/a.txt
echo 'b was here' > src/tracked.txt
echo new > src/new.txt
";
    let project = project("planted-gitignore", "warn", rogue);
    project.start();
    project.wait(1);
    let all = violations(&project);
    for path in [
        "src/.gitignore",
        "src/a.txt",
        "src/tracked.txt",
        "src/new.txt",
    ] {
        let v = violation(&all, path, &project);
        assert_eq!(v["suspects"], serde_json::json!(["b"]), "{v}");
    }
}

#[test]
fn reverts_land_after_a_directory_is_removed_or_moved() {
    let rogue = "
rm -rf lib
mkdir elsewhere
mv src elsewhere/src
";
    let project = project("revert-moves", "revert", rogue);
    project.start();
    project.wait(0);
    let p = &project.p;
    assert_eq!(
        p.read("lib/deep/a.txt"),
        "a done\n",
        "{}",
        project.diagnostics()
    );
    assert_eq!(p.read("src/a.txt"), "a done\n");
    assert_eq!(p.read("src/tracked.txt"), "tracked\n");
    assert!(!p.path("elsewhere/src/a.txt").exists());
    assert!(!p.path("elsewhere/src/tracked.txt").exists());
    let all = violations(&project);
    for (path, content) in [
        ("elsewhere/src/a.txt", "a done\n"),
        ("elsewhere/src/tracked.txt", "tracked\n"),
    ] {
        let v = violation(&all, path, &project);
        assert_eq!(v["action"], "deleted", "{v}");
        assert_eq!(p.read(v["saved"].as_str().unwrap()), content, "{v}");
    }
    for path in ["lib/deep/a.txt", "src/a.txt", "src/tracked.txt"] {
        assert_eq!(violation(&all, path, &project)["action"], "reverted");
    }
}

/// A project on a small tmpfs of its own, unmounted (lazily: tmux may still hold a file)
/// after the project is dropped. `None` where no tmpfs can be mounted (not root): the test
/// is skipped with a message, unless `ORCH_REQUIRE_TMPFS=1` (CI) makes that a failure.
struct OnTmpfs {
    project: Up,
    _mount: Mount,
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn on_tmpfs(project: Up, size: &str) -> Option<OnTmpfs> {
    let root = project.p.root();
    let holding = tempfile::tempdir().unwrap();
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(from.join("."))
            .arg(to)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cp -a {} {}",
            from.display(),
            to.display()
        );
    };
    copy(&root, holding.path());
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&root)
        .stderr(std::process::Stdio::piped())
        .output();
    match mounted {
        Ok(out) if out.status.success() => {}
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                Err(e) => e.to_string(),
            };
            assert!(
                std::env::var("ORCH_REQUIRE_TMPFS").as_deref() != Ok("1"),
                "ORCH_REQUIRE_TMPFS=1 but no tmpfs can be mounted: {why}"
            );
            eprintln!("skipped: the disk-full test needs a tmpfs it can mount (root): {why}");
            return None;
        }
    }
    let mount = Mount(root.clone());
    copy(holding.path(), &root);
    Some(OnTmpfs {
        project,
        _mount: mount,
    })
}

#[test]
fn a_full_disk_stops_the_run_and_resume_carries_on_once_space_is_back() {
    // b writes its files, fills the disk, and exits 0: its exit record cannot be written.
    let rogue = "cat /dev/zero > counts/fill 2>/dev/null\ntrue\n";
    let Some(on) = on_tmpfs(project("disk-full", "revert", rogue), "40m") else {
        return;
    };
    let project = &on.project;
    project.start();
    project.wait_until("the full disk to stop the engine", || {
        project.p.path("counts/b-went-rogue").exists() && project.status()["engine_alive"] == false
    });
    let run = project.orch().args(["resume", "--detach"]).run();
    assert_ne!(run.code(), 0, "resume with the disk full: {}", run.stdout());
    run.stderr_has("free");

    std::fs::remove_file(project.p.path("counts/fill")).unwrap();
    project.resume();
    project.wait(0);
    assert_eq!(project.starts("a"), 1);
    assert_eq!(
        project.starts("b"),
        1,
        "b's exit was recovered, not run again"
    );
    let journal = project.journal();
    assert!(!journal.contains("without an exit record"), "{journal}");
    let exit = std::fs::read_to_string(project.run_dir().join("tasks/b/1/exit.json")).unwrap();
    assert!(exit.contains("\"code\":0"), "{exit}");
}

#[test]
fn a_revert_journaled_but_not_done_when_the_engine_died_is_done_on_resume() {
    let project = project("revert-unfinished", "revert", "echo defaced > README.md\n");
    // The engine dies right after journaling the violation `reverting`, before touching it.
    project.start_with(true, &[("ORCH_ENGINE_CRASH", "after:violation")]);
    let exit = project.run_dir().join("tasks/b/1/exit.json");
    project.wait_until(
        "the engine to die after the violation, and b to end",
        || exit.exists() && project.status()["engine_alive"] == false,
    );
    assert_eq!(project.p.read("README.md"), "defaced\n");
    project.resume();
    project.wait(0);
    assert_eq!(project.p.read("README.md"), "# the project\n");
    let all = violations(&project);
    assert_eq!(all.len(), 1, "one violation, one number: {all:#?}");
    let v = &all[0];
    assert_eq!(v["action"], "reverted", "{v}");
    assert_eq!(project.p.read(v["saved"].as_str().unwrap()), "defaced\n");
}

#[test]
fn deleting_orch_mid_run_loses_nothing() {
    // b deletes the run's whole record while it works.
    let project = project(
        "orch-deleted",
        "warn",
        "rm -rf .orch\ntouch counts/orch-deleted\n",
    );
    project.start();
    support::wait_until(
        "b to delete .orch, and the engine to restore it",
        support::LONG,
        || {
            project.p.path("counts/orch-deleted").exists()
                && project.p.path(".orch/current").exists()
        },
        || support::session_diagnostics(project.server.tmux(), &project.session()),
    );
    project.wait(0);
    let status = project.status();
    assert_eq!(status["phase"], "succeeded", "{status:#}");
    let events = project.event_names();
    for event in ["run_started", "plan_accepted", "task_done", "run_finished"] {
        assert!(events.contains(&event.to_string()), "{event} in {events:?}");
    }
    assert!(
        violations(&project).is_empty(),
        "orch's own files are no violation:\n{}",
        project.journal()
    );
}

#[test]
fn a_file_changed_after_its_owner_ended_while_no_engine_watched_is_found_and_blamed_right() {
    // a and b run side by side. b kills the engine, lets a end, then overwrites a's file once
    // the file system's clock (coarser than the exit record's) is past a's end.
    let plan = PLAN.replace(r#", "depends_on": ["a"]"#, "");
    let rogue = format!(
        "{KILL_ENGINE}touch counts/release-a\n\
         while [ ! -e \"$ORCH_RUN_DIR/tasks/a/1/exit.json\" ]; do sleep 0.02; done\n\
         ended=$(sed -n 's/.*\"ended_at_ms\":\\([0-9]*\\).*/\\1/p' \"$ORCH_RUN_DIR/tasks/a/1/exit.json\")\n\
         touch counts/tick\n\
         while [ \"$(date -r counts/tick +%s%3N)\" -le \"$ended\" ]; do touch counts/tick; done\n\
         echo 'b was here' > src/a.txt\n"
    );
    let project = options("owner-ended", "warn", &rogue, &plan).start();
    project.p.file("counts/hold-a", "");
    kill_then_resume(&project);
    project.wait(1);
    let all = violations(&project);
    let v = violation(&all, "src/a.txt", &project);
    assert_eq!(v["suspects"], serde_json::json!(["b"]), "{v}");
    assert_eq!(v["swept"], true, "{v}");
}

#[test]
fn a_retried_task_at_work_when_the_engine_died_is_not_its_own_violation() {
    // a's first attempt fails (its files kept as it left them); its second is at work with
    // new content when the engine dies: that is its work, not a change to judge.
    // The test gate fails once: a's first attempt goes back to its agent.
    let gate =
        "gates:\n  test: \"if [ -e counts/fail-once ]; then rm counts/fail-once; exit 1; fi\"\n";
    let project = options("retry-at-work", "revert", "", PLAN)
        .yaml(gate)
        .start();
    project.p.file("counts/fail-once", "");
    project.p.file("counts/hold-again-a", "");
    project.start();
    project.wait_until("a's second attempt at work", || {
        project.starts("a") == 2
            && std::fs::read_to_string(project.p.path("src/a.txt"))
                .ok()
                .as_deref()
                == Some("a done again\n")
    });
    project.kill_engine();
    project.resume();
    project.p.file("counts/release-a", "");
    project.wait(0);
    assert!(violations(&project).is_empty(), "{}", project.journal());
    assert_eq!(project.p.read("src/a.txt"), "a done again\n");
}
