//! The agents' sandbox end to end: `orch up` on a private tmux server with agents of our own
//! (`kind: command` scripts) that try to get out, under a fake HOME so that the real one is
//! never touched. Skipped with a message where bubblewrap cannot work (`.ci/run` installs it).

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Options, Up, wait_until};

/// Whether the sandbox works here; says why not when it does not.
fn sandbox_works(test: &str) -> bool {
    match orch::sandbox::availability() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped {test}: {why}");
            false
        }
    }
}

/// One task `a`, done by a `kind: command` agent `mine` that runs `worker`.
fn one_task(name: &str, worker: &str) -> Options {
    Options::new(name).worker(worker).plan(ONE_TASK)
}

const ONE_TASK: &str = r#"{"tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]}
]}"#;

/// A fake home with a secret key, and another project beside the test's (both in the system's
/// temp dir, where the test's project is: `../<name>` from inside it).
struct Outside {
    _home: tempfile::TempDir,
    _sibling: tempfile::TempDir,
    home: PathBuf,
    sibling: PathBuf,
}

impl Outside {
    fn new() -> Outside {
        let home_dir = tempfile::Builder::new()
            .prefix("orch-sandbox-home-")
            .tempdir()
            .unwrap();
        let home = home_dir.path().canonicalize().unwrap().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(home.join(".ssh/id_rsa"), "SECRET-KEY-MATERIAL\n").unwrap();
        let sibling_dir = tempfile::Builder::new()
            .prefix("orch-sandbox-sibling-")
            .tempdir()
            .unwrap();
        let sibling = sibling_dir.path().canonicalize().unwrap();
        std::fs::write(sibling.join("theirs.txt"), "theirs\n").unwrap();
        Outside {
            _home: home_dir,
            _sibling: sibling_dir,
            home,
            sibling,
        }
    }
}

#[test]
fn a_hostile_agent_cannot_leave_its_box_and_orch_reports_it() {
    if !sandbox_works("a_hostile_agent_cannot_leave_its_box") {
        return;
    }
    let outside = Outside::new();
    let sibling = outside.sibling.file_name().unwrap().to_string_lossy();
    let up = one_task(
        "sandbox-escape",
        &format!(
            "#!/bin/sh\n\
             echo x > ~/pwned && echo ESCAPED-HOME\n\
             rm -rf ../{sibling} && ls ../{sibling} 2>/dev/null && echo ESCAPED-SIBLING\n\
             cat ~/.ssh/id_rsa && echo ESCAPED-SSH\n\
             echo x > /etc/orch-sandbox-x && echo ESCAPED-ETC\n\
             umount ~ 2>/dev/null && echo ESCAPED-UMOUNT\n\
             cat /proc/[0-9]*/root$HOME/.ssh/id_rsa 2>/dev/null && echo ESCAPED-PROC\n\
             ls -d /tmp/tmux-* 2>/dev/null && echo ESCAPED-TMUX\n\
             mkdir -p tests && echo ok > tests/a_test.txt && echo ok > a.txt\n"
        ),
    )
    .env("HOME", &outside.home)
    .start();
    assert_eq!(up.p.root().parent(), outside.sibling.parent());
    up.run(0);

    // Nothing outside changed.
    assert!(!outside.home.join("pwned").exists(), "~/pwned was written");
    assert_eq!(
        std::fs::read_to_string(outside.sibling.join("theirs.txt")).unwrap(),
        "theirs\n",
        "the sibling project was touched"
    );
    assert!(!Path::new("/etc/orch-sandbox-x").exists());
    // The agent wrote its own files, and saw nothing of the secret.
    assert_eq!(up.p.read("a.txt"), "ok\n");
    let attempt = up.attempt("a", 1);
    let output = up.run_file("tasks/a/1/output.log");
    assert!(!output.contains("ESCAPED"), "{output}");
    assert!(!output.contains("SECRET-KEY"), "{output}");

    // orch reports the refused writes: in the exit record, the status and the report.
    let status = up.status();
    let refusals = status["sandbox_refusals"].as_array().unwrap();
    let lines: Vec<&str> = refusals
        .iter()
        .map(|r| r["line"].as_str().unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("pwned")) && lines.iter().any(|l| l.contains("/etc")),
        "{status:#}"
    );
    assert!(refusals.iter().all(|r| r["task"] == "a"), "{status:#}");
    assert!(status["sandbox_off"].is_null(), "{status:#}");
    let exit = std::fs::read_to_string(attempt.join("exit.json")).unwrap();
    assert!(exit.contains("sandbox_refused"), "{exit}");
    let shown = up.orch().args(["status"]).run().expect(0).stdout();
    assert!(shown.contains("REFUSED BY THE SANDBOX"), "{shown}");
    let report = up.orch().args(["report"]).run().expect(0).stdout();
    assert!(report.contains("Refused by the sandbox"), "{report}");
    // The launch spec names the sandbox the agent ran in: the run's box, which it entered.
    let spec = std::fs::read_to_string(attempt.join("launch.json")).unwrap();
    assert!(spec.contains("\"sandbox\""), "{spec}");
    assert!(!output.contains("a box of its own"), "{output}");
    let boxes: Vec<_> = std::fs::read_dir(up.run_dir().join("boxes"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(
        !boxes.is_empty(),
        "the run made no box for its agents to enter"
    );
}

#[test]
fn without_network_the_box_has_only_its_own_loopback() {
    if !sandbox_works("without_network_the_box_has_only_its_own_loopback") {
        return;
    }
    // Interfaces other than lo are listed in /proc/net/dev; none must be there.
    let up = one_task(
        "sandbox-net",
        "#!/bin/sh\nmkdir -p tests\ntail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > tests/a_test.txt\necho ok > a.txt\n",
    )
    .agent("network: off")
    .start();
    up.run(0);
    assert_eq!(up.p.read("tests/a_test.txt"), "lo\n");
}

#[test]
fn down_stops_a_boxed_agent_gracefully_and_leaves_nothing_running() {
    if !sandbox_works("down_stops_a_boxed_agent_gracefully") {
        return;
    }
    // The agent ends its turn cleanly on TERM: the stop reaches it through the box.
    let up = one_task(
        "sandbox-down",
        "#!/bin/sh\ntrap 'echo stopped > term.txt; exit 0' TERM\n\
         mkdir -p tests && echo ok > tests/a_test.txt && touch started\n\
         while :; do sleep 0.1; done\n",
    )
    .start();
    up.start();
    wait_until(
        "the agent to start",
        Duration::from_secs(30),
        || up.p.path("started").exists(),
        || up.diagnostics(),
    );
    let run = up.run_dir();
    // Its box: bwrap, the box's init, the agent and its sleep, all found by their variables.
    assert!(
        orch::agent_process::orphans::find(&run).len() >= 3,
        "{:?}",
        orch::agent_process::orphans::find(&run)
    );
    up.orch()
        .args(["down"])
        .run()
        .expect(0)
        .stdout_has("is down");
    assert_eq!(up.p.read("term.txt"), "stopped\n");
    wait_until(
        "every process of the box to be gone",
        Duration::from_secs(10),
        || orch::agent_process::orphans::find(&run).is_empty(),
        || format!("{:?}", orch::agent_process::orphans::find(&run)),
    );
    assert_eq!(up.status()["phase"], "stopped");
}

/// A PATH with what orch needs and no bubblewrap.
fn path_without_bwrap() -> (tempfile::TempDir, String) {
    let bin = tempfile::tempdir().unwrap();
    for tool in ["tmux", "git", "sh", "mkdir", "cat", "sleep"] {
        let found = which::which(tool).unwrap_or_else(|_| panic!("{tool} is needed"));
        std::os::unix::fs::symlink(found, bin.path().join(tool)).unwrap();
    }
    let path = bin.path().display().to_string();
    (bin, path)
}

#[test]
fn auto_without_bubblewrap_runs_unconfined_and_says_so_once() {
    let (_bin, path) = path_without_bwrap();
    let up = one_task(
        "sandbox-auto",
        "#!/bin/sh\nmkdir -p tests && echo ok > tests/a_test.txt && echo ok > a.txt\n",
    )
    .start();
    up.orch()
        .env("PATH", &path)
        .args(["up", "go", "--plan", "plan.json", "--detach"])
        .run()
        .expect(0)
        .stderr_has("without a sandbox")
        .stderr_has("bubblewrap");
    up.wait(0);
    let status = up.status();
    assert!(
        status["sandbox_off"]
            .as_str()
            .is_some_and(|s| s.contains("not installed")),
        "{status:#}"
    );
    assert_eq!(up.journal().matches("\"event\":\"sandbox_off\"").count(), 1);
    let spec = up.run_file("tasks/a/1/launch.json");
    assert!(!spec.contains("\"sandbox\""), "{spec}");
    let shown = up.orch().args(["status"]).run().expect(0).stdout();
    assert!(shown.contains("NO SANDBOX"), "{shown}");
}

#[test]
fn bwrap_required_and_missing_stops_the_run_before_it_starts() {
    let up = one_task("sandbox-required", "#!/bin/sh\n")
        .agent("sandbox: bwrap")
        .start();
    let (_bin, path) = path_without_bwrap();
    up.orch()
        .env("PATH", &path)
        .args(["up", "go", "--plan", "plan.json", "--detach"])
        .run()
        .expect(2)
        .stderr_has("agent `mine`")
        .stderr_has("sandbox: bwrap")
        .stderr_has("apt-get install bubblewrap");
    assert_eq!(up.run_count(), 0);
    up.orch()
        .env("PATH", &path)
        .args(["doctor"])
        .run()
        .expect(1)
        .stdout_has("sandbox: mine require(s) it");
}

#[test]
fn an_off_agent_runs_unconfined_and_doctor_says_which() {
    let outside = Outside::new();
    let up = one_task(
        "sandbox-off",
        "#!/bin/sh\nmkdir -p tests && echo ok > tests/a_test.txt && cat ~/.ssh/id_rsa > a.txt\n",
    )
    .agent("sandbox: off")
    .env("HOME", &outside.home)
    .start();
    up.run(0);
    // Unconfined, as asked: it could read the key (which is why `off` is a choice to make).
    assert_eq!(up.p.read("a.txt"), "SECRET-KEY-MATERIAL\n");
    if sandbox_works("an_off_agent_runs_unconfined (doctor part)") {
        up.orch()
            .args(["doctor"])
            .run()
            .expect(0)
            .stdout_has("sandbox: off for mine");
    }
}

/// A guarded file of the test repository, or `None` when it does not exist.
fn git_file(up: &Up, rel: &str) -> Option<String> {
    std::fs::read_to_string(up.p.path(&format!(".git/{rel}"))).ok()
}

#[test]
fn a_boxed_agent_cannot_change_git_but_may_add_to_the_index() {
    if !sandbox_works("a_boxed_agent_cannot_change_git") {
        return;
    }
    let outside = Outside::new();
    let up = one_task(
        "sandbox-git",
        "#!/bin/sh\n\
         mkdir -p tests && echo ok > tests/a_test.txt && echo ok > a.txt\n\
         echo 'touch /tmp/evil' > .git/hooks/pre-commit && echo PLANTED-HOOK\n\
         git config core.fsmonitor evil && echo PLANTED-CONFIG\n\
         echo '* filter=evil' >> .git/info/attributes && echo PLANTED-ATTRIBUTES\n\
         mv .git .git-moved && echo MOVED-GIT\n\
         git add a.txt && echo ADDED-A\n\
         git -c user.name=w -c user.email=w@example.com commit -q -m mine && echo COMMITTED\n\
         exit 0\n",
    )
    .env("HOME", &outside.home)
    .start();
    let config_before = git_file(&up, "config").unwrap();
    let head_before = git_file(&up, "HEAD").unwrap();
    // A refused write fails nothing by itself (the agent carried on and ended well): the
    // task did its work, and nothing guarded changed, so the guard has nothing to report.
    up.run(0);

    let output = up.run_file("tasks/a/1/output.log");
    for planted in ["PLANTED", "MOVED-GIT", "COMMITTED"] {
        assert!(!output.contains(planted), "{planted}: {output}");
    }
    // What git add writes (the index, objects) stays writable.
    assert!(output.contains("ADDED-A"), "{output}");
    let staged = std::process::Command::new("git")
        .args(["ls-files", "--stage", "a.txt"])
        .current_dir(up.p.root())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&staged.stdout).contains("a.txt"));

    // The guarded files are as they were; nothing was made; no commit moved a ref.
    assert!(up.p.path(".git").is_dir() && !up.p.path(".git-moved").exists());
    assert_eq!(git_file(&up, "hooks/pre-commit"), None);
    assert_eq!(git_file(&up, "info/attributes"), None);
    assert_eq!(git_file(&up, "config").unwrap(), config_before);
    assert_eq!(git_file(&up, "HEAD").unwrap(), head_before);
    assert_eq!(
        std::fs::read_dir(up.p.path(".git/refs/heads"))
            .unwrap()
            .count(),
        0,
        "a commit moved a ref"
    );
    assert!(!up.p.path(".git/config.lock").exists());

    // Each attempt is reported as refused by the sandbox; none is a violation.
    let status = up.status();
    let lines: Vec<&str> = status["sandbox_refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_str().unwrap())
        .collect();
    for refused in [
        ".git/hooks/pre-commit",
        ".git/config",
        ".git/info/attributes",
        ".git-moved",
        "refs/heads/",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(refused)),
            "{refused} not refused: {lines:#?}\n{output}"
        );
    }
    assert_eq!(status["violations"], serde_json::json!([]), "{status:#}");
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn in_a_linked_worktree_the_common_directory_is_guarded_and_git_add_works() {
    if !sandbox_works("in_a_linked_worktree_the_common_directory_is_guarded") {
        return;
    }
    // Under /tmp, which the box hides: the common directory is only there if bound back.
    let tmp = tempfile::Builder::new()
        .prefix("orch-sandbox-wt-")
        .tempdir()
        .unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let main = root.join("main");
    std::fs::create_dir_all(&main).unwrap();
    git(&main, &["init", "-q"]);
    std::fs::write(main.join("x.txt"), "x\n").unwrap();
    git(&main, &["add", "x.txt"]);
    git(&main, &["commit", "-q", "-m", "x"]);
    git(&main, &["worktree", "add", "-q", "../wt", "-b", "wt"]);
    let wt = root.join("wt");
    let run_dir = root.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let dot_git = std::fs::read_to_string(wt.join(".git")).unwrap();
    let common = main.join(".git");
    let refs_before = std::fs::read_to_string(common.join("worktrees/wt/HEAD")).unwrap();

    let jail = command_jail(&wt, &run_dir);
    let script = format!(
        "echo a > a.txt && git add a.txt && echo ADDED-A\n\
         echo evil > {common}/hooks/pre-commit && echo PLANTED-HOOK\n\
         echo 'gitdir: /tmp/elsewhere' > .git && echo REPLACED-DOT-GIT\n\
         git checkout -q -b other && echo CHECKED-OUT\n\
         echo ref > {common}/worktrees/wt/HEAD && echo MOVED-HEAD\n",
        common = common.display()
    );
    let args = vec!["-c".to_string(), script];
    let agent = orch::sandbox::Agent {
        program: "/bin/sh",
        args: &args,
        base_env: &[],
        env: &[],
        cwd: &wt,
        status_file: &run_dir.join("status.json"),
    };
    let out = orch::sandbox::command_with(
        Path::new(env!("CARGO_BIN_EXE_orch")),
        Some(&jail),
        &agent,
        &[],
    )
    .unwrap()
    .stdin(std::process::Stdio::null())
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("ADDED-A"), "{stdout}\n{stderr}");
    for planted in ["PLANTED", "REPLACED", "CHECKED-OUT", "MOVED-HEAD"] {
        assert!(!stdout.contains(planted), "{planted}: {stdout}\n{stderr}");
    }
    assert!(!common.join("hooks/pre-commit").exists());
    assert_eq!(std::fs::read_to_string(wt.join(".git")).unwrap(), dot_git);
    assert_eq!(
        std::fs::read_to_string(common.join("worktrees/wt/HEAD")).unwrap(),
        refs_before
    );
    let refused = orch::sandbox::refusals(&stderr, 10);
    assert!(
        refused.iter().any(|l| l.contains("hooks/pre-commit")),
        "{refused:#?}\n{stderr}"
    );
    // The file git add wrote to the worktree's own index, outside the project, is there.
    let staged = std::process::Command::new("git")
        .args(["ls-files", "--stage", "a.txt"])
        .current_dir(&wt)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&staged.stdout).contains("a.txt"),
        "{stderr}"
    );
}

/// orch's own state in the project is read-only in the box, and so is the run's record within
/// its directory: an agent cannot delete or move `.orch/` (nor does `git clean -fdx` take it),
/// nor the journal, nor an attempt's logs and records, so `status`, `wait` and `down` find the run.
#[test]
fn a_boxed_agent_cannot_take_orchs_state_away() {
    if !sandbox_works("a_boxed_agent_cannot_take_orchs_state_away") {
        return;
    }
    let outside = Outside::new();
    let up = one_task(
        "sandbox-state",
        "#!/bin/sh\n\
         mkdir -p tests && echo ok > tests/a_test.txt && echo ok > a.txt\n\
         mv .orch .orch-moved && echo MOVED-ORCH\n\
         rm .orch/current && echo REMOVED-CURRENT\n\
         git clean -fdxq .orch && echo CLEANED-ORCH\n\
         rm -rf \"$ORCH_RUN_DIR\" && echo REMOVED-RUN\n\
         mkdir -p \"$ORCH_RUN_DIR/tasks/b/1\" && echo FORGED-OTHER\n\
         exit 0\n",
    )
    .env("HOME", &outside.home)
    .start();
    up.run(0);
    let output = up.run_file("tasks/a/1/output.log");
    for done in [
        "MOVED-ORCH",
        "REMOVED-CURRENT",
        "CLEANED-ORCH",
        "REMOVED-RUN",
        "FORGED-OTHER",
    ] {
        assert!(!output.contains(done), "{done}: {output}");
    }
    assert!(!up.p.path(".orch-moved").exists());
    assert!(up.p.path(".orch/current").exists());
    let status = up.status();
    assert_eq!(status["phase"], "succeeded", "{status:#}");
    assert!(
        status["sandbox_refusals"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{status:#}"
    );
}

/// How an agent ended, through the box: its status as its launcher tells it (bwrap's exit
/// status, and the box's record where that alone would mislead).
#[test]
fn how_an_agent_ended_comes_out_of_the_box_as_it_was() {
    if !sandbox_works("how_an_agent_ended_comes_out_of_the_box_as_it_was") {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("orch-sandbox-end-")
        .tempdir()
        .unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let (project, run_dir) = (root.join("project"), root.join("run"));
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&run_dir).unwrap();
    let jail = orch::sandbox::Jail {
        write: vec![run_dir.clone()],
        ..command_jail(&project, &run_dir)
    };
    let status_file = run_dir.join("status.json");
    for (script, expected) in [
        ("exit 0", (Some(0), None)),
        ("exit 3", (Some(3), None)),
        // Gemini's status on a 401: a status, not the signal 17 it would read as.
        ("exit 145", (Some(145), None)),
        ("kill -TERM $$", (None, Some(libc::SIGTERM))),
        ("kill -KILL $$", (None, Some(libc::SIGKILL))),
    ] {
        let args = vec!["-c".to_string(), script.to_string()];
        let agent = orch::sandbox::Agent {
            program: "/bin/sh",
            args: &args,
            base_env: &[],
            env: &[],
            cwd: &project,
            status_file: &status_file,
        };
        let out = orch::sandbox::command_with(
            Path::new(env!("CARGO_BIN_EXE_orch")),
            Some(&jail),
            &agent,
            &[],
        )
        .unwrap()
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
        assert_eq!(
            orch::sandbox::ended(out.status, &status_file),
            expected,
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A run's agents enter one box that bwrap made once (while the run's engine holds its
/// lock), each in a private copy of it: its own `/tmp`, `/dev/shm` and processes, the box's
/// `/dev` read-only, no capability; how each ended comes out as it was, and what it left
/// running is said. The box goes when the engine lets its lock go. Once with the project
/// under `/tmp` (where the copy's fresh `/tmp` must bring it back) and once elsewhere.
#[test]
fn a_runs_agents_share_one_box_each_in_a_copy_of_its_own() {
    if !sandbox_works("a_runs_agents_share_one_box_each_in_a_copy_of_its_own") {
        return;
    }
    for base in [
        std::env::temp_dir(),
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    ] {
        shared_box_in(&base);
    }
}

fn shared_box_in(base: &Path) {
    std::fs::create_dir_all(base).unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("orch-shared-box-")
        .tempdir_in(base)
        .unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let (project, run_dir) = (root.join("project"), root.join("run"));
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&run_dir).unwrap();
    let engine = hold_engine_lock(&run_dir);
    let jail = orch::sandbox::Jail {
        // A file bound writable, which the test replaces from outside: outside /tmp, where
        // it is bound from is where its mount lies.
        write: vec![root.join("shared.txt")],
        // A file bound back read-only into the agent's hidden home, which the test replaces
        // from outside.
        read: vec![root.join("home/bound.txt")],
        ..command_jail(&project, &run_dir)
    };
    std::fs::create_dir_all(root.join("home")).unwrap();
    std::fs::write(root.join("shared.txt"), "").unwrap();
    std::fs::write(root.join("home/bound.txt"), "as bound\n").unwrap();
    let home = root.join("home").to_string_lossy().into_owned();
    let agent = |n: usize, script: &str| agent_run(&jail, Path::new(&home), n, script, None);

    let (first, log) = agent(
        1,
        "echo mine > /tmp/a && echo mine > /dev/shm/a && echo ok > a.txt && \
         (echo x > /dev/planted) 2>/dev/null && echo PLANTED-DEV; \
         ls /proc | grep -c '^[0-9][0-9]*$'; grep CapEff /proc/self/status",
    );
    assert_eq!((first.code, first.signal), (Some(0), None), "{log}");
    assert!(!log.contains("PLANTED"), "{log}");
    assert!(log.contains("CapEff:\t0000000000000000"), "{log}");
    // The shell, `ls`, `grep` and the box's init: none of the box's holder, nothing else.
    let seen: usize = log
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or(99);
    assert!(seen <= 4, "{log}");
    assert_eq!(
        std::fs::read_to_string(project.join("a.txt")).unwrap(),
        "ok\n"
    );
    let boxes = || -> Vec<PathBuf> {
        std::fs::read_dir(run_dir.join("boxes"))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let made = boxes();
    assert_eq!(made.len(), 1, "{made:?}");
    let record = std::fs::read_to_string(&made[0]).unwrap();

    let (second, log) = agent(
        2,
        "cat /tmp/a /dev/shm/a 2>/dev/null && echo SAW-THE-OTHERS; cat a.txt; sleep 1000 & \
         exit 0",
    );
    assert_eq!((second.code, second.signal), (Some(0), None), "{log}");
    assert!(!log.contains("SAW-THE-OTHERS"), "{log}");
    assert!(log.contains("ok"), "{log}");
    let left = orch::agent_process::leftovers::left_in_box(&run_dir.join("tasks/2/1"));
    assert!(
        left.len() == 1 && left[0].command.contains("sleep"),
        "{left:?}"
    );
    assert_eq!(boxes(), made, "the second agent made a box of its own");
    assert_eq!(std::fs::read_to_string(&made[0]).unwrap(), record);

    for (n, (script, expected)) in [
        ("exit 3", (Some(3), None)),
        ("exit 145", (Some(145), None)),
        ("kill -TERM $$", (None, Some(libc::SIGTERM))),
        ("kill -KILL $$", (None, Some(libc::SIGKILL))),
    ]
    .into_iter()
    .enumerate()
    {
        let (ended, log) = agent(3 + n, script);
        assert_eq!((ended.code, ended.signal), expected, "{script}: {log}");
    }

    let holder_of = |record: &str| -> u64 {
        let holder: serde_json::Value = serde_json::from_str(record).unwrap();
        holder["pid"].as_u64().unwrap()
    };
    let gone = |pid: u64| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    };
    let pid = holder_of(&record);
    assert!(!gone(pid));

    // Replaced from outside (as git replaces HEAD), a file bound into the box is no longer a
    // mount there: the next agent finds out, gets a bwrap of its own (the file read-only in
    // it), and the box is retired, to be made anew by the agent after.
    let bound = root.join("home/bound.txt");
    std::fs::write(root.join("home/bound.new"), "replaced\n").unwrap();
    std::fs::rename(root.join("home/bound.new"), &bound).unwrap();
    let write_bound = format!(
        "(echo x > {}) 2>/dev/null && echo WROTE-THE-BOUND-FILE; exit 0",
        bound.display()
    );
    let (ended, log) = agent(10, &write_bound);
    assert_eq!((ended.code, ended.signal), (Some(0), None), "{log}");
    assert!(log.contains("a box of its own"), "{log}");
    assert!(!log.contains("WROTE"), "{log}");
    wait_until(
        "the box that lost a mount to be retired",
        Duration::from_secs(10),
        || gone(pid) && boxes().is_empty(),
        || format!("the box: {record}; boxes: {:?}; its log: {log}", boxes()),
    );
    let (ended, log) = agent(11, &write_bound);
    assert_eq!((ended.code, ended.signal), (Some(0), None), "{log}");
    assert!(!log.contains("a box of its own"), "{log}");
    assert!(!log.contains("WROTE"), "{log}");
    assert_eq!(std::fs::read_to_string(&bound).unwrap(), "replaced\n");
    let remade = boxes();
    assert_eq!(remade.len(), 1, "{remade:?}");
    let record = std::fs::read_to_string(&remade[0]).unwrap();
    let pid = holder_of(&record);

    // The same for a file bound writable: what the agents write reaches the file that is
    // there now, not the one replaced.
    let shared = root.join("shared.txt");
    std::fs::write(root.join("shared.new"), "").unwrap();
    std::fs::rename(root.join("shared.new"), &shared).unwrap();
    let (ended, log) = agent(12, &format!("echo from-12 >> {}", shared.display()));
    assert_eq!((ended.code, ended.signal), (Some(0), None), "{log}");
    assert!(log.contains("a box of its own"), "{log}");
    wait_until(
        "the box that lost a mount to be retired",
        Duration::from_secs(10),
        || gone(pid) && boxes().is_empty(),
        || format!("the box: {record}; boxes: {:?}; its log: {log}", boxes()),
    );
    let (ended, log) = agent(13, &format!("echo from-13 >> {}", shared.display()));
    assert_eq!((ended.code, ended.signal), (Some(0), None), "{log}");
    assert!(!log.contains("a box of its own"), "{log}");
    assert_eq!(
        std::fs::read_to_string(&shared).unwrap(),
        "from-12\nfrom-13\n"
    );
    let remade = boxes();
    assert_eq!(remade.len(), 1, "{remade:?}");
    let record = std::fs::read_to_string(&remade[0]).unwrap();
    let pid = holder_of(&record);

    // The engine ends: so does its box.
    drop(engine);
    wait_until(
        "the box's holder to end with the engine's lock",
        Duration::from_secs(10),
        || gone(pid),
        || format!("the box: {record}"),
    );
}

/// The same box entered by a user who is not root, where bwrap makes the box's mounts in a
/// user namespace of its own (and puts its processes in a second one inside it): run as
/// `nobody` where the tests run as root (otherwise the test above is that case already).
#[test]
fn a_user_who_is_not_root_enters_the_runs_box_too() {
    if !sandbox_works("a_user_who_is_not_root_enters_the_runs_box_too") {
        return;
    }
    // SAFETY: getuid(2) only reads our own user id.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped a_user_who_is_not_root_enters_the_runs_box_too: not run as root");
        return;
    }
    const NOBODY: u32 = 65534;
    // Where `nobody` can reach it (not under /tmp, which the box has its own of).
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base).unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("orch-shared-box-user-")
        .tempdir_in(&base)
        .unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let (project, run_dir, home) = (root.join("project"), root.join("run"), root.join("home"));
    for dir in [&project, &run_dir, &home] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let engine = hold_engine_lock(&run_dir);
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    for dir in [&project, &run_dir, &home] {
        std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let jail = command_jail(&project, &run_dir);
    let agent = |n: usize| {
        agent_run(
            &jail,
            &home,
            n,
            "id -u; grep CapEff /proc/self/status; echo x > /tmp/x && echo ok > a.txt; exit 3",
            Some(NOBODY),
        )
    };
    for n in 1..=2 {
        let (ended, log) = agent(n);
        assert_eq!((ended.code, ended.signal), (Some(3), None), "{log}");
        assert!(!log.contains("a box of its own"), "{log}");
        assert!(log.starts_with("65534\n"), "{log}");
        assert!(log.contains("CapEff:\t0000000000000000"), "{log}");
    }
    assert_eq!(
        std::fs::read_to_string(project.join("a.txt")).unwrap(),
        "ok\n"
    );
    let boxes: Vec<_> = std::fs::read_dir(run_dir.join("boxes"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(boxes.len(), 1, "{boxes:?}");
    drop(engine);
}

/// Runs `script` as the agent of task `n`'s first attempt through `orch agent-run`, in `jail`
/// (in its project, with `home` its HOME), as `user` when given (the attempt's files then
/// its); returns its exit record and what it printed.
/// A `kind: command` agent's box for `project`, its run's directory `run_dir`, nothing else
/// bound in and the network on.
fn command_jail(project: &Path, run_dir: &Path) -> orch::sandbox::Jail {
    orch::sandbox::Jail {
        project: project.to_path_buf(),
        run_dir: run_dir.to_path_buf(),
        kind: orch::config::AgentKind::Command,
        no_network: false,
        read_only_project: false,
        write: vec![],
        read: vec![],
    }
}

/// The run's engine, as far as a box can tell: its lock, held until the file is dropped.
fn hold_engine_lock(run_dir: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd as _;
    let engine = std::fs::File::create(run_dir.join("engine.lock")).unwrap();
    // SAFETY: flock(2) on a file we own.
    assert_eq!(unsafe { libc::flock(engine.as_raw_fd(), libc::LOCK_EX) }, 0);
    engine
}

fn agent_run(
    jail: &orch::sandbox::Jail,
    home: &Path,
    n: usize,
    script: &str,
    user: Option<u32>,
) -> (orch::agent_process::run::ExitRecord, String) {
    use orch::agent_process::launcher::{LaunchSpec, write_launcher};
    use std::os::unix::process::CommandExt as _;

    let dir = jail.run_dir.join(format!("tasks/{n}/1"));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = LaunchSpec {
        title: format!("task {n}"),
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![("HOME".into(), home.to_string_lossy().into_owned())],
        env_file: None,
        stdin: None,
        cwd: jail.project.clone(),
        output_log: dir.join("output.log"),
        stdout_log: dir.join("stdout.log"),
        exit_file: dir.join("exit.json"),
        sandbox: Some(jail.clone()),
        notice: None,
    };
    write_launcher(&dir, &spec, Path::new(env!("CARGO_BIN_EXE_orch"))).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orch"));
    command
        .arg("agent-run")
        .arg(dir.join("launch.json"))
        .current_dir(&jail.run_dir)
        .env("HOME", home)
        .stdin(std::process::Stdio::null());
    if let Some(user) = user {
        let tasks = jail.run_dir.join("tasks");
        let mut owned = vec![tasks.clone(), tasks.join(n.to_string()), dir.clone()];
        owned.extend(std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()));
        for path in owned {
            std::os::unix::fs::chown(path, Some(user), Some(user)).unwrap();
        }
        // (std drops root's supplementary groups with them.)
        command.gid(user).uid(user);
    }
    let out = command.output().unwrap();
    let log = std::fs::read_to_string(dir.join("output.log")).unwrap_or_default();
    let record =
        orch::agent_process::run::ExitRecord::read(&dir.join("exit.json")).unwrap_or_else(|e| {
            panic!(
                "{e:#}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (record, log)
}
