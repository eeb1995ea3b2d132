//! Which project paths the ownership watcher leaves alone: `.git/` and `.orch/`, whatever git
//! ignores (nested `.gitignore` files, `.git/info/exclude`, the user's global excludes file),
//! and the extra globs of `ownership.ignore`.
//!
//! One matcher serves both the start-up walk and every later event, so the two can never
//! disagree about a path. Nested `.gitignore` files are read lazily, the first time a path
//! below their directory is asked about, so building an `Ignore` costs a few file reads no
//! matter how large the project is.
//!
//! Once a run's start snapshot exists, the rules are frozen to it ([`Ignore::freeze`]): each
//! `.gitignore` is read as the snapshot holds it, and `.git/info/exclude` as it was at the
//! start. A `.gitignore` an agent plants or changes mid-run then hides nothing; it is a change
//! to be judged like any other.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Whether `name` is the temporary file of an atomic write, which lives for milliseconds and
/// is renamed onto the file being written: `<name>.tmp.<pid>.<12 hex digits>`, as Claude
/// Code's Write tool makes them. Its rename into place is the change that counts; the
/// temporary file itself is nobody's violation.
pub(super) fn is_atomic_write_temp(name: &str) -> bool {
    let mut parts = name.rsplitn(4, '.');
    let (Some(random), Some(pid), Some("tmp"), Some(base)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !base.is_empty()
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && random.len() == 12
        && random.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A bad glob in `ownership.ignore`.
#[derive(Debug, thiserror::Error)]
#[error("ownership.ignore: `{glob}` is not a valid glob: {reason}")]
pub struct IgnoreError {
    pub glob: String,
    pub reason: String,
}

/// The ignore rules of one project. Cloning gives an independent copy (its own cache), so a
/// clone handed to a watcher shares nothing mutable with the original, except that freezing
/// one freezes all (the rules of a run's start are the same for all).
pub struct Ignore {
    fixed: Arc<Fixed>,
    /// `.gitignore` of each directory asked about so far, keyed by its relative path ("" is
    /// the root); `None` when the directory has none. The flag says whether it was read
    /// from the frozen rules: one read before the freeze is read again.
    per_dir: RwLock<HashMap<String, DirRules>>,
}

/// A directory's rules (none without a `.gitignore`), and whether they are the frozen ones.
type DirRules = (Option<Arc<Gitignore>>, bool);

/// The content of a directory's `.gitignore` at the start of the run (the directory
/// relative to the root, "" for the root); `None` when it had none.
pub type StartRules = Box<dyn Fn(&str) -> Option<Vec<u8>> + Send + Sync>;

struct Frozen {
    gitignore: StartRules,
    exclude: Gitignore,
}

struct Fixed {
    root: PathBuf,
    extra: Gitignore,
    exclude: Gitignore,
    global: Gitignore,
    frozen: OnceLock<Frozen>,
}

impl Clone for Ignore {
    fn clone(&self) -> Self {
        let cache = self.per_dir.read().map(|m| m.clone()).unwrap_or_default();
        Ignore {
            fixed: self.fixed.clone(),
            per_dir: RwLock::new(cache),
        }
    }
}

impl std::fmt::Debug for Ignore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ignore")
            .field("root", &self.fixed.root)
            .finish_non_exhaustive()
    }
}

impl Ignore {
    /// Rules for the project at `root`, plus `extra` globs (gitignore syntax: `*.log` matches
    /// at any depth, `target/**` everything under the root's `target/`).
    pub fn new(root: &Path, extra: &[String]) -> Result<Ignore, IgnoreError> {
        let mut builder = GitignoreBuilder::new(root);
        for glob in extra {
            builder.add_line(None, glob).map_err(|err| IgnoreError {
                glob: glob.clone(),
                reason: err.to_string(),
            })?;
        }
        let extra = builder.build().map_err(|err| IgnoreError {
            glob: extra.join(", "),
            reason: err.to_string(),
        })?;
        let exclude = exclude_file(root)
            .and_then(|file| load_file(root, &file))
            .unwrap_or_else(Gitignore::empty);
        // A broken global excludes file is the user's git problem; git itself skips bad lines.
        let (global, _) = GitignoreBuilder::new(root).build_global();
        Ok(Ignore {
            fixed: Arc::new(Fixed {
                root: root.to_path_buf(),
                extra,
                exclude,
                global,
                frozen: OnceLock::new(),
            }),
            per_dir: RwLock::new(HashMap::new()),
        })
    }

    /// From now on (for every clone), each directory's `.gitignore` is what `gitignore`
    /// says it was at the start, and `.git/info/exclude` is `exclude` (its content at the
    /// start). A second call changes nothing: the start does not move.
    pub fn freeze(&self, gitignore: StartRules, exclude: Option<&[u8]>) {
        let root = &self.fixed.root;
        let exclude = exclude.map_or_else(Gitignore::empty, |text| {
            from_text(root, root.join(".git/info/exclude"), text)
        });
        let _ = self.fixed.frozen.set(Frozen { gitignore, exclude });
    }

    /// The content of `.git/info/exclude` now, to keep as the start's.
    pub fn exclude_now(root: &Path) -> Option<Vec<u8>> {
        std::fs::read(exclude_file(root)?).ok()
    }

    pub fn root(&self) -> &Path {
        &self.fixed.root
    }

    /// Whether `rel` (relative, '/'-separated) is ignored, itself or through an ancestor
    /// directory. `is_dir` says whether `rel` is a directory (`build/` only matches those).
    pub fn is_ignored(&self, rel: &str, is_dir: bool) -> bool {
        let rel = rel.trim_start_matches("./").trim_end_matches('/');
        if rel.is_empty() {
            return false;
        }
        let mut end = 0;
        loop {
            let next = rel[end..].find('/').map(|i| end + i);
            let prefix = &rel[..next.unwrap_or(rel.len())];
            let prefix_is_dir = next.is_some() || is_dir;
            if self.is_ignored_entry(prefix, prefix_is_dir) {
                return true;
            }
            match next {
                Some(i) => end = i + 1,
                None => return false,
            }
        }
    }

    /// Whether `rel` itself is ignored, assuming its parent directory is not: the check a
    /// walker needs for each entry it meets.
    pub(crate) fn is_ignored_entry(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if name == ".git" || rel == ".orch" || is_atomic_write_temp(name) {
            return true;
        }
        if self.fixed.extra.matched(rel, is_dir).is_ignore() {
            return true;
        }
        // The deepest .gitignore decides first, as in git.
        let mut dir = parent(rel);
        loop {
            if let Some(gi) = self.dir_rules(dir) {
                let below = if dir.is_empty() {
                    rel
                } else {
                    &rel[dir.len() + 1..]
                };
                match gi.matched(below, is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
            if dir.is_empty() {
                break;
            }
            dir = parent(dir);
        }
        let exclude = match self.fixed.frozen.get() {
            Some(frozen) => &frozen.exclude,
            None => &self.fixed.exclude,
        };
        for gi in [exclude, &self.fixed.global] {
            match gi.matched(rel, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }

    /// Forgets the cached `.gitignore` of directory `dir` (relative), so that the next
    /// question re-reads it: called when that file changes.
    pub(crate) fn forget_dir(&self, dir: &str) {
        if self.fixed.frozen.get().is_some() {
            return; // the start's rules do not change
        }
        if let Ok(mut map) = self.per_dir.write() {
            map.remove(dir);
        }
    }

    /// Forgets the cached rules of `dir` and every directory below it: called when that
    /// tree moves away or is deleted, so a new tree at the same place is read afresh.
    pub(crate) fn forget_tree(&self, dir: &str) {
        if self.fixed.frozen.get().is_some() {
            return;
        }
        if let Ok(mut map) = self.per_dir.write() {
            map.retain(|cached, _| {
                !(dir.is_empty()
                    || cached == dir
                    || cached
                        .strip_prefix(dir)
                        .is_some_and(|rest| rest.starts_with('/')))
            });
        }
    }

    fn dir_rules(&self, dir: &str) -> Option<Arc<Gitignore>> {
        let frozen = self.fixed.frozen.get();
        if let Ok(map) = self.per_dir.read()
            && let Some((found, was_frozen)) = map.get(dir)
            && *was_frozen == frozen.is_some()
        {
            return found.clone();
        }
        let abs = if dir.is_empty() {
            self.fixed.root.clone()
        } else {
            self.fixed.root.join(dir)
        };
        let file = abs.join(".gitignore");
        let loaded = match frozen {
            Some(frozen) => (frozen.gitignore)(dir).map(|text| from_text(&abs, file, &text)),
            // git does not follow a symlinked .gitignore inside the work tree.
            None => std::fs::symlink_metadata(&file)
                .ok()
                .filter(std::fs::Metadata::is_file)
                .and_then(|_| load_file(&abs, &file)),
        };
        let loaded = loaded.filter(|gi| !gi.is_empty()).map(Arc::new);
        if let Ok(mut map) = self.per_dir.write() {
            map.insert(dir.to_string(), (loaded.clone(), frozen.is_some()));
        }
        loaded
    }
}

fn parent(rel: &str) -> &str {
    rel.rfind('/').map_or("", |i| &rel[..i])
}

fn load_file(root: &Path, file: &Path) -> Option<Gitignore> {
    let mut builder = GitignoreBuilder::new(root);
    // Lines git would reject are skipped, as git does; only an unreadable file loses all.
    builder.add(file);
    builder.build().ok()
}

/// Rules from `text`, the content `file` had; lines git would reject are skipped.
fn from_text(root: &Path, file: PathBuf, text: &[u8]) -> Gitignore {
    let mut builder = GitignoreBuilder::new(root);
    for line in String::from_utf8_lossy(text).lines() {
        let _ = builder.add_line(Some(file.clone()), line);
    }
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

/// `.git/info/exclude`, also for linked worktrees and submodules, whose `.git` is a file
/// naming the real git directory (and, for worktrees, a `commondir` holding `info/`).
fn exclude_file(root: &Path) -> Option<PathBuf> {
    let dot_git = root.join(".git");
    let meta = std::fs::metadata(&dot_git).ok()?;
    let git_dir = if meta.is_dir() {
        dot_git
    } else {
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
        root.join(target)
    };
    let common = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(text) => git_dir.join(text.trim()),
        Err(_) => git_dir,
    };
    Some(common.join("info").join("exclude"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn git_rules_nested_rules_and_extra_globs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(
            root.join(".gitignore"),
            "target/\n*.o\n!keep.o\n/only-root.txt\n",
        )
        .unwrap();
        fs::create_dir_all(root.join("sub/deep")).unwrap();
        fs::write(root.join("sub/.gitignore"), "gen/\n!important.o\n").unwrap();
        fs::create_dir_all(root.join(".git/info")).unwrap();
        fs::write(root.join(".git/info/exclude"), "secret.txt\n").unwrap();
        let rules = Ignore::new(root, &["*.log".into(), "vendor/**".into()]).unwrap();

        assert!(rules.is_ignored(".git", true));
        assert!(rules.is_ignored(".git/config", false));
        assert!(rules.is_ignored(".orch/runs/x", false));
        assert!(!rules.is_ignored("sub/.orch", false));
        assert!(rules.is_ignored("target", true));
        assert!(rules.is_ignored("target/debug/x", false));
        assert!(!rules.is_ignored("target", false), "dir-only pattern");
        assert!(rules.is_ignored("a/b.o", false));
        assert!(!rules.is_ignored("a/keep.o", false));
        assert!(!rules.is_ignored("sub/important.o", false));
        assert!(rules.is_ignored("sub/deep/gen/x.rs", false));
        assert!(!rules.is_ignored("gen/x.rs", false));
        assert!(rules.is_ignored("only-root.txt", false));
        assert!(!rules.is_ignored("sub/only-root.txt", false));
        assert!(rules.is_ignored("secret.txt", false));
        assert!(rules.is_ignored("a/b/c.log", false));
        assert!(rules.is_ignored("vendor/x/y.rs", false));
        assert!(!rules.is_ignored("src/main.rs", false));
        assert!(!rules.is_ignored("", true));
    }

    #[test]
    fn not_a_git_repo_still_honours_gitignore() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".gitignore"), "node_modules/\n").unwrap();
        let rules = Ignore::new(dir.path(), &[]).unwrap();
        assert!(rules.is_ignored("node_modules/x/index.js", false));
        assert!(!rules.is_ignored("index.js", false));
    }

    #[test]
    fn changed_gitignore_is_reread_after_forget() {
        let dir = tempfile::tempdir().unwrap();
        let rules = Ignore::new(dir.path(), &[]).unwrap();
        assert!(!rules.is_ignored("x.tmp", false));
        fs::write(dir.path().join(".gitignore"), "*.tmp\n").unwrap();
        rules.forget_dir("");
        assert!(rules.is_ignored("x.tmp", false));
    }

    #[test]
    fn frozen_rules_are_the_starts_whatever_the_tree_says_now() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src")).unwrap();
        fs::create_dir_all(root.join(".git/info")).unwrap();
        fs::write(root.join(".gitignore"), "*.log\n").unwrap();
        let rules = Ignore::new(root, &[]).unwrap();
        let watcher_copy = rules.clone();
        assert!(rules.is_ignored("a.log", false));
        // Asked before the freeze: cached, and read again after it.
        assert!(!watcher_copy.is_ignored("src/a.rs", false));
        rules.freeze(
            Box::new(|dir| (dir.is_empty()).then(|| b"*.log\n".to_vec())),
            Some(b"secret\n"),
        );
        fs::write(root.join("src/.gitignore"), "*\n").unwrap();
        fs::write(root.join(".gitignore"), "").unwrap();
        fs::write(root.join(".git/info/exclude"), "*.rs\n").unwrap();
        for copy in [&rules, &watcher_copy] {
            copy.forget_dir("src");
            copy.forget_tree("");
            assert!(
                !copy.is_ignored("src/a.rs", false),
                "a planted .gitignore hides nothing"
            );
            assert!(!copy.is_ignored("src/.gitignore", false));
            assert!(
                copy.is_ignored("a.log", false),
                "the start's rules still hold"
            );
            assert!(copy.is_ignored("secret", false), "the start's exclude file");
        }
        assert!(!rules.clone().is_ignored("x.rs", false));
    }

    #[test]
    fn atomic_write_temporaries_are_ignored() {
        assert!(is_atomic_write_temp("a.sh.tmp.24198.eaa66a12b4b7"));
        assert!(is_atomic_write_temp("overview.md.tmp.1.0123456789ab"));
        assert!(!is_atomic_write_temp("a.tmp.24198.eaa66a12b4b"));
        assert!(!is_atomic_write_temp("a.tmp.x1.eaa66a12b4b7"));
        assert!(!is_atomic_write_temp(".tmp.1.eaa66a12b4b7"));
        assert!(!is_atomic_write_temp("notes.tmp"));
        let dir = tempfile::tempdir().unwrap();
        let ignore = Ignore::new(dir.path(), &[]).unwrap();
        assert!(ignore.is_ignored("src/a.rs.tmp.77.eaa66a12b4b7", false));
        assert!(!ignore.is_ignored("src/a.rs", false));
    }

    #[test]
    fn bad_extra_glob_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Ignore::new(dir.path(), &["a{b".into()]).unwrap_err();
        assert!(err.to_string().contains("`a{b`"), "{err}");
    }
}
