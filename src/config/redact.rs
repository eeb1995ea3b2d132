//! Keeps the values of agents' `env` (API keys) out of config error messages. A YAML error
//! quotes the lines around it and sometimes the value it choked on; an error printed in a
//! terminal, a CI log or a bug report must not carry a key. Best effort on text that did not
//! parse: every line under an `env:` key has its value masked, and every value found there is
//! masked wherever else the message repeats it.

use std::collections::BTreeSet;

/// What to mask: the 1-based lines holding `env` values, and the values themselves.
#[derive(Debug, Default)]
pub(super) struct EnvValues {
    lines: BTreeSet<usize>,
    values: Vec<String>,
}

const MASK: &str = "***";

/// Finds the `env` values of the config text (block style `env:` followed by indented
/// `KEY: value` lines, or flow style `env: {KEY: value}`).
pub(super) fn env_values(text: &str) -> EnvValues {
    let mut found = EnvValues::default();
    let mut block: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let content = line.trim_start();
        let indent = line.len() - content.len();
        if let Some(env_indent) = block {
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            if indent > env_indent {
                found.lines.insert(number);
                let value = content.split_once(':').map_or(content, |(_, v)| v);
                found.add(value);
                continue;
            }
            block = None;
        }
        let content = content.strip_prefix("- ").unwrap_or(content);
        if let Some(rest) = content.strip_prefix("env:") {
            let rest = rest.trim();
            if rest.is_empty() || rest.starts_with('#') {
                block = Some(indent);
            } else {
                found.lines.insert(number);
                found.add(rest);
                // Flow style: each word between the braces may be a value.
                for word in rest.split(['{', '}', '[', ']', ',', ':']) {
                    found.add(word);
                }
            }
        }
    }
    // Longest first, so that a value is masked whole before any part of it.
    found.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    found.values.dedup();
    found
}

impl EnvValues {
    fn add(&mut self, raw: &str) {
        let value = raw.trim().trim_matches(['"', '\'']).trim();
        // Shorter is no secret, and masking it would garble the message.
        if value.chars().count() >= 4 {
            self.values.push(value.to_string());
        }
    }

    /// `message` with every quoted source line under `env:` cut after its key, and every
    /// value masked.
    pub(super) fn redact(&self, message: &str) -> String {
        let mut out: Vec<String> = message
            .lines()
            .map(|line| match self.source_line(line) {
                Some(bar) => {
                    let (head, source) = line.split_at(bar);
                    match source.split_once(':') {
                        Some((key, _)) => format!("{head}{key}: {MASK}"),
                        None => format!("{head}{MASK}"),
                    }
                }
                None => line.to_string(),
            })
            .collect();
        for line in &mut out {
            for value in &self.values {
                if line.contains(value.as_str()) {
                    *line = line.replace(value.as_str(), MASK);
                }
            }
        }
        let mut text = out.join("\n");
        if message.ends_with('\n') {
            text.push('\n');
        }
        text
    }

    /// Where the source text starts (after `N |`) when `line` quotes an `env` line.
    fn source_line(&self, line: &str) -> Option<usize> {
        let trimmed = line.trim_start();
        let digits = trimmed.len()
            - trimmed
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let number: usize = trimmed[..digits].parse().ok()?;
        let after = trimmed[digits..].strip_prefix(" |")?;
        if !self.lines.contains(&number) {
            return None;
        }
        Some(line.len() - after.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_lines_and_repeated_values_are_masked() {
        let text = "agents:\n  c:\n    kind: claude\n    env:\n      KEY: sk-secret-1\n      \
                    OTHER: \"sk-secret-2\"\n    model: m\n  d:\n    env: {K: sk-flow-3, L: [x]}\n";
        let values = env_values(text);
        let message = "line 9 column 24: expected string scalar\n --> <input>:9:24\n  |\n\
                       4 |     env:\n5 |       KEY: sk-secret-1\n6 |       OTHER: \"sk-secret-2\"\n\
                       7 |     model: m\n9 |     env: {K: sk-flow-3, L: [x]}\n  |  ^\n\
                       invalid type: string \"sk-secret-2\"\n";
        let redacted = values.redact(message);
        for secret in ["sk-secret-1", "sk-secret-2", "sk-flow-3"] {
            assert!(!redacted.contains(secret), "{redacted}");
        }
        assert!(redacted.contains("5 |       KEY: ***"), "{redacted}");
        assert!(redacted.contains("7 |     model: m"), "{redacted}");
        assert!(redacted.contains("line 9 column 24"), "{redacted}");
        assert!(redacted.ends_with('\n'));
    }

    #[test]
    fn a_config_without_env_is_left_alone() {
        let values = env_values("agents:\n  c:\n    kind: claude\n");
        let message = "2 |   c:\nline 2: bad";
        assert_eq!(values.redact(message), message);
    }
}
