//! `orch doctor` on the agent CLIs: version, credentials and first-run settings, read from the
//! environment the agent will get (its `env` over orch's). Stand-in CLIs print a version, so
//! no real CLI is needed.

use crate::support;

use support::TestProject;

/// A directory of stand-in programs that print `version` for `--version`.
fn fake_clis(p: &TestProject) -> String {
    for (name, version) in [
        ("claude", "2.1.330 (Claude Code)"),
        ("gemini", "0.61.0"),
        ("codex", "codex-cli 0.169.0"),
        ("node", "v20.0.0"),
    ] {
        p.script(
            &format!("bin/{name}"),
            &format!("#!/bin/sh\necho '{version}'\n"),
        );
    }
    format!(
        "{}:{}",
        p.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn config(home: &str) -> String {
    format!(
        "agents:
  c:
    kind: claude
    env: {{HOME: \"{home}\", ANTHROPIC_API_KEY: sk-x}}
  g:
    kind: gemini
    env: {{HOME: \"{home}\", GEMINI_API_KEY: k}}
  x:
    kind: codex
    args: [\"-c\", 'model_providers.s={{name=\"s\",base_url=\"http://127.0.0.1:9/v1\",env_key=\"S_KEY\"}}']
    env: {{HOME: \"{home}\"}}
roles:
  planner: c
  judge: x
  workers: [c, g]
"
    )
}

#[test]
fn doctor_names_versions_credentials_and_missing_first_run_settings() {
    let p = TestProject::new();
    let path = fake_clis(&p);
    let home = p.path("home").display().to_string();
    std::fs::create_dir_all(&home).unwrap();
    p.file("orch.yaml", &config(&home));
    let run = p
        .orch()
        .env("PATH", &path)
        .without_credentials()
        .args(["doctor"])
        .run()
        .expect(1)
        .stdout_has("2.1.330 (Claude Code)")
        .stdout_has("codex-cli 0.169.0")
        .stdout_has("agent `c`: credentials: ANTHROPIC_API_KEY is set")
        .stdout_has("agent `g`: credentials: GEMINI_API_KEY is set")
        .stdout_has("FAIL  agent `g`: no auth type selected")
        .stdout_has("selectedType")
        .stdout_has("FAIL  agent `x`: the custom model provider reads its key from S_KEY");
    assert!(
        !run.stdout().contains("agent `c`: no credentials"),
        "{}",
        run.stdout()
    );

    // With the first-run setting written and the provider's key set, all is ready.
    p.file(
        "home/.gemini/settings.json",
        r#"{"security": {"auth": {"selectedType": "gemini-api-key"}}}"#,
    );
    p.orch()
        .env("PATH", &path)
        .without_credentials()
        .env("S_KEY", "k")
        .args(["doctor"])
        .run()
        .expect(0)
        .stdout_has("agent `g`: auth type gemini-api-key selected")
        .stdout_has("agent `x`: credentials: S_KEY is set")
        .stdout_has("ready");
}
