//! `orch agent-run` driven through the built binary, with small `sh -c` agents: logs, the exit
//! record, hostile text passing through untouched, signals, agents that cannot start.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use orch::agent_process::launcher::{LaunchSpec, write_launcher};
use orch::agent_process::run::ExitRecord;

const ORCH: &str = env!("CARGO_BIN_EXE_orch");
const DEADLINE: Duration = Duration::from_secs(30);

/// A project directory and a run directory for one agent.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    project: PathBuf,
    run: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_run_dir("run")
    }

    fn with_run_dir(name: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let project = root.join("project");
        let run = root.join(name);
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            project,
            run,
        }
    }

    fn spec(&self, argv: &[&str], env: &[(&str, &str)]) -> LaunchSpec {
        LaunchSpec {
            title: "task 1 · agent test · attempt 1".into(),
            argv: argv.iter().map(std::string::ToString::to_string).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env_file: None,
            stdin: None,
            cwd: self.project.clone(),
            output_log: self.run.join("output.log"),
            stdout_log: self.run.join("stdout.log"),
            exit_file: self.run.join("exit.json"),
            sandbox: None,
            notice: None,
        }
    }

    /// Starts `orch agent-run` on `spec` in its own process group, its pane output going to
    /// files (a pipe nobody reads while we wait could fill up and stall it).
    fn start(&self, spec: &LaunchSpec) -> Child {
        write_launcher(&self.run, spec, Path::new(ORCH)).unwrap();
        Command::new(ORCH)
            .arg("agent-run")
            .arg(self.run.join("launch.json"))
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.root.join("pane.out")).unwrap())
            .stderr(std::fs::File::create(self.root.join("pane.err")).unwrap())
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn run(&self, spec: &LaunchSpec) -> ExitStatus {
        let child = self.start(spec);
        self.wait(child)
    }

    fn wait(&self, mut child: Child) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                // SAFETY: kill(2) on the process group the test created; nothing else is in it.
                unsafe {
                    libc::kill(-(child.id() as i32), libc::SIGKILL);
                }
                panic!(
                    "timed out waiting for agent-run to exit\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn read(&self, path: impl AsRef<Path>) -> Vec<u8> {
        std::fs::read(self.root.join(path)).unwrap_or_default()
    }

    fn exit_record(&self) -> ExitRecord {
        ExitRecord::read(&self.run.join("exit.json"))
            .unwrap_or_else(|e| panic!("{e:#}\n{}", self.diagnostics()))
    }

    fn diagnostics(&self) -> String {
        let show = |name: &str, bytes: Vec<u8>| {
            format!("--- {name}:\n{}\n", String::from_utf8_lossy(&bytes))
        };
        show("pane stdout", self.read("pane.out"))
            + &show("pane stderr", self.read("pane.err"))
            + &show("output.log", self.read(self.run.join("output.log")))
            + &show("exit.json", self.read(self.run.join("exit.json")))
    }
}

/// Polls `ready` until it gives a value; past the deadline, panics with `diagnostics()`.
fn wait_for<T>(
    what: &str,
    mut ready: impl FnMut() -> Option<T>,
    diagnostics: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\n{}", diagnostics());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn output_is_logged_and_the_exit_code_recorded() {
    let fx = Fixture::new();
    let before = now_ms();
    let spec = fx.spec(
        &[
            "sh",
            "-c",
            "printf 'out one\\n'; printf 'err one\\n' >&2; printf 'out two'; exit 3",
        ],
        &[],
    );
    let status = fx.run(&spec);
    let after = now_ms();
    assert_eq!(status.code(), Some(3), "{}", fx.diagnostics());

    assert_eq!(fx.read(&spec.stdout_log), b"out one\nout two");
    let output = fx.read(&spec.output_log);
    for piece in [&b"out one\n"[..], b"err one\n", b"out two"] {
        assert!(contains(&output, piece), "{}", fx.diagnostics());
    }
    assert_eq!(output.len(), "out one\nerr one\nout two".len());
    assert_eq!(fx.read("pane.out"), b"out one\nout two");
    let pane_err = String::from_utf8(fx.read("pane.err")).unwrap();
    assert!(
        pane_err.contains("task 1 · agent test · attempt 1"),
        "{pane_err}"
    );
    assert!(pane_err.contains("err one"), "{pane_err}");

    let record = fx.exit_record();
    assert_eq!((record.code, record.signal), (Some(3), None));
    assert_eq!(record.stopped_by, None, "it ended of its own accord");
    assert!(
        before <= record.started_at_ms,
        "{record:?} started before {before}"
    );
    assert!(record.started_at_ms <= record.ended_at_ms, "{record:?}");
    assert!(
        record.ended_at_ms <= after,
        "{record:?} ended after {after}"
    );
    // A failed exit is explained by the last line the agent printed on stderr.
    assert_eq!(
        record.describe(),
        "exited with status 3: its last words: err one"
    );
    assert!(!fx.run.join("exit.json.tmp").exists());
}

/// Quotes, command substitutions, `;`, newlines, non-ASCII, `%s`: everything a shell or a
/// printf could mistake for syntax, about 100 KB of it.
fn hostile() -> String {
    let piece = "it's \"quoted\" $(touch pwned) `touch pwned2`; touch pwned3 && \\ $HOME %s\n\
                 ünïcödé 日本語 🦀\t\r| > pwned4 * ?[a] {x,y} ~ #\n";
    let mut text = String::new();
    while text.len() < 100_000 {
        text.push_str(piece);
    }
    text
}

fn assert_no_pwned(dirs: &[&Path]) {
    for dir in dirs {
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name();
            assert!(
                !name.to_string_lossy().contains("pwned"),
                "{} appeared in {}",
                name.to_string_lossy(),
                dir.display()
            );
        }
    }
}

#[test]
fn hostile_text_passes_through_env_and_argv_byte_for_byte_via_the_real_launcher() {
    // Paths with spaces, quotes and `$` in both the run directory and orch's own path.
    let fx = Fixture::with_run_dir("run dir 'q' \"dq\" $HOME `x`");
    let odd_bin = fx.root.join("bin $x 'y'");
    std::fs::create_dir_all(&odd_bin).unwrap();
    let orch = odd_bin.join("or ch");
    std::os::unix::fs::symlink(ORCH, &orch).unwrap();

    let text = hostile();
    let mut spec = fx.spec(
        &[
            "sh",
            "-c",
            "printf '%s' \"$HOSTILE\" > got_env.txt && printf '%s' \"$1\" > got_arg.txt",
            "agent",
            &text,
        ],
        &[("HOSTILE", &text)],
    );
    spec.title = text.clone();
    let script = write_launcher(&fx.run, &spec, &orch).unwrap();

    let launcher = std::fs::read(&script).unwrap();
    for marker in ["pwned", "日本語", "quoted", "%s", "\t"] {
        assert!(
            !contains(&launcher, marker.as_bytes()),
            "launch.sh contains {marker:?}:\n{}",
            String::from_utf8_lossy(&launcher)
        );
    }
    assert_eq!(String::from_utf8_lossy(&launcher).lines().count(), 3);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&script), 0o700);
    assert_eq!(mode(&fx.run.join("launch.json")), 0o600);

    // The real path: sh runs the script, which execs orch.
    let child = Command::new("sh")
        .arg(&script)
        .current_dir(&fx.root)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(fx.root.join("pane.out")).unwrap())
        .stderr(std::fs::File::create(fx.root.join("pane.err")).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let status = fx.wait(child);
    assert_eq!(status.code(), Some(0), "{}", fx.diagnostics());
    assert_eq!(fx.exit_record().code, Some(0));

    assert!(fx.read(fx.project.join("got_env.txt")) == text.as_bytes());
    assert!(fx.read(fx.project.join("got_arg.txt")) == text.as_bytes());
    assert_no_pwned(&[&fx.root, &fx.project, &fx.run]);
}

#[test]
fn a_sigterm_to_the_group_is_recorded_as_the_agents_signal() {
    let fx = Fixture::new();
    // No newline: seeing "started" in the log also proves partial lines are not held back.
    let spec = fx.spec(&["sh", "-c", "printf started; exec sleep 60"], &[]);
    let child = fx.start(&spec);
    let pgid = child.id() as i32;
    wait_for(
        "the agent to start",
        || contains(&fx.read(&spec.output_log), b"started").then_some(()),
        || fx.diagnostics(),
    );

    // SAFETY: kill(2) on the process group we created for agent-run.
    assert_eq!(unsafe { libc::kill(-pgid, libc::SIGTERM) }, 0);
    let status = fx.wait(child);
    assert_eq!(status.code(), Some(128 + 15), "{}", fx.diagnostics());
    assert_eq!(
        status.signal(),
        None,
        "agent-run itself must survive the signal"
    );

    let record = fx.exit_record();
    assert_eq!((record.code, record.signal), (None, Some(15)));
    assert_eq!(record.describe(), "killed by signal 15 (SIGTERM)");
    assert_eq!(record.stopped_by, Some(15), "the stop came from outside");
}

#[test]
fn closing_the_pane_hangs_up_the_agent_and_is_recorded() {
    use std::os::fd::{AsRawFd as _, OwnedFd};
    use std::os::unix::fs::OpenOptionsExt as _;

    let fx = Fixture::new();
    let spec = fx.spec(&["sh", "-c", "printf started; exec sleep 60"], &[]);
    write_launcher(&fx.run, &spec, Path::new(ORCH)).unwrap();

    // A pane is a pseudo-terminal whose session agent-run leads; closing the pane closes
    // the master side, and the kernel then sends SIGHUP to the session leader only.
    // Both sides are opened close-on-exec (std opens every file so): no process that another
    // test of this binary starts meanwhile may hold the master open, or closing ours would
    // hang up nothing.
    let master = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/ptmx")
        .unwrap();
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: grantpt(3), unlockpt(3) and ptsname_r(3) on a master we own, into our buffer.
    unsafe {
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0, "grantpt");
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0, "unlockpt");
        assert_eq!(
            libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
            0,
            "ptsname_r"
        );
    }
    // SAFETY: ptsname_r wrote a NUL-terminated path into `name`.
    let slave_path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&slave_path)
        .unwrap();
    let (master, slave) = (OwnedFd::from(master), OwnedFd::from(slave));
    let mut command = Command::new(ORCH);
    command
        .arg("agent-run")
        .arg(fx.run.join("launch.json"))
        .current_dir(&fx.root)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // As tmux starts a pane's process: with the signals at their defaults, whatever
            // the test inherited (under `nohup`, a hangup ignored).
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    drop(command);
    wait_for(
        "the agent to start",
        || contains(&fx.read(&spec.output_log), b"started").then_some(()),
        || fx.diagnostics(),
    );

    drop(master);
    let status = fx.wait(child);
    assert_eq!(status.code(), Some(128 + 1), "{}", fx.diagnostics());
    let record = fx.exit_record();
    assert_eq!((record.code, record.signal), (None, Some(1)));
    assert_eq!(record.stopped_by, Some(1), "the hangup came from outside");
}

#[test]
fn a_missing_program_is_reported_and_recorded_as_127() {
    for program in ["orch-test-no-such-agent", "./no-such-agent.sh"] {
        let fx = Fixture::new();
        let spec = fx.spec(&[program, "--flag"], &[]);
        let status = fx.run(&spec);
        assert_eq!(status.code(), Some(127), "{}", fx.diagnostics());
        let pane_err = String::from_utf8(fx.read("pane.err")).unwrap();
        let expected = format!("cannot run `{program}`: not found — install it");
        assert!(pane_err.contains(&expected), "{pane_err}");
        assert!(
            pane_err.contains("`orch doctor` checks every agent"),
            "{pane_err}"
        );
        let log = String::from_utf8(fx.read(&spec.output_log)).unwrap();
        assert!(log.contains(&expected), "{log}");
        let record = fx.exit_record();
        assert_eq!((record.code, record.signal), (Some(127), None));
    }
}

#[test]
fn a_program_that_is_not_executable_is_recorded_as_127() {
    let fx = Fixture::new();
    std::fs::write(fx.project.join("agent.sh"), "#!/bin/sh\necho hi\n").unwrap();
    let spec = fx.spec(&["./agent.sh"], &[]);
    let status = fx.run(&spec);
    assert_eq!(status.code(), Some(127), "{}", fx.diagnostics());
    let pane_err = String::from_utf8(fx.read("pane.err")).unwrap();
    assert!(
        pane_err.contains("cannot run `./agent.sh`: not executable"),
        "{pane_err}"
    );
    assert_eq!(fx.exit_record().code, Some(127));
}

#[test]
fn invalid_utf8_passes_through_unchanged() {
    let fx = Fixture::new();
    let spec = fx.spec(
        &[
            "sh",
            "-c",
            "printf '\\377\\376ab\\300\\n\\200'; printf '\\351x' >&2",
        ],
        &[],
    );
    let status = fx.run(&spec);
    assert_eq!(status.code(), Some(0), "{}", fx.diagnostics());
    let out: &[u8] = b"\xff\xfeab\xc0\n\x80";
    assert_eq!(fx.read(&spec.stdout_log), out);
    assert_eq!(fx.read("pane.out"), out);
    let log = fx.read(&spec.output_log);
    assert!(contains(&log, out), "{log:?}");
    assert!(contains(&log, b"\xe9x"), "{log:?}");
    assert_eq!(log.len(), out.len() + 2);
}

#[test]
fn the_prompt_comes_on_stdin_and_the_runs_environment_from_its_file_not_argv() {
    let fx = Fixture::new();
    let prompt = fx.run.join("prompt.md");
    std::fs::write(&prompt, "the prompt ORCH-PROMPT-MARKER\n").unwrap();
    let environ = fx.run.join("environ");
    orch::state::environ::write(
        &environ,
        &[
            ("ORCH_T_SECRET".into(), "ORCH-ENV-MARKER".into()),
            ("ORCH_T_BOTH".into(), "from the file".into()),
        ],
    )
    .unwrap();
    // The spec's own env wins over the file's; the agent has the user's umask, not orch's.
    let mut spec = fx.spec(
        &[
            "sh",
            "-c",
            "cat; echo \"$ORCH_T_SECRET $ORCH_T_BOTH\"; umask; : > made-by-agent",
        ],
        &[("ORCH_T_BOTH", "from the spec")],
    );
    spec.env_file = Some(environ);
    spec.stdin = Some(prompt);
    let status = fx.run(&spec);
    assert_eq!(status.code(), Some(0), "{}", fx.diagnostics());
    // The agent-run child inherited ours at its spawn.
    let ours = crate::support::umask();
    assert_eq!(
        String::from_utf8_lossy(&fx.read(&spec.stdout_log)),
        format!("the prompt ORCH-PROMPT-MARKER\nORCH-ENV-MARKER from the spec\n{ours:04o}\n")
    );
    let mode = |p: &Path| p.metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&fx.project.join("made-by-agent")), 0o666 & !ours);
    // What agent-run writes itself is the user's alone.
    for file in [&spec.output_log, &spec.stdout_log, &spec.exit_file] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
}

#[test]
fn a_missing_prompt_or_environment_file_is_said_and_recorded_not_started() {
    let fx = Fixture::new();
    let mut spec = fx.spec(&["cat"], &[]);
    spec.stdin = Some(fx.run.join("no-prompt.md"));
    fx.run(&spec);
    assert_eq!(fx.exit_record().code, Some(127), "{}", fx.diagnostics());
    let output = String::from_utf8_lossy(&fx.read(&spec.output_log)).into_owned();
    assert!(output.contains("no-prompt.md"), "{output}");

    let mut spec = fx.spec(&["cat"], &[]);
    spec.env_file = Some(fx.run.join("no-environ"));
    fx.run(&spec);
    assert_eq!(fx.exit_record().code, Some(127), "{}", fx.diagnostics());
    let output = String::from_utf8_lossy(&fx.read(&spec.output_log)).into_owned();
    assert!(output.contains("orch resume"), "{output}");
}

#[test]
fn each_byte_is_kept_once_and_each_log_is_capped() {
    // A worker's plain output: output.log alone, capped with its beginning and end.
    let fx = Fixture::new();
    let spec = fx.spec(
        &[
            "sh",
            "-c",
            "echo BEGIN; head -c 100000 /dev/zero | tr '\\0' y; echo; echo err >&2; echo END",
        ],
        &[("ORCH_ROLE", "worker"), ("ORCH_OUTPUT_CAP", "8192")],
    );
    assert_eq!(fx.run(&spec).code(), Some(0), "{}", fx.diagnostics());
    assert!(
        !spec.stdout_log.exists(),
        "a worker's plain stdout kept twice"
    );
    let log = String::from_utf8(fx.read(&spec.output_log)).unwrap();
    assert!(log.starts_with("BEGIN\nyyy"), "{}", &log[..20]);
    // stdout and stderr come through two pipes read by two threads: `err` may land before
    // the last of the y's, in the part cut, so only the end of stdout is certain.
    let tail = &log[log.len() - 100..];
    assert!(tail.contains("yyy") && tail.contains("END\n"), "{tail}");
    assert!(log.contains("bytes of output cut here"));
    assert!(log.len() < 8192 + 300, "{} bytes", log.len());

    // An agent CLI's event stream: stdout.log alone; output.log holds its stderr.
    let fx = Fixture::new();
    let spec = fx.spec(
        &[
            "sh",
            "-c",
            "echo '{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s1\"}'; echo oops >&2",
        ],
        &[("ORCH_ROLE", "worker"), ("ORCH_AGENT_KIND", "claude")],
    );
    assert_eq!(fx.run(&spec).code(), Some(0), "{}", fx.diagnostics());
    assert_eq!(
        fx.read(&spec.stdout_log),
        b"{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s1\"}\n"
    );
    assert_eq!(fx.read(&spec.output_log), b"oops\n");
}

#[test]
fn the_users_message_is_shown_under_the_title_without_its_control_characters() {
    let fx = Fixture::new();
    let mut spec = fx.spec(&["true"], &[]);
    spec.notice = Some("turn left $(x)\n\x1b[2Jsecond line".into());
    let status = fx.run(&spec);
    assert_eq!(status.code(), Some(0), "{}", fx.diagnostics());
    let pane_err = String::from_utf8(fx.read("pane.err")).unwrap();
    assert!(
        pane_err.contains(
            "==> task 1 · agent test · attempt 1\n==> the user's message (orch tell):\n    \
             turn left $(x)\n    ?[2Jsecond line\n"
        ),
        "{pane_err}"
    );
}
