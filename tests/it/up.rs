//! `orch up` end to end: real tmux on a private server, the scripted agent and agents of our
//! own, conditions waited on with deadlines. A failure prints every pane and the journal.

use crate::support;

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
    // orch is not on the tests' PATH: every hint names the binary by its full path.
    let orch = env!("CARGO_BIN_EXE_orch");
    up.up(&["Build wordstat"], None)
        .expect(0)
        .stdout_has("started in tmux session")
        .stdout_has(&format!("  watch:   {orch} attach"))
        .stdout_has(&format!("  stop:    {orch} down"));
    up.wait(0);
    // The control window keeps its whole final screen: no "Pane is dead" line scrolls the
    // header off.
    let tmux = up.server.tmux();
    let control = support::wait_for_pane(tmux, &up.session(), "the engine's exit", |p| {
        p.window_name == "control" && p.dead && p.dead_status.is_some()
    });
    let screen = tmux.capture_pane(&control.pane_id).unwrap();
    assert!(
        screen.starts_with("orch · run ") && !screen.contains("Pane is dead"),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("attach: {orch} attach")),
        "{screen}"
    );
    assert!(screen.contains("succeeded"), "{screen}");
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
        // What the agent showed last, and its one attempt.
        assert!(task["last_output"].is_string(), "{task:#}");
        assert_eq!(task["attempt_history"][0]["outcome"], "done", "{task:#}");
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
        "agents:\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\n    sandbox: off\nroles:\n  planner: mine\n  judge: mine\n  workers: [mine]\nownership:\n  on_violation: {policy}\n"
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
    assert!(!orch::agent_process::orphans::find(&run_dir).is_empty());
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
    let left = orch::agent_process::orphans::find(&run_dir);
    assert!(left.is_empty(), "the agent survived `orch down`: {left:?}");
    // Once more: nothing was left to stop, and it says so.
    up.orch()
        .args(["down"])
        .run()
        .expect(0)
        .stdout_has("is already down (stopped)")
        .stdout_has("its files stay in .orch/runs/");
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
    let config = "agents:\n  plan:\n    kind: command\n    command: [\"./planner.sh\"]\n    sandbox: off\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\n    sandbox: off\n  judge:\n    kind: scripted\n    sample: true\nroles:\n  planner: plan\n  judge: judge\n  workers: [mine]\n";
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
    assert_eq!(up.run_count(), 0, "no run (so no session) was made");
}

/// `orch plan` ends with the command to run its plan: it must work as printed, for the
/// request the plan was made for; and a run on the scripted agent says it is a sample.
#[test]
fn the_next_step_orch_plan_prints_runs_the_plan_for_its_request() {
    let up = Up::new("plannext", SCRIPTED);
    let planned = up
        .orch()
        .args(["plan", "Build wordstat, please"])
        .run()
        .expect(0);
    let next = planned
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("next: ").map(str::to_string))
        .unwrap_or_else(|| panic!("no next step in\n{}", planned.stdout()));
    let command = next.split("   #").next().unwrap();
    let argv = shlex::split(command).unwrap();
    assert_eq!(&argv[..2], ["orch", "up"], "{next}");
    up.orch()
        .args(&argv[1..])
        .args(["--detach"])
        .run()
        .expect(0)
        .stdout_has("started in tmux session")
        .stderr_has("note: a sample run (`sample: true`): orch's built-in scripted agent plays `bot` (judge, worker)");
    up.wait(0);
    let status = up.status();
    assert_eq!(status["phase"], "succeeded", "{status:#}");
    let run_dir = up.p.path(&format!(
        ".orch/runs/{}",
        status["run_id"].as_str().unwrap()
    ));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["request"], "Build wordstat, please");
    assert_eq!(info["plan_given"], true);
    // The run says, in its status and its report, that it built the sample.
    let sample = status["sample"].as_str().unwrap_or_default();
    assert!(sample.contains("plays `bot` (judge, worker)"), "{status:#}");
    assert!(sample.contains("ignores the request"), "{status:#}");
    up.orch()
        .args(["status"])
        .run()
        .expect(0)
        .stdout_has("A SAMPLE RUN, not the request: orch's built-in scripted agent");
    up.orch().args(["report"]).run().expect(0).stdout_has(
        "**A sample run, not the request**: orch's built-in scripted agent plays `bot` \
             (judge, worker)",
    );
    up.orch()
        .args(["wait"])
        .run()
        .expect(0)
        .stdout_has(&format!(
            "run {}: succeeded\n",
            status["run_id"].as_str().unwrap()
        ));
    // A plan with no request beside it needs one, and says so.
    up.p.file(
        "elsewhere/plan.json",
        &std::fs::read_to_string(run_dir.join("plan.json")).unwrap(),
    );
    up.orch()
        .args(["up", "--plan", "elsewhere/plan.json", "--detach"])
        .run()
        .expect(2)
        .stderr_has("has no request saved beside it")
        .stderr_has("orch up \"Build a CLI that counts words\" --plan elsewhere/plan.json");
    up.orch()
        .args(["up", "--detach"])
        .run()
        .expect(2)
        .stderr_has("--plan");
}

/// A tmux server "the user" works in, with one idle session, so that orch can be run inside
/// it: from one of its panes, or with `TMUX` set as tmux sets it. `TMUX_TMPDIR` points at a
/// directory of the test's own, so that even a default server orch wrongly reached would be
/// a fresh one there, never the user's.
struct Outer {
    server: support::PrivateServer,
    socket: std::path::PathBuf,
    tmpdir: tempfile::TempDir,
}

impl Outer {
    fn new(name: &str) -> Outer {
        let server = support::private_server(name);
        let home = support::WindowSpec::new("shell", "/", support::argv(&["cat"]));
        // Wide, so that no line orch prints in a pane of it wraps.
        server
            .tmux()
            .new_session("home", &home, (400, 50))
            .expect("the outer server starts");
        let socket = server.tmux().socket_path().unwrap();
        Outer {
            server,
            socket,
            tmpdir: tempfile::tempdir().unwrap(),
        }
    }

    /// `TMUX` as tmux sets it in its panes: socket path, server pid, session index.
    fn tmux_var(&self) -> String {
        format!("{},{},0", self.socket.display(), std::process::id())
    }

    /// `orch` from a plain shell: not inside any tmux, no socket named.
    fn outside(&self, orch: support::Orch) -> support::Orch {
        orch.env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .env_remove("ORCH_TMUX_SOCKET")
            .env("TMUX_TMPDIR", self.tmpdir.path())
            .env("ORCH_TMUX_CONFIG", "/dev/null")
    }

    /// Runs `orch ARGS` in a new window of the outer server (so its stdout is a terminal,
    /// and no client is attached), in `dir`, and returns what the pane showed once it ended.
    fn run_in_pane(&self, dir: &std::path::Path, env: &[&str], args: &[&str]) -> String {
        let tmpdir = format!("TMUX_TMPDIR={}", self.tmpdir.path().display());
        let mut argv = vec![
            "env",
            "-u",
            "ORCH_TMUX_SOCKET",
            "-u",
            "ORCH_SCRIPTED_FAULT",
            "-u",
            "ORCH_SCRIPTED_PACE",
            "ORCH_TMUX_CONFIG=/dev/null",
            &tmpdir,
        ];
        argv.extend(env);
        argv.push(env!("CARGO_BIN_EXE_orch"));
        argv.extend(args);
        let spec = support::WindowSpec::new("orch", dir, support::argv(&argv));
        let tmux = self.server.tmux();
        let pane = tmux.new_window("home", &spec).unwrap();
        let ended = support::wait_for_pane(tmux, "home", "orch to end in its pane", |p| {
            p.pane_id == pane.pane_id && p.dead && p.dead_status.is_some()
        });
        // With the history: tmux's "Pane is dead" line scrolls the first line off the screen.
        let out = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["capture-pane", "-p", "-S", "-", "-t", &pane.pane_id])
            .output()
            .unwrap();
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(ended.dead_status, Some(0), "{screen}");
        screen
    }
}

/// A variable of the environment the latest run in `project` was started with, while the run
/// lives (its `environ` file: NAME=VALUE entries, each ended by a NUL).
fn run_environ(project: &std::path::Path, var: &str) -> Option<String> {
    let id = std::fs::read_to_string(project.join(".orch/current")).ok()?;
    let bytes = std::fs::read(project.join(".orch/runs").join(id.trim()).join("environ")).ok()?;
    let prefix = format!("{var}=");
    bytes
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

fn run_json(up: &Up) -> serde_json::Value {
    let runs = up.p.path(".orch/runs");
    let run = std::fs::read_dir(runs).unwrap().next().unwrap().unwrap();
    serde_json::from_str(&std::fs::read_to_string(run.path().join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_run_started_inside_another_tmux_server_is_seen_and_stopped_from_outside() {
    let outer = Outer::new("outer");
    let up = Up::new("inside", SCRIPTED);
    // Inside `tmux -L other`, with no socket named: the planner hangs, so the run stays up.
    outer
        .outside(up.p.orch())
        .env("TMUX", outer.tmux_var())
        .env("TMUX_PANE", "%0")
        .env("ORCH_SCRIPTED_FAULT", "hang@planner")
        .args(["up", "Build wordstat", "--detach"])
        .run()
        .expect(0)
        .stdout_has(&format!("on tmux server {}", outer.socket.display()));
    let recorded = run_json(&up);
    assert_eq!(
        recorded["socket_path"].as_str(),
        Some(outer.socket.to_str().unwrap()),
        "{recorded:#}"
    );
    let tmux = outer.server.tmux();
    let session = up.session();
    let planner = support::wait_for_pane(tmux, &session, "the planner's pane", |p| {
        p.window_name != "control" && !p.dead
    });

    // From a plain shell: the session is seen, and `down` really closes it.
    outer
        .outside(up.p.orch())
        .args(["status"])
        .run()
        .expect(0)
        .stdout_has(&format!("session {session} open"));
    outer
        .outside(up.p.orch())
        .args(["down"])
        .run()
        .expect(0)
        .stdout_has("is down");
    assert!(
        !tmux.has_session(&session).unwrap(),
        "{}",
        support::session_diagnostics(tmux, &session)
    );
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(planner.pid as i32, 0) } == 0;
    assert!(
        !alive,
        "the planner (pid {}) survived `orch down`",
        planner.pid
    );
    assert!(
        tmux.has_session("home").unwrap(),
        "the user's session was closed"
    );
}

#[test]
fn up_inside_tmux_with_nobody_attached_says_the_run_started_and_how_to_watch_it() {
    let outer = Outer::new("noclient");
    let up = Up::new("noclient", SCRIPTED);
    let screen = outer.run_in_pane(
        &up.p.root(),
        &["ORCH_SCRIPTED_FAULT=hang@planner"],
        &["up", "Build wordstat"],
    );
    let session = up.session();
    for needle in [
        format!(
            "started in tmux session {session} on tmux server {}",
            outer.socket.display()
        ),
        "no tmux client is attached here".to_string(),
        format!("attach -t {session}"),
        format!("  stop:    {} down", env!("CARGO_BIN_EXE_orch")),
    ] {
        assert!(screen.contains(&needle), "no {needle:?} in:\n{screen}");
    }
    assert!(!screen.contains("switch-client"), "{screen}");
    // The hint's own tmux command reaches the session, from a plain shell.
    let line = screen
        .lines()
        .find(|l| l.contains("from any terminal: "))
        .unwrap();
    let command = line
        .split("from any terminal: ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')');
    let words = shlex::split(command).unwrap();
    let has = words
        .iter()
        .position(|w| w == "attach")
        .map(|i| {
            [
                &words[1..i],
                &["has-session".to_string(), "-t".into(), session.clone()],
            ]
            .concat()
        })
        .unwrap();
    let status = std::process::Command::new("tmux")
        .args(&has)
        .env_remove("TMUX")
        .status()
        .unwrap();
    assert!(status.success(), "{command}");
    outer.outside(up.p.orch()).args(["down"]).run().expect(0);
    assert!(!outer.server.tmux().has_session(&session).unwrap());
}

#[test]
fn the_demo_watched_in_a_terminal_is_paced_and_says_where_to_look() {
    let outer = Outer::new("demo-tty");
    let up = Up::new("demo-tty", SCRIPTED);
    let dir = up.p.path("the demo");
    let screen = outer.run_in_pane(&up.p.root(), &[], &["demo", "the demo"]);
    assert!(screen.contains("paced to be watched"), "{screen}");
    assert!(screen.contains("first:   cd '"), "{screen}");
    let session = support::session_of(&dir);
    assert!(outer.server.tmux().has_session(&session).unwrap());
    // The engine and the agents get the demo's environment from the run's `environ` file
    // (never from tmux's command line), which lives as long as the run: a minute at this pace.
    assert_eq!(
        run_environ(&dir, "ORCH_SCRIPTED_PACE").as_deref(),
        Some("5s")
    );
    outer
        .outside(up.p.orch().cwd(&dir))
        .args(["down"])
        .run()
        .expect(0);
    // An explicit pace wins.
    let dir = up.p.path("demo-2");
    let screen = outer.run_in_pane(&up.p.root(), &["ORCH_SCRIPTED_PACE=0"], &["demo", "demo-2"]);
    assert!(!screen.contains("paced to be watched"), "{screen}");
    // At full speed the run may be over (and its `environ` removed) by now.
    if let Some(pace) = run_environ(&dir, "ORCH_SCRIPTED_PACE") {
        assert_eq!(pace, "0");
    }
    outer
        .outside(up.p.orch().cwd(&dir))
        .args(["down"])
        .run()
        .expect(0);
}

#[test]
fn the_demo_without_a_terminal_runs_unpaced_and_its_hints_work_when_pasted() {
    let up = Up::new("demo-ci", SCRIPTED);
    let dir = up.p.path("demo");
    let orch = env!("CARGO_BIN_EXE_orch");
    let run = up
        .orch()
        .env_remove("ORCH_SCRIPTED_PACE")
        .args(["demo", "demo"])
        .run()
        .expect(0);
    let look = format!(
        "look around: cd {} && {orch} status; {orch} report;",
        dir.display()
    );
    let run = run.stdout_has(&look).stdout_has("succeeded");
    let session = support::session_of(&dir);
    let pace = std::process::Command::new("tmux")
        .args(["-L", up.server.socket_name()])
        .args(["show-environment", "-t", &session, "ORCH_SCRIPTED_PACE"])
        .output()
        .unwrap();
    assert!(
        !pace.status.success(),
        "paced without a terminal: {}\n{}",
        String::from_utf8_lossy(&pace.stdout),
        run.stdout()
    );
    // The hint, pasted into a shell as it is.
    let line = run
        .stdout()
        .lines()
        .find(|l| l.starts_with("look around: "))
        .unwrap()
        .trim_start_matches("look around: ")
        .to_string();
    let pasted = std::process::Command::new("sh")
        .args(["-c", &line])
        .env("ORCH_TMUX_SOCKET", up.server.socket_name())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&pasted.stdout);
    assert!(pasted.status.success(), "{line}\n{out}");
    assert!(
        out.contains("succeeded") && out.contains("is down"),
        "{out}"
    );
}

/// `isolation: task` asks for a worktree per task, which a run in place cannot have: `orch up
/// --in-place` refuses, saying why and what to do, and starts nothing (no run, no branch, no
/// session); in a directory that is no git repository the run goes on in place and says that
/// its tasks share the project.
#[test]
fn isolation_task_in_place_is_refused_and_outside_git_said_shared() {
    let config = format!("{SCRIPTED}isolation: task\n");
    let up = Up::new("isotask", &config);
    up.up(&["x", "--in-place"], None)
        .expect(2)
        .stderr_has("`isolation: task`")
        .stderr_has("`--in-place`")
        .stderr_has("Drop one of the two");
    assert_eq!(up.run_count(), 0);
    assert_eq!(up.session_names(), Vec::<String>::new());
    assert!(!up.p.path(".orch/worktrees").exists());
    // Not a git repository: in place, and said so.
    up.up(&["x"], None)
        .expect(0)
        .stderr_has("the tasks share the project");
}
