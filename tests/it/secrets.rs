//! No secret in any process's arguments, nor in a file another user can read: marker values in
//! the caller's environment, in an agent's `env` and in the request are looked for in the
//! command line of every process while a run is live, and in the run directory's files.

use crate::support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{TestProject, Tmux as _, Up, WindowSpec, command_lines_with, wait_until};

/// A value found nowhere else on this machine.
fn marker(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("orch-secret-{what}-{}-{nanos}", std::process::id())
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files.extend(files_under(&path));
        } else if kind.is_file() {
            files.push(path);
        }
    }
    files
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn holds(path: &Path, marker: &str) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
}

/// Holds the run live until the test writes to the FIFO `$HOLD_DIR/release`, then writes the
/// task's files. No polling: `read` blocks on the FIFO.
const HOLD: &str = "#!/bin/sh
echo $$ > \"$HOLD_DIR/started.tmp\" && mv \"$HOLD_DIR/started.tmp\" \"$HOLD_DIR/started\"
read line < \"$HOLD_DIR/release\"
mkdir -p tests
echo 'exit 0' > tests/hold_test.sh
echo done > out.txt
";

#[test]
fn no_marker_in_any_command_line_while_the_run_is_live_nor_in_a_readable_file() {
    let caller_secret = marker("caller");
    let agent_secret = marker("agent");
    let request_secret = marker("request");
    let task_secret = marker("task");
    let markers = [
        caller_secret.as_str(),
        agent_secret.as_str(),
        request_secret.as_str(),
        task_secret.as_str(),
    ];
    let hold = tempfile::tempdir().unwrap();
    let fifo = hold.path().join("release");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid, NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    // The test gate passes only if the engine, which runs it, has the caller's environment.
    let config = format!(
        "agents:\n  holder:\n    kind: command\n    command: [\"./hold.sh\"]\n    env:\n      \
         ORCH_T_AGENT_SECRET: {agent_secret}\n      HOLD_DIR: {}\n  bot:\n    kind: scripted\n    sample: true\n\
         roles:\n  planner: bot\n  judge: bot\n  workers: [holder]\n\
         gates:\n  test: test -n \"$ORCH_T_CALLER_SECRET\"\nlimits:\n  retries: 0\n\
         sandbox_paths:\n  write: [\"{}\"]\n",
        hold.path().display(),
        // The agent's sandbox shows it this directory of the test's (its /tmp is its own).
        hold.path().display()
    );
    let up = Up::new("secrets", &config);
    up.p.script("hold.sh", HOLD);
    up.p.file(
        "plan.json",
        &format!(
            r#"{{"tasks": [{{"id": "w", "agent": "holder", "task": "hold {task_secret}",
                "files": ["out.txt", "tests/hold_test.sh"]}}]}}"#
        ),
    );
    // A server started before, from an environment without the markers: panes get the
    // server's environment, so only the run's environ file can give them the caller's.
    up.server
        .tmux()
        .new_session(
            "started-before",
            &WindowSpec::new("idle", hold.path(), vec!["cat".into()]),
            (80, 24),
        )
        .unwrap();
    let request = format!("Build it {request_secret}");
    up.orch()
        .env("ORCH_T_CALLER_SECRET", &caller_secret)
        .args(["up", &request, "--plan", "plan.json", "--detach"])
        .run()
        .expect(0);

    let started = hold.path().join("started");
    wait_until(
        "the agent to start and hold the run",
        Duration::from_secs(30),
        || started.exists(),
        || up.diagnostics(),
    );
    // Live: the tmux server, its control-mode client, the engine, the launcher, agent-run and
    // the agent all run now.
    let leaks = command_lines_with(&markers);
    assert!(
        leaks.is_empty(),
        "secrets in command lines:\n{}",
        leaks.join("\n")
    );
    // Yet the agent has them: the caller's environment and its own `env`.
    let pid: i32 = std::fs::read_to_string(&started)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let environ = agent_environ(pid, &up.p.root()).expect("the agent's process");
    let agent_env = String::from_utf8_lossy(&environ);
    assert!(
        agent_env.contains(&format!("ORCH_T_CALLER_SECRET={caller_secret}\0")),
        "the agent lacks the caller's environment"
    );
    assert!(agent_env.contains(&format!("ORCH_T_AGENT_SECRET={agent_secret}\0")));
    // Not the caller's directory: a CLI may believe PWD over its working directory.
    let pwd = format!("PWD={}", up.p.root().display());
    assert!(
        agent_env.split('\0').any(|v| v == pwd),
        "the agent's PWD is not the project"
    );

    let run = std::fs::read_dir(up.p.path(".orch/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let environ = run.join("environ");
    assert_eq!(mode(&environ), 0o600);
    assert!(holds(&environ, &caller_secret));

    std::fs::write(&fifo, "go\n").unwrap();
    up.wait(0);

    // Once the run is over nothing reads it (a resume writes it again): it is gone.
    assert!(!environ.exists(), "the keys outlive the run");
    assert_eq!(mode(&run), 0o700, "the run directory");
    for file in [
        "config.yaml",
        "request.txt",
        "run.json",
        "plan.json",
        "events.jsonl",
        "report.md",
        "report.json",
        "tasks/w/1/prompt.md",
        "tasks/w/1/launch.json",
        "tasks/w/1/launch.sh",
        "tasks/w/1/output.log",
        "tasks/w/1/exit.json",
    ] {
        assert_eq!(
            mode(&run.join(file)) & 0o077,
            0,
            "{file} is readable by others"
        );
    }
    for file in files_under(&run) {
        if mode(&file) & 0o044 != 0 {
            for m in markers {
                assert!(
                    !holds(&file, m),
                    "{} (readable by others) holds {m}",
                    file.display()
                );
            }
        }
        // The environment's values stay in the three files that must hold them, never in a
        // log, the journal or the report.
        let name = file.file_name().unwrap().to_str().unwrap();
        if !["environ", "config.yaml", "launch.json"].contains(&name) {
            for m in [&caller_secret, &agent_secret] {
                assert!(!holds(&file, m), "{} holds {m}", file.display());
            }
        }
    }
    // What the agent wrote into the project has the user's umask, not orch's.
    assert_eq!(mode(&up.p.path("out.txt")), 0o666 & !support::umask());
}

#[test]
fn doctor_names_the_credentials_it_finds_never_their_values() {
    let caller_secret = marker("caller");
    let agent_secret = marker("agent");
    let p = TestProject::new();
    p.file(
        "orch.yaml",
        &format!(
            "agents:\n  c:\n    kind: claude\n    env: {{ANTHROPIC_API_KEY: {agent_secret}}}\n  \
             x:\n    kind: codex\n  bot:\n    kind: scripted\n    sample: true\nroles:\n  planner: bot\n  \
             judge: bot\n  workers: [bot]\n"
        ),
    );
    let run = p
        .orch()
        .without_credentials()
        .env("OPENAI_API_KEY", &caller_secret)
        .args(["doctor"])
        .run();
    let out = run.stdout() + &run.stderr();
    assert!(out.contains("ANTHROPIC_API_KEY is set"), "{out}");
    assert!(out.contains("OPENAI_API_KEY is set"), "{out}");
    for m in [&caller_secret, &agent_secret] {
        assert!(!out.contains(m.as_str()), "doctor printed {m}:\n{out}");
    }
}

/// A stand-in for an agent CLI that keeps its arguments and its stdin, then fails.
const FAKE_CLI: &str = "#!/bin/sh
name=$(basename \"$0\")
printf '%s\\n' \"$@\" > \"$FAKE_OUT/$name.argv\"
cat > \"$FAKE_OUT/$name.stdin\"
exit 1
";

#[test]
fn orch_plan_gives_each_cli_its_prompt_on_stdin_not_as_an_argument() {
    let p = TestProject::new();
    // In the project: the planner's sandbox has a /tmp of its own.
    let out = p.path("fake-out");
    std::fs::create_dir_all(&out).unwrap();
    for cli in ["claude", "codex", "opencode", "gemini"] {
        p.script(&format!("bin/{cli}"), FAKE_CLI);
    }
    let path = format!(
        "{}:{}",
        p.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let agent_secret = marker("agent");
    let request_secret = marker("request");
    for cli in ["claude", "codex", "opencode", "gemini"] {
        p.file(
            "orch.yaml",
            &format!(
                "agents:\n  cli:\n    kind: {cli}\n    model: m\n    env: {{KEY: {agent_secret}}}\n\
                 roles:\n  planner: cli\n  judge: cli\n  workers: [cli]\n\
                 limits:\n  planner_retries: 0\n"
            ),
        );
        p.orch()
            .env("PATH", &path)
            .env("FAKE_OUT", &out)
            .args(["plan", &format!("Build it {request_secret}")])
            .run()
            .expect(1);
        let argv = std::fs::read_to_string(out.join(format!("{cli}.argv")))
            .unwrap_or_else(|e| panic!("{cli} did not run: {e}"));
        let stdin = std::fs::read_to_string(out.join(format!("{cli}.stdin"))).unwrap();
        assert!(!argv.contains(&request_secret), "{cli}'s argv:\n{argv}");
        assert!(!argv.contains(&agent_secret), "{cli}'s argv:\n{argv}");
        assert!(stdin.contains(&request_secret), "{cli}'s stdin:\n{stdin}");
        assert!(stdin.contains("ORCH_CONTEXT"), "{cli}'s stdin:\n{stdin}");
    }
    // The plans' directories are this user's alone.
    for entry in std::fs::read_dir(p.path(".orch/plans")).unwrap().flatten() {
        assert_eq!(mode(&entry.path()), 0o700);
        for file in files_under(&entry.path()) {
            assert_eq!(mode(&file) & 0o077, 0, "{}", file.display());
        }
    }
}

#[test]
fn every_file_of_a_planned_run_is_the_users_alone_but_copies_of_project_files() {
    let up = Up::new("private-run", support::SCRIPTED);
    up.up(&["Build wordstat"], None).expect(0);
    up.wait(0);
    let run = std::fs::read_dir(up.p.path(".orch/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut open = Vec::new();
    let mut dirs = vec![run.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(&run).unwrap().to_path_buf();
            // Copies of the project's own files (and of its .git/'s guarded files) keep their
            // mode; tmux touches empty signals.
            let copies = [
                "baseline",
                "violations",
                "snapshot/index",
                "git-meta",
                "signals/",
            ];
            if copies.iter().any(|c| rel.starts_with(c)) {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                dirs.push(path.clone());
            }
            if mode(&path) & 0o077 != 0 {
                open.push(format!("{:o} {}", mode(&path), rel.display()));
            }
        }
    }
    assert!(open.is_empty(), "readable by others:\n{}", open.join("\n"));
    assert!(run.join("planner/1/plan.json").exists());
}

/// The environment of the agent whose `$$` is `inner` (its pid in its sandbox's namespace, or
/// out here when unboxed), found among the processes that hold the project's task variables.
fn agent_environ(inner: i32, root: &std::path::Path) -> Option<Vec<u8>> {
    let project = format!("ORCH_PROJECT_DIR={}", root.display());
    support::process_by_inner_pid(inner, |environ| {
        environ.split(|b| *b == 0).any(|v| v == project.as_bytes())
    })
    .map(|(_, environ)| environ)
}
