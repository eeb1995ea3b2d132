//! The live transcript an agent's pane shows. Headless agent CLIs print a stream of JSON
//! events (one per line) when asked to stream; that stream is kept raw in the run directory,
//! and turned here into lines a person can follow: the agent's text, each tool call with its
//! file or command, denials and errors, and the totals at the end.
//!
//! What each CLI's events mean is known by its adapter ([`crate::workers::Adapter::entries`]);
//! this module only assembles lines from the stream's chunks and renders the entries.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One thing worth showing from an agent's event stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// The session started.
    Start {
        model: Option<String>,
        session: Option<String>,
    },
    /// A whole message of the agent's text.
    Text(String),
    /// A piece of a message that arrives in parts (shown inline, without a line break).
    TextPiece(String),
    /// A tool call: the tool's name and what it acts on (a file, a command, a pattern).
    Tool { tool: String, target: String },
    /// A tool call that failed (a command's non-zero exit, a missing file).
    ToolFailed {
        tool: String,
        target: String,
        message: String,
    },
    /// A tool call the CLI's permissions refused.
    Denied {
        tool: String,
        target: String,
        message: String,
    },
    /// An error from the model's API or the CLI itself.
    Error(String),
    /// Something the CLI warns about, which does not stop it.
    Notice(String),
    /// The run ended (well or not), with its totals when the stream gives them.
    Finished { ok: bool, summary: String },
}

/// The adapter's reading of one event; `None` when the line is not an event of its CLI.
type Parse = Box<dyn Fn(&Value) -> Option<Vec<Entry>> + Send>;

/// Turns an event stream, fed in chunks as it arrives, into the pane's text.
pub struct Transcript {
    parse: Parse,
    /// Paths under this directory are shown relative to it.
    root: PathBuf,
    /// An incomplete line from the last chunk.
    partial: Vec<u8>,
    /// Whether the pane's cursor sits after a piece of text, mid-line.
    mid_line: bool,
}

impl Transcript {
    pub fn new(
        parse: impl Fn(&Value) -> Option<Vec<Entry>> + Send + 'static,
        root: &Path,
    ) -> Transcript {
        Transcript {
            parse: Box::new(parse),
            root: root.to_path_buf(),
            partial: Vec::new(),
            mid_line: false,
        }
    }

    /// Takes the next chunk of the stream and returns what to show for the lines it
    /// completes (a partial last line waits for the next chunk).
    pub fn feed(&mut self, chunk: &[u8]) -> String {
        self.partial.extend_from_slice(chunk);
        let mut out = String::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.line(&String::from_utf8_lossy(&line[..end]), &mut out);
        }
        out
    }

    /// The end of the stream: shows what is left of the last line.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.partial);
        let mut out = String::new();
        if !rest.is_empty() {
            self.line(&String::from_utf8_lossy(&rest), &mut out);
        }
        if self.mid_line {
            out.push('\n');
            self.mid_line = false;
        }
        out
    }

    fn line(&mut self, line: &str, out: &mut String) {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            return;
        }
        let entries = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|event| (self.parse)(&event));
        match entries {
            Some(entries) => {
                for entry in entries {
                    self.entry(&entry, out);
                }
            }
            // Not one of the CLI's events (a warning it printed, a user's wrapper script):
            // shown as it is.
            None => self.push_line(&printable(line), out),
        }
    }

    fn entry(&mut self, entry: &Entry, out: &mut String) {
        if let Entry::TextPiece(piece) = entry {
            // Indented like a whole message; a piece may start or end anywhere in a line.
            let mut text = String::new();
            for c in printable_keep_newlines(piece).chars() {
                if !self.mid_line && c != '\n' {
                    text.push_str("  ");
                }
                text.push(c);
                self.mid_line = c != '\n';
            }
            out.push_str(&text);
            return;
        }
        let text = match entry {
            Entry::Start { model, session } => {
                let mut parts = vec!["session started".to_string()];
                parts.extend(model.as_ref().map(|m| format!("model {m}")));
                parts.extend(session.as_ref().map(|s| format!("id {s}")));
                format!("· {}", parts.join(" · "))
            }
            Entry::Text(text) => printable_keep_newlines(text.trim_end())
                .lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
            Entry::Tool { tool, target } => format!("→ {tool} {}", self.short(target)),
            Entry::ToolFailed { tool, message, .. } if tool.is_empty() => {
                format!("✗ a tool failed: {}", first_line(message))
            }
            Entry::ToolFailed {
                tool,
                target,
                message,
            } => format!(
                "✗ {tool} {} — failed: {}",
                self.short(target),
                first_line(message)
            ),
            Entry::Denied {
                tool,
                target,
                message,
            } => format!(
                "✗ {tool} {} — DENIED: {}",
                self.short(target),
                first_line(message)
            ),
            Entry::Error(message) => format!("! error: {}", first_line(message)),
            Entry::Notice(message) => format!("! {}", first_line(message)),
            Entry::Finished { ok: true, summary } => format!("✓ {summary}"),
            Entry::Finished { ok: false, summary } => format!("✗ {summary}"),
            Entry::TextPiece(_) => unreachable!("handled above"),
        };
        self.push_line(&text, out);
    }

    fn push_line(&mut self, text: &str, out: &mut String) {
        if self.mid_line {
            out.push('\n');
            self.mid_line = false;
        }
        out.push_str(text);
        out.push('\n');
    }

    /// A path under the project root, relative to it; anything else as it is, on one line.
    fn short(&self, target: &str) -> String {
        let shortened = relative_to(&self.root, target);
        printable(&truncate(&shortened.replace('\n', " ⏎ "), 160))
    }
}

/// `text` with every path that starts with `root/` (at the start of the text or of a word,
/// or after a quote) made relative to `root`.
pub fn relative_to(root: &Path, text: &str) -> String {
    let prefix = format!("{}/", root.display());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&prefix) {
        let starts_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '=' | '('));
        out.push_str(&rest[..at]);
        if !starts_word {
            out.push_str(&prefix);
        }
        rest = &rest[at + prefix.len()..];
    }
    out.push_str(rest);
    out
}

/// The first line of a message, at most 300 characters.
pub fn first_line(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    printable(&truncate(line, 300))
}

pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// `text` without control characters, which could drive the pane's terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn printable_keep_newlines(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript() -> Transcript {
        Transcript::new(
            |event| match event["t"].as_str()? {
                "tool" => Some(vec![Entry::Tool {
                    tool: "Write".into(),
                    target: event["path"].as_str()?.into(),
                }]),
                "piece" => Some(vec![Entry::TextPiece(event["text"].as_str()?.into())]),
                "text" => Some(vec![Entry::Text(event["text"].as_str()?.into())]),
                "error" => Some(vec![Entry::Error("boom\nmore".into())]),
                _ => Some(vec![]),
            },
            Path::new("/p"),
        )
    }

    #[test]
    fn lines_are_assembled_across_chunks_and_rendered() {
        let mut t = transcript();
        assert_eq!(t.feed(b"{\"t\":\"tool\",\"pa"), "");
        assert_eq!(t.feed(b"th\":\"/p/src/a.rs\"}\n"), "→ Write src/a.rs\n");
        assert_eq!(
            t.feed(b"{\"t\":\"text\",\"text\":\"two\\nlines\"}\n{\"t\":\"skip\"}\n"),
            "  two\n  lines\n"
        );
        assert_eq!(t.feed(b"{\"t\":\"error\"}\n"), "! error: boom\n");
        assert_eq!(t.feed(b"not json \x1b[2J\n"), "not json ?[2J\n");
        assert_eq!(t.finish(), "");
    }

    #[test]
    fn paths_under_the_root_are_shortened_only_at_word_starts() {
        let root = Path::new("/p");
        assert_eq!(relative_to(root, "/p/a.rs"), "a.rs");
        assert_eq!(
            relative_to(root, "cat '/p/a b' /x/p/y /p/c"),
            "cat 'a b' /x/p/y c"
        );
        assert_eq!(relative_to(root, "/pq/x"), "/pq/x");
    }

    #[test]
    fn text_pieces_run_inline_until_something_else_comes() {
        let mut t = transcript();
        let out = t.feed(
            b"{\"t\":\"piece\",\"text\":\"Hel\"}\n{\"t\":\"piece\",\"text\":\"lo\"}\n\
              {\"t\":\"tool\",\"path\":\"x\"}\n{\"t\":\"piece\",\"text\":\"end\"}\n",
        );
        assert_eq!(out, "  Hello\n→ Write x\n  end");
        assert_eq!(t.finish(), "\n");
    }
}
