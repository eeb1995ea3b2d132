//! The specs the scripted planner writes before it plans: precise enough that each task can
//! be done from them alone, as orch's planner prompt asks of a real planner. Their text is in
//! `src/scripted/wordstat/specs/`.

use std::fmt::Write as _;

/// The spec files, in the order they are written, with the plan's description of each.
pub(super) const SPECS: [(&str, &str); 3] = [
    (
        "specs/architecture.md",
        "the request, the layout, the modules and their dependencies, conventions",
    ),
    (
        "specs/lib.md",
        "lib/text.sh, lib/stats.sh and lib/report.sh: the contract of every function",
    ),
    (
        "specs/cli.md",
        "bin/wordstat: usage, options, output and exit codes",
    ),
];

/// The content of a spec file: ours, or a short generic one for a path orch asked for.
pub(super) fn content(path: &str, request: &str) -> String {
    match path {
        "specs/architecture.md" => architecture(request),
        "specs/lib.md" => LIB_MD.to_string(),
        "specs/cli.md" => CLI_MD.to_string(),
        other => generic(other, request),
    }
}

fn architecture(request: &str) -> String {
    let mut fenced = String::new();
    push_fenced(&mut fenced, request);
    // push_fenced ends its fence with the newline that follows the placeholder.
    ARCHITECTURE_MD.replacen("{request}\n", &fenced, 1)
}

fn generic(path: &str, request: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let title = name.split('.').next().unwrap_or(name);
    let mut s = format!(
        "# {title}\n\nPart of wordstat; start with specs/architecture.md, which this spec \
         follows.\n\n## The request\n\n"
    );
    push_fenced(&mut s, request);
    s
}

/// The request verbatim, in a fence longer than any backtick run inside it.
fn push_fenced(s: &mut String, text: &str) {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(s, "{fence}text\n{text}\n{fence}");
}

/// `{request}` stands for the request, fenced.
const ARCHITECTURE_MD: &str = include_str!("wordstat/specs/architecture.md");

const LIB_MD: &str = include_str!("wordstat/specs/lib.md");

const CLI_MD: &str = include_str!("wordstat/specs/cli.md");
