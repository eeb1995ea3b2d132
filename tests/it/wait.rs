//! `orch wait` never hangs on a run that cannot progress, and `orch up` says why its engine
//! could not start: real tmux on private servers, made to fail where the test says.

use crate::support;

use std::path::{Path, PathBuf};

use support::{SCRIPTED, Tmux as _, Up};

/// A directory holding a `tmux` that refuses `new-session` (as tmux does for a command over
/// its size limit) and hands every other command to the real tmux.
fn tmux_refusing_new_session(dir: &Path) -> PathBuf {
    let real = which("tmux");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("tmux");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = new-session ]; then\n    \
             echo 'command too long' >&2\n    exit 1\n  fi\ndone\nexec {} \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} not on PATH"))
}

#[test]
fn up_whose_engine_cannot_start_says_why_and_wait_returns() {
    let up = Up::new("nostart", SCRIPTED);
    let tools = tempfile::tempdir().unwrap();
    let bin = tmux_refusing_new_session(tools.path());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    up.orch()
        .env("PATH", &path)
        .args(["up", "Build wordstat", "--detach"])
        .run()
        .expect(1)
        .stderr_has("could not start: tmux could not open the session")
        .stderr_has("command too long");
    // The run is not left `starting`: it failed, and says why.
    let status = up.status();
    assert_eq!(status["phase"], "failed", "{status:#}");
    up.orch()
        .args(["wait", "--timeout", "60"])
        .run()
        .expect(1)
        .stdout_has("failed: the engine never started: tmux could not open the session");

    // A run left `starting` with no engine (an `orch up` killed before it could say so):
    // once the grace period from the run's creation is over, `orch wait` says so and exits 3.
    let dir = up.run_dir();
    let journal = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let kept: String = journal
        .lines()
        .filter(|l| !l.contains("\"run_finished\""))
        .flat_map(|l| [l, "\n"])
        .collect();
    std::fs::write(dir.join("events.jsonl"), kept).unwrap();
    let info_path = dir.join("run.json");
    let mut info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&info_path).unwrap()).unwrap();
    let created = info["created_at_ms"].as_u64().unwrap();
    // Young: within the grace period, `orch wait` still waits (here until its timeout).
    up.orch().args(["wait", "--timeout", "1"]).run().expect(124);
    info["created_at_ms"] = (created - 10 * 60 * 1000).into();
    std::fs::write(&info_path, info.to_string()).unwrap();
    up.orch()
        .args(["wait", "--timeout", "60"])
        .run()
        .expect(3)
        .stderr_has("cannot progress: its engine never started")
        .stderr_has("and its tmux session")
        .stderr_has("`orch resume` continues it");
}

#[test]
fn wait_returns_when_the_engine_is_killed() {
    let up = Up::new("waitkilled", SCRIPTED);
    up.orch()
        .env("ORCH_ENGINE_CRASH", "after:planning_started")
        .args(["up", "Build wordstat", "--detach"])
        .run()
        .expect(0);
    let wait = up.orch().args(["wait", "--timeout", "60"]).run();
    assert_eq!(
        wait.code(),
        3,
        "{}{}\n{}",
        wait.stdout(),
        wait.stderr(),
        up.diagnostics()
    );
    assert!(
        wait.stderr().contains("cannot progress: its engine (pid ")
            && wait.stderr().contains("is gone before the run ended"),
        "{}",
        wait.stderr()
    );
    // Its session gone too: said as well.
    up.server
        .tmux()
        .kill_session(&up.session())
        .expect("the session closes");
    up.orch()
        .args(["wait", "--timeout", "60"])
        .run()
        .expect(3)
        .stderr_has("is gone before the run ended")
        .stderr_has(&format!("and its tmux session {} is gone", up.session()));
}
