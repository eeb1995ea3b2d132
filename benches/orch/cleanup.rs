//! Everything the benchmark starts is registered here, so that it is stopped and removed
//! however the benchmark ends: normally (each phase releases what it made), by a panic
//! (guards release on drop), or by Ctrl-C, SIGTERM or SIGHUP (a signal thread releases
//! everything, then exits).
//!
//! A tmux server is released by stopping the process group of every pane (agents, the
//! engine) and then killing the server and removing its socket; a directory by removing it;
//! a child process by killing it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
struct Registry {
    servers: Vec<String>,
    dirs: Vec<PathBuf>,
    children: Vec<u32>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    servers: Vec::new(),
    dirs: Vec::new(),
    children: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A private tmux server (by `-L` socket name), stopped when dropped.
pub(crate) struct ServerGuard(pub String);

impl ServerGuard {
    pub(crate) fn new(socket: &str) -> ServerGuard {
        registry().servers.push(socket.to_string());
        ServerGuard(socket.to_string())
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        registry().servers.retain(|s| s != &self.0);
        stop_server(&self.0);
    }
}

/// A directory of ours, removed when dropped (unless [`DirGuard::keep`] said otherwise).
pub(crate) struct DirGuard(pub PathBuf, bool);

impl DirGuard {
    pub(crate) fn new(path: &Path) -> DirGuard {
        registry().dirs.push(path.to_path_buf());
        DirGuard(path.to_path_buf(), true)
    }

    /// Not removed when dropped: `path` lies in a directory removed at the benchmark's end.
    /// A project removed between two measurements would weigh on the second: on a
    /// journal-less ext4 (this machine's) every file created in the next minutes is
    /// allocated past the inodes just freed, one cache lookup each, and thousands were.
    pub(crate) fn keep(&mut self) {
        registry().dirs.retain(|d| d != &self.0);
        self.1 = false;
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if self.1 {
            registry().dirs.retain(|d| d != &self.0);
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process of ours, killed (and reaped) when dropped.
pub(crate) struct ChildGuard(pub std::process::Child);

impl ChildGuard {
    pub(crate) fn new(child: std::process::Child) -> ChildGuard {
        registry().children.push(child.id());
        ChildGuard(child)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let pid = self.0.id();
        registry().children.retain(|p| *p != pid);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Releases everything still registered. Called from the signal thread.
fn release_all() {
    let (servers, dirs, children) = {
        let mut r = registry();
        (
            std::mem::take(&mut r.servers),
            std::mem::take(&mut r.dirs),
            std::mem::take(&mut r.children),
        )
    };
    for pid in children {
        // SAFETY: kill(2) only sends a signal, to a child we started.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    for socket in servers {
        stop_server(&socket);
    }
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Stops every pane's process group on the server, then the server itself, and removes
/// its socket. Panes first: an agent that ignores the hang-up must not outlive us.
pub(crate) fn stop_server(socket: &str) {
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(["-L", socket])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
    };
    let pids: Vec<i32> = tmux(&["list-panes", "-a", "-F", "#{pane_pid}"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|pid| *pid > 1)
        .collect();
    // Where tmux puts a `-L` socket; the server may be gone already (it exits with its
    // last session), leaving the file behind.
    let dir = std::env::var_os("TMUX_TMPDIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    // SAFETY: getuid has no preconditions.
    let socket_path = dir
        .join(format!("tmux-{}", unsafe { libc::getuid() }))
        .join(socket);
    signal_groups(&pids, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    signal_groups(&pids, libc::SIGKILL);
    let _ = tmux(&["kill-server"]);
    use std::os::unix::fs::FileTypeExt as _;
    if std::fs::symlink_metadata(&socket_path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(&socket_path);
    }
}

fn signal_groups(pids: &[i32], sig: i32) {
    for pid in pids {
        // SAFETY: kill(2) only sends a signal; each pane's process leads its own group.
        unsafe {
            libc::kill(-pid, sig);
        }
    }
}

/// Starts the thread that cleans up and exits on Ctrl-C, SIGTERM or SIGHUP.
pub(crate) fn on_signals() {
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the signal thread");
        runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
        });
        eprintln!("\nbench: interrupted; stopping agents and tmux servers, removing projects");
        release_all();
        std::process::exit(130);
    });
}
