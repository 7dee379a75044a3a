//! Output that outgrows memory: it goes to a file in the run's directory, memory stays bounded
//! in every mode, and output that cannot be kept is never lost quietly.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::util::{COMMAND_TIMEOUT, TROOP, read_json_log, temp_dir};

/// What a measured run of troop left behind.
#[derive(Debug)]
pub struct Measured {
    /// The exit code (`None` when a signal ended troop).
    pub code: Option<i32>,
    /// How many bytes troop wrote to stdout.
    pub stdout_bytes: u64,
    pub stderr: String,
    /// The peak resident set of troop and of every process it (or they) waited for, in KiB.
    pub peak_rss_kib: u64,
}

/// Runs `troop ARGS…` with these environment variables, counting its stdout without keeping
/// it, and measures the peak memory of troop and all its workers and tasks with `wait4(2)`.
pub fn run_measured(args: &[&str], envs: &[(&str, &str)]) -> Measured {
    run_measured_reading_late(args, envs, Duration::ZERO)
}

/// Starts troop through a small Python process that waits for it and reports its resource use:
/// a process started straight from this test binary would inherit the test binary's own peak
/// resident set (Linux keeps an exec'ing process's old high-water mark, and a vfork child's old
/// memory is its parent's), so its figure would say nothing about troop.
const MEASURER: &str = "import os, sys\n\
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)\n\
_, status, usage = os.wait4(pid, 0)\n\
open(sys.argv[1], 'w').write('%d %d' % (status, usage.ru_maxrss))\n";

/// [`run_measured`], with troop's stdout left unread for `pause` first: a slow reader.
pub fn run_measured_reading_late(
    args: &[&str],
    envs: &[(&str, &str)],
    pause: Duration,
) -> Measured {
    use std::os::unix::process::CommandExt;
    let dir = temp_dir();
    let report = dir.path().join("usage");
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(MEASURER)
        .arg(&report)
        .arg(TROOP)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start python3 to measure troop");
    let mut out = child.stdout.take().expect("troop's stdout");
    let mut err = child.stderr.take().expect("troop's stderr");
    let counter = std::thread::spawn(move || {
        std::thread::sleep(pause);
        std::io::copy(&mut out, &mut std::io::sink())
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let group = child.id() as i32;
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(COMMAND_TIMEOUT).is_err() {
            // A hang fails the test rather than the suite.
            // SAFETY: killpg has no memory effects.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
    });
    let measurer = child.wait().expect("wait for the measuring python3");
    let _ = done.send(());
    watchdog.join().expect("the watchdog");
    assert!(
        measurer.success(),
        "the measuring python3 failed: {measurer:?}"
    );
    let text = std::fs::read_to_string(&report).expect("read troop's measured usage");
    let mut fields = text.split(' ').map(|f| f.parse::<i64>().expect("a number"));
    let (status, peak) = (
        fields.next().expect("status") as i32,
        fields.next().expect("peak") as u64,
    );
    Measured {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stdout_bytes: counter.join().expect("the counter").expect("read stdout"),
        stderr: errors.join().expect("the stderr reader"),
        peak_rss_kib: peak,
    }
}

/// Says that a test cannot run here and why: a failure under CI (`CI=true`), elsewhere a line
/// on the terminal that libtest does not swallow.
pub fn skip(test: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {why}, and under CI nothing may be skipped");
    }
    let _ = writeln!(std::io::stderr(), "note: skipped {test}: {why}");
}

/// A tmpfs of limited size mounted on a fresh directory; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` reads it), or says why it cannot.
    fn mount(test: &str, size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            skip(test, "mounting a small tmpfs needs root");
            return None;
        }
        let dir = temp_dir();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .expect("run mount");
        if !mounted.success() {
            skip(test, "mount -t tmpfs failed (no privilege to mount here)");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temp path")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn output_that_cannot_be_spilled_fails_the_task_and_names_the_file() {
    // Each task writes 12 MB: more than the whole 8 MB disk its output spills to.
    let test = "output_that_cannot_be_spilled_fails_the_task_and_names_the_file";
    let Some(disk) = Tmpfs::mount(test, "8m") else {
        return;
    };
    let logs = temp_dir();
    for mode in ["process", "thread", "async"] {
        let log = logs.path().join(format!("{mode}.json"));
        let log = log.to_str().expect("utf-8 path");
        let ran = run_measured(
            &[
                "run",
                "-j2",
                "--mode",
                mode,
                "--joblog-json",
                log,
                "head -c 12000000 /dev/zero; : {}",
                ":::",
                "1",
                "2",
            ],
            &[("TMPDIR", disk.path())],
        );
        assert_eq!(
            ran.code,
            Some(2),
            "{mode}: both tasks lost output, so both must fail: {ran:?}"
        );
        for task in ["1", "2"] {
            let said = ran
                .stderr
                .lines()
                .find(|l| l.contains(&format!("task {task} failed")))
                .unwrap_or_else(|| panic!("{mode}: nothing said about task {task}: {ran:?}"));
            assert!(
                said.contains(disk.path()) && said.contains("stdout"),
                "{mode}: the message must name the stream and the file: {said:?}"
            );
        }
        let rows = read_json_log(std::path::Path::new(log));
        assert_eq!(rows.len(), 2, "{mode}: {rows:?}");
        for row in &rows {
            assert_eq!(row["outcome"], "output-lost", "{mode}: {row}");
            assert_eq!(row["exitval"], -1, "{mode}: {row}");
        }
        assert!(
            ran.stdout_bytes < 24_000_000,
            "{mode}: all the output arrived, so the disk was not full: {ran:?}"
        );
    }
}

#[test]
fn a_spill_that_fits_loses_nothing() {
    // The same disk with room to spare: every byte arrives and the run succeeds.
    let test = "a_spill_that_fits_loses_nothing";
    let Some(disk) = Tmpfs::mount(test, "64m") else {
        return;
    };
    for mode in ["process", "thread", "async"] {
        let ran = run_measured(
            &[
                "run",
                "-j2",
                "--mode",
                mode,
                "head -c 12000000 /dev/zero; : {}",
                ":::",
                "1",
                "2",
            ],
            &[("TMPDIR", disk.path())],
        );
        assert_eq!(ran.code, Some(0), "{mode}: {ran:?}");
        assert_eq!(ran.stdout_bytes, 24_000_000, "{mode}");
    }
}

/// The most memory a run may take, all its processes together, however much its tasks print.
const BOUNDED_KIB: u64 = 64 * 1024;

#[test]
fn line_buffer_memory_stays_bounded_however_long_the_task_talks() {
    for mode in ["process", "thread", "async"] {
        let ran = run_measured(
            &[
                "run",
                "--line-buffer",
                "--mode",
                mode,
                "yes 0123456789abcdef | head -c 100000000; : {}",
                ":::",
                "1",
            ],
            &[],
        );
        assert_eq!(ran.code, Some(0), "{mode}: {ran:?}");
        assert_eq!(ran.stdout_bytes, 100_000_000, "{mode}");
        assert!(
            ran.peak_rss_kib < BOUNDED_KIB,
            "{mode}: 100 MB of lines took {} KiB",
            ran.peak_rss_kib
        );
    }
}

#[test]
fn held_lines_of_a_later_task_stay_bounded_with_keep_order() {
    // Task 2 prints 100 MB of lines while task 1, which must be printed first, waits for it
    // to finish: everything task 2 prints is held back, and must not be held in memory.
    let dir = temp_dir();
    let fifo = dir.path().join("task2-done");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let script = format!(
        "if [ {{}} = 1 ]; then read done < '{0}'; echo first; \
         else yes 0123456789abcdef | head -c 100000000; echo > '{0}'; fi",
        fifo.display()
    );
    for mode in ["thread", "async"] {
        let ran = run_measured(
            &[
                "run",
                "-j2",
                "-k",
                "--line-buffer",
                "--mode",
                mode,
                &script,
                ":::",
                "1",
                "2",
            ],
            &[],
        );
        assert_eq!(ran.code, Some(0), "{mode}: {ran:?}");
        assert_eq!(ran.stdout_bytes, 100_000_006, "{mode}");
        assert!(
            ran.peak_rss_kib < BOUNDED_KIB,
            "{mode}: 100 MB of held lines took {} KiB",
            ran.peak_rss_kib
        );
    }
}

#[test]
fn line_buffer_memory_stays_bounded_when_the_reader_is_slow() {
    // Nobody reads troop's stdout for the first two seconds, in which the task could print all
    // of its 100 MB: troop must make the task wait rather than hold its lines.
    for mode in ["thread", "async"] {
        let ran = run_measured_reading_late(
            &[
                "run",
                "--line-buffer",
                "--mode",
                mode,
                "yes 0123456789abcdef | head -c 100000000; : {}",
                ":::",
                "1",
            ],
            &[],
            Duration::from_secs(2),
        );
        assert_eq!(ran.code, Some(0), "{mode}: {ran:?}");
        assert_eq!(ran.stdout_bytes, 100_000_000, "{mode}");
        assert!(
            ran.peak_rss_kib < BOUNDED_KIB,
            "{mode}: 100 MB of lines for a slow reader took {} KiB",
            ran.peak_rss_kib
        );
    }
}

#[test]
fn async_mode_spills_big_output_instead_of_holding_it() {
    let ran = run_measured(
        &[
            "run",
            "-j2",
            "--mode",
            "async",
            "head -c 150000000 /dev/zero; : {}",
            ":::",
            "1",
            "2",
        ],
        &[],
    );
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(ran.stdout_bytes, 300_000_000);
    assert!(
        ran.peak_rss_kib < BOUNDED_KIB,
        "300 MB of output took {} KiB",
        ran.peak_rss_kib
    );
}

#[test]
fn async_tasks_report_cpu_time_and_max_rss() {
    let dir = temp_dir();
    let log = dir.path().join("log.json");
    let log = log.to_str().expect("utf-8 path");
    let ran = run_measured(
        &[
            "run",
            "--mode",
            "async",
            "--joblog-json",
            log,
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; : {}",
            ":::",
            "1",
        ],
        &[],
    );
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let rows = read_json_log(std::path::Path::new(log));
    assert_eq!(rows.len(), 1);
    let cpu =
        rows[0]["user_cpu"].as_f64().unwrap_or(0.0) + rows[0]["sys_cpu"].as_f64().unwrap_or(0.0);
    assert!(cpu > 0.0, "no CPU time for a busy task: {}", rows[0]);
    assert!(
        rows[0]["max_rss_kib"].as_u64().unwrap_or(0) > 0,
        "no max RSS: {}",
        rows[0]
    );
}
