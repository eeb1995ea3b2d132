//! Several runs of one project at once: each with its own engine (its own lock), its own tmux
//! session; commands pick the latest run and say so when another is live, `--run` picks
//! another, `down --run` stops that one alone; a run in place still excludes another in
//! place, and a dead engine is still found dead.

use crate::support::Up;

/// `orch up REQUEST --plan plan.json --detach ARGS` in `project`, which must start a run;
/// returns its id and what `up` printed.
fn up(project: &Up, request: &str, args: &[&str]) -> (String, String) {
    let run = project
        .orch()
        .args(["up", request, "--plan", "plan.json", "--detach"])
        .args(args)
        .run()
        .expect(0);
    let out = run.stdout();
    let id = out
        .strip_prefix("run ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run id in {out}"))
        .to_string();
    (id, out)
}

/// The run branch's task commits of run `id` (their `Orch-Task` trailers), oldest first.
fn task_commits(project: &Up, id: &str) -> Vec<String> {
    let info: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project.p.path(&format!(".orch/runs/{id}/run.json"))).unwrap(),
    )
    .unwrap();
    let range = format!(
        "{}..{}",
        info["workspace"]["start"].as_str().unwrap(),
        info["workspace"]["branch"].as_str().unwrap()
    );
    let log = std::process::Command::new("git")
        .args([
            "log",
            "--reverse",
            "--format=%(trailers:key=Orch-Task,valueonly)",
            &range,
        ])
        .current_dir(project.p.root())
        .output()
        .unwrap();
    String::from_utf8_lossy(&log.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn runs_side_by_side_each_have_a_session_and_commands_pick_the_latest_and_say_so() {
    let project = Up::counting_on_branch("multi");
    let (a, a_out) = up(&project, "in place", &["--in-place"]);
    project.wait_for_starts(&["a", "b"]);
    let a_session = project.session();
    // Alone: the hints need no --run.
    assert!(!a_out.contains("--run"), "{a_out}");

    // A second run in place waits for the first: both would write the checkout.
    project
        .orch()
        .args([
            "up",
            "again",
            "--plan",
            "plan.json",
            "--detach",
            "--in-place",
        ])
        .run()
        .expect(2)
        .stderr_has(&format!("run {a} is still live in place"))
        .stderr_has(&format!(" down --run {a}"))
        .stderr_has("worktree");
    assert_eq!(project.run_count(), 1, "the refused run left no record");

    // A run on a branch starts beside it, in a session of its own; its hints name it.
    let (b, b_out) = up(&project, "on a branch", &[]);
    assert!(
        b_out.contains(&format!(" status --run {b}\n"))
            && b_out.contains(&format!(" down --run {b}\n")),
        "{b_out}"
    );
    let b_session = project.session();
    project.wait_until("b's run's a and b to start", || {
        project.starts("a") == 2 && project.starts("b") == 2
    });
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
        .args(["logs", "a"])
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
    // A live run has nothing to resume, whichever it is.
    for id in [&a, &b] {
        project
            .orch()
            .args(["resume", "--run", id, "--detach"])
            .run()
            .expect(2)
            .stderr_has(&format!("run {id} is live (engine pid"));
    }

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
    project.release("all");
    project.wait(0);
    let report = project.orch().args(["report", "--json"]).run().expect(0);
    let report: serde_json::Value = serde_json::from_str(&report.stdout()).unwrap();
    assert_eq!(report["run_id"], b.as_str(), "{report:#}");
    assert_eq!(
        task_commits(&project, &b).len(),
        3,
        "{}",
        project.diagnostics()
    );
}

#[test]
fn two_runs_on_branches_at_once_both_succeed_each_on_its_own_branch() {
    let project = Up::counting_on_branch("two");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(project.p.root())
        .output()
        .unwrap()
        .stdout;
    let (first, _) = up(&project, "first", &[]);
    project.wait_for_starts(&["a", "b"]);
    let (second, _) = up(&project, "second", &[]);
    project.wait_until("the second run's a and b to start", || {
        project.starts("a") == 2 && project.starts("b") == 2
    });
    project.release("all");
    for id in [&first, &second] {
        project
            .orch()
            .args(["wait", "--run", id, "--timeout", "60"])
            .run()
            .expect(0)
            .stdout_has(&format!("run {id}: succeeded"));
    }
    // Each run on its own branch from the same HEAD, which has not moved.
    let now = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(project.p.root())
        .output()
        .unwrap()
        .stdout;
    assert_eq!(now, head);
    for id in [&first, &second] {
        let mut tasks = task_commits(&project, id);
        tasks.sort();
        assert_eq!(
            tasks,
            ["a", "b", "c"],
            "run {id}\n{}",
            project.diagnostics()
        );
    }
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
            "note: run {unfinished} did not finish (its engine and session are gone); once \
             this run is over, `"
        ))
        .stderr_has(&format!(" resume --run {unfinished}` can continue it"));
    let third = project.status()["run_id"].as_str().unwrap().to_string();
    // Indeed: resuming it now is refused, both being in place; it is its turn once the
    // third is down.
    project
        .orch()
        .args(["resume", "--run", &unfinished, "--detach"])
        .run()
        .expect(2)
        .stderr_has(&format!("run {third} is still live in place"));
    project.orch().args(["down"]).run().expect(0);
    project
        .orch()
        .args(["resume", "--run", &unfinished, "--detach"])
        .run()
        .expect(0);
    project
        .orch()
        .args(["down", "--run", &unfinished])
        .run()
        .expect(0)
        .stdout_has(&format!("run {unfinished} is down"));
}
