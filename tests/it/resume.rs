//! Nothing lost when things die: the engine killed (SIGKILL, or crashing on purpose at chosen
//! journal points) in every phase, the control window closed, the tmux server killed, Ctrl-C
//! and SIGTERM; then `orch resume`, and every agent ran exactly as often as it had to. Also a
//! torn journal line, two `orch up` at once, and `orch down` after the engine died.
//!
//! The agents are ours (see `support/counting.rs`): they count their starts and wait for the
//! test to let them finish, so each test chooses what is running when things die.

use crate::support::counting::alive;
use crate::support::{Tmux as _, Up};

/// The run of `PLAN` as it ends when nothing went wrong.
fn all_done() -> (String, Vec<(String, String, u64)>) {
    let done = |id: &str, attempts| (id.to_string(), "done".to_string(), attempts);
    (
        "succeeded".to_string(),
        vec![done("a", 1), done("b", 1), done("c", 1)],
    )
}

fn assert_starts(project: &Up, expected: &[(&str, usize)]) {
    for (id, n) in expected {
        assert_eq!(
            project.starts(id),
            *n,
            "agent {id} started {} time(s), expected {n}\n{}",
            project.starts(id),
            project.diagnostics()
        );
    }
}

#[test]
fn sigkill_while_tasks_run_then_resume_adopts_them_and_their_exits() {
    let project = Up::counting("kill-running");
    project.start();
    project.wait_for_starts(&["a", "b"]);
    project.kill_engine();

    project
        .orch()
        .args(["status"])
        .run()
        .expect(0)
        .stdout_has("ENGINE GONE")
        .stdout_has("orch resume");
    // The dead engine's lock file still names it, and blocks nobody.
    let lock = std::fs::read_to_string(project.p.path(".orch/lock")).unwrap();
    assert!(lock.contains(&project.status()["run_id"].as_str().unwrap().to_string()));
    // A new run is not started over a run that can be resumed in its open session.
    project
        .orch()
        .args(["up", "something else", "--detach"])
        .run()
        .expect(2)
        .stderr_has("orch resume");
    // a ends while no engine is alive: its exit record waits for the next engine.
    project.release("a");
    let exit = project.run_dir().join("tasks/a/1/exit.json");
    project.wait_until("a's exit record", || exit.exists());
    assert!(alive(project.pids("b")[0]), "b kept working");

    project.resume();
    project.release("all");
    project.wait(0);
    assert_eq!(project.outcome(), all_done(), "{}", project.diagnostics());
    assert_starts(&project, &[("a", 1), ("b", 1), ("c", 1)]);
    let events = project.event_names();
    assert!(events.contains(&"run_resumed".to_string()), "{events:?}");
    assert!(
        !events.contains(&"task_interrupted".to_string()),
        "{events:?}"
    );
    // a's time ends where its agent did, not when the next engine came to hear of it.
    let exit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exit).unwrap()).unwrap();
    let status = project.status();
    let a = status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "a")
        .unwrap();
    assert_eq!(
        a["attempt_history"][0]["ended_at_ms"], exit["ended_at_ms"],
        "{status:#}"
    );
}

#[test]
fn sigkill_during_planning_then_resume_adopts_the_planner() {
    let project = Up::counting("kill-planning");
    project.start_with(false, &[]);
    project.wait_for_starts(&["planner"]);
    project.kill_engine();
    assert_eq!(project.status()["phase"], "planning");
    // The planner is still at work when the new engine comes: it is adopted, not rerun.
    project.resume();
    project.release("all");
    project.wait(0);
    assert_eq!(project.outcome(), all_done(), "{}", project.diagnostics());
    assert_starts(&project, &[("planner", 1), ("a", 1), ("b", 1), ("c", 1)]);
}

#[test]
fn sigkill_after_the_planner_answered_with_no_engine_to_hear_it() {
    let project = Up::counting("kill-answered");
    project.start_with(false, &[]);
    project.wait_for_starts(&["planner"]);
    project.kill_engine();
    project.release("planner");
    let exit = project.run_dir().join("planner/1/exit.json");
    project.wait_until("the planner's exit record", || exit.exists());
    project.resume();
    project.release("all");
    project.wait(0);
    assert_eq!(project.outcome(), all_done(), "{}", project.diagnostics());
    assert_starts(&project, &[("planner", 1), ("a", 1), ("b", 1), ("c", 1)]);
}

/// The engine kills itself at `point` (`ORCH_ENGINE_CRASH`); the agents are let go before
/// `orch resume` (they finish while no engine is alive) or after it (they are adopted while
/// running). Either way the run completes with every agent started once.
fn crash_then_resume(name: &str, with_plan: bool, point: &str, release_first: bool) {
    let project = Up::counting(name);
    if release_first {
        project.release("all");
    }
    project.start_with(with_plan, &[("ORCH_ENGINE_CRASH", point)]);
    project.wait_for_engine_gone();
    let journal = project.journal();
    let event = point.split(':').nth(1).unwrap();
    assert!(
        journal.contains(&format!("\"event\":\"{event}\"")) || point.starts_with("before:"),
        "the engine did not get to {point}\n{}",
        project.diagnostics()
    );
    project.resume();
    project.release("all");
    project.wait(0);
    let (phase, tasks) = project.outcome();
    assert_eq!(phase, "succeeded", "{}", project.diagnostics());
    assert!(tasks.iter().all(|t| t.1 == "done"), "{tasks:?}");
    let mut expected = vec![("a", 1), ("b", 1), ("c", 1)];
    if !with_plan {
        expected.push(("planner", 1));
    }
    assert_starts(&project, &expected);
    let events = project.event_names();
    let engines = events.iter().filter(|e| *e == "engine_started").count();
    assert_eq!(engines, 2, "{events:?}");
}

#[test]
fn crash_before_the_planners_window_is_journaled() {
    crash_then_resume(
        "crash-plan-pane",
        false,
        "before:planning_agent_started",
        false,
    );
}

#[test]
fn crash_between_planning_started_and_its_window() {
    crash_then_resume("crash-plan-start", false, "after:planning_started", true);
}

#[test]
fn crash_right_after_the_plan_is_accepted() {
    crash_then_resume("crash-accepted", false, "after:plan_accepted", true);
}

#[test]
fn crash_between_task_started_and_its_window() {
    crash_then_resume("crash-task-start", true, "after:task_started", true);
}

#[test]
fn crash_with_a_task_window_the_journal_does_not_know() {
    crash_then_resume("crash-task-pane", true, "before:task_agent_started", false);
}

#[test]
fn crash_after_an_exit_was_journaled_before_its_verdict() {
    // Where gates and the judge run: the agent's exit is known, its verdict is not.
    crash_then_resume("crash-exited", true, "after:task_exited", true);
}

#[test]
fn crash_between_tasks() {
    crash_then_resume("crash-between", true, "after:task_done", true);
}

#[test]
fn crash_before_the_run_is_recorded_finished() {
    crash_then_resume("crash-last", true, "after:task_done:3", true);
}

#[test]
fn closing_the_control_window_leaves_the_agents_working() {
    let project = Up::counting("close-control");
    project.start();
    project.wait_for_starts(&["a", "b"]);
    let control = project.control_pane();
    project.tmux(&["kill-pane", "-t", &control]);
    project.wait_for_engine_gone();
    let status = project.status();
    assert!(
        status["engine_stopped"]
            .as_str()
            .is_some_and(|r| r.contains("window was closed")),
        "{status:#}"
    );
    assert_eq!(status["phase"], "running");
    assert!(alive(project.pids("a")[0]) && alive(project.pids("b")[0]));

    project.resume();
    assert!(
        project.control_pane().starts_with('%'),
        "a new control window"
    );
    project.release("all");
    project.wait(0);
    assert_eq!(project.outcome(), all_done(), "{}", project.diagnostics());
    assert_starts(&project, &[("a", 1), ("b", 1), ("c", 1)]);
}

#[test]
fn killing_the_tmux_server_mid_run_then_resume_completes_it() {
    let project = Up::counting("kill-server");
    project.start();
    project.wait_for_starts(&["a", "b"]);
    project.release("a");
    project.wait_until("a to be done", || {
        Up::task(&project.status(), "a")["state"] == "done"
    });
    project.server.tmux().kill_server().unwrap();
    project.wait_for_engine_gone();
    let status = project.status();
    assert_eq!(status["phase"], "running", "{status:#}");
    assert_eq!(Up::task(&status, "b")["state"], "running");

    project.resume();
    project.wait_until("b's new attempt", || project.starts("b") == 2);
    let prompt = std::fs::read_to_string(project.run_dir().join("tasks/b/2/prompt.md")).unwrap();
    assert!(
        prompt.contains("previous attempt was interrupted (attempt 1)")
            && prompt.contains("partial work is in place"),
        "{prompt}"
    );
    // b's agent named its session; its new attempt is handed it to continue.
    let first = format!("sess-b-{}", project.inner_pids("b")[0]);
    assert!(prompt.contains(&first), "{prompt}");
    assert_eq!(project.resumed_sessions("b"), ["", first.as_str()]);
    project.release("all");
    project.wait(0);
    let (phase, tasks) = project.outcome();
    assert_eq!(phase, "succeeded", "{}", project.diagnostics());
    assert_eq!(
        tasks,
        vec![
            ("a".into(), "done".into(), 1),
            ("b".into(), "done".into(), 2),
            ("c".into(), "done".into(), 1)
        ]
    );
    assert_eq!(Up::task(&project.status(), "b")["interruptions"], 1);
    // a was done: never run again. b lost its agent with the server: one more start.
    assert_starts(&project, &[("a", 1), ("b", 2), ("c", 1)]);
}

#[test]
fn an_agent_that_outlives_its_tmux_server_is_stopped_before_its_new_attempt() {
    let project = Up::counting("hup-ignored");
    std::fs::write(project.p.path("counts/b-ignores-hup"), "").unwrap();
    project.start();
    project.wait_for_starts(&["a", "b"]);
    project.server.tmux().kill_server().unwrap();
    project.wait_for_engine_gone();
    let first_b = project.pids("b")[0];
    project.wait_until("a's agent to die with the server", || {
        !alive(project.pids("a")[0])
    });
    assert!(alive(first_b), "b ignores hangups, so it outlived tmux");

    project.resume();
    project.wait_until("b's new attempt", || project.starts("b") == 2);
    assert!(
        !alive(first_b),
        "b's first agent still runs beside its new attempt\n{}",
        project.diagnostics()
    );
    project.release("all");
    project.wait(0);
    assert_starts(&project, &[("a", 2), ("b", 2), ("c", 1)]);
}

#[test]
fn ctrl_c_interrupts_and_resume_continues_then_sigterm_too() {
    let project = Up::counting("ctrl-c");
    project.start();
    project.wait_for_starts(&["a", "b"]);
    let control = project.control_pane();
    project.tmux(&["send-keys", "-t", &control, "C-c"]);
    project.wait(1);
    let status = project.status();
    assert_eq!(status["phase"], "interrupted", "{status:#}");
    assert_eq!(status["resumable"], true);
    for id in ["a", "b"] {
        let pid = project.pids(id)[0];
        assert!(!alive(pid), "{id}'s agent (pid {pid}) survived Ctrl-C");
        let task = Up::task(&status, id);
        assert_eq!(
            (task["state"].as_str(), task["interruptions"].as_u64()),
            (Some("pending"), Some(1)),
            "{task:#}"
        );
    }
    project
        .orch()
        .args(["status"])
        .run()
        .expect(0)
        .stdout_has("attempt 1 interrupted: interrupted (Ctrl-C)")
        .stdout_has("orch resume");

    project.resume();
    project.wait_until("a and b to start again", || {
        project.starts("a") == 2 && project.starts("b") == 2
    });
    let prompt = std::fs::read_to_string(project.run_dir().join("tasks/a/2/prompt.md")).unwrap();
    assert!(prompt.contains("interrupted (Ctrl-C)"), "{prompt}");

    // SIGTERM to the engine: the same, once more.
    let engine = project.engine_pid();
    // SAFETY: kill(2) only sends a signal.
    assert_eq!(unsafe { libc::kill(engine, libc::SIGTERM) }, 0);
    project.wait(1);
    assert_eq!(project.status()["reason"], "terminated (SIGTERM)");
    for id in ["a", "b"] {
        let pid = project.pids(id)[1];
        assert!(!alive(pid), "{id}'s agent (pid {pid}) survived SIGTERM");
    }
    project.resume();
    project.release("all");
    project.wait(0);
    let (phase, tasks) = project.outcome();
    assert_eq!(phase, "succeeded", "{}", project.diagnostics());
    assert_eq!(tasks[0], ("a".into(), "done".into(), 3));
    assert_starts(&project, &[("a", 3), ("b", 3), ("c", 1)]);
}

#[test]
fn ctrl_c_during_planning_then_resume_plans_again_without_using_a_retry() {
    let project = Up::counting("ctrl-c-plan");
    project.start_with(false, &[]);
    project.wait_for_starts(&["planner"]);
    let control = project.control_pane();
    project.tmux(&["send-keys", "-t", &control, "C-c"]);
    project.wait(1);
    let status = project.status();
    assert_eq!(status["phase"], "interrupted", "{status:#}");
    assert!(
        !alive(project.pids("planner")[0]),
        "the planner survived Ctrl-C"
    );

    // planner_retries is 1: attempt 2 is refused, and attempt 3 still comes, because the
    // interrupted attempt 1 does not count.
    std::fs::write(project.p.path("counts/bad-plan-once"), "").unwrap();
    project.resume();
    project.release("all");
    project.wait(0);
    assert_eq!(project.outcome(), all_done(), "{}", project.diagnostics());
    assert_eq!(project.status()["planning"]["attempt"], 3);
    assert_starts(&project, &[("planner", 3), ("a", 1), ("b", 1), ("c", 1)]);
    let events = project.event_names();
    for event in ["planning_interrupted", "planning_refused", "plan_accepted"] {
        assert!(events.contains(&event.to_string()), "{events:?}");
    }
}

#[test]
fn a_torn_journal_line_is_reported_and_skipped() {
    let project = Up::counting("torn");
    project.start();
    project.wait_for_starts(&["a", "b"]);
    project.kill_engine();
    // A crash mid-write leaves half a record.
    let events = project.run_dir().join("events.jsonl");
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(&events)
        .unwrap();
    use std::io::Write as _;
    journal
        .write_all(br#"{"t":1,"event":"task_done","ta"#)
        .unwrap();
    drop(journal);

    project
        .orch()
        .args(["status"])
        .run()
        .expect(0)
        .stderr_has("incomplete");
    project
        .resume()
        .stderr_has("incomplete")
        .stderr_has("skipped");
    project.release("all");
    project.wait(0);
    assert_eq!(project.outcome(), all_done(), "{}", project.diagnostics());
    assert_starts(&project, &[("a", 1), ("b", 1), ("c", 1)]);
    let torn = std::fs::read_to_string(project.run_dir().join("events.jsonl.torn")).unwrap();
    assert!(torn.contains("\"ta"), "{torn}");
}

#[test]
fn two_ups_at_the_same_moment_run_exactly_one() {
    let project = Up::counting("two-ups");
    for round in 0..5 {
        let spawn = || {
            let mut orch =
                project
                    .orch()
                    .args(["up", "Build a, b and c", "--plan", "plan.json", "--detach"]);
            orch.cmd
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            orch.cmd.spawn().unwrap()
        };
        let (first, second) = (spawn(), spawn());
        let outputs = [
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        ];
        let codes: Vec<i32> = outputs.iter().map(|o| o.status.code().unwrap()).collect();
        let text = |o: &std::process::Output| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        };
        let winner = codes.iter().position(|&c| c == 0);
        let (Some(w), 1) = (winner, codes.iter().filter(|&&c| c == 0).count()) else {
            panic!(
                "round {round}: exit codes {codes:?}\n{}\n{}",
                text(&outputs[0]),
                text(&outputs[1])
            );
        };
        let loser = text(&outputs[1 - w]);
        assert_eq!(codes[1 - w], 2, "{loser}");
        let run_id = project.status()["run_id"].as_str().unwrap().to_string();
        assert!(
            loser.contains("still live") && loser.contains(&run_id),
            "round {round}: the refusal must name the live run {run_id}: {loser}"
        );
        let runs = std::fs::read_dir(project.p.path(".orch/runs"))
            .unwrap()
            .count();
        assert_eq!(runs, round + 1, "one run directory per round");
        project.orch().args(["down"]).run().expect(0);
    }
}

#[test]
fn down_after_the_engine_died_leaves_no_process_behind() {
    let project = Up::counting("down-dead");
    project.start();
    project.wait_for_starts(&["a", "b"]);
    project.kill_engine();
    let run_dir = project.run_dir();
    assert!(!orch::agent_process::orphans::find(&run_dir).is_empty());
    // The caller's environment, which a killed engine could not remove.
    let environ = run_dir.join("environ");
    assert!(environ.exists());

    project
        .orch()
        .args(["down"])
        .run()
        .expect(0)
        .stdout_has("is down");
    assert!(
        !project
            .server
            .tmux()
            .has_session(&project.session())
            .unwrap()
    );
    for id in ["a", "b"] {
        let pid = project.pids(id)[0];
        assert!(!alive(pid), "{id}'s agent (pid {pid}) survived `orch down`");
    }
    let left = orch::agent_process::orphans::find(&run_dir);
    assert!(
        left.is_empty(),
        "processes of the run left behind: {left:?}"
    );
    assert_eq!(project.status()["phase"], "stopped");
    assert!(!environ.exists(), "the keys outlive `orch down`");
    // A stopped run can still be taken up again, with the environment of the resume, which
    // the engine removes again as the run ends.
    project.resume();
    assert!(environ.exists());
    project.release("all");
    project.wait(0);
    assert_starts(&project, &[("a", 2), ("b", 2), ("c", 1)]);
    assert!(!environ.exists(), "the keys outlive the run");
}

#[test]
fn resume_refuses_what_it_cannot_resume_and_says_what_to_do() {
    let project = Up::counting("refuse");
    project
        .orch()
        .args(["resume"])
        .run()
        .expect(2)
        .stderr_has("no run")
        .stderr_has("orch up");
    project.start();
    project.wait_for_starts(&["a", "b"]);
    project
        .orch()
        .args(["resume"])
        .run()
        .expect(2)
        .stderr_has("is live")
        .stderr_has("orch attach");
    project.release("all");
    project.wait(0);
    project
        .orch()
        .args(["resume"])
        .run()
        .expect(2)
        .stderr_has("already succeeded")
        .stderr_has("orch up");
    project.orch().args(["down"]).run().expect(0);

    // An unwritable .orch/ is refused before anything starts. (Moved aside, not deleted: a
    // pane-died hook that tmux runs in the background may still touch a file in it.)
    std::fs::rename(project.p.path(".orch"), project.p.path("old-orch")).unwrap();
    std::fs::write(project.p.path(".orch"), "in the way").unwrap();
    project
        .orch()
        .args(["up", "x", "--plan", "plan.json", "--detach"])
        .run()
        .expect(2)
        .stderr_has(".orch")
        .stderr_has("writable");
    assert_eq!(
        project.session_names(),
        Vec::<String>::new(),
        "no session was made"
    );
    std::fs::remove_file(project.p.path(".orch")).unwrap();
}
