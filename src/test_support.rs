//! What the unit tests share: finding GNU parallel, and skipping a check in a way that is seen.
//!
//! Under CI (`CI=true`) a missing tool fails the test. Elsewhere the test goes on without the
//! check and says so on the process's stderr directly, which the test harness does not capture.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Whether `parallel` on PATH is GNU parallel (moreutils ships another program of that name).
pub(crate) fn have_gnu_parallel() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        Command::new("parallel")
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU parallel"))
    })
}

/// True when GNU parallel is installed. Otherwise fails the test under CI, or prints a visible
/// line saying that `what` was skipped and returns false.
#[track_caller]
pub(crate) fn require_gnu_parallel(what: &str) -> bool {
    have_gnu_parallel() || skip(what, "GNU parallel is not installed")
}

/// Fails the test under CI; elsewhere writes a visible skip line and returns false.
#[track_caller]
pub(crate) fn skip(what: &str, why: &str) -> bool {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {why}, and under CI a test may not skip {what}");
    }
    let line = format!("SKIPPED in {test}: {what} ({why})\n");
    // Straight to the file descriptor: `eprintln!` output of a passing test is hidden.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    false
}
