//! The engine's warnings are journaled and shown, not printed on a screen redrawn a second
//! later: a `kind: command` worker (outside the sandbox, which would keep it from the run
//! directory) breaks what the engine writes there, and the warning it causes is in `orch
//! status --json` and in the report.

use crate::support;

use serde_json::Value;
use support::{Tmux as _, Up};

fn config() -> String {
    "agents:\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\n    sandbox: off\n  \
     judge:\n    kind: scripted\n    sample: true\nroles:\n  planner: judge\n  judge: judge\n  \
     workers: [mine]\nlimits:\n  retries: 0\n"
        .to_string()
}

const PLAN: &str = r#"{"tasks": [{"id": "w", "agent": "mine", "task": "write w.txt", "files": ["tests/w_test.txt", "w.txt"]}]}"#;

/// A run of `PLAN` whose worker writes its files, then does `sabotage` (shell) to the run
/// directory; returns once the run ended, with what `orch wait` printed.
fn run(name: &str, sabotage: &str) -> (Up, String) {
    let up = Up::new(name, &config());
    up.p.script(
        "worker.sh",
        &format!(
            "#!/bin/sh\nmkdir -p tests && echo ok > tests/w_test.txt && echo done > w.txt\n\
             {sabotage}\necho finished\n"
        ),
    );
    up.p.file("plan.json", PLAN);
    up.p.file(".gitignore", ".orch/\nworker.sh\nplan.json\norch.yaml\n");
    // In place, said so: the warnings counted here are the sabotage's alone.
    up.up(&["go", "--plan", "plan.json", "--in-place"], None)
        .expect(0);
    let wait = up.orch().args(["wait", "--timeout", "90"]).run();
    assert!(
        wait.code() == 0 || wait.code() == 1,
        "orch wait: {}{}\n{}",
        wait.stdout(),
        wait.stderr(),
        up.diagnostics()
    );
    let said = wait.stdout();
    (up, said)
}

/// The warnings of `json` (status or report) whose message holds `needle`.
fn warnings_with<'a>(json: &'a Value, needle: &str) -> Vec<&'a Value> {
    json["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings array in {json:#}"))
        .iter()
        .filter(|w| w["message"].as_str().unwrap_or("").contains(needle))
        .collect()
}

fn run_dir(up: &Up) -> std::path::PathBuf {
    std::fs::read_dir(up.p.path(".orch/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

#[test]
fn a_copy_the_engine_could_not_keep_is_a_warning_in_status_and_the_written_report() {
    // `baseline/` made a file: the copy of the task's files as its agent left them, which
    // later changes are judged against, cannot be kept.
    let (up, _) = run(
        "warn-baseline",
        "rm -rf \"$ORCH_RUN_DIR/baseline\" && : > \"$ORCH_RUN_DIR/baseline\"",
    );
    let status = up.status();
    // One per file, though the copy is tried at the agent's exit and again once judged:
    // a warning the engine journaled already is not journaled again.
    let found = warnings_with(&status, "cannot keep a copy of");
    assert_eq!(found.len(), 2, "{status:#}\n{}", up.diagnostics());
    assert_eq!(found[0]["kind"], "unpoliced", "{status:#}");
    assert!(found[0]["at_ms"].as_u64().unwrap() > 0, "{status:#}");
    let event = up
        .journal()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "warning")
        .unwrap_or_else(|| panic!("no warning journaled\n{}", up.diagnostics()));
    assert_eq!(event["kind"], "unpoliced");

    // The report the engine wrote as the run ended has it, in both forms.
    let dir = run_dir(&up);
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert!(
        !warnings_with(&json, "cannot keep a copy of").is_empty(),
        "{json:#}"
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let section = md
        .split("## Warnings")
        .nth(1)
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        section.contains("- unpoliced: cannot keep a copy of"),
        "{md}"
    );

    // `orch status` says it under the table.
    let text = up.orch().args(["status"]).run().expect(0).stdout();
    let section = text
        .split("\nWARNINGS")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        section.contains("unpoliced: cannot keep a copy of"),
        "{text}"
    );

    // The control window's final screen keeps them under the table.
    let tmux = up.server.tmux();
    let control = support::wait_for_pane(tmux, &up.session(), "the control window", |p| {
        p.window_name == "control"
    });
    let mut screen = String::new();
    support::wait_until(
        "the control window's final screen with the warnings",
        support::TIMEOUT,
        || {
            screen = tmux.capture_pane(&control.pane_id).unwrap_or_default();
            screen.contains("Its files are in")
        },
        || up.diagnostics(),
    );
    let section = screen
        .split("WARNINGS")
        .nth(1)
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(
        section.contains("unpoliced: cannot keep a copy of"),
        "{screen}"
    );
}

#[test]
fn a_report_that_could_not_be_written_is_a_warning_in_status_and_orch_report() {
    // `report.md` made a directory: the engine cannot write the report as the run ends.
    let (up, waited) = run("warn-report", "mkdir -p \"$ORCH_RUN_DIR/report.md\"");
    // `orch wait` says that the run has warnings, so that a success is not taken for clean.
    assert!(
        waited.contains("the engine warned 1 time(s) (unrecorded)"),
        "{waited}"
    );
    let status = up.status();
    let found = warnings_with(&status, "could not write the report");
    assert_eq!(found.len(), 1, "{status:#}\n{}", up.diagnostics());
    assert_eq!(found[0]["kind"], "unrecorded", "{status:#}");
    // `orch report` rebuilds the report from the journal, and so says it too.
    let report = up.orch().args(["report", "--json"]).run().expect(0);
    let json: Value = serde_json::from_str(&report.stdout()).unwrap();
    let found = warnings_with(&json, "could not write the report");
    assert_eq!(found.len(), 1, "{json:#}");
    assert_eq!(found[0]["kind"], "unrecorded");
    let md = up.orch().args(["report"]).run().expect(0).stdout();
    assert!(
        md.contains("- unrecorded: could not write the report"),
        "{md}"
    );
}
