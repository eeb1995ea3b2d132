//! One module per subcommand. Each takes plain values (never clap types) and returns the
//! exit code, or an error whose type picks it.

pub mod doctor;
pub mod init;
mod output;
pub mod plan;
pub mod validate;

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
