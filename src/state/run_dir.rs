//! Where a run keeps its files: `.orch/runs/<run-id>/`, and `.orch/current` naming the latest
//! run. Every path a module needs is named here, so the layout has one home.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::plan::TaskId;

/// A run's directory. Building one touches nothing; `create` makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    id: String,
    path: PathBuf,
}

impl RunDir {
    /// The directory of run `run_id` in the project whose state lives in `state_dir` (`.orch`).
    pub fn new(state_dir: &Path, run_id: &str) -> RunDir {
        RunDir {
            id: run_id.to_string(),
            path: state_dir.join("runs").join(run_id),
        }
    }

    /// An existing run directory, given by its path (how the engine is told its run).
    pub fn open(path: &Path) -> anyhow::Result<RunDir> {
        if !path.is_dir() {
            anyhow::bail!(
                "{} is not a run directory: runs live in .orch/runs/ of the project; \
                 `orch status` shows the latest",
                path.display()
            );
        }
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{} does not name a run", path.display()))?;
        Ok(RunDir {
            id,
            path: path.to_path_buf(),
        })
    }

    /// Makes the directory and the subdirectories every run has, for this user alone (0700):
    /// a run holds the caller's environment, the request and every prompt.
    pub fn create(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        for dir in [
            self.path.clone(),
            self.planner_dir(),
            self.tasks_dir(),
            self.violations(),
            self.signals(),
            self.snapshot(),
        ] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| {
                    format!(
                        "failed to create {}: orch keeps its runs under .orch/, so the project \
                         must be writable (and the disk not full)",
                        dir.display()
                    )
                })?;
        }
        // Made by someone else before, maybe with a looser mode.
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private (chmod 700)", self.path.display()))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `run.json`: [`RunInfo`].
    pub fn run_json(&self) -> PathBuf {
        self.path.join("run.json")
    }

    /// `config.yaml`: the config as it was when the run started.
    pub fn config(&self) -> PathBuf {
        self.path.join("config.yaml")
    }

    /// `request.txt`: the request, byte for byte.
    pub fn request(&self) -> PathBuf {
        self.path.join("request.txt")
    }

    /// `plan.json`: the accepted (or given) plan.
    pub fn plan(&self) -> PathBuf {
        self.path.join("plan.json")
    }

    /// `environ`: the environment of the `orch up` or `orch resume` that last started the
    /// run's engine, for the engine and the agents (mode 0600; see `state::environ`).
    pub fn environ(&self) -> PathBuf {
        self.path.join("environ")
    }

    /// `events.jsonl`: the journal.
    pub fn events(&self) -> PathBuf {
        self.path.join("events.jsonl")
    }

    pub fn planner_dir(&self) -> PathBuf {
        self.path.join("planner")
    }

    /// `planner/<attempt>/`: prompt.md, launch.json, launch.sh, output.log, stdout.log,
    /// exit.json.
    pub fn planner_attempt(&self, attempt: u32) -> PathBuf {
        self.planner_dir().join(attempt.to_string())
    }

    pub fn tasks_dir(&self) -> PathBuf {
        self.path.join("tasks")
    }

    /// `tasks/<id>/`.
    pub fn task_dir(&self, task: &TaskId) -> PathBuf {
        self.tasks_dir().join(path_component(task))
    }

    /// `tasks/<id>/<attempt>/`: the same files as a planner attempt.
    pub fn task_attempt(&self, task: &TaskId, attempt: u32) -> PathBuf {
        self.task_dir(task).join(attempt.to_string())
    }

    pub fn violations(&self) -> PathBuf {
        self.path.join("violations")
    }

    /// `violations/<n>/`: the saved content of violation `n`, under its project path.
    pub fn violation_dir(&self, n: u32) -> PathBuf {
        self.violations().join(n.to_string())
    }

    /// `signals/`: marker files touched by tmux hooks.
    pub fn signals(&self) -> PathBuf {
        self.path.join("signals")
    }

    /// `barriers/`: files the engine creates to know that the project tree's watcher has
    /// reported everything before them (see `TreeWatcher::with_barriers`).
    pub fn barriers(&self) -> PathBuf {
        self.path.join("barriers")
    }

    /// `snapshot/`: the private git index for the start snapshot.
    pub fn snapshot(&self) -> PathBuf {
        self.path.join("snapshot")
    }

    /// `baseline/`: copies of finished tasks' files, what a later violating write is
    /// reverted to.
    pub fn baseline(&self) -> PathBuf {
        self.path.join("baseline")
    }

    /// `engine.lock`: the run lock, held by the run's live engine (see `state::lock`).
    /// Missing in the directories of runs from before it existed.
    pub fn engine_lock(&self) -> PathBuf {
        self.path.join("engine.lock")
    }

    /// `boxes/`: the run's shared sandboxes, one record per mount plan (see
    /// `sandbox::shared`); read-only in every box, as the whole directory is.
    pub fn boxes(&self) -> PathBuf {
        self.path.join("boxes")
    }

    /// `stop`: written by `orch down` so the engine records `stopped`, not `interrupted`.
    pub fn stop_request(&self) -> PathBuf {
        self.path.join("stop")
    }

    /// `gates/`: one log per gate.
    pub fn gates(&self) -> PathBuf {
        self.path.join("gates")
    }

    pub fn report_md(&self) -> PathBuf {
        self.path.join("report.md")
    }

    pub fn report_json(&self) -> PathBuf {
        self.path.join("report.json")
    }

    /// The latest run's id: the one `current` names if its directory exists, else the
    /// greatest run id under `runs/` (ids sort by time).
    pub fn latest(state_dir: &Path) -> Option<String> {
        let runs = state_dir.join("runs");
        if let Ok(text) = std::fs::read_to_string(state_dir.join("current")) {
            let id = text.trim();
            if is_run_id(id) && runs.join(id).is_dir() {
                return Some(id.to_string());
            }
        }
        std::fs::read_dir(&runs)
            .ok()?
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|id| is_run_id(id))
            .max()
    }

    /// Records `run_id` as the latest run (atomically: a reader sees the old id or the new).
    pub fn set_current(state_dir: &Path, run_id: &str) -> anyhow::Result<()> {
        let path = state_dir.join("current");
        write_atomic(&path, format!("{run_id}\n").as_bytes())
    }
}

/// Whether `id` can name a run directory: one plain path component.
pub fn is_run_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A task id as one path component. Validated plans only have safe ids; anything else is
/// hex-encoded behind a `%` (which no safe id contains), so it can neither escape `tasks/`
/// nor collide with a safe id.
fn path_component(task: &TaskId) -> String {
    if task.is_safe() {
        return task.as_str().to_string();
    }
    let mut out = String::from("%");
    for b in task.as_str().bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What `run.json` holds: everything about a run that is fixed when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub request: String,
    /// The tmux session's name.
    pub session: String,
    /// The tmux socket as it was asked for (`--socket`, `ORCH_TMUX_SOCKET`), if it was.
    pub socket: Option<String>,
    /// The socket path of the server the run's session was made on (see `tmux::socket`):
    /// what every later command uses, from inside tmux or not. Missing in the `run.json` of
    /// runs started before it was recorded; they fall back to `socket`.
    #[serde(default)]
    pub socket_path: Option<PathBuf>,
    /// The tmux config (`-f`), when one was given.
    pub tmux_config: Option<PathBuf>,
    pub layout: String,
    pub project_root: PathBuf,
    pub created_at_ms: u64,
    /// Whether the plan came with `--plan` (no planning phase).
    pub plan_given: bool,
    pub orch_version: String,
    /// A worktree run's branch and worktree; absent for a run in place (and older runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<crate::workspace::WorkspaceInfo>,
    /// `orch up --review`: the plan waits for `orch approve` whatever `plan_approval` says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub review: bool,
}

impl RunInfo {
    /// The run's tmux server as `RealTmux::new` takes it: its socket path, else (an older
    /// run) the name it was given, else the default server.
    pub fn tmux_socket(&self) -> Option<String> {
        self.socket_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .or_else(|| self.socket.clone())
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut json = serde_json::to_string_pretty(self).context("failed to encode run.json")?;
        json.push('\n');
        write_atomic(path, json.as_bytes())
    }

    pub fn read(path: &Path) -> anyhow::Result<RunInfo> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "failed to read {}: is this a run directory? `ls .orch/runs` lists the runs",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid run record (written by another orch version, or edited?)",
                path.display()
            )
        })
    }
}

/// Creates the directory of a new run with what its engine starts from: `run.json`, the
/// config it runs with (a copy: editing `orch.yaml` later does not change a run), the request,
/// the plan when one was given, and the journal's first event. The run becomes the project's
/// current one.
pub fn create_run(
    state_dir: &Path,
    info: &RunInfo,
    config_text: &str,
    plan: Option<&crate::plan::Plan>,
) -> anyhow::Result<RunDir> {
    let dir = RunDir::new(state_dir, &info.run_id);
    dir.create()?;
    // The config may hold the agents' `env` (keys), the request is the user's: 0600, like
    // every file here.
    write_atomic(&dir.config(), config_text.as_bytes())
        .context("failed to copy the config into the run")?;
    write_atomic(&dir.request(), info.request.as_bytes()).context("failed to write the request")?;
    if let Some(plan) = plan {
        let json = serde_json::to_string_pretty(plan)?;
        write_atomic(&dir.plan(), (json + "\n").as_bytes()).context("failed to write the plan")?;
    }
    info.write(&dir.run_json())?;
    let mut journal = super::Journal::open(&dir.events())?;
    journal.append(super::Event::RunStarted {
        run_id: info.run_id.clone(),
        request_bytes: info.request.len(),
    })?;
    RunDir::set_current(state_dir, &info.run_id)?;
    Ok(dir)
}

/// Writes `bytes` to a temporary file beside `path` (mode 0600, readable by this user alone),
/// then renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let advice = "orch keeps its runs under .orch/, so the project must be writable";
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("failed to write {}: {advice}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("failed to write {}: {advice}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let dir = RunDir::new(Path::new("/p/.orch"), "r1");
        assert_eq!(dir.path(), Path::new("/p/.orch/runs/r1"));
        assert_eq!(dir.id(), "r1");
        assert_eq!(dir.events(), Path::new("/p/.orch/runs/r1/events.jsonl"));
        assert_eq!(
            dir.planner_attempt(2),
            Path::new("/p/.orch/runs/r1/planner/2")
        );
        assert_eq!(
            dir.task_attempt(&TaskId::new("api"), 1),
            Path::new("/p/.orch/runs/r1/tasks/api/1")
        );
        assert_eq!(
            dir.violation_dir(3),
            Path::new("/p/.orch/runs/r1/violations/3")
        );
    }

    #[test]
    fn unsafe_task_ids_stay_inside_tasks() {
        let dir = RunDir::new(Path::new("/p/.orch"), "r1");
        let path = dir.task_attempt(&TaskId::new("../x"), 1);
        assert_eq!(path, Path::new("/p/.orch/runs/r1/tasks/%2e2e2f78/1"));
    }

    #[test]
    fn create_open_and_run_info() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path(), "20260101-000000-0001");
        dir.create().unwrap();
        assert!(dir.signals().is_dir() && dir.snapshot().is_dir() && dir.tasks_dir().is_dir());
        let opened = RunDir::open(dir.path()).unwrap();
        assert_eq!(opened, dir);
        assert!(RunDir::open(&tmp.path().join("nope")).is_err());

        let info = RunInfo {
            run_id: dir.id().into(),
            request: "build\nit ✓".into(),
            session: "orch-p".into(),
            socket: Some("orch-test".into()),
            socket_path: Some("/tmp/tmux-1/orch-test".into()),
            tmux_config: None,
            layout: "tiled".into(),
            project_root: tmp.path().into(),
            created_at_ms: 12,
            plan_given: false,
            orch_version: "0.1.0".into(),
            workspace: None,
            review: false,
        };
        info.write(&dir.run_json()).unwrap();
        assert_eq!(RunInfo::read(&dir.run_json()).unwrap(), info);
        assert_eq!(info.tmux_socket().as_deref(), Some("/tmp/tmux-1/orch-test"));
        let err = RunInfo::read(&dir.path().join("missing.json")).unwrap_err();
        assert!(format!("{err:#}").contains("missing.json"));
    }

    #[test]
    fn a_run_json_without_a_socket_path_reaches_its_server_by_name() {
        let text = r#"{"run_id": "r1", "request": "x", "session": "orch-p", "socket": "other",
            "tmux_config": null, "layout": "windows", "project_root": "/p",
            "created_at_ms": 1, "plan_given": false, "orch_version": "0.1.0"}"#;
        let info: RunInfo = serde_json::from_str(text).unwrap();
        assert_eq!(info.socket_path, None);
        assert_eq!(info.tmux_socket().as_deref(), Some("other"));
        let info = RunInfo {
            socket: None,
            ..info
        };
        assert_eq!(info.tmux_socket(), None);
    }

    #[test]
    fn latest_prefers_current_then_the_greatest_id() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(RunDir::latest(tmp.path()), None);
        for id in [
            "20260101-000000-0001",
            "20260102-000000-0001",
            "20250101-000000-0001",
        ] {
            RunDir::new(tmp.path(), id).create().unwrap();
        }
        assert_eq!(
            RunDir::latest(tmp.path()).as_deref(),
            Some("20260102-000000-0001")
        );
        RunDir::set_current(tmp.path(), "20250101-000000-0001").unwrap();
        assert_eq!(
            RunDir::latest(tmp.path()).as_deref(),
            Some("20250101-000000-0001")
        );
        // `current` naming a run that is gone, or garbage, falls back.
        RunDir::set_current(tmp.path(), "../../etc").unwrap();
        assert_eq!(
            RunDir::latest(tmp.path()).as_deref(),
            Some("20260102-000000-0001")
        );
    }
}
