//! The agents the engine runs, in one registry keyed by attempt directory: a task's attempt,
//! the planner's, the judge's, an oracle's. The directory is what every report about an agent
//! names (its exit record, its logs, the pane's launcher), so finding which agent something
//! is about is one lookup, whatever its role.
//!
//! An agent is registered when its launch is sent to tmux (see launch.rs), before its pane
//! exists: its pane and pid come with tmux's answer, and an exit record that comes first is
//! handled all the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::plan::TaskId;
use crate::state::Event;

/// What an agent is there for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Role {
    /// A task's attempt.
    Task(TaskId),
    /// The planner's attempt.
    Planner,
    /// The judge, on these tasks.
    Judge(Vec<TaskId>),
    /// An oracle advising a task, with the reasons its next attempt will carry.
    Oracle(TaskId, Vec<String>),
}

impl Role {
    /// The role the agent's prompt and invocation are written for.
    pub(super) fn prompt_role(&self) -> crate::prompt::Role {
        match self {
            Role::Task(_) => crate::prompt::Role::Worker,
            Role::Planner => crate::prompt::Role::Planner,
            Role::Judge(_) => crate::prompt::Role::Judge,
            Role::Oracle(..) => crate::prompt::Role::Oracle,
        }
    }

    /// The task a task's attempt works on (not an oracle's: its leftovers are nobody's work).
    pub(super) fn task(&self) -> Option<&TaskId> {
        match self {
            Role::Task(id) => Some(id),
            _ => None,
        }
    }

    /// The task the agent is about, an oracle's included (its invocation says so).
    pub(super) fn about(&self) -> Option<&TaskId> {
        match self {
            Role::Task(id) | Role::Oracle(id, _) => Some(id),
            _ => None,
        }
    }

    /// The journal's word that attempt `attempt` starts (journaled before its pane is asked
    /// for); `continues`: the CLI session a task's attempt continues.
    pub(super) fn started(&self, attempt: u32, continues: Option<String>) -> Event {
        match self {
            Role::Task(task) => Event::TaskStarted {
                task: task.clone(),
                attempt,
                continues,
            },
            Role::Planner => Event::PlanningStarted { attempt },
            Role::Judge(tasks) => Event::JudgeStarted {
                attempt,
                tasks: tasks.clone(),
            },
            Role::Oracle(task, _) => Event::OracleStarted {
                task: task.clone(),
                attempt,
            },
        }
    }

    /// The journal's word that the agent's pane runs, if its role has one.
    pub(super) fn pane_started(&self, attempt: u32, pane: &crate::tmux::PaneInfo) -> Option<Event> {
        let (id, pid) = (pane.pane_id.clone(), pane.pid);
        match self {
            Role::Task(task) => Some(Event::TaskAgentStarted {
                task: task.clone(),
                attempt,
                pane: id,
                window: pane.window_id.clone(),
                pid,
            }),
            Role::Planner => Some(Event::PlanningAgentStarted {
                attempt,
                pane: id,
                pid,
            }),
            Role::Judge(_) => Some(Event::JudgeAgentStarted {
                attempt,
                pane: id,
                pid,
            }),
            Role::Oracle(..) => None,
        }
    }
}

/// The pane an agent runs in, and its process (the pane's, leader of its process group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pane {
    pub id: String,
    pub pid: u32,
}

/// One running agent.
#[derive(Debug, Clone)]
pub(super) struct Agent {
    pub role: Role,
    pub attempt: u32,
    pub dir: PathBuf,
    /// None while tmux has not answered its launch yet, and for an agent adopted by a resumed
    /// engine after it ended (its old pane may be someone else's now).
    pub pane: Option<Pane>,
    /// Its last output or file activity, for the timeout.
    pub last_activity: Instant,
}

impl Agent {
    pub(super) fn new(role: Role, attempt: u32, dir: PathBuf, pane: Option<Pane>) -> Agent {
        Agent {
            role,
            attempt,
            dir,
            pane,
            last_activity: Instant::now(),
        }
    }

    /// Its process group, when known and safe to signal.
    pub(super) fn group(&self) -> Option<u32> {
        self.pane.as_ref().map(|p| p.pid).filter(|&pid| pid > 1)
    }
}

/// Every running agent, by attempt directory.
#[derive(Debug, Default)]
pub(super) struct Agents {
    by_dir: BTreeMap<PathBuf, Agent>,
    /// Attempt directories whose pane was seen gone without an exit record, and since when.
    gone_since: BTreeMap<PathBuf, Instant>,
    /// How many agents ended (were taken out) so far: what they used is final then, and the
    /// budget's look before a launch must not be skipped (see budget.rs).
    ended: u64,
}

impl Agents {
    pub(super) fn insert(&mut self, agent: Agent) {
        self.by_dir.insert(agent.dir.clone(), agent);
    }

    pub(super) fn get(&self, dir: &Path) -> Option<&Agent> {
        self.by_dir.get(dir)
    }

    /// Takes the agent of `dir` out: its end is being handled.
    pub(super) fn remove(&mut self, dir: &Path) -> Option<Agent> {
        self.gone_since.remove(dir);
        let agent = self.by_dir.remove(dir);
        self.ended += u64::from(agent.is_some());
        agent
    }

    /// How many agents ended so far.
    pub(super) fn ended(&self) -> u64 {
        self.ended
    }

    /// Every agent, in the order of their directories (for a stable order of events).
    pub(super) fn iter(&self) -> impl Iterator<Item = &Agent> {
        self.by_dir.values()
    }

    /// Takes every agent out.
    pub(super) fn drain(&mut self) -> Vec<Agent> {
        self.gone_since.clear();
        self.ended += self.by_dir.len() as u64;
        std::mem::take(&mut self.by_dir).into_values().collect()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_dir.is_empty()
    }

    /// The running attempt of task `id`.
    pub(super) fn task(&self, id: &TaskId) -> Option<&Agent> {
        self.iter().find(|a| a.role.task() == Some(id))
    }

    pub(super) fn has_task(&self, id: &TaskId) -> bool {
        self.task(id).is_some()
    }

    /// Whether any task's agent runs.
    pub(super) fn any_task(&self) -> bool {
        self.iter().any(|a| matches!(a.role, Role::Task(_)))
    }

    pub(super) fn planner(&self) -> Option<&Agent> {
        self.iter().find(|a| a.role == Role::Planner)
    }

    /// Whether the judge or an oracle is at work: the run cannot end meanwhile.
    pub(super) fn judging(&self) -> bool {
        self.iter()
            .any(|a| matches!(a.role, Role::Judge(_) | Role::Oracle(..)))
    }

    pub(super) fn judge(&self) -> Option<&Agent> {
        self.iter().find(|a| matches!(a.role, Role::Judge(_)))
    }

    /// Whether an agent runs in pane `pane`.
    pub(super) fn in_pane(&self, pane: &str) -> bool {
        self.iter()
            .any(|a| a.pane.as_ref().is_some_and(|p| p.id == pane))
    }

    /// The agent of `dir` showed a sign of life.
    pub(super) fn touch(&mut self, dir: &Path) {
        if let Some(agent) = self.by_dir.get_mut(dir) {
            agent.last_activity = Instant::now();
        }
    }

    /// Task `id`'s agent (or the planner's, for `None`) showed a sign of life.
    pub(super) fn touch_task(&mut self, id: Option<&TaskId>) {
        let now = Instant::now();
        let found = self.by_dir.values_mut().find(|a| match id {
            Some(id) => a.role.task() == Some(id),
            None => a.role == Role::Planner,
        });
        if let Some(agent) = found {
            agent.last_activity = now;
        }
    }

    /// Tmux answered the launch of the agent in `dir`; false if that agent has ended already.
    pub(super) fn set_pane(&mut self, dir: &Path, pane: Pane) -> bool {
        match self.by_dir.get_mut(dir) {
            Some(agent) => {
                agent.pane = Some(pane);
                true
            }
            None => false,
        }
    }

    /// How long the pane of the agent in `dir` has been seen gone without its exit record,
    /// counting from now if this is the first time.
    pub(super) fn gone_for(&mut self, dir: &Path) -> Duration {
        self.gone_since
            .entry(dir.to_path_buf())
            .or_insert_with(Instant::now)
            .elapsed()
    }

    /// Whether a running agent's pane was seen gone without its exit record: its loss is
    /// settled by the next listings of the panes (see `lost_for_good`), so they come sooner.
    pub(super) fn any_gone(&self) -> bool {
        self.gone_since
            .keys()
            .any(|dir| self.by_dir.contains_key(dir))
    }

    /// The agents silent for `timeout` by `now`.
    pub(super) fn stale(&self, now: Instant, timeout: Duration) -> Vec<Agent> {
        self.iter()
            .filter(|a| now.duration_since(a.last_activity) >= timeout)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(role: Role, dir: &str) -> Agent {
        Agent::new(role, 1, PathBuf::from(dir), None)
    }

    #[test]
    fn one_lookup_by_directory_whatever_the_role() {
        let mut agents = Agents::default();
        let a = TaskId::new("a");
        agents.insert(agent(Role::Task(a.clone()), "/r/tasks/a/1"));
        agents.insert(agent(Role::Oracle(a.clone(), vec![]), "/r/oracle/a/2"));
        agents.insert(agent(Role::Judge(vec![a.clone()]), "/r/judge/1"));
        assert!(agents.has_task(&a));
        assert_eq!(agents.task(&a).unwrap().dir, PathBuf::from("/r/tasks/a/1"));
        assert!(agents.judging());
        assert!(agents.planner().is_none());
        let oracle = agents.remove(Path::new("/r/oracle/a/2")).unwrap();
        assert_eq!(oracle.role.about(), Some(&a));
        assert_eq!(
            oracle.role.task(),
            None,
            "an oracle's is not the task's attempt"
        );
        // The pane's answer for an agent that already ended is told apart.
        let pane = Pane {
            id: "%3".into(),
            pid: 42,
        };
        assert!(!agents.set_pane(Path::new("/r/oracle/a/2"), pane.clone()));
        assert!(agents.set_pane(Path::new("/r/judge/1"), pane));
        assert!(agents.in_pane("%3"));
        assert_eq!(agents.judge().unwrap().group(), Some(42));
        assert_eq!(agents.drain().len(), 2);
        assert!(agents.is_empty());
    }

    #[test]
    fn an_unknown_pid_is_never_a_group_to_signal() {
        let mut a = agent(Role::Planner, "/r/planner/1");
        assert_eq!(a.group(), None);
        a.pane = Some(Pane {
            id: "%1".into(),
            pid: 0,
        });
        assert_eq!(a.group(), None, "0 would signal the engine's own group");
    }
}
