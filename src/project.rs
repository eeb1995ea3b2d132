//! The project orch works on: its root (the nearest enclosing git work tree, else the current
//! directory), its config file, and where its state lives (`.orch/`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::{self, Config};

#[derive(Debug, Clone)]
pub struct Project {
    /// Absolute, canonical.
    pub root: PathBuf,
    /// The config file (`orch.yaml` in the root unless `--config` said otherwise).
    pub config_path: PathBuf,
    /// Whether `root` is a git work tree.
    pub is_git: bool,
}

impl Project {
    /// Finds the project around `cwd`. `config` (from `--config`) is taken relative to `cwd`.
    pub fn discover(cwd: &Path, config: Option<&Path>) -> anyhow::Result<Project> {
        let cwd = cwd.canonicalize().with_context(|| {
            format!("failed to resolve the current directory {}", cwd.display())
        })?;
        let git_root = cwd.ancestors().find(|dir| dir.join(".git").exists());
        // A run's worktree (`<project>/.orch/worktrees/<run-id>`) belongs to its project:
        // `orch status` there is about the project's runs.
        let git_root = git_root.map(|root| run_worktree_project(root).unwrap_or(root));
        let root = git_root.unwrap_or(&cwd).to_path_buf();
        let config_path = match config {
            Some(path) => cwd.join(path),
            None => root.join(config::FILE_NAME),
        };
        Ok(Project {
            is_git: git_root.is_some(),
            root,
            config_path,
        })
    }

    pub fn load_config(&self) -> Result<Config, config::ConfigError> {
        config::load(&self.config_path)
    }

    /// `.orch/` in the root: everything orch keeps about this project.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(".orch")
    }

    /// A short name for the project, safe in a tmux session name (no `.` or `:`).
    pub fn name(&self) -> String {
        let raw = self
            .root
            .file_name()
            .map_or_else(|| "root".into(), |n| n.to_string_lossy().into_owned());
        let name: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if name.trim_matches('-').is_empty() {
            "project".into()
        } else {
            name
        }
    }

    /// Path shown to the user: relative to the root when inside it.
    pub fn display<'a>(&self, path: &'a Path) -> std::path::Display<'a> {
        path.strip_prefix(&self.root).unwrap_or(path).display()
    }
}

/// The project whose run's worktree `dir` is, if it is one.
fn run_worktree_project(dir: &Path) -> Option<&Path> {
    let worktrees = dir.parent()?;
    let state = worktrees.parent()?;
    let project = state.parent()?;
    (worktrees.file_name()? == "worktrees"
        && state.file_name()? == ".orch"
        && project.join(".git").exists())
    .then_some(project)
}

/// A new id for a run or a planning: sortable by time, unique enough for one project.
pub fn new_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, mo, d, h, mi, s) = civil(secs);
    let salt = (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{salt:04x}")
}

/// UTC calendar fields of a Unix time (Howard Hinnant's days-from-civil, inverted).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_worktree_belongs_to_its_project() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let wt = root.join(".orch/worktrees/r1");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(wt.join("src")).unwrap();
        std::fs::write(wt.join(".git"), "gitdir: x\n").unwrap();
        let project = Project::discover(&wt.join("src"), None).unwrap();
        assert_eq!(project.root, root);
        assert_eq!(project.state_dir(), root.join(".orch"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_795_000_000), (2026, 11, 18, 11, 6, 40));
    }

    #[test]
    fn root_is_the_enclosing_git_work_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("my proj.v2/.git")).unwrap();
        std::fs::create_dir_all(dir.path().join("my proj.v2/src/deep")).unwrap();
        let p = Project::discover(&dir.path().join("my proj.v2/src/deep"), None).unwrap();
        assert!(p.is_git);
        assert!(p.root.ends_with("my proj.v2"));
        assert_eq!(p.config_path, p.root.join("orch.yaml"));
        assert_eq!(p.name(), "my-proj-v2");
    }

    #[test]
    fn root_is_cwd_outside_git() {
        let dir = tempfile::tempdir().unwrap();
        let p = Project::discover(dir.path(), Some(Path::new("conf/o.yaml"))).unwrap();
        assert!(!p.is_git);
        assert_eq!(p.root, dir.path().canonicalize().unwrap());
        assert!(p.config_path.ends_with("conf/o.yaml"));
    }
}
