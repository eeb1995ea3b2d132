//! Scheduling: which tasks may start now (their dependencies done, under `max_parallel`), and
//! which become blocked when a task fails for good. Pure functions over the tasks' states, so
//! that the rules are tested without tmux or an engine.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::TaskId;
use crate::state::TaskStatus;

/// What scheduling needs to know of a task.
pub(super) struct TaskView<'a> {
    pub id: &'a TaskId,
    pub status: TaskStatus,
    pub depends_on: &'a [TaskId],
}

/// The tasks to start now, in plan order: pending, every dependency done, and no more than
/// `max_parallel` running in all.
pub(super) fn ready<'a>(tasks: &[TaskView<'a>], max_parallel: usize) -> Vec<&'a TaskId> {
    let state: BTreeMap<&TaskId, TaskStatus> = tasks.iter().map(|t| (t.id, t.status)).collect();
    let running = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Running)
        .count();
    let room = max_parallel.saturating_sub(running);
    tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Pending)
        .filter(|t| {
            t.depends_on
                .iter()
                .all(|d| state.get(d) == Some(&TaskStatus::Done))
        })
        .map(|t| t.id)
        .take(room)
        .collect()
}

/// The pending tasks that can never run because `failed` failed: its dependents, and theirs,
/// each with the reason naming the task that failed.
pub(super) fn blocked_by<'a>(tasks: &[TaskView<'a>], failed: &TaskId) -> Vec<(&'a TaskId, String)> {
    let mut doomed: BTreeSet<&TaskId> = BTreeSet::from([failed]);
    let mut out = Vec::new();
    loop {
        let before = out.len();
        for t in tasks {
            if t.status == TaskStatus::Pending
                && !doomed.contains(t.id)
                && t.depends_on.iter().any(|d| doomed.contains(d))
            {
                doomed.insert(t.id);
                let via = t
                    .depends_on
                    .iter()
                    .find(|d| doomed.contains(d))
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let reason = if via == failed.as_str() {
                    format!("blocked: task {failed} failed")
                } else {
                    format!("blocked: task {via} is blocked (task {failed} failed)")
                };
                out.push((t.id, reason));
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Whether nothing is left to do: nothing running, and nothing that could still start.
pub(super) fn settled(tasks: &[TaskView]) -> bool {
    !tasks.iter().any(|t| t.status == TaskStatus::Running) && ready(tasks, usize::MAX).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: &[&str]) -> Vec<TaskId> {
        n.iter().map(|s| TaskId::new(*s)).collect()
    }

    struct Fixture {
        ids: Vec<TaskId>,
        deps: Vec<Vec<TaskId>>,
        status: Vec<TaskStatus>,
    }

    impl Fixture {
        fn new(spec: &[(&str, &[&str], TaskStatus)]) -> Self {
            Fixture {
                ids: spec.iter().map(|(i, _, _)| TaskId::new(*i)).collect(),
                deps: spec.iter().map(|(_, d, _)| ids(d)).collect(),
                status: spec.iter().map(|(_, _, s)| *s).collect(),
            }
        }
        fn views(&self) -> Vec<TaskView<'_>> {
            (0..self.ids.len())
                .map(|i| TaskView {
                    id: &self.ids[i],
                    status: self.status[i],
                    depends_on: &self.deps[i],
                })
                .collect()
        }
    }

    use TaskStatus::*;

    #[test]
    fn ready_respects_dependencies_and_parallelism() {
        let f = Fixture::new(&[
            ("1", &[], Pending),
            ("2", &[], Pending),
            ("3", &["1"], Pending),
            ("4", &[], Running),
        ]);
        let r: Vec<String> = ready(&f.views(), 2)
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        assert_eq!(r, vec!["1"]);
        let r: Vec<String> = ready(&f.views(), 8)
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        assert_eq!(r, vec!["1", "2"]);
        let f = Fixture::new(&[("1", &[], Done), ("3", &["1"], Pending)]);
        assert_eq!(ready(&f.views(), 1).len(), 1);
    }

    #[test]
    fn failure_blocks_dependents_transitively_and_spares_the_rest() {
        let f = Fixture::new(&[
            ("1", &[], Failed),
            ("2", &["1"], Pending),
            ("3", &["2"], Pending),
            ("4", &[], Pending),
            ("5", &["4", "3"], Pending),
        ]);
        let blocked: Vec<(String, String)> = blocked_by(&f.views(), &TaskId::new("1"))
            .into_iter()
            .map(|(i, r)| (i.to_string(), r))
            .collect();
        assert_eq!(blocked.len(), 3, "{blocked:?}");
        assert_eq!(blocked[0], ("2".into(), "blocked: task 1 failed".into()));
        assert!(
            blocked
                .iter()
                .any(|(i, r)| i == "5" && r.contains("task 3 is blocked"))
        );
        assert!(!blocked.iter().any(|(i, _)| i == "4"));
    }

    #[test]
    fn settled_when_nothing_runs_or_can_start() {
        let f = Fixture::new(&[("1", &[], Done), ("2", &["1"], Blocked)]);
        assert!(settled(&f.views()));
        let f = Fixture::new(&[("1", &[], Done), ("2", &["1"], Pending)]);
        assert!(!settled(&f.views()));
        let f = Fixture::new(&[("1", &[], Running)]);
        assert!(!settled(&f.views()));
    }
}
