//! A run is a branch: in a git project `orch up` works on a branch `orch/<run-id>` in a
//! worktree under `.orch/worktrees/`, and the user's checkout (a modified tracked file, a
//! staged change, an untracked file) stays byte for byte as it was, from `up` to `down`, while
//! the user commits in it; each accepted task is one commit of exactly its owned files (a stray
//! write is in none); the uncommitted changes are one commit at the base; resume after the
//! engine's SIGKILL or the tmux server's death makes nothing committed again.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::support::{Options, Tmux as _, Up, git};

/// t1 and t2 side by side would race; t2 needs t1.
const PLAN: &str = r#"{"specs": [{"file": "specs/s.md"}],
 "tasks": [
  {"id": "t1", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "t2", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"], "depends_on": ["t1"]}
 ]}"#;

/// Counts its start, waits for `counts/go` (in the worktree: git-ignored), writes its files;
/// t1 also writes a file it does not own (where `ownership.ignore` lets it: no violation,
/// and not git-ignored, so only a commit of exactly the owned files leaves it out); t2 notes the commit it started from.
const WORKER: &str = r#"#!/bin/sh
id="$ORCH_TASK_ID"
mkdir -p counts
echo "start $$" >> "counts/starts-$id"
while [ ! -e counts/go ]; do sleep 0.02; done
if [ "$id" = t2 ]; then git log -1 --format=%s > counts/t2-started-from; fi
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$id wrote $f" > "$f"; done
if [ "$id" = t1 ]; then mkdir -p scratch; echo stray > scratch/stray.txt; fi
echo "task $id finished"
"#;

fn project(name: &str) -> Up {
    let up = Options::new(name)
        .worker(WORKER)
        .ignore(".orch/\ncounts/\nplan.json\n")
        .file("specs/s.md", "# the spec\n")
        .file("tracked.txt", "tracked\n")
        .file("staged.txt", "staged\n")
        .yaml("ownership:\n  ignore: [\"scratch/**\"]\n")
        .plan(PLAN)
        .request("Build a and b")
        .committed()
        .start();
    // The user's uncommitted work: a modified tracked file, a staged change, an untracked file.
    up.p.file("tracked.txt", "tracked, changed by the user\n");
    up.p.file("staged.txt", "staged, changed and staged\n");
    up.p.git(&["add", "staged.txt"]);
    up.p.file("untracked.txt", "the user's new file\n");
    up
}

/// The checkout as the user sees it: every file but `.git/`, `.orch/` and the tests' own
/// `counts/`, byte for byte, and what git says is staged and changed.
fn checkout(root: &Path) -> (BTreeMap<String, Vec<u8>>, String, String, String) {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if rel == ".git" || rel == ".orch" || rel == "counts" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    (
        files,
        git(root, &["status", "--porcelain=v1", "--untracked-files=all"]),
        git(root, &["diff", "--cached", "--binary"]),
        git(root, &["diff", "--binary"]),
    )
}

/// The run branch's commits after `start`, oldest first: (subject, files, trailers).
fn commits(root: &Path, range: &str) -> Vec<(String, Vec<String>, String)> {
    git(root, &["log", "--reverse", "--format=%H", range])
        .lines()
        .map(|c| {
            let subject = git(root, &["log", "-1", "--format=%s", c])
                .trim()
                .to_string();
            let files = git(
                root,
                &["diff-tree", "--no-commit-id", "--name-only", "-r", c],
            )
            .lines()
            .map(String::from)
            .collect();
            let trailers = git(root, &["log", "-1", "--format=%(trailers)", c]);
            (subject, files, trailers)
        })
        .collect()
}

#[test]
fn the_checkout_is_untouched_while_the_user_commits_and_each_task_is_one_commit() {
    let up = project("wt-checkout");
    let root = up.p.root();
    let before = checkout(&root);
    up.start();
    up.wait_until("t1 to start", || up.work_path("counts/starts-t1").exists());
    let ws = up.workspace();
    let branch = ws["branch"].as_str().unwrap().to_string();
    assert!(branch.starts_with("orch/"), "{ws:#}");
    assert_eq!(
        up.work_dir(),
        root.join(".orch/worktrees").join(&branch[5..])
    );
    assert_eq!(checkout(&root), before, "orch up changed the checkout");

    // The user commits something of their own meanwhile (leaving the staged change staged).
    up.p.file("mine.txt", "the user's commit\n");
    git(&root, &["add", "mine.txt"]);
    git(
        &root,
        &["commit", "-q", "-m", "the user's own", "--", "mine.txt"],
    );
    let committed = checkout(&root);

    std::fs::write(up.work_path("counts/go"), "").unwrap();
    up.wait(0);
    // The control window's last words say where the work is.
    let said = format!("Its work is on branch {branch}");
    up.wait_until("the control window to name the branch", || {
        up.pane("control").replace('\n', "").contains(&said)
    });
    assert_eq!(checkout(&root), committed, "the run changed the checkout");
    up.orch().args(["down"]).run();
    assert_eq!(checkout(&root), committed, "orch down changed the checkout");
    assert!(
        up.work_dir().join("a.txt").exists(),
        "down keeps the worktree"
    );
    assert_eq!(
        git(&root, &["log", "-1", "--format=%s", "HEAD"]).trim(),
        "the user's own"
    );

    // The uncommitted changes: one commit at the base, holding exactly them.
    let base = ws["base"].as_str().unwrap();
    let start = ws["start"].as_str().unwrap();
    assert_eq!(ws["uncommitted"].as_str(), Some(start));
    let first = commits(&root, &format!("{base}..{start}"));
    assert_eq!(
        first[0].1,
        ["staged.txt", "tracked.txt", "untracked.txt"],
        "{first:?}"
    );
    // Then one commit per task, exactly its owned files; the stray is in none.
    let run = commits(&root, &format!("{start}..{branch}"));
    let shown: Vec<(&str, Vec<&str>)> = run
        .iter()
        .map(|(s, f, _)| (s.as_str(), f.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        shown,
        [
            ("orch: task t1 (mine)", vec!["a.txt", "tests/a_test.txt"]),
            ("orch: task t2 (mine)", vec!["b.txt", "tests/b_test.txt"]),
        ],
        "{}",
        up.diagnostics()
    );
    let run_id = up.status()["run_id"].as_str().unwrap().to_string();
    for (trailers, task) in [(&run[0].2, "t1"), (&run[1].2, "t2")] {
        for want in [
            format!("Orch-Run: {run_id}"),
            format!("Orch-Task: {task}"),
            "Orch-Agent: mine".into(),
            "Orch-Attempts: 1".into(),
            "Orch-Verdict: pass".into(),
        ] {
            assert!(trailers.contains(&want), "{want} not in {trailers}");
        }
    }
    assert_eq!(
        git(&root, &["log", "--all", "--format=%H", "--", "scratch"]),
        ""
    );
    assert!(
        up.work_path("scratch/stray.txt").exists(),
        "the stray stays in the worktree"
    );
    // t2 started from a branch that held t1's commit.
    let from = std::fs::read_to_string(up.work_path("counts/t2-started-from")).unwrap();
    assert_eq!(from.trim(), "orch: task t1 (mine)");
    // The journal has them, and the report lists them.
    let names = up.event_names();
    assert_eq!(names.iter().filter(|e| *e == "task_committed").count(), 2);
    let report = up.orch().args(["report"]).run().expect(0).stdout();
    assert!(
        report.contains(&branch) && report.contains("tests/a_test.txt"),
        "{report}"
    );
    let json = up
        .orch()
        .args(["report", "--json"])
        .run()
        .expect(0)
        .stdout();
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["commits"].as_array().unwrap().len(), 2, "{json:#}");
    assert_eq!(json["workspace"]["branch"], branch.as_str());
    // So does the status: where the work is, and what to do with it.
    let status = up.status();
    assert_eq!(status["workspace"]["branch"], branch.as_str(), "{status:#}");
    assert_eq!(status["commits"].as_array().unwrap().len(), 2, "{status:#}");
    let text = up.orch().args(["status"]).run().expect(0).stdout();
    assert!(
        text.contains(&format!("on branch {branch} (2 commits;")) && text.contains("merge"),
        "{text}"
    );
}

/// The task each commit of the run's branch holds (`Orch-Task`), oldest first, and that
/// the checkout is as it was.
fn task_commits(up: &Up) -> Vec<String> {
    let ws = up.workspace();
    let range = format!(
        "{}..{}",
        ws["start"].as_str().unwrap(),
        ws["branch"].as_str().unwrap()
    );
    commits(&up.p.root(), &range)
        .into_iter()
        .filter_map(|(_, _, trailers)| {
            trailers
                .lines()
                .find_map(|l| l.strip_prefix("Orch-Task: ").map(String::from))
        })
        .collect()
}

fn assert_committed_once(up: &Up) {
    let mut tasks = task_commits(up);
    tasks.sort();
    assert_eq!(tasks, ["a", "b", "c"], "{}", up.diagnostics());
    let names = up.event_names();
    assert_eq!(
        names.iter().filter(|e| *e == "task_committed").count(),
        3,
        "{names:?}"
    );
    for id in ["a", "b", "c"] {
        assert_eq!(up.starts(id), 1, "{id} started again\n{}", up.diagnostics());
    }
}

#[test]
fn a_run_on_a_branch_resumes_after_the_engine_is_killed_with_nothing_committed_redone() {
    let up = Up::counting_on_branch("wt-kill");
    let before = checkout(&up.p.root());
    up.start();
    up.wait_for_starts(&["a", "b"]);
    up.release("a");
    up.wait_until("a to be done", || {
        Up::task(&up.status(), "a")["state"] == "done"
    });
    up.kill_engine();
    // b ends while no engine is alive.
    up.release("b");
    let exit = up.run_dir().join("tasks/b/1/exit.json");
    up.wait_until("b's exit record", || exit.exists());
    up.resume();
    up.release("all");
    up.wait(0);
    assert_committed_once(&up);
    assert_eq!(checkout(&up.p.root()), before);
}

#[test]
fn a_commit_made_but_not_journaled_is_found_by_its_trailers_on_resume() {
    let up = Up::counting_on_branch("wt-unjournaled");
    up.release("all");
    // The engine dies right after making a's (or b's) commit, before journaling it.
    up.start_with(true, &[("ORCH_ENGINE_CRASH", "before:task_committed")]);
    up.wait_for_engine_gone();
    assert!(!up.event_names().iter().any(|e| e == "task_committed"));
    assert_eq!(task_commits(&up).len(), 1, "{}", up.diagnostics());
    up.resume();
    up.wait(0);
    assert_committed_once(&up);
}

#[test]
fn a_commit_journaled_before_its_task_was_done_is_done_on_resume() {
    let up = Up::counting_on_branch("wt-committed");
    up.release("all");
    // The engine dies right after journaling a commit, before the task is done (and before
    // the .git/ guard took the branch's new tip): no violation, nothing run again.
    up.start_with(true, &[("ORCH_ENGINE_CRASH", "after:task_committed")]);
    up.wait_for_engine_gone();
    up.resume();
    up.wait(0);
    assert_committed_once(&up);
    assert_eq!(up.status()["violations"], serde_json::json!([]));
}

#[test]
fn a_run_on_a_branch_resumes_after_the_tmux_server_dies() {
    let up = Up::counting_on_branch("wt-server");
    up.start();
    up.wait_for_starts(&["a", "b"]);
    up.release("a");
    up.wait_until("a to be done", || {
        Up::task(&up.status(), "a")["state"] == "done"
    });
    up.server.tmux().kill_server().unwrap();
    up.wait_for_engine_gone();
    up.resume();
    up.wait_until("b's new attempt", || up.starts("b") == 2);
    up.release("all");
    up.wait(0);
    let mut tasks = task_commits(&up);
    tasks.sort();
    assert_eq!(tasks, ["a", "b", "c"], "{}", up.diagnostics());
    // a was committed: never run again; b lost its agent with the server.
    assert_eq!((up.starts("a"), up.starts("b"), up.starts("c")), (1, 2, 1));
    // The run's worktree holds every task's files.
    for file in ["a.txt", "b.txt", "c.txt"] {
        assert!(up.work_path(file).exists(), "{file}");
    }
}

/// Tries what a run on a branch must not do from its box, and notes what got through.
const PROBE: &str = r#"#!/bin/sh
mkdir -p counts
got=""
cat "$ROOT/.orch/runs/other/environ" >/dev/null 2>&1 && got="$got other-run"
[ -e "$ROOT/.orch/lock-of-the-project" ] && got="$got state-dir"
echo defaced > "$ROOT/README.md" 2>/dev/null && got="$got checkout"
echo x > "$ROOT/.git/index" 2>/dev/null && got="$got user-index"
echo x > "$ROOT/.git/refs/heads/evil" 2>/dev/null && got="$got refs"
echo "got:$got" > counts/probe
git add -A >/dev/null 2>&1 || echo "git add failed" >> counts/probe
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$ORCH_TASK_ID" > "$f"; done
"#;

#[test]
fn the_box_of_a_run_on_a_branch_shows_its_worktree_and_nothing_else_of_orchs() {
    if orch::sandbox::availability().is_err() {
        eprintln!("skipped: the sandbox does not work here");
        return;
    }
    let up = Options::new("wt-box")
        .worker(PROBE)
        .agent("env: {ROOT: \"@ROOT@\"}")
        .ignore("counts/\nplan.json\n")
        .file("specs/s.md", "# the spec\n")
        .plan(PLAN)
        .committed()
        .in_target()
        .start();
    let root = up.p.root();
    up.p.file(".orch/runs/other/environ", "SECRET=1\n");
    up.p.file(".orch/lock-of-the-project", "");
    let before = checkout(&root);
    let index = std::fs::read(root.join(".git/index")).unwrap();
    up.run(0);
    let probe = std::fs::read_to_string(up.work_path("counts/probe")).unwrap();
    assert_eq!(probe, "got:\n", "{}", up.diagnostics());
    assert_eq!(checkout(&root), before);
    assert_eq!(std::fs::read(root.join(".git/index")).unwrap(), index);
}

#[test]
fn a_failed_task_leaves_no_commit_and_its_files_in_the_run_directory() {
    let up = Options::new("wt-failed")
        .worker(
            "#!/bin/sh\nfor f in $ORCH_FILES; do mkdir -p \"$(dirname \"$f\")\"; \
             echo \"$ORCH_TASK_ID tried\" > \"$f\"; done\nexit 3\n",
        )
        .ignore("plan.json\n")
        .file("specs/s.md", "# the spec\n")
        .plan(PLAN)
        .committed()
        .start();
    up.run(1);
    let kept = up.run_dir().join("failed/t1");
    assert_eq!(
        std::fs::read_to_string(kept.join("a.txt")).unwrap(),
        "t1 tried\n"
    );
    assert!(kept.join("tests/a_test.txt").exists());
    assert!(task_commits(&up).is_empty(), "{:?}", task_commits(&up));
    assert!(!up.event_names().iter().any(|e| e == "task_committed"));
    let report = up.run_file("report.md");
    assert!(report.contains("failed/t1/"), "{report}");
}

#[test]
fn an_agents_commit_on_the_run_branch_is_a_violation() {
    // Unboxed, so that nothing but orch's guard stands in the way.
    let up = Options::new("wt-guard")
        .worker(
            "#!/bin/sh\nfor f in $ORCH_FILES; do mkdir -p \"$(dirname \"$f\")\"; \
             echo \"$ORCH_TASK_ID\" > \"$f\"; done\n\
             [ \"$ORCH_TASK_ID\" = t1 ] && git -c user.name=a -c user.email=a@a commit -q \
             --allow-empty -m sneaky\nexit 0\n",
        )
        .agent("sandbox: off")
        .ignore("plan.json\n")
        .file("specs/s.md", "# the spec\n")
        .plan(PLAN)
        .committed()
        .start();
    up.start();
    up.wait_for_end();
    let status = up.status();
    let paths: Vec<&str> = status["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["path"].as_str())
        .collect();
    let branch = up.workspace()["branch"].as_str().unwrap().to_string();
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with(&format!(".git/refs/heads/{branch}"))),
        "{paths:?}\n{}",
        up.diagnostics()
    );
}

#[test]
fn up_says_where_the_run_works_and_refuses_uncommitted_changes_when_told() {
    let up = project("wt-up-refuse");
    let root = up.p.root();
    let before = checkout(&root);
    up.up(
        &["go", "--plan", "plan.json", "--uncommitted", "refuse"],
        None,
    )
    .expect(2)
    .stderr_has("tracked.txt")
    .stderr_has("--uncommitted include");
    assert_eq!(up.run_count(), 0, "a refused up leaves no run");
    assert_eq!(git(&root, &["branch", "--list", "orch/*"]), "");
    assert_eq!(checkout(&root), before);
    up.up(
        &["go", "--plan", "plan.json", "--uncommitted", "sometimes"],
        None,
    )
    .expect(2)
    .stderr_has("neither `include` nor `refuse`");

    // --in-place: no branch, no worktree, the run's files in the checkout.
    let out = up
        .up(&["go", "--plan", "plan.json", "--in-place"], None)
        .expect(0);
    assert!(!out.stdout().contains("on branch"), "{}", out.stdout());
    assert!(up.workspace().is_null());
    std::fs::create_dir_all(root.join("counts")).unwrap();
    std::fs::write(root.join("counts/go"), "").unwrap();
    up.wait_for_end();
    assert!(root.join("a.txt").exists());
}

#[test]
fn a_project_without_a_commit_runs_in_place_and_says_so_once() {
    let up = Options::new("wt-unborn")
        .worker(WORKER)
        .ignore("counts/\nplan.json\n")
        .file("specs/s.md", "# the spec\n")
        .file("counts/go", "")
        .yaml("ownership:\n  ignore: [\"scratch/**\"]\n")
        .plan(PLAN)
        .start();
    let out = up.up(&["go", "--plan", "plan.json"], None).expect(0);
    assert!(out.stderr().contains("no commit yet"), "{}", out.stderr());
    assert!(up.workspace().is_null());
    up.wait(0);
    assert!(up.p.path("b.txt").exists());
    let warnings = up.status()["warnings"].clone();
    let said: Vec<&Value> = warnings
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == "workspace")
        .collect();
    assert_eq!(said.len(), 1, "{warnings:#}");
}

#[test]
fn up_names_the_branch_and_worktree() {
    let up = project("wt-up-says");
    let out = up.up(&["go", "--plan", "plan.json"], None).expect(0);
    let ws = up.workspace();
    let line = format!(
        "on branch {} (worktree {})",
        ws["branch"].as_str().unwrap(),
        ws["path"].as_str().unwrap()
    );
    assert!(out.stdout().contains(&line), "{}", out.stdout());
    std::fs::create_dir_all(up.work_path("counts")).unwrap();
    std::fs::write(up.work_path("counts/go"), "").unwrap();
    up.wait(0);
}

#[test]
fn the_four_agent_clis_work_on_a_branch() {
    use crate::support::agent_clis::{self, CLIS, ONE_AT_A_TIME, ROLES, protocol_of};
    if !agent_clis::available("the_four_agent_clis_work_on_a_branch") {
        return;
    }
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Options::new("wt-clis").real_clis(ROLES).committed().start();
    let root = run.p.root();
    let before = checkout(&root);
    run.up(
        &["Build one greeting script per agent, with its test"],
        None,
    )
    .expect(0);
    run.wait(0);
    assert_eq!(checkout(&root), before, "the run changed the checkout");
    // The planner's spec and every CLI's files: in the worktree, each task one commit.
    let spec = std::fs::read_to_string(run.work_path("specs/overview.md")).unwrap();
    assert!(spec.contains("through anthropic-messages"), "{spec}");
    let ws = run.workspace();
    let range = format!(
        "{}..{}",
        ws["start"].as_str().unwrap(),
        ws["branch"].as_str().unwrap()
    );
    let made = commits(&root, &range);
    assert_eq!(made[0].0, "orch: the plan's specs", "{made:?}");
    for cli in CLIS {
        let files = [format!("tests/{cli}_test.sh"), format!("src/{cli}.sh")];
        for file in &files {
            let content = std::fs::read_to_string(run.work_path(file)).unwrap();
            assert!(
                content.contains(&format!("{file}: written through {}", protocol_of(cli))),
                "{file}: {content}"
            );
        }
        let mine: Vec<_> = made
            .iter()
            .filter(|(_, _, t)| t.contains(&format!("Orch-Task: {cli}\n")))
            .collect();
        assert_eq!(mine.len(), 1, "{cli}: {made:?}");
        let mut want = files.to_vec();
        want.sort();
        assert_eq!(mine[0].1, want, "{cli}");
        assert!(mine[0].2.contains("Orch-Tokens: "), "{cli}: {}", mine[0].2);
    }
}
