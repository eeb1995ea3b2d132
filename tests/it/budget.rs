//! A budget that holds: a fan-out of `kind: command` workers that report their use
//! (`ORCH_USAGE` lines), counted live as they print them. At 100 % nothing new launches; with
//! `on_budget: stop` the running agents are stopped as an interruption, with `finish` they end
//! their turn; `orch wait` says the run stopped at its budget (exit 4); `orch budget +AMOUNT`
//! raises it, for the live engine or for `orch resume`, and the run goes on to succeed.

use serde_json::Value;

use crate::support::{Options, Up};

/// Each task reports 700 tokens as soon as it starts, then (with `counts/hold`) waits for the
/// test to release it, then writes its files. The first attempt of each task leaves a mark.
const WORKER: &str = r#"#!/bin/sh
id="$ORCH_TASK_ID"
mkdir -p counts
# f's agent reports no cost: it counts in tokens only.
if [ "$id" = f ]; then
  echo 'ORCH_USAGE {"input_tokens":600,"output_tokens":100}'
else
  echo 'ORCH_USAGE {"input_tokens":600,"output_tokens":100,"cost_usd":0.25}'
fi
touch "counts/$id-started"
if [ -e counts/hold ]; then
  while [ ! -e counts/release ]; do sleep 0.05; done
fi
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$id done" > "$f"; done
"#;

/// Six independent tasks, two at a time.
fn plan() -> String {
    let tasks: Vec<String> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|id| {
            format!(
                r#"{{"id": "{id}", "agent": "mine", "task": "write {id}", "files": ["tests/{id}_test.txt", "{id}.txt"]}}"#
            )
        })
        .collect();
    format!(
        r#"{{"specs": [{{"file": "specs/s.md"}}], "tasks": [{}]}}"#,
        tasks.join(",\n")
    )
}

const RECORDING_HOOK: &str = r#"#!/bin/sh
mkdir -p notices
cat > "notices/.$$" && mv "notices/.$$" "notices/$$.json"
"#;

fn options(name: &str, on_budget: &str) -> Options {
    Options::new(name)
        .worker(WORKER)
        .limit("max_parallel: 2")
        .limit("budget: {tokens: 1200}")
        .limit(&format!("on_budget: {on_budget}"))
        .plan(&plan())
        .file("specs/s.md", "# the spec\n")
        .script("hook.sh", RECORDING_HOOK)
        .yaml("notify:\n  hook: [\"./hook.sh\"]\n")
        .ignore("counts/\nnotices/\nplan.json\nworker.sh\nhook.sh\norch.yaml\n")
}

fn started(up: &Up, id: &str) -> bool {
    up.p.path(&format!("counts/{id}-started")).exists()
}

fn budget_notices(up: &Up) -> Vec<Value> {
    std::fs::read_dir(up.p.path("notices"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap())
        .filter(|d: &Value| d["event"] == "budget")
        .collect()
}

/// The workers wait, once started, until the test releases them.
fn hold(up: &Up) {
    std::fs::create_dir_all(up.p.path("counts")).unwrap();
    std::fs::write(up.p.path("counts/hold"), "").unwrap();
}

/// A run with `on_budget: finish` that reached its budget, its running agents let finish
/// their turn: `orch wait` says so (exit 4). Both hold until the budget is reached: were one
/// let go at once, its exit could free its slot before the other's use is counted, and a
/// third task would start within budget.
fn finished_at_budget(name: &str) -> Up {
    let up = options(name, "finish").start();
    hold(&up);
    up.start();
    up.wait_until("the budget to be reached", || {
        up.status()["budget"]["reached"] == true
    });
    std::fs::write(up.p.path("counts/release"), "").unwrap();
    let (code, said) = wait(&up);
    assert_eq!(code, 4, "{said}\n{}", up.diagnostics());
    up
}

/// `orch wait` with a short timeout, its exit code and output.
fn wait(up: &Up) -> (i32, String) {
    let run = up.orch().args(["wait", "--timeout", "60"]).run();
    (run.code(), format!("{}{}", run.stdout(), run.stderr()))
}

#[test]
fn a_budget_stops_a_fan_out_and_a_raise_for_the_live_engine_lets_it_finish() {
    let up = options("budgetstop", "stop").start();
    hold(&up);
    up.start();
    // a and b report 700 tokens each: 1400 of 1200. Both are stopped, nothing else starts.
    let (code, said) = wait(&up);
    assert_eq!(code, 4, "{said}\n{}", up.diagnostics());
    assert!(said.contains("stopped at its budget"), "{said}");
    assert!(said.contains("1400 of 1200 tokens"), "{said}");
    let status = up.status();
    assert_eq!(status["budget"]["reached"], true, "{status:#}");
    assert_eq!(status["budget"]["used_tokens"], 1400, "{status:#}");
    for id in ["a", "b"] {
        let task = Up::task(&status, id);
        assert_eq!(task["state"], "pending", "{status:#}");
        assert_eq!(task["attempts"], 1, "{status:#}");
    }
    for id in ["c", "d", "e", "f"] {
        assert_eq!(Up::task(&status, id)["attempts"], 0, "{status:#}");
        assert!(!started(&up, id), "{id} started");
    }
    let journal = up.journal();
    assert!(
        journal.contains("\"reason\":\"stopped: the run's budget is used up\""),
        "{journal}"
    );
    // Stopped, not left to run: their panes' processes ended.
    up.wait_until("a's and b's agents to be gone", || {
        let out = std::process::Command::new("tmux")
            .args(["-L", up.server.socket_name()])
            .args(["list-panes", "-s", "-t", &up.session()])
            .args(["-F", "#{window_name} #{pane_dead}"])
            .output()
            .unwrap();
        let panes = String::from_utf8_lossy(&out.stdout).into_owned();
        ["a-mine 1", "b-mine 1"].iter().all(|p| panes.contains(p))
    });
    let told = budget_notices(&up);
    assert!(told.iter().any(|d| d["percent"] == 100), "{told:#?}");
    // The text status and `orch budget` say so, and what raises it.
    let text = up.orch().args(["status"]).run().expect(0).stdout();
    assert!(text.contains("budget reached"), "{text}");
    assert!(text.contains("TOTAL"), "{text}");

    // A raise: the live engine applies it at once, and the run goes on.
    std::fs::write(up.p.path("counts/release"), "").unwrap();
    up.orch()
        .args(["budget", "+8000 tokens"])
        .run()
        .expect(0)
        .stdout_has("budget raised by 8000 tokens");
    up.wait(0);
    let status = up.status();
    assert_eq!(status["budget"]["limit"]["tokens"], 9200, "{status:#}");
    assert_eq!(status["budget"]["reached"], false, "{status:#}");
    for id in ["a", "b"] {
        assert_eq!(Up::task(&status, id)["attempts"], 2, "{status:#}");
    }
    // The report counts every attempt's use.
    let report: Value = serde_json::from_str(&up.run_file("report.json")).unwrap();
    assert_eq!(report["budget"]["used_tokens"], 8 * 700, "{report:#}");
    assert_eq!(report["totals"]["input_tokens"], 8 * 600, "{report:#}");
    let md = up.run_file("report.md");
    assert!(md.contains("Budget: 5600 of 9200 tokens (61 %)"), "{md}");
}

#[test]
fn with_on_budget_finish_the_running_agents_end_their_turn_and_resume_takes_a_raise() {
    let up = finished_at_budget("budgetfinish");
    let status = up.status();
    // a and b finished their turn (their files are written) but are not judged yet: the
    // judge is not launched either. Nothing else started.
    for id in ["a", "b"] {
        assert!(up.p.path(&format!("{id}.txt")).exists(), "{status:#}");
        assert_eq!(Up::task(&status, id)["attempts"], 1, "{status:#}");
    }
    for id in ["c", "d", "e", "f"] {
        assert_eq!(Up::task(&status, id)["attempts"], 0, "{status:#}");
    }
    assert!(!up.journal().contains("\"task_interrupted\""));

    // No engine: a raise waits for `orch resume`.
    up.orch().args(["down"]).run().expect(0);
    up.orch()
        .args(["budget", "+4000 tokens"])
        .run()
        .expect(0)
        .stdout_has("resume` applies it");
    let status = up.status();
    assert_eq!(
        status["budget"]["pending_raises"].as_array().unwrap().len(),
        1,
        "{status:#}"
    );
    // A raise in a unit the run has no budget in is refused, saying what to do.
    up.orch()
        .args(["budget", "+5"])
        .run()
        .expect(2)
        .stderr_has("raise it with `+N tokens`");
    up.resume();
    up.wait(0);
    let status = up.status();
    assert_eq!(status["budget"]["limit"]["tokens"], 5200, "{status:#}");
    assert_eq!(status["budget"]["used_tokens"], 6 * 700, "{status:#}");
    // 4200 of 5200: past 80 % of the raised budget, which the user is told.
    let told = budget_notices(&up);
    assert!(told.iter().any(|d| d["percent"] == 100), "{told:#?}");
    assert!(told.iter().any(|d| d["percent"] == 80), "{told:#?}");
    // f's CLI reported no cost: counted in tokens, left out of the cost, and said so.
    assert_eq!(
        status["budget"]["uncosted"],
        serde_json::json!(["f"]),
        "{status:#}"
    );
    assert_eq!(status["budget"]["used_usd"], 1.25, "{status:#}");
    up.orch()
        .args(["budget"])
        .run()
        .expect(0)
        .stdout_has("4200 of 5200 tokens (81 %)")
        .stdout_has("no cost reported by f (counted in tokens only)");
}

/// Claude Code against the tests' model server, which reports 100 tokens in and 20 out per
/// answer: the budget (100 tokens) is used up by the first answer of the first task's first
/// turn, counted live from the CLI's event stream. The agent is stopped within that turn (it
/// asked the server at most twice), the second task never reaches the model; once the budget
/// is raised, the first task continues its own session and the run succeeds.
#[test]
fn a_real_cli_is_stopped_within_its_turn_and_continues_its_session_after_a_raise() {
    use crate::support::agent_clis;
    if !agent_clis::available(
        "a_real_cli_is_stopped_within_its_turn_and_continues_its_session_after_a_raise",
    ) {
        return;
    }
    let _one = agent_clis::ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Up::real_clis(
        "clis-budget",
        "roles:\n  planner: claude\n  judge: claude\n  workers: [claude]\n\
         limits:\n  max_parallel: 1\n  task_timeout: 120s\n  budget: {tokens: 100}\n  \
         on_budget: stop\n",
    );
    let tasks: Vec<Value> = ["one", "two"]
        .iter()
        .map(|id| {
            serde_json::json!({
                "id": id, "agent": "claude",
                // The first holds its second request, so that it is mid-turn for sure.
                "task": format!("Write src/{id}.sh and its test.{}",
                    if *id == "one" { " [model:hold=1]" } else { "" }),
                "files": [format!("tests/{id}_test.sh"), format!("src/{id}.sh")]
            })
        })
        .collect();
    run.p.file(
        "plan.json",
        &serde_json::json!({"tasks": tasks}).to_string(),
    );
    run.up(&["budget me", "--plan", "plan.json"], None)
        .expect(0);
    let (code, said) = wait(&run);
    assert_eq!(code, 4, "{said}\n{}", run.diagnostics());
    let asked = |task: &str| {
        run.model()
            .exchanges()
            .iter()
            .filter(|e| e.task.as_deref() == Some(task))
            .count()
    };
    assert!(
        (1..=2).contains(&asked("one")),
        "{}",
        run.model().transcript()
    );
    assert_eq!(asked("two"), 0, "{}", run.model().transcript());
    let status = run.status();
    assert_eq!(Up::task(&status, "one")["state"], "pending", "{status:#}");
    assert_eq!(Up::task(&status, "two")["attempts"], 0, "{status:#}");
    assert!(
        status["budget"]["used_tokens"].as_u64().unwrap() >= 100,
        "{status:#}"
    );

    run.orch()
        .args(["budget", "+1M tokens"])
        .run()
        .expect(0)
        .stdout_has("budget raised by 1000000 tokens");
    run.wait(0);
    // The second attempt continued the first one's session.
    let launch: Value = serde_json::from_str(
        &std::fs::read_to_string(run.run_dir().join("tasks/one/2/launch.json")).unwrap(),
    )
    .unwrap();
    let argv: Vec<&str> = launch["argv"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(argv.contains(&"--resume"), "{argv:?}");
}

/// The other way to raise a budget: edit `orch.yaml` and `orch resume`, which says what it took
/// (one raise: a resume again with the same file takes nothing more, and a lower budget is
/// never taken, as the unit tests of `budget::raise_from_config` show).
#[test]
fn a_budget_raised_in_the_config_is_taken_by_resume_once() {
    let up = finished_at_budget("budgetcfg");
    up.orch().args(["down"]).run().expect(0);
    let config = up.p.read("orch.yaml");
    assert!(config.contains("budget: {tokens: 1200}"), "{config}");
    up.p.file(
        "orch.yaml",
        &config.replace("budget: {tokens: 1200}", "budget: {tokens: 5200}"),
    );
    up.resume().stdout_has("budget raised by 4000 tokens from");
    up.wait(0);
    let status = up.status();
    assert_eq!(status["budget"]["limit"]["tokens"], 5200, "{status:#}");
    assert_eq!(status["budget"]["used_tokens"], 6 * 700, "{status:#}");
    let raised = up
        .journal_events()
        .iter()
        .filter(|e| e["event"] == "budget_raised")
        .count();
    assert_eq!(raised, 1, "{}", up.journal());
}
