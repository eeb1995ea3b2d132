//! A full disk, which agents can cause: the run stops instead of failing, and an agent's exit
//! that could not be recorded is recovered from its pane.
//!
//! With the disk full, an attempt's exit record, the journal and every new attempt's files
//! fail to be written: failing tasks (and then the run) for that would end a run that only
//! needs space. So when an agent's end looks like a failure and the disk is full, the engine
//! journals that it stops (if it still can) and leaves the run to `orch resume`, which
//! refuses to start until space is back, then carries on. `agent-run` exits with the agent's
//! status when it cannot write the exit record; the pane keeps that status, and the engine
//! takes it from there.

use std::path::Path;

use super::core::Engine;
use crate::agent_process::run::ExitRecord;
use crate::state::WarningKind;
use crate::tmux::PaneState;

/// Below this, the disk is full for orch's purposes: a journal line, an exit record or a
/// launcher may not fit.
const FULL_BELOW_BYTES: u64 = 1024 * 1024;

impl Engine {
    /// Whether the run directory's file system is (nearly) full.
    pub(super) fn disk_full(&self) -> bool {
        crate::state::free_bytes(self.dir.path()).is_some_and(|free| free < FULL_BELOW_BYTES)
    }

    /// Stops the engine because the disk is full, leaving the run to `orch resume`.
    pub(super) fn stop_for_full_disk(&mut self) -> anyhow::Result<()> {
        let message = format!(
            "the disk holding {} is full: the engine stops here, and the agents' work stays as \
             it is; free space, then `orch resume` continues the run",
            self.dir.path().display()
        );
        self.warn(WarningKind::Unrecorded, message);
        self.detach("the disk is full: free space, then `orch resume` continues the run from here")
    }

    /// How the agent in the dead `pane` ended, when `agent-run` could not write its exit
    /// record (into `dir`, done here when there is room again): the pane's exit status. A
    /// pane killed by a signal says nothing of the agent's own ending.
    pub(super) fn recover_exit(&self, dir: &Path, pane: &PaneState) -> Option<ExitRecord> {
        if !pane.dead || pane.dead_signal.is_some() {
            return None;
        }
        let code = pane.dead_status?;
        let now = crate::state::now_ms();
        let record = ExitRecord {
            code: Some(code),
            signal: None,
            started_at_ms: now,
            ended_at_ms: now,
            failure: (code != 0).then(|| {
                format!(
                    "exited with status {code}; its exit record could not be written (a full \
                     disk?), so the status was taken from its pane"
                )
            }),
            usage: None,
            session_id: None,
            stopped_by: None,
            sandbox_refused: Vec::new(),
        };
        if let Ok(mut json) = serde_json::to_vec(&record) {
            json.push(b'\n');
            let _ =
                crate::agent_process::launcher::write_atomic(&dir.join("exit.json"), &json, 0o600);
        }
        Some(record)
    }
}
