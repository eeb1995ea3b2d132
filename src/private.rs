//! Files no other user can read. A run's directory holds the caller's environment (API keys),
//! the agents' `env`, the request and every prompt, so orch's own processes that write it
//! (`up`, `resume`, `plan`, the engine, `agent-run`) run with umask 077: whatever they create
//! is 0600 or 0700, whichever code creates it, including files added later. Checking each
//! file's mode would miss the next one written.
//!
//! What orch starts to work on the user's files (agents, gates, git, the tmux server and so its
//! panes) gets the user's own umask back, so that a file an agent writes into the project has
//! the mode it would have had without orch.

use std::sync::atomic::{AtomicU32, Ordering};

/// The user's umask, once [`restrict`] has replaced it; `UNSET` before.
static USER_UMASK: AtomicU32 = AtomicU32::new(UNSET);
const UNSET: u32 = u32::MAX;

/// Takes read, write and search away from group and others for everything this process
/// creates from now on. Idempotent: the umask the process started with is kept as the user's.
pub fn restrict() {
    // SAFETY: umask(2) only sets this process's file mode mask; it cannot fail.
    let before = unsafe { libc::umask(0o077) };
    #[allow(clippy::useless_conversion)] // mode_t is u16 on macOS
    let before = u32::from(before);
    let _ = USER_UMASK.compare_exchange(UNSET, before, Ordering::SeqCst, Ordering::SeqCst);
    // SAFETY: as above.
    unsafe {
        libc::umask(((before | 0o077) & 0o777) as libc::mode_t);
    }
}

/// The umask the process had before [`restrict`], if it was called.
pub fn user_umask() -> Option<libc::mode_t> {
    match USER_UMASK.load(Ordering::SeqCst) {
        UNSET => None,
        mask => Some(mask as libc::mode_t),
    }
}

/// Makes `cmd` run with the user's umask (a no-op when [`restrict`] was not called).
pub fn user_umask_for(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt as _;
    if let Some(mask) = user_umask() {
        // SAFETY: umask(2) is async-signal-safe and touches no memory, as a pre_exec hook
        // must be.
        unsafe {
            cmd.pre_exec(move || {
                libc::umask(mask);
                Ok(())
            });
        }
    }
}

/// [`user_umask_for`] for a tokio command.
pub fn user_umask_for_tokio(cmd: &mut tokio::process::Command) {
    if let Some(mask) = user_umask() {
        // SAFETY: as in `user_umask_for`.
        unsafe {
            cmd.pre_exec(move || {
                libc::umask(mask);
                Ok(())
            });
        }
    }
}

/// Takes group and other permissions off a file an agent wrote into the run with the user's
/// umask (the planner's plan file). Never through a symlink, which could point at a file of
/// the project; a missing file is left missing.
pub fn tighten(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(
            meta.permissions().mode() & 0o700,
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn tighten_takes_others_off_a_file_but_never_follows_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &std::path::Path| p.metadata().unwrap().permissions().mode() & 0o777;
        let file = tmp.path().join("plan.json");
        std::fs::write(&file, "{}").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
        tighten(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        let outside = tmp.path().join("project-file");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = tmp.path().join("link.json");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        assert!(tighten(&link).is_err());
        assert_eq!(mode(&outside), 0o644);
        tighten(&tmp.path().join("missing")).unwrap();
    }

    #[test]
    fn what_orch_creates_is_private_and_its_children_get_the_users_umask_back() {
        // The test runs in its own process for this: the umask is process-wide.
        if std::env::var_os("ORCH_PRIVATE_TEST_CHILD").is_none() {
            let exe = std::env::current_exe().unwrap();
            let status = std::process::Command::new(exe)
                .args([
                    "--exact",
                    "private::tests::what_orch_creates_is_private_and_its_children_get_the_users_umask_back",
                    "--nocapture",
                ])
                .env("ORCH_PRIVATE_TEST_CHILD", "1")
                .status()
                .unwrap();
            assert!(status.success());
            return;
        }
        // SAFETY: sets this process's mask only.
        unsafe { libc::umask(0o022) };
        restrict();
        restrict();
        assert_eq!(user_umask(), Some(0o022));
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &std::path::Path| p.metadata().unwrap().permissions().mode() & 0o777;
        std::fs::write(tmp.path().join("f"), "x").unwrap();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        assert_eq!(mode(&tmp.path().join("f")), 0o600);
        assert_eq!(mode(&tmp.path().join("d")), 0o700);
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "umask; : > child"]).current_dir(tmp.path());
        user_umask_for(&mut cmd);
        let out = cmd.output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0022");
        assert_eq!(mode(&tmp.path().join("child")), 0o644);
    }
}
