//! Fault knobs (`ORCH_SCRIPTED_FAULT`): make the scripted agent misbehave on purpose so that
//! orch's handling of bad plans, crashes, hangs and ownership violations can be tested without
//! a real model. A knob is `fault` or `fault@target`; several are separated by commas.

use std::collections::BTreeSet;
use std::fmt;

use crate::plan::TaskId;
use crate::prompt::Role;

/// The environment variable holding the fault list.
pub const FAULT_ENV: &str = "ORCH_SCRIPTED_FAULT";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Planner: attempt 1 answers an invalid plan, later attempts a valid one.
    BadPlan,
    /// Never a valid answer: prose without JSON; a worker writes nothing.
    Garbage,
    /// Exit 3 with a message on stderr (a worker first writes one file).
    Crash,
    /// Block forever without writing anything more (a worker first writes one file).
    Hang,
    /// Worker: also writes `stray/<task-id>.txt`, which it does not own.
    Violate,
    /// Worker: also deletes the project's `README.md` when it exists and is not its own.
    Delete,
    /// Worker: exits 0 without writing anything.
    NoWrite,
    /// Waits 2 s before each file written (instead of `ORCH_SCRIPTED_PACE`).
    Slow,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::BadPlan,
        Fault::Garbage,
        Fault::Crash,
        Fault::Hang,
        Fault::Violate,
        Fault::Delete,
        Fault::NoWrite,
        Fault::Slow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::BadPlan => "bad-plan",
            Fault::Garbage => "garbage",
            Fault::Crash => "crash",
            Fault::Hang => "hang",
            Fault::Violate => "violate",
            Fault::Delete => "delete",
            Fault::NoWrite => "no-write",
            Fault::Slow => "slow",
        }
    }

    fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error(
        "{FAULT_ENV}: unknown fault `{0}`; valid faults: {valid}, each optionally followed by \
         `@planner`, `@worker`, `@judge`, `@oracle` or `@TASK_ID`",
        valid = valid_names()
    )]
    Unknown(String),
    #[error("{FAULT_ENV}: `{0}` has an empty target after `@`: name a role or a task id")]
    EmptyTarget(String),
}

fn valid_names() -> String {
    Fault::ALL.map(Fault::name).join(", ")
}

/// One knob: a fault, and whom it applies to (`None`: whatever role runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    pub fault: Fault,
    pub target: Option<String>,
}

impl FaultSpec {
    /// A target matches a role by name, or a worker by its task id; both can match at once
    /// (a task called `judge` is hit by `crash@judge` too), which is good enough for tests.
    fn applies(&self, role: Role, task: Option<&TaskId>) -> bool {
        match &self.target {
            None => true,
            Some(target) => {
                target == role.name()
                    || (role == Role::Worker && task.is_some_and(|t| t.as_str() == target))
            }
        }
    }
}

/// The parsed fault list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults(pub Vec<FaultSpec>);

impl Faults {
    /// Parses `crash@worker, bad-plan` style text; blanks and empty items are ignored.
    pub fn parse(text: &str) -> Result<Faults, FaultError> {
        let mut specs = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, target) = match item.split_once('@') {
                Some((name, target)) => {
                    let target = target.trim();
                    if target.is_empty() {
                        return Err(FaultError::EmptyTarget(item.to_string()));
                    }
                    (name.trim(), Some(target.to_string()))
                }
                None => (item, None),
            };
            let fault =
                Fault::from_name(name).ok_or_else(|| FaultError::Unknown(name.to_string()))?;
            specs.push(FaultSpec { fault, target });
        }
        Ok(Faults(specs))
    }

    /// The faults that apply to this role (and task).
    pub fn active(&self, role: Role, task: Option<&TaskId>) -> Active {
        Active(
            self.0
                .iter()
                .filter(|s| s.applies(role, task))
                .map(|s| s.fault)
                .collect(),
        )
    }
}

/// The faults in effect for one run of the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Active(BTreeSet<Fault>);

impl Active {
    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_targets() {
        let faults = Faults::parse(" crash@worker, bad-plan ,,hang@3, slow@judge").unwrap();
        assert_eq!(
            faults.0,
            vec![
                FaultSpec {
                    fault: Fault::Crash,
                    target: Some("worker".into())
                },
                FaultSpec {
                    fault: Fault::BadPlan,
                    target: None
                },
                FaultSpec {
                    fault: Fault::Hang,
                    target: Some("3".into())
                },
                FaultSpec {
                    fault: Fault::Slow,
                    target: Some("judge".into())
                },
            ]
        );
        assert_eq!(Faults::parse("").unwrap(), Faults::default());
        for fault in Fault::ALL {
            assert_eq!(Faults::parse(fault.name()).unwrap().0[0].fault, fault);
        }
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = Faults::parse("crash,explode@worker").unwrap_err();
        assert_eq!(err, FaultError::Unknown("explode".into()));
        let text = err.to_string();
        for fault in Fault::ALL {
            assert!(text.contains(fault.name()), "{text}");
        }
        assert!(matches!(
            Faults::parse("crash@"),
            Err(FaultError::EmptyTarget(_))
        ));
    }

    #[test]
    fn targets_select_roles_and_tasks() {
        let faults = Faults::parse("crash@stats,hang@planner,garbage,violate@worker").unwrap();
        let stats = TaskId::new("stats");
        let text = TaskId::new("text");
        let worker_stats = faults.active(Role::Worker, Some(&stats));
        assert!(worker_stats.has(Fault::Crash) && worker_stats.has(Fault::Violate));
        assert!(worker_stats.has(Fault::Garbage) && !worker_stats.has(Fault::Hang));
        let worker_text = faults.active(Role::Worker, Some(&text));
        assert!(!worker_text.has(Fault::Crash) && worker_text.has(Fault::Violate));
        let planner = faults.active(Role::Planner, None);
        assert!(planner.has(Fault::Hang) && planner.has(Fault::Garbage));
        assert!(!planner.has(Fault::Crash) && !planner.has(Fault::Violate));
        // A task id only targets workers.
        let judge = Faults::parse("crash@stats")
            .unwrap()
            .active(Role::Judge, None);
        assert!(!judge.has(Fault::Crash));
    }
}
