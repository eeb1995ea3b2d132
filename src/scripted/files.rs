//! Writing into the project safely: every path is checked with [`paths::check`] right before
//! it is written, so nothing lands outside the project root (nor in `.git/` or `.orch/`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use globset::{Glob, GlobSet, GlobSetBuilder};

use super::agent::{Session, bad_input};
use crate::paths::{self, PathProblem};

impl Session<'_> {
    /// Writes `rel` (after the pace), creating its directories; `bin/*` is made executable.
    /// Prints `wrote REL` so that a person watching the pane sees progress.
    pub(super) fn write_file(&mut self, rel: &str, content: &str) -> anyhow::Result<String> {
        let rel = paths::check(&self.root, rel)
            .map_err(|problem| bad_input(format!("refusing to write {rel:?}: it {problem}")))?;
        self.wait_pace();
        let path = self.root.join(&rel);
        write_at(&path, content)?;
        if rel.starts_with("bin/") {
            make_executable(&path)?;
        }
        self.say(format!("wrote {rel}"))?;
        Ok(rel.into_string())
    }
}

fn write_at(path: &Path, content: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("failed to write {}", path.display()))
}

fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("failed to make {} executable", path.display()))
}

/// Where the planner may write its plan: orch asks for a file under `.orch/`, which
/// [`paths::check`] keeps from tasks, so `.orch/` is allowed here and only here, and the
/// directory found on disk must still be inside the project.
pub(super) fn plan_file_path(root: &Path, raw: &str) -> Result<PathBuf, String> {
    let raw_path = Path::new(raw);
    let rel = if raw_path.is_absolute() {
        raw_path
            .strip_prefix(root)
            .map_err(|_| format!("{raw} is outside the project"))?
            .to_string_lossy()
            .into_owned()
    } else {
        raw.to_string()
    };
    match paths::check(root, &rel) {
        Ok(rel) => Ok(root.join(rel)),
        Err(PathProblem::Reserved(".orch")) => {
            let path = root.join(&rel);
            let parent = path.parent().unwrap_or(root);
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            let inside = match (parent.canonicalize(), root.canonicalize()) {
                (Ok(parent), Ok(root)) => parent.starts_with(root),
                _ => false,
            };
            if inside && !path.is_symlink() {
                Ok(path)
            } else {
                Err(format!("{rel} leaves the project through a symlink"))
            }
        }
        Err(problem) => Err(format!("{rel} {problem}")),
    }
}

/// Writes the plan file; a path orch should never have sent is skipped with a note on stderr,
/// since the plan printed on stdout is the answer anyway.
pub(super) fn write_plan_file(s: &mut Session, raw: &str, json: &str) -> anyhow::Result<()> {
    match plan_file_path(&s.root, raw) {
        Ok(path) => write_at(&path, json),
        Err(why) => {
            let _ = writeln!(s.err, "not writing the plan file: {why}");
            Ok(())
        }
    }
}

/// Tells test files from the rest: the context's globs, or common naming when it has none.
pub(super) struct TestMatcher(Option<GlobSet>);

impl TestMatcher {
    pub(super) fn new(patterns: &[String]) -> anyhow::Result<TestMatcher> {
        if patterns.is_empty() {
            return Ok(TestMatcher(None));
        }
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = Glob::new(pattern)
                .map_err(|e| bad_input(format!("invalid test_pattern glob `{pattern}`: {e}")))?;
            builder.add(glob);
        }
        let set = builder
            .build()
            .map_err(|e| bad_input(format!("invalid test_pattern globs: {e}")))?;
        Ok(TestMatcher(Some(set)))
    }

    pub(super) fn is_test(&self, rel: &str) -> bool {
        match &self.0 {
            Some(set) => set.is_match(rel),
            None => looks_like_test(rel),
        }
    }
}

/// The usual conventions: a `test`/`tests`/`spec`/`__tests__` directory, or a name like
/// `x_test.go`, `x.test.js`, `x_spec.rb`, `test_x.py`.
pub(super) fn looks_like_test(rel: &str) -> bool {
    let mut parts: Vec<&str> = rel.split('/').collect();
    let name = parts.pop().unwrap_or("");
    if parts
        .iter()
        .any(|d| matches!(*d, "test" | "tests" | "spec" | "__tests__"))
    {
        return true;
    }
    let stem = name.split('.').next().unwrap_or(name);
    stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_spec")
        || name.contains(".test.")
        || name.contains(".spec.")
}

/// Blocks the calling thread forever without using CPU. The default dispositions of SIGTERM
/// and SIGINT are restored first: the orch binary may have installed handlers for its own
/// commands, and a hung agent must die on a signal like any other process.
pub(super) fn block_forever() -> ! {
    // SAFETY: resetting a signal to its default disposition touches no Rust state.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_files_by_glob_or_by_name() {
        let globs = TestMatcher::new(&["tests/**".to_string()]).unwrap();
        assert!(globs.is_test("tests/a_test.sh") && globs.is_test("tests/fixtures/x.txt"));
        assert!(!globs.is_test("lib/a_test.sh"));
        let names = TestMatcher::new(&[]).unwrap();
        for path in [
            "tests/x.sh",
            "src/a_test.go",
            "web/b.test.ts",
            "test_c.py",
            "spec/d.rb",
        ] {
            assert!(names.is_test(path), "{path}");
        }
        for path in ["src/main.rs", "lib/testing.sh", "latest.md", "contest_x.py"] {
            assert!(!names.is_test(path), "{path}");
        }
        assert!(TestMatcher::new(&["a[".to_string()]).is_err());
    }

    #[test]
    fn the_plan_file_may_go_under_orch_but_not_out_of_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ok = plan_file_path(root, ".orch/plans/x/planner/1/plan.json").unwrap();
        assert!(ok.starts_with(root) && ok.parent().unwrap().is_dir());
        let abs = root.join(".orch/p.json");
        assert_eq!(plan_file_path(root, abs.to_str().unwrap()).unwrap(), abs);
        assert!(plan_file_path(root, "/etc/plan.json").is_err());
        assert!(plan_file_path(root, ".orch/../../x.json").is_err());
        assert!(plan_file_path(root, ".git/plan.json").is_err());
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join(".orch/out")).unwrap();
        assert!(plan_file_path(root, ".orch/out/plan.json").is_err());
    }
}
