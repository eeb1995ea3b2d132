//! `orch merge` of a run that started from a clean checkout: fast-forward, merge commit,
//! squash; refused, with nothing changed, on an overwrite, a conflict or a live engine.

use orch::state;

use super::hand_run::{HandRun, checkout_state, git, project};

#[test]
fn merge_fast_forwards_a_branch_that_did_not_move() {
    let run = HandRun::start(project(), &[("x", &["x.txt"])]);
    let tip = run.commit_task("x", &[("x.txt", "x\n")]);
    run.finish();
    // A change of the user's since, to a file the run did not touch, stays as it is.
    run.project.file("b.txt", "bee, edited after up\n");
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("fast-forward, 1 commit");
    let root = run.root();
    assert_eq!(git(&root, &["rev-parse", "HEAD"]), tip);
    assert_eq!(run.project.read("x.txt"), "x\n");
    assert_eq!(run.project.read("b.txt"), "bee, edited after up\n");
    assert_eq!(git(&root, &["status", "--porcelain"]), "M b.txt");
    assert_eq!(run.merges(), vec![("main".into(), tip, false)]);
    // Twice is once.
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("nothing to merge");
    assert_eq!(run.merges().len(), 1);
}

#[test]
fn merge_into_a_branch_the_user_advanced_meanwhile() {
    let run = HandRun::start(project(), &[("x", &["x.txt"]), ("y", &["a.txt"])]);
    run.commit_task("x", &[("x.txt", "x\n")]);
    let tip = run.commit_task("y", &[("a.txt", "one\ntwo\nthree\nfour\n")]);
    run.finish();
    // The user works on in their checkout while the run goes on.
    let root = run.root();
    run.project
        .file("mine.txt", "mine\n")
        .file("b.txt", "bee!\n");
    git(&root, &["add", "."]);
    git(&root, &["commit", "-q", "-m", "my own work"]);
    let mine = git(&root, &["rev-parse", "HEAD"]);
    run.orch(&["runs"])
        .expect(0)
        .stdout_has("succeeded")
        .stdout_has("orch/20261202-100000-0001")
        .stdout_has("unmerged: 2 commits")
        .stdout_has("Build the thing");
    let listed: serde_json::Value =
        serde_json::from_str(&run.orch(&["runs", "--json"]).expect(0).stdout()).unwrap();
    assert_eq!(listed[0]["standing"], "unmerged");
    assert_eq!(listed[0]["commits"], 2);
    assert_eq!(listed[0]["workspace"], "worktree");

    run.orch(&["merge"])
        .expect(0)
        .stdout_has("merge commit, 2 commits");
    let head = git(&root, &["rev-parse", "HEAD"]);
    assert_eq!(git(&root, &["rev-parse", "HEAD^1"]), mine);
    assert_eq!(git(&root, &["rev-parse", "HEAD^2"]), tip);
    assert!(git(&root, &["log", "-1", "--format=%B"]).contains("Orch-Run: 20261202-100000-0001"));
    assert_eq!(run.project.read("a.txt"), "one\ntwo\nthree\nfour\n");
    assert_eq!(run.project.read("x.txt"), "x\n");
    assert_eq!(run.project.read("b.txt"), "bee!\n");
    assert_eq!(run.project.read("mine.txt"), "mine\n");
    assert_eq!(git(&root, &["status", "--porcelain"]), "");
    assert_eq!(run.merges(), vec![("main".into(), head, false)]);
    run.orch(&["runs"]).expect(0).stdout_has("merged into main");
    // The run goes on after its merge (a resume): what it adds is unmerged again.
    run.commit_task("x", &[("x.txt", "x, again\n")]);
    run.orch(&["runs"])
        .expect(0)
        .stdout_has("merged into main, 1 commit since");
    run.orch(&["merge"]).expect(0).stdout_has("merge commit");
    assert_eq!(run.project.read("x.txt"), "x, again\n");
}

#[test]
fn merge_is_refused_on_an_overwrite_and_nothing_changes() {
    let project = project();
    project.file(".gitignore", "*.log\n");
    git(&project.root(), &["add", ".gitignore"]);
    git(&project.root(), &["commit", "-q", "-m", "ignore logs"]);
    let run = HandRun::start(
        project,
        &[("x", &["a.txt", "b.txt", "new.txt", "build.log", "d/f.txt"])],
    );
    run.commit_task(
        "x",
        &[
            ("a.txt", "run's a\n"),
            ("b.txt", "run's b\n"),
            ("new.txt", "run's new\n"),
            ("build.log", "run's log\n"),
            ("d/f.txt", "run's f\n"),
        ],
    );
    run.finish();
    // After the run started, the user changed the same files, in every way git knows.
    let root = run.root();
    run.project
        .file("a.txt", "my a\n")
        .file("b.txt", "my staged b\n")
        .file("new.txt", "my new\n")
        .file("build.log", "my log\n")
        .file("d", "a file where the run puts a directory\n");
    git(&root, &["add", "b.txt"]);
    let before = checkout_state(&root);

    let out = run.orch(&["merge"]).expect(1);
    let err = out.stderr();
    for line in [
        "a.txt (modified)",
        "b.txt (staged)",
        "new.txt (untracked)",
        "build.log (ignored",
        "d (untracked)",
        "Nothing was changed",
        "git stash push --include-untracked -- a.txt b.txt build.log d new.txt",
    ] {
        assert!(err.contains(line), "stderr lacks {line:?}:\n{err}");
    }
    assert_eq!(checkout_state(&root), before);
    assert!(run.merges().is_empty());
}

#[test]
fn squash_makes_one_commit_on_head() {
    let run = HandRun::start(project(), &[("x", &["x.txt"]), ("y", &["y.txt"])]);
    run.commit_task("x", &[("x.txt", "x\n")]);
    run.commit_task("y", &[("y.txt", "y\n")]);
    run.finish();
    let root = run.root();
    let head = git(&root, &["rev-parse", "HEAD"]);

    run.orch(&["merge", "--squash"])
        .expect(0)
        .stdout_has("one squashed commit, 2 commits");
    assert_eq!(git(&root, &["rev-parse", "HEAD^"]), head);
    assert_eq!(git(&root, &["rev-list", "--count", "HEAD"]), "2");
    assert_eq!(
        git(
            &root,
            &["diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD"]
        ),
        "x.txt\ny.txt"
    );
    let message = git(&root, &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("orch run 20261202-100000-0001: Build the thing"),
        "{message}"
    );
    assert!(
        message.contains("- Task x: do x") && message.contains("- Task y: do y"),
        "{message}"
    );
    assert_eq!(git(&root, &["status", "--porcelain"]), "");
    let merges = run.merges();
    assert_eq!(merges.len(), 1);
    assert!(merges[0].2, "recorded as a squash");
    run.orch(&["merge", "--squash"])
        .expect(0)
        .stdout_has("nothing to merge");
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("nothing to merge");
    assert_eq!(run.merges().len(), 1);
}

#[test]
fn a_run_without_commits_has_nothing_to_merge_and_its_branch_goes_with_it() {
    let project = project();
    project.file("a.txt", "uncommitted\n");
    let run = HandRun::start(project, &[("x", &["x.txt"])]);
    run.finish();
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("no commits of its own");
    run.orch(&["runs"]).expect(0).stdout_has("no commits");
    run.orch(&["discard"])
        .expect(0)
        .stdout_has("Deleted its branch");
    assert!(git(&run.root(), &["branch", "--list", "orch/*"]).is_empty());
    assert_eq!(run.project.read("a.txt"), "uncommitted\n");
}

#[test]
fn a_conflicting_merge_is_refused_cleanly() {
    let run = HandRun::start(project(), &[("x", &["a.txt"])]);
    run.commit_task("x", &[("a.txt", "one\nTWO by the run\nthree\n")]);
    run.finish();
    let root = run.root();
    run.project.file("a.txt", "one\ntwo by me\nthree\n");
    git(&root, &["commit", "-q", "-am", "mine"]);
    let before = checkout_state(&root);

    run.orch(&["merge"])
        .expect(1)
        .stderr_has("conflicts with main in 1 file:\n  a.txt")
        .stderr_has("git merge orch/20261202-100000-0001");
    assert_eq!(checkout_state(&root), before);
    assert!(!root.join(".git/MERGE_HEAD").exists());
    assert!(run.merges().is_empty());
    run.orch(&["merge", "--squash"])
        .expect(1)
        .stderr_has("a.txt");
    assert_eq!(checkout_state(&root), before);
}

#[test]
fn merge_and_discard_wait_for_the_runs_engine() {
    let run = HandRun::start(project(), &[("x", &["x.txt"])]);
    run.commit_task("x", &[("x.txt", "x\n")]);
    let state_dir = run.root().join(".orch");
    let dir = state::RunDir::new(&state_dir, &run.run_id);
    let lock = state::EngineLock::acquire(&state_dir, &dir, false).unwrap();
    run.orch(&["merge"])
        .expect(2)
        .stderr_has("is still running")
        .stderr_has("orch down --run 20261202-100000-0001");
    run.orch(&["discard"])
        .expect(2)
        .stderr_has("is still running");
    assert!(run.worktree().is_dir());
    drop(lock);
    // A run in place holds the checkout: a merge waits for it.
    let other = state::RunDir::new(&state_dir, "20261202-100000-0009");
    other.create().unwrap();
    let in_place = state::EngineLock::acquire(&state_dir, &other, true).unwrap();
    run.orch(&["merge"])
        .expect(2)
        .stderr_has("20261202-100000-0009 is still live in place");
    drop(in_place);
    run.orch(&["merge"]).expect(0).stderr_has("not finished");
}
