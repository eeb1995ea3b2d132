//! `RealTmux` against real tmux, each test on its own private server.
//!
//! Children report through files in a temporary directory; tests wait for those files
//! (or for tmux's view of the panes) with a deadline, never with fixed sleeps. The shell
//! scripts some children run are constants: test data reaches them only as arguments.

use crate::support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use orch::tmux::{escape_format, tmux_quote};
use support::{
    PrivateServer, TIMEOUT, Tmux, TmuxError, WindowSpec, argv, private_server, session_diagnostics,
    wait_for_pane, wait_until,
};

/// Session used by most tests; each test has its own server, so names cannot clash.
const SESSION: &str = "orch-test";

/// A child that blocks until the pane is killed (stdin is the pane's terminal).
fn idle(name: &str, dir: &Path) -> WindowSpec {
    WindowSpec::new(name, dir, argv(&["cat"]))
}

/// A child that writes `$VAR` to `out`, then stays.
fn write_var(name: &str, dir: &Path, var: &str, out: &Path) -> WindowSpec {
    let script = r#"printf '%s' "$(printenv "$1")" > "$0.tmp" && mv "$0.tmp" "$0"; exec cat"#;
    let out = out.to_str().expect("temp paths are UTF-8");
    WindowSpec::new(name, dir, argv(&["sh", "-c", script, out, var]))
}

/// Waits until `path` holds exactly `expected`.
fn wait_for_content(tmux: &dyn Tmux, path: &Path, expected: &[u8]) {
    wait_until(
        &format!(
            "{} to contain {:?}",
            path.display(),
            String::from_utf8_lossy(expected)
        ),
        TIMEOUT,
        || fs::read(path).is_ok_and(|got| got == expected),
        || {
            format!(
                "file now: {:?}\n{}",
                fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()),
                session_diagnostics(tmux, SESSION)
            )
        },
    );
}

fn start(server: &PrivateServer, dir: &Path) {
    server
        .tmux()
        .new_session(SESSION, &idle("control", dir), (120, 40))
        .expect("new_session on a private server");
}

#[test]
fn version_is_3_or_later() {
    let server = private_server("version");
    let version = server.tmux().version().unwrap();
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("unexpected version {version:?}"));
    assert!(major >= 3, "{version}");
}

#[test]
fn env_given_with_e_reaches_the_children() {
    let server = private_server("env");
    let tmux = server.tmux();
    let dir = tempfile::tempdir().unwrap();
    let (first, second, inherited) = (
        dir.path().join("first"),
        dir.path().join("second"),
        dir.path().join("inherited"),
    );
    let spec = write_var("control", dir.path(), "ORCH_T_FIRST", &first)
        .with_env("ORCH_T_FIRST", "alpha = 1");
    tmux.new_session(SESSION, &spec, (100, 30)).unwrap();
    let spec = write_var("w", dir.path(), "ORCH_T_SECOND", &second)
        .with_env("ORCH_T_SECOND", "beta $HOME `id` 'q'");
    tmux.new_window(SESSION, &spec).unwrap();
    // The first window's variables are the session environment: later windows get them.
    tmux.new_window(
        SESSION,
        &write_var("w2", dir.path(), "ORCH_T_FIRST", &inherited),
    )
    .unwrap();

    wait_for_content(tmux, &first, b"alpha = 1");
    wait_for_content(tmux, &second, b"beta $HOME `id` 'q'");
    wait_for_content(tmux, &inherited, b"alpha = 1");
}

#[test]
fn argv_reaches_the_program_without_interpretation() {
    let server = private_server("argv");
    let tmux = server.tmux();
    let dir = tempfile::tempdir().unwrap();
    start(&server, dir.path());
    let out = dir.path().join("args");
    let tricky = [
        "a b",
        "it's",
        "\"q\"",
        "$(id)",
        "`id`",
        "$HOME",
        "*",
        "a;",
        ";",
        "\\;",
        "x\\",
        "{",
        "#{pane_id}",
        "##",
        "-x",
        "--",
        "",
        "~",
        "line\nbreak",
        "tab\there",
        "é ü",
    ];
    let script =
        r#"for a in "$@"; do printf '%s\0' "$a"; done > "$0.tmp" && mv "$0.tmp" "$0"; exec cat"#;
    let mut words = argv(&["sh", "-c", script, out.to_str().unwrap()]);
    words.extend(argv(&tricky));
    tmux.new_window(SESSION, &WindowSpec::new("args", dir.path(), words))
        .unwrap();

    let expected: Vec<u8> = tricky
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    wait_for_content(tmux, &out, &expected);
}

#[test]
fn names_and_directories_are_not_expanded() {
    let server = private_server("names");
    let tmux = server.tmux();
    let dir = tempfile::tempdir().unwrap();
    start(&server, dir.path());
    let cwd = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("odd #{pane_id} dir;");
    fs::create_dir(&cwd).unwrap();
    let out = dir.path().join("pwd");
    let script = r#"pwd > "$0.tmp" && mv "$0.tmp" "$0"; exec cat"#;
    let name = "task #1 #{pane_id};";
    let spec = WindowSpec::new(
        name,
        &cwd,
        argv(&["sh", "-c", script, out.to_str().unwrap()]),
    );
    let pane = tmux.new_window(SESSION, &spec).unwrap();

    wait_for_content(tmux, &out, format!("{}\n", cwd.display()).as_bytes());
    let listed = wait_for_pane(tmux, SESSION, "the new window", |p| {
        p.pane_id == pane.pane_id
    });
    assert_eq!(listed.window_name, name);

    tmux.rename_window(&pane.window_id, "renamed #{x};")
        .unwrap();
    wait_for_pane(tmux, SESSION, "the renamed window", |p| {
        p.pane_id == pane.pane_id && p.window_name == "renamed #{x};"
    });
}

#[test]
fn instantly_exiting_commands_leave_dead_panes_with_their_status() {
    let server = private_server("instant");
    let tmux = server.tmux();
    let dir = tempfile::tempdir().unwrap();
    let first = WindowSpec::new("first", dir.path(), argv(&["sh", "-c", "exit 3"]));
    let mut expected = vec![(
        tmux.new_session(SESSION, &first, (120, 40)).unwrap(),
        Some(3),
        None,
    )];
    let live = tmux.new_window(SESSION, &idle("live", dir.path())).unwrap();
    // Repeated, because a race would only show some of the time.
    for round in 0..10 {
        let spec = WindowSpec::new(format!("true{round}"), dir.path(), argv(&["true"]));
        expected.push((tmux.new_window(SESSION, &spec).unwrap(), Some(0), None));
        let spec = WindowSpec::new("exit7", dir.path(), argv(&["sh", "-c", "exit 7"]));
        expected.push((tmux.new_window(SESSION, &spec).unwrap(), Some(7), None));
    }
    let spec = WindowSpec::new("", dir.path(), argv(&["sh", "-c", "exit 4"]));
    expected.push((
        tmux.split_window(&live.window_id, &spec).unwrap(),
        Some(4),
        None,
    ));
    let spec = WindowSpec::new("sig", dir.path(), argv(&["sh", "-c", "kill -TERM $$"]));
    expected.push((tmux.new_window(SESSION, &spec).unwrap(), None, Some(15)));

    wait_until(
        "every short-lived pane to be listed dead with its exit status or signal",
        TIMEOUT,
        || {
            let Ok(panes) = tmux.list_panes(SESSION) else {
                return false;
            };
            expected.iter().all(|(info, status, signal)| {
                panes.iter().any(|p| {
                    p.pane_id == info.pane_id
                        && p.dead
                        && p.dead_status == *status
                        && p.dead_signal == *signal
                })
            })
        },
        || {
            format!(
                "expected {expected:?}\n{}",
                session_diagnostics(tmux, SESSION)
            )
        },
    );
    let live_state = wait_for_pane(tmux, SESSION, "the live pane", |p| {
        p.pane_id == live.pane_id
    });
    assert!(!live_state.dead);
}

#[test]
fn final_output_stays_readable_after_exit() {
    let server = private_server("output");
    let tmux = server.tmux();
    let dir = tempfile::tempdir().unwrap();
    start(&server, dir.path());
    let go = dir.path().join("go");
    // The leading newline keeps the words off the top line, which tmux scrolls away
    // to print "Pane is dead".
    let script = r#"printf '\nlast words\n'; while [ ! -e "$0" ]; do sleep 0.02; done; exit 3"#;
    let spec = WindowSpec::new(
        "agent",
        dir.path(),
        argv(&["sh", "-c", script, go.to_str().unwrap()]),
    );
    let pane = tmux.new_window(SESSION, &spec).unwrap();
    let shows_words = || {
        tmux.capture_pane(&pane.pane_id)
            .is_ok_and(|screen| screen.contains("last words"))
    };
    wait_until("the words on screen", TIMEOUT, shows_words, || {
        session_diagnostics(tmux, SESSION)
    });

    fs::write(&go, "").unwrap();
    wait_for_pane(tmux, SESSION, "the pane to be dead with status 3", |p| {
        p.pane_id == pane.pane_id && p.dead && p.dead_status == Some(3)
    });
    let screen = tmux.capture_pane(&pane.pane_id).unwrap();
    assert!(screen.contains("last words"), "{screen:?}");
    assert!(screen.contains("Pane is dead"), "{screen:?}");
}

#[test]
fn list_panes_reports_ids_names_and_live_pids() {
    let server = private_server("list");
    let tmux = server.tmux();
    let dir = tempfile::tempdir().unwrap();
    let control = tmux
        .new_session(SESSION, &idle("control", dir.path()), (120, 40))
        .unwrap();
    let task = tmux
        .new_window(SESSION, &idle("task-1", dir.path()))
        .unwrap();
    let split = tmux
        .split_window(&task.window_id, &idle("ignored", dir.path()))
        .unwrap();

    let panes = tmux.list_panes(SESSION).unwrap();
    let summary: Vec<_> = panes
        .iter()
        .map(|p| {
            (
                p.pane_id.clone(),
                p.window_id.clone(),
                p.window_name.clone(),
                p.pid,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                control.pane_id,
                control.window_id,
                "control".to_string(),
                control.pid
            ),
            (
                task.pane_id,
                task.window_id.clone(),
                "task-1".to_string(),
                task.pid
            ),
            (
                split.pane_id,
                task.window_id,
                "task-1".to_string(),
                split.pid
            ),
        ]
    );
    for pane in &panes {
        assert!(!pane.dead && pane.dead_status.is_none() && pane.dead_signal.is_none());
        let pid = libc::pid_t::try_from(pane.pid).unwrap();
        // SAFETY: signal 0 only checks that the process exists.
        assert_eq!(
            unsafe { libc::kill(pid, 0) },
            0,
            "pid {} is not alive",
            pane.pid
        );
    }
}

#[test]
fn split_window_tiles_and_reports_no_space() {
    let server = private_server("split");
    let tmux = server.tmux();
    let dir = tempfile::tempdir().unwrap();
    let first = tmux
        .new_session(SESSION, &idle("control", dir.path()), (40, 12))
        .unwrap();
    let mut panes = 1;
    let error = loop {
        match tmux.split_window(&first.window_id, &idle("", dir.path())) {
            Ok(_) => panes += 1,
            Err(err) => break err,
        }
        assert!(
            panes < 40,
            "a 40x12 window took {panes} panes without complaint"
        );
    };
    assert!(matches!(error, TmuxError::NoSpace { .. }), "{error:?}");
    assert!(panes >= 2, "{}", session_diagnostics(tmux, SESSION));
    tmux.select_layout(&first.window_id, "tiled").unwrap();
    assert_eq!(tmux.list_panes(SESSION).unwrap().len(), panes);
    let err = tmux
        .select_layout(&first.window_id, "no-such-layout")
        .unwrap_err();
    // Refused before it reaches tmux, whose 3.3a server crashes on an unknown layout name.
    assert!(matches!(err, TmuxError::InvalidArgument { .. }), "{err:?}");
    assert!(tmux.has_session(SESSION).unwrap(), "the server survived");
}

#[test]
fn sessions_are_matched_exactly_and_killed_idempotently() {
    let server = private_server("kill");
    let tmux = server.tmux();
    let dir = tempfile::tempdir().unwrap();
    tmux.new_session("keep", &idle("control", dir.path()), (80, 24))
        .unwrap();
    tmux.new_session("orch-test-2", &idle("control", dir.path()), (80, 24))
        .unwrap();
    // "orch-test" is a prefix of an existing session, not a session.
    assert!(!tmux.has_session(SESSION).unwrap());
    assert!(tmux.has_session("orch-test-2").unwrap());
    let err = tmux.list_panes(SESSION).unwrap_err();
    assert!(matches!(err, TmuxError::SessionNotFound { ref session, .. } if session == SESSION));

    tmux.kill_session("orch-test-2").unwrap();
    assert!(!tmux.has_session("orch-test-2").unwrap());
    tmux.kill_session("orch-test-2").unwrap();
    assert!(tmux.has_session("keep").unwrap());

    tmux.kill_server().unwrap();
    tmux.kill_server().unwrap();
    tmux.kill_session("keep").unwrap();
    assert!(!tmux.has_session("keep").unwrap());
    let err = tmux.list_panes("keep").unwrap_err();
    assert!(matches!(err, TmuxError::ServerNotRunning { .. }), "{err:?}");
}

#[test]
fn pane_died_hook_runs_for_windows_before_and_after_set_hook() {
    let server = private_server("hook");
    let tmux = server.tmux();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("we'ird #dir");
    fs::create_dir(&work).unwrap();
    start(&server, dir.path());
    // Children wait for this file, so they die after the hook is set (tmux 3.3a may
    // skip pane-died for a command that exits within milliseconds of starting).
    let go = work.join("go");
    let waiter = |name: &str| {
        let script = r#"while [ ! -e "$0" ]; do sleep 0.02; done; exit 5"#;
        WindowSpec::new(
            name,
            dir.path(),
            argv(&["sh", "-c", script, go.to_str().unwrap()]),
        )
    };
    let before = tmux.new_window(SESSION, &waiter("before")).unwrap();

    let prefix = format!("{}/died-", work.display());
    let quoted = shlex::try_quote(&prefix).unwrap();
    let shell = format!("touch {}#{{hook_pane}}", escape_format(&quoted));
    tmux.set_hook(
        SESSION,
        "pane-died",
        &format!("run-shell -b {}", tmux_quote(&shell)),
    )
    .unwrap();

    let after = tmux.new_window(SESSION, &waiter("after")).unwrap();
    let split = tmux.split_window(&after.window_id, &waiter("")).unwrap();
    fs::write(&go, "").unwrap();

    for pane in [&before, &after, &split] {
        let marker = work.join(format!("died-{}", pane.pane_id));
        wait_until(
            &format!("the pane-died hook to create {}", marker.display()),
            TIMEOUT,
            || {
                // Reconciling, as the engine does, gets tmux to notice exits it missed.
                let _ = tmux.list_panes(SESSION);
                marker.exists()
            },
            || {
                format!(
                    "files: {:?}\n{}",
                    fs::read_dir(&work)
                        .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
                    session_diagnostics(tmux, SESSION)
                )
            },
        );
    }
    let control = &tmux.list_panes(SESSION).unwrap()[0];
    assert!(!work.join(format!("died-{}", control.pane_id)).exists());
}

#[test]
fn session_hooks_are_set_on_the_session() {
    let server = private_server("session-hook");
    let tmux = server.tmux();
    let dir = tempfile::tempdir().unwrap();
    let first = tmux
        .new_session(SESSION, &idle("control", dir.path()), (120, 40))
        .unwrap();
    let marker = dir.path().join("split");
    let shell = format!(
        "touch {}",
        escape_format(&shlex::try_quote(marker.to_str().unwrap()).unwrap())
    );
    tmux.set_hook(
        SESSION,
        "after-split-window",
        &format!("run-shell -b {}", tmux_quote(&shell)),
    )
    .unwrap();
    tmux.split_window(&first.window_id, &idle("", dir.path()))
        .unwrap();
    wait_until(
        "after-split-window to run",
        TIMEOUT,
        || marker.exists(),
        || session_diagnostics(tmux, SESSION),
    );
    let err = tmux.set_hook(SESSION, "pane-died[1]", "x").unwrap_err();
    assert!(matches!(err, TmuxError::InvalidArgument { .. }), "{err:?}");
}

#[test]
fn a_server_that_never_started_is_not_running() {
    let server = private_server("absent");
    let tmux = server.tmux();
    assert!(!server.is_running());
    assert!(!tmux.has_session(SESSION).unwrap());
    tmux.kill_session(SESSION).unwrap();
    tmux.kill_server().unwrap();
    for err in [
        tmux.list_panes(SESSION).unwrap_err(),
        tmux.capture_pane("%0").unwrap_err(),
    ] {
        assert!(matches!(err, TmuxError::ServerNotRunning { .. }), "{err:?}");
    }
}

#[test]
fn dropping_the_private_server_kills_it() {
    let server = private_server("drop");
    let dir = tempfile::tempdir().unwrap();
    start(&server, dir.path());
    assert!(server.is_running());
    let socket = server.socket_name().to_string();
    let path = server.tmux().socket_path().unwrap();
    assert!(path.exists());
    drop(server);

    let has_session = || {
        Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "has-session"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("tmux runs")
            .success()
    };
    wait_until(
        "the dropped server to be gone",
        TIMEOUT,
        || !has_session() && !path.exists(),
        || {
            format!(
                "has-session succeeds: {}, socket exists: {}",
                has_session(),
                path.exists()
            )
        },
    );
}

#[test]
fn respawn_runs_a_dead_pane_again_in_place_and_panes_show_their_start_command() {
    let server = private_server("respawn");
    let tmux = server.tmux();
    let dir = tempfile::tempdir().unwrap();
    start(&server, dir.path());
    let spaced = dir.path().join("a b");
    fs::create_dir_all(&spaced).unwrap();
    let script = spaced.join("launch.sh");
    fs::write(&script, "exit 3\n").unwrap();
    let path = script.to_str().unwrap();
    let pane = tmux
        .new_window(
            SESSION,
            &WindowSpec::new("w", dir.path(), argv(&["sh", path])),
        )
        .unwrap();
    let dead = wait_for_pane(tmux, SESSION, "the pane to die", |p| {
        p.pane_id == pane.pane_id && p.dead_status == Some(3)
    });
    assert_eq!(dead.start_command, format!("sh \"{path}\""));

    let out = dir.path().join("respawned");
    tmux.respawn_pane(
        &pane.pane_id,
        &write_var("ignored", dir.path(), "ORCH_X", &out).with_env("ORCH_X", "again"),
    )
    .unwrap();
    wait_for_content(tmux, &out, b"again");
    let panes = tmux.list_panes(SESSION).unwrap();
    let again = panes.iter().find(|p| p.pane_id == pane.pane_id).unwrap();
    assert!(!again.dead, "{again:?}");
    assert_eq!(again.window_id, pane.window_id, "same window, same place");
    assert!(again.start_command.starts_with("sh -c "), "{again:?}");
}
