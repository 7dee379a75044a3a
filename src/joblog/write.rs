//! Writing the job logs: GNU parallel's TSV rows and JSON lines, one flushed line per task.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use troop_worker::protocol::{Outcome, Usage};

use super::JobLogError;

/// The first line of a TSV job log, as GNU parallel writes it.
pub const TSV_HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

/// One finished task, as written to the logs.
#[derive(Debug, Clone, Copy)]
pub struct LogRecord<'a> {
    /// The task's sequence number (`{#}`).
    pub seq: u64,
    /// Where it ran: `:` for this machine, as GNU parallel writes it.
    pub host: &'a str,
    /// Its start time and resource use.
    pub usage: &'a Usage,
    /// Bytes sent to the task (0 for local tasks).
    pub send: u64,
    /// Bytes of output the task wrote.
    pub receive: u64,
    /// How it ended.
    pub outcome: &'a Outcome,
    /// The command as run.
    pub command: &'a str,
    /// The worker slot that ran it, from 1.
    pub worker: u32,
    /// The process id of the command (or of the worker, for a kernel).
    pub pid: u32,
    /// How many times it ran, this run included.
    pub attempts: u32,
    /// Its input values.
    pub input: &'a [String],
    /// Its key, by which `--resume` recognises it.
    pub key: &'a str,
}

/// One open log file.
#[derive(Debug)]
struct Sink {
    path: PathBuf,
    file: File,
}

/// The open job logs of a run: the TSV log, the JSON-lines log, or both.
#[derive(Debug)]
pub struct JobLog {
    tsv: Option<Sink>,
    json: Option<Sink>,
}

impl JobLog {
    /// Opens the TSV log and/or the JSON-lines log. With `append` (for `--resume`) existing
    /// records are kept, and a partial last line left by a killed writer is cut off; otherwise
    /// the files are truncated. The TSV header is written when the file is new or empty. Every
    /// error happens here, before any task starts.
    pub fn create(
        tsv: Option<&Path>,
        json: Option<&Path>,
        append: bool,
    ) -> Result<JobLog, JobLogError> {
        let tsv = tsv.map(|p| Sink::open(p, append, TSV_HEADER)).transpose()?;
        let json = json.map(|p| Sink::open(p, append, "")).transpose()?;
        Ok(JobLog { tsv, json })
    }

    /// Writes one finished task to each log and flushes (no fsync), so a killed supervisor
    /// loses no finished record. An error's message names the log.
    pub fn record(&mut self, r: &LogRecord<'_>) -> io::Result<()> {
        if let Some(sink) = &mut self.tsv {
            sink.write_line(&tsv_row(r))?;
        }
        if let Some(sink) = &mut self.json {
            sink.write_line(&json_line(r))?;
        }
        Ok(())
    }
}

impl Sink {
    fn open(path: &Path, append: bool, header: &str) -> Result<Sink, JobLogError> {
        let fail = |source| JobLogError::Create {
            path: path.to_path_buf(),
            source,
        };
        let mut options = OpenOptions::new();
        if append {
            options.read(true).append(true).create(true);
        } else {
            options.write(true).create(true).truncate(true);
        }
        let file = options.open(path).map_err(fail)?;
        if append {
            cut_partial_line(&file).map_err(fail)?;
        }
        let mut sink = Sink {
            path: path.to_path_buf(),
            file,
        };
        if !header.is_empty() && sink.file.metadata().map_err(fail)?.len() == 0 {
            sink.file.write_all(header.as_bytes()).map_err(fail)?;
        }
        Ok(sink)
    }

    /// Writes and flushes `line`; an error names the log.
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        let result = self.file.write_all(line.as_bytes());
        result.and_then(|()| self.file.flush()).map_err(|e| {
            let message = format!("cannot write job log `{}`: {e}", self.path.display());
            io::Error::new(e.kind(), message)
        })
    }
}

/// Truncates `file` after its last newline, dropping a line that a killed writer left unfinished.
fn cut_partial_line(file: &File) -> io::Result<()> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = [0u8; 8192];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let buf = &mut chunk[..(end - start) as usize];
        file.read_exact_at(buf, start)?;
        if let Some(i) = buf.iter().rposition(|&b| b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep < len {
                file.set_len(keep)?;
            }
            return Ok(());
        }
        end = start;
    }
    if len > 0 {
        file.set_len(0)?;
    }
    Ok(())
}

/// The command as it appears in the Command column: tabs, newlines and carriage returns become
/// spaces, so that a row stays one line of nine columns.
pub fn log_command(command: &str) -> Cow<'_, str> {
    if command.contains(['\t', '\n', '\r']) {
        Cow::Owned(command.replace(['\t', '\n', '\r'], " "))
    } else {
        Cow::Borrowed(command)
    }
}

/// The short word the JSON log gives an outcome.
pub fn outcome_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Exited(0) => "success",
        Outcome::Exited(_) => "failed",
        Outcome::Signaled(_) => "signaled",
        Outcome::SpawnFailed { .. } => "spawn-failed",
        Outcome::BadKernelArgs(_) => "bad-args",
        Outcome::WorkerLost { .. } => "worker-lost",
        Outcome::TimedOut { .. } => "timed-out",
        Outcome::OutputLost { .. } => "output-lost",
    }
}

/// Milliseconds as GNU parallel's `%.3f` seconds.
fn seconds_3(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// One TSV row: Starttime rounded to milliseconds, JobRuntime truncated to milliseconds and
/// right-aligned in 10 columns (GNU parallel's `%10.3f`), then the line's newline.
pub fn tsv_row(r: &LogRecord<'_>) -> String {
    let start_ms = r.usage.start_unix_us.saturating_add(500) / 1000;
    let runtime = seconds_3(r.usage.wall_us / 1000);
    format!(
        "{}\t{}\t{}\t{:>10}\t{}\t{}\t{}\t{}\t{}\n",
        r.seq,
        log_command(r.host),
        seconds_3(start_ms),
        runtime,
        r.send,
        r.receive,
        r.outcome.exit_value(),
        r.outcome.signal(),
        log_command(r.command),
    )
}

/// One JSON line of the `--joblog-json` log.
#[derive(Debug, serde::Serialize)]
struct JsonRecord<'a> {
    seq: u64,
    host: &'a str,
    start: f64,
    runtime: f64,
    send: u64,
    receive: u64,
    exitval: i32,
    signal: i32,
    command: &'a str,
    worker: u32,
    pid: u32,
    user_cpu: f64,
    sys_cpu: f64,
    max_rss_kib: u64,
    attempts: u32,
    outcome: &'static str,
    input: &'a [String],
    key: &'a str,
}

/// One JSON object on one line, ending with its newline.
pub fn json_line(r: &LogRecord<'_>) -> String {
    let seconds = |us: u64| us as f64 / 1e6;
    let record = JsonRecord {
        seq: r.seq,
        host: r.host,
        start: seconds(r.usage.start_unix_us),
        runtime: seconds(r.usage.wall_us),
        send: r.send,
        receive: r.receive,
        exitval: r.outcome.exit_value(),
        signal: r.outcome.signal(),
        command: r.command,
        worker: r.worker,
        pid: r.pid,
        user_cpu: seconds(r.usage.user_us),
        sys_cpu: seconds(r.usage.sys_us),
        max_rss_kib: r.usage.max_rss_kib,
        attempts: r.attempts,
        outcome: outcome_word(r.outcome),
        input: r.input,
        key: r.key,
    };
    let mut line = serde_json::to_string(&record).expect("a job-log record serializes");
    line.push('\n');
    line
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Rows GNU parallel 20221122 wrote for `--joblog x echo ::: a` and for
    /// `--timeout 1 'sleep {}' ::: 5`.
    pub(crate) const GNU_ECHO_ROW: &str = "1\t:\t1795569877.712\t     0.000\t0\t2\t0\t0\techo a\n";
    pub(crate) const GNU_TIMEOUT_ROW: &str =
        "1\t:\t1795569879.543\t     1.476\t0\t0\t-1\t15\tsleep 5\n";

    pub(crate) fn usage(start_unix_us: u64, wall_us: u64) -> Usage {
        Usage {
            start_unix_us,
            wall_us,
            user_us: 1_500,
            sys_us: 250,
            max_rss_kib: 2048,
        }
    }

    pub(crate) fn record<'a>(
        usage: &'a Usage,
        outcome: &'a Outcome,
        command: &'a str,
    ) -> LogRecord<'a> {
        LogRecord {
            seq: 1,
            host: ":",
            usage,
            send: 0,
            receive: 0,
            outcome,
            command,
            worker: 1,
            pid: 4242,
            attempts: 1,
            input: &[],
            key: "",
        }
    }

    #[test]
    fn rows_match_gnu_parallel_byte_for_byte() {
        let u = usage(1_795_569_877_711_600, 400);
        let ok = Outcome::Exited(0);
        let mut r = record(&u, &ok, "echo a");
        r.receive = 2;
        assert_eq!(tsv_row(&r), GNU_ECHO_ROW);

        let u = usage(1_795_569_879_543_000, 1_476_999);
        let timed_out = Outcome::TimedOut { signal: Some(15) };
        assert_eq!(tsv_row(&record(&u, &timed_out, "sleep 5")), GNU_TIMEOUT_ROW);
    }

    #[test]
    fn long_runtimes_widen_the_column_and_commands_stay_on_one_line() {
        let u = usage(1_499, 1_234_567_891_000);
        let failed = Outcome::Exited(3);
        let row = tsv_row(&record(&u, &failed, "printf 'a\tb\nc'\r"));
        assert_eq!(
            row,
            "1\t:\t0.001\t1234567.891\t0\t0\t3\t0\tprintf 'a b c' \n"
        );
        assert_eq!(log_command("plain"), Cow::Borrowed("plain"));
    }

    #[test]
    fn json_lines_hold_every_field() {
        let u = usage(1_700_000_000_123_456, 2_000_001);
        let lost = Outcome::WorkerLost { signal: Some(9) };
        let input = vec!["x y".to_string(), "q\"".to_string()];
        let mut r = record(&u, &lost, "echo \"x y\"");
        r.seq = 7;
        r.receive = 12;
        r.worker = 3;
        r.attempts = 2;
        r.input = &input;
        r.key = "k\t1";
        let line = json_line(&r);
        assert!(line.ends_with("}\n") && !line[..line.len() - 1].contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["host"], ":");
        assert!((v["start"].as_f64().unwrap() - 1_700_000_000.123456).abs() < 1e-6);
        assert!((v["runtime"].as_f64().unwrap() - 2.000001).abs() < 1e-9);
        assert_eq!(v["receive"], 12);
        assert_eq!(v["exitval"], -1);
        assert_eq!(v["signal"], 9);
        assert_eq!(v["command"], "echo \"x y\"");
        assert_eq!(
            (v["worker"].clone(), v["pid"].clone(), v["attempts"].clone()),
            (3.into(), 4242.into(), 2.into())
        );
        assert!((v["user_cpu"].as_f64().unwrap() - 0.0015).abs() < 1e-9);
        assert_eq!(v["max_rss_kib"], 2048);
        assert_eq!(v["outcome"], "worker-lost");
        assert_eq!(v["input"], serde_json::json!(["x y", "q\""]));
        assert_eq!(v["key"], "k\t1");
    }
}
