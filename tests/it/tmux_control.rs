//! `RealTmux::with_control_mode` against real tmux: commands go through one control-mode
//! client and give what a `tmux` process per command gives, arguments arrive byte for byte,
//! errors are the same errors, and when the client is gone processes take over.

use crate::support;

use std::fs;

use support::{TIMEOUT, Tmux, TmuxError, WindowSpec, argv, private_server, wait_until};

const SESSION: &str = "orch-control";

/// `#{session_attached}` as a separate `tmux` process sees it.
fn attached(socket: &str) -> String {
    let out = std::process::Command::new("tmux")
        .args(["-L", socket, "display-message", "-p", "-t"])
        .arg(format!("={SESSION}:"))
        .arg("#{session_attached}")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn commands_go_through_one_client_and_give_what_a_process_gives() {
    let server = private_server("control");
    let dir = tempfile::tempdir().unwrap();
    let plain = server.tmux();
    plain
        .new_session(
            SESSION,
            &WindowSpec::new("control", dir.path(), argv(&["cat"])),
            (120, 40),
        )
        .unwrap();
    let control = plain.clone().with_control_mode(SESSION);
    assert_eq!(attached(server.socket_name()), "0");

    // Words tmux's parser would otherwise read: quotes, a trailing `;`, `#{}`, `$`, `~`.
    let word = "it's a;b \"q\" #{pane_id} $HOME ~ \\;";
    let out = dir.path().join("out");
    let script = r#"printf '%s' "$1" > "$0.tmp" && mv "$0.tmp" "$0"; exec cat"#;
    let spec = WindowSpec::new(
        "w#1;",
        dir.path(),
        argv(&["sh", "-c", script, out.to_str().unwrap(), word]),
    );
    let pane = control.new_window(SESSION, &spec).unwrap();
    wait_until(
        "the pane to write its argument",
        TIMEOUT,
        || fs::read(&out).is_ok_and(|b| b == word.as_bytes()),
        || format!("{:?}", fs::read_to_string(&out)),
    );
    // The control client is attached: the command did not go through a process.
    assert_eq!(attached(server.socket_name()), "1");

    let through_control = control.list_panes(SESSION).unwrap();
    assert_eq!(through_control, plain.list_panes(SESSION).unwrap());
    let new = through_control
        .iter()
        .find(|p| p.pane_id == pane.pane_id)
        .unwrap();
    assert_eq!(new.window_name, "w#1;");

    // Errors are classified as for a process.
    assert!(!control.has_session("no-such-session").unwrap());
    assert!(matches!(
        control.kill_pane("%999"),
        Err(TmuxError::CommandFailed { .. })
    ));
    // An option is no command: it goes to a process.
    assert!(control.version().unwrap().starts_with('3'));
}

#[test]
fn processes_take_over_when_the_session_is_gone() {
    let server = private_server("control-gone");
    let dir = tempfile::tempdir().unwrap();
    let control = server.tmux().clone().with_control_mode(SESSION);
    // No session yet: no client can attach, and a process does the work.
    let idle = WindowSpec::new("control", dir.path(), argv(&["cat"]));
    // A session of its own keeps the server up once SESSION is killed: with none left, the
    // server exits (`exit-empty`), and a `new-session` that reached it as it went down failed
    // once under a loaded machine. What is tested is the client's takeover, not that race.
    server
        .tmux()
        .new_session("keeper", &idle, (120, 40))
        .unwrap();
    control.new_session(SESSION, &idle, (120, 40)).unwrap();
    assert_eq!(control.list_panes(SESSION).unwrap().len(), 1);
    control.kill_session(SESSION).unwrap();
    assert!(!control.has_session(SESSION).unwrap());
    // A new session of the same name: the commands still work.
    control.new_session(SESSION, &idle, (120, 40)).unwrap();
    control
        .new_window(SESSION, &WindowSpec::new("two", dir.path(), argv(&["cat"])))
        .unwrap();
    assert_eq!(control.list_panes(SESSION).unwrap().len(), 2);
}
