//! A worktree run made by hand, as orch's engine makes one, and what the tests look at:
//! git's answers and the user's checkout, byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use orch::plan::{Plan, TaskId};
use orch::state::{self, Event, Journal, Outcome, RunInfo};
use orch::workspace::{self, WorkspaceInfo};

use crate::support::TestProject;

/// Runs git in `dir`; it must succeed. Its standard output, trimmed.
pub(super) fn git(dir: &Path, args: &[&str]) -> String {
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
pub(super) fn checkout_state(root: &Path) -> BTreeMap<String, Vec<u8>> {
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
pub(super) struct HandRun {
    pub(super) project: TestProject,
    pub(super) run_id: String,
    info: RunInfo,
}

impl HandRun {
    /// A run of `tasks` (id, owned files) started now from the project's `HEAD`, with the
    /// checkout's uncommitted changes (if any) as the branch's first commit.
    pub(super) fn start(project: TestProject, tasks: &[(&str, &[&str])]) -> HandRun {
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
            review: false,
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

    pub(super) fn root(&self) -> PathBuf {
        self.project.root()
    }

    pub(super) fn ws(&self) -> &WorkspaceInfo {
        self.info.workspace.as_ref().unwrap()
    }

    pub(super) fn worktree(&self) -> &Path {
        &self.ws().path
    }

    pub(super) fn run_dir(&self) -> PathBuf {
        self.root().join(".orch/runs").join(&self.run_id)
    }

    pub(super) fn journal(&self, events: Vec<Event>) {
        let mut journal = Journal::open(&self.run_dir().join("events.jsonl")).unwrap();
        journal.append_all(events).unwrap();
    }

    pub(super) fn events(&self) -> Vec<Event> {
        state::read_journal(&self.run_dir().join("events.jsonl"))
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.event)
            .collect()
    }

    /// Task `task` writes `files` in the worktree and is accepted: one commit of exactly
    /// those files on the run branch, made as the engine makes it.
    pub(super) fn commit_task(&self, task: &str, files: &[(&str, &str)]) -> String {
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

    pub(super) fn finish(&self) {
        self.journal(vec![Event::RunFinished {
            outcome: Outcome::Succeeded,
            reason: None,
        }]);
    }

    pub(super) fn orch(&self, args: &[&str]) -> crate::support::Output {
        self.project.orch().args(args).run()
    }

    pub(super) fn merges(&self) -> Vec<(String, String, bool)> {
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
pub(super) fn project() -> TestProject {
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
