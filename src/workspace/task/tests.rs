//! Real git: a project with a run branch and its worktree as a worktree run has them, and
//! task worktrees made, collected and discarded on it.

use std::path::{Path, PathBuf};

use super::*;

struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
    repo: TaskRepo,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = crate::git::command()
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Tester",
            "-c",
            "user.email=tester@example.com",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    text(&out.stdout)
}

fn write(root: &Path, rel: &str, body: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn owned(paths: &[&str]) -> Vec<ProjectPath> {
    paths.iter().map(|p| ProjectPath::new(p).unwrap()).collect()
}

/// A committed project (`README`, `src/lib.rs`, `old.txt`, `.gitignore` ignoring `target/`),
/// the run branch `orch/r1` and its worktree under `.orch/worktrees/r1`, as `orch up` makes
/// them.
fn project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.name", "Tester"]);
    git(&root, &["config", "user.email", "tester@example.com"]);
    write(&root, "README", "readme\n");
    write(&root, "src/lib.rs", "// lib\n");
    write(&root, "old.txt", "old\n");
    write(&root, ".gitignore", "target/\n.orch/\n");
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "base"]);
    let state = root.join(".orch");
    let run_wt = crate::workspace::worktree_path(&state, "r1");
    git(
        &root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "orch/r1",
            run_wt.to_str().unwrap(),
        ],
    );
    let repo = TaskRepo::new(&run_wt, &state, "r1", &state.join("runs/r1"));
    Project {
        _dir: dir,
        root,
        repo,
    }
}

/// The files a commit changed against its parent.
fn files_of(dir: &Path, commit: &str) -> Vec<String> {
    let out = git(
        dir,
        &["diff-tree", "--no-commit-id", "--name-only", "-r", commit],
    );
    out.lines().map(str::to_string).collect()
}

#[test]
fn prepare_makes_a_detached_worktree_at_the_run_branch_tip_fully_checked_out() {
    let p = project();
    let tw = p.repo.prepare(&TaskId::new("a")).unwrap();
    assert_eq!(
        tw.path,
        p.root.join(".orch/worktrees/r1-tasks/a"),
        "the task worktree's place"
    );
    assert_eq!(tw.start, p.repo.tip().unwrap());
    assert_eq!(git(&tw.path, &["rev-parse", "HEAD"]), tw.start);
    // Detached: no branch is checked out there.
    let head = std::fs::read_to_string(RepoDirs::of(&tw.path).unwrap().git_dir.join("HEAD"));
    assert_eq!(head.unwrap().trim(), tw.start);
    assert_eq!(
        std::fs::read_to_string(tw.path.join("src/lib.rs")).unwrap(),
        "// lib\n"
    );
    assert_eq!(git(&tw.path, &["status", "--porcelain"]), "");
    assert_eq!(p.repo.task_worktrees().unwrap(), vec![tw.path.clone()]);
    assert!(matches!(
        p.repo.prepare(&TaskId::new("a")),
        Err(TaskError::Exists(_))
    ));
    assert!(matches!(
        p.repo.prepare(&TaskId::new("../x")),
        Err(TaskError::UnsafeTask(_))
    ));
}

#[test]
fn collect_takes_exactly_the_owned_files_as_one_commit_and_reports_every_other_change() {
    let p = project();
    let run_wt = p.repo.repo.clone();
    let before = p.repo.tip().unwrap();
    let tw = p.repo.prepare(&TaskId::new("a")).unwrap();
    write(&tw.path, "src/lib.rs", "// lib, changed by a\n");
    write(&tw.path, "src/new.rs", "// new\n");
    std::fs::remove_file(tw.path.join("old.txt")).unwrap();
    // Not owned: a stray new file, a change to a file of the project, a planted .gitignore.
    write(&tw.path, "stray.txt", "stray\n");
    write(&tw.path, "README", "readme, changed by a\n");
    write(&tw.path, "docs/.gitignore", "*\n");
    write(&tw.path, "docs/hidden.md", "hidden\n");
    // Ignored by the project: nobody's business.
    write(&tw.path, "target/debug/out", "built\n");
    // Owned but untouched: not in the commit.
    let owns = owned(&["src/lib.rs", "src/new.rs", "old.txt", "untouched.txt"]);

    let got = p
        .repo
        .collect(
            &tw,
            &owns,
            "Task a: the lib\n\nOrch-Run: r1\nOrch-Task: a\n",
        )
        .unwrap();

    let commit = got.commit.clone().expect("a commit");
    assert_eq!(got.files, ["old.txt", "src/lib.rs", "src/new.rs"]);
    assert_eq!(files_of(&p.root, &commit), got.files);
    assert_eq!(
        got.findings,
        vec![
            Finding {
                path: "README".into(),
                change: Change::Modified
            },
            Finding {
                path: "docs/.gitignore".into(),
                change: Change::Added
            },
            // Hidden by the planted .gitignore: judged by the start's rules, it is not.
            Finding {
                path: "docs/hidden.md".into(),
                change: Change::Added
            },
            Finding {
                path: "stray.txt".into(),
                change: Change::Added
            },
        ]
    );
    assert_eq!(p.repo.tip().unwrap(), commit, "the run branch moved");
    assert_eq!(git(&p.root, &["rev-parse", &format!("{commit}^")]), before);
    assert_eq!(
        git(&p.root, &["log", "-1", "--format=%B", &commit]),
        "Task a: the lib\n\nOrch-Run: r1\nOrch-Task: a"
    );
    assert_eq!(
        git(&p.root, &["log", "-1", "--format=%an <%ae>", &commit]),
        "Tester <tester@example.com>"
    );
    assert_eq!(
        git(&p.root, &["show", &format!("{commit}:src/new.rs")]),
        "// new"
    );
    // The user's checkout is untouched, and the task's worktree too.
    assert_eq!(git(&p.root, &["status", "--porcelain"]), "");
    assert!(tw.path.join("stray.txt").is_file());
    // No temporary index left behind (the engine's own copy of the worktree's stays with
    // the worktree).
    let scratch: Vec<_> = std::fs::read_dir(&p.repo.scratch)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(scratch, ["index.tree-a"]);

    // The run's worktree catches up with its branch.
    assert_eq!(
        std::fs::read_to_string(run_wt.join("src/lib.rs")).unwrap(),
        "// lib\n"
    );
    p.repo.update_checkout(&run_wt).unwrap();
    assert_eq!(
        std::fs::read_to_string(run_wt.join("src/lib.rs")).unwrap(),
        "// lib, changed by a\n"
    );
    assert!(!run_wt.join("old.txt").exists());
    assert!(!run_wt.join("stray.txt").exists());
    assert_eq!(git(&run_wt, &["status", "--porcelain"]), "");
}

#[test]
fn the_starts_ignore_rules_and_ownership_ignore_decide_what_is_reported() {
    let p = project();
    let repo = p.repo.clone().with_ignore(&["*.log".to_string()]);
    let tw = repo.prepare(&TaskId::new("a")).unwrap();
    // The task un-ignores target/ and builds there: the build is still nobody's business,
    // the edited .gitignore is a change it does not own.
    write(&tw.path, ".gitignore", ".orch/\n");
    write(&tw.path, "target/debug/out", "built\n");
    write(&tw.path, "run.log", "log\n");
    write(&tw.path, "src/lib.rs", "// mine\n");
    let got = repo.collect(&tw, &owned(&["src/lib.rs"]), "m").unwrap();
    assert_eq!(got.files, ["src/lib.rs"]);
    assert_eq!(
        got.findings,
        vec![Finding {
            path: ".gitignore".into(),
            change: Change::Modified
        }]
    );
    // An owned file is taken even where the rules ignore it.
    let tw = repo.prepare(&TaskId::new("b")).unwrap();
    write(&tw.path, "target/generated.rs", "// generated\n");
    let got = repo
        .collect(&tw, &owned(&["target/generated.rs"]), "m")
        .unwrap();
    assert_eq!(got.files, ["target/generated.rs"]);
    assert!(got.findings.is_empty());
}

#[test]
fn a_task_that_changed_none_of_its_files_makes_no_commit() {
    let p = project();
    let before = p.repo.tip().unwrap();
    let tw = p.repo.prepare(&TaskId::new("idle")).unwrap();
    write(&tw.path, "stray.txt", "stray\n");
    let got = p.repo.collect(&tw, &owned(&["src/lib.rs"]), "m").unwrap();
    assert_eq!(got.commit, None);
    assert!(got.files.is_empty());
    assert_eq!(got.findings.len(), 1);
    assert_eq!(p.repo.tip().unwrap(), before);
}

#[test]
fn changes_count_from_the_start_even_when_the_task_committed_in_its_worktree() {
    let p = project();
    let tw = p.repo.prepare(&TaskId::new("a")).unwrap();
    write(&tw.path, "src/lib.rs", "// mine\n");
    write(&tw.path, "stray.txt", "stray\n");
    git(&tw.path, &["add", "-A"]);
    git(&tw.path, &["commit", "-q", "-m", "the agent's own commit"]);
    let got = p.repo.collect(&tw, &owned(&["src/lib.rs"]), "m").unwrap();
    let commit = got.commit.unwrap();
    assert_eq!(files_of(&p.root, &commit), ["src/lib.rs"]);
    assert_eq!(
        git(&p.root, &["rev-parse", &format!("{commit}^")]),
        tw.start
    );
    assert_eq!(got.findings[0].path, "stray.txt");
}

#[test]
fn a_dependency_chain_b_starts_from_as_commit_and_lands_on_it() {
    let p = project();
    let a = p.repo.prepare(&TaskId::new("a")).unwrap();
    write(&a.path, "api.rs", "pub fn api() {}\n");
    let got_a = p.repo.collect(&a, &owned(&["api.rs"]), "Task a").unwrap();
    p.repo.discard(&a).unwrap();

    // B depends on A: launched once A is collected, from the run branch's tip.
    let b = p.repo.prepare(&TaskId::new("b")).unwrap();
    assert_eq!(Some(b.start.clone()), got_a.commit);
    assert_eq!(
        std::fs::read_to_string(b.path.join("api.rs")).unwrap(),
        "pub fn api() {}\n",
        "B's worktree holds A's commit"
    );
    write(&b.path, "use_api.rs", "use crate::api;\n");
    let got_b = p
        .repo
        .collect(&b, &owned(&["use_api.rs"]), "Task b")
        .unwrap();
    let tip = p.repo.tip().unwrap();
    assert_eq!(Some(tip.clone()), got_b.commit);
    assert!(got_b.findings.is_empty(), "A's file is no change of B's");
    assert_eq!(
        git(&p.root, &["log", "--format=%s", "-2", &tip]),
        "Task b\nTask a"
    );
    assert_eq!(files_of(&p.root, &tip), ["use_api.rs"]);
}

#[test]
fn collects_of_independent_tasks_at_the_same_time_each_land() {
    let p = project();
    let base = p.repo.tip().unwrap();
    let tasks: Vec<TaskWorktree> = (0..6)
        .map(|i| {
            let tw = p.repo.prepare(&TaskId::new(format!("t{i}"))).unwrap();
            write(&tw.path, &format!("out/t{i}.txt"), &format!("task {i}\n"));
            tw
        })
        .collect();
    // One that collects after the others moved the branch from under its start.
    let late = p.repo.prepare(&TaskId::new("late")).unwrap();
    write(&late.path, "late.txt", "late\n");

    std::thread::scope(|s| {
        for (i, tw) in tasks.iter().enumerate() {
            let repo = &p.repo;
            s.spawn(move || {
                let got = repo
                    .collect(tw, &owned(&[&format!("out/t{i}.txt")]), &format!("t{i}"))
                    .unwrap();
                assert!(got.commit.is_some());
            });
        }
    });
    let got = p
        .repo
        .collect(&late, &owned(&["late.txt"]), "late")
        .unwrap();
    assert!(got.findings.is_empty(), "{:?}", got.findings);

    let tip = p.repo.tip().unwrap();
    let log = git(&p.root, &["rev-list", "--count", &format!("{base}..{tip}")]);
    assert_eq!(log, "7", "one commit per task, none lost");
    let tree = git(&p.root, &["ls-tree", "-r", "--name-only", &tip]);
    for i in 0..6 {
        assert!(tree.contains(&format!("out/t{i}.txt")), "{tree}");
    }
    assert!(tree.contains("late.txt"));
    // Each commit holds its own file only.
    for commit in git(&p.root, &["rev-list", &format!("{base}..{tip}")]).lines() {
        assert_eq!(files_of(&p.root, commit).len(), 1);
    }
}

#[test]
fn discard_removes_the_worktree_and_gits_record_of_it() {
    let p = project();
    let a = p.repo.prepare(&TaskId::new("a")).unwrap();
    let b = p.repo.prepare(&TaskId::new("b")).unwrap();
    write(&a.path, "dirty.txt", "unsaved\n");
    p.repo.discard(&a).unwrap();
    assert!(!a.path.exists());
    assert_eq!(p.repo.task_worktrees().unwrap(), vec![b.path.clone()]);
    // A worktree whose directory is already gone is no error.
    std::fs::remove_dir_all(&b.path).unwrap();
    p.repo.discard(&b).unwrap();
    assert!(p.repo.task_worktrees().unwrap().is_empty());
    assert!(!git(&p.root, &["worktree", "list"]).contains("r1-tasks"));

    let c = p.repo.prepare(&TaskId::new("c")).unwrap();
    p.repo.prepare(&TaskId::new("d")).unwrap();
    p.repo.discard_all().unwrap();
    assert!(!c.path.exists());
    assert!(!tasks_dir(&p.repo.state_dir, "r1").exists());
    // The run's own worktree and branch stay.
    assert!(p.repo.repo.is_dir());
    p.repo.tip().unwrap();
}

#[test]
fn inspect_commits_nothing_and_commit_takes_the_files_as_inspected() {
    let p = project();
    let before = p.repo.tip().unwrap();
    let tw = p.repo.prepare(&TaskId::new("a")).unwrap();
    write(&tw.path, "src/lib.rs", "// first\n");
    write(&tw.path, "stray.txt", "stray\n");
    let inspected = p.repo.inspect(&tw, &owned(&["src/lib.rs"])).unwrap();
    assert_eq!(inspected.files, ["src/lib.rs"]);
    assert_eq!(inspected.findings[0].path, "stray.txt");
    assert_eq!(p.repo.tip().unwrap(), before, "nothing committed yet");
    // Written again after the inspection (say, while the judge read it): not taken.
    write(&tw.path, "src/lib.rs", "// later\n");
    let commit = p.repo.commit(&tw, &inspected, "m").unwrap().unwrap();
    assert_eq!(
        git(&p.root, &["show", &format!("{commit}:src/lib.rs")]),
        "// first"
    );
}

#[test]
fn original_gives_what_a_path_held_at_the_start_with_its_mode() {
    let p = project();
    let tw = p.repo.prepare(&TaskId::new("a")).unwrap();
    write(&tw.path, "README", "changed\n");
    let (bytes, mode) = p.repo.original(&tw, "README").unwrap().unwrap();
    assert_eq!(mode, 0o100_644);
    assert_eq!(bytes, std::fs::read(p.root.join("README")).unwrap());
    assert_eq!(p.repo.original(&tw, "new.txt").unwrap(), None);
    // A directory is no file.
    assert_eq!(p.repo.original(&tw, "src").unwrap(), None);
}

/// The run's worktree after a commit made from its own files (the planner's spec, untracked
/// there, its index still at the start) and then a task's collect: both followed, nothing in
/// the way, nothing left looking changed.
#[test]
fn sync_follows_the_branch_after_a_commit_from_the_checkout_and_after_collects() {
    let p = project();
    let run = p.repo.repo.clone();
    // The planner's spec: written in the run's worktree, committed on the branch from there
    // (as the engine's Committer does: a temporary index, the worktree's own untouched).
    write(&run, "specs/new.md", "# spec\n");
    let spec = TaskWorktree {
        task: TaskId::new("specs"),
        path: run.clone(),
        start: p.repo.tip().unwrap(),
    };
    let inspected = p.repo.inspect(&spec, &owned(&["specs/new.md"])).unwrap();
    p.repo.commit(&spec, &inspected, "specs").unwrap().unwrap();
    let tw = p.repo.prepare(&TaskId::new("a")).unwrap();
    write(&tw.path, "a.txt", "a\n");
    write(&tw.path, "old.txt", "changed by a\n");
    std::fs::remove_file(tw.path.join("README")).unwrap();
    p.repo
        .collect(&tw, &owned(&["a.txt", "old.txt", "README"]), "a")
        .unwrap()
        .commit
        .unwrap();
    let save = p.root.join(".orch/runs/r1/synced");
    assert_eq!(
        p.repo.sync_checkout(&run, &save).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(git(&run, &["status", "--porcelain"]), "");
    assert_eq!(std::fs::read_to_string(run.join("a.txt")).unwrap(), "a\n");
    assert_eq!(
        std::fs::read_to_string(run.join("old.txt")).unwrap(),
        "changed by a\n"
    );
    assert!(!run.join("README").exists());
    assert!(p.repo.matches_tip(&run, "a.txt") && p.repo.matches_tip(&run, "README"));
    assert!(!save.exists(), "nothing was saved");
}

/// A change made in the run's worktree itself (no task works there) to a file the branch then
/// changes is saved before the file is brought up to the branch.
#[test]
fn sync_saves_a_change_made_in_the_checkout_before_writing_over_it() {
    let p = project();
    let run = p.repo.repo.clone();
    write(&run, "old.txt", "someone's change\n");
    let tw = p.repo.prepare(&TaskId::new("a")).unwrap();
    write(&tw.path, "old.txt", "a's\n");
    p.repo.collect(&tw, &owned(&["old.txt"]), "a").unwrap();
    let save = p.root.join(".orch/runs/r1/synced");
    assert_eq!(p.repo.sync_checkout(&run, &save).unwrap(), ["old.txt"]);
    assert_eq!(
        std::fs::read_to_string(save.join("old.txt")).unwrap(),
        "someone's change\n"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("old.txt")).unwrap(),
        "a's\n"
    );
    assert_eq!(git(&run, &["status", "--porcelain"]), "");
}

/// A task worktree removed by hand is forgotten by git on discard, so it can be made again;
/// a directory of ours git never knew (an engine killed within `worktree add`) is removed.
#[test]
fn a_worktree_removed_by_hand_or_never_registered_is_discarded_and_made_again() {
    let p = project();
    let tw = p.repo.prepare(&TaskId::new("a")).unwrap();
    std::fs::remove_dir_all(&tw.path).unwrap();
    p.repo.discard(&tw).unwrap();
    let again = p.repo.prepare(&TaskId::new("a")).unwrap();
    assert!(again.path.join("README").exists());
    p.repo.discard(&again).unwrap();
    std::fs::create_dir_all(again.path.join("half")).unwrap();
    p.repo.discard(&again).unwrap();
    assert!(!again.path.exists());
    p.repo.prepare(&TaskId::new("a")).unwrap();
}

/// What an agent does to its worktree's own index changes nothing of what is taken: a look
/// starts from the engine's own copy of the index git wrote with the worktree.
#[test]
fn the_tasks_own_index_is_never_trusted() {
    let p = project();
    let tw = p.repo.prepare(&TaskId::new("a")).unwrap();
    assert!(p.repo.private_index(&tw.task).exists());
    write(&tw.path, "src/lib.rs", "// good\n");
    let own = crate::git::RepoDirs::of(&tw.path)
        .unwrap()
        .git_dir
        .join("index");
    std::fs::write(&own, b"DIRC planted, not an index").unwrap();
    let got = p.repo.collect(&tw, &owned(&["src/lib.rs"]), "a").unwrap();
    let commit = got.commit.unwrap();
    assert_eq!(
        git(&p.root, &["show", &format!("{commit}:src/lib.rs")]),
        "// good"
    );
    assert!(got.findings.is_empty(), "{:?}", got.findings);
    p.repo.discard(&tw).unwrap();
    assert!(!p.repo.private_index(&tw.task).exists());
}
