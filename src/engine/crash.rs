//! Fault injection for tests: `ORCH_ENGINE_CRASH=before|after:<event>[:<n>]` makes the engine
//! kill itself with SIGKILL right before or right after journaling the `n`th (default: first)
//! event of that name, e.g. `before:task_agent_started` (the agent's window exists, the journal
//! does not say so) or `after:task_done` (between two tasks). Only the first engine of a run
//! obeys it: the knob stays in the tmux session's environment, and the engine `orch resume`
//! starts must not crash again.

use crate::state::Event;

pub(super) const CRASH_ENV: &str = "ORCH_ENGINE_CRASH";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum When {
    Before,
    After,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CrashPoint {
    when: When,
    event: String,
    /// Occurrences of `event` still to pass before the crash.
    left: u32,
}

impl CrashPoint {
    /// The knob's setting; `None` when unset or when this engine is not the run's first.
    pub(super) fn from_env(first_engine: bool) -> anyhow::Result<Option<CrashPoint>> {
        match std::env::var(CRASH_ENV) {
            Ok(value) if first_engine && !value.trim().is_empty() => Self::parse(&value).map(Some),
            _ => Ok(None),
        }
    }

    pub(super) fn parse(text: &str) -> anyhow::Result<CrashPoint> {
        let bad = || {
            anyhow::anyhow!(
                "{CRASH_ENV}={text:?} is not a crash point: write `before:<event>` or \
                 `after:<event>[:<n>]`, e.g. `after:task_done:2` (event names as in \
                 events.jsonl), or unset it"
            )
        };
        let mut parts = text.trim().split(':');
        let when = match parts.next() {
            Some("before") => When::Before,
            Some("after") => When::After,
            _ => return Err(bad()),
        };
        let event = parts.next().filter(|e| !e.is_empty()).ok_or_else(bad)?;
        let n: u32 = match parts.next() {
            None => 1,
            Some(n) => n.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(CrashPoint {
            when,
            event: event.to_string(),
            left: n,
        })
    }

    /// Called before (`When::Before`) and after (`When::After`) each event is journaled: dies
    /// here when this is the chosen moment.
    pub(super) fn check(&mut self, when: When, event: &Event) {
        if when != self.when || event_name(event) != self.event {
            return;
        }
        self.left -= 1;
        if self.left == 0 {
            eprintln!(
                "orch: crashing on purpose {} journaling `{}` ({CRASH_ENV})",
                if when == When::Before {
                    "before"
                } else {
                    "after"
                },
                self.event
            );
            // SAFETY: kill(2) on ourselves; SIGKILL cannot be caught, like a real crash.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

/// The event's name in the journal, e.g. `task_started`.
fn event_name(event: &Event) -> String {
    serde_json::to_value(event)
        .ok()
        .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(String::from))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TaskId;

    #[test]
    fn crash_points_parse_or_say_how_to_write_them() {
        let point = CrashPoint::parse("after:task_done:2").unwrap();
        assert_eq!(
            point,
            CrashPoint {
                when: When::After,
                event: "task_done".into(),
                left: 2
            }
        );
        assert_eq!(
            CrashPoint::parse("before:planning_started").unwrap().left,
            1
        );
        for bad in [
            "",
            "during:x",
            "after:",
            "after:x:0",
            "after:x:y",
            "after:x:1:2",
        ] {
            let err = CrashPoint::parse(bad).unwrap_err().to_string();
            assert!(err.contains("before:<event>"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_the_chosen_occurrence_counts() {
        let mut point = CrashPoint::parse("after:task_done:3").unwrap();
        let done = Event::TaskDone {
            task: TaskId::new("a"),
            attempt: 1,
        };
        point.check(When::Before, &done);
        point.check(When::After, &Event::RunResumed {});
        point.check(When::After, &done);
        point.check(When::After, &done);
        assert_eq!(point.left, 1, "two of three passed; the third would crash");
        assert_eq!(event_name(&done), "task_done");
    }
}
