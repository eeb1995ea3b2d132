//! The worker: writes its own files, tests first, then the implementation. Wordstat paths
//! get their real content, any other path generic content by extension, so that the worker
//! also carries out plans the scripted planner did not write.
//!
//! Fault knobs, as a worker: `garbage` and `no-write` write nothing (exit 0); `crash` (exit 3)
//! and `hang` strike right after the first file; `violate` then writes
//! `stray/<task-id>.txt`, and `delete` removes the project's `README.md` (when it exists and
//! the task does not own it), both after the task's own files.

use super::agent::{Session, bad_input, garbage};
use super::fault::Fault;
use super::files::TestMatcher;
use super::{generic, wordstat};
use crate::paths;

/// The file the `delete` fault removes.
const DELETE_TARGET: &str = "README.md";

pub(super) fn run(s: &mut Session) -> anyhow::Result<i32> {
    let id = s
        .ctx
        .task
        .as_ref()
        .map_or_else(|| "?".to_string(), std::string::ToString::to_string);
    if s.faults.has(Fault::NoWrite) {
        s.say(format!("task {id}: nothing written"))?;
        return Ok(0);
    }
    if s.faults.has(Fault::Garbage) {
        s.say(garbage(s.ctx.role))?;
        return Ok(0);
    }
    let files = ordered_files(s)?;
    let tests = files.iter().filter(|(_, test)| *test).count();
    s.say(format!(
        "task {id}: {} file(s) to write, tests first: {}",
        files.len(),
        files
            .iter()
            .map(|(f, _)| f.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    if files.is_empty()
        && let Some(code) = strike(s)?
    {
        return Ok(code);
    }
    let task_text = s.ctx.task_text.clone().unwrap_or_default();
    for (i, (file, is_test)) in files.iter().enumerate() {
        let content = match wordstat::file(file) {
            Some(known) => known.to_string(),
            None => generic::content(file, *is_test, &task_text),
        };
        s.write_file(file, &content)?;
        if i == 0
            && let Some(code) = strike(s)?
        {
            return Ok(code);
        }
    }
    if s.faults.has(Fault::Violate) {
        let stray = format!("stray/{}.txt", safe_name(&id));
        s.write_file(
            &stray,
            &format!("Written by the worker of task {id}, which does not own this file.\n"),
        )?;
    }
    if s.faults.has(Fault::Delete) {
        delete_readme(s, &files)?;
    }
    s.say(format!(
        "task {id} done: wrote {tests} test file(s), then {} implementation file(s)",
        files.len() - tests
    ))?;
    Ok(0)
}

/// The `crash` and `hang` faults, once there is partial work to find.
fn strike(s: &mut Session) -> anyhow::Result<Option<i32>> {
    if s.faults.has(Fault::Crash) {
        return Ok(Some(s.crash()));
    }
    if s.faults.has(Fault::Hang) {
        s.hang();
    }
    Ok(None)
}

/// The task's files, checked (all of them before any is written) and normalized, tests
/// first; each group keeps the plan's order.
fn ordered_files(s: &Session) -> anyhow::Result<Vec<(String, bool)>> {
    let matcher = TestMatcher::new(&s.ctx.test_pattern)?;
    let mut files: Vec<(String, bool)> = Vec::new();
    for raw in &s.ctx.files {
        let rel = paths::check(&s.root, raw)
            .map_err(|problem| bad_input(format!("refusing to write {raw:?}: it {problem}")))?;
        if !files.iter().any(|(f, _)| *f == rel) {
            let test = matcher.is_test(&rel);
            files.push((rel.into_string(), test));
        }
    }
    files.sort_by_key(|(_, test)| !*test);
    Ok(files)
}

fn delete_readme(s: &mut Session, own: &[(String, bool)]) -> anyhow::Result<()> {
    if own.iter().any(|(f, _)| f == DELETE_TARGET) {
        return Ok(());
    }
    let Ok(rel) = paths::check(&s.root, DELETE_TARGET) else {
        return Ok(());
    };
    let path = s.root.join(&rel);
    if path.is_file() {
        std::fs::remove_file(&path)
            .map_err(|e| anyhow::anyhow!("failed to delete {}: {e}", path.display()))?;
        s.say(format!("deleted {rel}"))?;
    }
    Ok(())
}

/// A task id as one safe path component.
fn safe_name(id: &str) -> String {
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "task".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::TaskId;
    use crate::prompt::{Context, Role};
    use crate::scripted::testing::{self, Ran};

    fn worker(dir: &std::path::Path, id: &str, files: &[&str]) -> Context {
        Context {
            task: Some(TaskId::new(id)),
            files: crate::paths::project_paths(files),
            task_text: Some(format!("do task {id}")),
            ..testing::ctx(Role::Worker, dir)
        }
    }

    /// Every file under `dir`, relative, sorted.
    fn tree(dir: &std::path::Path) -> Vec<String> {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap();
                    out.push(rel.display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    fn run_in(files: &[&str], faults: &str) -> (tempfile::TempDir, Ran) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.md"), "# project\n").unwrap();
        let ran = testing::run(&worker(dir.path(), "stats", files), faults);
        (dir, ran)
    }

    #[test]
    fn writes_tests_first_and_only_its_own_files() {
        let files = [
            "lib/stats.sh",
            "src/util.py",
            "tests/stats_test.sh",
            "tests/t.py",
        ];
        let (dir, ran) = run_in(&files, "");
        assert_eq!(ran.code, 0, "{}", ran.err);
        assert_eq!(
            ran.wrote(),
            [
                "tests/stats_test.sh",
                "tests/t.py",
                "lib/stats.sh",
                "src/util.py"
            ]
        );
        let mut expected: Vec<String> =
            files.iter().map(std::string::ToString::to_string).collect();
        expected.push("README.md".to_string());
        expected.sort();
        assert_eq!(tree(dir.path()), expected);
        let stats = std::fs::read_to_string(dir.path().join("lib/stats.sh")).unwrap();
        assert!(stats.contains("stats_top()"));
        let util = std::fs::read_to_string(dir.path().join("src/util.py")).unwrap();
        assert!(util.contains("do task stats"));
        assert!(ran.out.lines().last().unwrap().contains("done"));
    }

    #[test]
    fn bin_files_are_executable() {
        use std::os::unix::fs::PermissionsExt as _;
        let (dir, _) = run_in(&["tests/wordstat_test.sh", "bin/wordstat"], "");
        let mode = std::fs::metadata(dir.path().join("bin/wordstat"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
    }

    #[test]
    fn a_refused_path_writes_nothing_and_exits_2() {
        // orch cannot put such a path in a context (its files are `ProjectPath`s): one edited
        // into the prompt by hand makes the whole context invalid, and nothing is written.
        for bad in ["../escape.sh", "/etc/x", ".git/hooks/pre-commit", ".orch/x"] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("README.md"), "# project\n").unwrap();
            let ctx = worker(
                dir.path(),
                "stats",
                &["tests/a_test.sh", "lib/placeholder.sh"],
            );
            let prompt = format!("# You are a worker\n\n{}\n", ctx.line())
                .replace("lib/placeholder.sh", bad);
            let ran = testing::run_prompt(&prompt, "");
            assert_eq!(ran.code, 2, "{bad}");
            assert!(
                ran.err.contains("not a valid context") && ran.err.contains(bad),
                "{}",
                ran.err
            );
            assert_eq!(tree(dir.path()), ["README.md"], "{bad}");
        }
    }

    #[test]
    fn violate_writes_a_stray_file_and_delete_removes_the_readme() {
        let (dir, ran) = run_in(&["tests/stats_test.sh", "lib/stats.sh"], "violate");
        assert_eq!(ran.code, 0);
        assert!(dir.path().join("stray/stats.txt").is_file());
        assert!(ran.wrote().contains(&"stray/stats.txt"));
        let (dir, ran) = run_in(&["tests/stats_test.sh", "lib/stats.sh"], "delete@stats");
        assert_eq!(ran.code, 0);
        assert!(!dir.path().join("README.md").exists());
        assert!(dir.path().join("lib/stats.sh").is_file());
        assert!(ran.out.contains("deleted README.md"));
        // Aimed at another task: no effect.
        let (dir, _) = run_in(&["tests/stats_test.sh"], "delete@text,violate@judge");
        assert_eq!(tree(dir.path()), ["README.md", "tests/stats_test.sh"]);
    }

    #[test]
    fn no_write_and_garbage_write_nothing_and_exit_0() {
        for fault in ["no-write", "garbage@worker"] {
            let (dir, ran) = run_in(&["tests/stats_test.sh", "lib/stats.sh"], fault);
            assert_eq!(ran.code, 0, "{fault}");
            assert!(ran.wrote().is_empty(), "{fault}");
            assert!(!ran.out.contains('{'), "{fault}");
            assert_eq!(tree(dir.path()), ["README.md"], "{fault}");
        }
    }

    #[test]
    fn crash_exits_3_after_the_first_file() {
        let (dir, ran) = run_in(&["lib/stats.sh", "tests/stats_test.sh"], "crash@stats");
        assert_eq!(ran.code, 3);
        assert!(ran.err.contains("crash"), "{}", ran.err);
        assert_eq!(ran.wrote(), ["tests/stats_test.sh"]);
        assert_eq!(tree(dir.path()), ["README.md", "tests/stats_test.sh"]);
    }

    #[test]
    fn hang_blocks_after_the_first_file() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = worker(
            dir.path(),
            "stats",
            &["tests/stats_test.sh", "lib/stats.sh"],
        );
        // The thread never ends; the test process exits without it.
        let handle = std::thread::spawn(move || testing::run(&ctx, "hang"));
        let first = dir.path().join("tests/stats_test.sh");
        let start = std::time::Instant::now();
        while !first.exists() && start.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(first.exists());
        assert!(!handle.is_finished());
        assert!(!dir.path().join("lib/stats.sh").exists());
    }
}
