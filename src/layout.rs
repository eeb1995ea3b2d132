//! Layouts: how a run's panes are arranged in tmux. Built-in ones come from `layouts/*.yaml`
//! (compiled in); `--layout PATH` reads another file of the same shape.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::usage;

const BUILTIN: [(&str, &str); 3] = [
    ("windows", include_str!("../layouts/windows.yaml")),
    ("tiled", include_str!("../layouts/tiled.yaml")),
    (
        "main-vertical",
        include_str!("../layouts/main-vertical.yaml"),
    ),
];

/// tmux's own layouts, which `arrange` may name.
const ARRANGEMENTS: [&str; 5] = [
    "even-horizontal",
    "even-vertical",
    "main-horizontal",
    "main-vertical",
    "tiled",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Where each worker goes.
    pub workers: Placement,
    /// For `workers: panes`: the window the panes go in; `control` means beside the control
    /// pane, anything else names a window of its own.
    #[serde(default)]
    pub window: Option<String>,
    /// The tmux layout applied after each pane is added.
    #[serde(default)]
    pub arrange: Option<String>,
    /// For `workers: panes`: how many worker panes a window holds before another is opened.
    #[serde(default)]
    pub max_panes: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    Windows,
    Panes,
}

impl Layout {
    /// A built-in layout by name, or a layout file by path (anything with a `/` or a `.yaml`
    /// or `.yml` ending).
    pub fn load(name_or_path: &str, cwd: &Path) -> anyhow::Result<Layout> {
        if !Self::is_path(name_or_path) {
            let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) else {
                return Err(usage(format!(
                    "no layout named `{name_or_path}`: use one of {}, or a path to a layout file",
                    Self::builtin_names().join(", ")
                )));
            };
            return Self::parse(text, name_or_path);
        }
        let path = cwd.join(name_or_path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| usage(format!("cannot read the layout {}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Whether `--layout` names a file rather than a built-in layout.
    pub fn is_path(name_or_path: &str) -> bool {
        name_or_path.contains('/')
            || name_or_path.ends_with(".yaml")
            || name_or_path.ends_with(".yml")
    }

    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    fn parse(text: &str, source: &str) -> anyhow::Result<Layout> {
        let layout: Layout = serde_saphyr::from_str(text)
            .map_err(|e| usage(format!("layout {source} is not valid:\n{e}")))?;
        if let Some(arrange) = &layout.arrange
            && !ARRANGEMENTS.contains(&arrange.as_str())
        {
            return Err(usage(format!(
                "layout {source}: `arrange: {arrange}` is not a tmux layout; use one of {}",
                ARRANGEMENTS.join(", ")
            )));
        }
        if layout.max_panes == Some(0) {
            return Err(usage(format!(
                "layout {source}: `max_panes` must be at least 1"
            )));
        }
        if layout.workers == Placement::Windows && layout.window.is_some() {
            return Err(usage(format!(
                "layout {source}: `window` only applies to `workers: panes`"
            )));
        }
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for name in Layout::builtin_names() {
            let layout = Layout::load(name, Path::new("/")).unwrap();
            assert_eq!(layout.name, name);
        }
        let tiled = Layout::load("tiled", Path::new("/")).unwrap();
        assert_eq!(tiled.workers, Placement::Panes);
        assert_eq!(tiled.arrange.as_deref(), Some("tiled"));
    }

    #[test]
    fn unknown_names_and_bad_files_are_clear_errors() {
        let err = Layout::load("grid", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no layout named `grid`") && err.contains("main-vertical"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            "name: x\nworkers: panes\narrange: spiral\n",
        )
        .unwrap();
        let err = Layout::load("bad.yaml", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`arrange: spiral` is not a tmux layout"),
            "{err}"
        );
        std::fs::write(dir.path().join("typo.yaml"), "name: x\nworker: panes\n").unwrap();
        let err = Layout::load("./typo.yaml", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("worker") && err.contains("line 2"), "{err}");
        let err = Layout::load("missing.yaml", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the layout"), "{err}");
    }
}
