//! The `orch` binary: everything lives in the library; this only hands over the arguments.

fn main() -> std::process::ExitCode {
    orch::run(std::env::args_os())
}
