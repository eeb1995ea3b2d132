//! The gates: spec files written, a test file per task, TDD evidence, lint and tests passing,
//! no unresolved violation. A gate that is not configured is skipped, never passed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::TddMode;
use crate::paths::ProjectPath;
use crate::plan::TaskId;
use crate::state::ViolationRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateStatus {
    Passed,
    Failed,
    Skipped,
}

impl GateStatus {
    pub fn name(self) -> &'static str {
        match self {
            GateStatus::Passed => "passed",
            GateStatus::Failed => "failed",
            GateStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GateOutcome {
    pub gate: &'static str,
    pub status: GateStatus,
    /// One line for the user, the report and the retry prompt.
    pub detail: String,
    /// The gate's full output, when it ran a command.
    pub log: Option<PathBuf>,
}

impl GateOutcome {
    fn new(gate: &'static str, status: GateStatus, detail: impl Into<String>) -> Self {
        GateOutcome {
            gate,
            status,
            detail: detail.into(),
            log: None,
        }
    }

    pub fn failed(&self) -> bool {
        self.status == GateStatus::Failed
    }
}

/// Every spec file the plan lists exists and is not empty.
pub fn spec_gate(root: &Path, specs: &[ProjectPath]) -> GateOutcome {
    if specs.is_empty() {
        return GateOutcome::new("specs", GateStatus::Skipped, "the plan lists no spec files");
    }
    let bad: Vec<&str> = specs
        .iter()
        .filter(|s| {
            crate::paths::read_inside(root, s).map_or(true, |c| c.is_empty()) || leads_out(root, s)
        })
        .map(crate::paths::ProjectPath::as_str)
        .collect();
    if bad.is_empty() {
        GateOutcome::new(
            "specs",
            GateStatus::Passed,
            format!("{} spec file(s) written", specs.len()),
        )
    } else {
        GateOutcome::new(
            "specs",
            GateStatus::Failed,
            format!("spec file(s) missing or empty: {}", bad.join(", ")),
        )
    }
}

/// A file that is a link out of the project is no file of the project's: it counts as
/// missing, and nothing is read through it.
fn leads_out(root: &Path, rel: &str) -> bool {
    crate::paths::link_out(root, rel)
        .is_some_and(|out| matches!(out, crate::paths::LinkOut::Symlink { .. }))
}

fn globs(patterns: &[String]) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        // The config was checked at load: a pattern that does not compile cannot get here.
        if let Ok(glob) = Glob::new(p) {
            builder.add(glob);
        }
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}

/// Which of `files` are tests.
pub(super) fn test_files<'a>(
    files: &'a [ProjectPath],
    patterns: &[String],
) -> Vec<&'a ProjectPath> {
    let set = globs(patterns);
    files.iter().filter(|f| set.is_match(f.as_str())).collect()
}

/// The task owns at least one test file, and it exists.
pub fn test_file_gate(root: &Path, files: &[ProjectPath], patterns: &[String]) -> GateOutcome {
    let tests = test_files(files, patterns);
    if tests.is_empty() {
        return GateOutcome::new(
            "tests",
            GateStatus::Failed,
            format!(
                "the task owns no test file (a file matching {}): TDD needs one",
                patterns.join(", ")
            ),
        );
    }
    let missing: Vec<&str> = tests
        .iter()
        .filter(|t| !root.join(t.as_str()).exists() || leads_out(root, t))
        .map(|t| t.as_str())
        .collect();
    if missing.is_empty() {
        let names: Vec<&str> = tests.iter().map(|t| t.as_str()).collect();
        GateOutcome::new(
            "tests",
            GateStatus::Passed,
            format!("test file(s): {}", names.join(", ")),
        )
    } else {
        GateOutcome::new(
            "tests",
            GateStatus::Failed,
            format!("test file(s) not written: {}", missing.join(", ")),
        )
    }
}

/// TDD evidence from the watcher's first-write times: were the task's tests written before
/// its implementation? A failure only under `tdd: strict`.
pub fn tdd_gate(
    files: &[ProjectPath],
    patterns: &[String],
    first_writes: &BTreeMap<ProjectPath, u64>,
    mode: TddMode,
) -> GateOutcome {
    if mode == TddMode::Off {
        return GateOutcome::new("tdd", GateStatus::Skipped, "tdd: off");
    }
    let tests = test_files(files, patterns);
    let first_test = tests
        .iter()
        .filter_map(|t| first_writes.get(t.as_str()))
        .min();
    let implementation: Vec<(&ProjectPath, u64)> = files
        .iter()
        .filter(|f| !tests.contains(f))
        .filter_map(|f| first_writes.get(f).map(|t| (f, *t)))
        .collect();
    let Some(&first_test) = first_test else {
        return GateOutcome::new(
            "tdd",
            GateStatus::Skipped,
            "no test file was seen being written, so the order is unknown",
        );
    };
    let early: Vec<&str> = implementation
        .iter()
        .filter(|(_, t)| *t < first_test)
        .map(|(f, _)| f.as_str())
        .collect();
    if early.is_empty() {
        return GateOutcome::new(
            "tdd",
            GateStatus::Passed,
            "tests were written before the implementation",
        );
    }
    let detail = format!(
        "implementation written before any test: {}",
        early.join(", ")
    );
    let status = if mode == TddMode::Strict {
        GateStatus::Failed
    } else {
        GateStatus::Passed
    };
    let detail = if status == GateStatus::Passed {
        format!("warning: {detail}")
    } else {
        detail
    };
    GateOutcome::new("tdd", status, detail)
}

/// No unresolved violation, since `since_ms`, of which this task is the only suspect (`task`
/// None: any unresolved violation with a suspect, for the run). Many are summarized (counts
/// per directory, the first few), their full list written to `list`, so that the detail, which
/// goes into the journal and the next attempt's prompt, stays short.
pub fn violation_gate(
    task: Option<&TaskId>,
    violations: &[ViolationRecord],
    since_ms: u64,
    list: &Path,
) -> GateOutcome {
    let unresolved: Vec<&ViolationRecord> = violations
        .iter()
        .filter(|v| v.at_ms >= since_ms)
        .filter(|v| !matches!(v.action.as_str(), "reverted" | "deleted"))
        .filter(|v| match task {
            Some(id) => v.suspects.len() == 1 && &v.suspects[0] == id,
            // The run's: every violation counts, one nobody can be blamed for too.
            None => true,
        })
        .collect();
    if unresolved.is_empty() {
        return GateOutcome::new("ownership", GateStatus::Passed, "no unresolved violation");
    }
    // A file created, then written, is one file.
    let mut seen = std::collections::BTreeSet::new();
    let paths: Vec<String> = unresolved
        .iter()
        .filter(|v| seen.insert(v.path.as_str()))
        .map(|v| format!("{} ({})", v.path, v.change))
        .collect();
    let summary = crate::flood::summarize(&paths, |item| {
        item.rsplit_once(" (").map_or(item, |(path, _)| path)
    });
    let mut outcome = GateOutcome::new(
        "ownership",
        GateStatus::Failed,
        format!("changed files it does not own: {summary}"),
    );
    if paths.len() > crate::flood::LIST_MAX {
        match crate::flood::write_list(list, &paths) {
            Ok(()) => outcome.log = Some(list.to_path_buf()),
            Err(e) => outcome.detail.push_str(&format!(" (the full list: {e:#})")),
        }
    }
    outcome
}

/// Runs a lint or test command (`sh -c` in the project root), its output kept in `log`.
pub async fn command_gate(
    gate: &'static str,
    command: Option<&str>,
    root: &Path,
    log: &Path,
    timeout: Duration,
) -> GateOutcome {
    let Some(command) = command else {
        return GateOutcome::new(
            gate,
            GateStatus::Skipped,
            format!("gates.{gate} is not configured"),
        );
    };
    if let Some(parent) = log.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let out = match std::fs::File::create(log) {
        Ok(f) => f,
        Err(e) => {
            return GateOutcome::new(
                gate,
                GateStatus::Failed,
                format!("cannot write {}: {e}", log.display()),
            );
        }
    };
    let err = match out.try_clone() {
        Ok(f) => f,
        Err(e) => {
            return GateOutcome::new(
                gate,
                GateStatus::Failed,
                format!("cannot write {}: {e}", log.display()),
            );
        }
    };
    let mut child = tokio::process::Command::new("sh");
    child
        .args(["-c", command])
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true);
    // A build writes the user's files: with the user's umask, not the engine's.
    crate::private::user_umask_for_tokio(&mut child);
    let child = child.spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            return GateOutcome::new(
                gate,
                GateStatus::Failed,
                format!("cannot run `{command}`: {e}"),
            );
        }
    };
    let pgid = child.id().map(|p| p as i32);
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            return GateOutcome::new(
                gate,
                GateStatus::Failed,
                format!("`{command}` failed to run: {e}"),
            );
        }
        Err(_) => {
            if let Some(pgid) = pgid {
                crate::agent_process::subprocess::kill_group(pgid, Duration::from_secs(2));
            }
            let mut o = GateOutcome::new(
                gate,
                GateStatus::Failed,
                format!(
                    "`{command}` did not finish within {}",
                    humantime::format_duration(timeout)
                ),
            );
            o.log = Some(log.to_path_buf());
            return o;
        }
    };
    let mut outcome = if status.success() {
        GateOutcome::new(gate, GateStatus::Passed, format!("`{command}` passed"))
    } else {
        let tail = tail(log, 15);
        GateOutcome::new(
            gate,
            GateStatus::Failed,
            format!("`{command}` failed ({status}); its last lines:\n{tail}"),
        )
    };
    outcome.log = Some(log.to_path_buf());
    outcome
}

/// The last `n` lines of a log, for a retry prompt: enough to see the failure.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::project_paths;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(std::string::ToString::to_string).collect()
    }

    #[test]
    fn a_violation_nobody_can_be_blamed_for_fails_the_run_unless_reverted() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("run-ownership.txt");
        let v = |path: &str, suspects: &[&str], action: &str| ViolationRecord {
            n: 1,
            path: path.into(),
            change: "modified".into(),
            suspects: suspects.iter().map(|s| TaskId::new(*s)).collect(),
            action: action.into(),
            saved: None,
            swept: true,
            worktree: None,
            at_ms: 10,
        };
        let nobody = [v("README.md", &[], "found-by-sweep")];
        let gate = violation_gate(None, &nobody, 0, &list);
        assert!(
            gate.failed() && gate.detail.contains("README.md"),
            "{gate:?}"
        );
        // No task is to blame for it.
        assert!(!violation_gate(Some(&TaskId::new("a")), &nobody, 0, &list).failed());
        for resolved in ["reverted", "deleted"] {
            assert!(!violation_gate(None, &[v("README.md", &[], resolved)], 0, &list).failed());
        }
        // A revert journaled and never settled, or failed, is not resolved.
        for open in [
            "reverting",
            "revert failed: x; the content to put back is in y",
        ] {
            assert!(violation_gate(None, &[v("README.md", &["a"], open)], 0, &list).failed());
        }
    }

    #[test]
    fn specs_and_test_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.md"), "x").unwrap();
        std::fs::write(dir.path().join("b.md"), "").unwrap();
        assert!(!spec_gate(dir.path(), &project_paths(&["a.md"])).failed());
        let g = spec_gate(dir.path(), &project_paths(&["a.md", "b.md", "c.md"]));
        assert!(g.failed() && g.detail.contains("b.md, c.md"), "{g:?}");
        assert_eq!(spec_gate(dir.path(), &[]).status, GateStatus::Skipped);
        let pats = s(&["tests/**"]);
        let g = test_file_gate(dir.path(), &project_paths(&["src/a.rs"]), &pats);
        assert!(g.failed() && g.detail.contains("owns no test file"));
        let g = test_file_gate(
            dir.path(),
            &project_paths(&["src/a.rs", "tests/a.rs"]),
            &pats,
        );
        assert!(g.failed() && g.detail.contains("not written: tests/a.rs"));
    }

    #[test]
    fn tdd_order() {
        let files = project_paths(&["tests/a_test.sh", "lib/a.sh"]);
        let pats = s(&["tests/**"]);
        let before = BTreeMap::from([(files[0].clone(), 1), (files[1].clone(), 2)]);
        let after = BTreeMap::from([(files[0].clone(), 3), (files[1].clone(), 2)]);
        assert_eq!(
            tdd_gate(&files, &pats, &before, TddMode::Strict).status,
            GateStatus::Passed
        );
        let g = tdd_gate(&files, &pats, &after, TddMode::Strict);
        assert!(g.failed() && g.detail.contains("lib/a.sh"), "{g:?}");
        let g = tdd_gate(&files, &pats, &after, TddMode::Warn);
        assert!(!g.failed() && g.detail.starts_with("warning"), "{g:?}");
        assert_eq!(
            tdd_gate(&files, &pats, &BTreeMap::new(), TddMode::Strict).status,
            GateStatus::Skipped
        );
        assert_eq!(
            tdd_gate(&files, &pats, &after, TddMode::Off).status,
            GateStatus::Skipped
        );
    }

    #[test]
    fn commands_pass_fail_and_skip() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let log = dir.path().join("g/lint.log");
        let t = Duration::from_secs(10);
        let ok = rt.block_on(command_gate("lint", Some("echo fine"), dir.path(), &log, t));
        assert_eq!(ok.status, GateStatus::Passed);
        let bad = rt.block_on(command_gate(
            "lint",
            Some("echo broken line; exit 3"),
            dir.path(),
            &log,
            t,
        ));
        assert!(
            bad.failed() && bad.detail.contains("broken line"),
            "{bad:?}"
        );
        let skip = rt.block_on(command_gate("test", None, dir.path(), &log, t));
        assert_eq!(skip.status, GateStatus::Skipped);
        let slow = rt.block_on(command_gate(
            "test",
            Some("sleep 30"),
            dir.path(),
            &log,
            Duration::from_millis(200),
        ));
        assert!(
            slow.failed() && slow.detail.contains("did not finish"),
            "{slow:?}"
        );
    }
}
