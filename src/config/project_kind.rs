//! What kind of project `orch init` runs in, and the gates that fit it: the commands the
//! project's own tooling offers (Make targets, package.json scripts) first, else the usual ones
//! of its language, so that the starter config's gates run there as written.

use std::path::Path;

/// The gates proposed for a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectGates {
    /// `Rust`, `Python`, `Node`, `Go`, `Make`.
    pub kind: &'static str,
    /// The file that told (`Cargo.toml`, `pyproject.toml`, ...).
    pub evidence: String,
    pub lint: Option<String>,
    pub test: Option<String>,
    pub test_pattern: Vec<String>,
    /// Things the user should know about the proposal (a tool not found, ...).
    pub notes: Vec<String>,
}

/// The files whose presence names a project kind, for messages.
pub const MARKERS: &str = "Cargo.toml, pyproject.toml, setup.cfg, setup.py, pytest.ini, tox.ini, \
                           package.json, go.mod, Makefile";

/// Detects the project in `root`; `has_program` says whether a program is on PATH. `None`
/// when nothing is recognised.
pub fn detect(root: &Path, has_program: &dyn Fn(&str) -> bool) -> Option<ProjectGates> {
    let language = language(root, has_program);
    let make = make_targets(root);
    let make_lint = make
        .iter()
        .find(|t| *t == "lint")
        .map(|t| format!("make {t}"));
    let make_test = ["test", "check"]
        .into_iter()
        .find(|want| make.iter().any(|t| t == want))
        .map(|t| format!("make {t}"));
    match language {
        Some(mut gates) => {
            // The project's own Makefile knows best how it is checked (a venv, flags, ...).
            if let Some(lint) = make_lint {
                gates.lint = Some(lint);
                gates.evidence.push_str(" and Makefile");
            }
            if let Some(test) = make_test {
                gates.test = Some(test);
                if !gates.evidence.ends_with("Makefile") {
                    gates.evidence.push_str(" and Makefile");
                }
            }
            Some(gates)
        }
        None if make_lint.is_some() || make_test.is_some() => Some(ProjectGates {
            kind: "Make",
            evidence: "Makefile".into(),
            lint: make_lint,
            test: make_test,
            test_pattern: super::schema::default_test_patterns(),
            notes: vec![],
        }),
        None => None,
    }
}

fn language(root: &Path, has: &dyn Fn(&str) -> bool) -> Option<ProjectGates> {
    let exists = |name: &str| root.join(name).is_file();
    let patterns = |p: &[&str]| {
        p.iter()
            .map(std::string::ToString::to_string)
            .collect::<Vec<_>>()
    };
    if exists("Cargo.toml") {
        return Some(ProjectGates {
            kind: "Rust",
            evidence: "Cargo.toml".into(),
            lint: Some("cargo clippy --all-targets -- -D warnings".into()),
            test: Some("cargo test".into()),
            test_pattern: patterns(&["tests/**", "**/tests.rs", "**/tests/**", "benches/**"]),
            notes: vec![],
        });
    }
    if exists("go.mod") {
        return Some(ProjectGates {
            kind: "Go",
            evidence: "go.mod".into(),
            lint: Some("go vet ./...".into()),
            test: Some("go test ./...".into()),
            test_pattern: patterns(&["**/*_test.go", "testdata/**"]),
            notes: vec![],
        });
    }
    let python = [
        "pyproject.toml",
        "setup.cfg",
        "setup.py",
        "pytest.ini",
        "tox.ini",
    ]
    .into_iter()
    .find(|f| exists(f));
    if let Some(marker) = python {
        let mut notes = Vec::new();
        let lint = if has("ruff") {
            Some("ruff check .".to_string())
        } else if has("flake8") {
            Some("flake8".to_string())
        } else {
            notes.push(
                "no Python linter (ruff, flake8) found on PATH: the lint gate is left out; \
                 install one (`pip install ruff`) and set `lint: ruff check .`"
                    .to_string(),
            );
            None
        };
        let test = if has("pytest") {
            "pytest -q".to_string()
        } else {
            notes.push(
                "pytest is not on PATH: the test gate runs `python3 -m pytest`, which needs \
                 it installed (`pip install pytest`)"
                    .to_string(),
            );
            "python3 -m pytest -q".to_string()
        };
        return Some(ProjectGates {
            kind: "Python",
            evidence: marker.into(),
            lint,
            test: Some(test),
            test_pattern: patterns(&[
                "tests/**",
                "test/**",
                "**/test_*.py",
                "**/*_test.py",
                "**/conftest.py",
            ]),
            notes,
        });
    }
    if exists("package.json") {
        return Some(node(root));
    }
    None
}

/// A Node project's `lint` and `test` scripts, run with the package manager its lock file
/// names. npm's placeholder test script ("no test specified") is no test.
fn node(root: &Path) -> ProjectGates {
    let scripts: serde_json::Map<String, serde_json::Value> =
        std::fs::read_to_string(root.join("package.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("scripts").and_then(|s| s.as_object()).cloned())
            .unwrap_or_default();
    let manager = if root.join("pnpm-lock.yaml").is_file() {
        "pnpm"
    } else if root.join("yarn.lock").is_file() {
        "yarn"
    } else {
        "npm"
    };
    let script = |name: &str| {
        scripts
            .get(name)
            .and_then(|v| v.as_str())
            .as_ref()
            .is_some_and(|s| !s.contains("no test specified"))
    };
    let mut notes = Vec::new();
    let lint = script("lint").then(|| format!("{manager} run lint"));
    if lint.is_none() {
        notes.push("package.json has no `lint` script: the lint gate is left out".to_string());
    }
    let test = script("test").then(|| match manager {
        "npm" => "npm test".to_string(),
        m => format!("{m} test"),
    });
    if test.is_none() {
        notes.push(
            "package.json has no `test` script: the test gate is left out; add one and set \
             `test: npm test`"
                .to_string(),
        );
    }
    ProjectGates {
        kind: "Node",
        evidence: "package.json".into(),
        lint,
        test,
        test_pattern: [
            "**/*.test.*",
            "**/*.spec.*",
            "test/**",
            "tests/**",
            "**/__tests__/**",
        ]
        .map(String::from)
        .to_vec(),
        notes,
    }
}

/// The targets a Makefile defines (`name:` at the start of a line, not a variable `:=`).
fn make_targets(root: &Path) -> Vec<String> {
    let text = ["Makefile", "makefile", "GNUmakefile"]
        .into_iter()
        .find_map(|f| std::fs::read_to_string(root.join(f)).ok())
        .unwrap_or_default();
    let mut targets = Vec::new();
    for line in text.lines() {
        if line.starts_with(['\t', ' ', '#', '.']) {
            continue;
        }
        let Some((names, rest)) = line.split_once(':') else {
            continue;
        };
        if rest.starts_with('=') || names.contains('=') {
            continue;
        }
        for name in names.split_whitespace() {
            if !targets.iter().any(|t| t == name) {
                targets.push(name.to_string());
            }
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            std::fs::write(dir.path().join(path), text).unwrap();
        }
        dir
    }

    fn with(programs: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |p| programs.contains(&p)
    }

    #[test]
    fn rust_and_go_get_their_toolchains_gates() {
        let dir = project(&[("Cargo.toml", "[package]\n")]);
        let g = detect(dir.path(), &with(&[])).unwrap();
        assert_eq!(g.kind, "Rust");
        assert_eq!(g.test.as_deref(), Some("cargo test"));
        let dir = project(&[("go.mod", "module x\n")]);
        let g = detect(dir.path(), &with(&[])).unwrap();
        assert_eq!(g.lint.as_deref(), Some("go vet ./..."));
        assert_eq!(g.test.as_deref(), Some("go test ./..."));
        assert_eq!(g.test_pattern[0], "**/*_test.go");
    }

    #[test]
    fn python_gets_pytest_and_the_linter_found() {
        let dir = project(&[("pyproject.toml", "[project]\n")]);
        let g = detect(dir.path(), &with(&["ruff", "flake8", "pytest"])).unwrap();
        assert_eq!(g.kind, "Python");
        assert_eq!(g.lint.as_deref(), Some("ruff check ."));
        assert_eq!(g.test.as_deref(), Some("pytest -q"));
        assert!(g.test_pattern.contains(&"**/test_*.py".to_string()));
        let g = detect(dir.path(), &with(&["flake8"])).unwrap();
        assert_eq!(g.lint.as_deref(), Some("flake8"));
        assert_eq!(g.test.as_deref(), Some("python3 -m pytest -q"));
        let g = detect(dir.path(), &with(&[])).unwrap();
        assert_eq!(g.lint, None);
        assert!(g.notes.iter().any(|n| n.contains("ruff")), "{:?}", g.notes);
        let dir = project(&[("pytest.ini", "[pytest]\n")]);
        assert_eq!(detect(dir.path(), &with(&[])).unwrap().kind, "Python");
    }

    #[test]
    fn node_uses_its_scripts_but_not_npms_placeholder() {
        let dir = project(&[(
            "package.json",
            r#"{"scripts": {"lint": "eslint .", "test": "vitest run"}}"#,
        )]);
        let g = detect(dir.path(), &with(&[])).unwrap();
        assert_eq!(g.lint.as_deref(), Some("npm run lint"));
        assert_eq!(g.test.as_deref(), Some("npm test"));
        let dir = project(&[
            (
                "package.json",
                r#"{"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}}"#,
            ),
            ("yarn.lock", ""),
        ]);
        let g = detect(dir.path(), &with(&[])).unwrap();
        assert_eq!((g.lint, g.test), (None, None));
    }

    #[test]
    fn makefile_targets_win_and_stand_alone() {
        let dir = project(&[
            ("pyproject.toml", ""),
            (
                "Makefile",
                "VAR := 1\nlint test: deps\n\truff .\n.PHONY: lint\n",
            ),
        ]);
        let g = detect(dir.path(), &with(&["pytest"])).unwrap();
        assert_eq!(g.kind, "Python");
        assert_eq!(g.lint.as_deref(), Some("make lint"));
        assert_eq!(g.test.as_deref(), Some("make test"));
        assert_eq!(g.evidence, "pyproject.toml and Makefile");
        let dir = project(&[("Makefile", "all:\n\tcc x.c\ncheck:\n\t./run-tests\n")]);
        let g = detect(dir.path(), &with(&[])).unwrap();
        assert_eq!(
            (g.kind, g.lint, g.test),
            ("Make", None, Some("make check".into()))
        );
    }

    #[test]
    fn an_unknown_project_is_none() {
        let dir = project(&[("README.md", "hi"), ("Makefile", "all:\n\tcc x.c\n")]);
        assert_eq!(detect(dir.path(), &with(&[])), None);
    }
}
