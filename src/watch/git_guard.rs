//! `.git/` is not the agents' to change: the parts of the project's repository that can make
//! git (the user's, after the run) run a command or check out something else are copied when
//! the run starts, watched, and compared with that copy whenever they change.
//!
//! Guarded, in the repository's git directory and (for a linked worktree) its common
//! directory: `config`, `config.worktree`, `HEAD`, `packed-refs`, and everything under
//! `hooks/`, `info/` (attributes, exclude, sparse-checkout) and `refs/`. Not guarded: the
//! index, objects, logs, lock files and the other files git rewrites for any command: an agent
//! running `git status`, `git diff` or even `git add` writes those, and nothing in them names
//! a command. A commit or a checkout moves `refs/` or `HEAD`, and is reported. In the sandbox
//! the guarded parts are read-only besides (`crate::sandbox`'s `repo`): this guard is what
//! catches a write where there is no sandbox, or one the sandbox cannot prevent (a guarded
//! file created where none was).
//!
//! The guarded directories are watched as they exist (one created later, from the next look
//! on); the engine also looks before each task's checks and at the end of the run.
//!
//! A run on a branch works in a linked worktree whose common directory is the user's own
//! repository, which the user keeps using (commits, checkouts, `git gc`): there only what can
//! make git run a command (`config`, `hooks/`, `info/`) and the run's own branch are guarded,
//! and the engine's own commits on that branch are taken into the copy as it makes them
//! ([`GitGuard::accept_own_ref`]).
//!
//! Files are compared by content (a symlink by its target) and executable bit. A change is
//! shown by its path from the project root (`.git/hooks/pre-commit`), or its absolute path
//! when the common directory lies outside the project (a linked worktree).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::SystemTime;

use notify::Watcher as _;
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind};
use tokio::sync::mpsc::UnboundedSender;

use super::tree::{ChangeKind, FsChange};
use crate::snapshot::{Restored, SnapshotError};
// The guarded files at the top of a git directory, and the directories guarded whole.
use crate::git::{GUARDED_DIRS as TREES, GUARDED_FILES as TOP_FILES, RepoDirs};

mod seen;
use seen::Seen;

/// One guarded git directory.
#[derive(Debug, Clone)]
struct Area {
    dir: PathBuf,
    /// How its files are shown: `.git/` or the absolute directory, with a trailing `/`.
    shown: String,
    /// Its directory in the copy.
    label: &'static str,
    /// Only these of its guarded files (a shared common directory), when set: `config`, what
    /// lies under `hooks/` and `info/`, and this ref (the run's branch).
    shared: Option<String>,
}

impl Area {
    /// A guarded file's state now (see [`read`]); the run's own branch, packed by the user's
    /// `git gc` (or `git pack-refs`), as its loose file would hold it: packing moves no branch.
    fn current(&self, rel: &str) -> Option<Vec<u8>> {
        read(&self.dir, rel).or_else(|| {
            (self.shared.as_deref() == Some(rel))
                .then(|| packed_ref(&self.dir, rel))
                .flatten()
        })
    }

    /// Whether `rel` (a guarded file's path in the area) is this area's to guard.
    fn keeps(&self, rel: &str) -> bool {
        match &self.shared {
            None => true,
            Some(own_ref) => {
                rel == "config"
                    || rel.starts_with("hooks/")
                    || rel.starts_with("info/")
                    || rel == own_ref
            }
        }
    }
}

/// A guarded file that is not as it was at the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitChange {
    /// As shown in violations: `.git/hooks/pre-commit`.
    pub shown: String,
    /// created | modified | removed
    pub change: &'static str,
    /// When it was changed (its inode's change time; now for a removal).
    pub at: SystemTime,
}

/// What a look at the guarded files found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GitLook {
    /// Changes not reported yet.
    pub changes: Vec<GitChange>,
    /// What kept the guard from its whole work (a directory it could not watch, its copy it
    /// could not write back), each saying what that costs: the engine journals them.
    pub warnings: Vec<String>,
}

/// The guard of one run. Dropping it stops the watching.
pub struct GitGuard {
    areas: Vec<Area>,
    copy: PathBuf,
    /// What each file was when last reported, so that a change is reported once.
    reported: BTreeMap<String, Option<Vec<u8>>>,
    /// What the watcher saw since the last look; a burst of writes (a `git commit`) sends
    /// one [`ChangeKind::GitMeta`], not one per file.
    seen: Arc<Mutex<Seen>>,
    watcher: Option<notify::RecommendedWatcher>,
    /// The guarded directories watched (recursively) so far.
    watched: HashSet<PathBuf>,
    /// The copy as taken, also kept in memory: an agent that deletes `.orch/` (a `git clean
    /// -fdx`) must not make every guarded file look new, nor leave nothing to revert to.
    kept: Vec<Kept>,
}

/// One file of the copy: where it goes, and what it was (a symlink's target as content).
#[derive(Debug, Clone)]
struct Kept {
    label: &'static str,
    rel: String,
    content: Vec<u8>,
    mode: u32,
    link: bool,
}

impl Kept {
    /// What [`read`] gives for the file as kept.
    fn as_read(&self) -> Vec<u8> {
        let mut content = self.content.clone();
        if self.link {
            content.extend_from_slice(b"\0link");
        } else if self.mode & 0o111 != 0 {
            content.extend_from_slice(b"\0exec");
        }
        content
    }
}

impl std::fmt::Debug for GitGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitGuard")
            .field("areas", &self.areas)
            .finish_non_exhaustive()
    }
}

const TAKEN: &str = ".taken";

impl GitGuard {
    /// The guard of the repository of `root` (`None` when it is not a git work tree), its
    /// copy in `copy` (made now unless an earlier engine of the run made it).
    pub fn open(root: &Path, copy: &Path) -> std::io::Result<Option<GitGuard>> {
        Self::open_for(root, copy, None)
    }

    /// `open`, for a run on the branch `own_ref` (`refs/heads/orch/<run-id>`) in a linked
    /// worktree at `root`: its common directory is the user's, and guarded as such.
    pub fn open_for(
        root: &Path,
        copy: &Path,
        own_ref: Option<&str>,
    ) -> std::io::Result<Option<GitGuard>> {
        let Some(repo) = RepoDirs::of(root) else {
            return Ok(None);
        };
        let shown = |dir: &Path| match dir.strip_prefix(root) {
            Ok(rel) => format!("{}/", rel.display()),
            Err(_) => format!("{}/", dir.display()),
        };
        let mut areas = vec![Area {
            dir: repo.git_dir.clone(),
            shown: shown(&repo.git_dir),
            label: "git-dir",
            shared: None,
        }];
        if repo.common_dir != repo.git_dir {
            areas.push(Area {
                dir: repo.common_dir.clone(),
                shown: shown(&repo.common_dir),
                label: "common-dir",
                shared: own_ref.map(String::from),
            });
        }
        let mut guard = GitGuard {
            areas,
            copy: copy.to_path_buf(),
            reported: BTreeMap::new(),
            seen: Arc::default(),
            watcher: None,
            watched: HashSet::new(),
            kept: Vec::new(),
        };
        if !copy.join(TAKEN).exists() {
            guard.take_copy()?;
        }
        guard.kept = guard.read_copy()?;
        Ok(Some(guard))
    }

    /// The copy on disk, as [`Kept`] files.
    fn read_copy(&self) -> std::io::Result<Vec<Kept>> {
        let mut kept = Vec::new();
        for area in &self.areas {
            let dir = self.copy.join(area.label);
            for rel in guarded_files(&dir).into_iter().filter(|r| area.keeps(r)) {
                let path = dir.join(&rel);
                let meta = std::fs::symlink_metadata(&path)?;
                let link = meta.file_type().is_symlink();
                let content = if link {
                    use std::os::unix::ffi::OsStrExt as _;
                    std::fs::read_link(&path)?.as_os_str().as_bytes().to_vec()
                } else {
                    std::fs::read(&path)?
                };
                kept.push(Kept {
                    label: area.label,
                    rel,
                    content,
                    mode: meta.permissions().mode() & 0o777,
                    link,
                });
            }
        }
        Ok(kept)
    }

    /// Writes the copy back from memory when it is gone from disk (`.orch/` deleted or moved
    /// during the run), so that changes are judged, and reverts made, against the start.
    fn ensure_copy(&self) -> Option<String> {
        if self.copy.join(TAKEN).exists() {
            return None;
        }
        let written = (|| -> std::io::Result<()> {
            for file in &self.kept {
                let path = self.copy.join(file.label).join(&file.rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let _ = std::fs::remove_file(&path);
                if file.link {
                    use std::os::unix::ffi::OsStrExt as _;
                    let target = std::ffi::OsStr::from_bytes(&file.content);
                    std::os::unix::fs::symlink(target, &path)?;
                } else {
                    std::fs::write(&path, &file.content)?;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))?;
                }
            }
            std::fs::write(self.copy.join(TAKEN), "")
        })();
        written.err().map(|e| {
            format!(
                "cannot write back the start copy of .git/'s guarded files into {} ({e}): \
                 changes there are judged against what is left of it",
                self.copy.display()
            )
        })
    }

    fn take_copy(&self) -> std::io::Result<()> {
        if self.copy.exists() {
            std::fs::remove_dir_all(&self.copy)?;
        }
        std::fs::create_dir_all(&self.copy)?;
        for area in &self.areas {
            for rel in guarded_files(&area.dir)
                .into_iter()
                .filter(|r| area.keeps(r))
            {
                crate::snapshot::save_copy(&area.dir, &rel, &self.copy.join(area.label))
                    .map_err(std::io::Error::other)?;
            }
        }
        std::fs::write(self.copy.join(TAKEN), "")
    }

    /// Starts watching the guarded parts; each change sends a [`ChangeKind::GitMeta`].
    pub fn watch(&mut self, tx: UnboundedSender<FsChange>) -> Result<(), notify::Error> {
        let areas: Vec<PathBuf> = self.areas.iter().map(|a| a.dir.clone()).collect();
        let seen = self.seen.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                // Reading is no change (and the guard's own reads must not wake it again); a
                // file being written is looked at once closed, so that what is saved before a
                // revert is what was written, not an empty file just created.
                let settled = match event.kind {
                    EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                    EventKind::Access(_) => false,
                    // A link or a FIFO made has no close-write to wait for.
                    EventKind::Create(CreateKind::File) => event.paths.iter().any(|p| {
                        use std::os::unix::fs::MetadataExt as _;
                        std::fs::symlink_metadata(p).is_ok_and(|m| !m.is_file() || m.nlink() > 1)
                    }),
                    EventKind::Modify(ModifyKind::Data(_)) => false,
                    _ => true,
                };
                if !settled && !event.need_rescan() {
                    return;
                }
                // The top of a git directory churns with every git command (index, locks,
                // logs): only the guarded files there count.
                let relevant: Vec<&PathBuf> = event
                    .paths
                    .iter()
                    .filter(|p| {
                        let top = p
                            .parent()
                            .is_some_and(|parent| areas.iter().any(|a| a == parent));
                        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                        // A lock is a write in progress: the rename that ends it names the
                        // file (each of the engine's commits writes one for its ref).
                        let lock = name.ends_with(".lock");
                        !lock && (!top || TOP_FILES.contains(&name) || TREES.contains(&name))
                    })
                    .collect();
                if !event.need_rescan() && relevant.is_empty() {
                    return;
                }
                // A directory made or removed whole, events lost, the git directory itself
                // moved or a guarded directory at its top renamed (its watch goes with it):
                // everything is looked at, and the guarded directories watched anew.
                let at_top = |p: &PathBuf| {
                    areas.contains(p)
                        || (p
                            .parent()
                            .is_some_and(|parent| areas.iter().any(|a| a == parent))
                            && p.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| TREES.contains(&n)))
                };
                let everything = event.need_rescan()
                    || matches!(
                        event.kind,
                        EventKind::Create(CreateKind::Folder)
                            | EventKind::Remove(notify::event::RemoveKind::Folder)
                    )
                    || event.paths.iter().any(at_top);
                if seen::note(&seen, everything, relevant) {
                    let _ = tx.send(FsChange {
                        path: String::new(),
                        kind: ChangeKind::GitMeta,
                        at: SystemTime::now(),
                    });
                }
            })?;
        for area in &self.areas {
            watcher.watch(&area.dir, notify::RecursiveMode::NonRecursive)?;
        }
        self.watcher = Some(watcher);
        self.watch_trees()
    }

    /// Watches the guarded directories (`hooks/`, `info/`, `refs/`) not watched yet: also one
    /// created during the run (its creation is seen at the top of the git directory).
    fn watch_trees(&mut self) -> Result<(), notify::Error> {
        let Some(watcher) = self.watcher.as_mut() else {
            return Ok(());
        };
        for area in &self.areas {
            for tree in TREES {
                let dir = area.dir.join(tree);
                let is_dir = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
                if is_dir && !self.watched.contains(&dir) {
                    watcher.watch(&dir, notify::RecursiveMode::Recursive)?;
                    self.watched.insert(dir);
                } else if !is_dir && self.watched.remove(&dir) {
                    let _ = watcher.unwatch(&dir);
                }
            }
        }
        Ok(())
    }

    /// Whether `shown` names a guarded file (a violation's path).
    pub fn guards(&self, shown: &str) -> bool {
        self.locate(shown).is_some()
    }

    /// Marks the guarded files already named in violations (by an earlier engine of the run)
    /// as reported in their present state.
    pub fn already_reported<'a>(&mut self, shown: impl IntoIterator<Item = &'a str>) {
        for path in shown {
            if let Some((area, rel)) = self.locate(path) {
                let now = area.current(&rel);
                self.reported.insert(path.to_string(), now);
            }
        }
    }

    /// Every guarded file that differs from the copy and was not reported in this state yet,
    /// and what kept the guard from looking as it should.
    pub fn changes(&mut self) -> GitLook {
        // Taken first: a write made while this looks is signalled again.
        seen::take(&self.seen);
        self.look(None)
    }

    /// [`GitGuard::changes`] among the files the watcher saw change since the last look (all
    /// of them after an overflow or a directory made or removed): an engine committing on the
    /// run's branch moves a ref many times a second, and a look at every guarded file each
    /// time took most of the loop's time (see BENCHMARKS.md).
    pub fn changes_seen(&mut self) -> GitLook {
        let seen = seen::take(&self.seen);
        if seen.everything {
            // A guarded directory renamed or made anew loses its watch with the old one.
            if let Some(watcher) = self.watcher.as_mut() {
                for dir in self.watched.drain() {
                    let _ = watcher.unwatch(&dir);
                }
            }
            return self.look(None);
        }
        self.look(Some(&seen.paths))
    }

    /// The look itself: at every guarded file, or at those under `only`'s paths.
    fn look(&mut self, only: Option<&BTreeSet<PathBuf>>) -> GitLook {
        let mut warnings = Vec::new();
        if let Err(e) = self.watch_trees() {
            // Still compared here, before each task's checks and at the end.
            warnings.push(format!(
                "cannot watch a directory of the project's .git/ ({e}): changes there are \
                 still found before each task's checks and at the end of the run"
            ));
        }
        warnings.extend(self.ensure_copy());
        let mut found = Vec::new();
        for area in &self.areas {
            // The start as kept in memory (what the copy on disk holds, but out of anyone's
            // reach, and read for free).
            let kept: BTreeMap<&str, Vec<u8>> = self
                .kept
                .iter()
                .filter(|k| k.label == area.label && area.keeps(&k.rel))
                .map(|k| (k.rel.as_str(), k.as_read()))
                .collect();
            let kept_rels: Vec<&str> = kept.keys().copied().collect();
            let mut paths: BTreeSet<String> = match only {
                None => guarded_files(&area.dir),
                Some(seen) => seen::files_under(&area.dir, seen, &kept_rels),
            }
            .into_iter()
            .filter(|r| area.keeps(r))
            .collect();
            if only.is_none() {
                paths.extend(kept_rels.iter().map(|r| (*r).to_string()));
            }
            // The run's own branch, packed (`git pack-refs`, `git gc`) or deleted while packed,
            // changes in `packed-refs`, which a shared directory's guard does not keep.
            if let (Some(seen), Some(own)) = (only, &area.shared)
                && seen.contains(&area.dir.join("packed-refs"))
            {
                paths.insert(own.clone());
            }
            for rel in paths {
                let now = area.current(&rel);
                let then = kept.get(rel.as_str()).cloned();
                let shown = format!("{}{rel}", area.shown);
                if now == then {
                    self.reported.remove(&shown);
                    continue;
                }
                if self.reported.get(&shown) == Some(&now) {
                    continue;
                }
                self.reported.insert(shown.clone(), now.clone());
                let change = match (&then, &now) {
                    (None, _) => "created",
                    (_, None) => "removed",
                    _ => "modified",
                };
                // The inode's change time: an agent can set a file's modification time back,
                // not this.
                let at = std::fs::symlink_metadata(area.dir.join(&rel))
                    .ok()
                    .and_then(|m| {
                        use std::os::unix::fs::MetadataExt as _;
                        let secs = u64::try_from(m.ctime()).ok()?;
                        let nanos = u32::try_from(m.ctime_nsec()).ok()?;
                        Some(SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
                    })
                    .unwrap_or_else(SystemTime::now);
                found.push(GitChange { shown, change, at });
            }
        }
        GitLook {
            changes: found,
            warnings,
        }
    }

    /// The commit the run's own branch points at now (None: no such branch, or no run on one).
    pub fn own_ref_value(&self) -> Option<String> {
        let area = self.areas.iter().find(|a| a.shared.is_some())?;
        let own = area.shared.as_deref()?;
        let bytes = area.current(own)?;
        Some(String::from_utf8_lossy(&bytes).trim().to_string())
    }

    /// Whether `shown` is the run's own branch's ref, which the engine moves.
    pub fn is_own_ref(&self, shown: &str) -> bool {
        self.areas.iter().any(|a| {
            a.shared
                .as_ref()
                .is_some_and(|own| shown.strip_prefix(a.shown.as_str()) == Some(own.as_str()))
        })
    }

    /// Takes the run's own branch as it is now into the copy: the engine moved it (a commit of
    /// its own), which is no agent's write.
    pub fn accept_own_ref(&mut self) -> std::io::Result<()> {
        let Some(area) = self.areas.iter().find(|a| a.shared.is_some()).cloned() else {
            return Ok(());
        };
        let Some(own_ref) = area.shared.clone() else {
            return Ok(());
        };
        let into = self.copy.join(area.label).join(&own_ref);
        let now = area.current(&own_ref);
        match &now {
            Some(content) => {
                // Rewritten in place, never through a link: a new file for every commit of
                // the engine's costs an inode each time (see BENCHMARKS.md).
                let in_place = {
                    use std::io::Write as _;
                    use std::os::unix::fs::OpenOptionsExt as _;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                        .open(&into)
                        .and_then(|mut file| {
                            use std::os::unix::fs::MetadataExt as _;
                            let meta = file.metadata()?;
                            if !meta.is_file() || meta.nlink() != 1 {
                                return Err(std::io::Error::other("not a file of its own"));
                            }
                            file.set_len(0)?;
                            file.write_all(content)
                        })
                };
                if in_place.is_err() {
                    if let Some(parent) = into.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    let _ = std::fs::remove_file(&into);
                    std::fs::write(&into, content)?;
                }
            }
            None => {
                let _ = std::fs::remove_file(&into);
            }
        }
        self.kept
            .retain(|k| !(k.label == area.label && k.rel == own_ref));
        if let Some(content) = now {
            self.kept.push(Kept {
                label: area.label,
                rel: own_ref.clone(),
                content,
                mode: 0o644,
                link: false,
            });
        }
        self.reported.remove(&format!("{}{own_ref}", area.shown));
        Ok(())
    }

    /// Copies the guarded file `shown` as it is now to `dest/<shown without a leading />`.
    pub fn save(&self, shown: &str, dest: &Path) -> anyhow::Result<Option<PathBuf>> {
        let (area, rel) = self
            .locate(shown)
            .ok_or_else(|| anyhow::anyhow!("`{shown}` is not guarded"))?;
        let into = dest.join(area.shown.trim_start_matches('/'));
        crate::snapshot::save_copy(&area.dir, &rel, &into)
    }

    /// Puts the guarded file `shown` back as it was at the start (deleting it if it was not
    /// there), writing new content in `temp` first; never through a link.
    pub fn restore(&mut self, shown: &str, temp: &Path) -> Result<Restored, SnapshotError> {
        let Some((area, rel)) = self.locate(shown) else {
            return Err(SnapshotError::NotAFile(shown.to_string()));
        };
        self.ensure_copy();
        let copy = self.copy.join(area.label);
        let restored = crate::snapshot::restore_copy(&area.dir, &rel, &copy, temp)?;
        self.reported.remove(shown);
        Ok(restored)
    }

    fn locate(&self, shown: &str) -> Option<(Area, String)> {
        self.areas.iter().find_map(|area| {
            let rel = shown.strip_prefix(&area.shown)?;
            let top = rel.split('/').next()?;
            let guarded = if rel.contains('/') {
                TREES.contains(&top)
            } else {
                TOP_FILES.contains(&rel)
            };
            (guarded && area.keeps(rel) && !rel.split('/').any(|p| p == ".." || p.is_empty()))
                .then(|| (area.clone(), rel.to_string()))
        })
    }
}

/// The guarded files under git directory `dir` (relative paths), symlinks included and never
/// followed.
pub(super) fn guarded_files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = TOP_FILES
        .iter()
        .filter(|f| std::fs::symlink_metadata(dir.join(f)).is_ok_and(|m| !m.is_dir()))
        .map(std::string::ToString::to_string)
        .collect();
    for tree in TREES {
        walk(dir, tree, &mut out);
    }
    out
}

/// The files under the directory `dir/rel`, as paths relative to `dir`, symlinks included and
/// never followed.
fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let mut stack = vec![rel.to_string()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(String::from) else {
                continue;
            };
            let child = format!("{rel}/{name}");
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(child),
                // A lock is a write in progress; the rename that ends it is what counts.
                Ok(_) if !name.ends_with(".lock") => out.push(child),
                _ => {}
            }
        }
    }
}

/// The ref `name`'s line in the `packed-refs` of git directory `dir`, as a loose ref file
/// would hold it.
fn packed_ref(dir: &Path, name: &str) -> Option<Vec<u8>> {
    let text = std::fs::read_to_string(dir.join("packed-refs")).ok()?;
    text.lines().find_map(|line| {
        let (id, rest) = line.split_once(' ')?;
        (rest == name && !id.starts_with('#') && !id.starts_with('^'))
            .then(|| format!("{id}\n").into_bytes())
    })
}

/// A guarded file's state: its content (a symlink's target) and executable bit, `None` when
/// it does not exist.
fn read(dir: &Path, rel: &str) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(dir.join(rel)).ok()?;
    let mut content = crate::paths::read_inside(dir, rel).ok()?;
    if meta.file_type().is_symlink() {
        content.extend_from_slice(b"\0link");
    } else if meta.permissions().mode() & 0o111 != 0 {
        content.extend_from_slice(b"\0exec");
    }
    Some(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn guarded_changes_are_seen_once_saved_and_restored() {
        let dir = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let git = root.join(".git");
        fs::create_dir_all(git.join("hooks")).unwrap();
        fs::create_dir_all(git.join("refs/heads")).unwrap();
        fs::create_dir_all(git.join("objects")).unwrap();
        fs::write(git.join("config"), "[core]\n").unwrap();
        fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::write(git.join("refs/heads/main"), "abc\n").unwrap();
        fs::write(git.join("hooks/pre-commit.sample"), "#!/bin/sh\n").unwrap();
        let mut guard = GitGuard::open(&root, &run.path().join("git-meta"))
            .unwrap()
            .unwrap();
        assert_eq!(guard.changes().changes, []);

        // Churn that is not guarded.
        fs::write(git.join("index"), "i").unwrap();
        fs::write(git.join("objects/x"), "o").unwrap();
        fs::write(git.join("refs/heads/main.lock"), "l").unwrap();
        assert_eq!(guard.changes().changes, []);

        fs::write(git.join("config"), "[core]\n\tfsmonitor = evil\n").unwrap();
        fs::write(git.join("hooks/pre-commit"), "#!/bin/sh\nevil\n").unwrap();
        fs::create_dir_all(git.join("info")).unwrap();
        fs::write(git.join("info/attributes"), "* filter=evil\n").unwrap();
        fs::remove_file(git.join("refs/heads/main")).unwrap();
        let changes = guard.changes().changes;
        let seen: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.shown.as_str(), c.change))
            .collect();
        assert_eq!(
            seen,
            [
                (".git/config", "modified"),
                (".git/hooks/pre-commit", "created"),
                (".git/info/attributes", "created"),
                (".git/refs/heads/main", "removed"),
            ]
        );
        assert_eq!(guard.changes().changes, [], "each change is reported once");
        assert!(guard.guards(".git/hooks/pre-commit") && !guard.guards(".git/index"));

        let saved = guard.save(".git/config", &run.path().join("v/1")).unwrap();
        assert_eq!(saved, Some(run.path().join("v/1/.git/config")));
        for shown in [
            ".git/config",
            ".git/hooks/pre-commit",
            ".git/refs/heads/main",
        ] {
            guard.restore(shown, run.path()).unwrap();
        }
        assert_eq!(fs::read_to_string(git.join("config")).unwrap(), "[core]\n");
        assert!(!git.join("hooks/pre-commit").exists());
        assert_eq!(
            fs::read_to_string(git.join("refs/heads/main")).unwrap(),
            "abc\n"
        );

        // Reopened by a later engine: the copy is the start's, not a new one.
        let mut again = GitGuard::open(&root, &run.path().join("git-meta"))
            .unwrap()
            .unwrap();
        let left = shown(again.changes());
        assert_eq!(left, [".git/info/attributes"]);
    }

    #[test]
    fn a_run_on_a_branch_guards_its_own_branch_and_leaves_the_users_refs_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let common = root.join(".git");
        let own = common.join("worktrees/r1");
        let wt = root.join(".orch/worktrees/r1");
        fs::create_dir_all(common.join("refs/heads/orch")).unwrap();
        fs::create_dir_all(common.join("hooks")).unwrap();
        fs::create_dir_all(&own).unwrap();
        fs::create_dir_all(&wt).unwrap();
        fs::write(common.join("config"), "[core]\n").unwrap();
        fs::write(common.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::write(common.join("refs/heads/main"), "m1\n").unwrap();
        fs::write(common.join("refs/heads/orch/r1"), "s\n").unwrap();
        fs::write(own.join("HEAD"), "ref: refs/heads/orch/r1\n").unwrap();
        fs::write(own.join("commondir"), "../..\n").unwrap();
        fs::write(wt.join(".git"), format!("gitdir: {}\n", own.display())).unwrap();
        let copy = run.path().join("git-meta");
        let mut guard = GitGuard::open_for(&wt, &copy, Some("refs/heads/orch/r1"))
            .unwrap()
            .unwrap();
        // The user commits, checks out, packs refs: theirs.
        fs::write(common.join("refs/heads/main"), "m2\n").unwrap();
        fs::write(common.join("HEAD"), "ref: refs/heads/other\n").unwrap();
        fs::write(common.join("packed-refs"), "x\n").unwrap();
        assert_eq!(guard.changes().changes, []);
        // The engine commits on the run's branch: taken as no agent's doing.
        fs::write(common.join("refs/heads/orch/r1"), "t1\n").unwrap();
        guard.accept_own_ref().unwrap();
        assert_eq!(guard.changes().changes, []);
        // The user's `git gc` packs the branch: it has not moved.
        fs::remove_file(common.join("refs/heads/orch/r1")).unwrap();
        fs::write(
            common.join("packed-refs"),
            "# pack-refs with: peeled\nm2 refs/heads/main\nt1 refs/heads/orch/r1\n",
        )
        .unwrap();
        assert_eq!(guard.changes().changes, []);
        guard.accept_own_ref().unwrap();
        assert_eq!(guard.changes().changes, []);
        // Reopened by a later engine: the copy holds the engine's tip.
        let mut again = GitGuard::open_for(&wt, &copy, Some("refs/heads/orch/r1"))
            .unwrap()
            .unwrap();
        assert_eq!(again.changes().changes, []);
        // An agent's commit on it, a hook, the worktree's HEAD: reported.
        fs::write(common.join("refs/heads/orch/r1"), "evil\n").unwrap();
        fs::write(common.join("hooks/pre-commit"), "evil\n").unwrap();
        fs::write(own.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let mut found = shown(again.changes());
        found.sort();
        let c = format!("{}/", common.display());
        let mut expected = [
            format!("{}/HEAD", own.display()),
            format!("{c}hooks/pre-commit"),
            format!("{c}refs/heads/orch/r1"),
        ];
        expected.sort();
        assert_eq!(found, expected);
    }

    /// What a look found, by the paths shown.
    fn shown(look: GitLook) -> Vec<String> {
        look.changes.into_iter().map(|c| c.shown).collect()
    }

    /// A repository with `.git/<dir>` and its guard, watching: the directories that hold
    /// them (kept for the test's length), its `.git/`, the guard and its signals.
    fn watched(
        dir: &str,
    ) -> (
        [tempfile::TempDir; 2],
        PathBuf,
        GitGuard,
        tokio::sync::mpsc::UnboundedReceiver<FsChange>,
    ) {
        let (project, run) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let root = project.path().canonicalize().unwrap();
        let git = root.join(".git");
        fs::create_dir_all(git.join(dir)).unwrap();
        fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let mut guard = GitGuard::open(&root, &run.path().join("git-meta"))
            .unwrap()
            .unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        guard.watch(tx).unwrap();
        ([project, run], git, guard, rx)
    }

    /// Waits (up to 10 s) for a `GitMeta` signal.
    fn signalled(rx: &mut tokio::sync::mpsc::UnboundedReceiver<FsChange>) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await
        });
        matches!(got, Ok(Some(change)) if change.kind == ChangeKind::GitMeta)
    }

    #[test]
    fn a_link_made_in_a_guarded_directory_is_seen_though_nothing_is_written_to_it() {
        let (_dirs, git, mut guard, mut rx) = watched("hooks");
        std::os::unix::fs::symlink("/bin/true", git.join("hooks/pre-commit")).unwrap();
        assert!(signalled(&mut rx), "a link made (no close-write follows)");
        assert_eq!(shown(guard.changes_seen()), [".git/hooks/pre-commit"]);
    }

    #[test]
    fn a_guarded_directory_made_during_the_run_is_watched_from_the_next_look() {
        let (_dirs, git, mut guard, mut rx) = watched("refs");
        fs::create_dir(git.join("info")).unwrap();
        assert!(signalled(&mut rx), "info/ made");
        assert_eq!(guard.changes_seen().changes, []);
        fs::write(git.join("info/attributes"), "* filter=evil\n").unwrap();
        assert!(signalled(&mut rx), "a file written in the new info/");
        // The look at what was seen finds it, as the look at everything would.
        assert_eq!(shown(guard.changes_seen()), [".git/info/attributes"]);
        fs::write(git.join("refs/main"), "x\n").unwrap();
        assert!(signalled(&mut rx), "a ref written");
        assert_eq!(
            shown(guard.changes_seen()),
            [".git/refs/main"],
            "only what changed since"
        );
    }
}
