//! The locks' semantics: one engine per run, runs in place exclude each other, worktree runs
//! do not, a command takes the checkout for an instant, a dead holder blocks nobody, and
//! runs from before the run lock are still found live.

use super::*;
use std::process::{Command, Stdio};

fn engine(run_id: &str) -> Holder {
    Holder {
        run_id: run_id.into(),
        pid: std::process::id(),
        command: None,
    }
}

fn run(state: &Path, id: &str) -> RunDir {
    let dir = RunDir::new(state, id);
    dir.create().unwrap();
    dir
}

#[test]
fn a_held_run_lock_names_its_engine_and_refuses_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let a = run(tmp.path(), "run-a");
    let lock = EngineLock::acquire(tmp.path(), &a, false).unwrap();
    assert_eq!(lock.path(), a.engine_lock());
    assert_eq!(run_holder(tmp.path(), &a), Some(engine("run-a")));
    // Another open file description conflicts, as another process would.
    match EngineLock::acquire(tmp.path(), &a, false) {
        Err(LockError::RunLive(holder)) => assert_eq!(holder, engine("run-a")),
        other => panic!("expected RunLive, got {other:?}"),
    }
    let err = RunLock::acquire(&a, Some("down")).unwrap_err();
    assert!(err.to_string().contains("down --run run-a"), "{err}");
    // The failed attempts did not disturb the holder's record.
    assert_eq!(run_holder(tmp.path(), &a), Some(engine("run-a")));
    drop(lock);
    assert_eq!(run_holder(tmp.path(), &a), None);
    assert_eq!(std::fs::read_to_string(a.engine_lock()).unwrap(), "");
}

#[test]
fn worktree_runs_run_side_by_side_and_beside_one_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        run(tmp.path(), "20260101-000000-000a"),
        run(tmp.path(), "20260101-000000-000b"),
        run(tmp.path(), "20260101-000000-000c"),
    );
    let _a = EngineLock::acquire(tmp.path(), &a, false).unwrap();
    let _b = EngineLock::acquire(tmp.path(), &b, false).unwrap();
    assert_eq!(checkout_holder(tmp.path()), None);
    let _c = EngineLock::acquire(tmp.path(), &c, true).unwrap();
    assert_eq!(checkout_holder(tmp.path()), Some(engine(c.id())));
    let live: Vec<String> = live_runs(tmp.path())
        .into_iter()
        .map(|h| h.run_id)
        .collect();
    assert_eq!(live, [c.id(), b.id(), a.id()], "newest first");
}

#[test]
fn runs_in_place_exclude_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (run(tmp.path(), "run-a"), run(tmp.path(), "run-b"));
    let first = EngineLock::acquire(tmp.path(), &a, true).unwrap();
    let err = EngineLock::acquire(tmp.path(), &b, true).unwrap_err();
    match &err {
        LockError::CheckoutBusy(holder) => assert_eq!(*holder, engine("run-a")),
        other => panic!("expected CheckoutBusy, got {other:?}"),
    }
    assert!(
        err.to_string().contains("live in place") && err.to_string().contains("--run run-a"),
        "{err}"
    );
    // The refused engine let go of its run lock too: nothing of it stays live.
    assert_eq!(run_holder(tmp.path(), &b), None);
    drop(first);
    EngineLock::acquire(tmp.path(), &b, true).unwrap();
}

#[test]
fn a_command_takes_the_checkout_for_an_instant_and_is_told_who_writes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (run(tmp.path(), "run-a"), run(tmp.path(), "run-b"));
    let merge = CheckoutLock::acquire(tmp.path(), "run-b", "merge").unwrap();
    let holder = checkout_holder(tmp.path()).unwrap();
    assert_eq!(holder.command.as_deref(), Some("merge"));
    assert!(!holder.is_engine());
    // A merge is no engine: the run it merges is not live because of it.
    assert_eq!(run_holder(tmp.path(), &b), None);
    let err = EngineLock::acquire(tmp.path(), &a, true).unwrap_err();
    assert!(
        err.to_string().contains("merge` of run run-b")
            && err.to_string().contains("writing the checkout"),
        "{err}"
    );
    // A worktree run does not need the checkout.
    let worktree = EngineLock::acquire(tmp.path(), &a, false).unwrap();
    drop((merge, worktree));
    let _in_place = EngineLock::acquire(tmp.path(), &a, true).unwrap();
    let err = CheckoutLock::acquire(tmp.path(), "run-b", "merge").unwrap_err();
    assert!(
        matches!(&err, LockError::CheckoutBusy(h) if h.run_id == "run-a"),
        "{err}"
    );
}

#[test]
fn a_merge_waits_for_the_runs_engine_and_for_a_run_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (run(tmp.path(), "run-a"), run(tmp.path(), "run-b"));
    // b's engine is live: b cannot be merged (nor its record written).
    let b_engine = EngineLock::acquire(tmp.path(), &b, false).unwrap();
    let err = CommandLock::acquire(tmp.path(), &b, "merge", true).unwrap_err();
    assert!(
        matches!(&err, LockError::RunLive(h) if h.run_id == "run-b"),
        "{err}"
    );
    // a is merged while b, a worktree run, goes on.
    let merge = CommandLock::acquire(tmp.path(), &a, "merge", true).unwrap();
    // Meanwhile a's record is taken (no `orch resume` of a) and so is the checkout.
    assert!(matches!(
        EngineLock::acquire(tmp.path(), &a, false),
        Err(LockError::RunLive(h)) if h.command.as_deref() == Some("merge")
    ));
    assert_eq!(
        run_holder(tmp.path(), &a).unwrap().command.as_deref(),
        Some("merge")
    );
    assert!(live_runs(tmp.path()).iter().all(|h| h.run_id == "run-b"));
    drop((merge, b_engine));
    // A run in place holds the checkout: a's merge waits for it, a's discard does not.
    let _b_in_place = EngineLock::acquire(tmp.path(), &b, true).unwrap();
    let err = CommandLock::acquire(tmp.path(), &a, "merge", true).unwrap_err();
    assert!(
        matches!(&err, LockError::CheckoutBusy(h) if h.run_id == "run-b"),
        "{err}"
    );
    // The refused merge let go of a's run lock.
    assert_eq!(run_holder(tmp.path(), &a), None);
    CommandLock::acquire(tmp.path(), &a, "discard", false).unwrap();
}

#[test]
fn no_lock_file_means_no_holder() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(checkout_holder(tmp.path()), None);
    assert_eq!(checkout_holder(&tmp.path().join("no/such/dir")), None);
    assert_eq!(run_holder(tmp.path(), &RunDir::new(tmp.path(), "r")), None);
    assert!(live_runs(tmp.path()).is_empty());
}

#[test]
fn a_stale_lock_file_does_not_block() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run(tmp.path(), "new-run");
    std::fs::write(tmp.path().join("lock"), "old-run 999999\n").unwrap();
    std::fs::write(dir.engine_lock(), "new-run 999999\n").unwrap();
    assert_eq!(checkout_holder(tmp.path()), None);
    assert_eq!(run_holder(tmp.path(), &dir), None);
    let lock = EngineLock::acquire(tmp.path(), &dir, true).unwrap();
    let mine = format!("new-run {}\n", std::process::id());
    assert_eq!(std::fs::read_to_string(lock.path()).unwrap(), mine);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("lock")).unwrap(),
        mine
    );
}

/// `path` locked by a child process (a `sleep`) that names itself `content`.
fn held_by_a_child(path: &Path, content: &str) -> std::process::Child {
    let file = open_lock_file(path).unwrap();
    assert!(try_lock(&file).unwrap());
    std::fs::write(path, content).unwrap();
    // The child inherits the locked file description as its stdin; ours closes after the
    // spawn, so only the child holds the lock.
    Command::new("sleep")
        .arg("30")
        .stdin(Stdio::from(file))
        .spawn()
        .unwrap()
}

#[test]
fn a_run_lock_held_by_another_process_is_released_when_it_dies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run(tmp.path(), "child-run");
    let mut child = held_by_a_child(&dir.engine_lock(), "child-run 42\n");
    let found = run_holder(tmp.path(), &dir).unwrap();
    assert_eq!((found.run_id.as_str(), found.pid), ("child-run", 42));
    assert_eq!(live_runs(tmp.path()), [found]);
    assert!(matches!(
        EngineLock::acquire(tmp.path(), &dir, false),
        Err(LockError::RunLive(_))
    ));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(run_holder(tmp.path(), &dir), None);
    assert!(live_runs(tmp.path()).is_empty());
    EngineLock::acquire(tmp.path(), &dir, false).unwrap();
}

#[test]
fn a_run_from_before_the_run_lock_is_live_while_its_engine_holds_the_project_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let old = run(tmp.path(), "old-run");
    let other = run(tmp.path(), "other-run");
    // An engine of an older orch: `.orch/lock` alone, no `engine.lock` in its directory.
    let mut child = held_by_a_child(&tmp.path().join("lock"), "old-run 42\n");
    assert!(!old.engine_lock().exists());
    let found = run_holder(tmp.path(), &old).unwrap();
    assert_eq!((found.run_id.as_str(), found.pid), ("old-run", 42));
    assert!(found.is_engine());
    assert_eq!(run_holder(tmp.path(), &other), None);
    assert_eq!(live_runs(tmp.path()), [found]);
    // It ran in place: a new run in place waits for it, a worktree run does not.
    assert!(matches!(
        EngineLock::acquire(tmp.path(), &other, true),
        Err(LockError::CheckoutBusy(h)) if h.run_id == "old-run"
    ));
    EngineLock::acquire(tmp.path(), &other, false).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(run_holder(tmp.path(), &old), None);
}

#[test]
fn a_lock_whose_file_is_gone_is_taken_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run(tmp.path(), "r");
    let mut lock = EngineLock::acquire(tmp.path(), &dir, true).unwrap();
    // Nothing gone: nothing taken again (taking the held locks again would block).
    lock.restore(tmp.path(), &dir).unwrap();
    std::fs::remove_dir_all(tmp.path()).unwrap();
    assert_eq!(run_holder(tmp.path(), &dir), None);
    std::fs::create_dir_all(dir.path()).unwrap();
    lock.restore(tmp.path(), &dir).unwrap();
    assert_eq!(run_holder(tmp.path(), &dir), Some(engine("r")));
    assert_eq!(checkout_holder(tmp.path()), Some(engine("r")));
}

#[test]
fn holders_are_read_in_both_forms_and_nothing_else() {
    assert_eq!(
        parse_holder("r1 42\n"),
        Some(engine("r1")).map(|h| Holder { pid: 42, ..h })
    );
    assert_eq!(
        parse_holder("r1 42 merge\n").unwrap().command.as_deref(),
        Some("merge")
    );
    for bad in ["", "r1", "r1 x", "r1 42 merge extra"] {
        assert_eq!(parse_holder(bad), None, "{bad:?}");
    }
}

#[test]
fn up_locks_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let first = UpLock::acquire(dir.path()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let state_dir = dir.path().to_path_buf();
    let waiter = std::thread::spawn(move || {
        let second = UpLock::acquire(&state_dir).unwrap();
        tx.send(()).unwrap();
        drop(second);
    });
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    drop(first);
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    waiter.join().unwrap();
}

#[test]
fn an_unusable_state_dir_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "").unwrap();
    let err = EngineLock::acquire(&file, &RunDir::new(&file, "r"), true).unwrap_err();
    assert!(matches!(err, LockError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("plain-file"), "{err}");
}
