//! Reading a TSV job log back, for `--resume` and `--resume-failed`: which tasks already ran.
//!
//! Tasks are recognised by key, derived from the Command column by the caller, not by sequence
//! number: a log from a run whose input or command differs is refused rather than misread.
//! Commands and keys are bytes, so a command holding bytes that are not UTF-8 resumes too.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::Path;

use super::JobLogError;

/// The tasks recorded in a job log: by key, whether they succeeded (the last record for a key
/// wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoneSet {
    succeeded: HashMap<Vec<u8>, bool>,
}

impl DoneSet {
    /// True when no task is recorded.
    pub fn is_empty(&self) -> bool {
        self.succeeded.is_empty()
    }

    /// The number of distinct tasks recorded.
    pub fn len(&self) -> usize {
        self.succeeded.len()
    }

    /// True when the task with this key must not run again: `--resume` skips every recorded
    /// task, `--resume-failed` (`rerun_failed = true`) skips only those that succeeded.
    pub fn skip(&self, key: &[u8], rerun_failed: bool) -> bool {
        match self.succeeded.get(key) {
            None => false,
            Some(&ok) => ok || !rerun_failed,
        }
    }
}

/// Reads a TSV job log written by troop or by GNU parallel. A missing file is an empty set.
///
/// `key_of(command)` maps a row's Command column, exactly as written, to the task key, or `None`
/// when the current command template cannot produce that command ([`JobLogError::ForeignCommand`]).
/// A final line without a newline (left by a killed writer) is ignored, as are header lines and
/// empty lines. A row is a success when its Exitval and Signal are both 0.
pub fn read_done(
    path: &Path,
    key_of: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<DoneSet, JobLogError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(DoneSet::default()),
        Err(source) => {
            return Err(JobLogError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    // Everything after the last newline is a line a killed writer left unfinished.
    let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
        return Ok(DoneSet::default());
    };
    let mut done = DoneSet::default();
    for (index, raw) in bytes[..end].split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let text = raw.strip_suffix(b"\r").unwrap_or(raw);
        if text.is_empty() || is_header(text) {
            continue;
        }
        let parse_error = |reason: String| JobLogError::Parse {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let row = Row::parse(text).map_err(parse_error)?;
        let key = key_of(row.command).ok_or_else(|| JobLogError::ForeignCommand {
            path: path.to_path_buf(),
            line,
            command: String::from_utf8_lossy(row.command).into_owned(),
        })?;
        done.succeeded
            .insert(key, row.exitval == 0 && row.signal == 0);
    }
    Ok(done)
}

/// True for the header line `Seq\tHost\t...`.
fn is_header(text: &[u8]) -> bool {
    text.starts_with(b"Seq\tHost\tStarttime\t")
}

/// The columns of one row that resuming needs; the others are checked but not kept.
#[derive(Debug)]
struct Row<'a> {
    exitval: i64,
    signal: i64,
    command: &'a [u8],
}

impl<'a> Row<'a> {
    /// Splits a row into its nine columns. The Command column is last and may itself hold tabs
    /// (GNU parallel does not replace them).
    fn parse(text: &'a [u8]) -> Result<Row<'a>, String> {
        let cols: Vec<&[u8]> = text.splitn(9, |&b| b == b'\t').collect();
        if cols.len() != 9 {
            return Err(format!(
                "found {} tab-separated column{} in `{}`",
                cols.len(),
                if cols.len() == 1 { "" } else { "s" },
                String::from_utf8_lossy(text)
            ));
        }
        let number = |name: &str, value: &[u8]| -> Result<i64, String> {
            let value = String::from_utf8_lossy(value);
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("{name} `{value}` is not a whole number"))
        };
        let seconds = |name: &str, value: &[u8]| -> Result<(), String> {
            let value = String::from_utf8_lossy(value);
            let v = value.trim();
            let ok = !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
                && v.parse::<f64>().is_ok();
            if ok {
                Ok(())
            } else {
                Err(format!("{name} `{value}` is not a number of seconds"))
            }
        };
        number("Seq", cols[0])?;
        seconds("Starttime", cols[2])?;
        seconds("JobRuntime", cols[3])?;
        number("Send", cols[4])?;
        number("Receive", cols[5])?;
        Ok(Row {
            exitval: number("Exitval", cols[6])?,
            signal: number("Signal", cols[7])?,
            command: cols[8],
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Rows as GNU parallel 20221122 writes them: exit 0, exit 1, a task killed by signal 9
    /// (Exitval 0, Signal 9), and a command holding a tab, which GNU parallel keeps as is.
    const GNU_LOG: &str = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n\
        1\t:\t1795569877.712\t     0.000\t0\t0\t0\t0\texit 0\n\
        2\t:\t1795569877.722\t     0.002\t0\t0\t1\t0\texit 1\n\
        3\t:\t1795570691.379\t     0.001\t0\t0\t0\t9\texit 2\n\
        4\t:\t1795570691.567\t     0.001\t0\t0\t0\t0\texit\t3\n";

    fn exit_key(command: &[u8]) -> Option<Vec<u8>> {
        command
            .strip_prefix(b"exit")
            .map(|k| k.trim_ascii().to_vec())
    }

    fn log_file(text: impl AsRef<[u8]>) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_gnu_log_is_read() {
        let (_dir, path) = log_file(GNU_LOG);
        let done = read_done(&path, &exit_key).unwrap();
        assert_eq!(done.len(), 4);
        assert!(done.skip(b"0", true) && done.skip(b"0", false));
        assert!(!done.skip(b"1", true) && done.skip(b"1", false));
        assert!(!done.skip(b"2", true), "a signal is a failure");
        assert!(done.skip(b"3", true));
        assert!(!done.skip(b"4", false));
    }

    #[test]
    fn a_live_gnu_log_is_read() {
        let Some(log) = super::super::tests::gnu_joblog(&["exit {}", ":::", "0", "1", "2"]) else {
            return;
        };
        let (_dir, path) = log_file(&log);
        let done = read_done(&path, &exit_key).unwrap();
        assert_eq!(done.len(), 3);
        assert!(done.skip(b"0", true));
        assert!(!done.skip(b"1", true) && !done.skip(b"2", true));
        assert!(done.skip(b"2", false));
    }

    #[test]
    fn the_last_record_for_a_key_wins() {
        let log = format!(
            "{}1\t:\t1.000\t     0.000\t0\t0\t1\t0\texit a\n\
             1\t:\t2.000\t     0.000\t0\t0\t0\t0\texit a\n\
             2\t:\t2.000\t     0.000\t0\t0\t0\t0\texit b\n\
             2\t:\t3.000\t     0.000\t0\t0\t-1\t15\texit b\n",
            super::super::write::TSV_HEADER
        );
        let (_dir, path) = log_file(&log);
        let done = read_done(&path, &exit_key).unwrap();
        assert_eq!(done.len(), 2);
        assert!(done.skip(b"a", true));
        assert!(!done.skip(b"b", true));
    }

    #[test]
    fn a_partial_last_line_and_blank_lines_are_ignored() {
        let (_dir, path) = log_file(format!("{GNU_LOG}\n5\t:\t1795570691.5"));
        let done = read_done(&path, &exit_key).unwrap();
        assert_eq!(done.len(), 4);
        let (_dir, path) = log_file("Seq\tHost\tStart");
        assert!(read_done(&path, &exit_key).unwrap().is_empty());
        let (_dir, path) = log_file("");
        assert!(read_done(&path, &exit_key).unwrap().is_empty());
    }

    #[test]
    fn commands_that_are_not_utf8_are_keyed_by_their_bytes() {
        let mut log = GNU_LOG.as_bytes().to_vec();
        log.extend_from_slice(b"5\t:\t1.000\t     0.000\t0\t0\t0\t0\texit \xff\n");
        log.extend_from_slice(b"6\t:\t1.000\t     0.000\t0\t0\t1\t0\texit \xfe\n");
        let (_dir, path) = log_file(log);
        let done = read_done(&path, &exit_key).unwrap();
        assert_eq!(done.len(), 6);
        assert!(done.skip(b"\xff", true));
        assert!(!done.skip(b"\xfe", true) && done.skip(b"\xfe", false));
        assert!(!done.skip("\u{fffd}".as_bytes(), false));
    }

    #[test]
    fn a_missing_file_is_an_empty_set() {
        let dir = tempfile::tempdir().unwrap();
        let done = read_done(&dir.path().join("none.log"), &exit_key).unwrap();
        assert!(done.is_empty());
        assert_eq!(done.len(), 0);
        assert!(!done.skip(b"0", false));
    }

    #[test]
    fn an_unreadable_path_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_done(dir.path(), &exit_key).unwrap_err();
        assert!(matches!(err, JobLogError::Read { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("`{}`", dir.path().display()))
        );
    }

    #[test]
    fn a_foreign_command_names_the_line_and_command() {
        let (_dir, path) = log_file(GNU_LOG);
        let only_zero = |c: &[u8]| (c == b"exit 0").then(|| b"0".to_vec());
        let err = read_done(&path, &only_zero).unwrap_err();
        assert!(
            matches!(&err, JobLogError::ForeignCommand { line: 3, command, .. } if command == "exit 1"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "job log `{}` was written for another command: line 3 ran `exit 1`, which this \
                 command template cannot produce; use another --joblog file or the same command",
                path.display()
            )
        );
    }

    #[test]
    fn malformed_rows_name_the_file_and_line() {
        let cases = [
            (
                "1\t:\t1.000\t0.000\t0\t0\t0\n",
                2,
                "found 7 tab-separated columns",
            ),
            (
                "1\t:\t1.000\t0.000\t0\t0\tx\t0\texit 0\n",
                2,
                "Exitval `x` is not a whole number",
            ),
            (
                "1\t:\t1.000\t0.000\t0\t0\t0\t\texit 0\n",
                2,
                "Signal `` is not a whole number",
            ),
            (
                "one\t:\t1.000\t0.000\t0\t0\t0\t0\texit 0\n",
                2,
                "Seq `one` is not",
            ),
            (
                "1\t:\tnan\t0.000\t0\t0\t0\t0\texit 0\n",
                2,
                "Starttime `nan` is not a number",
            ),
            (
                "\n\ngarbage\n",
                4,
                "found 1 tab-separated column in `garbage`",
            ),
        ];
        for (rows, line, reason) in cases {
            let (_dir, path) = log_file(format!("{}{rows}", super::super::write::TSV_HEADER));
            let err = read_done(&path, &exit_key).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(&err, JobLogError::Parse { line: l, .. } if *l == line),
                "{message}"
            );
            let prefix = format!("job log `{}` line {line}: ", path.display());
            assert!(message.starts_with(&prefix), "{message}");
            assert!(message.contains(reason), "{message}");
        }
    }
}
