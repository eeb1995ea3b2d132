//! `orch doctor`: is everything a run needs here? Each check prints what it found, and for a
//! problem, the exact fix. For each configured agent CLI: its binary and version, then what
//! its adapter says it needs (credentials in the environment the agent will get, first-run
//! settings), checked against the agent's own `env`.

use std::path::Path;
use std::process::{Command, Stdio};

use std::sync::mpsc;
use std::time::Duration;

use super::Global;
use crate::config::{AgentKind, Config, ConfigError};
use crate::error::{EXIT_FAILED, EXIT_OK};
use crate::project::Project;
use crate::workers;

/// The oldest tmux orch supports: argv commands and `-e` on new windows came in 3.0, and the
/// format and hook behaviour orch relies on settled in 3.2.
const MIN_TMUX: (u32, u32) = (3, 2);

struct Report {
    failed: bool,
}

impl Report {
    fn ok(&self, what: &str) {
        println!("  ok    {what}");
    }
    fn warn(&self, what: &str, fix: &str) {
        println!("  warn  {}\n        fix: {fix}", indented(what));
    }
    fn fail(&mut self, what: &str, fix: &str) {
        self.failed = true;
        println!("  FAIL  {}\n        fix: {fix}", indented(what));
    }
}

/// A message of several lines (a config error's snippet) kept under its status column.
fn indented(text: &str) -> String {
    text.replace('\n', "\n        ")
}

pub(crate) fn run(global: &Global) -> anyhow::Result<u8> {
    let project = global.project()?;
    let mut report = Report { failed: false };
    println!("project {}", project.root.display());
    check_tmux(&mut report);
    check_git(&mut report, &project);
    match project.load_config() {
        Ok(config) => {
            report.ok(&format!(
                "config {} ({} agent(s); planner {}, judge {}, workers {})",
                project.display(&project.config_path),
                config.agents.len(),
                config.roles.planner,
                config.roles.judge,
                config.roles.workers.join(", ")
            ));
            check_sandbox(&mut report, &config);
            check_agents(&mut report, &project, &config);
            check_sample(&mut report, &project, &config);
            check_gates(&mut report, &project, &config);
            check_notify(&mut report, &project, &config);
        }
        Err(e) => {
            let fix = config_fix(&e, &project);
            report.fail(&e.to_string(), &fix);
        }
    }
    if report.failed {
        println!(
            "something needed is missing: fix the FAIL lines above and run `orch doctor` again"
        );
        Ok(EXIT_FAILED)
    } else {
        println!("ready");
        Ok(EXIT_OK)
    }
}

fn check_tmux(report: &mut Report) {
    let Ok(path) = which::which("tmux") else {
        report.fail(
            "tmux not found on PATH",
            "install tmux 3.2 or newer (apt-get install tmux, brew install tmux)",
        );
        return;
    };
    let Some(text) = version_of(&path, &["-V"]) else {
        report.fail(
            &format!("{} -V gave no version", path.display()),
            "reinstall tmux",
        );
        return;
    };
    let version = text.trim_start_matches("tmux ").trim().to_string();
    if parse_version(&version).is_some_and(|v| v < MIN_TMUX) {
        report.fail(
            &format!("tmux {version} is too old"),
            &format!("install tmux {}.{} or newer", MIN_TMUX.0, MIN_TMUX.1),
        );
        return;
    }
    match can_start_server() {
        Ok(()) => report.ok(&format!(
            "tmux {version} ({}), can start a server",
            path.display()
        )),
        Err(e) => report.fail(
            &format!("tmux {version} cannot start a server: {e}"),
            "check that $TMUX_TMPDIR (or /tmp) is writable and that tmux runs from a shell",
        ),
    }
}

/// Starts a throwaway private server (killed when the guard drops): the user's own server is
/// never touched.
fn can_start_server() -> Result<(), String> {
    use crate::tmux::{PrivateServer, Tmux as _, WindowSpec};
    let server = PrivateServer::new("doctor");
    let probe = WindowSpec::new(
        "probe",
        std::env::temp_dir(),
        vec!["sleep".into(), "30".into()],
    );
    server
        .tmux()
        .new_session("doctor", &probe, (80, 24))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn check_git(report: &mut Report, project: &Project) {
    match which::which("git").ok().and_then(|p| version_of(&p, &["--version"])) {
        Some(version) => report.ok(&format!(
            "{} ({})",
            version.trim(),
            if project.is_git { "the project is a git work tree" } else { "the project is not a git repository" }
        )),
        None => report.warn(
            "git not found on PATH: snapshots, `ownership.on_violation: revert` and diff summaries need it",
            "install git",
        ),
    }
}

/// What to do about a config that does not load, for each way it can fail.
fn config_fix(e: &ConfigError, project: &Project) -> String {
    match e {
        ConfigError::NotFound { .. } => "run `orch init` to write a starter config".into(),
        ConfigError::Read { path, .. } => format!(
            "make {} readable by you (`ls -l` shows its owner and mode), or pass --config PATH",
            path.display()
        ),
        ConfigError::Parse { path, message, at } => {
            let place = match at {
                Some((line, column)) => format!("line {line}, column {column} of"),
                None => "the place shown in".into(),
            };
            let what = if message.contains("unknown field") {
                ": that name is not a field there (a typo?); use one of the names listed"
            } else if message.contains("unknown variant") {
                ": that value is not allowed; use one of the values listed"
            } else {
                " so that it is valid YAML of the shape shown"
            };
            format!(
                "edit {place} {}{what}. The README's Configuration section documents every \
                 field; `orch init --force` writes a fresh starter config instead (replacing \
                 this one)",
                project.display(path)
            )
        }
        ConfigError::Invalid { path, .. } => format!(
            "edit {} for each problem listed (each names its line when it has one); the \
             README's Configuration section documents every field",
            project.display(path)
        ),
        ConfigError::SampleNotAllowed { .. } => {
            "configure a real agent, or add `sample: true` as the message says".into()
        }
    }
}

/// A role on the scripted agent: refused by `orch up` unless marked `sample: true`, and said
/// plainly when it is.
fn check_sample(report: &mut Report, project: &Project, config: &Config) {
    let path = project.display(&project.config_path);
    for agent in crate::config::sample_agents(config, crate::config::SampleScope::Run) {
        let what = crate::config::sample_summary(std::slice::from_ref(&agent));
        if agent.allowed {
            report.warn(
                &format!("{what} `sample: true` is set: runs build the sample."),
                "to run your own requests, install an agent CLI and run `orch init --force`, \
                 or name a `kind: command` agent in `roles`",
            );
        } else {
            report.fail(
                &format!("{what} `orch up` refuses it."),
                &format!(
                    "install an agent CLI (claude, codex, opencode, gemini; `orch init` lists \
                     how) and run `orch init --force`, or name a `kind: command` agent in \
                     `roles`; to run the sample anyway, add `sample: true` under agent `{}` \
                     in {path}",
                    agent.name
                ),
            );
        }
    }
}

/// The gates set, and what it means when the test gate is not.
fn check_gates(report: &mut Report, project: &Project, config: &Config) {
    let path = project.display(&project.config_path);
    let proposed = crate::config::detect_project(&project.root, &|p| which::which(p).is_ok());
    let example = |gate: &str, found: Option<&String>, usual: &str| match found {
        Some(command) => format!("add `{gate}: {command}` under `gates:` in {path}"),
        None => format!(
            "add the command that runs them under `gates:` in {path}, e.g. `{gate}: {usual}`"
        ),
    };
    match &config.gates.test {
        Some(test) => report.ok(&format!("test gate `{test}`")),
        None => report.warn(
            "no test gate (`gates.test`): nothing runs the tests, so the judge relies on the \
             agents' word that the code works",
            &example(
                "test",
                proposed.as_ref().and_then(|g| g.test.as_ref()),
                "pytest -q",
            ),
        ),
    }
    match &config.gates.lint {
        Some(lint) => report.ok(&format!("lint gate `{lint}`")),
        None => {
            if let Some(lint) = proposed.as_ref().and_then(|g| g.lint.as_ref()) {
                report.warn(
                    "no lint gate (`gates.lint`): nothing checks the code's style and warnings",
                    &format!("add `lint: {lint}` under `gates:` in {path}"),
                );
            }
        }
    }
}

/// How the user will be told (see `notify`): the hook must be there to run.
fn check_notify(report: &mut Report, project: &Project, config: &Config) {
    let path = project.display(&project.config_path);
    if let Some(argv) = &config.notify.hook {
        let program = &argv[0];
        let found = if program.contains('/') {
            let file = if std::path::Path::new(program).is_relative() {
                project.root.join(program)
            } else {
                program.into()
            };
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(&file)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        } else {
            which::which(program).is_ok()
        };
        if found {
            report.ok(&format!("notify hook `{program}`"));
        } else {
            report.fail(
                &format!(
                    "the notify hook `{program}` is not an executable file (a relative path is                      the project's; a bare name is looked up on PATH): its notices would be lost"
                ),
                &format!("fix `notify.hook` in {path}, or `chmod +x` the file"),
            );
        }
    }
    if config.notify.desktop {
        match ["notify-send", "osascript"]
            .into_iter()
            .find(|p| which::which(p).is_ok())
        {
            Some(program) => report.ok(&format!("desktop notices through {program}")),
            None => report.ok("no desktop notices here (neither notify-send nor osascript)"),
        }
    }
}

/// Whether the agents will run in the sandbox their config asks for, and why not.
fn check_sandbox(report: &mut Report, config: &Config) {
    use crate::sandbox::{Mode, Network};
    let settings: Vec<(&String, crate::sandbox::Setting)> = config
        .agents
        .iter()
        .map(|(name, agent)| (name, config.sandbox_for(agent)))
        .collect();
    let names = |pick: &dyn Fn(&crate::sandbox::Setting) -> bool| -> Vec<String> {
        settings
            .iter()
            .filter(|(_, s)| pick(s))
            .map(|(n, _)| (*n).clone())
            .collect()
    };
    let off = names(&|s| s.mode == Mode::Off);
    let wanted = names(&|s| s.mode != Mode::Off);
    if wanted.is_empty() {
        report.warn(
            "sandbox: off for every agent: an agent's shell can write anywhere you can",
            "set `sandbox: auto` in orch.yaml (the default) where bubblewrap is installed",
        );
        return;
    }
    match crate::sandbox::availability() {
        Ok(()) => {
            let bwrap = which::which("bwrap")
                .ok()
                .and_then(|p| version_of(&p, &["--version"]).map(|v| (p, v)))
                .map_or_else(
                    || "bubblewrap".into(),
                    |(p, v)| format!("{} at {}", v.trim(), p.display()),
                );
            let offline = names(&|s| s.mode != Mode::Off && s.network == Network::Off);
            let mut what = format!(
                "sandbox: {bwrap} works here; agents run confined to the project: {}",
                wanted.join(", ")
            );
            if !offline.is_empty() {
                what.push_str(&format!(" (without network: {})", offline.join(", ")));
            }
            report.ok(&what);
            if !off.is_empty() {
                report.warn(
                    &format!(
                        "sandbox: off for {}: their shell can write anywhere you can",
                        off.join(", ")
                    ),
                    "remove `sandbox: off` from these agents unless they need it",
                );
            }
        }
        Err(why) => {
            let required = names(&|s| s.mode == Mode::Bwrap);
            if required.is_empty() {
                report.warn(
                    &format!("sandbox: not available, so the agents run unconfined: {why}"),
                    "install bubblewrap where it can work, or set `sandbox: off` to accept this",
                );
            } else {
                report.fail(
                    &format!(
                        "sandbox: {} require(s) it (`sandbox: bwrap`), but {why}",
                        required.join(", ")
                    ),
                    "make bubblewrap work here, or set `sandbox: auto` or `off` for them",
                );
            }
        }
    }
}

fn check_agents(report: &mut Report, project: &Project, config: &Config) {
    for (name, agent) in &config.agents {
        let used = config.roles.planner == *name
            || config.roles.judge == *name
            || config.roles.oracle.as_deref() == Some(name.as_str())
            || config.roles.workers.contains(name);
        let label = format!("agent `{name}` ({})", agent.kind);
        let hint = workers::adapter(agent.kind).install_hint();
        let program = match agent.kind {
            AgentKind::Scripted => {
                report.ok(&format!("{label}: built into orch (a sample, see below)"));
                continue;
            }
            AgentKind::Command => agent
                .command
                .as_ref()
                .and_then(|c| c.first())
                .cloned()
                .unwrap_or_default(),
            kind => kind.binary().unwrap_or_default().to_string(),
        };
        let found = if program.contains('/') {
            let path = project.root.join(&program);
            is_executable(&path).then_some(path)
        } else {
            which::which(&program).ok()
        };
        match found {
            Some(path) => {
                let version = if agent.kind == AgentKind::Command {
                    String::new()
                } else {
                    version_of(&path, &["--version"]).map_or_else(
                        || " (no version reported)".into(),
                        |v| format!(" {}", version_line(&v)),
                    )
                };
                report.ok(&format!("{label}: {}{version}", path.display()));
            }
            None if used => report.fail(&format!("{label}: `{program}` not found"), hint),
            None => report.warn(
                &format!("{label}: `{program}` not found (no role uses this agent)"),
                hint,
            ),
        }
        // Credentials and first-run settings, as the agent will see its environment.
        let setting = workers::Setting::new(agent, &project.root);
        for check in workers::adapter(agent.kind).readiness(&setting) {
            match check {
                workers::Check::Ok(what) => report.ok(&format!("agent `{name}`: {what}")),
                workers::Check::Warn { what, fix } => {
                    report.warn(&format!("agent `{name}`: {what}"), &fix);
                }
                workers::Check::Fail { what, fix } if used => {
                    report.fail(&format!("agent `{name}`: {what}"), &fix);
                }
                workers::Check::Fail { what, fix } => report.warn(
                    &format!("agent `{name}`: {what} (no role uses this agent)"),
                    &fix,
                ),
            }
        }
    }
}

/// The line of a CLI's `--version` output that has the version: some print a warning first
/// (Codex about its home directory).
fn version_line(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| !l.starts_with("WARNING") && l.chars().any(|c| c.is_ascii_digit()))
        .or(lines.first())
        .map(std::string::ToString::to_string)
        .unwrap_or_default()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `program args` and returns its first output, giving up after a few seconds: a CLI
/// that wants to update itself or log in must not hang the doctor.
fn version_of(program: &Path, args: &[&str]) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        let _ = tx.send(text);
    });
    let text = rx.recv_timeout(Duration::from_secs(15)).ok();
    if text.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    text.filter(|t| !t.trim().is_empty())
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let digits: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = digits.split('.');
    Some((
        parts.next()?.parse().ok()?,
        parts.next().unwrap_or("0").parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_line_skips_warnings() {
        assert_eq!(
            version_line("WARNING: proceeding, even though 1 thing\ncodex-cli 0.169.0\n"),
            "codex-cli 0.169.0"
        );
        assert_eq!(
            version_line("2.1.330 (Claude Code)\n"),
            "2.1.330 (Claude Code)"
        );
    }

    #[test]
    fn tmux_versions() {
        assert_eq!(parse_version("3.3a"), Some((3, 3)));
        assert_eq!(parse_version("3.2"), Some((3, 2)));
        assert_eq!(parse_version("next-3.5"), None);
        assert!(parse_version("2.9a").unwrap() < MIN_TMUX);
    }
}
