//! `orch merge` and `orch discard` on a run the engine made on its branch (needs the core lane).

use std::path::Path;
use std::process::Command;

use crate::support::{Options, Up};

const PLAN: &str = r#"{"specs": [{"file": "specs/s.md"}],
 "tasks": [
  {"id": "t1", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "t2", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"], "depends_on": ["t1"]}
 ]}"#;

const WORKER: &str = r#"#!/bin/sh
id="$ORCH_TASK_ID"
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$id wrote $f" > "$f"; done
echo "task $id finished"
"#;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=u", "-c", "user.email=u@u"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_real_worktree_run_merges_with_the_users_changes_kept() {
    let up: Up = Options::new("review-e2e")
        .worker(WORKER)
        .ignore(".orch/\nplan.json\n")
        .file("specs/s.md", "# the spec\n")
        .file("tracked.txt", "tracked\n")
        .plan(PLAN)
        .request("Build a and b")
        .committed()
        .start();
    up.p.file("tracked.txt", "tracked, changed by the user\n");
    up.p.file("untracked.txt", "mine\n");
    let root = up.p.root();
    up.start();
    up.wait(0);
    git(
        &root,
        &["commit", "-q", "--allow-empty", "-m", "the user's own"],
    );
    let out = up.orch().args(["merge"]).run();
    eprintln!("{}\n{}", out.stdout(), out.stderr());
    let out = out.expect(0).stdout_has("replayed");
    drop(out);
    assert_eq!(up.p.read("a.txt"), "t1 wrote a.txt\n");
    assert_eq!(up.p.read("b.txt"), "t2 wrote b.txt\n");
    assert_eq!(up.p.read("tracked.txt"), "tracked, changed by the user\n");
    let status = git(&root, &["status", "--porcelain"]);
    assert_eq!(status, "M tracked.txt\n?? untracked.txt", "{status}");
    let out = up.orch().args(["runs"]).run().expect(0);
    eprintln!("{}", out.stdout());
    assert!(out.stdout().contains("merged into"), "{}", out.stdout());
    // The report and the status say where the work went.
    let report = up.orch().args(["report"]).run().expect(0).stdout();
    assert!(report.contains("merged into `"), "{report}");
    let status = up.orch().args(["status"]).run().expect(0).stdout();
    assert!(status.contains("): merged into "), "{status}");
    let out = up
        .orch()
        .args(["diff", "t1", "--", "--stat"])
        .run()
        .expect(0);
    eprintln!("{}", out.stdout());
    let out = up.orch().args(["discard"]).run().expect(0);
    eprintln!("{}", out.stdout());
    assert!(!up.work_dir().exists());
    let report = up
        .orch()
        .args(["report", "--json"])
        .run()
        .expect(0)
        .stdout();
    assert!(report.contains("\"discarded\""), "{report}");
    eprintln!("{}", git(&root, &["log", "--oneline", "--stat", "-5"]));
}
