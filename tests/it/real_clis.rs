//! The real agent CLIs (Claude Code, Codex, OpenCode, Gemini CLI) end to end: `orch up` on a
//! private tmux server, every CLI pointed at the scripted model server (test support, on
//! 127.0.0.1), each in a home of its own. Offline: nothing leaves the machine.
//!
//! Skipped with a message when the CLIs are not installed; `.ci/run` installs pinned versions
//! and sets `ORCH_REAL_CLIS=1`, which makes them required. The tests run one at a time: each
//! starts four node programs at once, and the machine has two cores.

use crate::support;

use std::time::Duration;

use serde_json::Value;
use support::Up;
use support::agent_clis::{self, CLIS, protocol_of};
use support::agent_clis::{ONE_AT_A_TIME, ROLES};

#[test]
fn the_planner_on_claude_and_a_worker_on_each_cli_build_the_project() {
    if !agent_clis::available("the_planner_on_claude_and_a_worker_on_each_cli") {
        return;
    }
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Up::real_clis("clis-all", ROLES);
    run.up(
        &["Build one greeting script per agent, with its test"],
        None,
    )
    .expect(0);
    let took = run.wait(0);
    let status = run.status();
    assert_eq!(status["phase"], "succeeded", "{status:#}");
    let violations = status["violations"].as_array().unwrap();
    assert!(violations.is_empty(), "{status:#}");

    // The planner wrote the spec through Claude Code's Write tool.
    let spec = run.p.read("specs/overview.md");
    assert!(spec.contains("through anthropic-messages"), "{spec}");
    for cli in CLIS {
        let task = Up::task(&status, cli);
        assert_eq!(task["state"], "done", "{task:#}");
        assert_eq!(task["agent"], cli);
        // Every owned file was written by the CLI that owns it, tests first.
        for file in [format!("tests/{cli}_test.sh"), format!("src/{cli}.sh")] {
            let content = run.p.read(&file);
            assert!(
                content.contains(&format!("{file}: written through {}", protocol_of(cli))),
                "{file}: {content}"
            );
        }
        let writes: Vec<String> = run
            .model()
            .exchanges()
            .into_iter()
            .filter(|e| e.task.as_deref() == Some(cli) && e.answer.starts_with("write "))
            .map(|e| e.answer)
            .collect();
        assert!(
            writes
                .first()
                .is_some_and(|w| w.ends_with(&format!("tests/{cli}_test.sh"))),
            "{cli}: {writes:?}"
        );
        // The pane shows the live transcript, not the raw events.
        let pane = run.pane(&format!("{cli}-{cli}"));
        assert!(
            pane.contains(&format!("src/{cli}.sh")),
            "{cli}'s pane:\n{pane}"
        );
        assert!(
            pane.contains("→ "),
            "{cli}'s pane has no tool call:\n{pane}"
        );
        assert!(
            !pane.contains("{\"type\""),
            "{cli}'s pane shows raw JSON:\n{pane}"
        );
        let attempt = run.run_dir().join(format!("tasks/{cli}/1"));
        // It ran in orch's sandbox (where bubblewrap works: `.ci/run` installs it).
        if orch::sandbox::availability().is_ok() {
            let spec = std::fs::read_to_string(attempt.join("launch.json")).unwrap();
            assert!(spec.contains("\"sandbox\""), "{cli} ran unconfined: {spec}");
        }
        let raw = std::fs::read_to_string(attempt.join("stdout.log")).unwrap();
        assert!(
            raw.lines().any(|l| l.starts_with('{')),
            "{cli}: raw stream not kept"
        );
        let exit: Value =
            serde_json::from_str(&std::fs::read_to_string(attempt.join("exit.json")).unwrap())
                .unwrap();
        assert!(
            exit["usage"]["input_tokens"].as_u64().unwrap() > 0,
            "{cli}: {exit}"
        );
        assert!(exit["session_id"].is_string(), "{cli}: {exit}");
        // `orch status` shows what the pane shows (the transcript's last line) and the
        // tokens, not the stream's raw JSON.
        let last = task["last_output"].as_str().unwrap_or("");
        assert!(!last.is_empty() && !last.contains("{\""), "{cli}: {task:#}");
        assert_eq!(task["usage"], exit["usage"], "{cli}: {task:#}");
        // `orch logs` shows the transcript too.
        run.orch()
            .args(["logs", cli])
            .run()
            .expect(0)
            .stdout_has(&format!("tests/{cli}_test.sh"))
            .stdout_has("→ ");
    }
    let table = run.orch().args(["status"]).run().expect(0).stdout();
    assert!(table.contains("TOKENS"), "{table}");
    for cli in CLIS {
        let row = table.lines().find(|l| l.starts_with(cli)).unwrap_or("");
        assert!(
            !row.is_empty() && !row.contains("{\""),
            "{cli}'s row:\n{table}"
        );
    }
    // The judge ran on Codex and passed every task.
    let judged: Vec<_> = run
        .model()
        .exchanges()
        .into_iter()
        .filter(|e| e.role.as_deref() == Some("judge"))
        .collect();
    assert!(
        judged.iter().any(
            |e| e.protocol.map(super::support::model_server::Protocol::name)
                == Some("openai-responses")
        ),
        "{}",
        run.diagnostics()
    );
    let journal = std::fs::read_to_string(run.run_dir().join("events.jsonl")).unwrap();
    assert!(journal.contains("\"judge_verdict\""), "{journal}");
    eprintln!("the run took {took:.1?}");
}

#[test]
fn api_errors_fail_their_attempts_quickly_with_the_reason() {
    if !agent_clis::available("api_errors_fail_their_attempts_quickly") {
        return;
    }
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Up::real_clis("clis-api", ROLES);
    // A 500 for Codex (its retries are off), a 401 for the others (Gemini and OpenCode
    // retry a 500 for minutes).
    run.plan_for_each_cli(|cli| {
        if cli == "codex" {
            "[model:500]"
        } else {
            "[model:401]"
        }
        .to_string()
    });
    run.up(&["fail", "--plan", "plan.json"], None).expect(0);
    let took = run.wait(1);
    eprintln!("four API errors failed their attempts in {took:.1?}");
    assert!(took < Duration::from_secs(90), "took {took:?}");
    let status = run.status();
    for cli in CLIS {
        let task = Up::task(&status, cli);
        assert_eq!(task["state"], "failed", "{task:#}");
        let reason = task["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("{cli} reported an error")),
            "{cli}: {reason}"
        );
        let code = if cli == "codex" { "500" } else { "401" };
        if cli != "codex" {
            // Codex words a 500 its own way ("high demand").
            assert!(reason.contains(code), "{cli}: {reason}");
        }
        assert!(!run.p.path(&format!("src/{cli}.sh")).exists());
    }
    // The report gives the same reasons.
    let report = run.orch().args(["report"]).run().expect(0).stdout();
    for cli in CLIS {
        assert!(
            report.contains(&format!("{cli} reported an error")),
            "{report}"
        );
    }
}

#[test]
fn a_write_outside_the_owned_files_is_refused_or_caught() {
    if !agent_clis::available("a_write_outside_the_owned_files_is_refused_or_caught") {
        return;
    }
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Up::real_clis("clis-stray", ROLES);
    run.plan_for_each_cli(|cli| format!("[model:stray=stray/{cli}.txt]"));
    run.up(&["stray", "--plan", "plan.json"], None).expect(0);
    let took = run.wait(1);
    eprintln!("four stray writes refused or caught in {took:.1?}");
    let status = run.status();
    // Claude Code, OpenCode and Gemini CLI refuse the write themselves, and the attempt
    // fails with the refusal as its reason.
    for cli in ["claude", "opencode", "gemini"] {
        let task = Up::task(&status, cli);
        assert_eq!(task["state"], "failed", "{task:#}");
        let reason = task["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("{cli} refused 1 action(s)")) && reason.contains("stray/"),
            "{cli}: {reason}"
        );
        assert!(
            !run.p.path(&format!("stray/{cli}.txt")).exists(),
            "{cli} wrote it"
        );
        // Its own files were written all the same.
        assert!(run.p.path(&format!("src/{cli}.sh")).exists());
    }
    // Codex has no per-file rules: its sandbox lets it write in the project, and the
    // ownership watcher catches the write.
    let violations = status["violations"].as_array().unwrap();
    let stray = violations
        .iter()
        .find(|v| v["path"] == "stray/codex.txt")
        .unwrap_or_else(|| panic!("{status:#}\n{}", run.diagnostics()));
    assert!(
        stray["suspects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "codex"),
        "{stray:#}"
    );
    // The pane shows the refusal, and the report the reason.
    let pane = run.pane("claude-claude");
    assert!(pane.contains("DENIED"), "{pane}");
    let report = run.orch().args(["report"]).run().expect(0).stdout();
    assert!(report.contains("claude refused 1 action(s)"), "{report}");
}

/// The judge's invocation on Codex on its own, the way a pane runs any agent (a launcher,
/// `orch agent-run`): in a read-only sandbox, with its verdict read from the event stream.
#[test]
fn the_judge_on_codex_answers_with_a_verdict_from_a_read_only_sandbox() {
    if !agent_clis::available("the_judge_on_codex_answers_with_a_verdict") {
        return;
    }
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Up::real_clis("clis-judge", ROLES);
    let config = orch::config::load(&run.p.path("orch.yaml")).unwrap();
    let root = run.p.root();
    let dir = root.join(".orch/judge/1");
    std::fs::create_dir_all(&dir).unwrap();
    let ctx = orch::prompt::Context {
        role: orch::prompt::Role::Judge,
        task: None,
        files: vec![],
        specs: vec![],
        request: "Build it".into(),
        attempt: 1,
        project_dir: root.display().to_string(),
        workers: vec![],
        plan_file: None,
        test_pattern: vec![],
        task_text: None,
        feedback: vec![],
    };
    let prompt_file = dir.join("prompt.md");
    std::fs::write(&prompt_file, format!("# Judge the run\n\n{}\n", ctx.line())).unwrap();
    let mut invocation = orch::workers::invocation(&orch::workers::AgentCall {
        name: "codex",
        agent: &config.agents["codex"],
        role: orch::prompt::Role::Judge,
        task: None,
        files: &[],
        prompt_file: &prompt_file,
        project_dir: &root,
        run_dir: &dir,
        session: None,
    })
    .unwrap();
    // In the sandbox, as orch runs it (auto: bubblewrap where it works here), which holds the
    // judge to a read-only project whatever Codex's own sandbox can do inside it.
    orch::sandbox::confine(
        &mut invocation,
        orch::prompt::Role::Judge,
        &config,
        &config.agents["codex"],
        &root,
        &dir,
    );
    assert!(
        invocation.argv.windows(2).any(|w| w == ["-s", "read-only"]),
        "{:?}",
        invocation.argv
    );
    let spec = orch::agent_process::launcher::LaunchSpec {
        title: "judge · agent codex".into(),
        argv: invocation.argv,
        env: invocation.env,
        env_file: None,
        stdin: invocation.stdin,
        cwd: invocation.cwd,
        output_log: dir.join("output.log"),
        stdout_log: dir.join("stdout.log"),
        exit_file: dir.join("exit.json"),
        sandbox: invocation.sandbox,
        notice: None,
    };
    orch::agent_process::launcher::write_launcher(
        &dir,
        &spec,
        std::path::Path::new(env!("CARGO_BIN_EXE_orch")),
    )
    .unwrap();
    let ran = std::process::Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(["agent-run", &dir.join("launch.json").display().to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "{shown}\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let stdout = std::fs::read_to_string(&spec.stdout_log).unwrap();
    let adapter = orch::workers::adapter(orch::config::AgentKind::Codex);
    assert_eq!(adapter.assess(&stdout).failure, None);
    let answer = adapter.answer(&stdout);
    let json = answer
        .split("```json")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("no verdict in {answer:?}"));
    let verdict: Value = serde_json::from_str(json).unwrap();
    assert_eq!(verdict["verdict"], "pass", "{verdict}");
    // What the pane showed: the transcript, with the verdict text.
    assert!(shown.contains("\"verdict\""), "{shown}");
}

#[test]
fn doctor_finds_each_cli_and_what_it_needs() {
    if !agent_clis::available("doctor_finds_each_cli_and_what_it_needs") {
        return;
    }
    let run = Up::real_clis("clis-doctor", ROLES);
    run.orch()
        .without_credentials()
        .args(["doctor"])
        .run()
        .expect(0)
        .stdout_has("(Claude Code)")
        .stdout_has("codex-cli ")
        .stdout_has("agent `codex`: credentials: STUB_API_KEY is set (custom provider)")
        .stdout_has("agent `gemini`: auth type gemini-api-key selected")
        .stdout_has("agent `opencode`: credentials: left to the provider in OPENCODE_CONFIG")
        .stdout_has("ready");
}

#[test]
fn no_prompt_and_no_key_in_any_command_line_while_each_cli_works() {
    if !agent_clis::available("no_prompt_and_no_key_in_any_command_line_while_each_cli_works") {
        return;
    }
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Up::real_clis("clis-secrets", ROLES);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let marker = |what: &str| format!("orch-secret-{what}-{}-{nanos}", std::process::id());
    let (request, task, caller) = (marker("request"), marker("task"), marker("caller"));
    // Each worker is held mid-turn, after its first tool call.
    run.plan_for_each_cli(|_| format!("{task} [model:hold=1]"));
    run.orch()
        .env("ORCH_T_CALLER_SECRET", &caller)
        .args(["up", &format!("Build it {request}"), "--plan", "plan.json"])
        .args(["--detach"])
        .run()
        .expect(0);
    let held = |cli: &str| {
        run.model()
            .exchanges()
            .iter()
            .any(|e| e.task.as_deref() == Some(cli) && e.answer == "hold")
    };
    support::wait_until(
        "every CLI to be mid-turn",
        Duration::from_secs(90),
        || CLIS.iter().all(|cli| held(cli)),
        || run.diagnostics(),
    );
    // The CLIs, their own children (Codex's native binary, shells of tool calls), agent-run,
    // the engine and tmux: none has a prompt, the caller's environment or an API key from the
    // agents' `env` (Claude Code's is sk-orch-test) among its arguments.
    let leaks = support::command_lines_with(&[&request, &task, &caller, "sk-orch-test"]);
    assert!(
        leaks.is_empty(),
        "secrets in command lines:\n{}",
        leaks.join("\n")
    );
}
