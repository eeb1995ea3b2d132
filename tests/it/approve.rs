//! Plan approval: `orch up --review` and `plan_approval: ask` hold a valid plan (the
//! planner's, or `--plan`'s) with nothing dispatched; the control window and `orch status`
//! show it as waves and say how to go on; `orch wait` exits 5 while it waits; `orch approve`
//! dispatches it, or lists the problems of an edited plan file (checked again by the engine
//! too) and leaves it waiting; `orch tell planner` has it planned again with the user's
//! feedback; a run downed while it waits resumes still waiting.

use serde_json::Value;

use crate::support::{Options, Up};

/// Writes its files, and leaves a mark of its start.
const WORKER: &str = r#"#!/bin/sh
mkdir -p counts
touch "counts/$ORCH_TASK_ID-started"
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$ORCH_TASK_ID done" > "$f"; done
"#;

fn task(id: &str, after: &[&str]) -> String {
    let deps: Vec<String> = after.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"{{"id": "{id}", "agent": "mine", "task": "write {id}", "files": ["tests/{id}_test.txt", "{id}.txt"], "depends_on": [{}]}}"#,
        deps.join(", ")
    )
}

fn plan(tasks: &[String]) -> String {
    format!(
        "{{\"specs\": [{{\"file\": \"specs/s.md\"}}], \"tasks\": [\n{}\n]}}\n",
        tasks.join(",\n")
    )
}

const RECORDING_HOOK: &str = r#"#!/bin/sh
mkdir -p notices
cat > "notices/.$$" && mv "notices/.$$" "notices/$$.json"
"#;

/// What the `notify` hook was given, of `event`.
fn notices(up: &Up, event: &str) -> Vec<Value> {
    std::fs::read_dir(up.p.path("notices"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap())
        .filter(|d: &Value| d["event"] == event)
        .collect()
}

/// `orch wait` with a timeout: its exit code and what it said.
fn wait(up: &Up) -> (i32, String) {
    let run = up.orch().args(["wait", "--timeout", "60"]).run();
    (run.code(), format!("{}{}", run.stdout(), run.stderr()))
}

fn events(up: &Up) -> Vec<String> {
    up.event_names()
}

fn started(up: &Up) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(up.work_path("counts"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix("-started").map(str::to_string)
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_reviewed_run_holds_the_planners_plan_until_it_is_approved() {
    let up = Options::new("approveplanner").committed().start();
    up.orch()
        .args(["up", "build it", "--detach", "--review"])
        .run()
        .expect(0)
        .stdout_has("the plan will wait for your approval");
    // Held: `orch wait` says so with its own exit code, and how to go on.
    let (code, said) = wait(&up);
    assert_eq!(code, 5, "{said}\n{}", up.diagnostics());
    assert!(said.contains("orch approve"), "{said}");
    assert!(said.contains("plan.json"), "{said}");
    // The list of runs says what the run waits for.
    let runs = up.orch().args(["runs"]).run().expect(0).stdout();
    assert!(runs.contains("awaiting approval"), "{runs}");
    let names = events(&up);
    assert!(names.iter().any(|n| n == "plan_held"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n == "plan_accepted" || n == "task_started"),
        "dispatched before approval: {names:?}"
    );
    // `orch status` shows the plan as waves, and what to do.
    let status = up.status();
    assert_eq!(status["phase"], "planning", "{status:#}");
    assert_eq!(status["approval"]["waiting"], true, "{status:#}");
    let waves = status["approval"]["waves"].as_array().unwrap();
    assert!(waves.len() >= 2, "{status:#}");
    assert!(
        status["approval"]["next"]
            .as_str()
            .unwrap()
            .contains("approve"),
        "{status:#}"
    );
    // Feedback: the planner plans again with it, and the new plan waits in turn.
    let feedback = "one task per module, please; and `$(no shell)` here";
    up.orch()
        .args(["tell", "planner", feedback])
        .run()
        .expect(0)
        .stdout_has("plans again with your message");
    let (code, said) = wait(&up);
    assert_eq!(code, 5, "{said}\n{}", up.diagnostics());
    let prompt = up.run_file("planner/2/prompt.md");
    assert!(prompt.contains(feedback), "{prompt}");
    assert!(prompt.contains("The plan you gave"), "{prompt}");
    let names = events(&up);
    assert!(
        names.iter().any(|n| n == "plan_revision_asked"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n == "task_started"), "{names:?}");
    let text = up.orch().args(["status"]).run().expect(0).stdout();
    assert!(text.contains("PLAN WAITING FOR YOUR APPROVAL"), "{text}");
    assert!(text.contains("wave 1:"), "{text}");
    assert!(text.contains("files:"), "{text}");
    // So does the control window.
    up.wait_until("the control window to show the plan", || {
        let screen = up.pane("control");
        screen.contains("PLAN WAITING") && screen.contains("wave 2:")
    });
    // Approved: dispatched, and the run succeeds.
    up.orch()
        .args(["approve"])
        .run()
        .expect(0)
        .stdout_has("plan approved");
    up.wait(0);
    let journal: Vec<Value> = up.journal_events();
    let approved = journal
        .iter()
        .find(|e| e["event"] == "plan_approved")
        .unwrap_or_else(|| panic!("{journal:#?}"));
    assert_eq!(approved["edited"], false, "{approved}");
    let status = up.status();
    assert_eq!(status["approval"]["waiting"], false, "{status:#}");
    assert_eq!(status["approval"]["replans"], 1, "{status:#}");
    // Nothing waits any more.
    up.orch()
        .args(["approve"])
        .run()
        .expect(2)
        .stderr_has("is over");
}

#[test]
fn an_edited_plan_is_checked_again_and_a_held_run_resumes_still_waiting() {
    let up = Options::new("approveedit")
        .worker(WORKER)
        .yaml("plan_approval: ask\nnotify:\n  hook: [\"./hook.sh\"]\n")
        .script("hook.sh", RECORDING_HOOK)
        .plan(&plan(&[task("a", &[]), task("b", &["a"])]))
        .file("specs/s.md", "# the spec\n")
        .ignore("counts/\nnotices/\nplan.json\nworker.sh\nhook.sh\norch.yaml\n")
        .start();
    up.start();
    let (code, said) = wait(&up);
    assert_eq!(code, 5, "{said}\n{}", up.diagnostics());
    let file = up.run_dir().join("plan.json");
    assert!(file.exists(), "{said}");
    // The user is told (here by the `notify` hook), with what to do.
    up.wait_until("the hook to be told the plan waits", || {
        !notices(&up, "plan_waiting").is_empty()
    });
    let told = notices(&up, "plan_waiting");
    let reason = told[0]["reason"].as_str().unwrap();
    assert!(reason.contains("2 task(s)"), "{told:#?}");
    assert!(reason.contains("orch approve"), "{told:#?}");

    // Edited badly: the problems are listed, nothing is dispatched, the plan still waits.
    std::fs::write(
        &file,
        plan(&[
            task("a", &[]),
            task("c", &["nope"]).replace("c.txt", "../out.txt"),
        ]),
    )
    .unwrap();
    let refused = up.orch().args(["approve"]).run().expect(1);
    let err = refused.stderr();
    assert!(err.contains("nope"), "{err}");
    assert!(err.contains("../out.txt"), "{err}");
    assert!(err.contains("still waits"), "{err}");
    // The engine checks the file again too (a request made by hand, past the command's own
    // check): refused, journaled, shown.
    std::fs::write(&file, "{\"tasks\": [").unwrap();
    let requests = up.run_dir().join("approve");
    std::fs::create_dir_all(&requests).unwrap();
    std::fs::write(requests.join("1-hand.json"), r#"{"id": "1-hand"}"#).unwrap();
    up.wait_until("the engine to refuse the bad plan file", || {
        up.journal().contains("\"approval_refused\"")
    });
    let status = up.status();
    assert_eq!(status["approval"]["waiting"], true, "{status:#}");
    let problems = status["approval"]["refusals"][0]["problems"].to_string();
    assert!(problems.contains("not valid JSON"), "{problems}");
    let text = up.orch().args(["status"]).run().expect(0).stdout();
    assert!(text.contains("was refused"), "{text}");
    assert_eq!(started(&up), Vec::<String>::new());
    let (code, said) = wait(&up);
    assert_eq!(code, 5, "{said}");

    // Down while it waits, resumed: it waits again, the edits kept.
    up.orch().args(["down"]).run().expect(0);
    let fixed = plan(&[task("a", &[]), task("c", &["a"])]);
    std::fs::write(&file, &fixed).unwrap();
    up.resume();
    let (code, said) = wait(&up);
    assert_eq!(code, 5, "{said}\n{}", up.diagnostics());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), fixed);
    assert_eq!(started(&up), Vec::<String>::new());

    // Fixed: approved as edited, and the edited plan is what runs.
    up.orch()
        .args(["approve"])
        .run()
        .expect(0)
        .stdout_has("plan approved as edited");
    up.wait(0);
    assert_eq!(started(&up), vec!["a".to_string(), "c".to_string()]);
    let status = up.status();
    let ids: Vec<&str> = status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "c"], "{status:#}");
    // The report says how the plan was approved.
    up.orch()
        .args(["report"])
        .run()
        .expect(0)
        .stdout_has("Plan approval: approved as edited by the user, after 1 approval(s) refused");
}

#[test]
fn an_approval_made_while_no_engine_runs_is_answered_at_resume() {
    let up = Options::new("approvedown")
        .worker(WORKER)
        .plan(&plan(&[task("a", &[])]))
        .file("specs/s.md", "# the spec\n")
        .ignore("counts/\nplan.json\nworker.sh\norch.yaml\n")
        .start();
    up.orch()
        .args([
            "up",
            "build it",
            "--plan",
            "plan.json",
            "--detach",
            "--review",
        ])
        .run()
        .expect(0);
    let (code, said) = wait(&up);
    assert_eq!(code, 5, "{said}\n{}", up.diagnostics());
    up.orch().args(["down"]).run().expect(0);
    up.orch()
        .args(["approve"])
        .run()
        .expect(0)
        .stdout_has("resume");
    assert_eq!(started(&up), Vec::<String>::new());
    up.resume();
    up.wait(0);
    assert_eq!(started(&up), vec!["a".to_string()]);
}
