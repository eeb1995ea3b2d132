//! Snapshot and save_copy against real git, in git work trees and plain directories.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::{Restored, Snapshot, SnapshotChange, SnapshotError, save_copy};

fn git(root: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(root)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn set_exec(path: &Path, exec: bool) {
    let mode = if exec { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn is_exec(path: &Path) -> bool {
    fs::metadata(path).unwrap().permissions().mode() & 0o100 != 0
}

fn sorted(mut changes: Vec<(String, SnapshotChange)>) -> Vec<(String, SnapshotChange)> {
    changes.sort();
    changes
}

const ODD: &str = "dir with space/ünï \"q\".rs";
const NEWLINE: &str = "new\nline.rs";

/// Takes a snapshot of a project laid out the same way in both kinds of directory, changes
/// it, and checks what the snapshot says and restores.
fn exercise(root: &Path, store: &Path) {
    let snap = Snapshot::take(root, store).unwrap();
    let original = |rel: &str| snap.original(rel).unwrap();
    assert_eq!(
        original("committed.rs"),
        Some((b"committed\n".to_vec(), 0o100644))
    );
    assert_eq!(
        original("modified.rs"),
        Some((b"changed, not committed\n".to_vec(), 0o100644))
    );
    assert_eq!(
        original("untracked.rs"),
        Some((b"untracked\n".to_vec(), 0o100644))
    );
    assert_eq!(
        original("exec.sh"),
        Some((b"#!/bin/sh\n".to_vec(), 0o100755))
    );
    assert_eq!(original("ignored.log"), None);
    assert_eq!(original("nope.rs"), None);
    // Below the root, found directory by directory; twice, the second from what was read.
    for _ in 0..2 {
        assert_eq!(
            original("src/lib.rs"),
            Some((b"//! lib\n".to_vec(), 0o100644))
        );
        assert_eq!(original("src/nope.rs"), None);
        assert_eq!(original("src/deeper/nope.rs"), None);
        assert_eq!(original("committed.rs/under-a-file"), None);
    }
    assert_eq!(original("[ab].rs"), Some((b"class\n".to_vec(), 0o100644)));
    assert!(matches!(
        snap.original("src"),
        Err(SnapshotError::NotAFile(_))
    ));
    assert!(matches!(
        snap.original("../x"),
        Err(SnapshotError::BadPath { .. })
    ));
    assert_eq!(snap.changed_since().unwrap(), []);

    fs::write(root.join("committed.rs"), "agent was here\n").unwrap();
    fs::remove_file(root.join("untracked.rs")).unwrap();
    fs::write(root.join("new.rs"), "new\n").unwrap();
    set_exec(&root.join("exec.sh"), false);
    fs::write(root.join("ignored.log"), "more log\n").unwrap();
    fs::create_dir_all(root.join("dir with space")).unwrap();
    fs::write(root.join(ODD), "odd\n").unwrap();
    fs::write(root.join(NEWLINE), "nl\n").unwrap();
    fs::write(root.join(".orch/state.json"), "{}").unwrap();

    use SnapshotChange::*;
    let expected = sorted(vec![
        ("committed.rs".into(), Modified),
        ("exec.sh".into(), Modified),
        ("new.rs".into(), Added),
        ("untracked.rs".into(), Deleted),
        (ODD.into(), Added),
        (NEWLINE.into(), Added),
    ]);
    assert_eq!(sorted(snap.changed_since().unwrap()), expected);

    // The engine may restart: reopen by tree id.
    let snap = Snapshot::load(root, store, snap.tree_id()).unwrap();
    assert_eq!(snap.restore("committed.rs").unwrap(), Restored::Rewritten);
    assert_eq!(fs::read(root.join("committed.rs")).unwrap(), b"committed\n");
    assert_eq!(snap.restore("untracked.rs").unwrap(), Restored::Rewritten);
    assert_eq!(fs::read(root.join("untracked.rs")).unwrap(), b"untracked\n");
    assert!(!is_exec(&root.join("untracked.rs")));
    assert_eq!(snap.restore("new.rs").unwrap(), Restored::Deleted);
    assert!(!root.join("new.rs").exists());
    assert_eq!(snap.restore("exec.sh").unwrap(), Restored::Rewritten);
    assert!(is_exec(&root.join("exec.sh")));
    assert_eq!(snap.restore(ODD).unwrap(), Restored::Deleted);
    assert_eq!(snap.restore(NEWLINE).unwrap(), Restored::Deleted);
    for rel in ["committed.rs", "exec.sh", "new.rs", "modified.rs"] {
        assert_eq!(snap.restore(rel).unwrap(), Restored::Unchanged, "{rel}");
    }
    assert_eq!(snap.changed_since().unwrap(), []);
}

fn lay_out(root: &Path) {
    fs::create_dir_all(root.join("src")).unwrap();
    fs::create_dir_all(root.join(".orch")).unwrap();
    fs::write(root.join(".gitignore"), "*.log\n").unwrap();
    fs::write(root.join("src/lib.rs"), "//! lib\n").unwrap();
    fs::write(root.join("committed.rs"), "committed\n").unwrap();
    fs::write(root.join("modified.rs"), "as committed\n").unwrap();
    fs::write(root.join("exec.sh"), "#!/bin/sh\n").unwrap();
    set_exec(&root.join("exec.sh"), true);
    fs::write(root.join("[ab].rs"), "class\n").unwrap();
    fs::write(root.join("a.rs"), "a\n").unwrap();
}

fn after_commit(root: &Path) {
    fs::write(root.join("modified.rs"), "changed, not committed\n").unwrap();
    fs::write(root.join("untracked.rs"), "untracked\n").unwrap();
    fs::write(root.join("ignored.log"), "log\n").unwrap();
}

#[test]
fn in_a_git_repository_the_real_index_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q"]);
    lay_out(root);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "start"]);
    after_commit(root);
    let index = fs::read(root.join(".git/index")).unwrap();
    let head = git(root, &["rev-parse", "HEAD"]);
    let refs = git(root, &["for-each-ref"]);

    exercise(root, &root.join(".orch/runs/r1/snapshot"));

    assert_eq!(
        fs::read(root.join(".git/index")).unwrap(),
        index,
        "real index changed"
    );
    assert_eq!(git(root, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(root, &["for-each-ref"]), refs);
    // git ran in a private repository borrowing the project's objects.
    let alternates = root.join(".orch/runs/r1/snapshot/git/objects/info/alternates");
    assert_eq!(
        fs::read_to_string(alternates).unwrap(),
        format!(
            "{}\n",
            root.canonicalize().unwrap().join(".git/objects").display()
        )
    );
}

#[test]
fn in_a_plain_directory_a_private_repository_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let root = dir.path();
    lay_out(root);
    after_commit(root);
    exercise(root, store.path());
    assert!(!root.join(".git").exists());
    assert!(store.path().join("git/HEAD").exists());
}

#[test]
fn symlinks_are_restored_as_symlinks_and_escapes_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("src")).unwrap();
    fs::write(root.join("src/a.rs"), "a").unwrap();
    std::os::unix::fs::symlink("src/a.rs", root.join("link")).unwrap();
    let snap = Snapshot::take(root, &root.join(".orch/s")).unwrap();
    assert_eq!(
        snap.original("link").unwrap(),
        Some((b"src/a.rs".to_vec(), 0o120000))
    );
    fs::remove_file(root.join("link")).unwrap();
    fs::write(root.join("link"), "now a file").unwrap();
    assert_eq!(snap.restore("link").unwrap(), Restored::Rewritten);
    assert_eq!(
        fs::read_link(root.join("link")).unwrap(),
        Path::new("src/a.rs")
    );
    assert_eq!(snap.restore("link").unwrap(), Restored::Unchanged);

    fs::rename(root.join("src"), root.join("src.real")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("src")).unwrap();
    assert!(matches!(
        snap.restore("src/a.rs"),
        Err(SnapshotError::BadPath { .. })
    ));
    assert!(!outside.path().join("a.rs").exists());
}

#[test]
fn loading_an_unknown_tree_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a"), "a").unwrap();
    let store = dir.path().join(".orch/s");
    Snapshot::take(dir.path(), &store).unwrap();
    let bogus = "0123456789abcdef0123456789abcdef01234567";
    let err = Snapshot::load(dir.path(), &store, bogus).unwrap_err();
    assert!(matches!(err, SnapshotError::UnknownTree { .. }), "{err}");
    let err = Snapshot::load(dir.path(), &store, "--help").unwrap_err();
    assert!(matches!(err, SnapshotError::UnknownTree { .. }), "{err}");
}

#[test]
fn save_copy_keeps_the_relative_path() {
    let dir = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("src/api")).unwrap();
    fs::write(root.join("src/api/x.rs"), "violating").unwrap();
    let saved = save_copy(root, "src/api/x.rs", dest.path())
        .unwrap()
        .unwrap();
    assert_eq!(saved, dest.path().join("src/api/x.rs"));
    assert_eq!(fs::read(&saved).unwrap(), b"violating");
    fs::write(root.join("src/api/x.rs"), "again").unwrap();
    save_copy(root, "src/api/x.rs", dest.path()).unwrap();
    assert_eq!(fs::read(&saved).unwrap(), b"again");
    assert_eq!(
        save_copy(root, "src/missing.rs", dest.path()).unwrap(),
        None
    );
    assert!(save_copy(root, "../etc/passwd", dest.path()).is_err());
    assert!(save_copy(root, "src", dest.path()).is_err());
}

#[test]
fn files_inside_a_nested_repository_are_never_deleted_by_restore() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("sub")).unwrap();
    git(&root.join("sub"), &["init", "-q"]);
    fs::write(root.join("sub/s.rs"), "s").unwrap();
    git(&root.join("sub"), &["add", "-A"]);
    git(&root.join("sub"), &["commit", "-q", "-m", "s"]);
    let snap = Snapshot::take(root, &root.join(".orch/s")).unwrap();
    let err = snap.restore("sub/s.rs").unwrap_err();
    assert!(
        matches!(err, SnapshotError::InsideSubmodule { .. }),
        "{err}"
    );
    assert!(root.join("sub/s.rs").exists());
    assert!(matches!(
        snap.original("sub"),
        Err(SnapshotError::NotAFile(_))
    ));
}

/// The original contents kept in memory stay within their budget (64 KiB in unit tests) and
/// a file above the per-file cap (8 KiB here) is never kept; every answer stays right.
#[test]
fn kept_contents_stay_within_their_budget() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let root = dir.path();
    let body = |i: usize, size: usize| format!("{i:04}").repeat(size / 4);
    for i in 0..40 {
        fs::write(root.join(format!("f{i}.txt")), body(i, 4 << 10)).unwrap();
    }
    fs::write(root.join("big.txt"), body(99, 9 << 10)).unwrap();
    let snap = Snapshot::take(root, store.path()).unwrap();
    for i in 0..40 {
        fs::write(root.join(format!("f{i}.txt")), "changed").unwrap();
    }
    for round in 0..2 {
        for i in 0..40 {
            let (content, _) = snap.original(&format!("f{i}.txt")).unwrap().unwrap();
            assert_eq!(
                content,
                body(i, 4 << 10).into_bytes(),
                "round {round}, f{i}"
            );
            assert!(snap.kept_bytes() <= 64 << 10, "{}", snap.kept_bytes());
        }
    }
    let kept = snap.kept_bytes();
    assert!(kept > 0);
    let (content, _) = snap.original("big.txt").unwrap().unwrap();
    assert_eq!(content, body(99, 9 << 10).into_bytes());
    assert_eq!(snap.kept_bytes(), kept, "the big file is not kept");
}

/// Plants every command a repository, its config or its attributes can name, each of which
/// would leave a marker file behind: none may run while the snapshot is taken, compared,
/// read and restored.
#[test]
fn planted_repository_commands_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let markers = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q"]);
    lay_out(root);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "start"]);
    let m = markers.path().display().to_string();
    let planted = |name: &str| format!("sh -c 'touch {m}/{name}; cat'");
    let config = format!(
        "[core]\n\tfsmonitor = \"touch {m}/fsmonitor; false\"\n\thooksPath = hooks2\n\tpager = \"touch {m}/pager; cat\"\n\
         [filter \"evil\"]\n\tclean = \"{}\"\n\tsmudge = \"{}\"\n\trequired = true\n\
         [filter \"proc\"]\n\tprocess = \"touch {m}/process\"\n\
         [diff \"evil\"]\n\ttextconv = \"{}\"\n\
         [diff]\n\texternal = \"touch {m}/diff-external\"\n",
        planted("clean"),
        planted("smudge"),
        planted("textconv"),
    );
    let mut text = fs::read_to_string(root.join(".git/config")).unwrap();
    text.push_str(&config);
    fs::write(root.join(".git/config"), text).unwrap();
    for hooks in [".git/hooks", ".git/hooks2"] {
        fs::create_dir_all(root.join(hooks)).unwrap();
        for hook in [
            "pre-commit",
            "post-index-change",
            "post-checkout",
            "reference-transaction",
        ] {
            let path = root.join(hooks).join(hook);
            fs::write(&path, format!("#!/bin/sh\ntouch {m}/hook-{hook}\n")).unwrap();
            set_exec(&path, true);
        }
    }
    fs::create_dir_all(root.join(".git/info")).unwrap();
    fs::write(
        root.join(".git/info/attributes"),
        "* filter=evil diff=evil\n",
    )
    .unwrap();
    fs::write(root.join(".gitattributes"), "*.rs filter=proc diff=evil\n").unwrap();
    after_commit(root);

    let store = root.join(".orch/runs/r1/snapshot");
    let snap = Snapshot::take(root, &store).unwrap();
    assert_eq!(
        snap.original("modified.rs").unwrap(),
        Some((b"changed, not committed\n".to_vec(), 0o100644))
    );
    fs::write(root.join("committed.rs"), "agent was here\n").unwrap();
    fs::write(root.join("new.rs"), "new\n").unwrap();
    assert_eq!(snap.changed_since().unwrap().len(), 2);
    let snap = Snapshot::load(root, &store, snap.tree_id()).unwrap();
    assert_eq!(snap.restore("committed.rs").unwrap(), Restored::Rewritten);
    assert_eq!(snap.restore("new.rs").unwrap(), Restored::Deleted);
    assert_eq!(fs::read(root.join("committed.rs")).unwrap(), b"committed\n");
    assert_eq!(snap.changed_since().unwrap(), []);
    let ran: Vec<String> = fs::read_dir(markers.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(ran.is_empty(), "planted commands ran: {ran:?}");
}

/// A SHA-256 repository: the private repository is made in the same object format, and the
/// attributes' empty tree is SHA-256's.
#[test]
fn a_sha256_repository_is_snapshotted_too() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "--object-format=sha256"]);
    lay_out(root);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "start"]);
    after_commit(root);
    let store = root.join(".orch/runs/r1/snapshot");
    let snap = Snapshot::take(root, &store).unwrap();
    assert_eq!(snap.tree_id().len(), 64);
    assert_eq!(
        snap.original("committed.rs").unwrap(),
        Some((b"committed\n".to_vec(), 0o100644))
    );
    fs::write(root.join("committed.rs"), "agent was here\n").unwrap();
    let snap = Snapshot::load(root, &store, snap.tree_id()).unwrap();
    assert_eq!(
        snap.changed_since().unwrap(),
        [("committed.rs".to_string(), SnapshotChange::Modified)]
    );
    assert_eq!(snap.restore("committed.rs").unwrap(), Restored::Rewritten);
}
