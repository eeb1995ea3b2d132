//! Where a request comes from: the command line, a file (`-f FILE`), or standard input (`-`
//! or `-f -`), of any size, byte for byte. The request is text that goes into prompts, JSON
//! and agent CLIs' arguments, so it must be UTF-8 without NUL; anything else is refused with
//! where the first bad byte is, never changed silently.

use std::io::Read as _;
use std::path::Path;

use crate::error::usage;

/// The request given on the command line, or read from `file`; `-` (as the request or the
/// file) reads standard input. `None` when neither was given.
pub(crate) fn read(
    cwd: &Path,
    request: Option<String>,
    file: Option<&Path>,
) -> anyhow::Result<Option<String>> {
    let (bytes, source) = match (request, file) {
        (Some(_), Some(_)) => {
            return Err(usage(
                "give the request either as an argument or with -f FILE, not both",
            ));
        }
        (Some(request), None) if request != "-" => return Ok(Some(request)),
        (Some(_), None) => (stdin()?, "standard input".to_string()),
        (None, Some(file)) if file == Path::new("-") => (stdin()?, "standard input".to_string()),
        (None, Some(file)) => {
            let path = cwd.join(file);
            let bytes = std::fs::read(&path).map_err(|e| {
                usage(format!(
                    "cannot read the request from {}: {e}; check the path (`-` reads standard \
                     input)",
                    path.display()
                ))
            })?;
            (bytes, path.display().to_string())
        }
        (None, None) => return Ok(None),
    };
    text(bytes, &source).map(Some)
}

fn stdin() -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| usage(format!("cannot read the request from standard input: {e}")))?;
    Ok(bytes)
}

/// The bytes as the request, unchanged, or why they cannot be one.
fn text(bytes: Vec<u8>, source: &str) -> anyhow::Result<String> {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(usage(format!(
            "the request from {source} holds a NUL byte (at byte {at}): a request is text, \
             and NUL cannot reach an agent (prompts travel as C strings and JSON); remove it"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        usage(format!(
            "the request from {source} is not UTF-8 text (the first bad byte is at byte {}): \
             save it as UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let request = "line 1\n\"quoted\" 'single' $(touch x) `id` \\ \r\n\ttab\n\n";
        std::fs::write(tmp.path().join("r.txt"), request).unwrap();
        let read = read(tmp.path(), None, Some(Path::new("r.txt"))).unwrap();
        assert_eq!(read.as_deref(), Some(request));
    }

    #[test]
    fn nul_and_non_utf8_are_refused_with_where() {
        let err = text(b"ab\0c".to_vec(), "x").unwrap_err().to_string();
        assert!(err.contains("NUL byte (at byte 2)"), "{err}");
        let err = text(b"abc\xff".to_vec(), "x").unwrap_err().to_string();
        assert!(
            err.contains("not UTF-8 text (the first bad byte is at byte 3)"),
            "{err}"
        );
    }

    #[test]
    fn an_argument_and_a_file_together_are_refused() {
        let err = read(Path::new("/"), Some("a".into()), Some(Path::new("f")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not both"), "{err}");
        assert_eq!(read(Path::new("/"), None, None).unwrap(), None);
        assert_eq!(
            read(Path::new("/"), Some("a".into()), None)
                .unwrap()
                .as_deref(),
            Some("a")
        );
        let err = read(Path::new("/nonexistent"), None, Some(Path::new("r.txt")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read the request from /nonexistent/r.txt"),
            "{err}"
        );
    }
}
