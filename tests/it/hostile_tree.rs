//! Hostile agents against the project's tree, end to end with `kind: command` agents: writes
//! into `.git/` (hooks, config, attributes, refs) are violations that fail the run, reverted
//! under `revert`, and nothing planted there ever runs in orch's own git; a task's file made
//! into a symlink out of the project is a violation, and orch never reads, copies or writes
//! through it.

use crate::support;

use std::path::Path;

use serde_json::Value;
use support::{Options, Up};

const ONE_TASK: &str = r#"{"tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "src/a.txt"]}
]}"#;

/// A committed project (so that refs and HEAD exist and orch's git has history to read) with
/// one task `a` done by `worker` under the ownership policy `policy`. The worker runs outside
/// orch's sandbox: these tests check orch's own detection, the net under every agent where no
/// sandbox confines it (`sandbox: off`, or no bubblewrap). In place: the agent works in the
/// project's own work tree and its `.git/` (tests/it/worktree.rs has the runs on a branch).
fn options(name: &str, policy: &str, worker: &str) -> Options {
    Options::new(name)
        .worker(worker)
        .agent("sandbox: off")
        .on_violation(policy)
        .plan(ONE_TASK)
        .committed()
        .yaml("workspace: in-place\n")
}

fn setup(name: &str, policy: &str, worker: &str) -> Up {
    options(name, policy, worker).start()
}

fn violations(status: &Value) -> Vec<(String, String, String)> {
    status["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["path"].as_str().unwrap().to_string(),
                v["change"].as_str().unwrap().to_string(),
                v["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A worker that does its task, runs the git commands an agent may (status, diff, add), and
/// plants, each leaving a marker in `markers` if it ever runs: hooks, fsmonitor, a clean and
/// smudge filter (chosen by `.git/info/attributes` and by `.gitattributes`), a textconv
/// driver, `diff.external`; and moves a branch.
fn planting_worker(markers: &Path) -> String {
    let m = markers.display();
    format!(
        "#!/bin/sh\nset -e\nmkdir -p tests src\necho ok > tests/a_test.txt\necho a > src/a.txt\n\
         git status >/dev/null\ngit diff >/dev/null\ngit add src/a.txt\n\
         # orch may revert a planted file before the next line: go on regardless.\nset +e\n\
         printf '#!/bin/sh\\ntouch {m}/hook-$(basename $0)\\n' > .git/hooks/pre-commit\n\
         chmod +x .git/hooks/pre-commit\ncp .git/hooks/pre-commit .git/hooks/post-index-change\n\
         cat >> .git/config <<'EOF'\n[core]\n\tfsmonitor = \"touch {m}/fsmonitor; false\"\n\
         [filter \"evil\"]\n\tclean = \"touch {m}/clean; cat\"\n\tsmudge = \"touch {m}/smudge; cat\"\n\
         [diff \"evil\"]\n\ttextconv = \"touch {m}/textconv; cat\"\n[diff]\n\texternal = \"touch {m}/external\"\nEOF\n\
         mkdir -p .git/info\necho '* filter=evil diff=evil' > .git/info/attributes\n\
         echo 'x' > .git/refs/heads/planted\n"
    )
}

fn markers_left(markers: &Path) -> Vec<String> {
    std::fs::read_dir(markers)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn writes_into_git_fail_the_run_and_nothing_planted_runs_in_orchs_git() {
    let markers = tempfile::tempdir().unwrap();
    let up = setup("git-warn", "warn", &planting_worker(markers.path()));
    up.run(1);
    let status = up.status();
    let found = violations(&status);
    for path in [
        ".git/config",
        ".git/hooks/pre-commit",
        ".git/hooks/post-index-change",
        ".git/info/attributes",
        ".git/refs/heads/planted",
    ] {
        let v = found
            .iter()
            .find(|(p, _, _)| p == path)
            .unwrap_or_else(|| panic!("no violation for {path}: {status:#}"));
        assert!(v.2.contains(".git/ is not the agents'"), "{v:?}");
    }
    assert!(
        !found.iter().any(|(p, _, _)| p == ".git/index"),
        "git status and git add by an agent are not violations: {found:?}"
    );
    assert_eq!(Up::task(&status, "a")["state"], "failed", "{status:#}");
    // Under warn the planted files stay, and orch's own git (the snapshot at the start, the
    // sweep at the end) ran with them in place: nothing of theirs ran.
    assert!(up.p.path(".git/hooks/pre-commit").exists());
    assert_eq!(markers_left(markers.path()), Vec::<String>::new());
}

#[test]
fn writes_into_git_are_saved_then_reverted_under_revert() {
    let markers = tempfile::tempdir().unwrap();
    let up = setup("git-revert", "revert", &planting_worker(markers.path()));
    let config_before = up.p.read(".git/config");
    up.run(1);
    let status = up.status();
    let found = violations(&status);
    let config = found
        .iter()
        .find(|(p, _, _)| p == ".git/config")
        .unwrap_or_else(|| panic!("{status:#}"));
    assert!(config.2.starts_with("reverted;"), "{config:?}");
    assert_eq!(up.p.read(".git/config"), config_before);
    assert!(!up.p.path(".git/hooks/pre-commit").exists());
    assert!(!up.p.path(".git/info/attributes").exists());
    assert!(!up.p.path(".git/refs/heads/planted").exists());
    let saved = found
        .iter()
        .position(|(p, _, _)| p == ".git/hooks/pre-commit")
        .map(|i| {
            status["violations"][i]["saved"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap();
    let hook = std::fs::read_to_string(up.p.path(&saved)).unwrap();
    assert!(hook.contains("touch"), "{hook}");
    assert_eq!(Up::task(&status, "a")["state"], "failed", "{status:#}");
    assert_eq!(status["phase"], "failed");
    assert_eq!(markers_left(markers.path()), Vec::<String>::new());
}

#[test]
fn a_task_file_made_into_a_link_out_is_a_violation_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().canonicalize().unwrap().join("secret.txt");
    std::fs::write(&secret, "outside\n").unwrap();
    // The link is made and written through outside, then moved in: orch's revert of a link
    // made in place can win the race against the write.
    let worker = format!(
        "#!/bin/sh\nset -e\nmkdir -p tests src\necho ok > tests/a_test.txt\n\
         ln -s '{s}' '{s}.link'\necho appended >> '{s}.link'\nmv '{s}.link' src/a.txt\n",
        s = secret.display()
    );
    let up = setup("link-out", "revert", &worker);
    up.run(1);
    let status = up.status();
    let found = violations(&status);
    let shown = secret.display().to_string();
    eprintln!("JOURNAL\n{}", up.diagnostics());
    let v = found
        .iter()
        .find(|(p, _, _)| p == "src/a.txt")
        .unwrap_or_else(|| panic!("{status:#}"));
    assert!(
        v.1.contains("symlink out of the project") && v.1.contains(&shown),
        "{v:?}"
    );
    assert!(
        v.2.contains(&shown) && v.2.contains("leaves it as the agent left it"),
        "{v:?}"
    );
    assert_eq!(Up::task(&status, "a")["state"], "failed", "{status:#}");
    // The outside file is as the agent left it; the link is gone from the project.
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "outside\nappended\n"
    );
    let a = up.p.path("src/a.txt");
    assert!(
        std::fs::symlink_metadata(&a).is_err(),
        "the link is still there"
    );
    // Nothing of the outside file was copied into the run directory.
    let mut stack = vec![up.run_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && path.file_name().is_some_and(|n| n != "events.jsonl") {
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                assert!(
                    !text.contains("outside\nappended"),
                    "{} holds the outside file's content",
                    path.display()
                );
            }
        }
    }
    let report = std::fs::read_to_string(up.run_dir().join("report.md")).unwrap();
    assert!(
        report.contains(&shown),
        "the report does not name {shown}:\n{report}"
    );
}

/// The user's global config names commands too (a git-lfs-like filter, a textconv, an
/// fsmonitor, a hooks directory) and the project's own `.gitattributes` chooses them: orch's
/// git reads no global config and no attributes, so none runs while it snapshots, sweeps,
/// saves and reverts.
#[test]
fn commands_named_by_the_users_config_and_gitattributes_never_run_in_orchs_git() {
    let markers = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let m = markers.path().display();
    let hooks = home.path().join("hooks");
    std::fs::create_dir(&hooks).unwrap();
    for hook in ["post-index-change", "pre-commit"] {
        let path = hooks.join(hook);
        std::fs::write(&path, format!("#!/bin/sh\ntouch {m}/hook-{hook}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        home.path().join(".gitconfig"),
        format!(
            "[core]\n\tfsmonitor = \"touch {m}/fsmonitor; false\"\n\thooksPath = {}\n\
             [filter \"lfsish\"]\n\tclean = \"touch {m}/clean; cat\"\n\tsmudge = \"touch {m}/smudge; cat\"\n\
             [diff \"lfsish\"]\n\ttextconv = \"touch {m}/textconv; cat\"\n",
            hooks.display()
        ),
    )
    .unwrap();
    let worker = "#!/bin/sh\nset -e\nmkdir -p tests src\necho ok > tests/a_test.txt\n\
                  echo a > src/a.txt\necho stray > README.md\n";
    let up = options("global-config", "revert", worker)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .start();
    up.p.file(".gitattributes", "* filter=lfsish diff=lfsish\n");
    up.run(0); // the stray write was reverted: resolved
    let status = up.status();
    let found = violations(&status);
    let readme = found
        .iter()
        .find(|(p, _, _)| p == "README.md")
        .unwrap_or_else(|| panic!("{status:#}"));
    assert_eq!(readme.2, "reverted", "{readme:?}");
    assert_eq!(up.p.read("README.md"), "# the project\n");
    assert_eq!(markers_left(markers.path()), Vec::<String>::new());
}

/// A finished task's file, made into a link out of the project by a later task, is put back
/// from the baseline by replacing the link: orch's revert never writes through it.
#[test]
fn a_revert_to_the_baseline_replaces_a_link_out_and_never_writes_through_it() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().canonicalize().unwrap().join("secret.txt");
    std::fs::write(&secret, "outside\n").unwrap();
    let worker = format!(
        "#!/bin/sh\nset -e\nmkdir -p tests src\necho ok > \"tests/${{ORCH_TASK_ID}}_test.txt\"\n\
         echo \"$ORCH_TASK_ID\" > \"src/$ORCH_TASK_ID.txt\"\n\
         if [ \"$ORCH_TASK_ID\" = b ]; then ln -s '{s}' '{s}.link' && mv '{s}.link' src/a.txt; fi\n",
        s = secret.display()
    );
    let up = options("baseline-link", "revert", &worker)
        .plan(
            r#"{"tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "src/a.txt"]},
  {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "src/b.txt"], "depends_on": ["a"]}
]}"#,
        )
        .start();
    up.run(1);
    let status = up.status();
    let found = violations(&status);
    let v = found
        .iter()
        .find(|(p, _, _)| p == "src/a.txt")
        .unwrap_or_else(|| panic!("{status:#}"));
    assert!(v.2.starts_with("reverted;"), "{v:?}");
    assert_eq!(Up::task(&status, "a")["state"], "done", "{status:#}");
    assert_eq!(Up::task(&status, "b")["state"], "failed", "{status:#}");
    let a = up.p.path("src/a.txt");
    assert!(
        std::fs::symlink_metadata(&a).unwrap().is_file(),
        "still a link"
    );
    assert_eq!(
        up.p.read("src/a.txt"),
        "a\n",
        "not put back from the baseline"
    );
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "outside\n",
        "orch wrote through the link"
    );
}

/// Under `revert`, a violating path that cannot be saved (a FIFO: copying it would block) is
/// left in place and said so; the engine goes on to the run's end.
#[test]
fn what_cannot_be_saved_is_not_reverted_and_the_run_goes_on() {
    let worker = "#!/bin/sh\nset -e\nmkdir -p tests src\necho ok > tests/a_test.txt\n\
                  echo a > src/a.txt\nmkfifo stray.fifo\n";
    let up = setup("fifo", "revert", worker);
    up.run(1);
    let status = up.status();
    let found = violations(&status);
    let v = found
        .iter()
        .find(|(p, _, _)| p == "stray.fifo")
        .unwrap_or_else(|| panic!("{status:#}"));
    assert!(
        v.2.starts_with("not reverted: its content could not be saved first"),
        "{v:?}"
    );
    assert!(up.p.path("stray.fifo").exists());
    assert_eq!(status["phase"], "failed", "{status:#}");
}
