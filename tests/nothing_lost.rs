//! Nothing missed, nothing lost: hostile `kind: command` workers change what they do not own
//! while no engine watches, plant a `.gitignore` to hide their writes, remove and move other
//! tasks' directories, and fill the disk; every change is found, attributed and handled by
//! the configured policy, and reverts land.
//!
//! Task `a` writes its files and ends; task `b` (after `a`) writes its own, then does what
//! the test's `rogue.sh` says, once. `counts/` is git-ignored: the test's bookkeeping.

mod support;

#[path = "resume/harness.rs"]
#[allow(dead_code)] // shared with tests/resume.rs, which uses all of it
mod harness;

use harness::Project;
use serde_json::Value;

const WORKER: &str = r#"#!/bin/sh
id="$ORCH_TASK_ID"
mkdir -p counts
echo "start $$" >> "counts/starts-$id"
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$id done" > "$f"; done
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

fn config(policy: &str) -> String {
    format!(
        "agents:\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\n  judge:\n    kind: scripted\n\
         roles:\n  planner: mine\n  judge: judge\n  workers: [mine]\n\
         limits:\n  task_timeout: 600s\n  retries: 1\n\
         ownership:\n  on_violation: {policy}\n"
    )
}

/// The project, with `b`'s rogue act and the ownership policy.
fn project(name: &str, policy: &str, rogue: &str) -> Project {
    let project = Project::new(name);
    let p = &project.p;
    p.file("orch.yaml", &config(policy));
    p.file("plan.json", PLAN);
    p.file("src/tracked.txt", "tracked\n");
    p.script("worker.sh", WORKER);
    p.file("rogue.sh", rogue);
    // The test's own files are no one's business.
    p.file(
        ".gitignore",
        ".orch/\ncounts/\nplan.json\nrogue.sh\nworker.sh\norch.yaml\n",
    );
    project
}

/// The journal's violations, with how each was settled.
fn violations(project: &Project) -> Vec<Value> {
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

fn violation<'a>(all: &'a [Value], path: &str, project: &Project) -> &'a Value {
    all.iter().find(|v| v["path"] == path).unwrap_or_else(|| {
        panic!(
            "no violation on {path}: {all:#?}\n{}",
            project.diagnostics()
        )
    })
}

/// Runs the project until `b`'s rogue act killed the engine and `b` ended, then resumes.
fn kill_then_resume(project: &Project) {
    project.up(true, &[]);
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
    project.up(true, &[]);
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
    project.up(true, &[]);
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
