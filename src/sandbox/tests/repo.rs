//! The project's repository in the box: the guarded parts of `.git/` read-only.

use super::*;

/// A repository in the project, as `git init` leaves it but without `hooks/` and `info/`.
fn init(m: &Machine) -> PathBuf {
    let git = m.p("work/project/.git");
    std::fs::create_dir_all(git.join("refs/heads")).unwrap();
    std::fs::create_dir_all(git.join("objects")).unwrap();
    std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(git.join("config"), "[core]\n").unwrap();
    git
}

#[test]
fn the_guarded_parts_of_git_are_read_only_over_the_writable_project() {
    let m = Machine::new();
    let git = init(&m);
    let mounts = m.plan(AgentKind::Command, &m.env(&[]));
    let project = position(&mounts, &Mount::Write(m.p("work/project")));
    // The git directory a mount point of its own (not to be moved away), after the project.
    let dir = position(&mounts, &Mount::Write(git.clone()));
    assert!(project < dir, "{mounts:#?}");
    for read in ["config", "HEAD", "hooks", "info", "refs"] {
        assert!(
            dir < position(&mounts, &Mount::Read(git.join(read))),
            "{read}"
        );
    }
    // Missing directories are made (empty) to be bound; missing files cannot be.
    assert!(git.join("hooks").is_dir() && git.join("info").is_dir());
    assert_eq!(std::fs::read_dir(git.join("hooks")).unwrap().count(), 0);
    for missing in ["packed-refs", "config.worktree"] {
        assert!(!git.join(missing).exists());
        assert!(!mounts.iter().any(|mt| mt.path() == git.join(missing)));
    }
    // What git add writes stays writable: nothing binds the index or objects.
    assert!(
        !mounts
            .iter()
            .any(|mt| mt.path().starts_with(git.join("objects")))
    );
}

#[test]
fn a_project_that_is_no_repository_gets_nothing_more() {
    let m = Machine::new();
    let mounts = m.plan(AgentKind::Command, &m.env(&[]));
    assert!(
        !mounts
            .iter()
            .any(|mt| mt.path().starts_with(m.p("work/project/.git"))),
        "{mounts:#?}"
    );
    assert!(!m.p("work/project/.git").exists());
}

/// The project as a linked worktree of a repository under the (hidden) home.
fn linked(m: &Machine) -> (PathBuf, PathBuf) {
    let common = m.p("home/main/.git");
    let own = common.join("worktrees/project");
    for dir in ["refs/heads", "hooks", "info", "objects", "worktrees/other"] {
        std::fs::create_dir_all(common.join(dir)).unwrap();
    }
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(common.join("config"), "[core]\n").unwrap();
    std::fs::write(common.join("packed-refs"), "").unwrap();
    std::fs::write(common.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(own.join("HEAD"), "ref: refs/heads/wt\n").unwrap();
    std::fs::write(own.join("commondir"), "../..\n").unwrap();
    std::fs::write(
        m.p("work/project/.git"),
        format!("gitdir: {}\n", own.display()),
    )
    .unwrap();
    (common, own)
}

#[test]
fn a_linked_worktree_gets_its_common_directory_bound_with_the_same_guard() {
    let m = Machine::new();
    let (common, own) = linked(&m);
    let mounts = m.plan(AgentKind::Command, &m.env(&[]));
    let home = position(&mounts, &Mount::Hidden(m.p("home")));
    // The `.git` file that names the git directory cannot be replaced.
    position(&mounts, &Mount::Read(m.p("work/project/.git")));
    // The common directory, hidden with the home, is bound back read-only (it is also the
    // main checkout's git directory: its index, HEAD and logs are not this agent's) but for
    // its objects (for `git add`), its guarded parts read-only; the other worktrees'
    // directories read-only, this one's own writable again with its HEAD read-only.
    let c = position(&mounts, &Mount::Read(common.clone()));
    assert!(home < c, "{mounts:#?}");
    assert!(c < position(&mounts, &Mount::Write(common.join("objects"))));
    for read in ["config", "packed-refs", "HEAD", "hooks", "info", "refs"] {
        assert!(
            c <= position(&mounts, &Mount::Read(common.join(read))),
            "{read}"
        );
    }
    // Read-only by the common directory's own bind: no bind of their own (each costs every
    // agent's start).
    assert!(
        !mounts.contains(&Mount::Read(common.join("hooks"))),
        "{mounts:#?}"
    );
    let worktrees = position(&mounts, &Mount::Read(common.join("worktrees")));
    let o = position(&mounts, &Mount::Write(own.clone()));
    assert!(c <= worktrees && worktrees < o, "{mounts:#?}");
    assert!(o < position(&mounts, &Mount::Read(own.join("HEAD"))));
    // Its `commondir` too: rewritten, it would point the user's own git, run there later, at
    // a repository of the agent's making.
    assert!(o < position(&mounts, &Mount::Read(own.join("commondir"))));
    // Nothing is made in the worktree's own directory: git reads hooks from the common one.
    for never in ["hooks", "info", "refs"] {
        assert!(!own.join(never).exists(), "{never}");
    }
}

#[test]
fn a_read_only_project_sees_its_common_directory_read_only() {
    let m = Machine::new();
    let (common, _) = linked(&m);
    let mut jail = m.jail(AgentKind::Command);
    jail.read_only_project = true;
    let mounts = plan(
        &jail,
        &m.env(&[]),
        Path::new("/bin/sh"),
        Path::new("/usr/bin/orch"),
        &jail.project,
    );
    position(&mounts, &Mount::Read(common.clone()));
    assert!(
        !mounts
            .iter()
            .any(|mt| matches!(mt, Mount::Write(p) if p.starts_with(m.p("home/main")))),
        "{mounts:#?}"
    );
}
