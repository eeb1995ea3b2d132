use std::path::{Path, PathBuf};

use super::*;
use crate::config::AgentKind;

mod repo;

/// A user home, a project outside it and an agent CLI installed under the home.
struct Machine {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Machine {
    fn new() -> Machine {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        for dir in [
            "home/.ssh",
            "home/.cargo/bin",
            "home/.rustup",
            "home/.local/bin",
            "home/.local/share/keyrings",
            "home/.nvm/versions/node/v22/bin",
            "home/.nvm/versions/node/v22/lib/node_modules/cli",
            "home/other-project",
            "work/project/.orch/runs/r1",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(root.join("home/.cargo/credentials.toml"), "token").unwrap();
        std::fs::write(root.join("home/.gitconfig"), "[user]").unwrap();
        std::fs::write(
            root.join("home/.nvm/versions/node/v22/lib/node_modules/cli/cli.js"),
            "",
        )
        .unwrap();
        Machine { _tmp: tmp, root }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn jail(&self, kind: AgentKind) -> Jail {
        Jail {
            project: self.p("work/project"),
            run_dir: self.p("work/project/.orch/runs/r1"),
            kind,
            no_network: false,
            read_only_project: false,
            write: vec![],
            read: vec![],
        }
    }

    fn env(&self, vars: &[(&str, &str)]) -> Env {
        let path = format!(
            "{}:{}:{}:/usr/bin",
            self.p("home/.cargo/bin").display(),
            self.p("home/.local/bin").display(),
            self.p("home/.nvm/versions/node/v22/bin").display()
        );
        let home = self.p("home").display().to_string();
        let mut all: Vec<(&str, &str)> = vec![("HOME", &home), ("PATH", &path)];
        all.extend_from_slice(vars);
        Env::new(&all, &[&self.p("home")])
    }

    /// The mounts of `jail` (its project as the working directory), in the usual env.
    fn plan_of(&self, jail: &Jail) -> Vec<Mount> {
        plan(
            jail,
            &self.env(&[]),
            Path::new("/bin/sh"),
            Path::new("/usr/bin/orch"),
            &jail.project,
        )
    }

    fn plan(&self, kind: AgentKind, env: &Env) -> Vec<Mount> {
        plan(
            &self.jail(kind),
            env,
            &self.p("home/.nvm/versions/node/v22/lib/node_modules/cli/cli.js"),
            Path::new("/usr/bin/orch"),
            &self.p("work/project"),
        )
    }
}

/// Where `wanted` is made; for a read-only bind, where its path is shown read-only: inside
/// another read-only bind, or under nothing but the read-only root (0 then), it needs none
/// of its own (see `without_read_inside_read`).
fn position(mounts: &[Mount], wanted: &Mount) -> usize {
    mounts
        .iter()
        .position(|m| m == wanted)
        .or_else(|| {
            let Mount::Read(p) = wanted else {
                return None;
            };
            let nearest = (0..mounts.len())
                .filter(|&i| p.starts_with(mounts[i].path()))
                .max_by_key(|&i| (mounts[i].path().components().count(), i));
            match nearest {
                // Under nothing but the read-only root: before everything else.
                None => Some(0),
                Some(i) => matches!(mounts[i], Mount::Read(_)).then_some(i),
            }
        })
        .unwrap_or_else(|| panic!("{wanted:?} not in {mounts:#?}"))
}

#[test]
fn the_home_is_hidden_and_only_what_the_agent_needs_comes_back() {
    let m = Machine::new();
    let mounts = m.plan(AgentKind::Codex, &m.env(&[]));
    let home = position(&mounts, &Mount::Hidden(m.p("home")));
    assert_eq!(mounts[0], Mount::Tmpfs("/tmp".into()), "{mounts:#?}");
    // Writable: the project, the run and Codex's state (created, as Codex would).
    position(&mounts, &Mount::Write(m.p("work/project")));
    position(&mounts, &Mount::Read(m.p("work/project/.orch/runs/r1")));
    assert!(home < position(&mounts, &Mount::Write(m.p("home/.codex"))));
    assert!(m.p("home/.codex").is_dir());
    // Read-only: the toolchains on PATH, with their installations, and git's config.
    for read in [
        "home/.cargo",
        "home/.rustup",
        "home/.local/bin",
        "home/.nvm/versions/node/v22",
        "home/.gitconfig",
    ] {
        assert!(home < position(&mounts, &Mount::Read(m.p(read))), "{read}");
    }
    // `.cargo/bin` is on PATH, and shows within `.cargo` without a bind of its own.
    assert!(!mounts.contains(&Mount::Read(m.p("home/.cargo/bin"))));
    // The agent's own program: its whole node_modules tree, which shows within its node
    // installation (bound above) without a bind of its own.
    assert!(!mounts.contains(&Mount::Read(
        m.p("home/.nvm/versions/node/v22/lib/node_modules")
    )));
    // A credential inside a directory bound back is blanked, after the directory.
    let cargo = position(&mounts, &Mount::Read(m.p("home/.cargo")));
    assert!(
        cargo
            < position(
                &mounts,
                &Mount::HiddenFile(m.p("home/.cargo/credentials.toml"))
            )
    );
    // Never: secrets, other projects, ~/.local as a whole (its keyrings).
    for never in [
        "home/.ssh",
        "home/other-project",
        "home/.local",
        "home/.local/share",
    ] {
        assert!(
            !mounts.iter().any(|mount| mount.path() == m.p(never)
                && matches!(mount, Mount::Read(_) | Mount::Write(_))),
            "{never} is bound: {mounts:#?}"
        );
    }
}

#[test]
fn each_cli_gets_its_own_state_directories_from_its_env() {
    let m = Machine::new();
    let state = m.p("elsewhere");
    let codex_home = state.join("codex").display().to_string();
    let mounts = m.plan(AgentKind::Codex, &m.env(&[("CODEX_HOME", &codex_home)]));
    position(&mounts, &Mount::Write(state.join("codex")));
    assert!(!mounts.contains(&Mount::Write(m.p("home/.codex"))));

    let mounts = m.plan(AgentKind::Claude, &m.env(&[]));
    position(&mounts, &Mount::Write(m.p("home/.claude")));

    let data = state.join("data").display().to_string();
    let mounts = m.plan(AgentKind::Opencode, &m.env(&[("XDG_DATA_HOME", &data)]));
    for dir in [
        state.join("data/opencode"),
        m.p("home/.config/opencode"),
        m.p("home/.cache/opencode"),
        m.p("home/.local/state/opencode"),
    ] {
        position(&mounts, &Mount::Write(dir));
    }
    let mounts = m.plan(AgentKind::Gemini, &m.env(&[]));
    position(&mounts, &Mount::Write(m.p("home/.gemini")));

    // A command agent gets no CLI state at all.
    let mounts = m.plan(AgentKind::Command, &m.env(&[]));
    assert!(
        !mounts
            .iter()
            .any(|mount| matches!(mount, Mount::Write(p) if p.starts_with(m.p("home")))),
        "{mounts:#?}"
    );
}

#[test]
fn an_agent_home_of_its_own_is_hidden_too() {
    let m = Machine::new();
    let own = m.p("clis/codex");
    std::fs::create_dir_all(own.join("tmp")).unwrap();
    let own_s = own.display().to_string();
    let tmp = own.join("tmp").display().to_string();
    let env = m.env(&[("HOME", &own_s), ("TMPDIR", &tmp)]);
    let mounts = m.plan(AgentKind::Codex, &env);
    let user = position(&mounts, &Mount::Hidden(m.p("home")));
    let agent = position(&mounts, &Mount::Hidden(own.clone()));
    assert!(user < position(&mounts, &Mount::Read(m.p("home/.cargo"))));
    assert!(agent < position(&mounts, &Mount::Write(own.join(".codex"))));
    assert!(agent < position(&mounts, &Mount::Write(own.join("tmp"))));
}

#[test]
fn a_read_only_project_and_the_run_directory_are_bound_read_only() {
    let m = Machine::new();
    let mut jail = m.jail(AgentKind::Codex);
    jail.read_only_project = true;
    let mounts = m.plan_of(&jail);
    let project = position(&mounts, &Mount::Read(m.p("work/project")));
    assert!(!mounts.contains(&Mount::Write(m.p("work/project"))));
    assert!(project <= position(&mounts, &Mount::Read(m.p("work/project/.orch/runs/r1"))));
}

#[test]
fn orchs_state_in_the_project_and_the_run_directory_are_read_only() {
    let m = Machine::new();
    let jail = m.jail(AgentKind::Command);
    std::fs::create_dir_all(&jail.run_dir).unwrap();
    let mounts = m.plan_of(&jail);
    let project = position(&mounts, &Mount::Write(m.p("work/project")));
    let state = position(&mounts, &Mount::Read(m.p("work/project/.orch")));
    let run = position(&mounts, &Mount::Read(m.p("work/project/.orch/runs/r1")));
    assert!(project < state && state <= run, "{mounts:?}");
}

#[test]
fn nothing_but_the_project_uncovers_what_the_box_hides() {
    let m = Machine::new();
    let home = m.p("home").display().to_string();
    // A TMPDIR of /tmp, a read path of the home itself: neither brings the real ones back.
    let env = m.env(&[("TMPDIR", "/tmp")]);
    let mut jail = m.jail(AgentKind::Command);
    jail.read = vec![m.p("home")];
    jail.write = vec![PathBuf::from("/")];
    let mounts = plan(
        &jail,
        &env,
        Path::new("/bin/sh"),
        Path::new("/usr/bin/orch"),
        &jail.project,
    );
    for mount in &mounts {
        assert!(
            !matches!(mount, Mount::Read(p) | Mount::Write(p)
                if p == Path::new("/tmp") || p == Path::new("/") || p == Path::new(&home)),
            "{mounts:#?}"
        );
    }
}

#[test]
fn a_home_that_does_not_exist_is_not_hidden() {
    let m = Machine::new();
    let env = Env::new(&[("HOME", "/nonexistent")], &[Path::new("/nonexistent")]);
    let mounts = m.plan(AgentKind::Command, &env);
    assert!(
        !mounts
            .iter()
            .any(|mount| mount.path() == Path::new("/nonexistent")),
        "{mounts:#?}"
    );
}

#[test]
fn mounts_come_outer_first() {
    let m = Machine::new();
    let mut jail = m.jail(AgentKind::Command);
    // A project inside the home: the home is hidden first, then the project bound in.
    jail.project = m.p("home/other-project");
    let mounts = m.plan_of(&jail);
    let depth = |mount: &Mount| mount.path().components().count();
    assert!(
        mounts.windows(2).all(|w| depth(&w[0]) <= depth(&w[1])),
        "{mounts:#?}"
    );
    assert!(
        position(&mounts, &Mount::Hidden(m.p("home")))
            < position(&mounts, &Mount::Write(m.p("home/other-project")))
    );
}

#[test]
fn the_bwrap_command_line() {
    let m = Machine::new();
    let mut jail = m.jail(AgentKind::Command);
    let mounts = vec![
        Mount::Tmpfs("/tmp".into()),
        Mount::Hidden(m.p("home")),
        Mount::Write(m.p("work/project")),
        Mount::Read(m.p("home/.cargo")),
        Mount::HiddenFile(m.p("home/.cargo/credentials.toml")),
    ];
    let words = |jail: &Jail| -> Vec<String> {
        bwrap_args(jail, &mounts, &m.p("work/project"))
            .into_iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect()
    };
    let home = m.p("home").display().to_string();
    let project = m.p("work/project").display().to_string();
    let cargo = m.p("home/.cargo").display().to_string();
    let creds = m.p("home/.cargo/credentials.toml").display().to_string();
    let expected: Vec<String> = [
        "--die-with-parent",
        "--unshare-pid",
        "--as-pid-1",
        "--unshare-ipc",
    ]
    .into_iter()
    .chain(if launch::as_root() {
        vec!["--cap-drop", "ALL"]
    } else {
        vec![]
    })
    .chain([
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        &home,
        "--bind",
        &project,
        &project,
        "--ro-bind",
        &cargo,
        &cargo,
        "--ro-bind",
        "/dev/null",
        &creds,
        "--remount-ro",
        &home,
        "--unsetenv",
        "SSH_AUTH_SOCK",
        "--unsetenv",
        "GPG_AGENT_INFO",
        "--unsetenv",
        "DBUS_SESSION_BUS_ADDRESS",
        "--unsetenv",
        "XDG_RUNTIME_DIR",
        "--chdir",
        &project,
    ])
    .map(std::string::ToString::to_string)
    .collect();
    assert_eq!(words(&jail), expected);
    // No --new-session: the box stays in the pane's process group, which orch signals.
    assert!(!words(&jail).contains(&"--new-session".to_string()));

    jail.no_network = true;
    assert_eq!(words(&jail)[4], "--unshare-net");
    // Root's box keeps no capability (it could unmount what hides the home).
    assert_eq!(
        words(&jail).windows(2).any(|w| w == ["--cap-drop", "ALL"]),
        launch::as_root()
    );
}

#[test]
fn the_setting_decides_the_jail() {
    let m = Machine::new();
    let extra = crate::config::SandboxPaths {
        write: vec!["~/.cache/pip".into()],
        read: vec!["/opt/tools".into()],
    };
    let jail = |mode, network| {
        jail(
            Setting { mode, network },
            AgentKind::Codex,
            &m.p("work/project"),
            &m.p("work/project/.orch/runs/r1"),
            &extra,
        )
    };
    assert_eq!(jail(Mode::Off, Network::On), None);
    let forced = jail(Mode::Bwrap, Network::Off).unwrap();
    assert!(forced.no_network);
    assert_eq!(forced.read, [PathBuf::from("/opt/tools")]);
    let home = PathBuf::from(std::env::var_os("HOME").unwrap());
    assert_eq!(forced.write, [home.join(".cache/pip")]);
    assert_eq!(
        jail(Mode::Auto, Network::On).is_some(),
        availability().is_ok()
    );
}

#[test]
fn how_a_boxed_agent_ended_comes_from_the_box_else_from_bwrap() {
    use std::os::unix::process::ExitStatusExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sandbox-exit.json");
    let exited = |code: i32| std::process::ExitStatus::from_raw(code << 8);
    // The box says: an agent that exited 145 by itself (Gemini CLI on a 401) is not a signal.
    std::fs::write(&file, r#"{"code":145,"signal":null}"#).unwrap();
    assert_eq!(ended(exited(145), &file), (Some(145), None));
    assert!(!file.exists(), "read once");
    std::fs::write(&file, r#"{"code":null,"signal":15}"#).unwrap();
    assert_eq!(ended(exited(143), &file), (None, Some(15)));
    // The box itself was killed before it could say: bwrap's 128 + N.
    assert_eq!(ended(exited(137), &file), (None, Some(9)));
    assert_eq!(ended(exited(3), &file), (Some(3), None));
    // A record where bwrap's status is plain is none of the box's: something in it forged one.
    std::fs::write(&file, r#"{"code":0,"signal":null}"#).unwrap();
    assert_eq!(ended(exited(1), &file), (Some(1), None));
    assert!(!file.exists(), "removed all the same");
    assert_eq!(
        ended(std::process::ExitStatus::from_raw(9), &file),
        (None, Some(9))
    );
    assert_eq!(parse_signals("15,2,1"), Ok(vec![15, 2, 1]));
    assert_eq!(parse_signals(""), Ok(vec![]));
    assert!(parse_signals("x").is_err());
}

#[test]
fn refusals_are_the_lines_of_read_only_writes() {
    let out = "ok\nsh: 1: cannot create /home/u/pwned: Read-only file system\nfine\n\
               rm: cannot remove '/etc/x': Read-only file system\n\
               error: could not write config file .git/config: Device or resource busy\n";
    assert_eq!(
        refusals(out, 5),
        [
            "sh: 1: cannot create /home/u/pwned: Read-only file system",
            "rm: cannot remove '/etc/x': Read-only file system",
            "error: could not write config file .git/config: Device or resource busy"
        ]
    );
    assert_eq!(refusals(out, 1).len(), 1);
}

#[test]
fn a_run_on_a_branch_sees_its_worktree_and_run_but_nothing_else_of_orchs_state() {
    let m = Machine::new();
    let state = m.p("work/project/.orch");
    let worktree = state.join("worktrees/r1");
    std::fs::create_dir_all(&worktree).unwrap();
    let jail = Jail {
        project: worktree.clone(),
        ..m.jail(AgentKind::Command)
    };
    let mounts = m.plan_of(&jail);
    let hidden = position(&mounts, &Mount::Hidden(state.clone()));
    let work = position(&mounts, &Mount::Write(worktree.clone()));
    let run = position(&mounts, &Mount::Read(jail.run_dir.clone()));
    assert!(hidden < work && hidden < run, "{mounts:#?}");
    // The user's checkout is not bound writable at all, but read-only before the rest (also
    // under a masked /tmp, where nothing else would show it).
    assert!(
        !mounts.contains(&Mount::Write(m.p("work/project"))),
        "{mounts:#?}"
    );
    let checkout = position(&mounts, &Mount::Read(m.p("work/project")));
    assert!(checkout < hidden, "{mounts:#?}");
    // In place, `.orch/` is read-only, not hidden (the project is the agents').
    let in_place = m.plan(AgentKind::Command, &m.env(&[]));
    assert!(!in_place.contains(&Mount::Hidden(state.clone())));
    position(&in_place, &Mount::Read(state));
}

#[test]
fn a_task_in_its_own_worktree_sees_it_and_its_run_but_neither_the_runs_worktree_nor_others() {
    let m = Machine::new();
    let state = m.p("work/project/.orch");
    let run_tree = state.join("worktrees/r1");
    let own = state.join("worktrees/r1-tasks/a");
    let other = state.join("worktrees/r1-tasks/b");
    for dir in [&run_tree, &own, &other] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let jail = Jail {
        project: own.clone(),
        ..m.jail(AgentKind::Command)
    };
    let mounts = m.plan_of(&jail);
    let hidden = position(&mounts, &Mount::Hidden(state.clone()));
    let work = position(&mounts, &Mount::Write(own.clone()));
    let run = position(&mounts, &Mount::Read(jail.run_dir.clone()));
    assert!(hidden < work && hidden < run, "{mounts:#?}");
    for gone in [&run_tree, &other] {
        assert!(
            !mounts.iter().any(|m| m.path().starts_with(gone)),
            "{gone:?} shows in {mounts:#?}"
        );
    }
    let checkout = position(&mounts, &Mount::Read(m.p("work/project")));
    assert!(checkout < hidden, "{mounts:#?}");
}

#[test]
fn a_read_only_bind_inside_another_is_left_out_unless_a_mask_lies_between() {
    let m = Machine::new();
    let tools = m.p("home/u/.tools");
    for dir in ["bin", "lib/shims"] {
        std::fs::create_dir_all(tools.join(dir)).unwrap();
    }
    let jail = Jail {
        read: vec![tools.clone(), tools.join("bin"), tools.join("lib/shims")],
        ..m.jail(AgentKind::Command)
    };
    let mounts = m.plan_of(&jail);
    position(&mounts, &Mount::Read(tools.clone()));
    for inner in ["bin", "lib/shims"] {
        assert!(
            !mounts.contains(&Mount::Read(tools.join(inner))),
            "{inner}: {mounts:#?}"
        );
    }
}

#[test]
fn a_read_only_bind_is_left_out_only_where_a_read_only_one_lies_under_it() {
    use super::mounts::without_read_inside_read;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let home = root.join("home");
    std::fs::create_dir_all(home.join(".git/objects")).unwrap();
    // A checkout that is the home: bound read-only over the home's mask, and its .git in it.
    let mounts = vec![
        Mount::Hidden(home.clone()),
        Mount::Read(home.clone()),
        Mount::Read(home.join(".git")),
        Mount::Write(home.join(".git/objects")),
    ];
    assert_eq!(
        without_read_inside_read(mounts),
        [
            Mount::Hidden(home.clone()),
            Mount::Read(home.clone()),
            Mount::Write(home.join(".git/objects")),
        ]
    );
    // Under nothing but the read-only root: left out; under bwrap's own /dev: kept.
    assert_eq!(
        without_read_inside_read(vec![Mount::Read(root.clone())]),
        []
    );
    let dev = vec![Mount::Read("/dev".into())];
    assert_eq!(without_read_inside_read(dev.clone()), dev);
}
