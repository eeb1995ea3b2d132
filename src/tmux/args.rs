//! Turning orch's values into tmux arguments that tmux passes on unchanged.
//!
//! tmux reinterprets some arguments even when they are not read by a shell (verified on
//! tmux 3.3a):
//! - an argument ending in `;` ends the command (`a;` becomes `a` plus a new command);
//!   `\;` at the end stands for a literal `;`;
//! - session names (`-s`), window names (`-n`, `rename-window`) and start directories
//!   (`-c`) are expanded as formats, so `#` must be written `##`;
//! - a session name's `:` and `.` become `_`, and non-printable characters in names are
//!   escaped, so such names could not be found again;
//! - a command given as one argument goes through `sh -c`; several arguments are
//!   executed directly with `execvp`.
//!
//! `-e` values and command arguments are not expanded.

use std::path::Path;

use super::TmuxError;

/// Keeps tmux from reading a trailing `;` as a command separator.
pub(super) fn escape_arg(arg: &str) -> String {
    match arg.strip_suffix(';') {
        Some(head) => format!("{head}\\;"),
        None => arg.to_string(),
    }
}

/// Keeps tmux's format expansion from touching `text`: `#` becomes `##`.
pub fn escape_format(text: &str) -> String {
    text.replace('#', "##")
}

/// Quotes `text` as one word for tmux's command parser (hooks, `source-file`), the way a
/// POSIX shell would: inside single quotes nothing is special, and a `'` is written as
/// `'\''`. Formats in it are still expanded by commands that expand formats.
pub fn tmux_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Rejects text that cannot be an argument (NUL) or that tmux would rewrite in a name.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), TmuxError> {
    if name.is_empty() {
        return Err(TmuxError::invalid(what, "it is empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(TmuxError::invalid(
            what,
            format!("{name:?} has control characters, which tmux would rewrite"),
        ));
    }
    Ok(())
}

/// A session name must also survive tmux's `:`/`.` rewriting to be found again.
pub(crate) fn check_session(session: &str) -> Result<(), TmuxError> {
    check_name("tmux session name", session)?;
    if session.contains([':', '.']) {
        return Err(TmuxError::invalid(
            "tmux session name",
            format!("{session:?} has ':' or '.', which tmux replaces with '_'"),
        ));
    }
    Ok(())
}

/// Text passed through as it is (targets such as `@2`, hook commands): it only has to
/// be a possible argument.
pub(crate) fn check_text(what: &str, text: &str) -> Result<(), TmuxError> {
    if text.is_empty() || text.contains('\0') {
        return Err(TmuxError::invalid(
            what,
            format!("{text:?} is empty or contains NUL"),
        ));
    }
    Ok(())
}

/// `=name`: exact match, so `orch` never means `orch-old`.
pub(crate) fn session_target(session: &str) -> String {
    format!("={session}")
}

/// `=name:`: the session's current window; commands whose `-t` takes a window or pane
/// (set-hook, set-option, new-window, list-panes -s) reject the bare `=name` form.
pub(crate) fn session_window_target(session: &str) -> String {
    format!("={session}:")
}

/// The words to hand to tmux after `--` so that the command is executed directly.
///
/// tmux runs a single word through `sh -c`, so a one-word argv is prefixed with
/// `/usr/bin/env --`, which executes it by PATH lookup just as `execvp` would.
pub(crate) fn exec_argv(argv: &[String]) -> Result<Vec<String>, TmuxError> {
    let Some(program) = argv.first() else {
        return Err(TmuxError::invalid("command", "the argv is empty"));
    };
    if program.is_empty() {
        return Err(TmuxError::invalid("command", "the program name is empty"));
    }
    if let Some(bad) = argv.iter().find(|word| word.contains('\0')) {
        return Err(TmuxError::invalid(
            "command",
            format!("{bad:?} contains NUL"),
        ));
    }
    if argv.len() > 1 {
        return Ok(argv.to_vec());
    }
    // env would read NAME=VALUE as an assignment, not a program.
    if program.contains('=') {
        return Err(TmuxError::invalid(
            "command",
            format!("{program:?} alone contains '=': give its path or add an argument"),
        ));
    }
    Ok(vec!["/usr/bin/env".into(), "--".into(), program.clone()])
}

/// The `NAME=VALUE` values of `-e` options.
pub(crate) fn env_values(env: &[(String, String)]) -> Result<Vec<String>, TmuxError> {
    let mut args = Vec::with_capacity(env.len());
    for (name, value) in env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(TmuxError::invalid(
                "environment variable name",
                format!("{name:?} is empty or contains '=' or NUL"),
            ));
        }
        if value.contains('\0') {
            return Err(TmuxError::invalid(
                "environment variable value",
                format!("the value of {name} contains NUL"),
            ));
        }
        args.push(format!("{name}={value}"));
    }
    Ok(args)
}

/// The `-c` value: an existing directory (a pane whose directory is missing silently
/// starts in `$HOME`, where an agent must not run), absolute (tmux would resolve a
/// relative one against its own idea of the client's directory), UTF-8, and escaped for
/// format expansion.
pub(crate) fn cwd_arg(cwd: &Path) -> Result<String, TmuxError> {
    let absolute = std::path::absolute(cwd)
        .map_err(|err| TmuxError::invalid("working directory", format!("{cwd:?}: {err}")))?;
    if !absolute.is_dir() {
        return Err(TmuxError::invalid(
            "working directory",
            format!("{} is not an existing directory", absolute.display()),
        ));
    }
    let Some(text) = absolute.to_str() else {
        return Err(TmuxError::invalid(
            "working directory",
            format!("{absolute:?} is not valid UTF-8"),
        ));
    };
    if text.contains('\0') {
        return Err(TmuxError::invalid("working directory", "it contains NUL"));
    }
    Ok(escape_format(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(std::string::ToString::to_string).collect()
    }

    #[test]
    fn trailing_semicolons_are_escaped_and_nothing_else_changes() {
        assert_eq!(escape_arg("a;"), "a\\;");
        assert_eq!(escape_arg(";"), "\\;");
        assert_eq!(escape_arg("a\\;"), "a\\\\;");
        assert_eq!(escape_arg("a;b"), "a;b");
        assert_eq!(escape_arg(""), "");
        assert_eq!(escape_arg("$(id) 'x' #{pane_id}"), "$(id) 'x' #{pane_id}");
    }

    #[test]
    fn formats_and_quotes() {
        assert_eq!(escape_format("a#{b}#"), "a##{b}##");
        assert_eq!(tmux_quote("it's"), "'it'\\''s'");
        assert_eq!(tmux_quote(""), "''");
    }

    #[test]
    fn session_names_that_tmux_would_rewrite_are_refused() {
        assert!(check_session("orch-demo_1").is_ok());
        assert!(check_session("a#b").is_ok());
        for bad in ["", "a:b", "a.b", "a\tb", "a\nb", "a\0b"] {
            assert!(
                matches!(check_session(bad), Err(TmuxError::InvalidArgument { .. })),
                "{bad:?}"
            );
        }
        assert!(check_name("window name", "task 1: build").is_ok());
        assert!(check_text("target", "").is_err());
    }

    #[test]
    fn argv_of_one_word_is_not_given_to_a_shell() {
        assert_eq!(
            exec_argv(&words(&["true"])).unwrap(),
            words(&["/usr/bin/env", "--", "true"])
        );
        assert_eq!(
            exec_argv(&words(&["sh", "-c", "exit 3"])).unwrap(),
            words(&["sh", "-c", "exit 3"])
        );
        assert!(exec_argv(&[]).is_err());
        assert!(exec_argv(&words(&[""])).is_err());
        assert!(exec_argv(&words(&["A=1"])).is_err());
        assert!(exec_argv(&words(&["echo", "a\0b"])).is_err());
    }

    #[test]
    fn env_pairs_are_checked() {
        let env = vec![("A".to_string(), "x=y z".to_string())];
        assert_eq!(env_values(&env).unwrap(), words(&["A=x=y z"]));
        assert!(env_values(&[(String::new(), "v".into())]).is_err());
        assert!(env_values(&[("A=B".into(), "v".into())]).is_err());
        assert!(env_values(&[("A".into(), "v\0".into())]).is_err());
    }

    #[test]
    fn cwd_exists_is_absolute_and_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a#b");
        std::fs::create_dir(&odd).unwrap();
        let expected = format!("{}/a##b", dir.path().display());
        assert_eq!(cwd_arg(&odd).unwrap(), expected);
        let relative = cwd_arg(Path::new(".")).unwrap();
        assert!(relative.starts_with('/'), "{relative}");
        assert!(cwd_arg(Path::new("")).is_err());
        assert!(cwd_arg(&dir.path().join("missing")).is_err());
    }
}
