//! `isolation: task`: each task works in a worktree of its own, made from the run branch with
//! its dependencies' commits, and only its owned files come back, as its commit. A chain
//! a → b → c, each writing what it found of the one before, and beside it d, which writes half
//! of its file, then a file it does not own, and waits: a never sees d's half-written file, d's
//! stray is reverted in d's own worktree and is in no commit, and the run's worktree ends up
//! holding exactly the four tasks' commits.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Options, Up, git};

const PLAN: &str = r#"{"specs": [{"file": "specs/s.md"}],
 "tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"], "depends_on": ["a"]},
  {"id": "c", "agent": "mine", "task": "write c", "files": ["tests/c_test.txt", "c.txt"], "depends_on": ["b"]},
  {"id": "d", "agent": "mine", "task": "write d", "files": ["tests/d_test.txt", "d.txt"]}
 ]}"#;

/// Each task notes where it works and what it finds of the others in its own file. a and d
/// wait for `counts/go` in their own worktrees (git-ignored), which the test writes there,
/// unless `ISO_GO` is set.
const WORKER: &str = r#"#!/bin/sh
id="$ORCH_TASK_ID"
mkdir -p counts tests
pwd > counts/where
seen() { if [ -e "$1" ]; then echo "$1: $(cat "$1")"; else echo "$1: none"; fi; }
case "$id" in
  d)
    echo "d half-written" > d.txt
    echo "not d's" > stray.txt
    while [ -z "$ISO_GO" ] && [ ! -e counts/go ]; do sleep 0.02; done
    echo "d done" > d.txt ;;
  a)
    while [ -z "$ISO_GO" ] && [ ! -e counts/go ]; do sleep 0.02; done
    seen d.txt > a.txt ;;
  b) seen a.txt > b.txt ;;
  c) { seen a.txt; seen b.txt; seen d.txt; } > c.txt ;;
esac
echo "test of $id" > "tests/${id}_test.txt"
"#;

fn project(name: &str) -> Up {
    options(name).start()
}

fn options(name: &str) -> Options {
    Options::new(name)
        .worker(WORKER)
        .on_violation("revert")
        .yaml("isolation: task\n")
        .ignore("counts/\nplan.json\n")
        .file("specs/s.md", "# the spec\n")
        .plan(PLAN)
        .committed()
}

/// Task `id`'s own worktree.
fn task_tree(up: &Up, id: &str) -> PathBuf {
    let run = up.work_dir();
    let name = run.file_name().unwrap().to_str().unwrap();
    run.with_file_name(format!("{name}-tasks")).join(id)
}

fn go(up: &Up, id: &str) {
    let tree = task_tree(up, id);
    up.wait_until(&format!("{id} to start in its own worktree"), || {
        tree.join("counts/where").exists()
    });
    std::fs::write(tree.join("counts/go"), "").unwrap();
}

/// The run's commits after its start, oldest first: (task, files).
fn task_commits(up: &Up) -> Vec<(String, Vec<String>)> {
    let ws = up.workspace();
    let range = format!(
        "{}..{}",
        ws["start"].as_str().unwrap(),
        ws["branch"].as_str().unwrap()
    );
    let root = up.p.root();
    git(&root, &["log", "--reverse", "--format=%H", &range])
        .lines()
        .filter_map(|c| {
            let trailers = git(&root, &["log", "-1", "--format=%(trailers)", c]);
            let task = trailers
                .lines()
                .find_map(|l| l.strip_prefix("Orch-Task: "))?
                .to_string();
            let files = git(
                &root,
                &["diff-tree", "--no-commit-id", "--name-only", "-r", c],
            )
            .lines()
            .map(String::from)
            .collect();
            Some((task, files))
        })
        .collect()
}

#[test]
fn a_dependency_chain_each_in_its_own_worktree_sees_only_its_dependencies_commits() {
    let up = project("iso-chain");
    let root = up.p.root();
    let before = git(&root, &["status", "--porcelain", "--untracked-files=all"]);
    up.start();
    // d has written half of its file (and its stray) before a goes on: a must not see it.
    let d = task_tree(&up, "d");
    up.wait_until("d's half-written file", || d.join("d.txt").exists());
    up.wait_until("d's stray to be reverted in d's worktree", || {
        up.journal().contains("\"path\":\"stray.txt\"") && !d.join("stray.txt").exists()
    });
    go(&up, "a");
    up.wait_until("c to be done", || {
        Up::task(&up.status(), "c")["state"] == "done"
    });
    // `orch diff d` shows d at work, as its own worktree holds it.
    let diff = up
        .orch()
        .args(["diff", "d"])
        .env("GIT_PAGER", "cat")
        .run()
        .expect(0);
    assert!(
        diff.stdout().contains("+d half-written"),
        "{}",
        diff.stdout()
    );
    assert!(
        diff.stderr().contains("its own worktree"),
        "{}",
        diff.stderr()
    );
    go(&up, "d");
    up.wait(0);

    // Each task worked in its own worktree.
    let events = up.journal_events();
    let made: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "task_worktree")
        .collect();
    assert_eq!(made.len(), 4, "{}", up.journal());
    for e in &made {
        let id = e["task"].as_str().unwrap();
        assert_eq!(
            Path::new(e["path"].as_str().unwrap()),
            task_tree(&up, id),
            "{e}"
        );
    }
    // Once committed, each went; none is left.
    let removed = events
        .iter()
        .filter(|e| e["event"] == "task_worktree_removed")
        .count();
    assert_eq!(removed, 4, "{}", up.journal());
    let tasks_dir = task_tree(&up, "a").parent().unwrap().to_path_buf();
    assert!(
        !tasks_dir.exists(),
        "{:?}\n{}",
        std::fs::read_dir(&tasks_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
        up.journal()
    );
    assert!(!git(&root, &["worktree", "list"]).contains("-tasks"));

    // One commit per task, exactly its owned files; d's stray in none.
    let mut commits = task_commits(&up);
    assert_eq!(commits.len(), 4, "{commits:?}\n{}", up.diagnostics());
    assert_eq!(
        commits.pop().unwrap(),
        ("d".into(), vec!["d.txt".into(), "tests/d_test.txt".into()])
    );
    for ((task, files), id) in commits.iter().zip(["a", "b", "c"]) {
        assert_eq!(task, id);
        assert_eq!(
            files,
            &[format!("{id}.txt"), format!("tests/{id}_test.txt")]
        );
    }
    let branch = up.workspace()["branch"].as_str().unwrap().to_string();
    assert_eq!(
        git(&root, &["log", "--all", "--format=%H", "--", "stray.txt"]),
        ""
    );
    let show = |file: &str| git(&root, &["show", &format!("{branch}:{file}")]);
    // a never saw d's half-written file; b started from a's commit, c from b's (and not d's,
    // done later).
    assert_eq!(show("a.txt"), "d.txt: none\n");
    assert_eq!(show("b.txt"), "a.txt: d.txt: none\n");
    assert_eq!(
        show("c.txt"),
        "a.txt: d.txt: none\nb.txt: a.txt: d.txt: none\nd.txt: none\n"
    );
    assert_eq!(show("d.txt"), "d done\n");

    // The stray: one violation, d's alone, saved then deleted in d's worktree.
    let status = up.status();
    let violations = status["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{status:#}");
    assert_eq!(violations[0]["path"], "stray.txt");
    assert_eq!(violations[0]["suspects"], serde_json::json!(["d"]));
    assert_eq!(violations[0]["action"], "deleted", "{status:#}");
    let saved = up.run_dir().join("violations/1/stray.txt");
    assert_eq!(std::fs::read_to_string(saved).unwrap(), "not d's\n");

    // The run's worktree follows its branch: every task's files, nothing uncommitted.
    let work = up.work_dir();
    assert_eq!(
        std::fs::read_to_string(work.join("d.txt")).unwrap(),
        "d done\n"
    );
    assert_eq!(git(&work, &["status", "--porcelain"]), "");
    // And the user's checkout is as it was.
    assert_eq!(
        git(&root, &["status", "--porcelain", "--untracked-files=all"]),
        before
    );
    // An agent in a task's own worktree gets a box of its own: a run's shared box there would
    // serve one task's few agents, then sit idle for the rest of the run.
    let shared: Vec<_> = std::fs::read_dir(up.run_dir().join("boxes"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(shared.is_empty(), "{shared:?}");
}

/// What every run of the plan must end with, however often its engine died: one commit per
/// task with exactly its files, d's stray in none and one violation for it, no task worktree
/// left, the run's worktree holding it all.
fn assert_the_end(up: &Up, case: &str) {
    let mut tasks: Vec<(String, Vec<String>)> = task_commits(up);
    tasks.sort();
    let want: Vec<(String, Vec<String>)> = ["a", "b", "c", "d"]
        .iter()
        .map(|id| {
            (
                id.to_string(),
                vec![format!("{id}.txt"), format!("tests/{id}_test.txt")],
            )
        })
        .collect();
    assert_eq!(tasks, want, "{case}\n{}", up.diagnostics());
    let root = up.p.root();
    assert_eq!(
        git(&root, &["log", "--all", "--format=%H", "--", "stray.txt"]),
        ""
    );
    assert!(
        !git(&root, &["worktree", "list"]).contains("-tasks"),
        "{}",
        up.diagnostics()
    );
    let status = up.status();
    let violations = status["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{status:#}");
    assert_eq!(violations[0]["path"], "stray.txt", "{status:#}");
    let work = up.work_dir();
    assert_eq!(
        git(&work, &["status", "--porcelain"]),
        "",
        "{case}\n{}",
        up.diagnostics()
    );
    for id in ["a", "b", "c", "d"] {
        assert!(work.join(format!("{id}.txt")).exists(), "{id}");
    }
}

#[test]
fn killed_at_each_step_of_a_tasks_worktree_the_run_resumes_with_nothing_lost_or_redone() {
    for (n, point) in [
        // The worktree made, not journaled: it is made again.
        "before:task_worktree",
        // The commit made, not journaled: found by its trailers.
        "before:task_committed",
        // Journaled, its worktree not removed yet.
        "after:task_committed",
        "before:task_worktree_removed",
    ]
    .into_iter()
    .enumerate()
    {
        let up = options(&format!("iso-crash{n}")).env("ISO_GO", "1").start();
        up.start_with(true, &[("ORCH_ENGINE_CRASH", point)]);
        up.wait_for_engine_gone();
        up.resume();
        up.wait(0);
        assert_the_end(&up, point);
        // Nothing committed was run again.
        let starts = up
            .journal_events()
            .iter()
            .filter(|e| e["event"] == "task_started")
            .count();
        assert!(starts <= 5, "{point}: {}", up.journal());
    }
}

#[test]
fn an_engine_killed_while_tasks_work_in_their_worktrees_resumes_and_polices_them() {
    let up = project("iso-kill");
    up.start();
    let d = task_tree(&up, "d");
    up.wait_until("d's half-written file", || d.join("d.txt").exists());
    let a = task_tree(&up, "a");
    up.wait_until("a to start", || a.join("counts/where").exists());
    up.kill_engine();
    // a ends while no engine is alive; d goes on once the new engine watches it.
    std::fs::write(a.join("counts/go"), "").unwrap();
    up.wait_until("a's exit record", || {
        up.run_dir().join("tasks/a/1/exit.json").exists()
    });
    up.resume();
    up.wait_until("c to be done", || {
        Up::task(&up.status(), "c")["state"] == "done"
    });
    // A stray d writes now, watched by the new engine: reverted in d's worktree.
    std::fs::write(d.join("late-stray.txt"), "late\n").unwrap();
    up.wait_until("the late stray to be reverted", || {
        up.journal().contains("late-stray.txt") && !d.join("late-stray.txt").exists()
    });
    std::fs::write(d.join("counts/go"), "").unwrap();
    up.wait(0);
    let mut tasks = task_commits(&up);
    tasks.sort();
    assert_eq!(tasks.len(), 4, "{}", up.diagnostics());
    let branch = up.workspace()["branch"].as_str().unwrap().to_string();
    let a_txt = git(&up.p.root(), &["show", &format!("{branch}:a.txt")]);
    assert_eq!(a_txt, "d.txt: none\n");
    let status = up.status();
    let paths: Vec<&str> = status["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["stray.txt", "late-stray.txt"], "{status:#}");
}

/// Its first attempt writes half of its file and fails.
const FAILING_FIRST: &str = r#"#!/bin/sh
mkdir -p tests
if [ "$(cat f.txt 2>/dev/null)" = "half" ]; then
  echo "continued from half" > f.txt
  echo "test of f" > tests/f_test.txt
  exit 0
fi
echo "half" > f.txt
exit 1
"#;

fn failing_first(name: &str) -> Up {
    Options::new(name)
        .worker(FAILING_FIRST)
        .yaml("isolation: task\n")
        .ignore("counts/\nplan.json\n")
        .file("specs/s.md", "# the spec\n")
        .plan(
            r#"{"specs": [{"file": "specs/s.md"}], "tasks": [
                {"id": "f", "agent": "mine", "task": "write f", "files": ["tests/f_test.txt", "f.txt"]}]}"#,
        )
        .committed()
        .start()
}

/// `orch discard` of a failed run removes the worktree its failed task kept, with the run's.
#[test]
fn discard_removes_a_failed_tasks_kept_worktree() {
    let up = failing_first("iso-discard");
    up.start();
    assert_eq!(up.wait_for_end(), 1, "{}", up.diagnostics());
    let tree = task_tree(&up, "f");
    assert!(tree.join("f.txt").exists());
    up.orch()
        .args(["discard", "--delete-branch"])
        .run()
        .expect(0);
    assert!(!tree.exists());
    assert!(!tree.parent().unwrap().exists());
    assert!(!git(&up.p.root(), &["worktree", "list"]).contains(".orch/worktrees"));
}

/// A task that fails keeps its worktree (and its files are copied into the run directory);
/// `orch retry` continues in that worktree, the task's commit then holds what it finished;
/// `orch discard` leaves no worktree of the run.
#[test]
fn a_failed_tasks_worktree_is_kept_for_retry_and_discard_removes_all() {
    let up = failing_first("iso-retry");
    up.start();
    assert_eq!(up.wait_for_end(), 1, "{}", up.diagnostics());
    let tree = task_tree(&up, "f");
    assert_eq!(
        std::fs::read_to_string(tree.join("f.txt")).unwrap(),
        "half\n"
    );
    let kept = up.run_dir().join("failed/f/f.txt");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "half\n");
    assert!(task_commits(&up).is_empty());

    up.orch().args(["retry", "f", "--detach"]).run().expect(0);
    up.wait(0);
    let branch = up.workspace()["branch"].as_str().unwrap().to_string();
    let f = git(&up.p.root(), &["show", &format!("{branch}:f.txt")]);
    assert_eq!(f, "continued from half\n");
    assert!(!tree.exists(), "{}", up.diagnostics());

    up.orch()
        .args(["discard", "--delete-branch"])
        .run()
        .expect(0);
    assert!(!git(&up.p.root(), &["worktree", "list"]).contains(".orch/worktrees"));
    assert!(
        !up.p
            .path(".orch/worktrees")
            .join(format!("{}-tasks", up.status()["run_id"].as_str().unwrap()))
            .exists()
    );
}
