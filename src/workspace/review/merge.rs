//! `orch merge`: the run's work as new commits on the user's `HEAD`, computed from objects
//! alone, then the checkout moved to them with `git merge --ff-only`.
//!
//! Which commits depends on the run's start. When the run began from the user's `HEAD` as
//! committed, the run branch is all the run's own: a fast-forward when `HEAD` has not moved
//! since, else a merge commit. When it began from the checkout's uncommitted changes (the
//! branch's first commit, `uncommitted`), that commit must never reach the user's branch:
//! they still have those changes in their checkout, uncommitted. So the run's own commits
//! (`start..tip`) are replayed onto `HEAD` one by one (a three-way merge of each with its
//! parent as the base, author and message kept), and a commit whose change `HEAD` already
//! has is left out. `--squash` makes one commit on `HEAD` of the whole `start..tip` change.

use anyhow::bail;

use super::overwrite::{Overwrite, would_overwrite};
use super::repo::Repo;
use crate::workspace::WorkspaceInfo;

/// How the run's work came to the user's branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeKind {
    /// `HEAD` had not moved: it now points at the run branch's tip.
    FastForward,
    /// A merge commit of `HEAD` and the run branch.
    MergeCommit,
    /// The run's own commits, made again on `HEAD` (the run started from uncommitted changes).
    Replay,
    /// One commit on `HEAD` with all the run's changes.
    Squash,
}

impl MergeKind {
    pub fn describe(self) -> &'static str {
        match self {
            MergeKind::FastForward => "fast-forward",
            MergeKind::MergeCommit => "merge commit",
            MergeKind::Replay => "the run's commits replayed",
            MergeKind::Squash => "one squashed commit",
        }
    }
}

/// What a merge would do, computed without touching any work tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// The user's branch has the run's work already (or the run has none).
    Nothing(String),
    /// Some files conflict: no commit could be made.
    Conflict(Vec<String>),
    /// `new` is ready: moving `HEAD` from `head` to it merges the run.
    Ready {
        head: String,
        new: String,
        kind: MergeKind,
        /// How many of the run's commits it brings.
        commits: usize,
        /// Commits left out because `HEAD` had their change already.
        skipped: usize,
    },
}

/// A merge done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The user's branch, or `HEAD` when detached.
    pub into: String,
    pub from: String,
    pub new: String,
    pub tip: String,
    pub kind: MergeKind,
    pub commits: usize,
    pub skipped: usize,
}

/// Works out the commit that merges the run's branch (at `tip`) into the checkout's `head`.
pub fn plan(
    repo: &Repo,
    run_id: &str,
    request: &str,
    ws: &WorkspaceInfo,
    head: &str,
    tip: &str,
    squash: bool,
) -> anyhow::Result<Planned> {
    let own = repo.commits_between(&ws.start, tip)?;
    if own.is_empty() {
        return Ok(Planned::Nothing(format!(
            "run {run_id} has no commits of its own on {} yet: no task of it was accepted",
            ws.branch
        )));
    }
    let with_uncommitted = ws.uncommitted.is_some() && ws.start != ws.base;
    if squash {
        let tree = match merge_trees(repo, Some(&ws.start), head, tip)? {
            Ok(tree) => tree,
            Err(files) => return Ok(Planned::Conflict(files)),
        };
        if tree == repo.tree_of(head)? {
            return Ok(already(run_id));
        }
        let message = squash_message(repo, run_id, request, &own)?;
        let new = repo.commit_tree(&tree, &[head], None, message.as_bytes())?;
        return Ok(ready(head, new, MergeKind::Squash, own.len(), 0));
    }
    if !with_uncommitted {
        if repo.is_ancestor(tip, head)? {
            return Ok(already(run_id));
        }
        if repo.is_ancestor(head, tip)? {
            return Ok(ready(
                head,
                tip.to_string(),
                MergeKind::FastForward,
                own.len(),
                0,
            ));
        }
        let tree = match merge_trees(repo, None, head, tip)? {
            Ok(tree) => tree,
            Err(files) => return Ok(Planned::Conflict(files)),
        };
        if tree == repo.tree_of(head)? {
            // Its changes came by another way (a squash merge before, say).
            return Ok(already(run_id));
        }
        let message = format!(
            "Merge {}: {}\n\nOrch-Run: {run_id}\n",
            ws.branch,
            crate::format::clip(&crate::format::first_line(request), 60)
        );
        let new = repo.commit_tree(&tree, &[head, tip], None, message.as_bytes())?;
        return Ok(ready(head, new, MergeKind::MergeCommit, own.len(), 0));
    }
    // Replayed one by one, so that each task stays a commit of its own on the user's branch.
    let mut onto = head.to_string();
    let mut onto_tree = repo.tree_of(head)?;
    let (mut made, mut skipped) = (0, 0);
    for commit in &own {
        let info = repo.read_commit(commit)?;
        let [parent] = info.parents.as_slice() else {
            bail!(
                "commit {commit} on {} is a merge (or has no parent): orch cannot replay it; \
                 merge the branch by hand with `git merge {}`",
                ws.branch,
                ws.branch
            );
        };
        let tree = match merge_trees(repo, Some(parent), &onto, commit)? {
            Ok(tree) => tree,
            Err(files) => return Ok(Planned::Conflict(files)),
        };
        if tree == onto_tree {
            skipped += 1;
            continue;
        }
        onto = repo.commit_tree(&tree, &[&onto], Some(&info.author), &info.message)?;
        onto_tree = tree;
        made += 1;
    }
    if made == 0 {
        return Ok(already(run_id));
    }
    Ok(ready(head, onto, MergeKind::Replay, made, skipped))
}

fn already(run_id: &str) -> Planned {
    Planned::Nothing(format!(
        "the work of run {run_id} is in your branch already: nothing to merge"
    ))
}

fn ready(head: &str, new: String, kind: MergeKind, commits: usize, skipped: usize) -> Planned {
    Planned::Ready {
        head: head.to_string(),
        new,
        kind,
        commits,
        skipped,
    }
}

/// The tree of a three-way merge of `ours` and `theirs` (with `base`, else their merge base),
/// or the conflicting files.
fn merge_trees(
    repo: &Repo,
    base: Option<&str>,
    ours: &str,
    theirs: &str,
) -> anyhow::Result<Result<String, Vec<String>>> {
    let mut args = vec![
        "merge-tree".to_string(),
        "--write-tree".into(),
        "--name-only".into(),
        "--no-messages".into(),
        "-z".into(),
    ];
    if let Some(base) = base {
        args.push(format!("--merge-base={base}"));
    }
    args.push(ours.to_string());
    args.push(theirs.to_string());
    let out = repo.git_output(&args)?;
    let mut fields = out.stdout.split(|b| *b == 0);
    let tree = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    match out.status.code() {
        Some(0) => Ok(Ok(tree)),
        Some(1) => {
            let mut files: Vec<String> = fields
                .take_while(|f| !f.is_empty())
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            files.dedup();
            Ok(Err(files))
        }
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("merge-base") || stderr.contains("write-tree") {
                bail!(
                    "this git is too old for `orch merge` (it needs git 2.40 or later for \
                     `git merge-tree --write-tree --merge-base`): upgrade git, or merge by hand \
                     with `git merge`; git said: {}",
                    stderr.trim()
                );
            }
            bail!("`git merge-tree` failed: {}", stderr.trim())
        }
    }
}

fn squash_message(
    repo: &Repo,
    run_id: &str,
    request: &str,
    own: &[String],
) -> anyhow::Result<String> {
    let mut message = format!(
        "orch run {run_id}: {}\n\n",
        crate::format::clip(&crate::format::first_line(request), 60)
    );
    for commit in own {
        message.push_str(&format!("- {}\n", repo.subject(commit)?));
    }
    message.push_str(&format!("\nOrch-Run: {run_id}\n"));
    Ok(message)
}

/// Merges the run's branch into the checkout of `repo`: plans the commit, refuses (having
/// changed nothing) on a conflict or when the checkout has changes the merge would
/// overwrite, else moves the checkout with `git merge --ff-only`. `last_commit`: the run
/// branch's last commit as journaled, for bringing back a branch deleted meanwhile.
pub fn merge(
    repo: &Repo,
    run_id: &str,
    request: &str,
    ws: &WorkspaceInfo,
    squash: bool,
    last_commit: Option<&str>,
) -> anyhow::Result<Result<Merged, String>> {
    if let Some(operation) = repo.operation_in_progress() {
        bail!("your checkout is in the middle of {operation}; then run `orch merge` again");
    }
    let tip = repo
        .branch_tip(&ws.branch)?
        .ok_or_else(|| super::branch_gone(run_id, &ws.branch, last_commit))?;
    let head = repo.head()?;
    let into = repo.current_branch()?.unwrap_or_else(|| "HEAD".to_string());
    let (new, kind, commits, skipped) = match plan(repo, run_id, request, ws, &head, &tip, squash)?
    {
        Planned::Nothing(why) => return Ok(Err(why)),
        Planned::Conflict(files) => bail!(conflict_message(run_id, ws, &into, &files)),
        Planned::Ready {
            new,
            kind,
            commits,
            skipped,
            ..
        } => (new, kind, commits, skipped),
    };
    let overwrites = would_overwrite(repo, &head, &new)?;
    if !overwrites.is_empty() {
        bail!(overwrite_message(run_id, &overwrites));
    }
    let out = repo
        .user_cmd()
        .args(["merge", "--ff-only", "--quiet", "--no-edit", &new])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("failed to run git: {e}"))?;
    if !out.status.success() {
        bail!(
            "git refused to move your checkout, so nothing changed: {}\nIf your branch moved \
             meanwhile, run `orch merge --run {run_id}` again.",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(Ok(Merged {
        into,
        from: head,
        new,
        tip,
        kind,
        commits,
        skipped,
    }))
}

fn conflict_message(run_id: &str, ws: &WorkspaceInfo, into: &str, files: &[String]) -> String {
    let mut text = format!(
        "the work of run {run_id} conflicts with {into} in {} file{}:\n",
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    );
    for file in files {
        text.push_str(&format!("  {file}\n"));
    }
    text.push_str(&format!(
        "Nothing was changed. To resolve the conflicts by hand: `git merge {}`, fix the files, \
         `git add` them and `git commit`.",
        ws.branch
    ));
    if let Some(uncommitted) = &ws.uncommitted {
        text.push_str(&format!(
            "\nThat merge also brings the branch's first commit ({}), the changes your \
             checkout had uncommitted at `orch up`, into {into}. To keep them uncommitted \
             instead, commit your own changes to these files first and run `orch merge --run \
             {run_id}` again.",
            &uncommitted[..uncommitted.len().min(12)]
        ));
    }
    text
}

fn overwrite_message(run_id: &str, overwrites: &[Overwrite]) -> String {
    let mut text = format!(
        "merging run {run_id} would overwrite changes in your checkout in {} file{}:\n",
        overwrites.len(),
        if overwrites.len() == 1 { "" } else { "s" }
    );
    for o in overwrites {
        text.push_str(&format!("  {} ({})\n", o.path, o.why));
    }
    let quoted: Vec<String> = overwrites
        .iter()
        .map(|o| {
            shlex::try_quote(&o.path).map_or_else(|_| o.path.clone(), std::borrow::Cow::into_owned)
        })
        .collect();
    text.push_str(&format!(
        "Nothing was changed. Commit them, or put them aside first:\n  git stash push \
         --include-untracked -- {}\nthen run `orch merge --run {run_id}` again, and `git stash \
         pop` after it.",
        quoted.join(" ")
    ));
    if overwrites.iter().any(|o| o.why == Overwrite::IGNORED) {
        text.push_str(
            "\n(A file git ignores is not stashed that way: move it elsewhere before merging.)",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overwrite_message_quotes_paths_for_the_shell() {
        let text = overwrite_message(
            "r1",
            &[
                Overwrite {
                    path: "my notes.txt".into(),
                    why: Overwrite::UNTRACKED,
                },
                Overwrite {
                    path: "it's.log".into(),
                    why: Overwrite::IGNORED,
                },
            ],
        );
        assert!(
            text.contains("git stash push --include-untracked -- 'my notes.txt' \"it's.log\""),
            "{text}"
        );
        assert!(text.contains("move it elsewhere"), "{text}");
        assert!(text.contains("orch merge --run r1"), "{text}");
    }
}
