//! Writing the job logs: GNU parallel's TSV rows and JSON lines, one flushed line per task.
//!
//! Commands and input values are bytes and need not be UTF-8. The TSV log writes them as they
//! are, as GNU parallel does. The JSON log writes `command`, each `input` value and `key` as
//! JSON strings; when one of them is not valid UTF-8, its string shows each invalid byte as
//! U+FFFD, and a sibling field of the same name with `_b64` appended holds the exact bytes in
//! standard base64 (RFC 4648, with padding): `command_b64`, `key_b64`, and `input_b64`, an
//! array with an entry for every input value. The `_b64` fields are absent when every value is
//! UTF-8, so the string fields are then exact.

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
    pub command: &'a [u8],
    /// The worker slot that ran it, from 1.
    pub worker: u32,
    /// The process id of the command (or of the worker, for a kernel).
    pub pid: u32,
    /// How many times it ran, this run included.
    pub attempts: u32,
    /// Its input values.
    pub input: &'a [Vec<u8>],
    /// Its key, by which `--resume` recognises it.
    pub key: &'a [u8],
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
            sink.write_line(json_line(r).as_bytes())?;
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
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let result = self.file.write_all(line);
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
/// spaces, so that a row stays one line of nine columns. Every other byte is kept.
pub fn log_command(command: &[u8]) -> Cow<'_, [u8]> {
    let breaks = |b: &u8| matches!(b, b'\t' | b'\n' | b'\r');
    if command.iter().any(breaks) {
        Cow::Owned(
            command
                .iter()
                .map(|b| if breaks(b) { b' ' } else { *b })
                .collect(),
        )
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
pub fn tsv_row(r: &LogRecord<'_>) -> Vec<u8> {
    let start_ms = r.usage.start_unix_us.saturating_add(500) / 1000;
    let runtime = seconds_3(r.usage.wall_us / 1000);
    let mut row = format!(
        "{}\t{}\t{}\t{:>10}\t{}\t{}\t{}\t{}\t",
        r.seq,
        String::from_utf8_lossy(&log_command(r.host.as_bytes())),
        seconds_3(start_ms),
        runtime,
        r.send,
        r.receive,
        r.outcome.exit_value(),
        r.outcome.signal(),
    )
    .into_bytes();
    row.extend_from_slice(&log_command(r.command));
    row.push(b'\n');
    row
}

/// Bytes as JSON text: UTF-8 as it is, any invalid byte as U+FFFD.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The exact bytes in base64, when they are not valid UTF-8 (and so not exact in [`text`]).
fn exact(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).is_err().then(|| base64(bytes))
}

/// Standard base64 (RFC 4648) with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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
    command: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command_b64: Option<String>,
    worker: u32,
    pid: u32,
    user_cpu: f64,
    sys_cpu: f64,
    max_rss_kib: u64,
    attempts: u32,
    outcome: &'static str,
    input: Vec<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_b64: Option<Vec<String>>,
    key: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_b64: Option<String>,
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
        command: text(r.command),
        command_b64: exact(r.command),
        worker: r.worker,
        pid: r.pid,
        user_cpu: seconds(r.usage.user_us),
        sys_cpu: seconds(r.usage.sys_us),
        max_rss_kib: r.usage.max_rss_kib,
        attempts: r.attempts,
        outcome: outcome_word(r.outcome),
        input: r.input.iter().map(|v| text(v)).collect(),
        input_b64: r
            .input
            .iter()
            .any(|v| std::str::from_utf8(v).is_err())
            .then(|| r.input.iter().map(|v| base64(v)).collect()),
        key: text(r.key),
        key_b64: exact(r.key),
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
        command: &'a [u8],
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
            key: b"",
        }
    }

    #[test]
    fn rows_match_gnu_parallel_byte_for_byte() {
        let u = usage(1_795_569_877_711_600, 400);
        let ok = Outcome::Exited(0);
        let mut r = record(&u, &ok, b"echo a");
        r.receive = 2;
        assert_eq!(tsv_row(&r), GNU_ECHO_ROW.as_bytes());

        let u = usage(1_795_569_879_543_000, 1_476_999);
        let timed_out = Outcome::TimedOut { signal: Some(15) };
        assert_eq!(
            tsv_row(&record(&u, &timed_out, b"sleep 5")),
            GNU_TIMEOUT_ROW.as_bytes()
        );
    }

    #[test]
    fn long_runtimes_widen_the_column_and_commands_stay_on_one_line() {
        let u = usage(1_499, 1_234_567_891_000);
        let failed = Outcome::Exited(3);
        let row = tsv_row(&record(&u, &failed, b"printf 'a\tb\nc'\r"));
        assert_eq!(
            row,
            b"1\t:\t0.001\t1234567.891\t0\t0\t3\t0\tprintf 'a b c' \n"
        );
        assert_eq!(log_command(b"plain"), Cow::Borrowed(b"plain"));
    }

    #[test]
    fn json_lines_hold_every_field() {
        let u = usage(1_700_000_000_123_456, 2_000_001);
        let lost = Outcome::WorkerLost { signal: Some(9) };
        let input = vec![b"x y".to_vec(), b"q\"".to_vec()];
        let mut r = record(&u, &lost, b"echo \"x y\"");
        r.seq = 7;
        r.receive = 12;
        r.worker = 3;
        r.attempts = 2;
        r.input = &input;
        r.key = b"k\t1";
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
        for field in ["command_b64", "input_b64", "key_b64"] {
            assert!(v.get(field).is_none(), "{field} in {line}");
        }
    }

    /// Decodes standard base64, for checking [`base64`].
    fn unbase64(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = Vec::new();
        for c in text.bytes().filter(|&c| c != b'=') {
            let n = ALPHABET.iter().position(|&a| a == c).expect("base64 digit");
            bits.extend((0..6).rev().map(|i| (n >> i) & 1));
        }
        bits.chunks_exact(8)
            .map(|byte| byte.iter().fold(0u8, |b, &bit| b << 1 | bit as u8))
            .collect()
    }

    #[test]
    fn base64_is_standard() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ];
        for (plain, coded) in cases {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
        assert_eq!(base64(b"\xff\xfe\xfd"), "//79");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unbase64(&base64(&all)), all);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_kept_exactly() {
        let u = usage(1, 1);
        let ok = Outcome::Exited(0);
        let input = vec![b"a\xffb".to_vec(), "\u{e9}".as_bytes().to_vec()];
        let mut r = record(&u, &ok, b"echo 'a\xffb' \xc3\xa9");
        r.input = &input;
        r.key = b"echo 'a\xffb' \xc3\xa9";
        let row = tsv_row(&r);
        assert!(row.ends_with(b"\techo 'a\xffb' \xc3\xa9\n"), "{row:?}");
        let line = json_line(&r);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["command"], "echo 'a\u{fffd}b' \u{e9}");
        let exact = |v: &serde_json::Value| unbase64(v.as_str().expect("a string"));
        assert_eq!(exact(&v["command_b64"]), r.command);
        assert_eq!(exact(&v["key_b64"]), r.key);
        assert_eq!(v["input"], serde_json::json!(["a\u{fffd}b", "\u{e9}"]));
        let inputs = v["input_b64"].as_array().expect("an array");
        assert_eq!(inputs.iter().map(exact).collect::<Vec<_>>(), input);
    }
}
