//! Project-relative paths, checked: orch never owns or writes anything outside the project
//! root, nor inside `.git/` or `.orch/`. What passes is a [`ProjectPath`].
//!
//! A plan's paths are `ProjectPath`s from validation on: the run state's task files, the spec
//! files, the prompt context, a launch's and an agent call's files, the gates, the diffstat,
//! the status view and the report all hold them. A path the watcher *saw* (a violation's, a
//! change the planner made) is not one, and stays a `String`: it names what is on disk, so it
//! may hold any byte a file name may (a backslash, a control character), lie inside `.git/`
//! (the guarded git files), or, for a linked worktree whose common git directory is outside
//! the project, be absolute. Refusing such a name would lose the violation; a type for it
//! would be a sum of "relative, any byte" and "absolute, in the git directory", which the
//! engine's revert and save code would have to branch on: a change of logic, not of type.

use std::path::{Component, Path, PathBuf};

mod project_path;

pub use project_path::ProjectPath;

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
    #[error("contains a backslash: use `/` between directories")]
    BadCharacter,
    #[error(
        "contains the control character {}: orch hands an agent its files one per line, \
         so a file name may not hold a newline, tab or any other control character; rename it",
        char_name(*.0)
    )]
    ControlCharacter(char),
    #[error("leaves the project through the symlink `{0}`")]
    SymlinkEscape(String),
}

/// Checked paths from literals known to pass, for tests.
#[cfg(test)]
pub(crate) fn project_paths(raw: &[&str]) -> Vec<ProjectPath> {
    raw.iter()
        .map(|r| ProjectPath::new(r).expect("a test path that passes the check"))
        .collect()
}

/// Normalizes a relative path (`./a//b` → `a/b`) and checks it lexically.
pub fn normalize(raw: &str) -> Result<ProjectPath, PathProblem> {
    if raw.trim().is_empty() {
        return Err(PathProblem::Empty);
    }
    if raw.contains('\0') {
        return Err(PathProblem::ControlCharacter('\0'));
    }
    if raw.contains('\\') {
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
    Ok(ProjectPath::from_normalized(parts.join("/")))
}

/// A character no path may hold: the C0 and C1 controls and DEL (which break one-path-per-line
/// lists such as `ORCH_FILES`, and terminals showing them), and the Unicode line and paragraph
/// separators, which some tools also take for line ends.
fn is_forbidden(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

fn char_name(c: char) -> String {
    let name = match c {
        '\0' => " (NUL)",
        '\n' => " (a newline)",
        '\r' => " (a carriage return)",
        '\t' => " (a tab)",
        '\u{1b}' => " (escape)",
        _ => "",
    };
    format!("U+{:04X}{name}", c as u32)
}

/// The key under which two paths name the same file on a file system that ignores letter
/// case and Unicode normalization (macOS's default, APFS and HFS+; Windows' NTFS for case):
/// the canonical caseless form of Unicode (NFD, case fold, NFD again). `Straße/É.rs` and
/// `STRASSE/e\u{301}.rs` have the same key.
pub fn fold_key(rel: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let decomposed: String = rel.nfd().collect();
    caseless::default_case_fold_str(&decomposed).nfd().collect()
}

/// [`check`], for a path a plan gives to a task or a spec: it must also be free of control
/// characters, since an agent is handed its files one per line. (A file an agent created
/// with such a name is still a path orch can name, save and revert: only plans refuse them.)
pub fn check_planned(root: &Path, raw: &str) -> Result<ProjectPath, PathProblem> {
    if let Some(c) = raw.chars().find(|c| is_forbidden(*c)) {
        return Err(PathProblem::ControlCharacter(c));
    }
    check(root, raw)
}

/// Normalizes `raw` and checks that, resolved on disk under `root`, it does not leave the
/// project through a symlink (in any existing ancestor, or the file itself).
pub fn check(root: &Path, raw: &str) -> Result<ProjectPath, PathProblem> {
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
            let inside = current.canonicalize().map_or_else(
                |_| {
                    std::fs::read_link(&current).is_ok_and(|target| {
                        let joined = current.parent().unwrap_or(root).join(target);
                        lexically_inside(&joined, root)
                    })
                },
                |real| real.starts_with(&real_root),
            );
            if !inside {
                return Err(PathProblem::SymlinkEscape(shown.display().to_string()));
            }
        }
    }
    Ok(rel)
}

/// How a project path reaches outside the project, so that writing it would change a file
/// elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOut {
    /// It is, or lies below, the symlink `link` (relative), which points to `target`.
    Symlink { link: String, target: PathBuf },
    /// It is a hard link: the same file has `links` names, and nothing says they are all
    /// inside the project.
    HardLink { links: u64 },
}

impl std::fmt::Display for LinkOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkOut::Symlink { link, target } => write!(
                f,
                "a symlink out of the project (`{link}` → {})",
                target.display()
            ),
            LinkOut::HardLink { links } => {
                write!(f, "a hard link ({links} names for one file)")
            }
        }
    }
}

/// Whether `root/rel` leads out of the project: a symlink (it, or a directory above it) to
/// somewhere outside, or a regular file with more than one name. `None` when it does not,
/// or does not exist.
pub fn link_out(root: &Path, rel: &str) -> Option<LinkOut> {
    match check(root, rel) {
        Err(PathProblem::SymlinkEscape(link)) => {
            let at = root.join(&link);
            let target = std::fs::read_link(&at).unwrap_or_default();
            let target = at.parent().unwrap_or(root).join(target);
            Some(LinkOut::Symlink {
                target: target.canonicalize().unwrap_or(target),
                link,
            })
        }
        Err(_) => None,
        Ok(rel) => {
            use std::os::unix::fs::MetadataExt as _;
            let meta = std::fs::symlink_metadata(root.join(rel)).ok()?;
            (meta.is_file() && meta.nlink() > 1).then(|| LinkOut::HardLink {
                links: meta.nlink(),
            })
        }
    }
}

/// The content of project file `rel` as git would record it, never read through a link that
/// leaves the project: a symlink's content is its target (as in git), a regular file's its
/// bytes (opened with `O_NOFOLLOW`). Fails when `rel` or a directory above it leads outside.
pub fn read_inside(root: &Path, rel: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let outside = |problem: PathProblem| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("`{rel}` {problem}"),
        )
    };
    // Only the directories above matter: the file itself is never followed.
    let (parent, _) = rel.rsplit_once('/').unwrap_or(("", rel));
    if !parent.is_empty() {
        check(root, parent).map_err(outside)?;
    }
    let path = root.join(rel);
    let meta = std::fs::symlink_metadata(&path)?;
    if meta.file_type().is_symlink() {
        return Ok(std::fs::read_link(&path)?.as_os_str().as_bytes().to_vec());
    }
    let mut file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(format!(
            "`{rel}` is not a regular file"
        )));
    }
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(out)
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
        assert_eq!(normalize("a\0b"), Err(PathProblem::ControlCharacter('\0')));
        assert_eq!(normalize(".github/x.yml").unwrap(), ".github/x.yml");
    }

    #[test]
    fn control_characters_are_refused_and_named() {
        for c in [
            '\n', '\r', '\t', '\0', '\u{1}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9b}', '\u{2028}',
        ] {
            let raw = format!("src/a{c}b.py");
            assert_eq!(
                check_planned(Path::new("/nonexistent"), &raw),
                Err(PathProblem::ControlCharacter(c)),
                "{c:?}"
            );
        }
        assert_eq!(
            normalize("new\nline.rs").unwrap(),
            "new\nline.rs",
            "a tree path"
        );
        let shown = check_planned(Path::new("/"), "a\nb.py")
            .unwrap_err()
            .to_string();
        assert!(
            shown.contains("U+000A (a newline)") && shown.contains("rename"),
            "{shown}"
        );
        // What passes today still does.
        for ok in [
            "my file.py",
            "ünïcødé/日本語.rs",
            "[a]*?.py",
            "a b/c\u{a0}d.txt",
        ] {
            assert_eq!(check_planned(Path::new("/nonexistent"), ok).unwrap(), ok);
        }
    }

    #[test]
    fn fold_key_matches_case_and_normalization() {
        assert_eq!(fold_key("Src/A.rs"), fold_key("src/a.rs"));
        assert_eq!(fold_key("caf\u{e9}.md"), fold_key("cafe\u{301}.md"));
        assert_eq!(fold_key("CAF\u{c9}.md"), fold_key("cafe\u{301}.md"));
        assert_eq!(fold_key("Stra\u{df}e"), fold_key("STRASSE"));
        assert_ne!(fold_key("a.rs"), fold_key("b.rs"));
        assert_eq!(fold_key("a/b").split('/').count(), 2);
    }

    #[test]
    fn links_out_are_named_and_never_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path();
        let secret = outside.path().join("secret.txt");
        std::fs::write(&secret, "outside").unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/ok.rs"), "ok").unwrap();
        std::os::unix::fs::symlink(&secret, root.join("src/a.txt")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink("ok.rs", root.join("src/in.rs")).unwrap();
        std::fs::hard_link(&secret, root.join("hard.txt")).unwrap();

        let real_secret = secret.canonicalize().unwrap();
        assert_eq!(
            link_out(root, "src/a.txt"),
            Some(LinkOut::Symlink {
                link: "src/a.txt".into(),
                target: real_secret.clone()
            })
        );
        assert!(
            matches!(link_out(root, "out/secret.txt"), Some(LinkOut::Symlink { link, .. }) if link == "out")
        );
        assert_eq!(
            link_out(root, "hard.txt"),
            Some(LinkOut::HardLink { links: 2 })
        );
        assert_eq!(link_out(root, "src/ok.rs"), None);
        assert_eq!(link_out(root, "src/in.rs"), None);
        assert_eq!(link_out(root, "src/missing.rs"), None);

        assert_eq!(read_inside(root, "src/ok.rs").unwrap(), b"ok");
        assert_eq!(
            read_inside(root, "src/in.rs").unwrap(),
            b"ok.rs",
            "a link's target"
        );
        assert_eq!(
            read_inside(root, "src/a.txt").unwrap(),
            real_secret.as_os_str().as_encoded_bytes(),
            "the link, not the outside file"
        );
        assert!(read_inside(root, "out/secret.txt").is_err());
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
