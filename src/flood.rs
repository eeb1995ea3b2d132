//! Many paths said in few words: a count per directory and the first few paths, so that a
//! flood (an agent creating 50,000 files) makes a journal line, a gate's detail or `orch
//! status` of bounded size. The full list goes into a file beside, when there is one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Up to this many paths are listed in full; more are summarized.
pub const LIST_MAX: usize = 10;
/// How many paths a summary names.
const FIRST: usize = 5;
/// How many directories a summary counts (the largest).
const DIRS: usize = 8;

/// `a, b (created), c` for a few; for more, `12000 files: src/gen/ 8000, tmp/ 4000; first:
/// a, b, c, d, e`.
pub fn summarize(items: &[String], path_of: impl Fn(&str) -> &str) -> String {
    if items.len() <= LIST_MAX {
        return items.join(", ");
    }
    let mut per_dir: BTreeMap<&str, usize> = BTreeMap::new();
    for item in items {
        *per_dir.entry(dir_of(path_of(item))).or_default() += 1;
    }
    let mut dirs: Vec<(&str, usize)> = per_dir.into_iter().collect();
    dirs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out = format!("{} files: ", items.len());
    let shown: Vec<String> = dirs
        .iter()
        .take(DIRS)
        .map(|(dir, n)| format!("{dir} {n}"))
        .collect();
    out.push_str(&shown.join(", "));
    if dirs.len() > DIRS {
        let _ = write!(out, " and {} more directories", dirs.len() - DIRS);
    }
    let _ = write!(
        out,
        "; first: {}",
        items
            .iter()
            .take(FIRST)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    out
}

/// `src/gen/` for `src/gen/a.rs`, `./` for a file at the root.
pub fn dir_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "./",
    }
}

/// Writes one item per line into `file` (creating its directory); the error says where.
pub fn write_list(file: &Path, items: &[String]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let mut text = items.join("\n");
    text.push('\n');
    std::fs::write(file, text).with_context(|| format!("failed to write {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_are_listed_many_are_counted_per_directory() {
        let few: Vec<String> = vec!["a (created)".into(), "b/c (modified)".into()];
        assert_eq!(summarize(&few, |s| s), "a (created), b/c (modified)");
        let mut many: Vec<String> = (0..3000).map(|i| format!("gen/a/{i}")).collect();
        many.extend((0..1000).map(|i| format!("gen/b/{i}")));
        many.push("top".into());
        let summary = summarize(&many, |s| s);
        assert_eq!(
            summary,
            "4001 files: gen/a/ 3000, gen/b/ 1000, ./ 1; first: gen/a/0, gen/a/1, gen/a/2, \
             gen/a/3, gen/a/4"
        );
        let many_dirs: Vec<String> = (0..100).map(|i| format!("d{i}/f")).collect();
        assert!(summarize(&many_dirs, |s| s).contains("and 92 more directories"));
    }
}
