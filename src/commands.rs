//! One module per subcommand. Each takes plain values (never clap types) and returns the
//! exit code, or an error whose type picks it.

mod admission;
pub(crate) mod approve;
pub(crate) mod attach;
pub(crate) mod budget;
pub(crate) mod demo;
pub(crate) mod diff;
pub(crate) mod discard;
pub(crate) mod doctor;
pub(crate) mod down;
mod follow;
pub(crate) mod init;
pub(crate) mod logs;
pub(crate) mod merge;
pub(crate) mod output;
pub(crate) mod plan;
pub(crate) mod report;
pub(crate) mod request;
pub(crate) mod resume;
pub(crate) mod retry;
mod runs;
pub(crate) mod runs_list;
pub(crate) mod status;
pub(crate) mod tell;
pub(crate) mod up;
pub(crate) mod validate;
pub(crate) mod wait;

use std::path::PathBuf;

use crate::project::Project;

/// What every command gets from the command line.
pub(crate) struct Global {
    /// `--config`, relative to `cwd`.
    pub config: Option<PathBuf>,
    pub cwd: PathBuf,
}

impl Global {
    pub(crate) fn project(&self) -> anyhow::Result<Project> {
        Project::discover(&self.cwd, self.config.as_deref())
    }
}
