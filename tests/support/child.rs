//! A test binary that runs itself as a child process: for what can only be
//! seen from outside a process (what `main` returning delivers, a global
//! `tracing` subscriber, a kill). Used by `harness = false` test binaries,
//! whose `main` is [`main`] here: run with no arguments, or by nextest with a
//! test name, it runs the selected tests; each spawns the binary again with
//! [`CHILD`] set, and that run is the child program. It answers `--list` as
//! libtest does, so nextest can run it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

/// Set in a child's environment: the scenario it runs.
pub const CHILD: &str = "OTLP_SINK_TEST_CHILD";

/// One test: its name, and the check that runs in the parent.
pub type Test = (&'static str, fn());

/// The binary's `main`: `child` when this process is a child, the selected
/// `tests` otherwise.
pub fn main(tests: &[Test], child: fn(&str)) -> ExitCode {
    if let Ok(scenario) = std::env::var(CHILD) {
        child(&scenario);
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            for (name, _) in tests {
                println!("{name}: test");
            }
        }
        return ExitCode::SUCCESS;
    }
    let exact = args.iter().any(|a| a == "--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let selected = tests.iter().filter(|(name, _)| {
        filters.is_empty() || filters.iter().any(|f| if exact { name == f } else { name.contains(f.as_str()) })
    });
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in selected {
        match std::panic::catch_unwind(test) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    let outcome = if failed == 0 { "ok" } else { "FAILED" };
    println!("\ntest result: {outcome}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// This binary as a child running `scenario`, with `env` added to its
/// environment. Its standard output is captured; its standard error is the
/// test's.
pub fn command(scenario: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command.env(CHILD, scenario).envs(env.iter().copied()).stdin(Stdio::null()).stdout(Stdio::piped());
    command
}

/// Runs `command` to its exit, which must come within `bound` (woken by the
/// child's exit, not polled). Panics if it does not, naming `what`.
pub fn run(mut command: Command, bound: Duration, what: &str) -> Output {
    let mut child = command.spawn().expect("child starts");
    // Read standard output on a thread, so a child that prints a lot cannot
    // block on a full pipe while we wait for its exit.
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut text).map(|_| text)
    });
    let Some(status) = child.wait_timeout(bound).expect("child status") else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the child did not exit within {bound:?}: {what}");
    };
    let stdout = reader.join().expect("reader").expect("child stdout");
    Output { status, stdout, stderr: Vec::new() }
}

/// `target/<profile>/examples/<name>`, next to the running test binary in
/// `target/<profile>/deps/`.
///
/// # Panics
///
/// If it has not been built (`cargo build --examples`).
pub fn example(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("the test binary's path");
    let profile_dir = me.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.exists(), "{}: build it with `cargo build --examples`", binary.display());
    binary
}
