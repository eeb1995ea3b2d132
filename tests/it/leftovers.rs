//! Nothing outlives its task unseen: a `kind: command` worker starts a `setsid` child that
//! appends to a file it does not own, a `nohup` child and a TERM-ignoring child, then exits 0.
//! Under `limits.leftovers: stop` (the default) they are journaled and stopped (in a sandbox
//! they end with the box, which says what it held); under `keep` they run on, listed in
//! `orch status` and the report, and what they write after their task ended is blamed on it.
//! An agent stopped for its timeout has what escaped its process group stopped with it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{Options, Up};
use serde_json::Value;

/// Task `a` leaves three processes behind (one ignores TERM and hangups), each writing its pid (as the worker's own
/// namespace sees it) to `counts/`; the `setsid` one appends to `stray.txt`, and once task `b`
/// (after `a`) started writes `late.txt`. `b` waits for the test when asked (`counts/b-waits`),
/// so that the engine is still watching when `late.txt` comes.
const WORKER: &str = r#"#!/bin/sh
id="$ORCH_TASK_ID"
mkdir -p counts
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$id done" > "$f"; done
if [ "$id" = a ]; then
  setsid sh -c 'echo $$ > counts/setsid; while :; do echo x >> stray.txt; [ -e counts/b-started ] && [ ! -e late.txt ] && echo late > late.txt; sleep 0.2; done' &
  nohup sh -c 'echo $$ > counts/nohup; while :; do sleep 0.2; done' > /dev/null 2>&1 &
  sh -c "trap '' TERM HUP; echo \$\$ > counts/deaf; while :; do sleep 0.2; done" &
  while [ ! -s counts/setsid ] || [ ! -s counts/nohup ] || [ ! -s counts/deaf ]; do sleep 0.02; done
fi
if [ "$id" = b ]; then
  touch counts/b-started
  if [ -e counts/b-waits ]; then
    while [ ! -e counts/release-b ]; do sleep 0.05; done
  fi
fi
echo "task $id finished"
"#;

const PLAN: &str = r#"{"specs": [{"file": "specs/s.md"}],
 "tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"], "depends_on": ["a"]}
 ]}"#;

fn options(name: &str, sandbox: &str, leftovers: &str) -> Options {
    Options::new(name)
        .worker(WORKER)
        .agent(&format!("sandbox: {sandbox}"))
        .worker_plans()
        .limit("task_timeout: 600s")
        .limit(&format!("leftovers: {leftovers}"))
        .plan(PLAN)
        .file("specs/s.md", "# the spec\n")
        .ignore("counts/\nplan.json\nworker.sh\norch.yaml\n")
}

fn project(name: &str, sandbox: &str, leftovers: &str) -> Up {
    options(name, sandbox, leftovers).start()
}

/// A run under `leftovers: keep` in which `b` waits to be let go, started; what `a` leaves is
/// stopped however the test ends.
fn kept(name: &str) -> (Up, Cleanup) {
    // `stray.txt` would fail `a`'s ownership gate, and `b` would never start.
    let project = options(name, "off", "keep")
        .ignore("stray.txt\n")
        .file("counts/b-waits", "")
        .start();
    project.start();
    let cleanup = Cleanup(project.run_dir());
    (project, cleanup)
}

/// Stops whatever `a` left, however the test ends.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let attempt = self.0.join("tasks/a/1");
        orch::agent_process::leftovers::stop(&self.0, &attempt, Duration::from_millis(200));
    }
}

/// The pids `a`'s leftovers wrote (meaningful out here only without a sandbox).
fn pids(project: &Up) -> Vec<i32> {
    ["setsid", "nohup", "deaf"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(project.p.path(&format!("counts/{f}")))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect()
}

fn leftover_events(project: &Up) -> Vec<Value> {
    project
        .journal()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "leftovers")
        .collect()
}

/// Runs until the run ended (whatever its outcome: `stray.txt` is a violation of `a`'s).
fn run_to_end(project: &Up) {
    project.start();
    project.wait_for_end();
}

fn none_left(project: &Up, run_dir: &Path) {
    let attempt = run_dir.join("tasks/a/1");
    project.wait_until("a's leftovers to be gone", || {
        orch::agent_process::leftovers::find(run_dir, &attempt).is_empty()
    });
}

#[test]
fn leftovers_are_journaled_and_stopped_without_a_sandbox() {
    let project = project("leftovers-stop", "off", "stop");
    run_to_end(&project);
    let run_dir = project.run_dir();
    let _cleanup = Cleanup(run_dir.clone());
    let pids = pids(&project);
    project.wait_until("a's leftovers to be stopped", || {
        !pids
            .iter()
            .any(|&p| orch::agent_process::leftovers::alive(p))
    });
    none_left(&project, &run_dir);
    let events = leftover_events(&project);
    assert_eq!(events.len(), 1, "{events:#?}\n{}", project.diagnostics());
    let event = &events[0];
    assert_eq!(event["task"], "a");
    assert_eq!(event["attempt_dir"], "tasks/a/1");
    assert_eq!(event["kept"], false);
    assert!(event["count"].as_u64().unwrap() >= 3, "{event}");
    let listed: Vec<i64> = event["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_i64().unwrap())
        .collect();
    for pid in &pids {
        assert!(listed.contains(&i64::from(*pid)), "{pid} not in {event}");
    }
    let commands = event["processes"].to_string();
    assert!(commands.contains("trap"), "{commands}");
    assert!(commands.contains("stray.txt"), "{commands}");
    // Stopped ones are said so in the status, as stopped.
    let text = project.orch().args(["status"]).run().expect(0).stdout();
    assert!(text.contains("LEFT RUNNING BY AGENTS"), "{text}");
    assert!(text.contains("stopped"), "{text}");
}

#[test]
fn leftovers_die_with_the_sandbox() {
    if let Err(why) = orch::sandbox::availability() {
        eprintln!("skipped leftovers_die_with_the_sandbox: {why}");
        return;
    }
    let project = project("leftovers-box", "bwrap", "stop");
    run_to_end(&project);
    let run_dir = project.run_dir();
    let _cleanup = Cleanup(run_dir.clone());
    none_left(&project, &run_dir);
    // The box's pid namespace ended with its first process, and what it held with it: said
    // in the journal, by what the box saw of them (their pids are the box's own).
    let events = leftover_events(&project);
    assert_eq!(events.len(), 1, "{events:#?}\n{}", project.diagnostics());
    let event = &events[0];
    assert_eq!(event["task"], "a");
    assert_eq!(event["in_box"], true);
    assert_eq!(event["kept"], false);
    assert!(event["count"].as_u64().unwrap() >= 3, "{event}");
    let commands = event["processes"].to_string();
    assert!(commands.contains("trap"), "{commands}");
    assert!(commands.contains("stray.txt"), "{commands}");
    let text = project.orch().args(["status"]).run().expect(0).stdout();
    assert!(text.contains("ended with its sandbox"), "{text}");
}

#[test]
fn kept_leftovers_are_listed_and_their_late_writes_blamed_on_their_task() {
    let (project, _cleanup) = kept("leftovers-keep");
    // `late.txt`, written after `a` ended (while `b` runs), names `a`.
    let late = || {
        project
            .journal()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["event"] == "violation" && e["path"] == "late.txt")
    };
    project.wait_until("the violation on late.txt", || late().is_some());
    let late = late().unwrap();
    let suspects = late["suspects"].as_array().unwrap();
    assert!(suspects.contains(&Value::from("a")), "{late}");
    let a_ended = Up::task(&project.status(), "a")["ended_at_ms"].clone();
    assert!(
        late["t"].as_u64() > a_ended.as_u64(),
        "{late} after {a_ended}"
    );
    let pids = pids(&project);
    assert!(
        pids.iter()
            .all(|&p| orch::agent_process::leftovers::alive(p)),
        "kept: {pids:?}\n{}",
        project.diagnostics()
    );
    let events = leftover_events(&project);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["kept"], true);
    // Listed in the status, each still running...
    let status = project.status();
    let listed = status["leftovers"].to_string();
    for pid in &pids {
        assert!(listed.contains(&format!("\"pid\":{pid}")), "{listed}");
    }
    let text = project.orch().args(["status"]).run().expect(0).stdout();
    assert!(text.contains("kept running"), "{text}");
    assert!(text.contains("(still running)"), "{text}");
    // ...and in the report.
    std::fs::write(project.p.path("counts/release-b"), "").unwrap();
    project.wait_for_end();
    let report = project.run_file("report.md");
    assert!(report.contains("## Left running by agents"), "{report}");
    assert!(report.contains("kept running"), "{report}");
}

#[test]
fn kept_leftovers_outlive_a_resume_and_down_stops_them() {
    let (project, _cleanup) = kept("leftovers-resume");
    project.wait_until("b to start after a's leftovers were kept", || {
        project.p.path("counts/b-started").exists() && !leftover_events(&project).is_empty()
    });
    let pids = pids(&project);
    project.kill_engine();
    project.wait_for_engine_gone();
    project.resume();
    // The run's end comes after the new engine stopped what nobody continues.
    std::fs::write(project.p.path("counts/release-b"), "").unwrap();
    project.wait_for_end();
    assert!(
        project.event_names().iter().any(|e| e == "run_resumed"),
        "{}",
        project.diagnostics()
    );
    assert!(
        pids.iter()
            .all(|&p| orch::agent_process::leftovers::alive(p)),
        "kept through the resume: {pids:?}\n{}",
        project.diagnostics()
    );
    project.orch().args(["down"]).run().expect(0);
    project.wait_until("down to stop the leftovers", || {
        !pids
            .iter()
            .any(|&p| orch::agent_process::leftovers::alive(p))
    });
}

#[test]
fn an_agent_stopped_for_its_timeout_has_what_escaped_its_group_stopped_too() {
    // Quiet: a session of its own that sleeps, then the agent waits forever, silent.
    let project = options("leftovers-timeout", "off", "stop")
        .script(
            "worker.sh",
            "#!/bin/sh\nmkdir -p counts\nsetsid sh -c 'echo $$ > counts/setsid; exec sleep 1000' &\n\
             while [ ! -s counts/setsid ]; do sleep 0.02; done\nexec sleep 1000\n",
        )
        .limit("task_timeout: 2s")
        .start();
    run_to_end(&project);
    let run_dir = project.run_dir();
    let _cleanup = Cleanup(run_dir.clone());
    let pid: i32 = std::fs::read_to_string(project.p.path("counts/setsid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    project.wait_until("the escaped sleeper to be stopped", || {
        !orch::agent_process::leftovers::alive(pid)
    });
    let events = leftover_events(&project);
    assert_eq!(events.len(), 1, "{events:#?}\n{}", project.diagnostics());
    assert_eq!(events[0]["task"], "a");
    // The agent itself, in its pane's group, is stopped with the pane: not a leftover.
    let listed = events[0]["processes"].to_string();
    assert!(listed.contains(&format!("\"pid\":{pid}")), "{listed}");
    assert_eq!(events[0]["count"], 1, "{listed}");
}
