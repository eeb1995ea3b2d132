//! Checked before a run starts (or resumes): that `.orch/` can be written and its disk has
//! room. A run that cannot journal must fail at once with a message saying what to do, not
//! hours later in the middle of its work.

use std::io::Write as _;
use std::path::Path;

use crate::error::usage;

/// Below this much free space a run is not started: agents' logs and the journal need room.
pub(super) const MIN_FREE_BYTES: u64 = 16 * 1024 * 1024;

/// Fails with what to do when `dir` (created if missing) cannot take a synced write, or its
/// file system has less than [`MIN_FREE_BYTES`] free.
pub fn check_writable(dir: &Path) -> anyhow::Result<()> {
    let advice = "orch keeps each run's state under .orch/ in the project: make it writable by \
                  this user (e.g. `chmod -R u+w .orch`), or run orch as the user who owns it";
    std::fs::create_dir_all(dir).map_err(|e| {
        usage(format!(
            "cannot create {}: {e}; {}",
            dir.display(),
            full_or(&e, advice)
        ))
    })?;
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    let written = std::fs::File::create(&probe)
        .and_then(|mut f| f.write_all(b"orch\n").and_then(|()| f.sync_all()));
    let _ = std::fs::remove_file(&probe);
    if let Err(e) = written {
        return Err(usage(format!(
            "cannot write in {}: {e}; {}",
            dir.display(),
            full_or(&e, advice)
        )));
    }
    if let Some(free) = free_bytes(dir) {
        check_space(dir, free)?;
    }
    Ok(())
}

fn check_space(dir: &Path, free: u64) -> anyhow::Result<()> {
    if free < MIN_FREE_BYTES {
        return Err(usage(format!(
            "the disk holding {} has only {} KiB free, and a run needs at least {} MiB for its \
             journal and agents' logs: free some space (old runs under .orch/runs/ may go), \
             then try again",
            dir.display(),
            free / 1024,
            MIN_FREE_BYTES / 1024 / 1024
        )));
    }
    Ok(())
}

fn full_or(e: &std::io::Error, advice: &'static str) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            "the disk is full: free some space (old runs under .orch/runs/ may go), then try again"
        }
        _ => advice,
    }
}

/// Bytes available to us on the file system holding `dir`, when it says.
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs(3) fills the zeroed struct we own from a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_dir_passes_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".orch");
        check_writable(&state).unwrap();
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0);
    }

    #[test]
    fn a_file_in_the_way_is_a_clear_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".orch"), "").unwrap();
        let err = check_writable(&dir.path().join(".orch")).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
        let msg = err.to_string();
        assert!(msg.contains(".orch") && msg.contains("writable"), "{msg}");
    }

    #[test]
    fn too_little_space_says_what_to_free() {
        let err = check_space(Path::new("/p/.orch"), 1024 * 1024).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/p/.orch") && msg.contains("1024 KiB free") && msg.contains("free some"),
            "{msg}"
        );
        check_space(Path::new("/p/.orch"), MIN_FREE_BYTES).unwrap();
        assert!(free_bytes(Path::new("/")).is_some_and(|b| b > 0));
    }
}
