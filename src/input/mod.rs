//! Input records (from `:::`, `::::`, `-a` and standard input) and the command template that turns
//! each record into a task's command.

pub mod framing;
pub mod group;
pub mod pipe;
mod plus;
mod quote;
pub mod source;
pub mod template;

pub use framing::{Framing, Header, Trim};
pub use source::{InputError, InputSpec, Records, SourceSpec, open};
pub use template::{Rendered, Template, TemplateError};

/// One input record: the values of its arguments. Without --colsep, one value per source (the
/// source's line or ::: argument). With --colsep, each source's value is split into columns by the
/// regex and the columns of all sources are concatenated in order. Values are bytes, as read:
/// they need not be UTF-8.
///
/// With `-n`, `-N`, `-X`, `-m`, `-L` or `--xargs` one record holds the arguments of several
/// input records, one after the other; `ends` then says where each of them ends in `args`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub args: Vec<Vec<u8>>,
    /// For a record made of several, the end of each in `args`; empty for a single record.
    pub ends: Vec<usize>,
}

impl Record {
    /// One record holding the arguments of `records`, in order.
    pub fn merge(records: &[Record]) -> Record {
        Record::merge_owned(records.iter().cloned())
    }

    /// [`Record::merge`], taking the records.
    pub fn merge_owned(records: impl ExactSizeIterator<Item = Record>) -> Record {
        let mut args = Vec::new();
        let mut ends = Vec::with_capacity(records.len());
        for record in records {
            args.extend(record.args);
            ends.push(args.len());
        }
        Record { args, ends }
    }
}

/// Splits `items` at `|` for tests: "a|b c|" is ["a", "b c", ""], and "" is no items.
#[cfg(test)]
pub(crate) fn test_list(items: &str) -> Vec<Vec<u8>> {
    match items {
        "" => Vec::new(),
        _ => items.split('|').map(|s| s.as_bytes().to_vec()).collect(),
    }
}

/// Joins byte values with `sep` into text, for test assertions.
#[cfg(test)]
pub(crate) fn test_join(values: &[Vec<u8>], sep: &str) -> String {
    String::from_utf8_lossy(&values.join(sep.as_bytes())).into_owned()
}
