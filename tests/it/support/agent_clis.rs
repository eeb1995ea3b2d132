//! The four real agent CLIs, set up for tests: each in its own home under `target/tmp`
//! (the user's config is never read or touched), each pointed at the scripted model server,
//! with retries off so that a failure shows at once.
//!
//! The tests that need them call [`available`] first: without the CLIs on PATH they are
//! skipped with a message, unless `ORCH_REAL_CLIS=1` (set by `.ci/run`) makes them required.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::model_server::ModelServer;
use super::{Options, Up};

/// The CLIs, as `kind` and agent name in the generated config.
pub(crate) const CLIS: [&str; 4] = ["claude", "codex", "opencode", "gemini"];

/// The wire protocol each CLI speaks, as the model server names it in what it writes.
pub(crate) fn protocol_of(cli: &str) -> &'static str {
    match cli {
        "claude" => "anthropic-messages",
        "codex" => "openai-responses",
        "opencode" => "openai-chat",
        "gemini" => "gemini",
        other => panic!("no such CLI {other}"),
    }
}

/// Whether the real-CLI tests can run here. Panics when they are required and cannot.
pub(crate) fn available(test: &str) -> bool {
    let required = std::env::var("ORCH_REAL_CLIS").is_ok_and(|v| v == "1");
    let mut missing: Vec<&str> = CLIS
        .iter()
        .copied()
        .filter(|cli| which::which(cli).is_err())
        .collect();
    if which::which("node").is_err() {
        missing.push("node");
    }
    if missing.is_empty() {
        return true;
    }
    let how = "`.ci/run` installs the pinned CLIs and runs them; by hand: `npm install --prefix \
               ~/.orch-clis @anthropic-ai/claude-code@2.1.330 @openai/codex@0.169.0 \
               opencode-ai@1.18.33 @google/gemini-cli@0.61.0`, then `PATH=~/.orch-clis/\
               node_modules/.bin:$PATH ORCH_REAL_CLIS=1 cargo test --test it real_clis`";
    if required {
        panic!(
            "ORCH_REAL_CLIS=1 makes the real-CLI tests required, but {} is not on PATH: {how}",
            missing.join(", ")
        );
    }
    eprintln!(
        "skipped {test}: {} not on PATH (the real agent CLIs are needed). To run it: {how}",
        missing.join(", ")
    );
    false
}

/// Private homes for the CLIs, and the `agents:` section that uses them.
pub(crate) struct Homes {
    pub dir: tempfile::TempDir,
}

impl Homes {
    pub(crate) fn new() -> Homes {
        // Under target/, not the system's temp dir: with bubblewrap installed, Codex's own
        // sandbox refuses to make its helper under a temp dir, and then every shell command
        // of Codex fails (it does not, run as root, where orch's box is Codex's sandbox).
        let dir = tempfile::Builder::new()
            .prefix("orch-clis-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        Homes { dir }
    }

    fn home(&self, cli: &str) -> PathBuf {
        let home = self.dir.path().join(cli);
        std::fs::create_dir_all(&home).unwrap();
        home
    }

    /// The config's `agents:` section: one agent per CLI, named after it, on the server.
    pub(crate) fn agents_yaml(&self, server: &ModelServer) -> String {
        let mut out = String::from("agents:\n");
        for cli in CLIS {
            let home = self.home(cli);
            let (model, args, env) = setup(cli, &home, server);
            out.push_str(&format!(
                "  {cli}:\n    kind: {cli}\n    model: {}\n",
                q(&model)
            ));
            if !args.is_empty() {
                let args: Vec<String> = args.iter().map(|a| q(a)).collect();
                out.push_str(&format!("    args: [{}]\n", args.join(", ")));
            }
            out.push_str("    env:\n");
            for (k, v) in env {
                out.push_str(&format!("      {k}: {}\n", q(&v)));
            }
        }
        out
    }
}

/// A YAML flow scalar for any text (JSON strings are YAML).
fn q(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

type Env = Vec<(&'static str, String)>;

/// The model, extra args and env that point `cli` at the server, in `home`.
fn setup(cli: &str, home: &Path, server: &ModelServer) -> (String, Vec<String>, Env) {
    let url = server.url();
    let path = |p: &Path| p.display().to_string();
    let mut env: Env = vec![("HOME", path(home)), ("TMPDIR", path(&mk(home, "tmp")))];
    match cli {
        "claude" => {
            env.extend([
                ("CLAUDE_CONFIG_DIR", path(&mk(home, ".claude"))),
                ("ANTHROPIC_BASE_URL", url),
                ("ANTHROPIC_API_KEY", "sk-orch-test".into()),
                ("CLAUDE_CODE_MAX_RETRIES", "0".into()),
                ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
                ("DISABLE_AUTOUPDATER", "1".into()),
            ]);
            ("stub-model".into(), vec![], env)
        }
        "codex" => {
            env.extend([
                ("CODEX_HOME", path(&mk(home, ".codex"))),
                ("STUB_API_KEY", "orch-test".into()),
            ]);
            let provider = format!(
                "model_providers.stub={{name=\"stub\",base_url=\"{url}/v1\",env_key=\
                 \"STUB_API_KEY\",wire_api=\"responses\",request_max_retries=0,\
                 stream_max_retries=0}}"
            );
            let args = [
                "-c",
                "model_provider=stub",
                "-c",
                &provider,
                "-c",
                "analytics.enabled=false",
                "-c",
                "check_for_update_on_startup=false",
            ];
            (
                "stub-model".into(),
                args.iter().map(std::string::ToString::to_string).collect(),
                env,
            )
        }
        "opencode" => {
            let config = home.join("opencode.json");
            let provider = serde_json::json!({
                "model": "stub/stub-model",
                "small_model": "stub/stub-model",
                "provider": {"stub": {
                    "npm": "@ai-sdk/openai-compatible",
                    "options": {"baseURL": format!("{url}/v1"), "apiKey": "orch-test"},
                    "models": {"stub-model": {"tool_call": true}}
                }}
            });
            std::fs::write(&config, provider.to_string()).unwrap();
            env.extend([
                ("XDG_CONFIG_HOME", path(&mk(home, ".config"))),
                ("XDG_DATA_HOME", path(&mk(home, ".local/share"))),
                ("XDG_CACHE_HOME", path(&mk(home, ".cache"))),
                ("XDG_STATE_HOME", path(&mk(home, ".local/state"))),
                ("OPENCODE_CONFIG", path(&config)),
                ("OPENCODE_DISABLE_AUTOUPDATE", "1".into()),
                ("OPENCODE_DISABLE_MODELS_FETCH", "1".into()),
                ("OPENCODE_DISABLE_DEFAULT_PLUGINS", "1".into()),
            ]);
            ("stub/stub-model".into(), vec![], env)
        }
        "gemini" => {
            // Without an auth type selected, Gemini CLI exits 41 before it asks the model.
            let settings = serde_json::json!({
                "security": {"auth": {"selectedType": "gemini-api-key"}},
                "privacy": {"usageStatisticsEnabled": false},
                "general": {"disableAutoUpdate": true}
            });
            std::fs::write(
                mk(home, ".gemini").join("settings.json"),
                settings.to_string(),
            )
            .unwrap();
            env.extend([
                ("GOOGLE_GEMINI_BASE_URL", url),
                ("GEMINI_API_KEY", "orch-test".into()),
            ]);
            ("stub-model".into(), vec![], env)
        }
        other => panic!("no such CLI {other}"),
    }
}

fn mk(home: &Path, sub: &str) -> PathBuf {
    let dir = home.join(sub);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The tests of the real CLIs run one at a time: each starts up to four node programs at once,
/// and the machine has two cores.
pub(crate) static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Roles and limits for a run of the four CLIs (`Options::real_clis(ROLES)`).
pub(crate) const ROLES: &str = "\
roles:
  planner: claude
  judge: codex
  workers: [claude, codex, opencode, gemini]
limits:
  max_parallel: 4
  task_timeout: 120s
";

impl Up {
    /// A run of the real CLIs (`Options::new(name).real_clis(rest_of_config)`).
    pub(crate) fn real_clis(name: &str, rest_of_config: &str) -> Up {
        Options::new(name).real_clis(rest_of_config).start()
    }

    /// A plan with one task per CLI, each owning a test and a script, with `extra` (a model
    /// directive) in its task text.
    pub(crate) fn plan_for_each_cli(&self, extra: impl Fn(&str) -> String) {
        let tasks: Vec<serde_json::Value> = CLIS
            .iter()
            .map(|cli| {
                serde_json::json!({
                    "id": cli, "agent": cli,
                    "task": format!("Write src/{cli}.sh and its test. {}", extra(cli)),
                    "files": [format!("tests/{cli}_test.sh"), format!("src/{cli}.sh")]
                })
            })
            .collect();
        self.p.file(
            "plan.json",
            &serde_json::json!({"tasks": tasks}).to_string(),
        );
    }
}
