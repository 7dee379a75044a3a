//! The job log: GNU parallel's tab-separated `--joblog` format, a JSON-lines twin, and reading a
//! log back to resume a run.
//!
//! The TSV log is byte-for-byte what GNU parallel 20221122 writes, so either tool can resume from
//! a log the other wrote. One finished task is one line, written and flushed as it finishes.

pub mod lock;
pub mod resume;
pub mod write;

pub use lock::LogLock;
pub use resume::{DoneSet, read_done};
pub use write::{JobLog, LogRecord};

use std::path::PathBuf;

use thiserror::Error;

/// A job log that cannot be opened, read or used.
#[derive(Debug, Error)]
pub enum JobLogError {
    /// The log cannot be created or opened for writing.
    #[error("cannot write job log `{}`: {source}", path.display())]
    Create {
        /// The log's path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The log exists but cannot be read.
    #[error("cannot read job log `{}`: {source}", path.display())]
    Read {
        /// The log's path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the log is not a job-log row.
    #[error(
        "job log `{}` line {line}: {reason}; a row has 9 tab-separated columns (Seq, Host, \
         Starttime, JobRuntime, Send, Receive, Exitval, Signal, Command) as GNU parallel writes \
         them",
        path.display()
    )]
    Parse {
        /// The log's path.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
    /// Another process (another run) holds the log's lock.
    #[error(
        "job log `{}` is in use by {}, another run that writes it; wait for it to end, or use \
         another --joblog file",
        path.display(),
        lock::holder_words(*holder)
    )]
    Locked {
        /// The log's path.
        path: PathBuf,
        /// The pid that holds the lock, when `/proc/locks` says.
        holder: Option<u32>,
    },
    /// A row records a command that the current command template cannot produce.
    #[error(
        "job log `{}` was written for another command: line {line} ran `{command}`, which this \
         command template cannot produce; use another --joblog file or the same command",
        path.display()
    )]
    ForeignCommand {
        /// The log's path.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The command recorded on that line.
        command: String,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use std::process::{Command, Stdio};

    use troop_worker::protocol::{Outcome, Usage};

    use super::*;

    /// The job log GNU parallel writes for `parallel --joblog LOG args...`, or `None` when GNU
    /// parallel is not installed (which fails the test under CI, and is reported otherwise).
    pub(crate) fn gnu_joblog(args: &[&str]) -> Option<String> {
        if !crate::test_support::require_gnu_parallel("the comparison with GNU parallel's log") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gnu.log");
        let status = Command::new("parallel")
            .arg("--will-cite")
            .arg("--joblog")
            .arg(&log)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.code().is_some(), "parallel was killed: {status}");
        Some(std::fs::read_to_string(&log).unwrap())
    }

    fn write(log: &mut JobLog, seq: u64, code: i32, command: &str) {
        let usage = Usage {
            start_unix_us: 1_700_000_000_000_000 + seq,
            wall_us: 1_000,
            ..Usage::default()
        };
        let outcome = Outcome::Exited(code);
        let input = vec![command.as_bytes().to_vec()];
        let r = LogRecord {
            seq,
            host: ":",
            usage: &usage,
            send: 0,
            receive: 0,
            outcome: &outcome,
            command: command.as_bytes(),
            worker: 1,
            pid: 1,
            attempts: 1,
            input: &input,
            key: command.as_bytes(),
        };
        log.record(&r).unwrap();
    }

    fn same(command: &[u8]) -> Option<Vec<u8>> {
        Some(command.to_vec())
    }

    #[test]
    fn append_keeps_old_rows_without_a_second_header() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = dir.path().join("log.tsv");
        let json = dir.path().join("log.json");
        let mut log = JobLog::create(Some(&tsv), Some(&json), false).unwrap();
        write(&mut log, 1, 0, "a");
        write(&mut log, 2, 1, "b");
        drop(log);
        let mut log = JobLog::create(Some(&tsv), Some(&json), true).unwrap();
        write(&mut log, 3, 0, "b");
        drop(log);
        let text = std::fs::read_to_string(&tsv).unwrap();
        assert_eq!(text.matches("Seq\tHost").count(), 1);
        assert!(text.starts_with(write::TSV_HEADER));
        assert_eq!(text.lines().count(), 4);
        assert_eq!(std::fs::read_to_string(&json).unwrap().lines().count(), 3);

        let done = read_done(&tsv, &same).unwrap();
        assert_eq!(done.len(), 2);
        assert!(done.skip(b"a", true) && done.skip(b"b", true));

        // Without append, the logs start over.
        let log = JobLog::create(Some(&tsv), Some(&json), false).unwrap();
        drop(log);
        assert_eq!(std::fs::read_to_string(&tsv).unwrap(), write::TSV_HEADER);
        assert_eq!(std::fs::read_to_string(&json).unwrap(), "");
    }

    #[test]
    fn append_writes_the_header_into_an_empty_file_and_cuts_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = dir.path().join("log.tsv");
        std::fs::write(&tsv, "").unwrap();
        drop(JobLog::create(Some(&tsv), None, true).unwrap());
        assert_eq!(std::fs::read_to_string(&tsv).unwrap(), write::TSV_HEADER);

        let partial = format!("{}1\t:\t17000", write::TSV_HEADER);
        std::fs::write(&tsv, &partial).unwrap();
        let mut log = JobLog::create(Some(&tsv), None, true).unwrap();
        write(&mut log, 2, 0, "x");
        let text = std::fs::read_to_string(&tsv).unwrap();
        assert_eq!(text.lines().count(), 2, "{text:?}");
        assert!(read_done(&tsv, &same).unwrap().skip(b"x", false));

        std::fs::write(&tsv, "Seq\tHo").unwrap();
        drop(JobLog::create(Some(&tsv), None, true).unwrap());
        assert_eq!(std::fs::read_to_string(&tsv).unwrap(), write::TSV_HEADER);
    }

    #[test]
    fn an_unwritable_path_fails_at_create_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("missing").join("log.tsv");
        let err = JobLog::create(Some(&bad), None, false).unwrap_err();
        assert!(matches!(err, JobLogError::Create { .. }));
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("cannot write job log `{}`: ", bad.display())),
            "{message}"
        );
    }

    #[test]
    fn a_log_with_no_files_writes_nothing() {
        let mut log = JobLog::create(None, None, false).unwrap();
        write(&mut log, 1, 0, "a");
    }

    #[test]
    fn outcome_words() {
        let spawn = Outcome::SpawnFailed {
            code: 127,
            message: String::new(),
        };
        let cases = [
            (Outcome::Exited(0), "success"),
            (Outcome::Exited(1), "failed"),
            (Outcome::Signaled(9), "signaled"),
            (spawn, "spawn-failed"),
            (Outcome::BadKernelArgs(String::new()), "bad-args"),
            (Outcome::WorkerLost { signal: None }, "worker-lost"),
            (Outcome::TimedOut { signal: None }, "timed-out"),
        ];
        for (outcome, word) in cases {
            assert_eq!(write::outcome_word(&outcome), word);
        }
    }

    #[test]
    fn rows_have_the_shape_of_a_live_gnu_parallel_log() {
        let shape = regex::Regex::new(
            r"^\d+\t:\t\d+\.\d{3}\t[ \d]{5}\d\.\d{3}\t\d+\t\d+\t-?\d+\t\d+\t[^\t\n]*\n$",
        )
        .unwrap();
        let u = write::tests::usage(1_795_569_877_711_600, 400);
        let ok = Outcome::Exited(0);
        let ours = write::tsv_row(&write::tests::record(&u, &ok, b"echo a"));
        let ours = String::from_utf8(ours).unwrap();
        assert!(shape.is_match(&ours), "{ours:?}");
        assert!(
            shape.is_match(write::tests::GNU_ECHO_ROW)
                && shape.is_match(write::tests::GNU_TIMEOUT_ROW)
        );

        let Some(log) = gnu_joblog(&["echo", ":::", "a", "b"]) else {
            return;
        };
        let mut lines = log.split_inclusive('\n');
        assert_eq!(lines.next(), Some(write::TSV_HEADER));
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len(), 2);
        for row in rows {
            assert!(shape.is_match(row), "{row:?}");
            assert_eq!(row.split('\t').count(), ours.split('\t').count());
        }
    }
}
