//! `orch diff`, `orch merge`, `orch discard` and `orch runs` on worktree runs, with real git.
//!
//! The runs are made by hand here, as the engine makes them (a branch `orch/<id>` and its
//! worktree under `.orch/worktrees/`, the checkout's uncommitted changes as the branch's first
//! commit, one commit per accepted task made with a temporary index, and the run's record and
//! journal), so that these tests check the review commands alone, and exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use orch::plan::{Plan, TaskId};
use orch::state::{self, Event, Journal, Outcome, RunInfo};
use orch::workspace::{self, WorkspaceInfo};

use crate::support::TestProject;

/// Runs git in `dir`; it must succeed. Its standard output, trimmed.
fn git(dir: &Path, args: &[&str]) -> String {
    git_with(dir, args, &[])
}

fn git_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test User",
            "-c",
            "user.email=test@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .envs(env.iter().copied())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Everything of the user's checkout a merge could change: `HEAD`, the index (every entry's
/// object) and every file of the work tree but `.git/` and `.orch/`, byte for byte.
fn checkout_state(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut state = BTreeMap::new();
    state.insert(
        "HEAD".into(),
        git(root, &["rev-parse", "HEAD"]).into_bytes(),
    );
    state.insert(
        "INDEX".into(),
        git(root, &["ls-files", "--stage"]).into_bytes(),
    );
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == ".git" || rel == ".orch" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                dirs.push(path);
            } else {
                state.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    state
}

/// A worktree run made by hand, as orch's engine makes one.
struct HandRun {
    project: TestProject,
    run_id: String,
    info: RunInfo,
}

impl HandRun {
    /// A run of `tasks` (id, owned files) started now from the project's `HEAD`, with the
    /// checkout's uncommitted changes (if any) as the branch's first commit.
    fn start(project: TestProject, tasks: &[(&str, &[&str])]) -> HandRun {
        let root = project.root();
        let run_id = "20261202-100000-0001".to_string();
        let state_dir = root.join(".orch");
        std::fs::create_dir_all(&state_dir).unwrap();
        // As `orch up` does: the checkout's git does not see orch's own files.
        std::fs::write(root.join(".git/info/exclude"), ".orch/\n").unwrap();
        let base = git(&root, &["rev-parse", "HEAD"]);
        let dirty = !git(&root, &["status", "--porcelain"]).is_empty();
        let uncommitted = dirty.then(|| {
            let index = state_dir.join("uncommitted-index");
            let idx = index.to_str().unwrap();
            let env = [("GIT_INDEX_FILE", idx)];
            git_with(&root, &["read-tree", "HEAD"], &env);
            git_with(&root, &["add", "-A", "."], &env);
            let tree = git_with(&root, &["write-tree"], &env);
            std::fs::remove_file(&index).unwrap();
            git(
                &root,
                &[
                    "commit-tree",
                    &tree,
                    "-p",
                    &base,
                    "-m",
                    "The checkout's uncommitted changes at orch up",
                ],
            )
        });
        let start = uncommitted.clone().unwrap_or_else(|| base.clone());
        let branch = workspace::branch_name(&run_id);
        let path = workspace::worktree_path(&state_dir, &run_id);
        git(&root, &["branch", &branch, &start]);
        git(
            &root,
            &["worktree", "add", "-q", path.to_str().unwrap(), &branch],
        );
        let info = RunInfo {
            run_id: run_id.clone(),
            request: "Build the thing\nwith details".into(),
            session: "orch-test".into(),
            socket: None,
            socket_path: None,
            tmux_config: None,
            layout: "windows".into(),
            project_root: root.clone(),
            created_at_ms: state::now_ms(),
            plan_given: true,
            orch_version: "test".into(),
            workspace: Some(WorkspaceInfo {
                path,
                branch,
                base,
                start,
                uncommitted,
                user_branch: Some(git(&root, &["symbolic-ref", "--short", "HEAD"])),
                isolation: workspace::Isolation::Run,
            }),
        };
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "tasks": tasks.iter().map(|(id, files)| serde_json::json!({
                "id": id, "agent": "a", "task": format!("do {id}"), "files": files,
            })).collect::<Vec<_>>()
        }))
        .unwrap();
        state::create_run(&state_dir, &info, "", Some(&plan)).unwrap();
        let run = HandRun {
            project,
            run_id,
            info,
        };
        run.journal(vec![Event::PlanAccepted { plan }]);
        run
    }

    fn root(&self) -> PathBuf {
        self.project.root()
    }

    fn ws(&self) -> &WorkspaceInfo {
        self.info.workspace.as_ref().unwrap()
    }

    fn worktree(&self) -> &Path {
        &self.ws().path
    }

    fn run_dir(&self) -> PathBuf {
        self.root().join(".orch/runs").join(&self.run_id)
    }

    fn journal(&self, events: Vec<Event>) {
        let mut journal = Journal::open(&self.run_dir().join("events.jsonl")).unwrap();
        journal.append_all(events).unwrap();
    }

    fn events(&self) -> Vec<Event> {
        state::read_journal(&self.run_dir().join("events.jsonl"))
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.event)
            .collect()
    }

    /// Task `task` writes `files` in the worktree and is accepted: one commit of exactly
    /// those files on the run branch, made as the engine makes it.
    fn commit_task(&self, task: &str, files: &[(&str, &str)]) -> String {
        let wt = self.worktree();
        self.journal(vec![Event::TaskStarted {
            task: TaskId::new(task),
            attempt: 1,
            continues: None,
        }]);
        for (file, content) in files {
            let path = wt.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let index = self.run_dir().join("commit-index");
        let idx = index.to_str().unwrap();
        let env = [("GIT_INDEX_FILE", idx)];
        let parent = git(wt, &["rev-parse", "HEAD"]);
        git_with(wt, &["read-tree", &parent], &env);
        let mut args = vec!["update-index", "--add", "--remove", "--"];
        args.extend(files.iter().map(|(f, _)| *f));
        git_with(wt, &args, &env);
        let tree = git_with(wt, &["write-tree"], &env);
        std::fs::remove_file(&index).unwrap();
        let message = format!(
            "Task {task}: do {task}\n\nOrch-Run: {}\nOrch-Task: {task}\nOrch-Agent: a\n",
            self.run_id
        );
        let commit = git_with(
            wt,
            &["commit-tree", &tree, "-p", &parent, "-m", &message],
            &[
                ("GIT_AUTHOR_NAME", "orch agent a"),
                ("GIT_AUTHOR_EMAIL", "orch@localhost"),
            ],
        );
        git(
            wt,
            &[
                "update-ref",
                &format!("refs/heads/{}", self.ws().branch),
                &commit,
                &parent,
            ],
        );
        git(wt, &["reset", "-q"]);
        self.journal(vec![
            Event::TaskDone {
                task: TaskId::new(task),
                attempt: 1,
            },
            Event::TaskCommitted {
                task: TaskId::new(task),
                attempt: 1,
                commit: commit.clone(),
                files: files
                    .iter()
                    .map(|(f, _)| orch::paths::ProjectPath::new(f).unwrap())
                    .collect(),
            },
        ]);
        commit
    }

    fn finish(&self) {
        self.journal(vec![Event::RunFinished {
            outcome: Outcome::Succeeded,
            reason: None,
        }]);
    }

    fn orch(&self, args: &[&str]) -> crate::support::Output {
        self.project.orch().args(args).run()
    }

    fn merges(&self) -> Vec<(String, String, bool)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Merged {
                    into,
                    commit,
                    squash,
                    ..
                } => Some((into, commit, squash)),
                _ => None,
            })
            .collect()
    }
}

/// A project with one commit of `a.txt` and `b.txt`, on branch `main`.
fn project() -> TestProject {
    let project = TestProject::new();
    let root = project.root();
    git(&root, &["checkout", "-q", "-b", "main"]);
    project
        .file("a.txt", "one\ntwo\nthree\n")
        .file("b.txt", "bee\n");
    git(&root, &["add", "."]);
    git(&root, &["commit", "-q", "-m", "start"]);
    project
}

#[test]
fn merge_fast_forwards_a_branch_that_did_not_move() {
    let run = HandRun::start(project(), &[("x", &["x.txt"])]);
    let tip = run.commit_task("x", &[("x.txt", "x\n")]);
    run.finish();
    // A change of the user's since, to a file the run did not touch, stays as it is.
    run.project.file("b.txt", "bee, edited after up\n");
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("fast-forward, 1 commit");
    let root = run.root();
    assert_eq!(git(&root, &["rev-parse", "HEAD"]), tip);
    assert_eq!(run.project.read("x.txt"), "x\n");
    assert_eq!(run.project.read("b.txt"), "bee, edited after up\n");
    assert_eq!(git(&root, &["status", "--porcelain"]), "M b.txt");
    assert_eq!(run.merges(), vec![("main".into(), tip, false)]);
    // Twice is once.
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("nothing to merge");
    assert_eq!(run.merges().len(), 1);
}

#[test]
fn merge_into_a_branch_the_user_advanced_meanwhile() {
    let run = HandRun::start(project(), &[("x", &["x.txt"]), ("y", &["a.txt"])]);
    run.commit_task("x", &[("x.txt", "x\n")]);
    let tip = run.commit_task("y", &[("a.txt", "one\ntwo\nthree\nfour\n")]);
    run.finish();
    // The user works on in their checkout while the run goes on.
    let root = run.root();
    run.project
        .file("mine.txt", "mine\n")
        .file("b.txt", "bee!\n");
    git(&root, &["add", "."]);
    git(&root, &["commit", "-q", "-m", "my own work"]);
    let mine = git(&root, &["rev-parse", "HEAD"]);
    run.orch(&["runs"])
        .expect(0)
        .stdout_has("succeeded")
        .stdout_has("orch/20261202-100000-0001")
        .stdout_has("unmerged: 2 commits")
        .stdout_has("Build the thing");
    let listed: serde_json::Value =
        serde_json::from_str(&run.orch(&["runs", "--json"]).expect(0).stdout()).unwrap();
    assert_eq!(listed[0]["standing"], "unmerged");
    assert_eq!(listed[0]["commits"], 2);
    assert_eq!(listed[0]["workspace"], "worktree");

    run.orch(&["merge"])
        .expect(0)
        .stdout_has("merge commit, 2 commits");
    let head = git(&root, &["rev-parse", "HEAD"]);
    assert_eq!(git(&root, &["rev-parse", "HEAD^1"]), mine);
    assert_eq!(git(&root, &["rev-parse", "HEAD^2"]), tip);
    assert!(git(&root, &["log", "-1", "--format=%B"]).contains("Orch-Run: 20261202-100000-0001"));
    assert_eq!(run.project.read("a.txt"), "one\ntwo\nthree\nfour\n");
    assert_eq!(run.project.read("x.txt"), "x\n");
    assert_eq!(run.project.read("b.txt"), "bee!\n");
    assert_eq!(run.project.read("mine.txt"), "mine\n");
    assert_eq!(git(&root, &["status", "--porcelain"]), "");
    assert_eq!(run.merges(), vec![("main".into(), head, false)]);
    run.orch(&["runs"]).expect(0).stdout_has("merged into main");
    // The run goes on after its merge (a resume): what it adds is unmerged again.
    run.commit_task("x", &[("x.txt", "x, again\n")]);
    run.orch(&["runs"])
        .expect(0)
        .stdout_has("merged into main, 1 commit since");
    run.orch(&["merge"]).expect(0).stdout_has("merge commit");
    assert_eq!(run.project.read("x.txt"), "x, again\n");
}

#[test]
fn merge_is_refused_on_an_overwrite_and_nothing_changes() {
    let project = project();
    project.file(".gitignore", "*.log\n");
    git(&project.root(), &["add", ".gitignore"]);
    git(&project.root(), &["commit", "-q", "-m", "ignore logs"]);
    let run = HandRun::start(
        project,
        &[("x", &["a.txt", "b.txt", "new.txt", "build.log", "d/f.txt"])],
    );
    run.commit_task(
        "x",
        &[
            ("a.txt", "run's a\n"),
            ("b.txt", "run's b\n"),
            ("new.txt", "run's new\n"),
            ("build.log", "run's log\n"),
            ("d/f.txt", "run's f\n"),
        ],
    );
    run.finish();
    // After the run started, the user changed the same files, in every way git knows.
    let root = run.root();
    run.project
        .file("a.txt", "my a\n")
        .file("b.txt", "my staged b\n")
        .file("new.txt", "my new\n")
        .file("build.log", "my log\n")
        .file("d", "a file where the run puts a directory\n");
    git(&root, &["add", "b.txt"]);
    let before = checkout_state(&root);

    let out = run.orch(&["merge"]).expect(1);
    let err = out.stderr();
    for line in [
        "a.txt (modified)",
        "b.txt (staged)",
        "new.txt (untracked)",
        "build.log (ignored",
        "d (untracked)",
        "Nothing was changed",
        "git stash push --include-untracked -- a.txt b.txt build.log d new.txt",
    ] {
        assert!(err.contains(line), "stderr lacks {line:?}:\n{err}");
    }
    assert_eq!(checkout_state(&root), before);
    assert!(run.merges().is_empty());
}

#[test]
fn squash_makes_one_commit_on_head() {
    let run = HandRun::start(project(), &[("x", &["x.txt"]), ("y", &["y.txt"])]);
    run.commit_task("x", &[("x.txt", "x\n")]);
    run.commit_task("y", &[("y.txt", "y\n")]);
    run.finish();
    let root = run.root();
    let head = git(&root, &["rev-parse", "HEAD"]);

    run.orch(&["merge", "--squash"])
        .expect(0)
        .stdout_has("one squashed commit, 2 commits");
    assert_eq!(git(&root, &["rev-parse", "HEAD^"]), head);
    assert_eq!(git(&root, &["rev-list", "--count", "HEAD"]), "2");
    assert_eq!(
        git(
            &root,
            &["diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD"]
        ),
        "x.txt\ny.txt"
    );
    let message = git(&root, &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("orch run 20261202-100000-0001: Build the thing"),
        "{message}"
    );
    assert!(
        message.contains("- Task x: do x") && message.contains("- Task y: do y"),
        "{message}"
    );
    assert_eq!(git(&root, &["status", "--porcelain"]), "");
    let merges = run.merges();
    assert_eq!(merges.len(), 1);
    assert!(merges[0].2, "recorded as a squash");
    run.orch(&["merge", "--squash"])
        .expect(0)
        .stdout_has("nothing to merge");
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("nothing to merge");
    assert_eq!(run.merges().len(), 1);
}

#[test]
fn a_run_without_commits_has_nothing_to_merge_and_its_branch_goes_with_it() {
    let project = project();
    project.file("a.txt", "uncommitted\n");
    let run = HandRun::start(project, &[("x", &["x.txt"])]);
    run.finish();
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("no commits of its own");
    run.orch(&["runs"]).expect(0).stdout_has("no commits");
    run.orch(&["discard"])
        .expect(0)
        .stdout_has("Deleted its branch");
    assert!(git(&run.root(), &["branch", "--list", "orch/*"]).is_empty());
    assert_eq!(run.project.read("a.txt"), "uncommitted\n");
}

#[test]
fn the_users_uncommitted_changes_are_neither_lost_nor_doubled_by_a_merge() {
    let project = project();
    // Uncommitted when the run starts: a modified tracked file, a staged change, an
    // untracked file. They become the run branch's first commit.
    project
        .file("a.txt", "one\ntwo\nthree\nmy edit\n")
        .file("b.txt", "bee staged\n")
        .file("notes.txt", "my notes\n");
    git(&project.root(), &["add", "b.txt"]);
    let run = HandRun::start(project, &[("x", &["x.txt"]), ("y", &["c.txt"])]);
    assert!(run.ws().uncommitted.is_some());
    let x = run.commit_task("x", &[("x.txt", "x\n")]);
    run.commit_task("y", &[("c.txt", "see\n")]);
    run.finish();
    let root = run.root();
    let head = git(&root, &["rev-parse", "HEAD"]);
    let before = checkout_state(&root);

    run.orch(&["merge"])
        .expect(0)
        .stdout_has("2 commits replayed")
        .stdout_has("as they were");
    // The two tasks' commits, replayed on HEAD: their files only, their author and message.
    assert_eq!(git(&root, &["rev-parse", "HEAD~2"]), head);
    assert_eq!(
        git(&root, &["diff", "--name-only", &head, "HEAD"]),
        "c.txt\nx.txt"
    );
    assert_eq!(
        git(&root, &["log", "-1", "--format=%an|%B", "HEAD~1"]),
        git(&root, &["log", "-1", "--format=%an|%B", &x])
    );
    // The user's changes: still theirs, uncommitted, byte for byte.
    let after = checkout_state(&root);
    for file in ["a.txt", "b.txt", "notes.txt"] {
        assert_eq!(after[file], before[file], "{file}");
    }
    assert_eq!(run.project.read("x.txt"), "x\n");
    assert_eq!(run.project.read("c.txt"), "see\n");
    let status = git(&root, &["status", "--porcelain"]);
    // (` M a.txt`, its first blank trimmed.)
    assert_eq!(status, "M a.txt\nM  b.txt\n?? notes.txt", "{status}");
    // Not doubled: no commit on the branch holds them.
    assert_eq!(
        git(
            &root,
            &["log", "--format=%H", "--", "a.txt", "notes.txt", "b.txt"]
        )
        .lines()
        .count(),
        1
    );
}

#[test]
fn a_conflicting_merge_is_refused_cleanly() {
    let run = HandRun::start(project(), &[("x", &["a.txt"])]);
    run.commit_task("x", &[("a.txt", "one\nTWO by the run\nthree\n")]);
    run.finish();
    let root = run.root();
    run.project.file("a.txt", "one\ntwo by me\nthree\n");
    git(&root, &["commit", "-q", "-am", "mine"]);
    let before = checkout_state(&root);

    run.orch(&["merge"])
        .expect(1)
        .stderr_has("conflicts with main in 1 file:\n  a.txt")
        .stderr_has("git merge orch/20261202-100000-0001");
    assert_eq!(checkout_state(&root), before);
    assert!(!root.join(".git/MERGE_HEAD").exists());
    assert!(run.merges().is_empty());
    run.orch(&["merge", "--squash"])
        .expect(1)
        .stderr_has("a.txt");
    assert_eq!(checkout_state(&root), before);
}

#[test]
fn merge_and_discard_wait_for_the_runs_engine() {
    let run = HandRun::start(project(), &[("x", &["x.txt"])]);
    run.commit_task("x", &[("x.txt", "x\n")]);
    let lock = state::EngineLock::acquire(&run.root().join(".orch"), &run.run_id).unwrap();
    run.orch(&["merge"])
        .expect(2)
        .stderr_has("is still running")
        .stderr_has("orch down --run 20261202-100000-0001");
    run.orch(&["discard"])
        .expect(2)
        .stderr_has("is still running");
    assert!(run.worktree().is_dir());
    drop(lock);
    run.orch(&["merge"]).expect(0).stderr_has("not finished");
}

#[test]
fn discard_keeps_a_branch_with_unmerged_work_unless_told() {
    let run = HandRun::start(project(), &[("x", &["x.txt"])]);
    let tip = run.commit_task("x", &[("x.txt", "x\n")]);
    run.finish();
    std::fs::write(run.worktree().join("stray.txt"), "no task's\n").unwrap();
    let root = run.root();
    let branch = &run.ws().branch;

    run.orch(&["discard"])
        .expect(0)
        .stdout_has("Removed the worktree")
        .stdout_has("stray.txt")
        .stdout_has(&format!(
            "Kept its branch {branch}: it holds 1 commit that no merge brought to you"
        ));
    assert!(!run.worktree().exists());
    assert!(!git(&root, &["worktree", "list"]).contains("worktrees"));
    git(
        &root,
        &["rev-parse", "--verify", &format!("refs/heads/{branch}")],
    );
    assert!(run.run_dir().join("events.jsonl").is_file());
    assert!(run.events().contains(&Event::Discarded {
        branch_deleted: false
    }));
    run.orch(&["runs"])
        .expect(0)
        .stdout_has("discarded, branch kept (unmerged: 1 commit)");
    // The branch is still there to merge.
    run.orch(&["diff", "--", "--name-only"])
        .expect(0)
        .stdout_has("x.txt");

    run.orch(&["discard", "--delete-branch"])
        .expect(0)
        .stdout_has(&format!("Deleted its branch {branch}"));
    assert!(git(&root, &["branch", "--list", branch]).is_empty());
    assert!(run.events().contains(&Event::Discarded {
        branch_deleted: true
    }));
    run.orch(&["discard"])
        .expect(0)
        .stdout_has("discarded already");
    run.orch(&["merge"])
        .expect(2)
        .stderr_has("is gone")
        .stderr_has(&format!("`git branch {branch} {tip}` brings it back"));
}

#[test]
fn discard_deletes_a_branch_without_unmerged_work() {
    let run = HandRun::start(project(), &[("x", &["x.txt"])]);
    run.commit_task("x", &[("x.txt", "x\n")]);
    run.finish();
    run.orch(&["merge"]).expect(0);
    let root = run.root();
    let branch = &run.ws().branch;
    run.orch(&["discard"])
        .expect(0)
        .stdout_has(&format!("Deleted its branch {branch}"));
    assert!(!run.worktree().exists());
    assert!(git(&root, &["branch", "--list", branch]).is_empty());
    assert_eq!(run.project.read("x.txt"), "x\n");
    assert!(run.run_dir().join("run.json").is_file());
}

#[test]
fn diff_shows_the_run_a_task_and_a_task_at_work() {
    let project = project();
    project.file("a.txt", "uncommitted by me\n");
    let run = HandRun::start(project, &[("x", &["x.txt"]), ("y", &["y.txt", "a.txt"])]);
    run.commit_task("x", &[("x.txt", "x\n")]);
    // The run's diff leaves the user's uncommitted changes out.
    let out = run.orch(&["diff", "--", "--name-only"]).expect(0);
    assert_eq!(out.stdout().trim(), "x.txt");
    // Git's own arguments, paths included.
    let out = run
        .orch(&["diff", "--", "--name-only", "--", "nothing-here"])
        .expect(0);
    assert_eq!(out.stdout().trim(), "");
    run.orch(&["diff", "x"])
        .expect(0)
        .stdout_has("Orch-Task: x")
        .stdout_has("+x");
    // Task y runs: a new file and a changed one, not committed.
    std::fs::write(run.worktree().join("y.txt"), "y at work\n").unwrap();
    std::fs::write(run.worktree().join("a.txt"), "changed by y\n").unwrap();
    std::fs::write(run.worktree().join("stray.txt"), "not y's\n").unwrap();
    let out = run
        .orch(&["diff", "y"])
        .expect(0)
        .stderr_has("not committed");
    let text = out.stdout();
    assert!(
        text.contains("+y at work") && text.contains("-uncommitted by me"),
        "{text}"
    );
    assert!(!text.contains("stray"), "{text}");
    run.orch(&["diff", "nope"])
        .expect(2)
        .stderr_has("its tasks are x, y");
}

#[test]
fn an_in_place_run_has_nothing_to_merge_or_discard() {
    let project = project();
    let root = project.root();
    let info = RunInfo {
        run_id: "20261202-100000-0002".into(),
        request: "in place".into(),
        session: "orch-test".into(),
        socket: None,
        socket_path: None,
        tmux_config: None,
        layout: "windows".into(),
        project_root: root.clone(),
        created_at_ms: state::now_ms(),
        plan_given: true,
        orch_version: "test".into(),
        workspace: None,
    };
    state::create_run(&root.join(".orch"), &info, "", None).unwrap();
    for verb in ["merge", "discard", "diff"] {
        project
            .orch()
            .args([verb])
            .run()
            .expect(2)
            .stderr_has("ran in place");
    }
    project
        .orch()
        .args(["runs"])
        .run()
        .expect(0)
        .stdout_has("20261202-100000-0002")
        .stdout_has("in-place");
}

#[test]
fn a_task_that_built_on_the_users_uncommitted_change_merges_once_they_set_it_aside() {
    let project = project();
    project.file("a.txt", "my line\none\ntwo\nthree\n");
    let run = HandRun::start(project, &[("x", &["a.txt"])]);
    run.commit_task(
        "x",
        &[("a.txt", "my line\none\ntwo\nthree\nthe run's line\n")],
    );
    run.finish();
    let root = run.root();
    let before = checkout_state(&root);
    // The merge would write a.txt, which holds the user's uncommitted line: refused.
    run.orch(&["merge"])
        .expect(1)
        .stderr_has("a.txt (modified)")
        .stderr_has("git stash push --include-untracked -- a.txt");
    assert_eq!(checkout_state(&root), before);
    // As the message says: aside, merge, back.
    git(
        &root,
        &["stash", "push", "--include-untracked", "--", "a.txt"],
    );
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("1 commit replayed");
    assert_eq!(
        run.project.read("a.txt"),
        "one\ntwo\nthree\nthe run's line\n"
    );
    git(&root, &["stash", "pop"]);
    assert_eq!(
        run.project.read("a.txt"),
        "my line\none\ntwo\nthree\nthe run's line\n"
    );
    assert_eq!(git(&root, &["diff", "--name-only"]), "a.txt");
}

#[test]
fn the_run_replays_cleanly_on_the_users_changes_once_they_committed_them() {
    let project = project();
    project
        .file("a.txt", "one\ntwo\nthree\nmine\n")
        .file("n.txt", "n\n");
    let run = HandRun::start(project, &[("x", &["a.txt"])]);
    run.commit_task("x", &[("a.txt", "zero\none\ntwo\nthree\nmine\n")]);
    run.finish();
    let root = run.root();
    git(&root, &["add", "."]);
    git(
        &root,
        &["commit", "-q", "-m", "my changes, committed after all"],
    );
    run.orch(&["merge"])
        .expect(0)
        .stdout_has("1 commit replayed");
    assert_eq!(run.project.read("a.txt"), "zero\none\ntwo\nthree\nmine\n");
    assert_eq!(git(&root, &["status", "--porcelain"]), "");
    assert_eq!(git(&root, &["rev-list", "--count", "HEAD"]), "3");
}

#[test]
fn a_conflict_on_a_file_the_user_had_uncommitted_says_how_to_keep_it_out() {
    let project = project();
    project.file("a.txt", "one\nmy two\nthree\n");
    let run = HandRun::start(project, &[("x", &["a.txt"])]);
    run.commit_task("x", &[("a.txt", "one\nthe run's two\nthree\n")]);
    run.finish();
    let root = run.root();
    let before = checkout_state(&root);
    run.orch(&["merge"])
        .expect(1)
        .stderr_has("in 1 file:\n  a.txt")
        .stderr_has("uncommitted at `orch up`")
        .stderr_has("commit your own changes to these files first");
    assert_eq!(checkout_state(&root), before);
}
