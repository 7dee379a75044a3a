//! Input framing: where one value ends (`-d`, `-0`), where input stops (`-E`), which records are
//! skipped (`-r`), how values are cleaned (`--trim`) and split into columns (`--colsep`,
//! `--csv`), and the header line that names the columns (`--header`), all with GNU parallel's
//! meaning.

use std::sync::{Arc, OnceLock};

use regex::bytes::Regex;

/// Which sides of a value `--trim` strips of blanks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trim {
    #[default]
    None,
    Left,
    Right,
    Both,
}

impl Trim {
    /// Parses GNU parallel's `--trim` values: `n`, `l`, `r`, `lr` and `rl`.
    pub fn parse(text: &str) -> Option<Trim> {
        match text {
            "n" => Some(Trim::None),
            "l" => Some(Trim::Left),
            "r" => Some(Trim::Right),
            "lr" | "rl" => Some(Trim::Both),
            _ => None,
        }
    }

    /// `value` without blanks on the trimmed sides.
    pub fn apply(self, value: &[u8]) -> &[u8] {
        match self {
            Trim::None => value,
            Trim::Left => value.trim_ascii_start(),
            Trim::Right => value.trim_ascii_end(),
            Trim::Both => value.trim_ascii(),
        }
    }
}

/// The column names an input's header line gives, shared between the input, which reads them,
/// and the command template, which looks `{name}` up in them. They are set once, before the
/// first record is handed on.
#[derive(Debug, Clone, Default)]
pub struct Header(Arc<OnceLock<Vec<Vec<u8>>>>);

impl Header {
    /// The names, once the header has been read.
    pub fn names(&self) -> Option<&[Vec<u8>]> {
        self.0.get().map(Vec::as_slice)
    }

    /// Records the names; a second call (a second opening of the same input) changes nothing.
    pub(crate) fn set(&self, names: Vec<Vec<u8>>) {
        let _ = self.0.set(names);
    }

    /// The 0-based column of `name`.
    pub fn position(&self, name: &[u8]) -> Option<usize> {
        self.names()?.iter().position(|n| n == name)
    }
}

/// How input values are read, cleaned and split.
#[derive(Debug, Clone, Default)]
pub struct Framing {
    /// `-d`/`-0`: values end at this byte string instead of at a newline. Never empty.
    pub delimiter: Option<Vec<u8>>,
    /// `-E`: a value equal to this ends its source; it and what follows are ignored.
    pub eof: Option<Vec<u8>>,
    /// `-r`: records whose values are all blank are skipped.
    pub skip_blank: bool,
    /// `--trim`: blanks stripped from each value or column.
    pub trim: Trim,
    /// `--csv`: each value is a CSV row with fields separated by this byte; quoted fields may
    /// hold separators, quotes (doubled) and newlines.
    pub csv: Option<u8>,
    /// `--header`: the first value of each source names its columns.
    pub header: Option<Header>,
    /// `-L`: a line that ends in a blank goes on with the next line.
    pub continue_lines: bool,
}

/// Splits a value into columns and cleans them.
#[derive(Debug, Clone)]
pub(crate) struct Splitter {
    pub colsep: Option<Regex>,
    pub csv: Option<u8>,
    pub trim: Trim,
}

impl Splitter {
    /// Appends `value`, split into columns when there is a column separator, to `row`.
    pub fn split_into(&self, row: &mut Vec<Vec<u8>>, value: Vec<u8>) {
        let trim = self.trim;
        if let Some(sep) = self.csv {
            row.extend(
                csv_fields(&value, sep)
                    .iter()
                    .map(|f| trim.apply(f).to_vec()),
            );
            return;
        }
        match &self.colsep {
            Some(re) if !value.is_empty() => {
                row.extend(re.split(&value).map(|f| trim.apply(f).to_vec()));
            }
            _ if trim == Trim::None => row.push(value),
            _ => row.push(trim.apply(&value).to_vec()),
        }
    }
}

/// The fields of one CSV row (which may span lines). A row the parser cannot read is one field.
fn csv_fields(row: &[u8], sep: u8) -> Vec<Vec<u8>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(sep)
        .from_reader(row);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => record.iter().map(<[u8]>::to_vec).collect(),
        Ok(false) => vec![Vec::new()],
        Err(_) => vec![row.to_vec()],
    }
}

/// Whether a CSV row read so far ends inside a quoted field, so that the newline after it
/// belongs to the field: quotes (`""` counts twice) are unbalanced.
pub(crate) fn csv_open_quote(row: &[u8]) -> bool {
    row.iter().filter(|&&b| b == b'"').count() % 2 == 1
}

/// Whether every value of a record is blank (what `-r` skips).
pub(crate) fn all_blank(args: &[Vec<u8>]) -> bool {
    args.iter().all(|a| a.iter().all(u8::is_ascii_whitespace))
}

/// Why a `-d` delimiter is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DelimiterError {
    #[error("the delimiter is empty")]
    Empty,
    #[error("`\\x` must be followed by two hexadecimal digits")]
    BadHex,
}

/// Reads a `-d` delimiter as GNU parallel does: `\n`, `\t`, `\r`, octal `\NNN` and `\N`
/// (so `\0` is NUL), and also `\xHH` and `\\`. Anything else stands for itself.
pub fn parse_delimiter(text: &[u8]) -> Result<Vec<u8>, DelimiterError> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b != b'\\' || i + 1 == text.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let next = text[i + 1];
        i += 2;
        match next {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = text.get(i..i + 2).ok_or(DelimiterError::BadHex)?;
                let hex = std::str::from_utf8(hex).map_err(|_| DelimiterError::BadHex)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| DelimiterError::BadHex)?);
                i += 2;
            }
            b'0'..=b'7' => {
                // Three octal digits, else one, as GNU's unquote_printf reads them.
                let three = text
                    .get(i - 1..i + 2)
                    .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
                match three {
                    Some(d) => {
                        let n = d.iter().fold(0u32, |n, b| n * 8 + u32::from(b - b'0'));
                        out.push((n & 0xff) as u8);
                        i += 2;
                    }
                    None => out.push(next - b'0'),
                }
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    if out.is_empty() {
        return Err(DelimiterError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_escapes() {
        let d = |t: &str| parse_delimiter(t.as_bytes());
        assert_eq!(d(r"\n").unwrap(), b"\n");
        assert_eq!(d(r"\t").unwrap(), b"\t");
        assert_eq!(d(r"\0").unwrap(), b"\0");
        assert_eq!(d(r"\x41").unwrap(), b"A");
        assert_eq!(d(r"\101").unwrap(), b"A");
        assert_eq!(d(r"\x1f").unwrap(), b"\x1f");
        assert_eq!(d("::").unwrap(), b"::");
        assert_eq!(d(",").unwrap(), b",");
        assert_eq!(d(r"a\\b").unwrap(), br"a\b");
        assert_eq!(d(r"\q").unwrap(), br"\q");
        assert_eq!(d(""), Err(DelimiterError::Empty));
        assert_eq!(d(r"\x4"), Err(DelimiterError::BadHex));
        assert_eq!(d(r"\xzz"), Err(DelimiterError::BadHex));
    }

    #[test]
    fn trim_sides() {
        let v = b"  a b \t";
        assert_eq!(Trim::parse("n").unwrap().apply(v), v);
        assert_eq!(Trim::parse("l").unwrap().apply(v), b"a b \t");
        assert_eq!(Trim::parse("r").unwrap().apply(v), b"  a b");
        assert_eq!(Trim::parse("lr").unwrap().apply(v), b"a b");
        assert_eq!(Trim::parse("rl").unwrap().apply(v), b"a b");
        assert_eq!(Trim::parse("x"), None);
    }

    #[test]
    fn csv_rows() {
        let f = |row: &str| {
            csv_fields(row.as_bytes(), b',')
                .into_iter()
                .map(|v| String::from_utf8(v).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(f(r#"a,"b,c",d"#), ["a", "b,c", "d"]);
        assert_eq!(f("\"x\ny\",2"), ["x\ny", "2"]);
        assert_eq!(f(r#""a""b",c"#), [r#"a"b"#, "c"]);
        assert_eq!(f("a,,c"), ["a", "", "c"]);
        assert_eq!(f(""), [""]);
        assert!(csv_open_quote(b"\"x"));
        assert!(!csv_open_quote(b"\"x\"\"y\""));
    }
}
