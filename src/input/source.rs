//! Input sources (`:::` arguments, `::::`/`-a` files, standard input) and the records they give:
//! line reading, `--colsep` splitting, the product of several sources and `:::+` links. The
//! options of [`Framing`] (`-d`, `-0`, `-E`, `-r`, `--trim`, `--csv`, `--header`) shape the
//! values, and a [`Grouping`] puts several records in one command (`-n`, `-X`, …).
//!
//! Input is bytes: every value reaches the command unchanged, whether or not it is UTF-8. Lines
//! end at `\n`; a last line without one still counts and a `\r` before it is kept, as in GNU
//! parallel. Like GNU parallel 20221122:
//! - several sources give their product, the first source varying slowest;
//! - a source linked with `:::+`/`::::+` is zipped with the one before it, and a linked group
//!   stops at its shortest member (the extra values are ignored, nothing wraps around);
//! - an empty source among non-empty ones counts as one empty value, and when every source is
//!   empty there are no records.
//!
//! Deliberate difference: `:::+` or `::::+` before any other source is an error (GNU treats it
//! as `:::`).

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use regex::bytes::Regex;

use super::Record;
use super::framing::{Framing, Splitter, all_blank, csv_open_quote};
use super::group::{Grouper, Grouping};

/// One input source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `::: a b c`, each value as its bytes.
    Args(Vec<Vec<u8>>),
    /// `:::: FILE` or `-a FILE`; a path of "-" means standard input.
    File(PathBuf),
}

/// Where the arguments come from.
#[derive(Debug, Clone, Default)]
pub struct InputSpec {
    /// Sources in command-line order; the bool is true when the source was given with `:::+` or
    /// `::::+`, i.e. linked (zipped) to the source before it.
    pub sources: Vec<(SourceSpec, bool)>,
    /// --colsep REGEX, matched against the bytes of each value.
    pub colsep: Option<Regex>,
    /// Delimiters, end of input, skipping, trimming, CSV and the header line.
    pub framing: Framing,
    /// Several records per command (`-n`, `-X`, …); `None`: one each.
    pub grouping: Option<Grouping>,
    /// `--link`: every source is linked to the one before it, and shorter sources wrap around
    /// to the length of the longest (where `:::+` stops at the shortest).
    pub link: bool,
}

impl InputSpec {
    fn splitter(&self) -> Splitter {
        Splitter {
            colsep: self.colsep.clone(),
            csv: self.framing.csv,
            trim: self.framing.trim,
        }
    }
}

/// Why input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot open input file `{}`: {}", .path.display(), io_message(.error))]
    Open { path: PathBuf, error: io::Error },
    /// `input` is "standard input" or "input file `PATH`".
    #[error("cannot read {input}: {}", io_message(.error))]
    Read { input: String, error: io::Error },
    /// `op` is `:::+` or `::::+`.
    #[error("{op} must follow another input source")]
    LinkFirst { op: &'static str },
    /// One input record makes a command line longer than the limit.
    #[error("command line too long ({length} bytes, the limit is {limit}) at input: {input}")]
    TooLong {
        input: String,
        length: usize,
        limit: usize,
    },
}

/// An I/O error's message without the " (os error N)" suffix.
fn io_message(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// Opens the sources. With no sources at all, records are the lines of `stdin`.
/// `stdin` is whatever the caller passes (the real stdin, or a test buffer). Sources other than
/// the first are read into memory here; the first is read as records are taken when it is a
/// single file or standard input.
pub fn open(spec: &InputSpec, stdin: Box<dyn BufRead + Send>) -> Result<Records, InputError> {
    if let Some((source, true)) = spec.sources.first() {
        let op = if matches!(source, SourceSpec::Args(_)) {
            ":::+"
        } else {
            "::::+"
        };
        return Err(InputError::LinkFirst { op });
    }
    let mut stdin = Some(stdin);
    let framing = &spec.framing;
    let splitter = spec.splitter();
    let mut names = Vec::new();
    let mut groups: Vec<Vec<Source>> = Vec::new();
    let stdin_source = [(SourceSpec::File(PathBuf::from("-")), false)];
    let sources = match spec.sources.as_slice() {
        [] => &stdin_source[..],
        sources => sources,
    };
    for (i, (source, linked)) in sources.iter().enumerate() {
        let linked = *linked || (spec.link && i > 0);
        let mut source = match source {
            SourceSpec::Args(values) => {
                let mut values = if framing.delimiter.is_none() {
                    // As in GNU parallel, a `:::` value that holds newlines is several values.
                    values
                        .iter()
                        .flat_map(|v| v.split(|&b| b == b'\n').map(<[u8]>::to_vec))
                        .collect()
                } else {
                    values.clone()
                };
                if let Some(end) = framing
                    .eof
                    .as_ref()
                    .and_then(|eof| values.iter().position(|v| v == eof))
                {
                    values.truncate(end);
                }
                Source::Values(values)
            }
            SourceSpec::File(path) => Source::Lines(Lines::open(path, &mut stdin, framing)?),
        };
        if framing.header.is_some() {
            let first = match &mut source {
                Source::Values(values) if values.is_empty() => None,
                Source::Values(values) => Some(values.remove(0)),
                Source::Lines(lines) => lines.next_line()?,
            };
            if let Some(first) = first {
                splitter.split_into(&mut names, first);
            }
        }
        match groups.last_mut() {
            Some(group) if linked => group.push(source),
            _ => groups.push(vec![source]),
        }
    }
    if let Some(header) = &framing.header {
        header.set(names);
    }
    let mut groups = groups.into_iter();
    let first = match groups.next().map(<[Source; 1]>::try_from) {
        None => Err(Vec::new()),
        Some(Ok([Source::Lines(lines)])) => Ok(lines),
        Some(Ok(single)) => Err(load(Vec::from(single))?),
        Some(Err(group)) => Err(load(group)?),
    };
    let rest = groups.map(load).collect::<Result<Vec<_>, _>>()?;
    let mut records = Records::new(first, rest, splitter, framing.skip_blank, spec.link);
    records.grouper = spec.grouping.clone().map(|g| Box::new(Grouper::new(g)));
    Ok(records)
}

fn load(group: Vec<Source>) -> Result<Vec<Vec<Vec<u8>>>, InputError> {
    group.into_iter().map(Source::load).collect()
}

/// A source before it is read.
enum Source {
    Values(Vec<Vec<u8>>),
    Lines(Lines),
}

impl Source {
    fn load(self) -> Result<Vec<Vec<u8>>, InputError> {
        match self {
            Source::Values(values) => Ok(values),
            Source::Lines(mut lines) => {
                let mut values = Vec::new();
                while let Some(line) = lines.next_line()? {
                    values.push(line);
                }
                Ok(values)
            }
        }
    }
}

/// Zips a linked group into rows (the arguments each row adds to a record), stopping at the
/// shortest member, or with `wrap` (`--link`) going on to the longest, shorter members starting
/// over; an empty member counts as one empty value.
fn zip(mut group: Vec<Vec<Vec<u8>>>, splitter: &Splitter, wrap: bool) -> Vec<Vec<Vec<u8>>> {
    for values in &mut group {
        if values.is_empty() {
            values.push(Vec::new());
        }
    }
    let lens = group.iter().map(Vec::len);
    let len = if wrap { lens.max() } else { lens.min() }.unwrap_or(0);
    let mut columns: Vec<_> = group
        .into_iter()
        .map(|values| values.into_iter().cycle().take(len))
        .collect();
    (0..len)
        .map(|_| {
            let mut row = Vec::with_capacity(columns.len());
            for value in columns.iter_mut().filter_map(Iterator::next) {
                splitter.split_into(&mut row, value);
            }
            row
        })
        .collect()
}

/// A line-based input read one value at a time into a reused buffer. Values end at a newline,
/// or at the `-d` delimiter; a CSV row goes on past newlines inside quotes.
struct Lines {
    reader: Box<dyn BufRead + Send>,
    /// `None` for standard input.
    path: Option<PathBuf>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
    delimiter: Vec<u8>,
    eof: Option<Vec<u8>>,
    csv: bool,
    continue_lines: bool,
}

impl Lines {
    fn new(reader: Box<dyn BufRead + Send>, path: Option<PathBuf>, framing: &Framing) -> Lines {
        Lines {
            reader,
            path,
            line: 0,
            buf: Vec::with_capacity(256),
            done: false,
            delimiter: framing.delimiter.clone().unwrap_or_else(|| b"\n".to_vec()),
            eof: framing.eof.clone(),
            csv: framing.csv.is_some(),
            continue_lines: framing.continue_lines,
        }
    }

    /// Opens a file, or takes `stdin` for "-" (a second "-" finds it already read).
    fn open(
        path: &Path,
        stdin: &mut Option<Box<dyn BufRead + Send>>,
        framing: &Framing,
    ) -> Result<Lines, InputError> {
        if path.as_os_str() == "-" {
            let reader = stdin.take().unwrap_or_else(|| Box::new(io::empty()));
            return Ok(Lines::new(reader, None, framing));
        }
        let file = File::open(path).map_err(|error| InputError::Open {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(Lines::new(
            Box::new(BufReader::with_capacity(64 * 1024, file)),
            Some(path.to_path_buf()),
            framing,
        ))
    }

    fn describe(&self) -> String {
        match &self.path {
            None => "standard input".to_string(),
            Some(path) => format!("input file `{}`", path.display()),
        }
    }

    fn next_line(&mut self) -> Result<Option<Vec<u8>>, InputError> {
        if !self.continue_lines {
            return self.next_item();
        }
        // `-L`: a line that ends in a blank goes on with the next one.
        let mut joined: Option<Vec<u8>> = None;
        loop {
            let Some(line) = self.next_item()? else {
                return Ok(joined);
            };
            let line = match joined.take() {
                Some(mut head) => {
                    head.extend_from_slice(&line);
                    head
                }
                None => line,
            };
            if line.last().is_some_and(u8::is_ascii_whitespace) {
                joined = Some(line);
                continue;
            }
            return Ok(Some(line));
        }
    }

    /// The next value as read, up to the delimiter.
    fn next_item(&mut self) -> Result<Option<Vec<u8>>, InputError> {
        if self.done {
            return Ok(None);
        }
        self.buf.clear();
        let last = *self.delimiter.last().unwrap_or(&b'\n');
        let mut ended = false;
        loop {
            match self.reader.read_until(last, &mut self.buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) => {
                    self.done = true;
                    return Err(InputError::Read {
                        input: self.describe(),
                        error,
                    });
                }
            }
            if self.buf.ends_with(&self.delimiter) {
                if self.csv && csv_open_quote(&self.buf) {
                    continue;
                }
                ended = true;
                break;
            }
            if self.buf.last() != Some(&last) {
                break;
            }
        }
        if self.buf.is_empty() {
            self.done = true;
            return Ok(None);
        }
        self.line += 1;
        if ended {
            self.buf.truncate(self.buf.len() - self.delimiter.len());
        }
        if self.eof.as_ref() == Some(&self.buf) {
            self.done = true;
            return Ok(None);
        }
        Ok(Some(self.buf.clone()))
    }
}

/// Where the rows of the first group (the outermost loop) come from.
enum First {
    Lines(Lines),
    Rows(std::vec::IntoIter<Vec<Vec<u8>>>),
}

/// Iterator over records; lazily streams when there is a single line-based source (stdin or one
/// file), so a long input starts before it ends and uses little memory.
///
/// Product of several sources: the first source is the outermost loop, the last varies fastest
/// (`::: a b ::: 1 2` gives `a 1`, `a 2`, `b 1`, `b 2`). Only the first source is streamed; the
/// others are held in memory. Linked groups (`:::+`) are zipped and stop at their shortest
/// member, as in GNU parallel 20221122. After an error the iterator ends.
pub struct Records {
    first: First,
    /// The groups after the first, each as its rows.
    rest: Vec<Vec<Vec<Vec<u8>>>>,
    /// Whether any source after the first has values (an empty first source then counts as one
    /// empty value).
    rest_nonempty: bool,
    splitter: Splitter,
    /// `-r`: skip records whose values are all blank.
    skip_blank: bool,
    /// Several records per command.
    grouper: Option<Box<Grouper>>,
    /// The current row of the first group and the row index in each later group.
    current: Option<Vec<Vec<u8>>>,
    odometer: Vec<usize>,
    started: bool,
    done: bool,
}

impl Records {
    /// `first` is the outermost group, streamed (`Ok`) or read (`Err`, the values of each of its
    /// sources); `rest` holds the values of each source of each later group.
    fn new(
        first: Result<Lines, Vec<Vec<Vec<u8>>>>,
        rest: Vec<Vec<Vec<Vec<u8>>>>,
        splitter: Splitter,
        skip_blank: bool,
        wrap: bool,
    ) -> Records {
        let rest_nonempty = rest.iter().flatten().any(|values| !values.is_empty());
        let rest: Vec<_> = rest.into_iter().map(|g| zip(g, &splitter, wrap)).collect();
        let mut done = false;
        let first = match first {
            Ok(lines) => First::Lines(lines),
            Err(values) => {
                done = !rest_nonempty && values.iter().all(Vec::is_empty);
                First::Rows(zip(values, &splitter, wrap).into_iter())
            }
        };
        let odometer = vec![0; rest.len()];
        Records {
            first,
            rest,
            rest_nonempty,
            splitter,
            skip_blank,
            grouper: None,
            current: None,
            odometer,
            started: false,
            done,
        }
    }

    /// The next row of the first group.
    fn next_first(&mut self) -> Result<Option<Vec<Vec<u8>>>, InputError> {
        let lines = match &mut self.first {
            First::Rows(rows) => return Ok(rows.next()),
            First::Lines(lines) => lines,
        };
        let line = lines.next_line()?;
        let started = std::mem::replace(&mut self.started, true);
        let line = match line {
            None if !started && self.rest_nonempty => Vec::new(),
            None => return Ok(None),
            Some(line) => line,
        };
        let mut row = Vec::with_capacity(1);
        self.splitter.split_into(&mut row, line);
        Ok(Some(row))
    }

    /// The next record of the product, blank ones included.
    fn next_record(&mut self) -> Option<Result<Record, InputError>> {
        if self.done {
            return None;
        }
        let current = match self.current.take() {
            Some(row) => row,
            None => match self.next_first() {
                Ok(Some(row)) if self.rest.is_empty() => {
                    return Some(Ok(Record {
                        args: row,
                        ..Record::default()
                    }));
                }
                Ok(Some(row)) => row,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            },
        };
        let width = current.len()
            + self
                .rest
                .iter()
                .flat_map(|g| g.first().map(Vec::len))
                .sum::<usize>();
        let mut args = Vec::with_capacity(width);
        args.extend(current.iter().cloned());
        for (group, &index) in self.rest.iter().zip(&self.odometer) {
            args.extend(group[index].iter().cloned());
        }
        // Advance the odometer, last group fastest; the first group moves on when it wraps.
        for k in (0..self.odometer.len()).rev() {
            self.odometer[k] += 1;
            if self.odometer[k] < self.rest[k].len() {
                self.current = Some(current);
                break;
            }
            self.odometer[k] = 0;
        }
        Some(Ok(Record {
            args,
            ..Record::default()
        }))
    }
}

impl Iterator for Records {
    type Item = Result<Record, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Some(mut grouper) = self.grouper.take() else {
            return self.next_kept();
        };
        let next = grouper.next(&mut || self.next_kept());
        self.grouper = Some(grouper);
        next
    }
}

impl Records {
    /// The next record `-r` keeps.
    fn next_kept(&mut self) -> Option<Result<Record, InputError>> {
        loop {
            match self.next_record()? {
                Ok(record) if self.skip_blank && all_blank(&record.args) => continue,
                other => return Some(other),
            }
        }
    }
}

impl std::iter::FusedIterator for Records {}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = match &self.first {
            First::Lines(lines) => {
                format!("lines of {} (at line {})", lines.describe(), lines.line)
            }
            First::Rows(rows) => format!("{} rows left", rows.len()),
        };
        f.debug_struct("Records")
            .field("first", &first)
            .field("rest_groups", &self.rest.len())
            .field("colsep", &self.splitter.colsep)
            .field("done", &self.done)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{test_join, test_list as list};
    use std::io::{Cursor, Read};
    use std::process::Command;

    fn args(items: &str) -> (SourceSpec, bool) {
        (SourceSpec::Args(list(items)), false)
    }

    fn linked(items: &str) -> (SourceSpec, bool) {
        (SourceSpec::Args(list(items)), true)
    }

    fn file(path: &Path) -> (SourceSpec, bool) {
        (SourceSpec::File(path.to_path_buf()), false)
    }

    fn stdin_file() -> (SourceSpec, bool) {
        file(Path::new("-"))
    }

    fn stdin(bytes: &[u8]) -> Box<dyn BufRead + Send> {
        Box::new(Cursor::new(bytes.to_vec()))
    }

    fn spec(sources: Vec<(SourceSpec, bool)>, colsep: Option<&str>) -> InputSpec {
        let colsep = colsep.map(|re| Regex::new(re).expect("valid regex"));
        InputSpec {
            sources,
            colsep,
            ..InputSpec::default()
        }
    }

    /// The records as text: records separated by `/`, arguments by `|`.
    fn collect(spec: &InputSpec, input: &[u8]) -> String {
        let records = open(spec, stdin(input)).expect("open");
        let records: Vec<_> = records
            .map(|r| test_join(&r.expect("record").args, "|"))
            .collect();
        records.join("/")
    }

    #[test]
    fn stdin_lines() {
        let none = spec(Vec::new(), None);
        assert_eq!(collect(&none, b"a\nb\n"), "a/b");
        assert_eq!(collect(&none, b"a\nb"), "a/b");
        assert_eq!(collect(&none, b""), "");
        assert_eq!(open(&none, stdin(b"")).expect("open").count(), 0);
        assert_eq!(open(&none, stdin(b"\n")).expect("open").count(), 1);
        assert_eq!(collect(&none, b"a\n\nb\n"), "a//b");
        assert_eq!(collect(&none, b"a\r\n b \n"), "a\r/ b ");
        assert_eq!(collect(&spec(vec![stdin_file()], None), b"x\ny"), "x/y");
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_unchanged() {
        let none = spec(Vec::new(), None);
        let records: Vec<_> = open(&none, stdin(b"a\nb\xff\n\xff\xfe\nc\n"))
            .expect("open")
            .map(|r| r.expect("a record").args)
            .collect();
        let want: Vec<Vec<Vec<u8>>> = [&b"a"[..], b"b\xff", b"\xff\xfe", b"c"]
            .iter()
            .map(|v| vec![v.to_vec()])
            .collect();
        assert_eq!(records, want);

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("in.txt");
        std::fs::write(&path, b"ok\n\xc3(,\xff\n").expect("write");
        let values = vec![b"x\x80".to_vec()];
        let loaded = spec(
            vec![(SourceSpec::Args(values), false), file(&path)],
            Some(","),
        );
        let records: Vec<_> = open(&loaded, stdin(b""))
            .expect("open")
            .map(|r| r.expect("a record").args)
            .collect();
        let row = |a: &[&[u8]]| a.iter().map(|v| v.to_vec()).collect::<Vec<_>>();
        assert_eq!(
            records,
            [row(&[b"x\x80", b"ok"]), row(&[b"x\x80", b"\xc3(", b"\xff"])]
        );
    }

    #[test]
    fn open_and_read_errors() {
        let missing = spec(vec![file(Path::new("no-such-dir/x.txt"))], None);
        let err = open(&missing, stdin(b"")).expect_err("missing file");
        let want = "cannot open input file `no-such-dir/x.txt`: No such file or directory";
        assert_eq!(err.to_string(), want);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut records = open(&spec(vec![file(dir.path())], None), stdin(b"")).expect("open");
        let err = records.next().expect("error").expect_err("a directory");
        let want = format!(
            "cannot read input file `{}`: Is a directory",
            dir.path().display()
        );
        assert_eq!(err.to_string(), want);
        assert!(records.next().is_none());
    }

    #[test]
    fn files_and_args() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "1\n2\n").expect("write");
        let s = spec(vec![args("a|b"), file(&path)], None);
        assert_eq!(collect(&s, b""), "a|1/a|2/b|1/b|2");
        assert_eq!(
            collect(&spec(vec![file(&path), stdin_file()], None), b"x\n"),
            "1|x/2|x"
        );
        // Standard input goes to the first "-"; a second one finds it read.
        let s = spec(vec![stdin_file(), stdin_file()], None);
        assert_eq!(collect(&s, b"x\ny\n"), "x|/y|");
    }

    #[test]
    fn product_first_source_slowest() {
        assert_eq!(
            collect(&spec(vec![args("a|b"), args("1|2")], None), b""),
            "a|1/a|2/b|1/b|2"
        );
        let s = spec(vec![args("a|b"), args("1"), args("x|y")], None);
        assert_eq!(collect(&s, b""), "a|1|x/a|1|y/b|1|x/b|1|y");
        let s = spec(vec![stdin_file(), args("1|2")], None);
        assert_eq!(collect(&s, b"a\nb"), "a|1/a|2/b|1/b|2");
    }

    #[test]
    fn links_stop_at_the_shortest() {
        let s = spec(vec![args("a|b|c"), linked("1|2")], None);
        assert_eq!(collect(&s, b""), "a|1/b|2");
        let s = spec(vec![args("a|b"), linked("1|2|3")], None);
        assert_eq!(collect(&s, b""), "a|1/b|2");
        let s = spec(vec![args("a|b"), args("x|y"), linked("1|2|3")], None);
        assert_eq!(collect(&s, b""), "a|x|1/a|y|2/b|x|1/b|y|2");
        let s = spec(vec![args("a|b|c"), linked("1|2"), linked("X|Y|Z")], None);
        assert_eq!(collect(&s, b""), "a|1|X/b|2|Y");
        let s = spec(vec![stdin_file(), linked("1|2"), args("x")], None);
        assert_eq!(collect(&s, b"a\nb\nc\n"), "a|1|x/b|2|x");
    }

    #[test]
    fn link_without_a_source_before_it() {
        let err = open(&spec(vec![linked("a")], None), stdin(b"")).expect_err("linked first");
        assert_eq!(err.to_string(), ":::+ must follow another input source");
        let first = (SourceSpec::File("f".into()), true);
        let err = open(&spec(vec![first], None), stdin(b"")).expect_err("linked first");
        assert_eq!(err.to_string(), "::::+ must follow another input source");
    }

    #[test]
    fn empty_sources() {
        let count = |s: InputSpec, input: &[u8]| open(&s, stdin(input)).expect("open").count();
        assert_eq!(count(spec(vec![args("")], None), b""), 0);
        assert_eq!(count(spec(vec![args(""), args("")], None), b""), 0);
        assert_eq!(count(spec(vec![stdin_file(), args("")], None), b""), 0);
        assert_eq!(
            collect(&spec(vec![args("a|b"), args("")], None), b""),
            "a|/b|"
        );
        assert_eq!(collect(&spec(vec![args(""), args("a")], None), b""), "|a");
        assert_eq!(
            collect(&spec(vec![args("a|b"), linked("")], None), b""),
            "a|"
        );
        assert_eq!(
            collect(&spec(vec![stdin_file(), args("a")], None), b""),
            "|a"
        );
        assert_eq!(
            collect(&spec(vec![stdin_file(), args("")], None), b"x\n"),
            "x|"
        );
    }

    #[test]
    fn colsep_splits_every_source() {
        let s = spec(Vec::new(), Some(","));
        assert_eq!(collect(&s, b"a,b,\n,,\n\nc\n"), "a|b|/||//c");
        let s = spec(vec![args("a,b|c"), args("d,e")], Some(","));
        assert_eq!(collect(&s, b""), "a|b|d|e/c|d|e");
        let s = spec(vec![stdin_file(), args("1\t2")], Some(r"\t+"));
        assert_eq!(collect(&s, b"a\t\tb\n"), "a|b|1|2");
    }

    /// Endless "y\n" lines.
    struct Endless;

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let len = buf.len() - buf.len() % 2;
            for pair in buf[..len].chunks_mut(2) {
                pair.copy_from_slice(b"y\n");
            }
            Ok(len)
        }
    }

    #[test]
    fn first_source_streams() {
        let endless = || -> Box<dyn BufRead + Send> { Box::new(BufReader::new(Endless)) };
        assert_eq!(
            open(&spec(Vec::new(), None), endless())
                .expect("open")
                .take(3)
                .count(),
            3
        );
        let s = spec(vec![stdin_file(), args("1|2")], Some(","));
        let records = open(&s, endless()).expect("open").take(3);
        let got: Vec<_> = records
            .map(|r| test_join(&r.expect("record").args, "|"))
            .collect();
        assert_eq!(got.join("/"), "y|1/y|2/y|1");
    }

    #[test]
    fn records_debug_names_the_input() {
        let records = open(&spec(Vec::new(), None), stdin(b"a\n")).expect("open");
        assert!(format!("{records:?}").contains("standard input"));
    }

    #[test]
    fn same_records_as_gnu_parallel() {
        if !crate::test_support::require_gnu_parallel("the comparison with GNU parallel") {
            return;
        }
        let cases = "::: a b ::: 1 2\n::: a b c :::+ 1 2 ::: x y\n::: a b ::: x y :::+ 1 2 3\n\
            ::: a b ::: q\n::: a :::\n::: ::: b";
        for case in cases.lines() {
            let words: Vec<&str> = case.split(' ').collect();
            let mut gnu = Command::new("parallel");
            gnu.args(["--will-cite", "-k", "-j1", "printf", "%s/"])
                .args(&words);
            let want = gnu.output().expect("run parallel").stdout;
            let mut sources: Vec<(SourceSpec, bool)> = Vec::new();
            for word in words {
                match (word, sources.last_mut()) {
                    (":::" | ":::+", _) => {
                        sources.push((SourceSpec::Args(Vec::new()), word == ":::+"))
                    }
                    (value, Some((SourceSpec::Args(values), _))) => values.push(value.into()),
                    _ => panic!("cases start with :::"),
                }
            }
            let ours = collect(&spec(sources, None), b"").replace(['|', '/'], "/");
            let ours = if ours.is_empty() { ours } else { ours + "/" };
            assert_eq!(ours, String::from_utf8_lossy(&want), "{case:?}");
        }
    }
}

#[cfg(test)]
mod framing_tests {
    use super::*;
    use crate::input::framing::{Header, Trim};
    use crate::input::test_join;
    use std::io::Cursor;

    fn records(spec: &InputSpec, input: &[u8]) -> String {
        let stdin: Box<dyn BufRead + Send> = Box::new(Cursor::new(input.to_vec()));
        open(spec, stdin)
            .expect("open")
            .map(|r| test_join(&r.expect("record").args, "|"))
            .collect::<Vec<_>>()
            .join("/")
    }

    fn framed(framing: Framing) -> InputSpec {
        InputSpec {
            framing,
            ..InputSpec::default()
        }
    }

    #[test]
    fn a_delimiter_of_several_bytes_ends_values() {
        let spec = framed(Framing {
            delimiter: Some(b"::".to_vec()),
            ..Framing::default()
        });
        assert_eq!(records(&spec, b"a::b:c::::d"), "a/b:c//d");
        assert_eq!(records(&spec, b"a::"), "a");
        assert_eq!(records(&spec, b"a\nb::"), "a\nb");
    }

    #[test]
    fn eof_string_ends_lines_and_arguments() {
        let framing = Framing {
            eof: Some(b"END".to_vec()),
            ..Framing::default()
        };
        assert_eq!(records(&framed(framing.clone()), b"a\nEND\nb\n"), "a");
        let spec = InputSpec {
            sources: vec![(
                SourceSpec::Args(vec![b"x".to_vec(), b"END".to_vec()]),
                false,
            )],
            framing,
            ..InputSpec::default()
        };
        assert_eq!(records(&spec, b""), "x");
    }

    #[test]
    fn blank_records_are_skipped_with_skip_blank() {
        let spec = framed(Framing {
            skip_blank: true,
            ..Framing::default()
        });
        assert_eq!(records(&spec, b"a\n\n \t\nb\n"), "a/b");
    }

    #[test]
    fn csv_rows_span_lines_inside_quotes() {
        let spec = framed(Framing {
            csv: Some(b','),
            ..Framing::default()
        });
        assert_eq!(
            records(&spec, b"a,\"b\nc\",d\n\"e\"\"f\",g\n\"open"),
            "a|b\nc|d/e\"f|g/open"
        );
    }

    #[test]
    fn header_lines_name_columns_and_are_not_records() {
        let header = Header::default();
        let spec = InputSpec {
            sources: vec![
                (SourceSpec::File("-".into()), false),
                (SourceSpec::Args(vec![b"k".to_vec(), b"1".to_vec()]), false),
            ],
            colsep: Some(Regex::new(",").expect("regex")),
            framing: Framing {
                header: Some(header.clone()),
                trim: Trim::Both,
                ..Framing::default()
            },
            grouping: None,
            link: false,
        };
        assert_eq!(records(&spec, b"x , y\n1,2\n"), "1|2|1");
        let names: Vec<&[u8]> = header
            .names()
            .expect("read")
            .iter()
            .map(Vec::as_slice)
            .collect();
        assert_eq!(names, [&b"x"[..], b"y", b"k"]);
        assert_eq!(header.position(b"k"), Some(2));
    }

    #[test]
    fn continued_lines_join_after_a_trailing_blank() {
        let spec = framed(Framing {
            continue_lines: true,
            ..Framing::default()
        });
        assert_eq!(records(&spec, b"a \nb\nc\t\nd \n"), "a b/c\td ");
    }
}
