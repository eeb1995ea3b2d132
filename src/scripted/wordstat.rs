//! The wordstat project's code and tests, as the scripted workers write them (tests before
//! the code they test). The files are under `src/scripted/wordstat/`, laid out as in the
//! project (specs: see `specs.rs`), so that shellcheck sees them (CI runs it; see
//! `src/scripted/.shellcheckrc`).
//!
//! POSIX sh only, so that the demo's gates pass on a machine with nothing but `sh` and the
//! POSIX utilities; each was checked with dash and `bash --posix`. Each test file is plain
//! `sh`, self-contained (a task owns its files alone, so there is no shared helper), prints
//! one `ok`/`not ok` line per check, and fails if any check does.

/// Every file of wordstat that a worker writes with its real content, by project path.
const FILES: [(&str, &str); 9] = [
    // Reading and splitting text.
    ("lib/text.sh", include_str!("wordstat/lib/text.sh")),
    // Counting lines, words, characters and frequent words.
    ("lib/stats.sh", include_str!("wordstat/lib/stats.sh")),
    // Formatting rows and the top-words list.
    ("lib/report.sh", include_str!("wordstat/lib/report.sh")),
    // The command: options, files or stdin, totals.
    ("bin/wordstat", include_str!("wordstat/bin/wordstat")),
    (
        "tests/text_test.sh",
        include_str!("wordstat/tests/text_test.sh"),
    ),
    (
        "tests/stats_test.sh",
        include_str!("wordstat/tests/stats_test.sh"),
    ),
    (
        "tests/report_test.sh",
        include_str!("wordstat/tests/report_test.sh"),
    ),
    (
        "tests/wordstat_test.sh",
        include_str!("wordstat/tests/wordstat_test.sh"),
    ),
    // The fixture the command tests count: 3 lines, 12 words, 61 bytes.
    (
        "tests/fixtures/poem.txt",
        include_str!("wordstat/tests/fixtures/poem.txt"),
    ),
];

/// The content of a wordstat path (code, test or fixture), if it is one.
pub(super) fn file(path: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, content)| *content)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// A file added under src/scripted/wordstat/ (specs aside) that no worker writes would be
    /// linted but never shipped.
    #[test]
    fn every_file_of_the_directory_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scripted/wordstat");
        let mut on_disk = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path
                        .strip_prefix(&dir)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string();
                    if !rel.starts_with("specs/") {
                        on_disk.push(rel);
                    }
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = super::FILES.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
        for (path, content) in super::FILES {
            assert_eq!(super::file(path), Some(content));
        }
    }
}
