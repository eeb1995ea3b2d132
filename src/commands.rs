//! One module per subcommand. Each takes plain values (never clap types) and returns the
//! exit code, or an error whose type picks it.

pub mod attach;
pub mod demo;
pub mod doctor;
pub mod down;
mod follow;
pub mod init;
pub mod logs;
mod output;
pub mod plan;
pub mod report;
pub mod request;
pub mod resume;
mod runs;
pub mod status;
pub mod up;
pub mod validate;
pub mod wait;

use std::path::PathBuf;

use crate::project::Project;

/// What every command gets from the command line.
pub struct Global {
    /// `--config`, relative to `cwd`.
    pub config: Option<PathBuf>,
    pub cwd: PathBuf,
}

impl Global {
    pub fn project(&self) -> anyhow::Result<Project> {
        Project::discover(&self.cwd, self.config.as_deref())
    }
}
