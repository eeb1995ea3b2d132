//! Project-relative paths, checked: orch never owns or writes anything outside the project
//! root, nor inside `.git/` or `.orch/`.

use std::path::{Component, Path, PathBuf};

/// Directories that belong to git and to orch, never to a task.
pub const RESERVED_DIRS: [&str; 2] = [".git", ".orch"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    #[error("is empty")]
    Empty,
    #[error("is absolute: paths are relative to the project root")]
    Absolute,
    #[error("contains `..`: paths must stay inside the project")]
    ParentDir,
    #[error("is inside `{0}/`, which orch and git keep for themselves")]
    Reserved(&'static str),
    #[error("names a directory: list the files")]
    Directory,
    #[error("contains a NUL byte or a backslash")]
    BadCharacter,
    #[error("leaves the project through the symlink `{0}`")]
    SymlinkEscape(String),
}

/// Normalizes a relative path (`./a//b` → `a/b`) and checks it lexically.
pub fn normalize(raw: &str) -> Result<String, PathProblem> {
    if raw.trim().is_empty() {
        return Err(PathProblem::Empty);
    }
    if raw.contains('\0') || raw.contains('\\') {
        return Err(PathProblem::BadCharacter);
    }
    if raw.ends_with('/') {
        return Err(PathProblem::Directory);
    }
    let path = Path::new(raw);
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err(PathProblem::ParentDir),
            Component::RootDir | Component::Prefix(_) => return Err(PathProblem::Absolute),
        }
    }
    if parts.is_empty() {
        return Err(PathProblem::Empty);
    }
    if let Some(reserved) = RESERVED_DIRS.iter().find(|d| parts[0] == **d) {
        return Err(PathProblem::Reserved(reserved));
    }
    Ok(parts.join("/"))
}

/// Normalizes `raw` and checks that, resolved on disk under `root`, it does not leave the
/// project through a symlink (in any existing ancestor, or the file itself).
pub fn check(root: &Path, raw: &str) -> Result<String, PathProblem> {
    let rel = normalize(raw)?;
    let Ok(real_root) = root.canonicalize() else {
        return Ok(rel);
    };
    let mut current = root.to_path_buf();
    let mut shown = PathBuf::new();
    for part in rel.split('/') {
        current.push(part);
        shown.push(part);
        let Ok(meta) = current.symlink_metadata() else {
            break; // nothing below a missing path can be a symlink yet
        };
        if meta.file_type().is_symlink() {
            let inside = current
                .canonicalize()
                .map(|real| real.starts_with(&real_root))
                // A dangling link: judge it by where it points.
                .unwrap_or_else(|_| {
                    std::fs::read_link(&current).is_ok_and(|target| {
                        let joined = current.parent().unwrap_or(root).join(target);
                        lexically_inside(&joined, root)
                    })
                });
            if !inside {
                return Err(PathProblem::SymlinkEscape(shown.display().to_string()));
            }
        }
    }
    Ok(rel)
}

fn lexically_inside(path: &Path, root: &Path) -> bool {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out.starts_with(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_rejects() {
        assert_eq!(normalize("./src//api/a.rs").unwrap(), "src/api/a.rs");
        assert_eq!(normalize("/etc/passwd"), Err(PathProblem::Absolute));
        assert_eq!(normalize("src/../../x"), Err(PathProblem::ParentDir));
        assert_eq!(normalize(".git/config"), Err(PathProblem::Reserved(".git")));
        assert_eq!(
            normalize("./.orch/lock"),
            Err(PathProblem::Reserved(".orch"))
        );
        assert_eq!(normalize(""), Err(PathProblem::Empty));
        assert_eq!(normalize("."), Err(PathProblem::Empty));
        assert_eq!(normalize("src/"), Err(PathProblem::Directory));
        assert_eq!(normalize("a\\b"), Err(PathProblem::BadCharacter));
        assert_eq!(normalize(".github/x.yml").unwrap(), ".github/x.yml");
    }

    #[test]
    fn symlinks_out_of_the_project_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("src")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink(root.join("src"), root.join("in")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/x", root.join("dangling")).unwrap();
        assert_eq!(
            check(root, "out/x.rs"),
            Err(PathProblem::SymlinkEscape("out".into()))
        );
        assert_eq!(check(root, "in/x.rs").unwrap(), "in/x.rs");
        assert_eq!(check(root, "src/new/deep.rs").unwrap(), "src/new/deep.rs");
        assert_eq!(
            check(root, "dangling"),
            Err(PathProblem::SymlinkEscape("dangling".into()))
        );
    }
}
