//! The tracker fed with hand-made events, for the cases a real filesystem cannot produce on
//! demand: a queue overflow, a rename whose second half never comes, and races between an
//! event and the state of the disk when it is handled.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, Event, EventKind, Flag};
use notify::event::{DataChange, MetadataKind, ModifyKind, RemoveKind, RenameMode};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::events::Tracker;
use super::rules::Ignore;
use super::tree::{ChangeKind, FsChange};
use super::walk::walk;

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    tracker: Tracker,
    rx: UnboundedReceiver<FsChange>,
}

fn fixture(files: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    for file in files {
        let path = root.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "x").unwrap();
    }
    let ignore = Ignore::new(&root, &[]).unwrap();
    let mut watcher = notify::recommended_watcher(|_| {}).unwrap();
    let walked = walk(&root, "", &ignore, &mut |d| {
        super::tree::watch_dir(&mut watcher, d)
    });
    let (tx, rx) = unbounded_channel();
    let watched = Arc::new(AtomicUsize::new(0));
    let tracker = Tracker::new(root.clone(), ignore, watcher, tx, walked, watched);
    Fixture {
        _dir: dir,
        root,
        tracker,
        rx,
    }
}

impl Fixture {
    fn event(&mut self, kind: EventKind, rel: &str, cookie: Option<usize>) {
        let mut event = Event::new(kind).add_path(self.root.join(rel));
        if let Some(cookie) = cookie {
            event = event.set_tracker(cookie);
        }
        self.tracker.handle(event);
    }

    /// Lets every timer run out, then returns what was sent.
    fn settle(&mut self) -> Vec<(String, ChangeKind)> {
        self.tracker.expire(Instant::now() + Duration::from_secs(5));
        let mut out = Vec::new();
        while let Ok(change) = self.rx.try_recv() {
            out.push((change.path, change.kind));
        }
        out
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.root.join(rel)
    }
}

const FROM: EventKind = EventKind::Modify(ModifyKind::Name(RenameMode::From));
const TO: EventKind = EventKind::Modify(ModifyKind::Name(RenameMode::To));
const CLOSE: EventKind = EventKind::Access(AccessKind::Close(AccessMode::Write));

fn change(path: &str, kind: ChangeKind) -> (String, ChangeKind) {
    (path.to_string(), kind)
}

#[test]
fn a_rename_half_alone_is_a_file_leaving() {
    let mut f = fixture(&["a.rs"]);
    fs::remove_file(f.path("a.rs")).unwrap();
    f.event(FROM, "a.rs", Some(7));
    assert_eq!(f.settle(), [change("a.rs", ChangeKind::Removed)]);
}

#[test]
fn matching_cookies_make_a_rename() {
    let mut f = fixture(&["a.rs"]);
    fs::rename(f.path("a.rs"), f.path("b.rs")).unwrap();
    f.event(FROM, "a.rs", Some(7));
    f.event(TO, "b.rs", Some(7));
    let renamed = ChangeKind::Renamed {
        from: "a.rs".into(),
    };
    assert_eq!(f.settle(), [change("b.rs", renamed)]);
}

#[test]
fn leaving_is_reported_before_what_then_happens_at_the_same_path() {
    let mut f = fixture(&["a.rs"]);
    f.event(FROM, "a.rs", Some(7));
    f.event(EventKind::Create(CreateKind::File), "a.rs", None);
    f.event(CLOSE, "a.rs", None);
    let got = f.settle();
    assert_eq!(
        got,
        [
            change("a.rs", ChangeKind::Removed),
            change("a.rs", ChangeKind::Created)
        ]
    );
}

#[test]
fn overflow_asks_for_a_rescan_and_repairs_what_it_can() {
    let mut f = fixture(&["gone.rs", "kept.rs"]);
    fs::remove_file(f.path("gone.rs")).unwrap();
    fs::create_dir(f.path("new")).unwrap();
    fs::write(f.path("new/file.rs"), "n").unwrap();
    f.tracker
        .handle(Event::new(EventKind::Other).set_flag(Flag::Rescan));
    let got = f.settle();
    assert_eq!(got[0], change("", ChangeKind::Rescan));
    assert!(
        got.contains(&change("gone.rs", ChangeKind::Removed)),
        "{got:?}"
    );
    assert!(
        got.contains(&change("new/file.rs", ChangeKind::Created)),
        "{got:?}"
    );
    assert_eq!(got.len(), 3, "{got:?}");
}

#[test]
fn a_file_created_and_deleted_before_it_was_closed_never_happened() {
    let mut f = fixture(&[]);
    f.event(EventKind::Create(CreateKind::File), "tmp.123", None);
    f.event(EventKind::Remove(RemoveKind::File), "tmp.123", None);
    assert_eq!(f.settle(), []);
}

#[test]
fn a_directory_renamed_before_it_was_seen_reports_only_its_files() {
    let mut f = fixture(&[]);
    fs::create_dir(f.path("final")).unwrap();
    fs::write(f.path("final/x.rs"), "x").unwrap();
    f.event(EventKind::Create(CreateKind::Folder), "staging", None);
    f.event(FROM, "staging", Some(3));
    f.event(TO, "final", Some(3));
    assert_eq!(f.settle(), [change("final/x.rs", ChangeKind::Created)]);
}

#[test]
fn chmod_is_a_modification_that_does_not_mute_later_writes() {
    let mut f = fixture(&["run.sh"]);
    f.event(
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
        "run.sh",
        None,
    );
    assert_eq!(f.settle(), [change("run.sh", ChangeKind::Modified)]);
    f.event(
        EventKind::Modify(ModifyKind::Data(DataChange::Any)),
        "run.sh",
        None,
    );
    f.event(CLOSE, "run.sh", None);
    assert_eq!(f.settle(), [change("run.sh", ChangeKind::Modified)]);
}

#[test]
fn paths_outside_the_root_are_dropped() {
    let mut f = fixture(&[]);
    let elsewhere = Path::new("/definitely/elsewhere.rs");
    f.tracker
        .handle(Event::new(EventKind::Create(CreateKind::File)).add_path(elsewhere.into()));
    assert_eq!(f.settle(), []);
}
