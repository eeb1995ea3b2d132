//! Requests from a command to a run's engine (`orch approve`, `budget`, `retry`, `tell`): one
//! JSON file per request in a directory of the run's own (`approve/`, `budget/`, `retry/`,
//! `tell/`), written atomically so that an engine never reads half of one. The live engine
//! (or the next one, at `orch resume`) journals each and then removes its file, so a request
//! outlives an engine that dies before taking it.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::RunDir;

/// Where the requests of `kind` wait for an engine.
pub fn dir(run: &RunDir, kind: &str) -> PathBuf {
    run.path().join(kind)
}

/// Writes `request` as `<kind>/<id>.json` (a temporary file renamed into place).
pub fn write<T: Serialize>(
    run: &RunDir,
    kind: &str,
    id: &str,
    request: &T,
) -> anyhow::Result<PathBuf> {
    let requests = dir(run, kind);
    std::fs::create_dir_all(&requests)
        .with_context(|| format!("cannot create {}", requests.display()))?;
    let path = requests.join(format!("{id}.json"));
    let tmp = requests.join(format!(".{id}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(request)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The requests of `kind`, oldest first (their ids sort by time); one that cannot be read is
/// an error of its own, for the engine to report.
pub fn read<T: DeserializeOwned>(run: &RunDir, kind: &str) -> Vec<(PathBuf, Result<T, String>)> {
    let Ok(entries) = std::fs::read_dir(dir(run, kind)) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Result<T, String>)> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let read = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<T>(&b).map_err(|e| e.to_string()));
            (path, read)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
