//! Running one integration test in a process of its own. The integration tests are one
//! binary (`tests/it`), so process-wide state (the global tracing subscriber, the panic hook)
//! is shared by every test running in it. A test that installs such state, or that must see
//! only its own log events, re-runs itself in a child process of the same test binary,
//! filtered to exactly that test; the parent only checks that the child ran it and passed.

use std::process::Command;

/// Set in the child to the full name of the one test it runs.
const CHILD_ENV: &str = "SYNCDECK_IT_OWN_PROCESS";

/// The name libtest gives the test `test` of the module `module_path` (`module_path!()`):
/// the module path without the crate name.
pub fn test_name(module_path: &str, test: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{test}"),
        None => test.to_string(),
    }
}

/// Call first in a test that needs the process to itself:
/// `if support::own_process::ran_in_child(module_path!(), "the_test_fn") { return; }`.
///
/// In the test binary's own process it runs the test in a child process (exact filter, one
/// thread), panics with the child's output unless the child ran exactly that test and it
/// passed, and returns `true`: the caller returns. In that child it returns `false`: the
/// caller runs its body, alone in the process.
pub fn ran_in_child(module_path: &str, test: &str) -> bool {
    let name = test_name(module_path, test);
    if std::env::var_os(CHILD_ENV).is_some_and(|running| running == name.as_str()) {
        return false;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new(exe)
        .args(["--exact", &name, "--test-threads=1"])
        .env(CHILD_ENV, &name)
        .output()
        .expect("the test binary runs as a child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A misspelt name would run no test and "pass": demand that the one test ran.
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} in its own process: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    true
}
