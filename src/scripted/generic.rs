//! Content for paths the scripted agent does not know, chosen by extension: a test that
//! passes, or a stub that says what the task asked for. Enough for orch's gates and ownership
//! checks to have real files to look at, whatever the plan.

/// The content of `path` (project-relative) for a task whose text is `task`.
pub(super) fn content(path: &str, is_test: bool, task: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    };
    let what = if is_test {
        "Placeholder test written by orch's scripted agent; it passes."
    } else {
        "Stub written by orch's scripted agent."
    };
    let task = one_line(task);
    let about = format!("{what} Task: {task}");
    let ident = identifier(name);
    if ext == "sh" || ext == "bash" || (ext.is_empty() && in_bin(path)) {
        return format!("#!/bin/sh\n# {about}\nexit 0\n");
    }
    match (ext.as_str(), is_test) {
        ("py", true) => format!("# {about}\n\n\ndef test_{ident}():\n    assert True\n"),
        ("py", false) => format!("# {about}\n"),
        ("rs", true) => format!("// {about}\n\n#[test]\nfn {ident}() {{}}\n"),
        ("rs", false) if name == "main.rs" => format!("//! {about}\n\nfn main() {{}}\n"),
        ("rs", false) => format!("//! {about}\n"),
        ("go", true) => format!(
            "// {about}\n\npackage {}\n\nimport \"testing\"\n\nfunc Test{}(t *testing.T) {{}}\n",
            go_package(path),
            capitalized(&ident)
        ),
        ("go", false) => format!("// {about}\n\npackage {}\n", go_package(path)),
        ("js" | "mjs" | "cjs" | "ts" | "jsx" | "tsx", true) => format!(
            "// {about}\nconst test = require(\"node:test\");\n\ntest(\"{ident}\", () => {{}});\n"
        ),
        (
            "js" | "mjs" | "cjs" | "ts" | "jsx" | "tsx" | "java" | "kt" | "swift" | "c" | "h"
            | "cc" | "cpp" | "hpp" | "cs" | "scala" | "dart",
            _,
        ) => {
            format!("// {about}\n")
        }
        ("" | "rb" | "pl" | "r" | "yaml" | "yml" | "toml" | "ini" | "cfg" | "conf", _) => {
            format!("# {about}\n")
        }
        ("css" | "scss", _) => format!("/* {} */\n", about.replace("*/", "* /")),
        ("html" | "htm" | "xml" | "svg", _) => {
            format!("<!-- {} -->\n", about.replace("--", "- -"))
        }
        ("json", _) => format!("{}\n", serde_json::json!({ "note": about })),
        ("sql", _) => format!("-- {about}\n"),
        ("md" | "markdown", _) => format!("# {name}\n\n{about}\n"),
        _ => format!("{about}\n"),
    }
}

fn in_bin(path: &str) -> bool {
    path.starts_with("bin/") || path.contains("/bin/")
}

/// The task text on one line, short, without control characters: it goes in a comment.
fn one_line(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut line: String = words
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if line.chars().count() > 200 {
        line = line.chars().take(197).collect::<String>() + "...";
    }
    if line.is_empty() {
        "(none given)".to_string()
    } else {
        line
    }
}

/// The file's stem as an identifier: letters, digits and `_`, not starting with a digit.
fn identifier(name: &str) -> String {
    let stem = name.split('.').next().unwrap_or(name);
    let ident: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    match ident.chars().next() {
        None => "placeholder".to_string(),
        Some(c) if c.is_ascii_digit() => format!("t_{ident}"),
        Some(_) => ident,
    }
}

fn capitalized(ident: &str) -> String {
    let mut chars = ident.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Go wants the directory's package name; at the root, `main`.
fn go_package(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) => {
            let last = dir.rsplit('/').next().unwrap_or(dir);
            identifier(last).to_ascii_lowercase()
        }
        None => "main".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_by_extension_mentions_the_task() {
        let task = "Build the\nparser */ --> now";
        let sh = content("tests/parse_test.sh", true, task);
        assert!(
            sh.starts_with("#!/bin/sh\n") && sh.ends_with("exit 0\n"),
            "{sh}"
        );
        assert!(sh.contains("Build the parser"), "{sh}");
        assert!(content("bin/tool", false, task).starts_with("#!/bin/sh\n"));
        let py = content("tests/test_parse.py", true, task);
        assert!(py.contains("def test_test_parse():"), "{py}");
        assert!(content("src/main.rs", false, task).contains("fn main() {}"));
        let go = content("pkg/api/api_test.go", true, task);
        assert!(
            go.contains("package api") && go.contains("func TestApi_test("),
            "{go}"
        );
        let css = content("web/site.css", false, task);
        assert_eq!(css.matches("*/").count(), 1, "{css}");
        let html = content("web/index.html", false, task);
        assert_eq!(html.matches("-->").count(), 1, "{html}");
        let json: serde_json::Value =
            serde_json::from_str(&content("data/x.json", false, task)).unwrap();
        assert!(json["note"].as_str().unwrap().contains("parser"));
        assert!(content("notes/todo.txt", false, "").contains("(none given)"));
    }

    #[test]
    fn a_generic_shell_test_passes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x_test.sh");
        std::fs::write(&file, content("tests/x_test.sh", true, "t; exit 1")).unwrap();
        let status = std::process::Command::new("sh")
            .arg(&file)
            .status()
            .unwrap();
        assert!(status.success());
    }
}
