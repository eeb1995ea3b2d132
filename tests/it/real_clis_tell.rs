//! `orch tell TASK` on agent CLIs mid-turn: the turn is stopped as an interruption by the
//! user, and the next attempt continues the CLI's own session (Claude Code `--resume ID`, Codex
//! `exec ... resume ID`, OpenCode `--session ID`) with the message in its next user turn: the
//! first request the model server gets after the stop holds the message and the conversation.
//!
//! Skipped like tests/real_clis.rs when the CLIs are not installed.

use crate::support;

use std::time::Duration;

use serde_json::Value;
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
  retries: 0
  task_timeout: 120s
";

const CONTINUING: [&str; 3] = ["claude", "codex", "opencode"];

#[test]
fn a_told_agent_cli_continues_its_session_with_the_message() {
    if !agent_clis::available("a_told_agent_cli_continues_its_session_with_the_message") {
        return;
    }
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Up::real_clis("clis-tell", ROLES);
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
    run.up(&["tell me", "--plan", "plan.json"], None).expect(0);
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
    for cli in CONTINUING {
        let told = run
            .orch()
            .args(["tell", cli, &format!("TOLD-{cli}-7Q: keep the test short")])
            .run();
        assert_eq!(
            told.code(),
            0,
            "{}{}\n{}",
            told.stdout(),
            told.stderr(),
            run.diagnostics()
        );
    }
    run.wait(0);

    let journal = std::fs::read_to_string(run.run_dir().join("events.jsonl")).unwrap();
    assert!(!journal.contains("\"task_failed\""), "{journal}");
    for cli in CONTINUING {
        let interrupted = journal
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["event"] == "task_interrupted" && e["task"] == cli)
            .unwrap_or_else(|| panic!("{cli}: not interrupted in\n{journal}"));
        assert!(
            interrupted["reason"]
                .as_str()
                .is_some_and(|r| r.contains("stopped by the user")),
            "{interrupted}"
        );
        let session = interrupted["session_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{cli}: no session in {interrupted}"));
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
            argv.windows(2).any(|w| w == [flag, session]),
            "{cli}: {argv:?}"
        );
        // The continued attempt's transcript opens with the message, as its pane does.
        let transcript =
            std::fs::read_to_string(run.run_dir().join(format!("tasks/{cli}/2/transcript.log")))
                .unwrap_or_default();
        assert!(
            transcript.starts_with("==> the user's message (orch tell):"),
            "{cli}: {transcript}"
        );
        // The first request after the stop continues the conversation (the test's write and
        // its result) and carries the message as the next user turn.
        let exchanges: Vec<_> = run
            .model()
            .exchanges()
            .into_iter()
            .filter(|e| e.task.as_deref() == Some(cli))
            .collect();
        let hold = exchanges.iter().position(|e| e.answer == "hold").unwrap();
        let next = exchanges
            .get(hold + 1)
            .unwrap_or_else(|| panic!("{cli}: nothing after the hold\n{}", run.diagnostics()));
        assert_eq!(next.tool_results, 1, "{cli}: {next:?}");
        assert!(
            next.body
                .contains(&format!("TOLD-{cli}-7Q: keep the test short")),
            "{cli}: {}",
            next.body
        );
    }
}
