//! Task output kept in files instead of printed, as GNU parallel keeps it: `--files` (each
//! task's stdout in a file of its own, whose name is printed) and `--results` (a directory tree
//! named after each task's arguments, or one CSV, TSV or JSON table of every task).

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use troop_worker::protocol::{Outcome, Usage};

use crate::input::template::Text;
use crate::input::{Header, Record};
use crate::output::Piece;

/// Where task output is kept instead of printed.
#[derive(Debug, Clone)]
pub enum KeepSpec {
    /// `--files`: each task's stdout in a new file in this directory; its stderr is dropped.
    Files(PathBuf),
    /// `--results DIR`: `DIR/1/ARG1/2/ARG2/{seq,stdout,stderr}`; a DIR with replacement strings
    /// names the directory (ending in `/`) or the file (`FILE`, `FILE.err`, `FILE.seq`) itself.
    Tree { given: Vec<u8>, text: Text },
    /// `--results FILE.csv|.tsv|.json`: one row (or JSON line) per task, output included.
    Table { path: PathBuf, format: Table },
}

/// The format of a `--results` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Csv,
    Tsv,
    Json,
}

impl KeepSpec {
    /// What `--results VALUE` means: a table when it ends in `.csv`, `.tsv` or `.json` (in any
    /// case), else a directory tree. `text` is VALUE read as replacement strings.
    pub fn results(value: &[u8], text: Text) -> Result<KeepSpec, String> {
        if value.is_empty() {
            return Err(
                "--results needs a directory, or a file ending in .csv, .tsv or .json".into(),
            );
        }
        let lower = value.to_ascii_lowercase();
        let format = [
            (".csv", Table::Csv),
            (".tsv", Table::Tsv),
            (".json", Table::Json),
        ]
        .into_iter()
        .find(|(ext, _)| lower.ends_with(ext.as_bytes()));
        Ok(match format {
            Some((_, format)) => KeepSpec::Table {
                path: PathBuf::from(std::ffi::OsStr::from_bytes(value)),
                format,
            },
            None => KeepSpec::Tree {
                given: value.to_vec(),
                text,
            },
        })
    }
}

/// A finished task, as a kept record of it needs it.
#[derive(Debug)]
pub struct Finished<'a> {
    pub seq: u64,
    /// `{%}`, from 1.
    pub slot: u32,
    pub record: &'a Record,
    /// The command line as `--dry-run` shows it.
    pub command: &'a [u8],
    pub usage: &'a Usage,
    pub outcome: &'a Outcome,
}

/// Keeps task output as a [`KeepSpec`] says, for the length of a run.
#[derive(Debug)]
pub struct Keeper {
    spec: KeepSpec,
    /// The column names of `--header`, if given.
    header: Option<Header>,
    /// The open table, and whether its header row is written.
    table: Option<(File, bool)>,
    /// `--keep-order`: rows are written in task order; the next row to write, and the rows
    /// that wait for it.
    keep_order: bool,
    next: u64,
    waiting: std::collections::BTreeMap<u64, Vec<u8>>,
    /// The longest file name the results directory's file system takes: each value's directory
    /// is cut to it, as GNU parallel cuts it.
    name_max: usize,
}

impl Keeper {
    /// Starts keeping: a table file is created (emptied) now, so that a bad path fails first.
    pub fn open(
        spec: &KeepSpec,
        header: Option<Header>,
        keep_order: bool,
    ) -> Result<Keeper, String> {
        let table = match spec {
            KeepSpec::Table { path, .. } => Some((
                File::create(path)
                    .map_err(|e| format!("--results: cannot open `{}`: {e}", path.display()))?,
                false,
            )),
            _ => None,
        };
        Ok(Keeper {
            spec: spec.clone(),
            header,
            table,
            keep_order,
            next: 1,
            waiting: std::collections::BTreeMap::new(),
            name_max: match spec {
                KeepSpec::Tree { given, .. } => {
                    name_max(Path::new(std::ffi::OsStr::from_bytes(given)))
                }
                _ => 255,
            },
        })
    }

    /// Keeps a finished task's output; returns what is printed instead (for `--files`, the
    /// file's name as the task's stdout).
    pub fn keep(
        &mut self,
        task: &Finished<'_>,
        stdout: Piece,
        stderr: Piece,
    ) -> io::Result<(Piece, Piece)> {
        let nothing = || (Piece::Bytes(Vec::new()), Piece::Bytes(Vec::new()));
        match &self.spec {
            KeepSpec::Files(dir) => {
                let (path, mut file) = new_file(dir)?;
                copy_piece(stdout, &mut file).map_err(|e| context(&path, e))?;
                drop(stderr);
                let mut name = path.into_os_string().into_vec();
                name.push(b'\n');
                Ok((Piece::Bytes(name), Piece::Bytes(Vec::new())))
            }
            KeepSpec::Tree { given, text } => {
                let rendered = text.render(task.record, task.seq, task.slot);
                let (out, err, seq) = tree_paths(
                    given,
                    rendered,
                    task.record,
                    self.header.as_ref(),
                    self.name_max,
                )?;
                write_file(&seq, |f| f.write_all(task.seq.to_string().as_bytes()))?;
                write_file(&out, |f| copy_piece(stdout, f))?;
                write_file(&err, |f| copy_piece(stderr, f))?;
                Ok(nothing())
            }
            KeepSpec::Table { path, format } => {
                let (out, err) = (piece_bytes(stdout)?, piece_bytes(stderr)?);
                let (path, format) = (path.clone(), *format);
                let names = self
                    .header
                    .as_ref()
                    .and_then(|h| h.names().map(<[_]>::to_vec));
                let Some((file, header_written)) = &mut self.table else {
                    return Ok(nothing());
                };
                if !*header_written && format != Table::Json {
                    // The header row goes first, whichever task ends first.
                    let header = header_row(format, task.record.args.len(), names.as_deref());
                    file.write_all(&header).map_err(|e| context(&path, e))?;
                    *header_written = true;
                }
                let mut row = Vec::new();
                match format {
                    Table::Json => json_row(&mut row, task, &out, &err),
                    Table::Csv | Table::Tsv => csv_row(&mut row, format, task, &out, &err),
                }
                if !self.keep_order {
                    file.write_all(&row).map_err(|e| context(&path, e))?;
                    return Ok(nothing());
                }
                self.waiting.insert(task.seq, row);
                while let Some(row) = self.waiting.remove(&self.next) {
                    file.write_all(&row).map_err(|e| context(&path, e))?;
                    self.next += 1;
                }
                Ok(nothing())
            }
        }
    }
}

impl Drop for Keeper {
    /// Rows still waiting for an earlier task that never ended (a stopped run, or a task a
    /// resumed job log skips) are written in order at the end.
    fn drop(&mut self) {
        if let Some((file, _)) = &mut self.table {
            for row in std::mem::take(&mut self.waiting).into_values() {
                if file.write_all(&row).is_err() {
                    return;
                }
            }
        }
    }
}

fn context(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("cannot write to `{}`: {error}", path.display()),
    )
}

/// Creates `path` (emptied) and fills it with `fill`.
fn write_file(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let mut file = File::create(path).map_err(|e| context(path, e))?;
    fill(&mut file).map_err(|e| context(path, e))
}

/// A new file `parXXXXX.par` in `dir`, readable by its owner only, as GNU parallel names them.
fn new_file(dir: &Path) -> io::Result<(PathBuf, File)> {
    use std::os::unix::fs::OpenOptionsExt;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    loop {
        let mut random = [0u8; 5];
        // SAFETY: getrandom writes at most 5 bytes into `random`.
        if unsafe { libc::getrandom(random.as_mut_ptr().cast(), 5, 0) } != 5 {
            return Err(io::Error::last_os_error());
        }
        let name: String = random
            .iter()
            .map(|b| char::from(CHARS[usize::from(*b) % CHARS.len()]))
            .collect();
        let path = dir.join(format!("par{name}.par"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(context(&path, e)),
        }
    }
}

/// Where a task's stdout, stderr and seq go under `--results DIR`, its directories made.
fn tree_paths(
    given: &[u8],
    rendered: Vec<u8>,
    record: &Record,
    header: Option<&Header>,
    name_max: usize,
) -> io::Result<(PathBuf, PathBuf, PathBuf)> {
    let path = |bytes: Vec<u8>| PathBuf::from(std::ffi::OsString::from_vec(bytes));
    let mkdir = |dir: &Path| {
        if dir.as_os_str().is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot make dir `{}`: {e}", dir.display()),
            )
        })
    };
    let in_dir = |mut dir: Vec<u8>| {
        let at = |name: &str| {
            let mut p = dir.clone();
            p.extend_from_slice(name.as_bytes());
            path(p)
        };
        let paths = (at("stdout"), at("stderr"), at("seq"));
        dir.pop();
        (path(dir), paths)
    };
    if rendered == given {
        // A plain directory: the arguments name the directories below it.
        let mut dir = given.to_vec();
        dir.push(b'/');
        dir.extend(args_as_dirname(record, header, name_max));
        dir.push(b'/');
        let (dir, paths) = in_dir(dir);
        mkdir(&dir)?;
        return Ok(paths);
    }
    if rendered.ends_with(b"/") {
        let (dir, paths) = in_dir(rendered);
        mkdir(&dir)?;
        return Ok(paths);
    }
    if let Some(slash) = rendered.iter().rposition(|&b| b == b'/') {
        mkdir(&path(rendered[..slash].to_vec()))?;
    }
    let with = |suffix: &[u8]| path([rendered.as_slice(), suffix].concat());
    Ok((with(b""), with(b".err"), with(b".seq")))
}

/// The arguments as directories, as GNU parallel names them: for each, its column's name (its
/// number, or its `--header` name), then its value with `\`, TAB, NUL and `/` written as `\\`,
/// `\t`, `\0` and `\_`, cut to `name_max` bytes.
fn args_as_dirname(record: &Record, header: Option<&Header>, name_max: usize) -> Vec<u8> {
    let names = header.and_then(Header::names);
    let mut out = Vec::new();
    for (i, arg) in record.args.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        match names.and_then(|n| n.get(i)) {
            Some(name) => out.extend_from_slice(name),
            None => out.extend_from_slice((i + 1).to_string().as_bytes()),
        }
        out.push(b'/');
        let start = out.len();
        for &b in arg {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0 => out.extend_from_slice(b"\\0"),
                b'/' => out.extend_from_slice(b"\\_"),
                b => out.push(b),
            }
        }
        out.truncate(start + (out.len() - start).min(name_max));
    }
    out
}

/// The longest file name the file system of `dir` (or of its nearest existing ancestor) takes;
/// 255 when it cannot be asked.
fn name_max(dir: &Path) -> usize {
    let mut at = Some(dir);
    while let Some(p) = at {
        let probe = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        if probe.exists()
            && let Ok(c) = std::ffi::CString::new(probe.as_os_str().as_bytes())
        {
            // SAFETY: pathconf reads a NUL-terminated path and has no other effects.
            let n = unsafe { libc::pathconf(c.as_ptr(), libc::_PC_NAME_MAX) };
            return if n > 0 { n as usize } else { 255 };
        }
        at = p.parent();
    }
    255
}

/// Copies a piece of output to `sink`.
fn copy_piece(piece: Piece, sink: &mut dyn Write) -> io::Result<()> {
    match piece {
        Piece::Bytes(b) => sink.write_all(&b),
        Piece::Note(text) => sink.write_all(text.as_bytes()),
        Piece::File(mut f) | Piece::Held(mut f) => {
            use std::io::Seek;
            f.rewind()?;
            io::copy(&mut f, sink).map(drop)
        }
    }
}

/// A piece of output as bytes in memory.
fn piece_bytes(piece: Piece) -> io::Result<Vec<u8>> {
    match piece {
        Piece::Bytes(b) => Ok(b),
        other => {
            let mut bytes = Vec::new();
            copy_piece(other, &mut bytes)?;
            Ok(bytes)
        }
    }
}

/// Seconds since the epoch with milliseconds, as GNU parallel's tables show a start.
fn start_seconds(usage: &Usage) -> String {
    let ms = usage.start_unix_us.saturating_add(500) / 1000;
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Seconds with milliseconds, as GNU parallel's `%0.3f` shows a run time.
fn runtime_seconds(usage: &Usage) -> String {
    let ms = usage.wall_us / 1000;
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The header row of a CSV or TSV table: GNU parallel's columns, with a `V1`… column (or the
/// `--header` name) per argument.
fn header_row(format: Table, args: usize, names: Option<&[Vec<u8>]>) -> Vec<u8> {
    let mut fields: Vec<Vec<u8>> = [
        "Seq",
        "Host",
        "Starttime",
        "JobRuntime",
        "Send",
        "Receive",
        "Exitval",
        "Signal",
        "Command",
    ]
    .iter()
    .map(|f| f.as_bytes().to_vec())
    .collect();
    for i in 0..args {
        fields.push(match names.and_then(|n| n.get(i)) {
            Some(name) => name.clone(),
            None => format!("V{}", i + 1).into_bytes(),
        });
    }
    fields.push(b"Stdout".to_vec());
    fields.push(b"Stderr".to_vec());
    let mut row = Vec::new();
    push_fields(&mut row, format, fields.iter().map(Vec::as_slice));
    row
}

/// Fields joined by the table's separator, each quoted as GNU parallel quotes a CSV field: in
/// double quotes (doubled inside) when it holds a quote, a blank, the separator or a NUL.
fn push_fields<'a>(row: &mut Vec<u8>, format: Table, fields: impl Iterator<Item = &'a [u8]>) {
    let sep = if format == Table::Tsv { b'\t' } else { b',' };
    for (i, field) in fields.enumerate() {
        if i > 0 {
            row.push(sep);
        }
        let quote = field
            .iter()
            .any(|&b| b == b'"' || b == sep || b == 0 || b" \t\n\r\x0b\x0c".contains(&b));
        if !quote {
            row.extend_from_slice(field);
            continue;
        }
        row.push(b'"');
        for &b in field {
            if b == b'"' {
                row.push(b'"');
            }
            row.push(b);
        }
        row.push(b'"');
    }
    row.push(b'\n');
}

fn csv_row(row: &mut Vec<u8>, format: Table, task: &Finished<'_>, out: &[u8], err: &[u8]) {
    let numbers = [
        task.seq.to_string(),
        ":".to_string(),
        start_seconds(task.usage),
        runtime_seconds(task.usage),
        "0".to_string(),
        out.len().to_string(),
        task.outcome.exit_value().to_string(),
        task.outcome.signal().to_string(),
    ];
    let fields = numbers
        .iter()
        .map(|s| s.as_bytes())
        .chain([task.command])
        .chain(task.record.args.iter().map(Vec::as_slice))
        .chain([out, err]);
    push_fields(row, format, fields);
}

/// A JSON line as GNU parallel 20221122 writes one, with valid JSON for any bytes: text that is
/// not UTF-8 has each invalid byte replaced by U+FFFD.
fn json_row(row: &mut Vec<u8>, task: &Finished<'_>, out: &[u8], err: &[u8]) {
    let values = task
        .record
        .args
        .iter()
        .map(|v| format!("\"{}\"", json_text(v)))
        .collect::<Vec<_>>()
        .join(",");
    let line = format!(
        "{{ \"Seq\": {}, \"Host\": \":\", \"Starttime\": {}, \"JobRuntime\": {}, \"Send\": 0, \
         \"Receive\": {}, \"Exitval\": {}, \"Signal\": {}, \"Command\": \"{}\", \"V\": [ {} ], \
         \"Stdout\": \"{}\", \"Stderr\": \"{}\" }}\n",
        task.seq,
        start_seconds(task.usage),
        runtime_seconds(task.usage),
        out.len(),
        task.outcome.exit_value(),
        task.outcome.signal(),
        json_text(task.command),
        values,
        json_text(out),
        json_text(err),
    );
    row.extend_from_slice(line.as_bytes());
}

/// Bytes as the inside of a JSON string, escaped as GNU parallel escapes them: `\\`, `\"`, and
/// `\u00XX` for control characters.
fn json_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if u32::from(c) < 32 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_name_directories_with_gnu_parallels_escapes() {
        let record = Record {
            args: vec![b"a/b".to_vec(), b"x\\y\tz\0".to_vec()],
            ends: Vec::new(),
        };
        assert_eq!(
            args_as_dirname(&record, None, 255),
            b"1/a\\_b/2/x\\\\y\\tz\\0"
        );
        assert_eq!(args_as_dirname(&record, None, 3), b"1/a\\_/2/x\\\\");
    }

    #[test]
    fn csv_fields_are_quoted_when_they_hold_blanks_quotes_or_separators() {
        let mut row = Vec::new();
        let fields: [&[u8]; 5] = [b"a", b"b c", b"d,e", b"f\"g", b"h\ti"];
        push_fields(&mut row, Table::Csv, fields.into_iter());
        assert_eq!(row, b"a,\"b c\",\"d,e\",\"f\"\"g\",\"h\ti\"\n");
        let mut row = Vec::new();
        push_fields(&mut row, Table::Tsv, [&b"d,e"[..], b"h\ti"].into_iter());
        assert_eq!(row, b"d,e\t\"h\ti\"\n");
    }

    #[test]
    fn json_text_escapes_as_gnu_parallel_and_stays_valid() {
        assert_eq!(json_text(b"a\"b\\c\nd"), "a\\\"b\\\\c\\u000ad");
        assert_eq!(json_text(b"\xff"), "\u{fffd}");
    }

    #[test]
    fn results_value_chooses_a_table_by_extension() {
        let text = |v: &[u8]| Text::parse(v, &Default::default());
        assert!(matches!(
            KeepSpec::results(b"r.CSV", text(b"r.CSV")),
            Ok(KeepSpec::Table {
                format: Table::Csv,
                ..
            })
        ));
        assert!(matches!(
            KeepSpec::results(b"out", text(b"out")),
            Ok(KeepSpec::Tree { .. })
        ));
        assert!(KeepSpec::results(b"", text(b"")).is_err());
    }
}
