//! [`ProjectPath`]: a path relative to the project root that passed orch's lexical check
//! (relative, normalized with `/`, no `..`, not inside `.git/` or `.orch/`, not a directory).
//! It can only be made through that check ([`super::normalize`], [`super::check`],
//! [`super::check_planned`], or deserializing), so code that holds one need not check again.
//! It serializes as the bare string, so journals, plans and JSON output are unchanged.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::PathProblem;

/// A checked, normalized project-relative path (`src/a.rs`). Derefs to `str`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProjectPath(String);

impl ProjectPath {
    /// Checks `raw` lexically and normalizes it (`./a//b` → `a/b`): see [`super::normalize`].
    pub fn new(raw: &str) -> Result<ProjectPath, PathProblem> {
        super::normalize(raw)
    }

    /// Only for a string [`super::normalize`] has just made.
    pub(super) fn from_normalized(rel: String) -> ProjectPath {
        ProjectPath(rel)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ProjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Deref for ProjectPath {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ProjectPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<Path> for ProjectPath {
    fn as_ref(&self) -> &Path {
        self.as_path()
    }
}

/// Maps keyed by `ProjectPath` can be searched with a `&str`.
impl Borrow<str> for ProjectPath {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<ProjectPath> for String {
    fn from(path: ProjectPath) -> String {
        path.0
    }
}

impl PartialEq<str> for ProjectPath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ProjectPath {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for ProjectPath {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<ProjectPath> for str {
    fn eq(&self, other: &ProjectPath) -> bool {
        self == other.0
    }
}

impl PartialEq<ProjectPath> for &str {
    fn eq(&self, other: &ProjectPath) -> bool {
        *self == other.0
    }
}

impl PartialEq<ProjectPath> for String {
    fn eq(&self, other: &ProjectPath) -> bool {
        *self == other.0
    }
}

impl Serialize for ProjectPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Through the check: a stored path (a plan in the journal) that is not one is refused, not
/// carried on.
impl<'de> Deserialize<'de> for ProjectPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ProjectPath, D::Error> {
        let raw = String::deserialize(d)?;
        ProjectPath::new(&raw)
            .map_err(|problem| serde::de::Error::custom(format!("path {raw:?} {problem}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_only_through_the_check_and_normalized() {
        assert_eq!(ProjectPath::new("./src//a.rs").unwrap(), "src/a.rs");
        assert_eq!(ProjectPath::new("/etc/passwd"), Err(PathProblem::Absolute));
        assert_eq!(ProjectPath::new("a/../../b"), Err(PathProblem::ParentDir));
        assert!(matches!(
            ProjectPath::new(".git/config"),
            Err(PathProblem::Reserved(_))
        ));
        assert_eq!(ProjectPath::new("src/"), Err(PathProblem::Directory));
    }

    #[test]
    fn serializes_as_the_bare_string_and_deserializes_through_the_check() {
        let path = ProjectPath::new("src/a b.rs").unwrap();
        assert_eq!(serde_json::to_string(&path).unwrap(), r#""src/a b.rs""#);
        let back: ProjectPath = serde_json::from_str(r#""src/a b.rs""#).unwrap();
        assert_eq!(back, path);
        let normalized: ProjectPath = serde_json::from_str(r#""./src//x""#).unwrap();
        assert_eq!(normalized.as_str(), "src/x");
        let err = serde_json::from_str::<ProjectPath>(r#""../x""#).unwrap_err();
        assert!(err.to_string().contains("`..`"), "{err}");
        assert!(serde_json::from_str::<ProjectPath>(r#""/x""#).is_err());
    }

    #[test]
    fn reads_as_a_str_and_a_path() {
        let path = ProjectPath::new("lib/x.sh").unwrap();
        assert_eq!(path.to_string(), "lib/x.sh");
        assert!(path.starts_with("lib/"));
        assert_eq!(path.as_path(), Path::new("lib/x.sh"));
        let map: std::collections::BTreeMap<ProjectPath, u8> = [(path.clone(), 1)].into();
        assert_eq!(map.get("lib/x.sh"), Some(&1));
    }
}
