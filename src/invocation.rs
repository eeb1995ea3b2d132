//! How the hints orch prints (`orch attach`, `orch down`, ...) name orch: `orch` when that
//! is this very binary on PATH, else this binary's full path. Run from `target/` (as
//! `scripts/demo` may) or shadowed by another `orch` on PATH, a bare `orch` in a hint would
//! run nothing, or another orch, when pasted into a shell.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The word to write for orch in a hint, shell-quoted when it is a path that needs it.
pub fn orch() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| match std::env::current_exe() {
        Ok(exe) => name_for(&exe, std::env::var_os("PATH").as_deref()),
        Err(_) => "orch".to_string(),
    })
}

/// `orch` when the first `orch` on `path_var` is `exe`, else `exe` itself.
fn name_for(exe: &Path, path_var: Option<&OsStr>) -> String {
    let on_path = path_var.and_then(|paths| {
        std::env::split_paths(paths)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join("orch"))
            .find(|candidate| is_executable(candidate))
    });
    if on_path.is_some_and(|found| same_file(&found, exe)) {
        return "orch".to_string();
    }
    shell_word(&exe.to_string_lossy())
}

/// `word` as one word of a shell command line the user may paste (quoted where needed).
pub fn shell_word(word: &str) -> String {
    shlex::try_quote(word).map_or_else(|_| word.to_string(), std::borrow::Cow::into_owned)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn same_file(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
    canonical(a) == canonical(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn executable(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn bare_orch_only_when_path_finds_this_very_binary() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = tmp.path().join("build dir/orch");
        executable(&exe);
        let bin = tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let quoted = format!("'{}'", exe.display());

        // Not on PATH: the full path, quoted for a shell.
        assert_eq!(name_for(&exe, Some(bin.as_os_str())), quoted);
        assert_eq!(name_for(&exe, None), quoted);
        // On PATH through a symlink: `orch`.
        std::os::unix::fs::symlink(&exe, bin.join("orch")).unwrap();
        assert_eq!(name_for(&exe, Some(bin.as_os_str())), "orch");
        // Shadowed by another orch earlier on PATH: the full path.
        let other = tmp.path().join("other");
        executable(&other.join("orch"));
        let both = std::env::join_paths([&other, &bin]).unwrap();
        assert_eq!(name_for(&exe, Some(&both)), quoted);
        // A plain path needs no quotes.
        let plain = tmp.path().join("plain/orch");
        executable(&plain);
        assert_eq!(
            name_for(&plain, Some(bin.as_os_str())),
            plain.display().to_string()
        );
    }
}
