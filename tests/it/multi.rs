//! Several runs of one project at once: each with its own engine (its own lock), its own tmux
//! session; commands pick the latest run and say so when another is live, `--run` picks
//! another, `down --run` stops that one alone; a run in place still excludes another in
//! place, and a dead engine is still found dead.

use crate::support::Up;

/// A run of `project` that works in a worktree, beside the latest run: its record made as
/// `orch up` would make it (its config, one task `x` of the counting worker), then started
/// by `orch resume --run ID`. Returns its id.
///
/// (Made by hand until `orch up` makes worktree runs: only the run record says where a run
/// works, and that is what decides which locks its engine takes.)
fn worktree_run_beside(project: &Up) -> String {
    let root = project.p.root();
    let state_dir = root.join(".orch");
    let latest = std::fs::read_to_string(state_dir.join("current")).unwrap();
    let latest = orch::state::RunDir::new(&state_dir, latest.trim());
    let before = orch::state::RunInfo::read(&latest.run_json()).unwrap();
    let id = orch::project::new_id();
    let proj = orch::project::Project::discover(&root, None).unwrap();
    let info = orch::state::RunInfo {
        run_id: id.clone(),
        request: "write x".into(),
        session: proj.session_name(&id),
        created_at_ms: orch::state::now_ms(),
        workspace: Some(orch::workspace::WorkspaceInfo {
            path: orch::workspace::worktree_path(&state_dir, &id),
            branch: orch::workspace::branch_name(&id),
            base: "0".repeat(40),
            start: "0".repeat(40),
            uncommitted: None,
            user_branch: None,
            isolation: orch::workspace::Isolation::default(),
        }),
        ..before
    };
    let config = std::fs::read_to_string(latest.config()).unwrap();
    let dir = orch::state::create_run(&state_dir, &info, &config, None).unwrap();
    std::fs::write(
        dir.plan(),
        r#"{"tasks": [{"id": "x", "agent": "mine", "task": "write x",
            "files": ["tests/x_test.txt", "x.txt"]}]}"#,
    )
    .unwrap();
    project
        .orch()
        .args(["resume", "--run", &id, "--detach"])
        .run()
        .expect(0)
        .stdout_has(&format!(
            "run {id} resumed in tmux session {}",
            info.session
        ))
        // Another run is live: the hints name this one.
        .stdout_has(&format!(" status --run {id}\n"))
        .stdout_has(&format!(" down --run {id}\n"));
    id
}

#[test]
fn runs_side_by_side_each_have_a_session_and_commands_pick_the_latest_and_say_so() {
    let project = Up::counting("multi");
    project.start();
    project.wait_for_starts(&["a", "b"]);
    let a = project.status()["run_id"].as_str().unwrap().to_string();
    let a_session = project.session();

    // A second run in place waits for the first: both would write the checkout.
    project
        .orch()
        .args(["up", "again", "--plan", "plan.json", "--detach"])
        .run()
        .expect(2)
        .stderr_has(&format!("run {a} is still live in place"))
        .stderr_has(&format!("orch down --run {a}"))
        .stderr_has("worktree");
    assert_eq!(project.run_count(), 1, "the refused run left no record");

    // A worktree run starts beside it, in a session of its own.
    let b = worktree_run_beside(&project);
    let b_session = project.session();
    project.wait_for_starts(&["x"]);
    assert_ne!(a_session, b_session);
    let mut names = project.session_names();
    names.sort();
    let mut both = vec![a_session.clone(), b_session.clone()];
    both.sort();
    assert_eq!(names, both, "{}", project.diagnostics());

    // Without --run: the latest run, said to be one of two live.
    let note = "note: 2 runs are live in this project";
    let picked = format!("this is run {b}, the latest: pick another with --run ID");
    let status = project.orch().args(["status"]).run().expect(0);
    let status = status
        .stdout_has(&format!("run {b} · running · engine running"))
        .stderr_has(note)
        .stderr_has(&picked)
        .stderr_has(&a);
    assert!(
        !status.stdout().contains(note),
        "the note is not the output"
    );
    project
        .orch()
        .args(["logs", "x"])
        .run()
        .expect(0)
        .stderr_has(&picked);
    // --json stays one JSON document on stdout.
    let json = project.orch().args(["status", "--json"]).run().expect(0);
    let json = json.stderr_has(&picked);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(parsed["run_id"], b.as_str());
    // --run picks the other, and there is nothing to say.
    let other = project.orch().args(["status", "--run", &a]).run().expect(0);
    let other = other.stdout_has(&format!("run {a} · running · engine running"));
    assert!(!other.stderr().contains("note:"), "{}", other.stderr());

    // A dead engine is found dead, while the other run's lives on.
    project.kill_engine();
    project
        .orch()
        .args(["status", "--run", &b])
        .run()
        .expect(0)
        .stdout_has("ENGINE GONE");
    project
        .orch()
        .args(["status"])
        .run()
        .expect(0)
        .stderr_has(&format!(
            "1 run is live in this project ({a}); this is run {b}, the latest, not live"
        ));
    // It resumes beside the run in place: a worktree run does not need the checkout.
    project.resume();
    project.wait_until("b's engine again", || {
        project.status()["engine_alive"] == true
    });

    // `down --run` stops that run alone.
    project
        .orch()
        .args(["down", "--run", &a])
        .run()
        .expect(0)
        .stdout_has(&format!("run {a} is down: session {a_session} closed"));
    assert_eq!(project.session_names(), std::slice::from_ref(&b_session));
    project
        .orch()
        .args(["status"])
        .run()
        .expect(0)
        .stdout_has(&format!("run {b} · running · engine running"))
        .stderr_lacks("note:");
    project
        .orch()
        .args(["status", "--run", &a])
        .run()
        .expect(0)
        .stdout_has(&format!(
            "run {a} · stopped · engine finished · session {a_session} closed"
        ));

    // The latest run goes on to its end, and `wait` waits for it.
    project.release("x");
    project.wait(0);
    let report = project.orch().args(["report", "--json"]).run().expect(0);
    let report: serde_json::Value = serde_json::from_str(&report.stdout()).unwrap();
    assert_eq!(report["run_id"], b.as_str(), "{report:#}");
}

#[test]
fn runs_one_after_the_other_leave_one_session_and_a_run_left_unfinished_is_mentioned() {
    let project = Up::counting("sequence");
    project.start();
    project.release("all");
    project.wait(0);
    let first = project.session();
    // The finished run's session stays, with its final screen, until the next run.
    assert_eq!(project.session_names(), std::slice::from_ref(&first));
    project.start();
    let second = project.session();
    assert_ne!(first, second);
    assert_eq!(project.session_names(), std::slice::from_ref(&second));
    let unfinished = project.status()["run_id"].as_str().unwrap().to_string();
    // Its engine and session gone, the run is not over: the next run says it can continue.
    project.kill_engine();
    project.tmux(&["kill-session", "-t", &format!("={second}")]);
    let up = project.up(&["another", "--plan", "plan.json"], None);
    up.expect(0)
        .stderr_has(&format!(
            "note: run {unfinished} did not finish (its engine and session are gone); `"
        ))
        .stderr_has(&format!(" resume --run {unfinished}` can continue it"));
    project.orch().args(["down"]).run().expect(0);
}
