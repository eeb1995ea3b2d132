//! A project whose agents are ours: a planner and workers of `kind: command` that append a
//! line to `counts/starts-<id>` each time they start (so a test knows exactly how often each
//! agent ran), then wait for the test to let them finish (`counts/go-<id>` or
//! `counts/go-all`). `counts/` is git-ignored, so none of this is an ownership violation.
//! `Up::counting` makes such a project; the methods here read and steer its agents. Nothing
//! here sleeps a fixed time.

use super::{Options, Up};

pub(crate) const WORKER: &str = r#"#!/bin/sh
# A worker of the resume tests: counts its start, waits to be let go, writes its files.
id="$ORCH_TASK_ID"
# The counts' directory: the project's counts/ (a run on a branch is told where it is).
counts="${COUNTS:-counts}"
mkdir -p "$counts"
# Task b ignores hangups when asked: it then outlives its tmux server.
if [ "$id" = b ] && [ -e "$counts"/b-ignores-hup ]; then trap '' HUP; fi
# The pid first: a test that saw the start may read the pid at once.
echo $$ >> "$counts/pids-$id"
echo "start $$ ${ORCH_RESUME_SESSION:-}" >> "$counts/starts-$id"
echo "ORCH_SESSION sess-$id-$$"
while [ ! -e "$counts/go-$id" ] && [ ! -e "$counts"/go-all ]; do sleep 0.02; done
for f in $ORCH_FILES; do mkdir -p "$(dirname "$f")"; echo "$id done" > "$f"; done
echo "task $id finished"
"#;

pub(crate) const PLANNER: &str = r#"#!/bin/sh
# The planner of the resume tests: counts its start, waits to be let go, answers a plan.
counts="${COUNTS:-counts}"
mkdir -p "$counts"
echo $$ >> "$counts"/pids-planner
echo "start $$" >> "$counts"/starts-planner
while [ ! -e "$counts"/go-planner ] && [ ! -e "$counts"/go-all ]; do sleep 0.02; done
# Asked for one bad answer: no plan at all.
if [ -e "$counts"/bad-plan-once ]; then rm "$counts"/bad-plan-once; echo "no plan today"; exit 0; fi
mkdir -p specs
echo '# the spec' > specs/s.md
cat plan.json
"#;

/// a and b run side by side; c needs both.
pub(crate) const PLAN: &str = r#"{"specs": [{"file": "specs/s.md"}],
 "tasks": [
  {"id": "a", "agent": "mine", "task": "write a", "files": ["tests/a_test.txt", "a.txt"]},
  {"id": "b", "agent": "mine", "task": "write b", "files": ["tests/b_test.txt", "b.txt"]},
  {"id": "c", "agent": "mine", "task": "write c", "files": ["tests/c_test.txt", "c.txt"], "depends_on": ["a", "b"]}
 ]}"#;

const CONFIG: &str = "\
agents:
  plan:
    kind: command
    command: [\"./planner.sh\"]
  mine:
    kind: command
    command: [\"./worker.sh\"]
  judge:
    kind: scripted
    sample: true
roles:
  planner: plan
  judge: judge
  workers: [mine]
limits:
  max_parallel: 4
  task_timeout: 600s
  planner_retries: 1
";

/// The same for a run on a branch: the agents work in the run's worktree, and are told where
/// the project's `counts/` is (`COUNTS`), which their sandbox lets them write.
const BRANCH_AGENTS: &str = "\
agents:
  plan:
    kind: command
    command: [\"./planner.sh\"]
    env: {COUNTS: \"@ROOT@/counts\"}
  mine:
    kind: command
    command: [\"./worker.sh\"]
    env: {COUNTS: \"@ROOT@/counts\"}
";

impl Up {
    /// `counting`, committed: its runs are on a branch, in a worktree of their own.
    pub(crate) fn counting_on_branch(name: &str) -> Up {
        let config = CONFIG.replacen(
            "agents:\n  plan:\n    kind: command\n    command: [\"./planner.sh\"]\n  mine:\n    \
             kind: command\n    command: [\"./worker.sh\"]\n",
            BRANCH_AGENTS,
            1,
        );
        assert!(config.contains("COUNTS"), "{config}");
        let config = format!("{config}sandbox_paths:\n  write: [\"@ROOT@/counts\"]\n");
        let up = Options::new(name)
            .config(&config)
            .ignore("counts/\nplan.json\n")
            .file("specs/s.md", "# the spec\n")
            .plan(PLAN)
            .script("planner.sh", PLANNER)
            .script("worker.sh", WORKER)
            .request("Build a, b and c")
            .committed()
            .start();
        std::fs::create_dir_all(up.p.path("counts")).unwrap();
        up
    }

    /// A project whose planner and workers count their starts and wait to be let go (see
    /// the top of this module).
    pub(crate) fn counting(name: &str) -> Up {
        let up = Options::new(name)
            .config(CONFIG)
            .ignore("counts/\nplan.json\n")
            // The spec exists from the start, so that a run given the plan passes its gates.
            .file("specs/s.md", "# the spec\n")
            .plan(PLAN)
            .script("planner.sh", PLANNER)
            .script("worker.sh", WORKER)
            .request("Build a, b and c")
            .start();
        std::fs::create_dir_all(up.p.path("counts")).unwrap();
        up
    }

    /// What each start of agent `id` was given to continue (`ORCH_RESUME_SESSION`), in order.
    pub(crate) fn resumed_sessions(&self, id: &str) -> Vec<String> {
        std::fs::read_to_string(self.p.path(&format!("counts/starts-{id}")))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(' ').nth(2).unwrap_or("").to_string())
            .collect()
    }

    /// How many times the agent `id` (a task id, or `planner`) started.
    pub(crate) fn starts(&self, id: &str) -> usize {
        std::fs::read_to_string(self.p.path(&format!("counts/starts-{id}")))
            .map_or(0, |t| t.lines().count())
    }

    /// The pids of the agent's starts, oldest first, as the agent saw them (`$$`): in a
    /// sandbox, a pid of its own pid namespace.
    pub(crate) fn inner_pids(&self, id: &str) -> Vec<i32> {
        std::fs::read_to_string(self.p.path(&format!("counts/pids-{id}")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The pids of the agent's starts, oldest first, as this test sees them: each agent is
    /// found by its pid in its own namespace and its variables (a sandboxed agent's `$$` is
    /// not its pid out here); 0 for one no longer running.
    pub(crate) fn pids(&self, id: &str) -> Vec<i32> {
        let root = self.work_dir().display().to_string();
        self.inner_pids(id)
            .into_iter()
            .map(|inner| outer_pid(inner, id, &root).unwrap_or(0))
            .collect()
    }

    /// Lets agent `id` (or `all`) finish.
    pub(crate) fn release(&self, id: &str) {
        std::fs::write(self.p.path(&format!("counts/go-{id}")), "").unwrap();
    }

    pub(crate) fn wait_for_starts(&self, ids: &[&str]) {
        self.wait_until(&format!("{ids:?} to start"), || {
            ids.iter().all(|id| self.starts(id) >= 1)
        });
    }
}

/// The pid out here of the live agent `id` (a task id, or `planner`) of the project at `root`
/// whose pid in its own namespace is `inner`.
fn outer_pid(inner: i32, id: &str, root: &str) -> Option<i32> {
    let var = |environ: &[u8], name: &str| -> Option<String> {
        environ.split(|&b| b == 0).find_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            entry
                .strip_prefix(name)?
                .strip_prefix('=')
                .map(String::from)
        })
    };
    super::process_by_inner_pid(inner, |environ| {
        let who = if id == "planner" {
            var(environ, "ORCH_ROLE")
        } else {
            var(environ, "ORCH_TASK_ID")
        };
        who.as_deref() == Some(id) && var(environ, "ORCH_PROJECT_DIR").as_deref() == Some(root)
    })
    .map(|(pid, _)| pid)
}

/// Whether `pid` is a live process (a zombie is not: nothing of it runs).
pub(crate) fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        // SAFETY: signal 0 only asks whether the process exists.
        Err(_) => {
            !std::path::Path::new("/proc/self").exists() && unsafe { libc::kill(pid, 0) } == 0
        }
    }
}
