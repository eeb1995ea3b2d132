//! Putting files back: saving a violating write aside before it is reverted, and writing a
//! file's original content back in place.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};

use super::{Restored, SnapshotError, io_error};
use crate::paths;

/// Copies the project file `rel` (if it exists) to `dest_dir/<rel>`, creating directories as
/// needed and replacing an earlier copy; a symlink is copied as a symlink. Returns where the
/// copy went, or `None` when there was no file to save.
/// Never reads through a link: a symlink is saved as the link, and a file below a directory
/// that is a symlink out of the project is refused.
pub fn save_copy(root: &Path, rel: &str, dest_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let rel = paths::normalize(rel).with_context(|| format!("cannot save `{rel}`"))?;
    if let Some((parent, _)) = rel.rsplit_once('/') {
        paths::check(root, parent).with_context(|| format!("cannot save `{rel}`"))?;
    }
    let source = root.join(&rel);
    let meta = match std::fs::symlink_metadata(&source) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", source.display())),
    };
    let dest = dest_dir.join(&rel);
    let earlier = std::fs::symlink_metadata(&dest).ok();
    if meta.is_file()
        && let Some(earlier) = &earlier
        && earlier.is_file()
        && earlier.len() == meta.len()
        && earlier.permissions().mode() & 0o777 == meta.permissions().mode() & 0o777
        && let Ok(content) = paths::read_inside(root, &rel)
        && std::fs::read(&dest).is_ok_and(|kept| kept == content)
    {
        // The same copy already: creating a file is what costs on a busy disk, and a finished
        // task's files are kept as it exits and again as it is accepted (see BENCHMARKS.md).
        return Ok(Some(dest));
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // Never write through a link left by an earlier copy.
    if earlier.is_some() {
        std::fs::remove_file(&dest)
            .with_context(|| format!("cannot replace {}", dest.display()))?;
    }
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&source)
            .with_context(|| format!("cannot read the link {}", source.display()))?;
        std::os::unix::fs::symlink(target, &dest)
            .with_context(|| format!("cannot create {}", dest.display()))?;
    } else if meta.is_file() {
        let content = paths::read_inside(root, &rel)
            .with_context(|| format!("cannot read {}", source.display()))?;
        std::fs::write(&dest, content)
            .with_context(|| format!("cannot copy {} to {}", source.display(), dest.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", dest.display()))?;
    } else {
        // A FIFO would block the copy forever; a directory is not a file to save.
        bail!("cannot save `{rel}`: not a regular file");
    }
    Ok(Some(dest))
}

const SYMLINK: u32 = 0o120000;

/// Makes `root/rel` what the copy `copy_dir/rel` (made by [`save_copy`]) is, or deletes it
/// when there is no copy, never writing through a link: new content goes to a file in
/// `temp_dir` that is renamed into place.
pub fn restore_copy(
    root: &Path,
    rel: &str,
    copy_dir: &Path,
    temp_dir: &Path,
) -> Result<Restored, SnapshotError> {
    let bad = |problem| SnapshotError::BadPath {
        path: rel.to_string(),
        problem,
    };
    let rel = paths::normalize(rel).map_err(bad)?;
    if let Some((parent, _)) = rel.rsplit_once('/') {
        paths::check(root, parent).map_err(bad)?;
    }
    let copy = copy_dir.join(&rel);
    let original = match std::fs::symlink_metadata(&copy) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(io_error(&copy)(err)),
        Ok(meta) => {
            let content = paths::read_inside(copy_dir, &rel).map_err(io_error(&copy))?;
            let mode = if meta.file_type().is_symlink() {
                SYMLINK
            } else if meta.permissions().mode() & 0o100 != 0 {
                0o100755
            } else {
                0o100644
            };
            Some((content, mode))
        }
    };
    put_back(root, temp_dir, &rel, original)
}

/// Makes `root/rel` what `original` says (absent, or content and git mode), writing new
/// content in `store` first and renaming it into place.
pub(crate) fn put_back(
    root: &Path,
    store: &Path,
    rel: &str,
    original: Option<(Vec<u8>, u32)>,
) -> Result<Restored, SnapshotError> {
    let target = root.join(rel);
    let current = match std::fs::symlink_metadata(&target) {
        Ok(meta) => Some(meta),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(io_error(&target)(err)),
    };
    if current.as_ref().is_some_and(std::fs::Metadata::is_dir) {
        return Err(SnapshotError::NotAFile(rel.to_string()));
    }
    let Some((content, mode)) = original else {
        if current.is_none() {
            return Ok(Restored::Unchanged);
        }
        std::fs::remove_file(&target).map_err(io_error(&target))?;
        return Ok(Restored::Deleted);
    };
    let temp = temp_path(store);
    if mode == SYMLINK {
        let link = OsStr::from_bytes(&content);
        let same = current.as_ref().is_some_and(|m| m.file_type().is_symlink())
            && std::fs::read_link(&target).is_ok_and(|t| t.as_os_str() == link);
        if same {
            return Ok(Restored::Unchanged);
        }
        std::os::unix::fs::symlink(link, &temp).map_err(io_error(&temp))?;
    } else {
        let exec = mode & 0o111 != 0;
        if let Some(meta) = current.as_ref().filter(|m| m.is_file()) {
            let same = meta.len() == content.len() as u64
                && (meta.permissions().mode() & 0o100 != 0) == exec
                && std::fs::read(&target).is_ok_and(|now| now == content);
            if same {
                return Ok(Restored::Unchanged);
            }
        }
        write_temp(&temp, &content, exec, current.as_ref())?;
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    match std::fs::rename(&temp, &target) {
        Ok(()) => Ok(Restored::Rewritten),
        Err(err) if err.raw_os_error() == Some(libc::EXDEV) => {
            // The store is on another filesystem: replace in place instead.
            let _ = std::fs::remove_file(&target);
            let moved = std::fs::copy(&temp, &target).map(|_| ());
            let _ = std::fs::remove_file(&temp);
            moved.map_err(io_error(&target))?;
            Ok(Restored::Rewritten)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&temp);
            Err(io_error(&target)(err))
        }
    }
}

fn temp_path(store: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    store.join(format!("restore-{}-{n}.tmp", std::process::id()))
}

/// Writes `content` to a new file at `temp` with the permissions the restored file should
/// have: those of the file it replaces with the executable bits set or cleared, or git's
/// defaults (0666/0777 less the umask) for a file that is gone.
fn write_temp(
    temp: &Path,
    content: &[u8],
    exec: bool,
    replaced: Option<&std::fs::Metadata>,
) -> Result<(), SnapshotError> {
    let _ = std::fs::remove_file(temp);
    let mut file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(if exec { 0o777 } else { 0o666 })
        .open(temp)
        .map_err(io_error(temp))?;
    file.write_all(content).map_err(io_error(temp))?;
    if let Some(meta) = replaced.filter(|m| m.is_file()) {
        let old = meta.permissions().mode() & 0o7777;
        let new = if exec {
            old | ((old & 0o444) >> 2)
        } else {
            old & !0o111
        };
        file.set_permissions(std::fs::Permissions::from_mode(new))
            .map_err(io_error(temp))?;
    }
    Ok(())
}
