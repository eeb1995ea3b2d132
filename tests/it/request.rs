//! `orch up -f FILE`, `orch up -`, `orch plan -f FILE` and `orch plan -`: a request of any
//! size, from a file or standard input, reaches the run byte for byte and runs nothing.

use crate::support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;

use support::{SCRIPTED, TestProject, Up};

/// A 1 MiB request full of what a shell or a format string would act on.
fn hostile_request() -> String {
    let piece = "Build it \"now\" and 'then' $(touch pwned-dollar) `touch pwned-tick` \
                 ${HOME} %s %n {} \\ \\n \r\n\ttabs, ünïcødé ✓, <!-- -->\n\n";
    let mut request = String::new();
    while request.len() < 1024 * 1024 {
        request.push_str(piece);
    }
    request
}

fn latest_run(p: &TestProject) -> PathBuf {
    let id = std::fs::read_dir(p.path(".orch/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .max()
        .unwrap();
    p.path(&format!(".orch/runs/{id}"))
}

fn assert_nothing_ran(p: &TestProject) {
    for stray in ["pwned-dollar", "pwned-tick"] {
        assert!(!p.path(stray).exists(), "the request ran `touch {stray}`");
    }
}

fn assert_reached_the_run(up: &Up, request: &str) {
    let run = latest_run(&up.p);
    let saved = std::fs::read(run.join("request.txt")).unwrap();
    assert!(
        saved == request.as_bytes(),
        "request.txt differs from the request"
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert!(
        info["request"].as_str() == Some(request),
        "run.json differs"
    );
    let prompt = std::fs::read_to_string(run.join("planner/1/prompt.md")).unwrap();
    assert!(
        prompt.contains(&format!("text\n{request}\n")),
        "the planner's prompt lacks the request, byte for byte"
    );
    assert_nothing_ran(&up.p);
}

#[test]
fn up_takes_the_request_from_a_file_and_from_stdin() {
    let up = Up::new("reqfile", SCRIPTED);
    let request = hostile_request();
    up.p.file("request.md", &request);
    up.orch()
        .args(["up", "-f", "request.md", "--detach"])
        .run()
        .expect(0);
    up.wait(0);
    assert_reached_the_run(&up, &request);

    // From standard input, with `-`.
    let second = format!("{request}and a second run\n");
    let mut orch = up.orch().args(["up", "-", "--detach"]).cmd;
    orch.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = orch.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(second.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    up.wait(0);
    assert_reached_the_run(&up, &second);
}

#[test]
fn a_request_with_nul_or_not_utf8_is_refused_and_both_ways_at_once_too() {
    let up = Up::new("reqbad", SCRIPTED);
    std::fs::write(up.p.path("nul.txt"), b"build\0it").unwrap();
    up.orch()
        .args(["up", "-f", "nul.txt", "--detach"])
        .run()
        .expect(2)
        .stderr_has("holds a NUL byte (at byte 5)");
    std::fs::write(up.p.path("latin1.txt"), b"caf\xe9").unwrap();
    up.orch()
        .args(["plan", "-f", "latin1.txt"])
        .run()
        .expect(2)
        .stderr_has("is not UTF-8 text (the first bad byte is at byte 3)");
    up.orch()
        .args(["up", "x", "-f", "nul.txt"])
        .run()
        .expect(2)
        .stderr_has("cannot be used with");
    up.orch()
        .args(["up", "-f", "missing.txt"])
        .run()
        .expect(2)
        .stderr_has("cannot read the request from");
    assert!(
        !up.p.path(".orch/runs").exists(),
        "a refused request started a run"
    );
}

#[test]
fn plan_takes_the_request_from_a_file_and_from_stdin() {
    let p = TestProject::new();
    p.file("orch.yaml", SCRIPTED);
    p.file(".gitignore", ".orch/\n");
    let request = hostile_request();
    p.file("request.md", &request);
    p.orch()
        .args(["plan", "-f", "request.md"])
        .run()
        .expect(0)
        .stdout_has("next: orch up --plan");
    let saved: Vec<Vec<u8>> = std::fs::read_dir(p.path(".orch/plans"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path().join("request.txt")).unwrap())
        .collect();
    assert_eq!(saved.len(), 1);
    assert!(saved[0] == request.as_bytes(), "request.txt differs");

    let mut orch = p.orch().args(["plan", "-"]).cmd;
    orch.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = orch.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"From stdin: $(touch pwned-dollar)\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved: Vec<Vec<u8>> = std::fs::read_dir(p.path(".orch/plans"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path().join("request.txt")).unwrap())
        .collect();
    assert!(
        saved
            .iter()
            .any(|s| s == b"From stdin: $(touch pwned-dollar)\n")
    );
    assert_nothing_ran(&p);
}
