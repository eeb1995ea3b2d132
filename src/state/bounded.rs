//! Journal lines of bounded size: the free text an event carries (a reason, a gate's detail,
//! a refusal's problems, the judge's and the oracle's words) comes from agents and their
//! output, and a hostile one could make it megabytes. Each text is cut to a bound, saying how
//! much was cut, and long lists keep their first items and a count of the rest; the full text
//! stays in the logs it came from (gates/, the attempts' output).

use super::Event;

/// The most bytes a single text keeps.
pub const TEXT_MAX: usize = 16 * 1024;
/// The most bytes one item of a list keeps.
const ITEM_MAX: usize = 4 * 1024;
/// The most items a list keeps (the last one then counts the rest).
const ITEMS_MAX: usize = 50;

impl Event {
    /// The event with its free text within bounds (unchanged when it already is).
    pub fn bounded(mut self) -> Event {
        match &mut self {
            Event::TaskFailed { reason, .. }
            | Event::TaskBlocked { reason, .. }
            | Event::TaskInterrupted { reason, .. }
            | Event::PlanningInterrupted { reason, .. }
            | Event::PlanningFailed { reason }
            | Event::EngineStopped { reason } => cut(reason, TEXT_MAX),
            Event::RunFinished {
                reason: Some(reason),
                ..
            } => cut(reason, TEXT_MAX),
            Event::GateChecked { detail, .. } => cut(detail, TEXT_MAX),
            // `orch retry` takes no longer message (see commands/retry.rs): only a request
            // file written by something else is cut.
            Event::TaskRetried {
                message: Some(message),
                ..
            } => cut(message, TEXT_MAX),
            Event::TaskTold { message, .. } => cut(message, TEXT_MAX),
            Event::JudgeRefused { problem, .. } => cut(problem, TEXT_MAX),
            Event::OracleAdvice { advice, .. } => cut(advice, TEXT_MAX),
            Event::Warning { message, .. } => cut(message, TEXT_MAX),
            Event::TaskRequeued { reasons, .. } => cut_list(reasons),
            Event::PlanningRefused { problems, .. } | Event::ApprovalRefused { problems, .. } => {
                cut_list(problems);
            }
            Event::JudgeVerdict { verdicts, .. } => {
                for verdict in verdicts {
                    cut(&mut verdict.reason, ITEM_MAX);
                }
            }
            _ => {}
        }
        self
    }
}

/// Cuts `text` to about `max` bytes, on a character boundary, saying how much was cut.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("… ({cut} more bytes cut from the journal)"));
}

fn cut_list(items: &mut Vec<String>) {
    for item in items.iter_mut() {
        cut(item, ITEM_MAX);
    }
    if items.len() > ITEMS_MAX {
        let rest = items.len() - (ITEMS_MAX - 1);
        items.truncate(ITEMS_MAX - 1);
        items.push(format!("… and {rest} more"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TaskId;

    #[test]
    fn long_texts_and_lists_are_cut_with_what_was_cut() {
        let event = Event::TaskFailed {
            task: TaskId::new("a"),
            attempt: 1,
            reason: "é".repeat(20_000),
        }
        .bounded();
        let Event::TaskFailed { reason, .. } = event else {
            unreachable!()
        };
        assert!(reason.len() < TEXT_MAX + 64);
        assert!(
            reason.ends_with("… (23616 more bytes cut from the journal)"),
            "{}",
            &reason[reason.len() - 60..]
        );

        let event = Event::TaskRequeued {
            task: TaskId::new("a"),
            attempt: 1,
            reasons: (0..1000).map(|i| format!("problem {i}")).collect(),
        }
        .bounded();
        let Event::TaskRequeued { reasons, .. } = event else {
            unreachable!()
        };
        assert_eq!(reasons.len(), 50);
        assert_eq!(reasons[49], "… and 951 more");
        let line = serde_json::to_string(
            &Event::PlanningFailed {
                reason: "x".repeat(10),
            }
            .bounded(),
        )
        .unwrap();
        assert!(line.contains("xxxxxxxxxx\""), "{line}");
    }
}
