//! The workspace with real git: preparing a run's branch and worktree from a dirty checkout
//! (which stays byte for byte as it was), and the engine's commits of exactly the named files.

use std::path::Path;
use std::process::Command;

use super::*;
use crate::paths::ProjectPath;

fn sh(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository with a commit, a modified tracked file, a staged change and an untracked file.
fn dirty_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sh(root, &["init", "-q"]);
    std::fs::write(root.join(".gitignore"), ".orch/\nignored.txt\n").unwrap();
    std::fs::write(root.join("tracked.txt"), "one\n").unwrap();
    std::fs::write(root.join("staged.txt"), "s\n").unwrap();
    sh(root, &["add", "."]);
    sh(root, &["commit", "-q", "-m", "first"]);
    std::fs::write(root.join("tracked.txt"), "one, changed\n").unwrap();
    std::fs::write(root.join("staged.txt"), "s, staged\n").unwrap();
    sh(root, &["add", "staged.txt"]);
    std::fs::write(root.join("untracked.txt"), "new\n").unwrap();
    std::fs::write(root.join("ignored.txt"), "ignored\n").unwrap();
    std::fs::create_dir_all(root.join(".orch/runs/x")).unwrap();
    std::fs::write(root.join(".orch/runs/x/environ"), "SECRET=1").unwrap();
    dir
}

fn wanted(uncommitted: Uncommitted) -> Wanted {
    Wanted {
        mode: Mode::Worktree,
        uncommitted,
        isolation: Isolation::Run,
    }
}

fn status(root: &Path) -> String {
    sh(root, &["status", "--porcelain", "--untracked-files=all"])
}

#[test]
fn a_dirty_checkout_is_included_as_one_commit_and_left_as_it_was() {
    let dir = dirty_repo();
    let root = dir.path().canonicalize().unwrap();
    let before = (
        status(&root),
        sh(&root, &["rev-parse", "HEAD"]),
        std::fs::read(root.join(".git/index")).unwrap(),
    );
    let Prepared::Worktree { info: ws, .. } = prepare(
        &root,
        &root.join(".orch"),
        "r1",
        wanted(Uncommitted::Include),
    )
    .unwrap() else {
        panic!("a worktree was expected");
    };
    let after = (
        status(&root),
        sh(&root, &["rev-parse", "HEAD"]),
        std::fs::read(root.join(".git/index")).unwrap(),
    );
    assert_eq!(
        before, after,
        "the user's checkout, HEAD and index are untouched"
    );
    assert_eq!(ws.branch, "orch/r1");
    assert_eq!(ws.path, root.join(".orch/worktrees/r1"));
    assert_eq!(ws.user_branch.as_deref(), Some("main"));
    let uncommitted = ws.uncommitted.clone().unwrap();
    assert_eq!(ws.start, uncommitted);
    assert_eq!(
        sh(&root, &["rev-parse", &format!("{uncommitted}^")]),
        ws.base
    );
    let files = sh(
        &root,
        &[
            "diff-tree",
            "--name-only",
            "-r",
            "--no-commit-id",
            &uncommitted,
        ],
    );
    assert_eq!(
        files.lines().collect::<Vec<_>>(),
        ["staged.txt", "tracked.txt", "untracked.txt"]
    );
    // The agents see what the user sees (ignored files and .orch/ aside).
    let wt = &ws.path;
    assert_eq!(
        std::fs::read_to_string(wt.join("tracked.txt")).unwrap(),
        "one, changed\n"
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("untracked.txt")).unwrap(),
        "new\n"
    );
    assert!(!wt.join("ignored.txt").exists() && !wt.join(".orch").exists());
    assert_eq!(status(wt), "", "the worktree starts clean");
}

#[test]
fn refuse_names_the_changes_and_makes_nothing() {
    let dir = dirty_repo();
    let root = dir.path().canonicalize().unwrap();
    let err = prepare(
        &root,
        &root.join(".orch"),
        "r1",
        wanted(Uncommitted::Refuse),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("tracked.txt") && text.contains("--uncommitted include"),
        "{text}"
    );
    assert!(!root.join(".orch/worktrees/r1").exists());
    assert!(Git::at(&root).commit_of("refs/heads/orch/r1").is_none());
}

#[test]
fn a_clean_checkout_starts_at_head_and_no_git_runs_in_place() {
    let dir = dirty_repo();
    let root = dir.path().canonicalize().unwrap();
    sh(&root, &["add", "-A"]);
    sh(&root, &["commit", "-q", "-m", "all"]);
    let Prepared::Worktree { info: ws, .. } = prepare(
        &root,
        &root.join(".orch"),
        "r2",
        wanted(Uncommitted::Refuse),
    )
    .unwrap() else {
        panic!("a worktree was expected");
    };
    assert_eq!(
        (ws.uncommitted.as_deref(), ws.start.as_str()),
        (None, ws.base.as_str())
    );

    let plain = tempfile::tempdir().unwrap();
    let got = prepare(
        plain.path(),
        &plain.path().join(".orch"),
        "r",
        wanted(Uncommitted::Include),
    )
    .unwrap();
    assert!(
        matches!(got, Prepared::InPlace { note: Some(n) } if n.contains("not a git repository"))
    );
    let unborn = tempfile::tempdir().unwrap();
    sh(unborn.path(), &["init", "-q"]);
    let got = prepare(
        unborn.path(),
        &unborn.path().join(".orch"),
        "r",
        wanted(Uncommitted::Include),
    )
    .unwrap();
    assert!(matches!(got, Prepared::InPlace { note: Some(n) } if n.contains("no commit yet")));
    let asked = Wanted {
        mode: Mode::InPlace,
        ..wanted(Uncommitted::Include)
    };
    assert!(matches!(
        prepare(&root, &root.join(".orch"), "r3", asked).unwrap(),
        Prepared::InPlace { note: None }
    ));
}

#[test]
fn a_commit_holds_exactly_the_named_files_and_is_found_by_its_trailers() {
    let dir = dirty_repo();
    let root = dir.path().canonicalize().unwrap();
    let Prepared::Worktree { info: ws, .. } = prepare(
        &root,
        &root.join(".orch"),
        "r1",
        wanted(Uncommitted::Include),
    )
    .unwrap() else {
        panic!("a worktree was expected");
    };
    let run_dir = tempfile::tempdir().unwrap();
    let wt = &ws.path;
    std::fs::write(wt.join("a.txt"), "a\n").unwrap();
    std::fs::write(wt.join("stray.txt"), "stray\n").unwrap();
    std::fs::remove_file(wt.join("tracked.txt")).unwrap();
    let committer = Committer::new(&ws, run_dir.path());
    let files: Vec<ProjectPath> = ["a.txt", "tracked.txt"]
        .iter()
        .map(|f| ProjectPath::new(f).unwrap())
        .collect();
    let message = task_message(
        "r1",
        &TaskSummary {
            id: "t1",
            agent: "w",
            text: "Write a\nmore",
            attempts: 2,
            verdict: "pass".into(),
            tokens: Some(42),
            cost_usd: None,
        },
    );
    let commit = committer.commit(&files, &message, false).unwrap().unwrap();
    assert_eq!(committer.tip().unwrap(), commit);
    committer.reset_index().unwrap();
    assert_eq!(
        committer.files_of(&commit).unwrap(),
        ["a.txt", "tracked.txt"]
    );
    // The stray is in no commit, and still in the worktree, untracked.
    assert!(wt.join("stray.txt").exists());
    assert_eq!(
        status(wt),
        "?? stray.txt",
        "the worktree's index follows the tip"
    );
    let found = committer.commits().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].commit, commit);
    assert_eq!(found[0].trailer("Orch-Task"), Some("t1"));
    assert_eq!(found[0].trailer("Orch-Tokens"), Some("42"));
    assert_eq!(found[0].trailer("orch-run"), Some("r1"));
    // Nothing changed since: an empty specs commit is skipped.
    assert_eq!(
        committer
            .commit(&files, &specs_message("r1", &files), true)
            .unwrap(),
        None
    );
    // The author is the user's identity from the repository's config, else orch's.
    let author = sh(&root, &["log", "-1", "--format=%an <%ae>", &commit]);
    assert!(!author.is_empty());
}

#[test]
fn an_untracked_nested_repository_is_left_out_and_said() {
    let dir = dirty_repo();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("nested")).unwrap();
    std::fs::write(root.join("nested/x"), "x").unwrap();
    sh(&root.join("nested"), &["init", "-q"]);
    let got = prepare(
        &root,
        &root.join(".orch"),
        "r1",
        wanted(Uncommitted::Include),
    )
    .unwrap();
    let Prepared::Worktree { info, left_out } = got else {
        panic!("a worktree was expected");
    };
    assert_eq!(left_out, ["nested/"]);
    assert!(info.uncommitted.is_some());
}
