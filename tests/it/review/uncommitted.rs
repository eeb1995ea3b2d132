//! `orch merge` of a run that started from the checkout's uncommitted changes: the run's own
//! commits replayed, the user's changes neither lost nor doubled.

use super::hand_run::{HandRun, checkout_state, git, project};

#[test]
fn the_users_uncommitted_changes_are_neither_lost_nor_doubled_by_a_merge() {
    let project = project();
    // Uncommitted when the run starts: a modified tracked file, a staged change, an
    // untracked file. They become the run branch's first commit.
    project
        .file("a.txt", "one\ntwo\nthree\nmy edit\n")
        .file("b.txt", "bee staged\n")
        .file("notes.txt", "my notes\n");
    git(&project.root(), &["add", "b.txt"]);
    let run = HandRun::start(project, &[("x", &["x.txt"]), ("y", &["c.txt"])]);
    assert!(run.ws().uncommitted.is_some());
    let x = run.commit_task("x", &[("x.txt", "x\n")]);
    run.commit_task("y", &[("c.txt", "see\n")]);
    run.finish();
    let root = run.root();
    let head = git(&root, &["rev-parse", "HEAD"]);
    let before = checkout_state(&root);

    run.orch(&["merge"])
        .expect(0)
        .stdout_has("2 commits replayed")
        .stdout_has("as they were");
    // The two tasks' commits, replayed on HEAD: their files only, their author and message.
    assert_eq!(git(&root, &["rev-parse", "HEAD~2"]), head);
    assert_eq!(
        git(&root, &["diff", "--name-only", &head, "HEAD"]),
        "c.txt\nx.txt"
    );
    assert_eq!(
        git(&root, &["log", "-1", "--format=%an|%B", "HEAD~1"]),
        git(&root, &["log", "-1", "--format=%an|%B", &x])
    );
    // The user's changes: still theirs, uncommitted, byte for byte.
    let after = checkout_state(&root);
    for file in ["a.txt", "b.txt", "notes.txt"] {
        assert_eq!(after[file], before[file], "{file}");
    }
    assert_eq!(run.project.read("x.txt"), "x\n");
    assert_eq!(run.project.read("c.txt"), "see\n");
    let status = git(&root, &["status", "--porcelain"]);
    // (` M a.txt`, its first blank trimmed.)
    assert_eq!(status, "M a.txt\nM  b.txt\n?? notes.txt", "{status}");
    // Not doubled: no commit on the branch holds them.
    assert_eq!(
        git(
            &root,
            &["log", "--format=%H", "--", "a.txt", "notes.txt", "b.txt"]
        )
        .lines()
        .count(),
        1
    );
}

#[test]
fn a_task_that_built_on_the_users_uncommitted_change_merges_once_they_set_it_aside() {
    let project = project();
    project.file("a.txt", "my line\none\ntwo\nthree\n");
    let run = HandRun::start(project, &[("x", &["a.txt"])]);
    run.commit_task(
        "x",
        &[("a.txt", "my line\none\ntwo\nthree\nthe run's line\n")],
    );
    run.finish();
    let root = run.root();
    let before = checkout_state(&root);
    // The merge would write a.txt, which holds the user's uncommitted line: refused.
    run.orch(&["merge"])
        .expect(1)
        .stderr_has("a.txt (modified)")
        .stderr_has("git stash push --include-untracked -- a.txt");
    assert_eq!(checkout_state(&root), before);
    // As the message says: aside, merge, back.
    git(
        &root,
        &["stash", "push", "--include-untracked", "--", "a.txt"],
    );
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("1 commit replayed");
    assert_eq!(
        run.project.read("a.txt"),
        "one\ntwo\nthree\nthe run's line\n"
    );
    git(&root, &["stash", "pop"]);
    assert_eq!(
        run.project.read("a.txt"),
        "my line\none\ntwo\nthree\nthe run's line\n"
    );
    assert_eq!(git(&root, &["diff", "--name-only"]), "a.txt");
}

#[test]
fn the_run_replays_cleanly_on_the_users_changes_once_they_committed_them() {
    let project = project();
    project
        .file("a.txt", "one\ntwo\nthree\nmine\n")
        .file("n.txt", "n\n");
    let run = HandRun::start(project, &[("x", &["a.txt"])]);
    run.commit_task("x", &[("a.txt", "zero\none\ntwo\nthree\nmine\n")]);
    run.finish();
    let root = run.root();
    git(&root, &["add", "."]);
    git(
        &root,
        &["commit", "-q", "-m", "my changes, committed after all"],
    );
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("1 commit replayed");
    assert_eq!(run.project.read("a.txt"), "zero\none\ntwo\nthree\nmine\n");
    assert_eq!(git(&root, &["status", "--porcelain"]), "");
    assert_eq!(git(&root, &["rev-list", "--count", "HEAD"]), "3");
}

#[test]
fn a_conflict_on_a_file_the_user_had_uncommitted_says_how_to_keep_it_out() {
    let project = project();
    project.file("a.txt", "one\nmy two\nthree\n");
    let run = HandRun::start(project, &[("x", &["a.txt"])]);
    run.commit_task("x", &[("a.txt", "one\nthe run's two\nthree\n")]);
    run.finish();
    let root = run.root();
    let before = checkout_state(&root);
    run.orch(&["merge"])
        .expect(1)
        .stderr_has("in 1 file:\n  a.txt")
        .stderr_has("uncommitted at `orch up`")
        .stderr_has("commit your own changes to these files first");
    assert_eq!(checkout_state(&root), before);
}
