//! Paths that cannot break the contract, end to end: every class of bad path is refused by
//! `orch validate` and `orch up --plan` with both holders and both paths named, and the odd paths that are fine
//! (spaces, non-ASCII, glob characters) reach a `kind: command` agent exactly as planned and
//! make a clean run.

use crate::support;

use serde_json::{Value, json};
use support::Up;

const CONFIG: &str = "agents:\n  mine:\n    kind: command\n    command: [\"./worker.sh\"]\n    sandbox: off\n  judge:\n    kind: scripted\n    sample: true\n\
     roles:\n  planner: judge\n  judge: judge\n  workers: [mine]\n\
     limits:\n  retries: 0\n  task_timeout: 60s\n";

fn task(id: &str, files: &[&str]) -> Value {
    json!({"id": id, "agent": "mine", "task": "write your files", "files": files})
}

/// `orch validate` on `plan`: exit 1, and every needle in its output.
fn refused(up: &Up, plan: Value, needles: &[&str]) {
    up.p.file("plan.json", &plan.to_string());
    let run = up.orch().args(["validate", "plan.json"]).run().expect(1);
    let out = run.stdout();
    for needle in needles {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // One line per problem: a control character never splits a message.
    assert!(out.contains("1 problem(s)"), "{out}");
    // `orch up --plan` refuses it the same way, before any run starts.
    let run = up.up(&["go", "--plan", "plan.json"], None).expect(1);
    let err = run.stderr();
    for needle in needles {
        assert!(
            err.contains(needle),
            "orch up: missing {needle:?} in:\n{err}"
        );
    }
    assert!(!up.p.path(".orch/runs").exists(), "a run started");
}

#[test]
fn each_class_of_bad_path_is_refused_naming_both_sides() {
    let up = Up::new("bad-paths", CONFIG);
    for (c, shown) in [
        ("\n", "U+000A"),
        ("\r", "U+000D"),
        ("\t", "U+0009"),
        ("\u{0}", "U+0000"),
        ("\u{1b}", "U+001B"),
        ("\u{85}", "U+0085"),
    ] {
        let bad = format!("a{c}b.py");
        refused(
            &up,
            json!({"tasks": [task("t", &[&bad])]}),
            &["task t: file", shown, "control character"],
        );
        refused(
            &up,
            json!({"specs": [{"file": bad}], "tasks": [task("t", &["ok.py"])]}),
            &["spec file", shown],
        );
    }
    refused(
        &up,
        json!({"tasks": [task("one", &["src/Main.py"]), task("two", &["src/main.py"])]}),
        &[
            "task one's `src/Main.py` and task two's `src/main.py`",
            "letter case",
        ],
    );
    refused(
        &up,
        json!({"tasks": [task("one", &["caf\u{e9}.py"]), task("two", &["cafe\u{301}.py"])]}),
        &[
            "task one's `caf\u{e9}.py` and task two's `cafe\u{301}.py`",
            "Unicode normalization",
        ],
    );
    refused(
        &up,
        json!({"tasks": [task("one", &["a/b"]), task("two", &["a/b/c"])]}),
        &[
            "task one's `a/b` and task two's `a/b/c`",
            "both a file and the directory",
        ],
    );
    refused(
        &up,
        json!({"specs": [{"file": "specs/api"}], "tasks": [task("two", &["specs/api/x.md"])]}),
        &["spec `specs/api` and task two's `specs/api/x.md`"],
    );
}

/// Writes every file of `$ORCH_FILES` (one per line) and keeps the list as it came.
const WRITER: &str = "#!/bin/sh\nset -e\nprintf '%s' \"$ORCH_FILES\" > \"$ORCH_RUN_DIR/files-$ORCH_TASK_ID\"\n\
    printf '%s\\n' \"$ORCH_FILES\" | while IFS= read -r f; do mkdir -p \"$(dirname \"$f\")\"; echo \"written by $ORCH_TASK_ID\" > \"$f\"; done\n";

#[test]
fn odd_but_valid_paths_reach_the_agent_exactly_and_run_clean() {
    let up = Up::new("odd-paths", CONFIG);
    up.p.script("worker.sh", WRITER);
    let odd: [&[&str]; 3] = [
        &["my dir/a file.py", "tests/my dir_test.py"],
        &["ünïcødé/日本語.py", "tests/ünï_test.py"],
        &["[a]*?.py", "tests/[a]*?_test.py"],
    ];
    let tasks: Vec<Value> = odd
        .iter()
        .enumerate()
        .map(|(i, files)| task(&format!("t{i}"), files))
        .collect();
    let plan = json!({ "tasks": tasks });
    up.p.file("plan.json", &plan.to_string());
    up.orch()
        .args(["validate", "plan.json"])
        .run()
        .expect(0)
        .stdout_has("valid");
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(0);
    let status = up.status();
    assert_eq!(
        status["violations"].as_array().map(Vec::len),
        Some(0),
        "{status:#}"
    );
    let run_dir = std::fs::read_dir(up.p.path(".orch/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for (i, files) in odd.iter().enumerate() {
        let id = format!("t{i}");
        let got = std::fs::read_to_string(run_dir.join(format!("files-{id}"))).unwrap();
        assert_eq!(got, files.join("\n"), "task {id} was handed other paths");
        for f in *files {
            assert_eq!(up.p.read(f), format!("written by {id}\n"));
        }
        assert_eq!(Up::task(&status, &id)["state"], "done", "{status:#}");
    }
}

/// A planner that answers with a path holding a newline, and two paths one file on macOS:
/// refused, and its next attempt is told why.
#[test]
fn a_planners_bad_paths_are_refused_and_it_is_told_why() {
    let up = Up::new(
        "planner-paths",
        "agents:\n  mine:\n    kind: command\n    command: [\"./planner.sh\"]\n\
         roles:\n  planner: mine\n  judge: mine\n  workers: [mine]\nlimits:\n  planner_retries: 1\n",
    );
    up.p.script(
        "planner.sh",
        "#!/bin/sh\nprintf '%s\\n' '{\"tasks\": [{\"id\": \"x\", \"agent\": \"mine\", \"task\": \"t\", \
         \"files\": [\"a\\nb.py\", \"Src/A.py\"]}, {\"id\": \"y\", \"agent\": \"mine\", \"task\": \"t\", \
         \"files\": [\"src/a.py\"]}]}'\n",
    );
    let run = up.orch().args(["plan", "anything"]).run().expect(1);
    let err = run.stderr();
    assert!(err.contains("no valid plan after 2 attempt(s)"), "{err}");
    let dir = std::fs::read_dir(up.p.path(".orch/plans"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let second = std::fs::read_to_string(dir.join("planner/2/prompt.md")).unwrap();
    assert!(second.contains("U+000A (a newline)"), "{second}");
    assert!(
        second.contains("task x's `Src/A.py` and task y's `src/a.py`"),
        "{second}"
    );
}
