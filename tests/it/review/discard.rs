//! `orch discard`, `orch diff`, and what an in-place run answers to the review commands.

use orch::state::{self, Event, RunInfo};

use super::hand_run::{HandRun, git, project};

#[test]
fn discard_keeps_a_branch_with_unmerged_work_unless_told() {
    let run = HandRun::start(project(), &[("x", &["x.txt"])]);
    let tip = run.commit_task("x", &[("x.txt", "x\n")]);
    run.finish();
    std::fs::write(run.worktree().join("stray.txt"), "no task's\n").unwrap();
    let root = run.root();
    let branch = &run.ws().branch;

    // Not from inside the worktree it removes.
    run.project
        .orch()
        .args(["discard"])
        .cwd(run.worktree())
        .run()
        .expect(2)
        .stderr_has("you are inside the worktree");
    assert!(run.worktree().is_dir());
    run.orch(&["discard"])
        .expect(0)
        .stdout_has("Removed the worktree")
        .stdout_has("stray.txt")
        .stdout_has(&format!(
            "Kept its branch {branch}: it holds 1 commit that no merge brought to you"
        ));
    assert!(!run.worktree().exists());
    assert!(!git(&root, &["worktree", "list"]).contains("worktrees"));
    git(
        &root,
        &["rev-parse", "--verify", &format!("refs/heads/{branch}")],
    );
    assert!(run.run_dir().join("events.jsonl").is_file());
    assert!(run.events().contains(&Event::Discarded {
        branch_deleted: false
    }));
    run.orch(&["runs"])
        .expect(0)
        .stdout_has("discarded, branch kept (unmerged: 1 commit)");
    // The branch is still there to merge.
    run.orch(&["diff", "--", "--name-only"])
        .expect(0)
        .stdout_has("x.txt");

    run.orch(&["discard", "--delete-branch"])
        .expect(0)
        .stdout_has(&format!("Deleted its branch {branch}"));
    assert!(git(&root, &["branch", "--list", branch]).is_empty());
    assert!(run.events().contains(&Event::Discarded {
        branch_deleted: true
    }));
    run.orch(&["discard"])
        .expect(0)
        .stdout_has("discarded already");
    run.orch(&["merge"])
        .expect(2)
        .stderr_has("is gone")
        .stderr_has(&format!("`git branch {branch} {tip}` brings it back"));
}

#[test]
fn discard_deletes_a_branch_without_unmerged_work() {
    let run = HandRun::start(project(), &[("x", &["x.txt"])]);
    run.commit_task("x", &[("x.txt", "x\n")]);
    run.finish();
    run.orch(&["merge"]).expect(0);
    let root = run.root();
    let branch = &run.ws().branch;
    run.orch(&["discard"])
        .expect(0)
        .stdout_has(&format!("Deleted its branch {branch}"));
    assert!(!run.worktree().exists());
    assert!(git(&root, &["branch", "--list", branch]).is_empty());
    assert_eq!(run.project.read("x.txt"), "x\n");
    assert!(run.run_dir().join("run.json").is_file());
}

#[test]
fn diff_shows_the_run_a_task_and_a_task_at_work() {
    let project = project();
    project.file("a.txt", "uncommitted by me\n");
    let run = HandRun::start(project, &[("x", &["x.txt"]), ("y", &["y.txt", "a.txt"])]);
    run.commit_task("x", &[("x.txt", "x\n")]);
    // The run's diff leaves the user's uncommitted changes out.
    let out = run.orch(&["diff", "--", "--name-only"]).expect(0);
    assert_eq!(out.stdout().trim(), "x.txt");
    // Git's own arguments, paths included.
    let out = run
        .orch(&["diff", "--", "--name-only", "--", "nothing-here"])
        .expect(0);
    assert_eq!(out.stdout().trim(), "");
    run.orch(&["diff", "x"])
        .expect(0)
        .stdout_has("Orch-Task: x")
        .stdout_has("+x");
    // Task y runs: a new file and a changed one, not committed.
    std::fs::write(run.worktree().join("y.txt"), "y at work\n").unwrap();
    std::fs::write(run.worktree().join("a.txt"), "changed by y\n").unwrap();
    std::fs::write(run.worktree().join("stray.txt"), "not y's\n").unwrap();
    let out = run
        .orch(&["diff", "y"])
        .expect(0)
        .stderr_has("not committed");
    let text = out.stdout();
    assert!(
        text.contains("+y at work") && text.contains("-uncommitted by me"),
        "{text}"
    );
    assert!(!text.contains("stray"), "{text}");
    run.orch(&["diff", "nope"])
        .expect(2)
        .stderr_has("its tasks are x, y");
}

#[test]
fn an_in_place_run_has_nothing_to_merge_or_discard() {
    let project = project();
    let root = project.root();
    let info = RunInfo {
        run_id: "20261202-100000-0002".into(),
        request: "in place".into(),
        session: "orch-test".into(),
        socket: None,
        socket_path: None,
        tmux_config: None,
        layout: "windows".into(),
        project_root: root.clone(),
        created_at_ms: state::now_ms(),
        plan_given: true,
        orch_version: "test".into(),
        workspace: None,
        review: false,
    };
    state::create_run(&root.join(".orch"), &info, "", None).unwrap();
    for verb in ["merge", "discard", "diff"] {
        project
            .orch()
            .args([verb])
            .run()
            .expect(2)
            .stderr_has("ran in place");
    }
    project
        .orch()
        .args(["runs"])
        .run()
        .expect(0)
        .stdout_has("20261202-100000-0002")
        .stdout_has("in-place");
}
