//! Finding a run for the commands that read or act on one (status, logs, wait, attach, down,
//! resume, report, diff, merge, discard): the one `--run` names, else the latest in this
//! project, read from its journal alone. Several runs may be live at once: when the command
//! picked the latest and another run is live, it says which one it picked, and how to pick
//! another.

use crate::project::Project;
use crate::state::{self, RunDir, RunInfo, RunState};
use crate::tmux::RealTmux;

use super::Global;
use crate::error::usage;

pub(super) struct Loaded {
    pub project: Project,
    pub dir: RunDir,
    pub info: RunInfo,
    pub state: RunState,
    pub warnings: Vec<String>,
    /// Whether this run's engine holds the run's lock right now.
    pub engine_alive: bool,
    pub engine_pid: Option<u32>,
}

/// The run `run` names, else the latest; when that was the pick and other runs are live,
/// says so on stderr (stdout stays the command's own, `--json` included).
pub(super) fn load(global: &Global, run: Option<&str>) -> anyhow::Result<Loaded> {
    let project = global.project()?;
    let state_dir = project.state_dir();
    let run_id = match run {
        Some(id) => id.to_string(),
        None => RunDir::latest(&state_dir).ok_or_else(|| {
            usage(format!(
                "no run in {} yet: start one with `orch up \"what to build\"`",
                project.root.display()
            ))
        })?,
    };
    let dir = RunDir::new(&state_dir, &run_id);
    if !state::is_run_id(&run_id) || !dir.run_json().exists() {
        return Err(usage(format!(
            "no run {run_id} in {}: `ls .orch/runs` lists them",
            project.root.display()
        )));
    }
    let info = RunInfo::read(&dir.run_json())?;
    let journal = state::read_journal(&dir.events())?;
    let state = RunState::replay(&journal.records);
    // A command writing the run's journal for an instant (`orch down`) is no engine.
    let engine = state::run_holder(&state_dir, &dir).filter(state::Holder::is_engine);
    if run.is_none()
        && let Some(note) = picked_note(&run_id, &state::live_runs(&state_dir))
    {
        eprintln!("{note}");
    }
    Ok(Loaded {
        project,
        dir,
        state,
        warnings: journal.warnings,
        engine_alive: engine.is_some(),
        engine_pid: engine.map(|holder| holder.pid),
        info,
    })
}

/// What to say when the latest run, `picked`, was taken for want of `--run` while `live`
/// (the project's live runs) holds others: which run this is, and how to pick another.
fn picked_note(picked: &str, live: &[state::Holder]) -> Option<String> {
    let others: Vec<&str> = live
        .iter()
        .map(|holder| holder.run_id.as_str())
        .filter(|id| *id != picked)
        .collect();
    if others.is_empty() {
        return None;
    }
    let picked_live = live.iter().any(|holder| holder.run_id == picked);
    let count = others.len() + usize::from(picked_live);
    let (verb, listed) = if picked_live {
        ("are", format!("{picked}, {}", others.join(", ")))
    } else if others.len() == 1 {
        ("is", others.join(", "))
    } else {
        ("are", others.join(", "))
    };
    let noun = if count == 1 { "run" } else { "runs" };
    let state = if picked_live { "" } else { ", not live" };
    Some(format!(
        "note: {count} {noun} {verb} live in this project ({listed}); this is run {picked}, \
         the latest{state}: pick another with --run ID"
    ))
}

impl Loaded {
    pub(super) fn tmux(&self) -> RealTmux {
        RealTmux::new(self.info.tmux_socket(), self.info.tmux_config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(ids: &[&str]) -> Vec<state::Holder> {
        ids.iter()
            .map(|id| state::Holder {
                run_id: (*id).to_string(),
                pid: 1,
                command: None,
            })
            .collect()
    }

    #[test]
    fn the_pick_is_said_only_when_another_run_is_live() {
        assert_eq!(picked_note("b", &live(&[])), None);
        assert_eq!(picked_note("b", &live(&["b"])), None);
        let note = picked_note("b", &live(&["b", "a"])).unwrap();
        assert!(
            note.starts_with(
                "note: 2 runs are live in this project (b, a); this is run b, the \
                              latest: "
            ),
            "{note}"
        );
        assert!(
            note.ends_with("the latest: pick another with --run ID"),
            "{note}"
        );
        let note = picked_note("c", &live(&["a"])).unwrap();
        assert!(
            note.contains("1 run is live in this project (a); this is run c, the latest, not live"),
            "{note}"
        );
        let note = picked_note("c", &live(&["b", "a"])).unwrap();
        assert!(
            note.contains("2 runs are live in this project (b, a)"),
            "{note}"
        );
    }
}
