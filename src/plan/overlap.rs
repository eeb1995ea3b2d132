//! Paths of a plan that are the same file, or a file and a directory, although their text
//! differs: `Src/A.rs` and `src/a.rs`, or `café` in NFC and NFD, are one file on macOS's
//! default file system (and the first pair on Windows'); `a/b` owned as a file leaves no
//! room for `a/b/c`. Either way two owners would write one place, or one of them cannot
//! write at all, so the plan is refused with both owners and both paths named.
//!
//! Paths that are exactly equal are not this module's business: validation reports a file
//! owned twice on its own.

use std::collections::HashMap;

use crate::paths::fold_key;

/// Who holds a path: a task (by id) or the plan's spec list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Holder {
    Task(String),
    Spec,
}

fn describe(holder: &Holder, path: &str) -> String {
    match holder {
        Holder::Task(id) => format!("task {id}'s `{path}`"),
        Holder::Spec => format!("spec `{path}`"),
    }
}

/// What is wrong between two paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Overlap {
    /// The two differ only by letter case or Unicode normalization.
    SameFile,
    /// `file` is a file of one holder and a directory of the other's `below`.
    FileIsDirectory,
}

/// One clash: `(holder, path)` of each side, and which kind. For `FileIsDirectory` the first
/// side holds the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Clash {
    pub kind: Overlap,
    pub first: (Holder, String),
    pub second: (Holder, String),
}

impl Clash {
    pub(super) fn message(&self) -> String {
        let ((h1, p1), (h2, p2)) = (&self.first, &self.second);
        let second = match h2 {
            Holder::Task(_) if h1 == h2 => format!("its `{p2}`"),
            _ => describe(h2, p2),
        };
        let both = format!("{} and {second}", describe(h1, p1));
        match self.kind {
            Overlap::SameFile => format!(
                "{both}: they differ only by letter case or Unicode normalization, so they \
                 are the same file on macOS (and, for case, Windows): spell them the same \
                 way, or give them different names"
            ),
            Overlap::FileIsDirectory => format!(
                "{both}: `{p1}` cannot be both a file and the directory `{p2}` lies in: \
                 rename one of them"
            ),
        }
    }
}

/// Every clash among `paths` (normalized, each with its holder), each pair once, in the order
/// the paths were given.
pub(super) fn clashes(paths: &[(Holder, String)]) -> Vec<Clash> {
    let keys: Vec<String> = paths.iter().map(|(_, p)| fold_key(p)).collect();
    let mut found = Vec::new();

    // Same key, different text.
    let mut first_with_key: HashMap<&str, usize> = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        match first_with_key.get(key.as_str()) {
            Some(&j) if paths[j].1 != paths[i].1 => found.push(Clash {
                kind: Overlap::SameFile,
                first: paths[j].clone(),
                second: paths[i].clone(),
            }),
            Some(_) => {}
            None => {
                first_with_key.insert(key, i);
            }
        }
    }

    // A file's key that is another path's directory (a proper prefix ending at a `/`).
    let mut first_below: HashMap<&str, usize> = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        for (at, _) in key.match_indices('/') {
            first_below.entry(&key[..at]).or_insert(i);
        }
    }
    for (i, key) in keys.iter().enumerate() {
        if let Some(&j) = first_below.get(key.as_str()) {
            found.push(Clash {
                kind: Overlap::FileIsDirectory,
                first: paths[i].clone(),
                second: paths[j].clone(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, path: &str) -> (Holder, String) {
        (Holder::Task(id.into()), path.into())
    }

    #[test]
    fn case_and_normalization_twins() {
        let found = clashes(&[
            task("1", "src/Api.rs"),
            task("2", "src/api.rs"),
            task("3", "docs/caf\u{e9}.md"),
            task("4", "docs/cafe\u{301}.md"),
            task("5", "ok.rs"),
        ]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|c| c.kind == Overlap::SameFile));
        let m = found[0].message();
        assert!(
            m.contains("task 1's `src/Api.rs` and task 2's `src/api.rs`"),
            "{m}"
        );
        assert_eq!(found[1].first.0, Holder::Task("3".into()));
    }

    #[test]
    fn a_file_that_another_path_needs_as_a_directory() {
        let found = clashes(&[
            task("1", "a/b"),
            task("2", "a/b/c"),
            task("3", "x/Y/z.rs"),
            (Holder::Spec, "x/y".to_string()),
            task("4", "ab/c"),
        ]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].kind, Overlap::FileIsDirectory);
        let m = found[0].message();
        assert!(m.contains("task 1's `a/b` and task 2's `a/b/c`"), "{m}");
        assert_eq!(found[1].first, (Holder::Spec, "x/y".into()));
        assert!(
            found[1]
                .message()
                .contains("spec `x/y` and task 3's `x/Y/z.rs`")
        );
    }

    #[test]
    fn within_one_task_and_exact_duplicates_left_alone() {
        let found = clashes(&[task("1", "a/b"), task("1", "A/B/c"), task("2", "d")]);
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .message()
                .contains("task 1's `a/b` and its `A/B/c`")
        );
        assert!(clashes(&[task("1", "a"), task("2", "a")]).is_empty());
    }
}
