//! The event stream (`--events FILE|-`): one JSON object per line for every run, worker and task
//! event, for scripts that follow a run as it goes (`tail -f`, `jq`).
//!
//! Every line carries `"v"` (the schema's version, [`VERSION`]), `"event"` (its name) and `"t"`
//! (when it was written, in µs since the Unix epoch); `docs/events.schema.json` describes each
//! event's fields. Every task of a batch ends with exactly one `task_finished`, retries and
//! `--resume` included: a failed attempt that runs again is a `task_retried`, and a task an
//! earlier run's job log records is a `task_finished` with status `skipped`.
//!
//! Each event is serialised into one reused buffer, which is written out whenever the
//! supervisor is about to wait and at the end of the run, so a follower sees events as they
//! happen without a system call per event. A stream that cannot be written (a full disk, a
//! closed pipe) is said once on stderr and given up: the run goes on.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use troop_worker::protocol::{Outcome, Usage};
use troop_worker::runtime::unix_now_us;

use super::{Observer, RunEvent, Summary};
use crate::error::RunError;

/// The version of the event schema every line carries as `"v"`.
pub const VERSION: u32 = 1;

/// Buffered events are written out once they pass this many bytes, even while the supervisor
/// is busy.
const WRITE_OVER: usize = 64 * 1024;

/// Writes the event stream.
pub struct Events {
    /// Where events go; `None` once writing failed.
    sink: Option<Box<dyn Write + Send>>,
    /// The path as the user gave it, for messages.
    path: PathBuf,
    /// Serialised lines not written yet.
    buf: Vec<u8>,
    /// Attempts that failed and ran again, for the totals.
    retries: u64,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Events({})", self.path.display())
    }
}

impl Events {
    /// Opens the stream `--events` names: a file (created, or emptied), or stdout for `-`.
    pub fn open(path: &Path) -> Result<Events, RunError> {
        let sink: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            let file = std::fs::File::create(path).map_err(|e| {
                RunError::Usage(format!(
                    "--events {}: cannot create the file: {e}",
                    path.display()
                ))
            })?;
            Box::new(file)
        };
        Ok(Events::to_writer(sink, path))
    }

    /// Writes events to `sink`; `path` names it in messages.
    pub fn to_writer(sink: Box<dyn Write + Send>, path: &Path) -> Events {
        Events {
            sink: Some(sink),
            path: path.to_path_buf(),
            buf: Vec::with_capacity(WRITE_OVER + 4096),
            retries: 0,
        }
    }

    /// Serialises one event as a line at the end of the buffer.
    fn line<T: Serialize>(&mut self, event: &'static str, body: T) {
        if self.sink.is_none() {
            return;
        }
        let line = Line {
            v: VERSION,
            event,
            t: unix_now_us(),
            body,
        };
        // Serialising plain numbers and strings into memory cannot fail.
        let _ = serde_json::to_writer(&mut self.buf, &line);
        self.buf.push(b'\n');
        if self.buf.len() > WRITE_OVER {
            self.write_out();
        }
    }

    /// Writes the buffered lines; gives the stream up, saying so once, when that fails.
    fn write_out(&mut self) {
        let Some(sink) = &mut self.sink else {
            self.buf.clear();
            return;
        };
        let result = sink.write_all(&self.buf).and_then(|()| sink.flush());
        self.buf.clear();
        if let Err(e) = result {
            self.sink = None;
            troop_worker::process::eprint_line(&format!(
                "troop: warning: --events {}: cannot write: {e}; no more events are written",
                self.path.display()
            ));
        }
    }

    /// Starts a line by hand: `{"v":1,"event":"NAME","t":T`. The events of every task are
    /// written so, without serde's generic machinery: they are the stream's bulk.
    fn head(&mut self, event: &'static str) -> Option<&mut Vec<u8>> {
        self.sink.as_ref()?;
        let buf = &mut self.buf;
        buf.extend_from_slice(b"{\"v\":");
        push_u64(buf, VERSION.into());
        buf.extend_from_slice(b",\"event\":\"");
        buf.extend_from_slice(event.as_bytes());
        buf.extend_from_slice(b"\",\"t\":");
        push_u64(buf, unix_now_us());
        Some(buf)
    }

    /// Ends a line started with [`Events::head`].
    fn tail(&mut self) {
        self.buf.extend_from_slice(b"}\n");
        if self.buf.len() > WRITE_OVER {
            self.write_out();
        }
    }

    fn task_started(
        &mut self,
        seq: u64,
        slot: u32,
        pid: Option<u32>,
        attempt: u32,
        command: Option<&[u8]>,
    ) {
        let Some(buf) = self.head("task_started") else {
            return;
        };
        field(buf, "seq", Some(seq));
        field(buf, "worker", Some(u64::from(slot) + 1));
        field(buf, "pid", pid.map(u64::from));
        field(buf, "attempt", Some(u64::from(attempt)));
        buf.extend_from_slice(b",\"command\":");
        match command {
            // Escaping a string into memory cannot fail.
            Some(c) => drop(serde_json::to_writer(
                &mut *buf,
                &String::from_utf8_lossy(c),
            )),
            None => buf.extend_from_slice(b"null"),
        }
        self.tail();
    }

    fn task_end(&mut self, event: &'static str, end: TaskEnd<'_>) {
        let Some(buf) = self.head(event) else {
            return;
        };
        field(buf, "seq", Some(end.seq));
        field(buf, "worker", end.worker.map(u64::from));
        field(buf, "pid", end.pid.map(u64::from));
        field(buf, "attempt", Some(u64::from(end.attempt)));
        // Status words are plain ASCII: no escaping needed.
        buf.extend_from_slice(b",\"status\":\"");
        buf.extend_from_slice(end.status.as_bytes());
        buf.push(b'"');
        buf.extend_from_slice(b",\"exit\":");
        match end.exit {
            Some(code) if code < 0 => {
                buf.push(b'-');
                push_u64(buf, code.unsigned_abs().into());
            }
            Some(code) => push_u64(buf, code as u64),
            None => buf.extend_from_slice(b"null"),
        }
        field(buf, "signal", end.signal.map(|s| s as u64));
        field(buf, "start_us", end.start_us);
        field(buf, "wall_us", Some(end.wall_us));
        field(buf, "user_us", Some(end.user_us));
        field(buf, "sys_us", Some(end.sys_us));
        field(buf, "max_rss_kib", Some(end.max_rss_kib));
        self.tail();
    }
}

/// Appends `,"key":value` (`null` for `None`).
fn field(buf: &mut Vec<u8>, key: &str, value: Option<u64>) {
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b"\":");
    match value {
        Some(v) => push_u64(buf, v),
        None => buf.extend_from_slice(b"null"),
    }
}

/// Appends a number in decimal.
fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

impl Observer for Events {
    fn event(&mut self, event: &RunEvent<'_>) {
        if self.sink.is_none() {
            return;
        }
        match *event {
            RunEvent::RunStarted { mode, workers, .. } => {
                let options: Vec<String> = std::env::args_os()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                self.line(
                    "run_started",
                    RunStarted {
                        mode: mode.name(),
                        workers,
                        options,
                        version: env!("CARGO_PKG_VERSION"),
                        pid: std::process::id(),
                    },
                );
            }
            RunEvent::WorkerStarted { slot, pid } => self.line(
                "worker_started",
                WorkerStarted {
                    worker: slot + 1,
                    pid,
                },
            ),
            RunEvent::WorkerExited {
                slot,
                pid,
                signal,
                lost,
            } => self.line(
                "worker_exited",
                WorkerExited {
                    worker: slot + 1,
                    pid,
                    signal,
                    lost,
                },
            ),
            RunEvent::TaskStarted {
                seq,
                slot,
                pid,
                attempt,
                command,
            } => self.task_started(seq, slot, pid, attempt, command),
            RunEvent::TaskRunning { .. } | RunEvent::InputEnded { .. } => {}
            RunEvent::TaskFinished {
                seq,
                slot,
                pid,
                attempt,
                outcome,
                usage,
                retry,
            } => {
                let name = if retry {
                    self.retries += 1;
                    "task_retried"
                } else {
                    "task_finished"
                };
                self.task_end(name, TaskEnd::of(seq, slot, pid, attempt, outcome, usage));
            }
            RunEvent::TaskSkipped { seq } => self.task_end("task_finished", TaskEnd::skipped(seq)),
            RunEvent::RunFinished { summary } => {
                let retries = self.retries;
                self.line("run_finished", RunFinished::of(summary, retries));
                self.write_out();
            }
        }
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.write_out();
        }
    }

    fn wants_commands(&self) -> bool {
        true
    }
}

/// The status word of an attempt's end.
pub fn status_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Exited(0) => "ok",
        Outcome::Exited(_) => "failed",
        Outcome::Signaled(_) => "signaled",
        Outcome::TimedOut { .. } => "timeout",
        Outcome::WorkerLost { .. } => "lost",
        Outcome::SpawnFailed { .. } => "spawn_failed",
        Outcome::BadKernelArgs(_) => "bad_args",
        Outcome::OutputLost { .. } => "output_lost",
    }
}

/// One line: the fields every event has, then the event's own.
#[derive(Serialize)]
struct Line<T> {
    v: u32,
    event: &'static str,
    t: u64,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
struct RunStarted {
    mode: &'static str,
    workers: usize,
    options: Vec<String>,
    version: &'static str,
    pid: u32,
}

#[derive(Serialize)]
struct WorkerStarted {
    worker: u32,
    pid: u32,
}

#[derive(Serialize)]
struct WorkerExited {
    worker: u32,
    pid: Option<u32>,
    signal: Option<i32>,
    lost: bool,
}

/// How an attempt ended (`task_finished`, `task_retried`).
struct TaskEnd<'a> {
    seq: u64,
    worker: Option<u32>,
    pid: Option<u32>,
    attempt: u32,
    status: &'a str,
    exit: Option<i32>,
    signal: Option<i32>,
    start_us: Option<u64>,
    wall_us: u64,
    user_us: u64,
    sys_us: u64,
    max_rss_kib: u64,
}

impl TaskEnd<'_> {
    fn of(
        seq: u64,
        slot: u32,
        pid: Option<u32>,
        attempt: u32,
        outcome: &Outcome,
        usage: &Usage,
    ) -> TaskEnd<'static> {
        let signal = outcome.signal();
        TaskEnd {
            seq,
            worker: Some(slot + 1),
            pid,
            attempt,
            status: status_word(outcome),
            exit: Some(outcome.exit_value()),
            signal: (signal > 0).then_some(signal),
            start_us: (usage.start_unix_us > 0).then_some(usage.start_unix_us),
            wall_us: usage.wall_us,
            user_us: usage.user_us,
            sys_us: usage.sys_us,
            max_rss_kib: usage.max_rss_kib,
        }
    }

    /// A task not run again because an earlier run's job log records it.
    fn skipped(seq: u64) -> TaskEnd<'static> {
        TaskEnd {
            seq,
            worker: None,
            pid: None,
            attempt: 0,
            status: "skipped",
            exit: None,
            signal: None,
            start_us: None,
            wall_us: 0,
            user_us: 0,
            sys_us: 0,
            max_rss_kib: 0,
        }
    }
}

#[derive(Serialize)]
struct RunFinished {
    tasks: u64,
    failed: u64,
    not_started: u64,
    skipped: u64,
    retries: u64,
    exit: u8,
    workers: usize,
    wall_us: u64,
    cpu_us: u64,
}

impl RunFinished {
    fn of(summary: &Summary, retries: u64) -> RunFinished {
        RunFinished {
            tasks: summary.total,
            failed: summary.failed,
            not_started: summary.not_started,
            skipped: summary.skipped,
            retries,
            exit: summary.exit.code(),
            workers: summary.workers,
            wall_us: summary.wall.as_micros() as u64,
            cpu_us: summary.cpu_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use std::sync::{Arc, Mutex};

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(shared: &Shared) -> Vec<serde_json::Value> {
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn events_are_written_when_the_loop_waits_one_object_a_line() {
        let shared = Shared::default();
        let mut events = Events::to_writer(Box::new(shared.clone()), Path::new("mem"));
        events.event(&RunEvent::RunStarted {
            mode: Mode::Thread,
            workers: 2,
            total: None,
        });
        events.event(&RunEvent::TaskStarted {
            seq: 1,
            slot: 0,
            pid: Some(42),
            attempt: 1,
            command: Some(b"echo \xff\"x\""),
        });
        assert!(
            lines(&shared).is_empty(),
            "nothing is written before a flush"
        );
        events.flush();
        let got = lines(&shared);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["event"], "run_started");
        assert_eq!(got[0]["mode"], "thread");
        assert_eq!(got[0]["v"], 1);
        assert_eq!(got[1]["worker"], 1);
        assert_eq!(got[1]["command"], "echo \u{fffd}\"x\"");
        assert!(got[1]["t"].as_u64().unwrap() > 1_600_000_000_000_000);
    }

    #[test]
    fn an_attempt_that_runs_again_is_a_retry_and_a_skip_is_a_finish() {
        let shared = Shared::default();
        let mut events = Events::to_writer(Box::new(shared.clone()), Path::new("mem"));
        let usage = Usage {
            start_unix_us: 5,
            wall_us: 7,
            ..Usage::default()
        };
        let lost = Outcome::WorkerLost { signal: Some(9) };
        for (outcome, retry) in [
            (Outcome::Exited(3), true),
            (Outcome::Signaled(9), false),
            (lost, false),
        ] {
            events.event(&RunEvent::TaskFinished {
                seq: 4,
                slot: 1,
                pid: None,
                attempt: 1,
                outcome: &outcome,
                usage: &usage,
                retry,
            });
        }
        events.event(&RunEvent::TaskSkipped { seq: 9 });
        events.flush();
        let got = lines(&shared);
        assert_eq!(got[0]["event"], "task_retried");
        assert_eq!(
            (got[0]["status"].as_str(), got[0]["exit"].as_i64()),
            (Some("failed"), Some(3))
        );
        assert_eq!(got[1]["event"], "task_finished");
        assert_eq!(got[1]["signal"], 9);
        assert_eq!(got[1]["worker"], 2);
        assert_eq!(got[1]["wall_us"], 7);
        assert_eq!(
            (got[2]["status"].as_str(), got[2]["exit"].as_i64()),
            (Some("lost"), Some(-1))
        );
        assert_eq!(got[3]["status"], "skipped");
        assert!(got[3]["worker"].is_null());
    }

    #[test]
    fn a_stream_that_cannot_be_written_is_given_up() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut events = Events::to_writer(Box::new(Full), Path::new("full"));
        events.event(&RunEvent::TaskSkipped { seq: 1 });
        events.flush();
        assert!(events.sink.is_none());
        events.event(&RunEvent::TaskSkipped { seq: 2 });
        assert!(
            events.buf.is_empty(),
            "no event is kept once the stream is given up"
        );
    }
}
