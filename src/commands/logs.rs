//! `orch logs TASK [-f]`: what a task's agent printed (its latest attempt unless `--attempt`),
//! `planner` for the planner; for an agent CLI, the transcript of its event stream. `-f`
//! follows it until the agent exits.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use super::follow::Follower;
use super::{Global, runs};
use crate::error::{EXIT_OK, usage};
use crate::plan::TaskId;

pub(crate) fn run(
    global: &Global,
    run: Option<&str>,
    task: &str,
    attempt: Option<u32>,
    follow: bool,
) -> anyhow::Result<u8> {
    let loaded = runs::load(global, run)?;
    let (dir, attempts) = if task == "planner" {
        let n = attempt.unwrap_or(loaded.state.planning_attempt());
        (
            loaded.dir.planner_attempt(n.max(1)),
            loaded.state.planning_attempt(),
        )
    } else {
        let id = TaskId::new(task);
        let Some(state) = loaded.state.tasks.get(&id) else {
            let known: Vec<String> = loaded.state.tasks.keys().map(ToString::to_string).collect();
            return Err(usage(format!(
                "run {} has no task `{task}` (tasks: {}; or `planner`)",
                loaded.info.run_id,
                if known.is_empty() {
                    "none yet".into()
                } else {
                    known.join(", ")
                }
            )));
        };
        let n = attempt.unwrap_or(state.attempts);
        if n == 0 {
            return Err(usage(format!(
                "task {task} has not started yet: `orch status` shows why"
            )));
        }
        (loaded.dir.task_attempt(&id, n), state.attempts)
    };
    if attempt.is_some_and(|a| a == 0 || a > attempts) {
        return Err(usage(format!("`{task}` has {attempts} attempt(s)")));
    }
    // An agent CLI's event stream reads best as its transcript; the raw output stays in
    // output.log.
    let transcript = dir.join("transcript.log");
    let log = if transcript.exists() {
        transcript
    } else {
        dir.join("output.log")
    };
    let mut offset = 0u64;
    let mut out = std::io::stdout().lock();
    let mut follower = if follow {
        Some(Follower::new(&[&dir])?)
    } else {
        None
    };
    loop {
        if let Ok(mut file) = std::fs::File::open(&log) {
            let len = file.metadata().map_or(offset, |m| m.len());
            if len < offset {
                // The log reached its cap and was cut (see `limits.output_cap`): what comes
                // next is its end, after the line saying how much was cut.
                writeln!(
                    out,
                    "\n[orch logs: the log reached limits.output_cap and was cut; following \
                     its end]"
                )?;
                offset = len;
            }
            file.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            file.read_to_end(&mut buf)?;
            offset += buf.len() as u64;
            out.write_all(&buf)?;
            out.flush()?;
        }
        let Some(follower) = follower.as_mut() else {
            break;
        };
        if dir.join("exit.json").exists() {
            // The exit record is the agent runner's last act: the log is complete. Read what
            // came after the last read, then stop.
            if std::fs::metadata(&log).is_ok_and(|meta| meta.len() == offset) {
                break;
            }
            continue;
        }
        follower.wait(Duration::from_secs(1), None);
    }
    if !log.exists() && !follow {
        eprintln!("no output yet in {}", loaded.project.display(&log));
    }
    Ok(EXIT_OK)
}
