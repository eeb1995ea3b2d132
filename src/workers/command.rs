//! `kind: command`: any program. It gets its argv from the config (placeholders filled, no
//! shell), the `ORCH_*` variables, and its stdout is its answer. A line `ORCH_SESSION <id>` on
//! its stdout names a session of its own: when the attempt is interrupted, the next one gets
//! `ORCH_RESUME_SESSION=<id>` to continue it. A line `ORCH_USAGE {"input_tokens":N,
//! "output_tokens":N,"cost_usd":X}` reports what a step of its work used (each line adds to
//! the attempt's use; `cost_usd` may be left out): counted live toward the run's budget, as an
//! agent CLI's event stream is.

use super::{Adapter, AgentCall, Assessment, fill};

/// What starts the line naming the agent's session.
pub(super) const SESSION_MARKER: &str = "ORCH_SESSION ";
/// What starts a line reporting use.
pub const USAGE_MARKER: &str = "ORCH_USAGE ";

/// The use one line of a command agent's output reports, if it is a usage line.
pub fn usage_of_line(line: &[u8]) -> Option<super::Usage> {
    let rest = line.strip_prefix(USAGE_MARKER.as_bytes())?;
    let usage: super::Usage = serde_json::from_slice(rest.trim_ascii()).ok()?;
    usage
        .cost_usd
        .is_none_or(|c| c.is_finite() && c >= 0.0)
        .then_some(usage)
}

/// The use the usage lines of `output` add up to; `None` when it has none.
pub fn usage_in(output: &[u8]) -> Option<super::Usage> {
    let mut tally = super::summary::Tally::default();
    let mut any = false;
    for usage in output.split(|&b| b == b'\n').filter_map(usage_of_line) {
        tally.add(usage.input_tokens, usage.output_tokens, usage.cost_usd);
        any = true;
    }
    if any { tally.usage() } else { None }
}

pub(super) struct Command;

impl Adapter for Command {
    fn argv(&self, call: &AgentCall) -> anyhow::Result<Vec<String>> {
        let command = call
            .agent
            .command
            .as_ref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| anyhow::anyhow!("agent `{}` has no `command` to run", call.name))?;
        Ok(command.iter().map(|a| fill(a, call)).collect())
    }

    fn assess(&self, stdout: &str) -> Assessment {
        // The latest line wins: an agent may start over in a new session.
        let session_id = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(SESSION_MARKER))
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(String::from);
        Assessment {
            session_id,
            ..Assessment::default()
        }
    }

    fn install_hint(&self) -> &'static str {
        "check the agent's `command` in orch.yaml: its first element must be a program on PATH \
         or a path relative to the project root"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_line_names_the_session_to_continue() {
        let out = "working\nORCH_SESSION s-1\nmore\nORCH_SESSION  s-2 \ndone\n";
        assert_eq!(Command.assess(out).session_id.as_deref(), Some("s-2"));
        assert_eq!(Command.assess("ORCH_SESSION \nx").session_id, None);
        assert_eq!(Command.assess("no session").session_id, None);
        assert_eq!(Command.assess(out).failure, None);
    }

    #[test]
    fn usage_lines_add_up_and_other_lines_are_ignored() {
        let out = b"ORCH_USAGE {\"input_tokens\":10,\"output_tokens\":2,\"cost_usd\":0.5}\n\
                    ORCH_USAGE not json\nsay ORCH_USAGE {}\n\
                    ORCH_USAGE {\"input_tokens\":5,\"output_tokens\":1}\n";
        let usage = usage_in(out).unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (15, 3));
        assert_eq!(usage.cost_usd, Some(0.5));
        assert_eq!(usage_in(b"nothing\n"), None);
        assert_eq!(
            usage_of_line(b"ORCH_USAGE {\"input_tokens\":1,\"output_tokens\":1,\"cost_usd\":-1}"),
            None
        );
    }
}
