//! Being told: a run whose task fails for good tells the user, in tmux (a message on the
//! status line of the attached terminal, in tmux's message log; the bell in the control
//! window; the task's window marked), on the desktop (a `notify-send` of the test's, on
//! PATH) and through the `notify` hook, which gets one JSON document per notice. A hook that
//! fails or hangs is a journaled warning, and the run goes on and ends as it would have.

use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::{Options, Up};

/// Task `a` fails (once `counts/go` exists, so that the test's terminal is attached first);
/// `b` writes its files.
const WORKER: &str = r#"#!/bin/sh
mkdir -p counts
while [ ! -e counts/go ]; do sleep 0.05; done
if [ "$ORCH_TASK_ID" = a ]; then echo "no luck" >&2; exit 1; fi
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$ORCH_TASK_ID done" > "$f"; done
"#;

const PLAN: &str = r#"{"specs": [{"file": "specs/s.md"}],
 "tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"]}
 ]}"#;

/// A hook that keeps each document it gets in `notices/`, and its argument in `notices/args`.
const RECORDING_HOOK: &str = r#"#!/bin/sh
mkdir -p notices
echo "$@" > notices/args
cat > "notices/.$$" && mv "notices/.$$" "notices/$$.json"
"#;

/// A `notify-send` that records its arguments.
const NOTIFY_SEND: &str = r#"#!/bin/sh
printf '%s\n' "$@" >> "$ORCH_TEST_DESKTOP"
"#;

fn options(name: &str, hook: &str, timeout: &str) -> Options {
    Options::new(name)
        .worker(WORKER)
        .plan(PLAN)
        .file("specs/s.md", "# the spec\n")
        .script("hook.sh", hook)
        .yaml(&format!(
            "notify:\n  hook: [\"./hook.sh\", \"--channel\", \"#builds\"]\n  hook_timeout: {timeout}\n"
        ))
        .ignore("counts/\nnotices/\nplan.json\nworker.sh\nhook.sh\norch.yaml\n")
}

/// A terminal attached to the run's session (`script` gives tmux the pty it needs).
struct Client(Child);

impl Client {
    fn attach(up: &Up) -> Client {
        let attach = format!(
            "tmux -L {} attach -t {}",
            up.server.socket_name(),
            up.session()
        );
        let child = Command::new("script")
            .args(["-qfc", &attach, "/dev/null"])
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("script(1) runs");
        let client = Client(child);
        up.wait_until("the test's terminal to be attached", || {
            !tmux_out(up, &["list-clients", "-F", "#{client_control_mode}"])
                .lines()
                .all(|l| l.trim() == "1")
        });
        client
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tmux_out(up: &Up, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(["-L", up.server.socket_name()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn notices(up: &Up) -> Vec<Value> {
    let mut docs: Vec<Value> = std::fs::read_dir(up.p.path("notices"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap();
            // One document, and only one, per run of the hook.
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
        })
        .collect();
    docs.sort_by_key(|d| d["at_ms"].as_u64());
    docs
}

#[test]
fn a_failed_task_and_the_runs_end_are_told_in_tmux_on_the_desktop_and_to_the_hook() {
    let desktop = tempfile::tempdir().unwrap();
    let bin = desktop.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("notify-send"), NOTIFY_SEND).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(
        bin.join("notify-send"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let record = desktop.path().join("shown");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let up = options("told", RECORDING_HOOK, "10s")
        .env("PATH", &path)
        .env("ORCH_NOTIFY_DESKTOP", "on")
        .env("ORCH_TEST_DESKTOP", &record)
        .start();
    up.start();
    let _client = Client::attach(&up);
    // The control window must not be the one the terminal shows: tmux flags a bell only in
    // a window the user is not looking at.
    up.wait_until("task b's window", || {
        tmux_out(
            &up,
            &["list-windows", "-t", &up.session(), "-F", "#{window_name}"],
        )
        .contains("b-mine")
    });
    up.tmux(&["select-window", "-t", &format!("{}:b-mine", up.session())]);
    std::fs::create_dir_all(up.p.path("counts")).unwrap();
    std::fs::write(up.p.path("counts/go"), "").unwrap();
    up.wait(1);

    // The hook: one document per notice, with its arguments as given (no shell).
    let docs = notices(&up);
    let events: Vec<&str> = docs.iter().map(|d| d["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["task_failed", "run_ended"], "{docs:#?}");
    let run_id = up.status()["run_id"].as_str().unwrap().to_string();
    let failed = &docs[0];
    assert_eq!(failed["run_id"], run_id.as_str());
    assert_eq!(failed["task"], "a");
    assert!(
        failed["reason"].as_str().unwrap().contains("no luck"),
        "{failed:#}"
    );
    assert_eq!(failed["tokens"], 0);
    assert_eq!(failed["cost"], 0.0);
    let ended = &docs[1];
    assert_eq!(ended["outcome"], "failed");
    assert!(ended.get("task").is_none(), "{ended:#}");
    assert_eq!(up.p.read("notices/args").trim(), "--channel #builds");

    // tmux: the message on the attached terminal's status line (tmux logs it), the bell in
    // the control window, task a's window marked.
    let messages = tmux_out(&up, &["show-messages"]);
    assert!(
        messages.contains(&format!("orch: run {run_id}: task a failed")),
        "{messages}"
    );
    assert!(
        messages.contains(&format!("orch: run {run_id} failed")),
        "{messages}"
    );
    let windows = tmux_out(
        &up,
        &[
            "list-windows",
            "-t",
            &up.session(),
            "-F",
            "#{window_name} bell=#{window_bell_flag} notice=#{@orch_notice}",
        ],
    );
    let line = |name: &str| {
        windows
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no window {name} in {windows}"))
            .to_string()
    };
    assert!(line("control").contains("bell=1"), "{windows}");
    assert!(line("a-mine").contains("task a failed"), "{windows}");
    assert!(!line("b-mine").contains("failed"), "{windows}");

    // The desktop: the title and the reason, as arguments.
    let shown = std::fs::read_to_string(&record).unwrap();
    assert!(
        shown.contains(&format!("orch: run {run_id}: task a failed")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("orch: run {run_id} failed")),
        "{shown}"
    );
    // Nothing went wrong telling the user.
    let status = up.status();
    assert!(
        !status["warnings"].to_string().contains("notify"),
        "{status:#}"
    );
}

/// Fails at `task_failed`, with words on stderr; hangs at `run_ended` (its `sleep` a child,
/// which must be stopped with it).
const BAD_HOOK: &str = r#"#!/bin/sh
mkdir -p notices
doc=$(cat)
case "$doc" in
  *task_failed*) echo "no route to the chat server" >&2; exit 3 ;;
esac
echo $$ > notices/hung.pid
sleep 61
"#;

#[test]
fn a_hook_that_fails_or_hangs_is_a_warning_and_the_run_ends_as_it_would() {
    let up = options("badhook", BAD_HOOK, "2s").start();
    std::fs::create_dir_all(up.p.path("counts")).unwrap();
    std::fs::write(up.p.path("counts/go"), "").unwrap();
    up.start();
    up.wait(1);
    let status = up.status();
    // The run failed for its task, not for its hook.
    let reason = status["reason"].as_str().unwrap_or_default();
    assert_eq!(reason, "task(s) not done: a", "{status:#}");
    assert_eq!(Up::task(&status, "b")["state"], "done", "{status:#}");
    let warnings: Vec<String> = status["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == "notify")
        .map(|w| w["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("failed (exit status: 3)")
                && w.contains("no route to the chat server")
                && w.contains("task_failed")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("did not finish within 2s") && w.contains("run_ended")),
        "{warnings:#?}"
    );
    // The hung hook was stopped, with what it started.
    let pid: i32 = up.p.read("notices/hung.pid").trim().parse().unwrap();
    up.wait_until("the hung hook to be gone", || {
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) != 0 }
    });
    let sleeping = crate::support::command_lines_with(&["sleep 61"]);
    assert!(sleeping.is_empty(), "{sleeping:?}");
}

#[test]
fn doctor_fails_a_hook_that_is_not_there_to_run() {
    let p = crate::support::TestProject::new();
    p.file(
        "orch.yaml",
        &format!(
            "{}notify:\n  hook: [\"./notify.sh\"]\n",
            crate::support::SCRIPTED
        ),
    );
    p.orch()
        .args(["doctor"])
        .run()
        .expect(1)
        .stdout_has("the notify hook `./notify.sh` is not an executable file");
    p.script("notify.sh", "#!/bin/sh\ncat > /dev/null\n");
    p.orch()
        .args(["doctor"])
        .run()
        .stdout_has("ok    notify hook `./notify.sh`");
}
