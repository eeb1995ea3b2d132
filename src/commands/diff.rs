//! `orch diff [TASK] [--run ID] [-- GIT-ARGS]`: a worktree run's changes as the user's own git
//! shows them (their pager, colours and diff settings, on their terminal): the whole run
//! (`start..tip`, never the checkout's own uncommitted changes it started from), one task's
//! commit, or, for a task not committed yet, its owned files in the worktree against the start.

use std::ffi::OsString;
use std::process::Command;

use super::{Global, runs};
use crate::error::usage;
use crate::plan::TaskId;
use crate::workspace::review::{self, Repo};

/// `orch diff specs` (when no task has that id): the planner's specs commit.
const SPECS: &str = "specs";

pub(crate) fn run(
    global: &Global,
    run: Option<&str>,
    task: Option<&str>,
    git_args: &[OsString],
) -> anyhow::Result<u8> {
    let loaded = runs::load(global, run)?;
    let run_id = loaded.info.run_id.as_str();
    let ws = review::workspace_of(run_id, loaded.info.workspace.as_ref(), "diff")?;
    let repo = Repo::new(&loaded.project.root);
    let tip = repo.branch_tip(&ws.branch)?.ok_or_else(|| {
        review::branch_gone(
            run_id,
            &ws.branch,
            loaded.state.commits.last().map(|c| c.commit.as_str()),
        )
    })?;
    // git diff|show REVISIONS USER-ARGS: git takes options after revisions too, and so the
    // user's own `-- PATHS` works.
    let (verb, revisions): (&str, Vec<String>) = match task {
        None => {
            if tip == ws.start {
                eprintln!("run {run_id} has no commits of its own yet: no task was accepted");
            }
            ("diff", vec![ws.start.clone(), tip])
        }
        Some(SPECS) if !loaded.state.tasks.contains_key(&TaskId::new(SPECS)) => {
            let commit = loaded.state.specs_commit.clone().ok_or_else(|| {
                usage(format!(
                    "run {run_id} has no specs commit (yet): its planner had not finished, or \
                     the plan was given with --plan"
                ))
            })?;
            ("show", vec![commit])
        }
        Some(id) => {
            let Some(task) = loaded.state.tasks.get(&TaskId::new(id)) else {
                let ids: Vec<String> = loaded
                    .state
                    .tasks_in_order()
                    .map(|t| t.id.to_string())
                    .collect();
                return Err(usage(if ids.is_empty() {
                    format!("run {run_id} has no tasks (yet): `orch diff` shows the whole run")
                } else {
                    format!(
                        "no task {id} in run {run_id}: its tasks are {} (and `specs`)",
                        ids.join(", ")
                    )
                }));
            };
            if let Some(commit) = &task.commit {
                ("show", vec![commit.clone()])
            } else {
                // Under `isolation: task` a task works in a worktree of its own.
                let task_tree = loaded
                    .project
                    .state_dir()
                    .join("worktrees")
                    .join(format!("{run_id}-tasks"))
                    .join(id);
                let own = task.id.is_safe() && task_tree.is_dir();
                let worktree = if own { task_tree } else { ws.path.clone() };
                if !worktree.is_dir() {
                    return Err(usage(format!(
                        "task {id} has no commit (it is {}), and the run's worktree is gone, so \
                         there is nothing of it to show",
                        task.state.name()
                    )));
                }
                eprintln!(
                    "task {id} is {} and not committed: its files as they are in {} now, \
                     against the run's start",
                    task.state.name(),
                    if own {
                        "its own worktree"
                    } else {
                        "the run's worktree"
                    }
                );
                let tree = review::owned_files_tree(
                    &Repo::new(&worktree),
                    &ws.start,
                    &task.files,
                    loaded.dir.path(),
                )?;
                // The tree differs from the start in the task's files alone.
                ("diff", vec![ws.start.clone(), tree])
            }
        }
    };
    let mut git = Command::new("git");
    git.current_dir(&loaded.project.root)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .arg(verb)
        .args(&revisions)
        .args(git_args);
    let status = git
        .status()
        .map_err(|e| anyhow::anyhow!("failed to run git: {e}; is it on PATH?"))?;
    Ok(status.code().map_or(crate::error::EXIT_FAILED, |c| {
        u8::try_from(c).unwrap_or(crate::error::EXIT_FAILED)
    }))
}
