//! Putting a file back after a violation: as a finished task left it (`baseline/`), else as
//! it was when the run started (the snapshot), deleting it if it did not exist then. Missing
//! parent directories are recreated (another task may have removed them, or moved them
//! away). A revert that still fails says where the content to put back is and how.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::core::Engine;
use crate::snapshot::Restored;

impl Engine {
    /// Reverts `path` for violation `n`, and says how that went (the violation's action).
    pub(super) fn revert(&self, n: u32, path: &str) -> String {
        let Some(snapshot) = &self.snapshot else {
            return format!(
                "revert failed: the run has no start snapshot, so orch does not know what \
                 `{path}` held; its violating content is saved under {}",
                self.project.display(&self.dir.violation_dir(n))
            );
        };
        let baseline = self.dir.baseline().join(path);
        let content = if std::fs::symlink_metadata(&baseline).is_ok() {
            match read_as_git(&baseline) {
                Ok(content) => Some(content),
                Err(e) => return format!("revert failed: cannot read {}: {e}", baseline.display()),
            }
        } else {
            match snapshot.original(path) {
                Ok(content) => content,
                Err(e) => return format!("revert failed: {e}"),
            }
        };
        let expected = content.clone();
        match snapshot.restore_as(path, content) {
            Ok(Restored::Deleted) => "deleted".into(),
            Ok(_) => "reverted".into(),
            Err(e) => self.revert_failed(n, path, &baseline, expected, &e.to_string()),
        }
    }

    /// What to say when a revert failed: where the content is, and the command that puts it
    /// back. Content that exists only in the snapshot is written out for that first.
    fn revert_failed(
        &self,
        n: u32,
        path: &str,
        baseline: &Path,
        expected: Option<(Vec<u8>, u32)>,
        error: &str,
    ) -> String {
        let quote =
            |s: &str| shlex::try_quote(s).map_or_else(|_| s.to_string(), std::convert::Into::into);
        let Some((content, mode)) = expected else {
            return format!(
                "revert failed: {error}; `{path}` did not exist at the start: remove it by hand \
                 (`rm -rf {}`)",
                quote(path)
            );
        };
        let source = if baseline.exists() {
            baseline.to_path_buf()
        } else {
            let copy = self
                .dir
                .path()
                .join("restore")
                .join(n.to_string())
                .join(path);
            let written = copy
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| write_as_git(&copy, &content, mode));
            if let Err(e) = written {
                return format!(
                    "revert failed: {error}; its content at the start could not be written out \
                     either ({e}): free space, then `orch resume` puts it back"
                );
            }
            copy
        };
        let source = self.project.display(&source).to_string();
        let parent = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| format!("mkdir -p {} && ", quote(&p.display().to_string())))
            .unwrap_or_default();
        format!(
            "revert failed: {error}; the content to put back is in {source}: `{parent}cp -P {} {}`",
            quote(&source),
            quote(path)
        )
    }
}

/// A file's content and git mode, as the snapshot gives them (a symlink's content is its
/// target).
pub(super) fn read_as_git(path: &Path) -> std::io::Result<(Vec<u8>, u32)> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        use std::os::unix::ffi::OsStrExt;
        let target = std::fs::read_link(path)?;
        return Ok((target.as_os_str().as_bytes().to_vec(), 0o120000));
    }
    let exec = meta.permissions().mode() & 0o111 != 0;
    Ok((std::fs::read(path)?, if exec { 0o100755 } else { 0o100644 }))
}

pub(super) fn write_as_git(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    if mode == 0o120000 {
        use std::os::unix::ffi::OsStrExt;
        return std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(content), path);
    }
    std::fs::write(path, content)?;
    if mode & 0o111 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}
