//! `orch up` end to end: real tmux on a private server, the scripted agent and agents of our
//! own, conditions waited on with deadlines. A failure prints every pane and the journal.

mod support;

use std::time::Duration;

use support::{SCRIPTED, Tmux, Up, wait_until};

fn position(events: &[(String, String)], event: &str, task: &str) -> usize {
    events
        .iter()
        .position(|(e, t)| e == event && t == task)
        .unwrap_or_else(|| panic!("no {event} of {task} in {events:?}"))
}

#[test]
fn a_full_run_succeeds_in_dependency_order() {
    let up = Up::new("full", SCRIPTED);
    up.up(&["Build wordstat"], None)
        .expect(0)
        .stdout_has("started in tmux session");
    up.wait(0);
    let status = up.status();
    assert_eq!(status["phase"], "succeeded", "{status:#}");
    assert_eq!(
        status["violations"].as_array().unwrap().len(),
        0,
        "{status:#}"
    );
    for id in ["text", "report", "stats", "cli"] {
        let task = Up::task(&status, id);
        assert_eq!(task["state"], "done", "{status:#}");
        assert_eq!(task["exit_code"], 0);
        assert_eq!(task["attempts"], 1);
        assert_eq!(task["agent"], "bot");
        for file in task["files"].as_array().unwrap() {
            assert!(up.p.path(file.as_str().unwrap()).exists(), "{file} missing");
        }
    }
    assert!(status["run_id"].is_string());
    // A dependent starts only after its dependencies are done.
    let events = up.events();
    let cli = position(&events, "task_started", "cli");
    for dep in ["text", "stats", "report"] {
        assert!(position(&events, "task_done", dep) < cli, "{events:?}");
    }
    assert!(position(&events, "task_done", "text") < position(&events, "task_started", "stats"));
    // The demo project's own tests pass.
    let test = std::process::Command::new("sh")
        .args([
            "-c",
            "for t in tests/*_test.sh; do sh \"$t\" || exit 1; done",
        ])
        .current_dir(up.p.root())
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stdout)
    );
    // Everything about the run is on disk.
    let run = up.p.path(&format!(
        ".orch/runs/{}",
        status["run_id"].as_str().unwrap()
    ));
    for file in [
        "run.json",
        "plan.json",
        "events.jsonl",
        "planner/1/prompt.md",
        "tasks/text/1/prompt.md",
        "tasks/text/1/launch.sh",
        "tasks/text/1/output.log",
        "tasks/text/1/exit.json",
    ] {
        assert!(
            run.join(file).exists(),
            "{file} missing in {}",
            run.display()
        );
    }
    up.orch()
        .args(["logs", "text"])
        .run()
        .expect(0)
        .stdout_has("wrote tests/text_test.sh");
    up.orch()
        .args(["status"])
        .run()
        .expect(0)
        .stdout_has("succeeded")
        .stdout_has("done");
}

#[test]
fn a_crash_blocks_its_dependents_and_the_rest_carries_on() {
    let up = Up::new("crash", SCRIPTED);
    up.up(&["Build wordstat"], Some("crash@text")).expect(0);
    up.wait(1);
    let status = up.status();
    assert_eq!(status["phase"], "failed");
    let text = Up::task(&status, "text");
    assert_eq!(text["state"], "failed");
    assert!(
        text["reason"].as_str().unwrap().contains("status 3"),
        "{text:#}"
    );
    for id in ["stats", "cli"] {
        let task = Up::task(&status, id);
        assert_eq!(task["state"], "blocked", "{status:#}");
        assert!(
            task["reason"]
                .as_str()
                .unwrap()
                .contains("task text failed"),
            "{task:#}"
        );
        assert_eq!(task["attempts"], 0);
    }
    assert_eq!(Up::task(&status, "report")["state"], "done");
}

#[test]
fn a_silent_agent_is_stopped_after_the_timeout() {
    let up = Up::new(
        "hang",
        &SCRIPTED.replace("task_timeout: 60s", "task_timeout: 4s"),
    );
    up.up(&["Build wordstat"], Some("hang@report")).expect(0);
    up.wait(1);
    let status = up.status();
    let report = Up::task(&status, "report");
    assert_eq!(report["state"], "failed", "{status:#}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("no output and no file activity for 4s"),
        "{report:#}"
    );
    assert_eq!(Up::task(&status, "cli")["state"], "blocked");
    assert_eq!(Up::task(&status, "stats")["state"], "done");
}

#[test]
fn exit_zero_without_the_owned_files_is_a_failure() {
    let up = Up::new("nowrite", SCRIPTED);
    up.up(&["Build wordstat"], Some("no-write@report"))
        .expect(0);
    up.wait(1);
    let report = Up::task(&up.status(), "report").clone();
    assert_eq!(report["state"], "failed");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("exited 0 but did not write: tests/report_test.sh, lib/report.sh"),
        "{report:#}"
    );
}

#[test]
fn a_violation_is_recorded_under_warn_and_fails_the_run() {
    let up = Up::new("warn", SCRIPTED);
    up.up(&["Build wordstat"], Some("violate@text")).expect(0);
    // Recorded, left in place, and unresolved: the ownership gates fail.
    up.wait(1);
    let status = up.status();
    let violations = status["violations"].as_array().unwrap();
    assert!(!violations.is_empty(), "{status:#}\n{}", up.diagnostics());
    let v = &violations[0];
    assert_eq!(v["path"], "stray/text.txt");
    assert_eq!(v["action"], "recorded");
    let suspects = v["suspects"].as_array().unwrap();
    assert!(suspects.iter().any(|s| s == "text"), "{v:#}");
    assert!(v["at"].as_u64().unwrap() > 0);
    assert!(up.p.path("stray/text.txt").exists());
    let reason = status["reason"].as_str().unwrap();
    assert!(reason.contains("run gate `ownership` failed"), "{status:#}");
}

#[test]
fn a_violation_is_saved_then_reverted_under_revert() {
    let config = format!("{SCRIPTED}ownership:\n  on_violation: revert\n");
    let up = Up::new("revert", &config);
    up.up(&["Build wordstat"], Some("violate@text,delete@report"))
        .expect(0);
    up.wait(0);
    let status = up.status();
    let violations = status["violations"].as_array().unwrap();
    let stray = violations
        .iter()
        .find(|v| v["path"] == "stray/text.txt")
        .unwrap_or_else(|| panic!("{status:#}"));
    assert_eq!(stray["action"], "deleted");
    let saved = stray["saved"].as_str().unwrap();
    assert!(up.p.path(saved).exists(), "saved copy {saved} missing");
    assert!(
        !up.p.path("stray/text.txt").exists(),
        "the violating file is still there"
    );
    let readme = violations
        .iter()
        .find(|v| v["path"] == "README.md")
        .unwrap_or_else(|| panic!("{status:#}"));
    assert_eq!(readme["change"], "removed");
    assert_eq!(readme["action"], "reverted");
    assert_eq!(up.p.read("README.md"), "# the project\n");
}

/// A worker of our own that writes its file, then a file it does not own, then waits.
const STRAY_WORKER: &str = "#!/bin/sh\necho ok > \"$ORCH_TASK_ID.txt\"\necho $$ > \"$ORCH_RUN_DIR/pid-$ORCH_TASK_ID\"\necho oops > stray.txt\nexec sleep 300\n";

fn command_config(policy: &str) -> String {
    format!(
        "agents:\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\nroles:\n  planner: mine\n  judge: mine\n  workers: [mine]\nownership:\n  on_violation: {policy}\n"
    )
}

#[test]
fn a_violation_stops_the_writer_under_stop() {
    let up = Up::new("stop", &command_config("stop"));
    up.p.script("worker.sh", STRAY_WORKER);
    up.p.file(
        "plan.json",
        r#"{"tasks": [{"id": "w", "agent": "mine", "task": "write w.txt", "files": ["w.txt"]}]}"#,
    );
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(1);
    let status = up.status();
    let w = Up::task(&status, "w");
    assert_eq!(w["state"], "failed");
    assert!(
        w["reason"]
            .as_str()
            .unwrap()
            .contains("stopped: changed stray.txt"),
        "{w:#}"
    );
    assert_eq!(status["violations"][0]["action"], "stopped w");
}

#[test]
fn down_leaves_no_session_and_no_agent_process() {
    let up = Up::new("down", &command_config("warn"));
    up.p.script("worker.sh", STRAY_WORKER);
    up.p.file(
        "plan.json",
        r#"{"tasks": [{"id": "w", "agent": "mine", "task": "write w.txt", "files": ["w.txt"]}]}"#,
    );
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    let run_dir = std::fs::read_dir(up.p.path(".orch/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let pid_file = run_dir.join("pid-w");
    wait_until(
        "the agent to start",
        Duration::from_secs(30),
        // Complete: `echo $$ > file` creates the file before it writes the pid.
        || std::fs::read_to_string(&pid_file).is_ok_and(|t| t.trim().parse::<i32>().is_ok()),
        || up.diagnostics(),
    );
    // The agent's processes, found by their variables (a sandboxed agent's `$$` is a pid of
    // its own pid namespace, not one out here).
    assert!(!orch::orphans::find(&run_dir).is_empty());
    // A second `up` is refused while this one is live.
    up.up(&["again"], None)
        .expect(2)
        .stderr_has("still live")
        .stderr_has("orch attach")
        .stderr_has("orch down");
    up.orch()
        .args(["down"])
        .run()
        .expect(0)
        .stdout_has("is down");
    assert!(!up.server.tmux().has_session(&up.session()).unwrap());
    let left = orch::orphans::find(&run_dir);
    assert!(left.is_empty(), "the agent survived `orch down`: {left:?}");
    let status = up.status();
    assert_eq!(status["phase"], "stopped", "{status:#}");
    up.wait(1);
}

#[test]
fn a_hostile_request_reaches_the_agent_byte_for_byte() {
    let mut request = String::from(
        "Build \"auth\" 'now' $(touch pwned) `touch pwned2` ; touch pwned3 && echo \\\n",
    );
    request.push_str("line two\r\n\ttabs ünïcødé 日本語 ```` %s %n $HOME ${PATH} #{pane_id} ;");
    while request.len() < 100_000 {
        request.push_str(" more $(text) `here`;\n");
    }
    let planner = "#!/bin/sh\ncp \"$ORCH_PROMPT_FILE\" \"$ORCH_RUN_DIR/got-prompt.md\"\nmkdir -p specs && echo '# s' > specs/s.md\necho '{\"specs\":[{\"file\":\"specs/s.md\"}],\"tasks\":[{\"id\":1,\"agent\":\"mine\",\"task\":\"t\",\"files\":[\"tests/one_test.txt\",\"one.txt\"]}]}'\n";
    let worker = "#!/bin/sh\ncp \"$ORCH_PROMPT_FILE\" \"$ORCH_RUN_DIR/got-worker-prompt.md\"\nmkdir -p tests && echo ok > tests/one_test.txt && echo done > one.txt\n";
    let config = "agents:\n  plan:\n    kind: command\n    command: [\"./planner.sh\"]\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\n  judge:\n    kind: scripted\nroles:\n  planner: plan\n  judge: judge\n  workers: [mine]\n";
    let up = Up::new("hostile", config);
    up.p.script("planner.sh", planner);
    up.p.script("worker.sh", worker);
    up.up(&[&request], None).expect(0);
    up.wait(0);
    let run_dir = std::fs::read_dir(up.p.path(".orch/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for file in ["got-prompt.md", "got-worker-prompt.md"] {
        let prompt = std::fs::read_to_string(run_dir.join(file)).unwrap();
        let ctx = orch::prompt::Context::find(&prompt).expect("context line");
        assert!(
            ctx.request == request,
            "the request changed on its way to {file}"
        );
    }
    for name in ["pwned", "pwned2", "pwned3"] {
        assert!(
            !up.p.path(name).exists(),
            "{name} was created: text was executed"
        );
    }
    assert_eq!(
        std::fs::read_to_string(run_dir.join("request.txt")).unwrap(),
        request
    );
    let launcher = std::fs::read_to_string(run_dir.join("tasks/1/1/launch.sh")).unwrap();
    assert!(
        !launcher.contains("auth") && launcher.len() < 1000,
        "{launcher}"
    );
}

#[test]
fn the_tiled_layout_puts_workers_in_one_window() {
    let up = Up::new("tiled", SCRIPTED);
    up.up(&["Build wordstat", "--layout", "tiled"], None)
        .expect(0);
    up.wait(0);
    let panes = up.server.tmux().list_panes(&up.session()).unwrap();
    let workers = panes.iter().filter(|p| p.window_name == "workers").count();
    assert_eq!(workers, 4, "{panes:?}");
}

#[test]
fn bad_layouts_and_plans_are_refused_before_anything_starts() {
    let up = Up::new("refuse", SCRIPTED);
    up.up(&["x", "--layout", "spiral"], None)
        .expect(2)
        .stderr_has("no layout named `spiral`");
    up.p.file(
        "bad.json",
        r#"{"tasks": [{"id": 1, "agent": "ghost", "task": "t", "files": ["/etc/x"]}]}"#,
    );
    up.up(&["x", "--plan", "bad.json"], None)
        .expect(1)
        .stderr_has("agent `ghost`")
        .stderr_has("is absolute");
    assert!(!up.server.tmux().has_session(&up.session()).unwrap());
}
