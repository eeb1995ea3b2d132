//! Pipelined control-mode commands against a real private tmux server: several command lists
//! sent before any answer, each answer matched to its list in order, a failing list in the
//! middle leaving the others alone.

use super::parse::Subject;
use super::real::words;
use super::{PrivateServer, Tmux, TmuxError, WindowSpec};

const SESSION: &str = "orch-pipeline";

/// `#{session_attached}` as a separate `tmux` process sees it: 1 once the control client is.
fn attached(server: &PrivateServer) -> String {
    let out = std::process::Command::new("tmux")
        .args(["-L", server.socket_name(), "display-message", "-p", "-t"])
        .arg(format!("={SESSION}:"))
        .arg("#{session_attached}")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn started(server: &PrivateServer, dir: &std::path::Path) {
    let spec = WindowSpec::new("control", dir, vec!["cat".into()]);
    server
        .tmux()
        .new_session(SESSION, &spec, (120, 40))
        .unwrap();
}

#[test]
fn answers_come_back_in_order_and_an_error_stops_only_its_own_list() {
    let server = PrivateServer::new("pipeline-order");
    let dir = tempfile::tempdir().unwrap();
    started(&server, dir.path());
    let control = server.tmux().clone().with_control_mode(SESSION);
    let say = |text: &str| (vec![words(["display-message", "-p", text])], Subject::Other);
    let lists = vec![
        say("one"),
        (
            vec![
                words(["kill-pane", "-t", "%999"]),
                words(["display-message", "-p", "never"]),
            ],
            Subject::Target("%999"),
        ),
        say("three"),
        (
            vec![
                words(["display-message", "-p", "four"]),
                words(["display-message", "-p", "five"]),
            ],
            Subject::Other,
        ),
    ];
    let answers = control.run_many(lists);
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0].as_ref().unwrap(), "one\n");
    assert!(
        matches!(&answers[1], Err(TmuxError::CommandFailed { command, .. })
            if command.starts_with("(control mode)")),
        "{:?}",
        answers[1]
    );
    assert_eq!(answers[2].as_ref().unwrap(), "three\n");
    assert_eq!(answers[3].as_ref().unwrap(), "four\nfive\n");
    // They went through the control client, not through processes.
    assert_eq!(attached(&server), "1");
}

#[test]
fn many_windows_in_one_batch_each_get_their_own_pane() {
    let server = PrivateServer::new("pipeline-windows");
    let dir = tempfile::tempdir().unwrap();
    started(&server, dir.path());
    let control = server.tmux().clone().with_control_mode(SESSION);
    let mut specs: Vec<WindowSpec> = (0..12)
        .map(|i| WindowSpec::new(format!("w{i}"), dir.path(), vec!["cat".into()]))
        .collect();
    // Bad input is refused alone, before anything is sent.
    specs[5].name = String::new();
    let panes = control.new_windows(SESSION, &specs);
    assert_eq!(panes.len(), 12);
    assert!(matches!(panes[5], Err(TmuxError::InvalidArgument { .. })));
    let listed = server.tmux().list_panes(SESSION).unwrap();
    for (i, pane) in panes.iter().enumerate().filter(|(i, _)| *i != 5) {
        let pane = pane.as_ref().unwrap();
        let found = listed
            .iter()
            .find(|p| p.pane_id == pane.pane_id)
            .unwrap_or_else(|| panic!("pane {} of w{i} not listed: {listed:?}", pane.pane_id));
        assert_eq!(found.window_name, format!("w{i}"));
        assert_eq!(found.pid, pane.pid);
    }
    assert_eq!(listed.len(), 12); // the control window and 11 new ones
    // remain-on-exit was set on each new window in the same list.
    let out = std::process::Command::new("tmux")
        .args(["-L", server.socket_name(), "show-options", "-w", "-v", "-t"])
        .arg(format!("={SESSION}:w11"))
        .arg("remain-on-exit")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "on");
}
