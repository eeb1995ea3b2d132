//! Bounded output: a worker printing megabytes leaves one capped log (its beginning, a marker,
//! its end); a worker creating thousands of files it does not own leaves journal lines and an
//! `orch status` of bounded size, names itself as the suspect, and the full list in a file.

use crate::support;

use support::Up;

fn config(worker: &str, cap: &str) -> String {
    format!(
        "agents:\n  mine:\n    kind: command\n    command: [\"./{worker}\"]\n  judge:\n    \
         kind: scripted\n    sample: true\nroles:\n  planner: judge\n  judge: judge\n  \
         workers: [mine]\nlimits:\n  retries: 0\n  output_cap: {cap}\n"
    )
}

const PLAN: &str = r#"{"tasks": [{"id": "w", "agent": "mine", "task": "write w.txt", "files": ["tests/w_test.txt", "w.txt"]}]}"#;

#[test]
fn a_worker_printing_20_mb_leaves_one_capped_log_with_its_beginning_and_end() {
    let up = Up::new("loud", &config("loud.sh", "64KB"));
    up.p.script(
        "loud.sh",
        "#!/bin/sh\necho FIRST-LINE\necho on-stderr >&2\n\
         head -c 20000000 /dev/zero | tr '\\0' x\necho\n\
         mkdir -p tests && echo ok > tests/w_test.txt && echo done > w.txt\necho LAST-LINE\n",
    );
    up.p.file("plan.json", PLAN);
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(0);
    let attempt = up.run_dir().join("tasks/w/1");
    let log = std::fs::read(attempt.join("output.log")).unwrap();
    assert!(
        log.len() <= 64 * 1024 + 300,
        "output.log holds {} bytes",
        log.len()
    );
    let text = String::from_utf8_lossy(&log);
    // stdout and stderr come through two pipes read by two threads: their order is not
    // certain, only that both are in the kept beginning.
    let beginning = &text[..text.len().min(32 * 1024)];
    assert!(
        (text.starts_with("FIRST-LINE\n") || text.starts_with("on-stderr\nFIRST-LINE\n"))
            && beginning.contains("on-stderr\n")
            && beginning.contains("xxx"),
        "{}",
        &text[..100]
    );
    assert!(
        text.ends_with("xxx\nLAST-LINE\n"),
        "{}",
        &text[text.len() - 100..]
    );
    let cut = 20_000_000 + "FIRST-LINE\non-stderr\n\nLAST-LINE\n".len() - 64 * 1024;
    assert!(
        text.contains(&format!(
            "\n[orch: {cut} bytes of output cut here; this log keeps the first 32768 and the \
             last 32768 bytes of the attempt (limits.output_cap: 65536)]\n"
        )),
        "no marker in the middle of {}",
        &text[32700..33100.min(text.len())]
    );
    // One copy: a worker's plain stdout is not kept a second time.
    assert!(!attempt.join("stdout.log").exists());
    // `orch logs` shows it, marker included.
    up.orch()
        .args(["logs", "w"])
        .run()
        .expect(0)
        .stdout_has("bytes of output cut here")
        .stdout_has("LAST-LINE");
}

#[test]
fn a_flood_of_stray_files_is_summarized_and_blamed_on_the_only_writer() {
    let up = Up::new("flood", &config("flood.sh", "1MB"));
    up.p.script(
        "flood.sh",
        "#!/bin/sh\nmkdir -p tests gen/a gen/b && echo ok > tests/w_test.txt && echo done > w.txt\n\
         i=0\nwhile [ $i -lt 3000 ]; do : > gen/a/f$i; : > gen/b/f$i; i=$((i+1)); done\n",
    );
    up.p.file("plan.json", PLAN);
    up.up(&["go", "--plan", "plan.json"], None).expect(0);
    up.wait(1);
    let dir = up.run_dir();
    let journal = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let longest = journal.lines().map(str::len).max().unwrap();
    assert!(longest < 4096, "a journal line of {longest} bytes");
    let status = up.status();
    let violations = status["violations"].as_array().unwrap();
    // A file may be recorded twice (created, then written).
    let paths: std::collections::BTreeSet<&str> = violations
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 6000);
    for v in violations {
        assert_eq!(v["suspects"], serde_json::json!(["w"]), "{v:#}");
    }
    // The task failed its ownership gate, which says it in a few words, the rest in a file.
    let w = Up::task(&status, "w");
    let reason = w["reason"].as_str().unwrap_or_default();
    let counted: usize = reason
        .split("changed files it does not own: ")
        .nth(1)
        .and_then(|r| r.split(" files: gen/").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {w:#}"));
    assert!(reason.contains("; first: gen/"), "{w:#}");
    assert!(reason.len() < 1024, "{w:#}");
    let list = std::fs::read_to_string(dir.join("gates/w-1-ownership.txt")).unwrap();
    assert_eq!(list.lines().count(), counted);
    assert!(list.contains("gen/b/f0 (created)"));
    // `orch status` lists the first few and counts the rest.
    let text = up.orch().args(["status"]).run().expect(0).stdout();
    assert!(
        text.len() < 8 * 1024,
        "orch status printed {} bytes",
        text.len()
    );
    // And so does the report.
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.len() < 16 * 1024,
        "report.md holds {} bytes",
        report.len()
    );
    // The directories come most files first: gen/a and gen/b have as many files, but a file
    // recorded twice (created, then written) counts twice, so either may come first.
    let n = violations.len();
    assert!(
        text.contains(&format!(
            "{n} violations in all ({n} by w): {n} files: gen/"
        )),
        "{text}"
    );
}
