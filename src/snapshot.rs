//! The project as it was when the run started, kept as a git tree object: cheap to take
//! (only files changed since the last `git add` are hashed), cheap to keep (objects are
//! shared), and it works the same for projects that are not git repositories.
//!
//! git runs in a private bare repository at `<store>/git`, with a private index
//! (`<store>/index`), the project as its work tree, and orch's hardened git command: the
//! project's `.git/` is only read as files (its index, to seed ours so unchanged files are not
//! rehashed; its object directory, borrowed through `objects/info/alternates`), never by git,
//! so its config, hooks and attributes cannot make orch run anything. New objects go into the
//! private repository; the user's index, HEAD, refs and objects are never written. No filter
//! runs, ever: files are hashed and restored byte for byte. Nothing needs a git identity: no
//! commit is ever made.
//!
//! All methods block (they run git): call them from `spawn_blocking` in async code.

mod copy;
mod git;
#[cfg(test)]
mod tests;

pub use copy::{restore_copy, save_copy};

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::git::RepoDirs;
use crate::paths::{self, PathProblem};
use git::{Git, Store};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(
        "git not found: install git; orch needs it to snapshot the project for \
         ownership.on_violation: revert"
    )]
    GitNotFound,
    #[error("`git {command}` failed in {}: {stderr}", root.display())]
    Git {
        command: String,
        root: PathBuf,
        stderr: String,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("snapshot `{tree}` is not in the store {}: was it taken for this project?", store.display())]
    UnknownTree { tree: String, store: PathBuf },
    #[error("`{path}` {problem}")]
    BadPath { path: String, problem: PathProblem },
    #[error("`{0}` is not a file: only files can be restored")]
    NotAFile(String),
    #[error(
        "`{path}` is inside `{repo}`, a nested git repository: the snapshot records only \
         which commit it was at, not its files"
    )]
    InsideSubmodule { path: String, repo: String },
    #[error("git answered something unexpected: {0}")]
    Unexpected(String),
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`Snapshot::restore`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// Written back with its content and executable bit at the start.
    Rewritten,
    /// Deleted: it did not exist at the start.
    Deleted,
    /// Already as it was.
    Unchanged,
}

/// How a file differs from the start, for the final sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SnapshotChange {
    Added,
    Modified,
    Deleted,
}

/// The start-of-run state of a project.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(crate) git: Git,
    tree: String,
    /// Directory listings of the tree read so far, by directory ("" is the root): the tree
    /// never changes, so each is read with git once (see `entry`). Shared by clones.
    listings: Arc<Mutex<HashMap<String, Arc<Listing>>>>,
    /// Original contents read so far, by path: see `original`. Shared by clones.
    contents: Arc<Mutex<Contents>>,
}

/// A file's content and git mode at the start.
type Original = (Arc<Vec<u8>>, u32);

/// The original contents kept, at most `CONTENT_BUDGET` bytes of them: an agent that rewrites
/// every file of a big project must not make the engine hold the whole project in memory.
#[derive(Debug, Default)]
struct Contents {
    by_path: HashMap<String, Original>,
    bytes: usize,
}

/// What the kept contents may weigh in all. Small in unit tests, so that they reach it.
const CONTENT_BUDGET: usize = if cfg!(test) { 64 << 10 } else { 64 << 20 };
/// A file larger than this is read from git each time it is asked about, never kept.
const CONTENT_MAX: usize = CONTENT_BUDGET / 8;

impl Contents {
    fn get(&self, rel: &str) -> Option<Original> {
        self.by_path.get(rel).cloned()
    }

    /// Keeps `content` unless it is too big; when the budget would be exceeded, what was
    /// kept goes first (all of it: simple, and rare enough not to need an LRU).
    fn keep(&mut self, rel: String, content: &[u8], mode: u32) {
        if content.len() > CONTENT_MAX {
            return;
        }
        if self.bytes + content.len() > CONTENT_BUDGET {
            self.by_path.clear();
            self.bytes = 0;
        }
        self.bytes += content.len();
        if let Some((old, _)) = self.by_path.insert(rel, (Arc::new(content.to_vec()), mode)) {
            self.bytes -= old.len();
        }
    }
}

/// One directory's `ls-tree` entries by full path: mode, kind (blob, tree, commit), object id.
/// A map, as a directory of the tree may hold thousands of entries.
type Listing = HashMap<String, (u32, String, String)>;

const KIND_FILE: &str = "kind";
/// `.git/info/exclude` as it was when the snapshot was taken (empty: there was none).
const EXCLUDE_FILE: &str = "exclude-at-start";

impl Snapshot {
    /// Records every file under `root` that git would not ignore (`.git/`, `.orch/` and the
    /// store excluded), keeping its working state in `store` (created if missing).
    pub fn take(root: &Path, store: &Path) -> Result<Snapshot, SnapshotError> {
        let root = root.canonicalize().map_err(io_error(root))?;
        std::fs::create_dir_all(store).map_err(io_error(store))?;
        let store = store.canonicalize().map_err(io_error(store))?;
        let repo = RepoDirs::of(&root);
        let kind = if repo.is_some() {
            Store::Repo
        } else {
            Store::Private
        };
        let sha256 = repo.as_ref().is_some_and(RepoDirs::is_sha256);
        let git = Git {
            root,
            store,
            kind,
            sha256,
        };
        clear_stale_lock(&git)?;
        git.init_private(repo.as_ref())?;
        if let Some(repo) = &repo {
            seed_index(&git, repo)?;
        }
        let marker = git.store.join(KIND_FILE);
        let text = if kind == Store::Repo {
            "repo\n"
        } else {
            "private\n"
        };
        std::fs::write(&marker, text).map_err(io_error(&marker))?;
        let exclude = git.store.join(EXCLUDE_FILE);
        let content = crate::watch::Ignore::exclude_now(&git.root).unwrap_or_default();
        std::fs::write(&exclude, content).map_err(io_error(&exclude))?;
        let tree = match write_tree(&git) {
            // An index git cannot read without the project's repository (a split index): start
            // from an empty one; only the first snapshot costs more.
            Err(SnapshotError::Git { .. }) if git.kind == Store::Repo => {
                let index = git.index();
                std::fs::remove_file(&index).map_err(io_error(&index))?;
                write_tree(&git)?
            }
            other => other?,
        };
        Ok(Snapshot::new(git, tree))
    }

    /// Reopens a snapshot taken earlier (by an engine that has since restarted).
    pub fn load(root: &Path, store: &Path, tree_id: &str) -> Result<Snapshot, SnapshotError> {
        let root = root.canonicalize().map_err(io_error(root))?;
        let store = store.canonicalize().map_err(io_error(store))?;
        let kind = match std::fs::read_to_string(store.join(KIND_FILE)) {
            Ok(text) if text.trim() == "repo" => Store::Repo,
            Ok(_) => Store::Private,
            Err(_) if store.join("git").is_dir() => Store::Private,
            Err(_) => Store::Repo,
        };
        let repo = RepoDirs::of(&root).filter(|_| kind == Store::Repo);
        let sha256 = repo.as_ref().is_some_and(RepoDirs::is_sha256);
        let git = Git {
            root,
            store,
            kind,
            sha256,
        };
        let unknown = || SnapshotError::UnknownTree {
            tree: tree_id.to_string(),
            store: git.store.clone(),
        };
        if tree_id.len() < 40 || !tree_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        git.init_private(repo.as_ref())?;
        match git.run(false, ["cat-file", "-t", tree_id]) {
            Ok(out) if out.trim_ascii() == b"tree" => {}
            Ok(_) | Err(SnapshotError::Git { .. }) => return Err(unknown()),
            Err(err) => return Err(err),
        }
        clear_stale_lock(&git)?;
        Ok(Snapshot::new(git, tree_id.to_string()))
    }

    fn new(git: Git, tree: String) -> Snapshot {
        Snapshot {
            git,
            tree,
            listings: Arc::default(),
            contents: Arc::default(),
        }
    }

    /// The git tree object id: what [`Snapshot::load`] needs to reopen it.
    pub fn tree_id(&self) -> &str {
        &self.tree
    }

    pub fn root(&self) -> &Path {
        &self.git.root
    }

    pub fn store(&self) -> &Path {
        &self.git.store
    }

    /// The content and git mode (0o100644, 0o100755 or 0o120000 for a symlink, whose
    /// content is its target) of `rel` at the start; `None` if it did not exist then.
    ///
    /// Each file's content is read from git once and kept (the tree never changes), within
    /// a budget (see `Contents`): the engine asks on every change it cannot attribute, and a
    /// tool that rewrites a file unchanged, again and again, must not cost a git process
    /// each time.
    pub fn original(&self, rel: &str) -> Result<Option<(Vec<u8>, u32)>, SnapshotError> {
        let rel = checked(rel)?;
        let known = self
            .contents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&rel);
        if let Some((content, mode)) = known {
            return Ok(Some((content.to_vec(), mode)));
        }
        let Some((content, mode)) = self.read_original(&rel)? else {
            return Ok(None);
        };
        self.contents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keep(rel, &content, mode);
        Ok(Some((content, mode)))
    }

    /// How many bytes of original contents are kept now.
    #[cfg(test)]
    pub(crate) fn kept_bytes(&self) -> usize {
        self.contents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .bytes
    }

    fn read_original(&self, rel: &str) -> Result<Option<(Vec<u8>, u32)>, SnapshotError> {
        let rel = rel.to_string();
        let Some((mode, kind, oid)) = self.entry(&rel)? else {
            return Ok(None);
        };
        if kind != "blob" {
            return Err(SnapshotError::NotAFile(rel));
        }
        // The bytes as they were hashed: no filter ran then, none runs now (a smudge filter
        // is a command the project's attributes could name).
        let content = self.git.run(false, ["cat-file", "blob", &oid])?;
        Ok(Some((content, mode)))
    }

    /// The tree's entry for `rel`, found directory by directory from the root, so that a
    /// submodule among its ancestors (which hides what is below it) is noticed. Each
    /// directory's listing is read once: a path never seen before (a new file, the usual
    /// violation) then costs no git process, where it cost one (~2 ms of the engine's loop)
    /// every time (see BENCHMARKS.md).
    fn entry(&self, rel: &str) -> Result<Option<(u32, String, String)>, SnapshotError> {
        let mut dir = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let path = if dir.is_empty() {
                (*part).to_string()
            } else {
                format!("{dir}/{part}")
            };
            let listing = self.listing(&dir)?;
            let Some((mode, kind, oid)) = listing.get(&path) else {
                return Ok(None);
            };
            if i + 1 == parts.len() {
                return Ok(Some((*mode, kind.clone(), oid.clone())));
            }
            match kind.as_str() {
                "tree" => dir = path,
                "commit" => {
                    return Err(SnapshotError::InsideSubmodule {
                        path: rel.to_string(),
                        repo: path,
                    });
                }
                // A file where a directory would be: nothing is below it.
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The entries of directory `dir` of the tree ("" is the root), read once.
    fn listing(&self, dir: &str) -> Result<Arc<Listing>, SnapshotError> {
        let cached = self
            .listings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(dir)
            .cloned();
        if let Some(listing) = cached {
            return Ok(listing);
        }
        let mut args = vec!["ls-tree", "-z", "--full-tree", &self.tree];
        let inside = format!("{dir}/");
        if !dir.is_empty() {
            args.extend(["--", inside.as_str()]);
        }
        let listing: Listing = entries(&self.git.run_literal(&args)?)?
            .into_iter()
            .map(|(mode, kind, oid, path)| (path, (mode, kind, oid)))
            .collect();
        let listing = Arc::new(listing);
        self.listings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(dir.to_string(), listing.clone());
        Ok(listing)
    }

    /// Puts `rel` back as it was at the start (content and executable bit), or deletes it if
    /// it did not exist then. New content is written beside the store and renamed into
    /// place, so a writer still holding the file open cannot corrupt it.
    pub fn restore(&self, rel: &str) -> Result<Restored, SnapshotError> {
        let bad = |problem| SnapshotError::BadPath {
            path: rel.to_string(),
            problem,
        };
        // The file itself may be a link out (it is replaced, never followed); a directory
        // above it may not.
        let rel = paths::normalize(rel).map_err(bad)?;
        if let Some((parent, _)) = rel.rsplit_once('/') {
            paths::check(&self.git.root, parent).map_err(bad)?;
        }
        let original = self.original(&rel)?;
        copy::put_back(&self.git.root, &self.git.store, &rel, original)
    }

    /// The ignore rules of the start, for [`crate::watch::Ignore::freeze`]: each directory's
    /// `.gitignore` as this snapshot holds it, and `.git/info/exclude` as it was (as it is
    /// now for a snapshot taken before orch kept it).
    pub fn start_rules(&self) -> (crate::watch::StartRules, Option<Vec<u8>>) {
        let snapshot = self.clone();
        let gitignore = Box::new(move |dir: &str| {
            let file = if dir.is_empty() {
                ".gitignore".to_string()
            } else {
                format!("{dir}/.gitignore")
            };
            // git does not follow a symlinked .gitignore.
            match snapshot.original(&file) {
                Ok(Some((content, mode))) if mode != 0o120000 => Some(content),
                _ => None,
            }
        });
        let exclude = std::fs::read(self.git.store.join(EXCLUDE_FILE))
            .ok()
            .or_else(|| crate::watch::Ignore::exclude_now(&self.git.root));
        (gitignore, exclude)
    }

    /// What git ignores now and was not there at the start: files, and directories (ending
    /// in `/`) of which git ignores all. The rules may have changed since the start (an agent
    /// planting a `.gitignore`): the caller judges each by the start's rules, which
    /// [`Snapshot::changed_since`] cannot do, since `git add` goes by today's.
    pub fn ignored_now(&self) -> Result<Vec<String>, SnapshotError> {
        let out = self.git.run(
            true,
            [
                "ls-files",
                "-z",
                "--others",
                "--ignored",
                "--exclude-standard",
                "--directory",
            ],
        )?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|f| !f.is_empty())
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect())
    }

    /// Makes `rel` what `content` says (absent, or content and git mode, as
    /// [`Snapshot::original`] gives them): how a file is put back as a finished task left
    /// it. Parents are recreated; the new content is renamed into place.
    pub fn restore_as(
        &self,
        rel: &str,
        content: Option<(Vec<u8>, u32)>,
    ) -> Result<Restored, SnapshotError> {
        // The directories above must stay inside the project; the file itself may be a link
        // out (an agent's), which put_back replaces rather than writes through.
        let bad = |problem| SnapshotError::BadPath {
            path: rel.to_string(),
            problem,
        };
        let rel = paths::normalize(rel).map_err(bad)?;
        if let Some((parent, _)) = rel.rsplit_once('/') {
            paths::check(&self.git.root, parent).map_err(bad)?;
        }
        copy::put_back(&self.git.root, &self.git.store, &rel, content)
    }

    /// Every file added, modified or deleted since the start (no rename detection), for the
    /// final sweep. Goes through the private index, so it costs about one `git status`.
    pub fn changed_since(&self) -> Result<Vec<(String, SnapshotChange)>, SnapshotError> {
        let now = write_tree(&self.git)?;
        if now == self.tree {
            return Ok(Vec::new());
        }
        let out = self.git.run(
            false,
            [
                "diff-tree",
                "-r",
                "-z",
                "--no-renames",
                "--no-ext-diff",
                "--no-textconv",
                "--name-status",
                &self.tree,
                &now,
            ],
        )?;
        let mut fields = out.split(|b| *b == 0).filter(|f| !f.is_empty());
        let mut changes = Vec::new();
        while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
            let change = match status.first() {
                Some(b'A') => SnapshotChange::Added,
                Some(b'D') => SnapshotChange::Deleted,
                Some(b'M' | b'T') => SnapshotChange::Modified,
                _ => {
                    return Err(SnapshotError::Unexpected(format!(
                        "diff-tree status `{}`",
                        String::from_utf8_lossy(status)
                    )));
                }
            };
            changes.push((String::from_utf8_lossy(path).into_owned(), change));
        }
        Ok(changes)
    }
}

fn checked(rel: &str) -> Result<String, SnapshotError> {
    paths::normalize(rel)
        .map(paths::ProjectPath::into_string)
        .map_err(|problem| SnapshotError::BadPath {
            path: rel.to_string(),
            problem,
        })
}

/// `git add -A` of the whole tree into the private index, then `git write-tree`.
fn write_tree(git: &Git) -> Result<String, SnapshotError> {
    let mut args = vec!["add".to_string(), "-A".into(), "--".into(), ".".into()];
    let mut excluded = vec![".orch".to_string()];
    if let Ok(inside) = git.store.strip_prefix(&git.root)
        && !inside.as_os_str().is_empty()
    {
        excluded.push(inside.to_string_lossy().into_owned());
    }
    // git refuses a pathspec that names an ignored path, even to exclude it: exclude only
    // what .gitignore does not already.
    for path in excluded {
        if git
            .run(false, ["check-ignore", "-q", "--", path.as_str()])
            .is_err()
        {
            args.push(format!(":(exclude){path}"));
        }
    }
    git.run(true, &args)?;
    let out = git.run(true, ["write-tree"])?;
    let tree = String::from_utf8_lossy(&out).trim().to_string();
    if tree.len() < 40 || !tree.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SnapshotError::Unexpected(format!(
            "write-tree printed `{tree}`"
        )));
    }
    Ok(tree)
}

/// Copies the repository's index to the private one, keeping its modification time: git
/// trusts an entry's cached stat data only if the entry is older than the index file. The
/// file is read, never handed to git in its place.
fn seed_index(git: &Git, repo: &RepoDirs) -> Result<(), SnapshotError> {
    let real = repo.git_dir.join("index");
    let private = git.index();
    let meta = match std::fs::symlink_metadata(&real) {
        Ok(meta) if meta.is_file() => meta,
        _ => return forget_index(&private),
    };
    std::fs::copy(&real, &private).map_err(io_error(&private))?;
    let modified = meta.modified().map_err(io_error(&real))?;
    std::fs::File::options()
        .write(true)
        .open(&private)
        .and_then(|f| f.set_modified(modified))
        .map_err(io_error(&private))
}

/// A repository with nothing added yet: start from an empty index.
fn forget_index(private: &Path) -> Result<(), SnapshotError> {
    match std::fs::remove_file(private) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_error(private)(err)),
        _ => Ok(()),
    }
}

/// A git killed while holding the private index's lock (the engine died) leaves it behind;
/// nobody else uses that index.
fn clear_stale_lock(git: &Git) -> Result<(), SnapshotError> {
    let lock = git.store.join("index.lock");
    match std::fs::remove_file(&lock) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_error(&lock)(err)),
        _ => Ok(()),
    }
}

/// The entries of `ls-tree -z` output (`<mode> <type> <oid>\t<path>\0`) as
/// `(mode, type, oid, path)`.
fn entries(listing: &[u8]) -> Result<Vec<(u32, String, String, String)>, SnapshotError> {
    let mut out = Vec::new();
    for record in listing.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let text = String::from_utf8_lossy(record);
        let bad = || SnapshotError::Unexpected(format!("ls-tree line `{text}`"));
        let (meta, path) = text.split_once('\t').ok_or_else(bad)?;
        let mut parts = meta.split(' ');
        let (Some(mode), Some(kind), Some(oid)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let mode = u32::from_str_radix(mode, 8).map_err(|_| bad())?;
        out.push((mode, kind.to_string(), oid.to_string(), path.to_string()));
    }
    Ok(out)
}
