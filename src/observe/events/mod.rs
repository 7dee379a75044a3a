//! The event stream (`--events FILE|-`): one JSON object per line for every run, worker and task
//! event, for scripts that follow a run as it goes (`tail -f`, `jq`).
//!
//! Every line carries `"v"` (the schema's version, [`VERSION`]), `"event"` (its name) and `"t"`
//! (when it was written, in µs since the Unix epoch: the lines written together share one
//! reading of the clock); `docs/events.schema.json` describes each event's fields. Every task
//! of a batch ends with exactly one `task_finished`, retries and `--resume` included: a failed
//! attempt that runs again is a `task_retried`, and a task an earlier run's job log records is
//! a `task_finished` with status `skipped`.
//!
//! The supervisor's loop only records each event as plain data (`record`); the records are
//! handed over in batches whenever the loop is about to wait, and every `BATCH` records while
//! it is busy, to be formatted and written (`writer`): by a thread of its own for a file, on
//! the loop for stdout. A follower sees events as they happen, without a system call per
//! event. At the end of the run everything is written before troop goes on. A stream that
//! cannot be written (a full disk, a closed pipe) is said once on stderr and given up: the run
//! goes on.

mod record;
mod writer;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use troop_worker::protocol::{Outcome, Usage};

use super::{Observer, RunEvent, Summary};
use crate::error::RunError;
use record::{Batch, Record, TaskEnd};
use writer::{Stream, Writer};

/// The version of the event schema every line carries as `"v"`.
pub const VERSION: u32 = 1;

/// Records are handed over once this many are kept, even while the supervisor is busy.
const BATCH: usize = 4096;

/// Bytes of commands a batch keeps before it is handed over anyway.
const BATCH_BYTES: usize = 1 << 20;

/// Writes the event stream.
pub struct Events {
    /// Where batches go.
    stream: Stream,
    /// The path as the user gave it, for messages.
    path: PathBuf,
    /// Records not handed over yet.
    batch: Batch,
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
        if path == Path::new("-") {
            return Ok(Events::inline(Box::new(std::io::stdout()), path));
        }
        // Created (or emptied) here, so that a file that cannot be is refused before any task,
        // and a follower never sees an earlier run's events.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| {
                RunError::Usage(format!(
                    "--events {}: cannot create the file: {e}",
                    path.display()
                ))
            })?;
        let writer = Writer::new(Box::new(file), path.to_path_buf());
        Ok(Events::with_stream(Stream::threaded(writer), path))
    }

    /// Writes events to `sink` from a thread of its own; `path` names it in messages.
    pub fn to_writer(sink: Box<dyn Write + Send>, path: &Path) -> Events {
        let writer = Writer::new(sink, path.to_path_buf());
        Events::with_stream(Stream::threaded(writer), path)
    }

    /// Writes events to `sink` from the supervisor's loop, when it is about to wait.
    pub fn inline(sink: Box<dyn Write + Send>, path: &Path) -> Events {
        let writer = Writer::new(sink, path.to_path_buf());
        Events::with_stream(Stream::Inline(writer), path)
    }

    fn with_stream(stream: Stream, path: &Path) -> Events {
        Events {
            stream,
            path: path.to_path_buf(),
            batch: Batch::with_capacity(BATCH),
            retries: 0,
        }
    }

    /// Keeps a record; hands the batch over once it is full.
    fn keep(&mut self, record: Record) {
        self.batch.records.push(record);
        if self.batch.records.len() >= BATCH || self.batch.bytes.len() >= BATCH_BYTES {
            self.stream.hand_over(&mut self.batch);
        }
    }

    /// Keeps a rare event, its own fields serialised now.
    fn other<T: Serialize>(&mut self, event: &'static str, body: T) {
        // Serialising plain numbers and strings into memory cannot fail.
        let body = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let body = self.batch.keep(&body);
        self.keep(Record::Other { event, body });
    }

    /// Writes what is kept and waits until it is written; nothing is written after.
    fn finish(&mut self) {
        if !self.batch.is_empty() {
            self.stream.hand_over(&mut self.batch);
        }
        self.stream.finish();
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Observer for Events {
    fn event(&mut self, event: &RunEvent<'_>) {
        if !self.stream.open() {
            self.batch.clear();
            return;
        }
        match *event {
            RunEvent::RunStarted { mode, workers, .. } => {
                let options: Vec<String> = std::env::args_os()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                self.other(
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
            RunEvent::WorkerStarted { slot, pid, host } => self.other(
                "worker_started",
                WorkerStarted {
                    worker: slot + 1,
                    pid,
                    host,
                },
            ),
            RunEvent::WorkerExited {
                slot,
                pid,
                signal,
                lost,
            } => self.other(
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
            } => {
                let command = command.map(|c| self.batch.keep(c));
                self.keep(Record::Started {
                    seq,
                    slot,
                    pid,
                    attempt,
                    command,
                });
            }
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
                let event = if retry {
                    self.retries += 1;
                    "task_retried"
                } else {
                    "task_finished"
                };
                let end = task_end(seq, slot, pid, attempt, outcome, usage);
                self.keep(Record::Ended { event, end });
            }
            RunEvent::TaskSkipped { seq } => self.keep(Record::Ended {
                event: "task_finished",
                end: skipped(seq),
            }),
            RunEvent::RunFinished { summary } => {
                let retries = self.retries;
                self.other("run_finished", RunFinished::of(summary, retries));
                self.finish();
            }
        }
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.stream.hand_over(&mut self.batch);
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

#[derive(Serialize)]
struct RunStarted {
    mode: &'static str,
    workers: usize,
    options: Vec<String>,
    version: &'static str,
    pid: u32,
}

#[derive(Serialize)]
struct WorkerStarted<'a> {
    worker: u32,
    pid: u32,
    host: &'a str,
}

#[derive(Serialize)]
struct WorkerExited {
    worker: u32,
    pid: Option<u32>,
    signal: Option<i32>,
    lost: bool,
}

/// How an attempt ended.
fn task_end(
    seq: u64,
    slot: u32,
    pid: Option<u32>,
    attempt: u32,
    outcome: &Outcome,
    usage: &Usage,
) -> TaskEnd {
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
fn skipped(seq: u64) -> TaskEnd {
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

    fn run_finished() -> Summary {
        Summary {
            total: 1,
            failed: 0,
            not_started: 0,
            skipped: 0,
            exit: crate::exit::Exit::Success,
            wall: std::time::Duration::from_micros(3),
            cpu_us: 2,
            workers: 2,
            worker_pids: Vec::new(),
        }
    }

    #[test]
    fn events_are_written_when_the_loop_waits_one_object_a_line() {
        let shared = Shared::default();
        let mut events = Events::inline(Box::new(shared.clone()), Path::new("mem"));
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
            command: Some(b"echo \xff\"x\"\t"),
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
        assert_eq!(got[0]["workers"], 2);
        assert_eq!(got[0]["v"], 1);
        assert_eq!(got[1]["worker"], 1);
        assert_eq!(got[1]["pid"], 42);
        assert_eq!(got[1]["command"], "echo \u{fffd}\"x\"\t");
        assert!(got[1]["t"].as_u64().unwrap() > 1_600_000_000_000_000);
    }

    #[test]
    fn a_file_is_written_whole_by_its_thread_by_the_end_of_the_run() {
        let shared = Shared::default();
        let mut events = Events::to_writer(Box::new(shared.clone()), Path::new("mem"));
        let usage = Usage::default();
        let n = 3 * BATCH as u64 + 5;
        for seq in 1..=n {
            events.event(&RunEvent::TaskStarted {
                seq,
                slot: 1,
                pid: None,
                attempt: 1,
                command: Some(format!("echo {seq}").as_bytes()),
            });
            events.event(&RunEvent::TaskFinished {
                seq,
                slot: 1,
                pid: None,
                attempt: 1,
                outcome: &Outcome::Exited(0),
                usage: &usage,
                retry: false,
            });
            if seq % 1000 == 0 {
                events.flush();
            }
        }
        let summary = run_finished();
        events.event(&RunEvent::RunFinished { summary: &summary });
        let got = lines(&shared);
        assert_eq!(
            got.len() as u64,
            2 * n + 1,
            "every line, at the end of the run"
        );
        for (i, line) in got[..got.len() - 1].iter().enumerate() {
            let seq = i as u64 / 2 + 1;
            assert_eq!(line["seq"], seq);
            let want = if i % 2 == 0 {
                "task_started"
            } else {
                "task_finished"
            };
            assert_eq!(line["event"], want);
        }
        assert_eq!(got[1]["command"], serde_json::Value::Null);
        assert_eq!(got[2 * n as usize - 2]["command"], format!("echo {n}"));
        let last = &got[2 * n as usize];
        assert_eq!(
            (&last["event"], &last["wall_us"]),
            (&"run_finished".into(), &3.into())
        );
    }

    #[test]
    fn a_file_left_by_an_earlier_run_is_emptied_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.jsonl");
        std::fs::write(&path, "an earlier run's line\n".repeat(10_000)).unwrap();
        let mut events = Events::open(&path).unwrap();
        events.event(&RunEvent::TaskSkipped { seq: 1 });
        let summary = run_finished();
        events.event(&RunEvent::RunFinished { summary: &summary });
        let text = std::fs::read_to_string(&path).unwrap();
        let names: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].clone())
            .collect();
        assert_eq!(names, ["task_finished", "run_finished"], "{text}");
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
        events.finish();
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
        let mut events = Events::inline(Box::new(Full), Path::new("full"));
        events.event(&RunEvent::TaskSkipped { seq: 1 });
        events.flush();
        assert!(!events.stream.open());
        events.event(&RunEvent::TaskSkipped { seq: 2 });
        assert!(
            events.batch.is_empty(),
            "no event is kept once the stream is given up"
        );
        // A file's writer says so from its thread: the loop stops keeping events once it sees.
        let mut events = Events::to_writer(Box::new(Full), Path::new("full"));
        events.event(&RunEvent::TaskSkipped { seq: 1 });
        events.flush();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while events.stream.open() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(!events.stream.open(), "the writer gave the stream up");
        events.event(&RunEvent::TaskSkipped { seq: 2 });
        assert!(events.batch.is_empty());
    }
}
