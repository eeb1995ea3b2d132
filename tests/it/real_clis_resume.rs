//! An agent CLI interrupted mid-turn continues its own session on `orch resume`: Claude Code
//! with `--resume ID`, Codex with `exec ... resume ID`, OpenCode with `--session ID`, so that
//! the conversation (tool calls and results included) is not lost. (Gemini CLI starts over:
//! see src/workers/gemini.rs.) The model server holds each worker's request once it
//! has written its test (`[model:hold=1]`), the test presses Ctrl-C in the control window,
//! then resumes the run.
//!
//! Skipped like tests/real_clis.rs when the CLIs are not installed.

use crate::support;

use std::time::Duration;

use serde_json::Value;
use support::Tmux;
use support::Up;
use support::agent_clis;
use support::agent_clis::ONE_AT_A_TIME;

const ROLES: &str = "\
roles:
  planner: claude
  judge: codex
  workers: [claude, codex, opencode]
limits:
  max_parallel: 3
  task_timeout: 120s
";

const CONTINUING: [&str; 3] = ["claude", "codex", "opencode"];

#[test]
fn an_interrupted_agent_cli_continues_its_session_on_resume() {
    if !agent_clis::available("an_interrupted_agent_cli_continues_its_session_on_resume") {
        return;
    }
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Up::real_clis("clis-resume", ROLES);
    let tasks: Vec<Value> = CONTINUING
        .iter()
        .map(|cli| {
            serde_json::json!({
                "id": cli, "agent": cli,
                "task": format!("Write src/{cli}.sh and its test. [model:hold=1]"),
                "files": [format!("tests/{cli}_test.sh"), format!("src/{cli}.sh")]
            })
        })
        .collect();
    run.p.file(
        "plan.json",
        &serde_json::json!({"tasks": tasks}).to_string(),
    );
    run.up(&["resume me", "--plan", "plan.json"], None)
        .expect(0);
    let held = |cli: &str| {
        run.model()
            .exchanges()
            .iter()
            .any(|e| e.task.as_deref() == Some(cli) && e.answer == "hold")
    };
    support::wait_until(
        "every worker to be mid-turn",
        Duration::from_secs(90),
        || CONTINUING.iter().all(|cli| held(cli)),
        || run.diagnostics(),
    );
    // Ctrl-C in the control window: the engine stops the agents, each journaled as
    // interrupted with the session its output named.
    let control = run
        .server
        .tmux()
        .list_panes(&run.session())
        .unwrap()
        .into_iter()
        .find(|p| p.window_name == "control")
        .unwrap()
        .pane_id;
    let status = std::process::Command::new("tmux")
        .args([
            "-L",
            run.server.socket_name(),
            "send-keys",
            "-t",
            &control,
            "C-c",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    run.wait(1);
    let status = run.status();
    assert_eq!(status["phase"], "interrupted", "{status:#}");

    run.orch().args(["resume", "--detach"]).run().expect(0);
    run.wait(0);

    let journal = std::fs::read_to_string(run.run_dir().join("events.jsonl")).unwrap();
    for cli in CONTINUING {
        // The session the interrupted attempt left...
        let session = journal
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["event"] == "task_interrupted" && e["task"] == cli)
            .and_then(|e| e["session_id"].as_str().map(String::from))
            .unwrap_or_else(|| panic!("{cli}: no session in\n{journal}"));
        // ...is what the second attempt continues...
        let launch: Value = serde_json::from_str(
            &std::fs::read_to_string(run.run_dir().join(format!("tasks/{cli}/2/launch.json")))
                .unwrap(),
        )
        .unwrap();
        let argv: Vec<&str> = launch["argv"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let flag = match cli {
            "claude" => "--resume",
            "codex" => "resume",
            _ => "--session",
        };
        assert!(
            argv.windows(2).any(|w| w == [flag, session.as_str()]),
            "{cli}: {argv:?}"
        );
        // ...with its conversation: the first request after the interruption already holds
        // the test's write and its result.
        let exchanges: Vec<_> = run
            .model()
            .exchanges()
            .into_iter()
            .filter(|e| e.task.as_deref() == Some(cli))
            .collect();
        let hold = exchanges.iter().position(|e| e.answer == "hold").unwrap();
        let next = &exchanges[hold + 1..];
        assert!(
            next.first().is_some_and(|e| e.tool_results == 1),
            "{cli}: {next:?}\n{}",
            run.diagnostics()
        );
        assert!(
            run.p
                .read(&format!("src/{cli}.sh"))
                .contains(&format!("for task {cli}")),
            "{cli}"
        );
    }
}
