//! The command line: clap lives here and nowhere else. Each subcommand hands plain values to
//! its module in `commands/`, and every error becomes an exit code (see `error`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

mod docs;

use crate::commands::{self, Global};
use crate::error;

#[derive(Debug, Parser)]
#[command(
    name = "orch",
    version,
    about = "Run a team of AI coding agents in tmux: specs first, a checked plan, exclusive \
             files per agent, a judge.",
    after_help = "Exit codes: 0 success, 1 the thing checked is bad (invalid plan, failed \
                  planning or run), 2 usage or configuration error, 3 `orch wait`: the \
                  run cannot progress (its engine never started or is gone, or its tmux \
                  session is gone), 4 `orch wait`: the run stopped at its budget \
                  (`orch budget +AMOUNT` raises it), 124 `orch wait --timeout` ran out.\n\n\
                  Start with `orch init`, then `orch doctor`; `orch demo` shows a run on a \
                  sample project."
)]
struct Cli {
    /// The config file [default: orch.yaml in the project root, the nearest enclosing git
    /// work tree, else the current directory]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a commented starter orch.yaml for the agent CLIs found on PATH, with gates that
    /// fit the project (Cargo, Python, Node, Go, Make).
    #[command(
        after_help = "Example:\n  orch init            # writes ./orch.yaml\n  \
                            orch init --force    # overwrites an existing one"
    )]
    Init {
        /// Overwrite an existing config.
        #[arg(long)]
        force: bool,
    },

    /// Check that tmux, git, the config and every configured agent CLI are ready.
    #[command(
        after_help = "Example:\n  orch doctor\n\nExits 1 when something needed is \
                            missing, after printing the fix for each problem."
    )]
    Doctor,

    /// Check a plan file: schema, agents, dependencies, cycles, file ownership, paths.
    #[command(after_help = "Example:\n  orch validate plan.json\n  \
                            orch validate .orch/plans/20261124-101500-ab12/plan.json\n\n\
                            Prints every problem, one per line (exit 1), or the plan's \
                            execution waves (exit 0).")]
    Validate {
        /// The plan (JSON; also accepted inside prose or ```json fences). `-` reads stdin.
        plan: PathBuf,
    },

    /// Ask the planner agent for specs and a plan, validate it, and print it as waves.
    #[command(
        after_help = "Examples:\n  orch plan \"Build a user auth system with JWT\"\n  \
                            orch plan -f request.md\n  git log -1 --format=%B | orch plan -\n\n\
                            The specs are written into the project; the plan, every prompt \
                            and every raw answer are kept under .orch/plans/<id>/. An \
                            invalid plan is sent back to the planner with its problems, up \
                            to limits.planner_retries times."
    )]
    Plan {
        /// What to build; `-` reads it from standard input.
        #[arg(required_unless_present = "file")]
        request: Option<String>,
        /// Read the request from this file (`-`: standard input), any size, byte for byte.
        #[arg(
            short = 'f',
            long = "file",
            value_name = "FILE",
            conflicts_with = "request"
        )]
        file: Option<PathBuf>,
    },

    /// Run the request in tmux: planner, then each task's agent in its own window.
    #[command(
        after_help = "Examples:\n  orch up \"Build a user auth system with JWT\"\n  \
                            orch up --plan .orch/plans/20261124-101500-ab12/plan.json\n  \
                            orch up \"Implement the plan\" --plan plan.json --layout tiled\n  \
                            orch up \"...\" --detach && orch wait\n  \
                            orch up -f request.md --detach     # a request of any size\n  \
                            cat request.md | orch up -\n\n\
                            Creates the run's tmux session orch-<project>-<run-id>: its \
                            `control` window runs the engine and shows every task live. Detach \
                            with C-b d; `orch attach` comes back, `orch down` tears it down. \
                            Everything about the run is kept in .orch/runs/<id>/. Several runs \
                            may be live at once (one in place at most): the other commands take \
                            --run ID, and default to the latest."
    )]
    Up {
        /// What to build; `-` reads it from standard input [default with --plan: the request
        /// `orch plan` saved beside the plan].
        request: Option<String>,
        /// Read the request from this file (`-`: standard input), any size, byte for byte.
        #[arg(
            short = 'f',
            long = "file",
            value_name = "FILE",
            conflicts_with = "request"
        )]
        file: Option<PathBuf>,
        /// Run this plan instead of asking the planner (it is validated first).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// How panes are arranged: windows, tiled, main-vertical, or a layout file.
        #[arg(long, default_value = "windows", value_name = "NAME|PATH")]
        layout: String,
        /// Do not attach to the session.
        #[arg(long)]
        detach: bool,
        /// Run on the tmux server of this socket name, or path if it has a `/` (also
        /// ORCH_TMUX_SOCKET); default: the tmux orch runs in, else tmux's default server.
        #[arg(long, value_name = "NAME")]
        socket: Option<String>,
        /// Work in your checkout instead of a branch and worktree of the run's own (also
        /// `workspace: in-place` in orch.yaml).
        #[arg(long)]
        in_place: bool,
        /// What a run on a branch does with your checkout's uncommitted changes: `include`
        /// them as one commit at the base of the run's branch, or `refuse` to start
        /// [default: `uncommitted:` in orch.yaml, else include].
        #[arg(long, value_name = "include|refuse", value_parser = parse_uncommitted)]
        uncommitted: Option<crate::workspace::Uncommitted>,
        /// Hold the plan for your approval: nothing is dispatched until `orch approve` (also
        /// `plan_approval: ask` in orch.yaml).
        #[arg(long)]
        review: bool,
    },

    /// Show the run's tasks, their states and the violations (no engine needed).
    #[command(
        after_help = "Examples:\n  orch status\n  orch status --json | jq '.tasks[] | \
                            {id, state}'"
    )]
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },

    /// Show what a task's agent printed (`planner` for the planner).
    #[command(
        after_help = "Examples:\n  orch logs 2\n  orch logs api -f\n  orch logs \
                            planner --attempt 1"
    )]
    Logs {
        /// The task id, or `planner`.
        task: String,
        /// Keep printing as the agent writes, until it exits.
        #[arg(short, long)]
        follow: bool,
        /// Which attempt (default: the latest).
        #[arg(long)]
        attempt: Option<u32>,
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },

    /// Attach to the run's tmux session to watch the agents live (detach: C-b d).
    #[command(after_help = "Example:\n  orch attach")]
    Attach {
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },

    /// Wait until the run ends: exit 0 when it succeeded, 1 when it failed, 3 when it
    /// cannot progress, 4 when it stopped at its budget, 5 when its plan waits for approval,
    /// 124 on timeout.
    #[command(
        after_help = "Examples:\n  orch up \"...\" --detach && orch wait --timeout 1h\n  \
                            orch wait --timeout 90   # seconds\n\n\
                            Exit 3, with the reason, when the run cannot progress: its engine \
                            is gone before the run ended, or never started (30 s after the \
                            run was created, no `orch up` or `orch resume` starting one), or \
                            its tmux session is gone. `orch resume` continues it.\n\n\
                            Exit 4 when the run's budget is used up and nothing runs any \
                            more: the run waits for `orch budget +AMOUNT`.\n\n\
                            Exit 5 when the run's plan waits for your approval (`orch up \
                            --review`, `plan_approval: ask`): `orch status` shows it, `orch \
                            approve` dispatches it."
    )]
    Wait {
        /// Give up after this long (exit 124): `90s`, `30m`, `1h`, `1h 30m`, or seconds.
        #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
        timeout: Option<std::time::Duration>,
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },

    /// Print the run's report: per task its attempts, files, gates, TDD evidence, verdict.
    #[command(
        after_help = "Examples:\n  orch report\n  orch report --run 20261124-101500-ab12 \
                            --json"
    )]
    Report {
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// The run id as a bare argument, as orch 0.1 took it: still accepted.
        #[arg(hide = true, value_name = "ID", conflicts_with = "run")]
        run_id: Option<String>,
        /// Machine-readable output (the same as .orch/runs/<id>/report.json).
        #[arg(long)]
        json: bool,
    },

    /// Continue a run whose engine died, was interrupted, or lost its tmux server.
    #[command(
        after_help = "Examples:\n  orch resume\n  orch resume --run 20261124-101500-ab12 \
                            --detach\n\n\
                            A new engine rebuilds the run from its journal: agents still \
                            running are kept (their exit records are picked up, also those \
                            written while no engine ran), tasks whose agent is gone get a new \
                            attempt that is told its predecessor was interrupted, and done tasks \
                            are never run again. When the tmux session is gone it is \
                            recreated. Works after a crash, a kill -9, Ctrl-C, `orch down`, or \
                            a dead tmux server."
    )]
    Resume {
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// Do not attach to the session.
        #[arg(long)]
        detach: bool,
    },

    /// Try again a task that failed for good: a fresh set of attempts, and the tasks it
    /// blocked pending again.
    #[command(after_help = "Examples:\n  orch retry api\n  \
                            orch retry api --message 'the tests need the fixtures in tests/data'\n  \
                            orch retry api --message-file notes.md --run 20261124-101500-ab12\n  \
                            git log -1 | orch retry api --message-file -\n\n\
                            On a live run its engine applies the retry at once (journaled). \
                            A run whose engine is gone (failed, interrupted, stopped) gets a \
                            new engine, as with `orch resume`. Done tasks stay done; the run \
                            can still succeed. The message, whole, goes into the prompt of \
                            the task's next attempts, never through a pane.")]
    Retry {
        /// The id of the task that failed.
        #[arg(value_name = "TASK")]
        task: String,
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// A message for the task's next attempts (any text).
        #[arg(
            long,
            value_name = "TEXT",
            conflicts_with = "message_file",
            allow_hyphen_values = true
        )]
        message: Option<String>,
        /// The message from a file, or from standard input with `-`.
        #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
        message_file: Option<std::path::PathBuf>,
        /// Do not attach to the session when a new engine is started.
        #[arg(long)]
        detach: bool,
    },

    /// Show the run's budget and what its agents used, or raise it: `+5` (USD) or `+500k
    /// tokens`.
    #[command(
        after_help = "Examples:\n  orch budget              # what was used, of what\n  \
                            orch budget +5           # $5 more\n  \
                            orch budget '+2M tokens' --run 20261124-101500-ab12\n\n\
                            A live run's engine applies the raise at once (journaled) and \
                            launches what waited for it; a run without an engine gets it \
                            at `orch resume`. The budget is `limits.budget` in orch.yaml \
                            (`usd`, `tokens`); a run keeps the config it started with."
    )]
    Budget {
        /// How much to add: `+5`, `+$2.50`, `+3usd` (US dollars) or `+500k tokens`.
        #[arg(value_name = "+AMOUNT", allow_hyphen_values = true)]
        amount: Option<String>,
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },

    /// Dispatch a plan that waits for your approval (`orch up --review`, `plan_approval:
    /// ask`), as it is in the run's plan.json, edited or not.
    #[command(
        after_help = "Examples:\n  orch approve\n  orch approve --run 20261124-101500-ab12\n\n\
                            While a plan waits, `orch status` shows it as waves and names its \
                            file (.orch/runs/<id>/plan.json): edit it if you like, then approve. \
                            The file is checked again as a plan is: if it has problems they are \
                            listed (exit 1), nothing is dispatched, and the plan still waits. A \
                            run without an engine (after `orch down`) is approved at `orch \
                            resume`."
    )]
    Approve {
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },

    /// Tell a task something while the run goes on (its turn is stopped and its agent goes
    /// on with your message), or send the planner feedback on a plan that waits for approval.
    #[command(
        after_help = "Examples:\n  orch tell api \"use the fixtures in tests/data, not a live server\"\n  \
                            orch tell api -f notes.md\n  \
                            cat feedback.md | orch tell planner -\n\n\
                            A running task's current turn is stopped (an interruption, not a \
                            failure, not counted against the retries) and its agent continues \
                            its own session with your message where its CLI can; otherwise a \
                            new attempt starts with the message and the earlier work in place. \
                            A pending task gets the message in its first prompt. A done task \
                            whose dependents have not started is reopened (checked and judged \
                            again). A failed task is tried again with `orch retry TASK \
                            --message`. `planner`: the planner plans again with your message \
                            (a plan held with `orch up --review`). The message (UTF-8 text) \
                            goes into a prompt file, never typed into a pane."
    )]
    Tell {
        /// Who to tell: a task's id, or `planner`.
        #[arg(value_name = "TASK|planner")]
        target: String,
        /// The message; `-` reads it from standard input.
        message: Option<String>,
        /// Read the message from this file (`-`: standard input).
        #[arg(
            short = 'f',
            long = "file",
            value_name = "FILE",
            conflicts_with = "message"
        )]
        file: Option<PathBuf>,
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },

    /// Stop the run's agents and engine and close its tmux session; its files stay.
    #[command(after_help = "Example:\n  orch down")]
    Down {
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },

    /// Show a worktree run's changes (or one task's) with your own git's pager and colours.
    #[command(
        after_help = "Examples:\n  orch diff                 # the whole run, against \
                            where it started\n  \
                            orch diff api             # task api's commit\n  \
                            orch diff specs           # the planner's specs commit\n  \
                            orch diff --run 20261124-101500-ab12 -- --stat\n\n\
                            The run's diff leaves out the changes your checkout had \
                            uncommitted when it started (the branch's first commit). A task \
                            not committed yet shows its files as they are in the run's \
                            worktree now. Arguments after `--` go to `git diff` (or `git \
                            show` for a commit)."
    )]
    Diff {
        /// A task id, or `specs` [default: the whole run].
        task: Option<String>,
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// Options for git (after `--`), e.g. `-- --stat`.
        #[arg(last = true, value_name = "GIT-ARGS")]
        git_args: Vec<OsString>,
    },

    /// Bring a worktree run's commits into your current branch, your checkout's own changes
    /// untouched.
    #[command(after_help = "Examples:\n  orch merge\n  orch merge --squash\n  \
                            orch merge --run 20261124-101500-ab12\n\n\
                            A fast-forward when your branch has not moved since the run \
                            started, else a merge commit; a run that started from uncommitted \
                            changes has its own commits replayed onto your branch (your \
                            changes stay uncommitted in your checkout, never committed by \
                            orch). Refuses, changing nothing, while the run's engine is live, \
                            on a conflict, or when your checkout has changes the merge would \
                            overwrite: it names the files and the command to resolve.")]
    Merge {
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// One commit with all the run's changes instead of one per task.
        #[arg(long)]
        squash: bool,
    },

    /// Remove a worktree run's worktree; its branch too unless it holds unmerged work.
    #[command(after_help = "Examples:\n  orch discard\n  \
                            orch discard --run 20261124-101500-ab12 --delete-branch\n\n\
                            The run's directory (its record, logs and report) stays. A branch \
                            with commits no merge brought to you is kept unless \
                            --delete-branch.")]
    Discard {
        /// A run id (default: the latest).
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// Delete the run's branch even if it holds unmerged work.
        #[arg(long)]
        delete_branch: bool,
    },

    /// List every run of the project: state, start, branch, merged or not, request.
    #[command(after_help = "Examples:\n  orch runs\n  orch runs --json | jq '.[] | \
                            select(.standing == \"unmerged\") | .run_id'")]
    Runs {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },

    /// Make a small sample project on the built-in scripted agent and run `orch up` in it.
    #[command(after_help = "Example:\n  orch demo              # in ./orch-demo\n  \
                            orch demo /tmp/try-orch\n\nNo agent CLI or account needed. \
                            With a terminal it attaches to the session; without one it waits \
                            for the run and prints the result.")]
    Demo {
        /// Where to create the project (must not exist or be empty) [default: ./orch-demo]
        dir: Option<PathBuf>,
        /// Do not attach; wait for the run and print its result.
        #[arg(long)]
        detach: bool,
        /// Run on the tmux server of this socket name, or path if it has a `/` (also
        /// ORCH_TMUX_SOCKET); default: the tmux orch runs in, else tmux's default server.
        #[arg(long, value_name = "NAME")]
        socket: Option<String>,
    },

    /// Print a shell completion script (see the README for where each shell wants it).
    #[command(after_help = "Examples:\n  \
        orch completions bash > ~/.local/share/bash-completion/completions/orch\n  \
        orch completions zsh > ~/.zfunc/_orch        # with fpath+=~/.zfunc before compinit\n  \
        orch completions fish > ~/.config/fish/completions/orch.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },

    /// Print orch's manual page (roff), or write one per command into a directory.
    #[command(after_help = "Examples:\n  \
        orch man > ~/.local/share/man/man1/orch.1 && man orch\n  \
        orch man up | man -l -\n  \
        orch man --dir ~/.local/share/man/man1     # orch.1 and orch-<command>.1")]
    Man {
        /// A command's own page (e.g. `up`) instead of orch's.
        command: Option<String>,
        /// Write orch.1 and a page per command (orch-up.1, ...) into this directory.
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        dir: Option<PathBuf>,
    },

    /// Print orch's version (the same as `orch --version`).
    Version,

    /// The engine of a run (orch starts it in the session's control window).
    #[command(hide = true)]
    Engine {
        /// The run's directory.
        run_dir: PathBuf,
    },

    /// The built-in scripted agent (orch runs it for `kind: scripted`).
    #[command(hide = true)]
    ScriptedAgent {
        /// The prompt file, with its ORCH_CONTEXT line.
        prompt_file: PathBuf,
    },

    /// Run one agent from its launch spec (orch's launchers call this).
    #[command(hide = true)]
    AgentRun {
        /// The launch spec (launch.json) written next to the launcher.
        spec: PathBuf,
    },

    /// Inside an agent's sandbox: set the stop signals back to default, then become the agent.
    #[command(hide = true)]
    SandboxExec {
        /// Signal numbers to set back to their default action, comma-separated.
        #[arg(long, value_name = "N,..")]
        reset_signals: Option<String>,
        /// Where to record how the agent ended.
        #[arg(long, value_name = "PATH")]
        status_file: PathBuf,
        /// The agent's program and its arguments.
        #[arg(last = true, required = true)]
        argv: Vec<OsString>,
    },

    /// Inside a run's shared sandbox: keep it until the run's engine ends.
    #[command(hide = true)]
    SandboxHold {
        /// The run's engine lock, held by the engine while it runs.
        engine_lock: PathBuf,
    },
}

/// Runs orch with these arguments and returns the process's exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().collect();
    // What every agent's pane runs, in the one form its launcher writes (launcher.rs), up to
    // hundreds at once: without building the parser of every other command first (a quarter
    // of a millisecond of each agent's start). Any other form goes through the parser.
    if let [_, command, spec] = args.as_slice()
        && command == "agent-run"
        && !spec.as_encoded_bytes().starts_with(b"-")
    {
        return finish(crate::agent_process::run::run(Path::new(spec)));
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { error::EXIT_USAGE } else { 0 });
        }
    };
    if matches!(
        cli.command,
        Command::Status { .. }
            | Command::Logs { .. }
            | Command::Validate { .. }
            | Command::Runs { .. }
    ) {
        // What these print is often piped into `head` or `grep -q`: a reader that is gone
        // ends them quietly, as it does any Unix tool, instead of a panic on the write.
        // SAFETY: signal(2) with the default action, before any thread or child exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    finish(execute(cli))
}

/// A command's result as the process's exit code, its error said on stderr.
fn finish(result: anyhow::Result<u8>) -> ExitCode {
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            error::exit_code(&err)
        }
    };
    ExitCode::from(code)
}

fn execute(cli: Cli) -> anyhow::Result<u8> {
    let global = Global {
        config: cli.config,
        cwd: std::env::current_dir()
            .map_err(|e| anyhow::anyhow!("failed to read the current directory: {e}"))?,
    };
    match cli.command {
        Command::Init { force } => commands::init::run(&global, force),
        Command::Doctor => commands::doctor::run(&global),
        Command::Validate { plan } => commands::validate::run(&global, &plan),
        Command::Plan { request, file } => {
            let request = commands::request::read(&global.cwd, request, file.as_deref())?;
            commands::plan::run(&global, &request.unwrap_or_default())
        }
        Command::Up {
            request,
            file,
            plan,
            layout,
            detach,
            socket,
            in_place,
            uncommitted,
            review,
        } => commands::up::run(
            &global,
            commands::up::UpArgs {
                request: commands::plan::request_for_up(
                    &global,
                    commands::request::read(&global.cwd, request, file.as_deref())?,
                    plan.as_deref(),
                )?,
                plan,
                layout,
                detach,
                socket,
                in_place,
                uncommitted,
                review,
            },
        ),
        Command::Status { json, run } => commands::status::run(&global, run.as_deref(), json),
        Command::Logs {
            task,
            follow,
            attempt,
            run,
        } => commands::logs::run(&global, run.as_deref(), &task, attempt, follow),
        Command::Attach { run } => commands::attach::run(&global, run.as_deref()),
        Command::Wait { timeout, run } => commands::wait::run(&global, run.as_deref(), timeout),
        Command::Report { run, run_id, json } => {
            commands::report::run(&global, run.or(run_id).as_deref(), json)
        }
        Command::Diff {
            task,
            run,
            git_args,
        } => commands::diff::run(&global, run.as_deref(), task.as_deref(), &git_args),
        Command::Merge { run, squash } => commands::merge::run(&global, run.as_deref(), squash),
        Command::Discard { run, delete_branch } => {
            commands::discard::run(&global, run.as_deref(), delete_branch)
        }
        Command::Runs { json } => commands::runs_list::run(&global, json),
        Command::Resume { run, detach } => commands::resume::run(&global, run.as_deref(), detach),
        Command::Down { run } => commands::down::run(&global, run.as_deref()),
        Command::Approve { run } => commands::approve::run(&global, run.as_deref()),
        Command::Tell {
            target,
            message,
            file,
            run,
        } => commands::tell::run(&global, run.as_deref(), &target, message, file.as_deref()),
        Command::Retry {
            task,
            run,
            message,
            message_file,
            detach,
        } => {
            let message = match (&message, &message_file) {
                (Some(text), _) => commands::retry::Message::Text(text),
                (None, Some(file)) => commands::retry::Message::File(file),
                (None, None) => commands::retry::Message::None,
            };
            commands::retry::run(&global, &task, run.as_deref(), message, detach)
        }
        Command::Budget { amount, run } => {
            commands::budget::run(&global, run.as_deref(), amount.as_deref())
        }
        Command::Demo {
            dir,
            detach,
            socket,
        } => commands::demo::run(&global, dir, detach, socket),
        Command::Completions { shell } => docs::completions(Cli::command(), shell),
        Command::Man { command, dir } => docs::man(Cli::command(), command.as_deref(), dir),
        Command::Version => {
            println!("orch {}", env!("CARGO_PKG_VERSION"));
            Ok(error::EXIT_OK)
        }
        Command::Engine { run_dir } => crate::engine::start(&run_dir),
        Command::ScriptedAgent { prompt_file } => {
            crate::scripted::run(&prompt_file).map(|code| code.clamp(0, 255) as u8)
        }
        Command::AgentRun { spec } => crate::agent_process::run::run(&spec),
        Command::SandboxExec {
            reset_signals,
            status_file,
            argv,
        } => crate::sandbox::parse_signals(reset_signals.as_deref().unwrap_or(""))
            .map_err(|e| crate::error::usage(format!("--reset-signals: {e}")))
            .map(|signals| crate::sandbox::exec(&signals, &status_file, &argv[0], &argv[1..])),
        Command::SandboxHold { engine_lock } => Ok(crate::sandbox::hold_shared(&engine_lock)),
    }
}

/// `--uncommitted include|refuse`.
fn parse_uncommitted(value: &str) -> Result<crate::workspace::Uncommitted, String> {
    match value {
        "include" => Ok(crate::workspace::Uncommitted::Include),
        "refuse" => Ok(crate::workspace::Uncommitted::Refuse),
        other => Err(format!("`{other}` is neither `include` nor `refuse`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
