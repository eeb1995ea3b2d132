//! What an agent's box shows: the file system read-only, a private `/tmp`, the homes hidden,
//! and bound back into them only what the agent needs. Worked out from the environment the
//! agent really gets (its `HOME`, `CODEX_HOME`, `XDG_*`, `PATH`), since the CLIs keep their
//! state where those say.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::Jail;
use crate::config::AgentKind;

/// One mount of the box, besides the read-only root, `/dev` and `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// An empty, writable tmpfs (a private `/tmp`).
    Tmpfs(PathBuf),
    /// An empty tmpfs made read-only once what is bound into it is there (a home).
    Hidden(PathBuf),
    /// A file replaced by an empty one (a credential inside a directory bound back).
    HiddenFile(PathBuf),
    /// Bound back read-only.
    Read(PathBuf),
    /// Bound writable.
    Write(PathBuf),
}

impl Mount {
    pub fn path(&self) -> &Path {
        match self {
            Mount::Tmpfs(p)
            | Mount::Hidden(p)
            | Mount::HiddenFile(p)
            | Mount::Read(p)
            | Mount::Write(p) => p,
        }
    }

    /// At one depth: empty places first, then what is bound into them.
    fn rank(&self) -> u8 {
        match self {
            Mount::Tmpfs(_) | Mount::Hidden(_) => 0,
            Mount::Read(_) => 1,
            Mount::Write(_) => 2,
            Mount::HiddenFile(_) => 3,
        }
    }
}

/// The agent's environment as it will run: what it inherits, with its launch spec's `env`
/// over it, and the homes of the user running orch.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
    /// The user's home directories (from the password database, and `$HOME` as orch got it).
    user_homes: Vec<PathBuf>,
}

impl Env {
    /// orch's own environment and the user's homes.
    pub fn inherited() -> Env {
        // vars() would panic on a variable that is not UTF-8; such a one names no place the
        // box needs to know.
        let vars: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let mut user_homes: Vec<PathBuf> = passwd_home().into_iter().collect();
        if let Some(home) = vars.get("HOME") {
            user_homes.push(PathBuf::from(home));
        }
        Env { vars, user_homes }
    }

    /// For tests: exactly these variables, and these user homes.
    #[cfg(test)]
    pub fn new(vars: &[(&str, &str)], user_homes: &[&Path]) -> Env {
        Env {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            user_homes: user_homes.iter().map(|p| p.to_path_buf()).collect(),
        }
    }

    /// The run's environment over the inherited one (what is not UTF-8 left out, as above).
    pub fn overlay_os(&mut self, env: &[(std::ffi::OsString, std::ffi::OsString)]) {
        for (k, v) in env {
            if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
                self.vars.insert(k.to_string(), v.to_string());
            }
        }
    }

    /// The agent's `env` over the inherited one.
    pub fn overlay(&mut self, env: &[(String, String)]) {
        for (k, v) in env {
            self.vars.insert(k.clone(), v.clone());
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The agent's home: where its CLI looks for its state.
    fn home(&self) -> Option<PathBuf> {
        self.var("HOME")
            .map(PathBuf::from)
            .or_else(|| self.user_homes.first().cloned())
    }

    /// `$name`, else `<home>/<default>`.
    fn dir(&self, name: &str, default: &str) -> Option<PathBuf> {
        self.var(name)
            .map(PathBuf::from)
            .or_else(|| Some(self.home()?.join(default)))
    }

    /// Every home to hide: the user's, and the agent's own when its env names another.
    fn homes(&self) -> Vec<PathBuf> {
        let mut homes = self.user_homes.clone();
        homes.extend(self.home());
        let mut out: Vec<PathBuf> = Vec::new();
        for home in homes {
            // A home at `/` (or a relative one) cannot be hidden without hiding everything;
            // one that does not exist (nobody's `/nonexistent`) has nothing to hide, and bwrap
            // could not make it in a read-only `/`.
            if home.is_absolute()
                && home.parent().is_some()
                && home.is_dir()
                && !out.contains(&home)
            {
                out.push(home);
            }
        }
        out
    }
}

/// The user's home from the password database.
fn passwd_home() -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt as _;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getpwuid_r writes into `pwd` and `buf`, both alive and sized as passed; the
    // result points into them and is read before they go.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        let dir = CStr::from_ptr(pwd.pw_dir).to_bytes();
        (!dir.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(dir)))
    }
}

/// The state directories (writable) an agent CLI of `kind` needs, from its environment.
fn state_dirs(kind: AgentKind, env: &Env) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match kind {
        AgentKind::Claude => dirs.extend(env.dir("CLAUDE_CONFIG_DIR", ".claude")),
        AgentKind::Codex => dirs.extend(env.dir("CODEX_HOME", ".codex")),
        AgentKind::Opencode => {
            for (var, default) in [
                ("XDG_DATA_HOME", ".local/share"),
                ("XDG_CONFIG_HOME", ".config"),
                ("XDG_CACHE_HOME", ".cache"),
                ("XDG_STATE_HOME", ".local/state"),
            ] {
                dirs.extend(env.dir(var, default).map(|d| d.join("opencode")));
            }
        }
        AgentKind::Gemini => dirs.extend(env.home().map(|h| h.join(".gemini"))),
        AgentKind::Command | AgentKind::Scripted => {}
    }
    dirs
}

/// State files an agent CLI keeps beside its directories (writable, when they exist).
fn state_files(kind: AgentKind, env: &Env) -> Vec<PathBuf> {
    match kind {
        // Without CLAUDE_CONFIG_DIR, Claude Code keeps its settings in ~/.claude.json.
        AgentKind::Claude if env.var("CLAUDE_CONFIG_DIR").is_none() => env
            .home()
            .map(|h| h.join(".claude.json"))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// Files the CLI reads that its env names (read-only).
fn config_files(kind: AgentKind, env: &Env) -> Vec<PathBuf> {
    match kind {
        AgentKind::Opencode => env
            .var("OPENCODE_CONFIG")
            .map(PathBuf::from)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// What the agent needs to run its programs from a home: the directories on its `PATH` there
/// (with their installation: `~/.cargo` for `~/.cargo/bin`, a node version for its `bin`),
/// the agent's own program's installation, orch itself, the Rust toolchain, git's config.
fn tools(env: &Env, program: &Path, exe: &Path) -> Vec<PathBuf> {
    let mut read = Vec::new();
    let homes = env.homes();
    for dir in env.var("PATH").unwrap_or("").split(':') {
        let dir = Path::new(dir);
        if !dir.is_absolute() {
            continue;
        }
        read.push(dir.to_path_buf());
        // `<install>/bin`: the installation holds what its programs load (lib/, a node
        // version's packages), except where `bin` sits right in a home or in ~/.local, whose
        // other directories hold much more than programs.
        if dir.file_name().is_some_and(|n| n == "bin")
            && let Some(install) = dir.parent()
            && !homes
                .iter()
                .any(|h| install == h || install == h.join(".local"))
        {
            read.push(install.to_path_buf());
        }
    }
    for file in [program, exe] {
        let real = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
        read.push(install_of(&real));
    }
    read.extend(env.dir("CARGO_HOME", ".cargo"));
    read.extend(env.dir("RUSTUP_HOME", ".rustup"));
    for home in &homes {
        read.push(home.join(".gitconfig"));
    }
    read.extend(env.dir("XDG_CONFIG_HOME", ".config").map(|d| d.join("git")));
    read
}

/// Where a program is installed: its `node_modules` tree for a node package, else its
/// directory.
fn install_of(program: &Path) -> PathBuf {
    let mut at = None;
    let mut prefix = PathBuf::new();
    for component in program.components() {
        prefix.push(component);
        if component == Component::Normal("node_modules".as_ref()) {
            at.get_or_insert_with(|| prefix.clone());
        }
    }
    at.unwrap_or_else(|| program.parent().unwrap_or(program).to_path_buf())
}

/// Credentials inside directories bound back, replaced by an empty file.
fn secrets_inside(env: &Env) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(cargo) = env.dir("CARGO_HOME", ".cargo") {
        files.push(cargo.join("credentials"));
        files.push(cargo.join("credentials.toml"));
    }
    files
}

/// `mounts` with `dir` bound writable too (when it exists), in its place in the order.
pub(super) fn add_writable(mounts: &mut Vec<Mount>, dir: &Path) {
    if !dir.is_absolute() || !dir.is_dir() || mounts.contains(&Mount::Write(dir.to_path_buf())) {
        return;
    }
    mounts.push(Mount::Write(dir.to_path_buf()));
    mounts.sort_by_key(|m| (m.path().components().count(), m.rank()));
}

/// The top directory of the project that holds the run directory (`.orch`), when the run
/// directory lies inside the project below one.
fn state_dir_in(project: &Path, run_dir: &Path) -> Option<PathBuf> {
    let rel = run_dir.strip_prefix(project).ok()?;
    let top = rel.components().next()?;
    (rel.components().count() > 1).then(|| project.join(top))
}

/// The project's state directory (`.orch`) when `project` is a run's worktree in it
/// (`<state>/worktrees/<run-id>`, or under `isolation: task` a task's,
/// `<state>/worktrees/<run-id>-tasks/<task>`) and the run directory lies in it too.
fn state_dir_around(project: &Path, run_dir: &Path) -> Option<PathBuf> {
    let mut worktrees = project.parent()?;
    if worktrees.file_name()? != "worktrees" && worktrees.file_name()?.to_str()?.ends_with("-tasks")
    {
        worktrees = worktrees.parent()?;
    }
    let state = worktrees.parent()?;
    (worktrees.file_name()? == "worktrees" && run_dir.starts_with(state))
        .then(|| state.to_path_buf())
}

/// The box's mounts for `jail`, the agent's environment `env`, its resolved `program`, orch's
/// own executable `exe` and its working directory `cwd`, in the order bwrap must make them
/// (outer before inner). State directories that do not exist yet are created first, as the
/// CLI itself would: bwrap can only bind what exists.
pub fn plan(jail: &Jail, env: &Env, program: &Path, exe: &Path, cwd: &Path) -> Vec<Mount> {
    let mut masks = vec![Mount::Tmpfs("/tmp".into())];
    for dir in ["/var/tmp", "/run/user"] {
        if Path::new(dir).is_dir() {
            masks.push(Mount::Tmpfs(dir.into()));
        }
    }
    let homes = env.homes();
    masks.extend(homes.iter().map(|h| Mount::Hidden(h.clone())));
    // A run on a branch works in a worktree under the project's `.orch/`: all the rest of it
    // (other runs and their worktrees, their environment files, the lock) is not there at all;
    // the worktree and this run's directory are bound back into it.
    let around = state_dir_around(&jail.project, &jail.run_dir);
    if let Some(state) = &around {
        masks.push(Mount::Hidden(state.clone()));
    }

    let mut write = Vec::new();
    // Bound read-only even where nothing hides it: it may lie under a writable place. The
    // run's directory is the run's record (the journal, the run's files, every attempt's logs
    // and exit records, the copies orch reverts from, the environment file): read-only, so
    // that nothing in it can be removed, replaced, forged or planted (a symlink where orch
    // writes a file later) from the box. What an agent must write there is bound writable
    // apart: the box's own status directory, and the planner's attempt (its plan file).
    let mut fixed_read = vec![jail.run_dir.clone()];
    // The user's checkout around a run's worktree is theirs: bound read-only, also where a
    // mask would hide it (a project under /tmp), lest the box show in its place a writable
    // copy-to-nowhere made of the directories leading to the worktree.
    if let Some(checkout) = around.as_deref().and_then(Path::parent) {
        fixed_read.push(checkout.to_path_buf());
    }
    if jail.read_only_project {
        fixed_read.extend([jail.project.clone(), cwd.to_path_buf()]);
    } else {
        write.extend([jail.project.clone(), cwd.to_path_buf()]);
    }
    for dir in state_dirs(jail.kind, env) {
        let _ = std::fs::create_dir_all(&dir);
        write.push(dir);
    }
    write.extend(state_files(jail.kind, env));
    if let Some(tmp) = env.var("TMPDIR") {
        write.push(tmp.into());
    }
    write.extend(jail.write.iter().cloned());
    // Nothing but the project may uncover a place the box hides: a TMPDIR of /tmp must not
    // bring back the real /tmp (tmux's socket is there).
    let uncovers = |p: &Path| masks.iter().any(|m| m.path().starts_with(p));
    let own = [jail.project.as_path(), jail.run_dir.as_path(), cwd];
    write.retain(|p| p.is_absolute() && p.exists() && (own.contains(&p.as_path()) || !uncovers(p)));

    let mut read = tools(env, program, exe);
    read.extend(config_files(jail.kind, env));
    read.extend(jail.read.iter().cloned());
    // Only what a mask hides needs binding back; what is writable stays so.
    let hidden = |p: &Path| {
        masks
            .iter()
            .any(|m| p.starts_with(m.path()) && p != m.path())
    };
    read.retain(|p| {
        p.is_absolute()
            && p.exists()
            && hidden(p)
            && !uncovers(p)
            && !write.iter().any(|w| p.starts_with(w))
    });
    // One inside another bound read-only shows the same files already (no mask lies between
    // them, and the outer one is its own path, not a link): each bind is work for every
    // agent's start (see BENCHMARKS.md).
    let outer: Vec<PathBuf> = read
        .iter()
        .filter(|q| q.canonicalize().is_ok_and(|c| c == **q))
        .cloned()
        .collect();
    read.retain(|p| {
        !outer.iter().any(|q| {
            q != p
                && p.starts_with(q)
                && !masks
                    .iter()
                    .any(|m| m.path().starts_with(q) && p.starts_with(m.path()))
        })
    });

    // orch's own state in the project (`.orch/`: the lock, the pointer to the current run,
    // other runs, plans) is read-only, all but this run's directory: an agent's `rm -rf
    // .orch`, `mv .orch` or `git clean -fdx` cannot take the run's record away.
    if let Some(state) = state_dir_in(&jail.project, &jail.run_dir) {
        fixed_read.push(state);
    }
    fixed_read.retain(|p| p.is_absolute() && p.exists());
    read.extend(fixed_read);

    let mut secret: Vec<PathBuf> = secrets_inside(env);
    secret.retain(|p| p.is_file() && read.iter().chain(&write).any(|r| p.starts_with(r)));

    let repo = super::repo::mounts(jail, &masks);
    let mut mounts = masks;
    mounts.extend(write.into_iter().map(Mount::Write));
    mounts.extend(read.into_iter().map(Mount::Read));
    mounts.extend(secret.into_iter().map(Mount::HiddenFile));
    mounts.extend(repo);
    let mut seen = std::collections::HashSet::new();
    mounts.retain(|m| seen.insert((m.path().to_path_buf(), m.rank())));
    mounts.sort_by_key(|m| (m.path().components().count(), m.rank()));
    without_read_inside_read(mounts)
}

/// Drops a read-only bind whose nearest enclosing mount is a read-only bind already, or that
/// has none but the read-only root (both their own paths, not links): it shows the same
/// files, read-only. The repository's guarded parts inside a checkout bound read-only (a
/// run's worktree) were seven such binds, and each is work for every agent's start (see
/// BENCHMARKS.md).
pub(super) fn without_read_inside_read(mounts: Vec<Mount>) -> Vec<Mount> {
    let canonical = |p: &Path| p.canonicalize().is_ok_and(|c| c == p);
    // bwrap's own mounts besides the read-only root.
    let own = |p: &Path| p.starts_with("/dev") || p.starts_with("/proc");
    let redundant: Vec<bool> = mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let Mount::Read(p) = m else {
                return false;
            };
            // What lies under it: the last mount made before it at its path or above (the
            // order is bwrap's: outer before inner, a mask before what is bound into it).
            let nearest = mounts[..i].iter().rev().find(|q| p.starts_with(q.path()));
            match nearest {
                None => canonical(p) && !own(p),
                Some(Mount::Read(q)) => canonical(q) && canonical(p),
                Some(_) => false,
            }
        })
        .collect();
    mounts
        .into_iter()
        .zip(redundant)
        .filter(|(_, redundant)| !redundant)
        .map(|(m, _)| m)
        .collect()
}
