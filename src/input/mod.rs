//! Input records (from `:::`, `::::`, `-a` and standard input) and the command template that turns
//! each record into a task's command.

mod quote;
pub mod source;
pub mod template;

pub use source::{InputError, InputSpec, Records, SourceSpec, open};
pub use template::{Rendered, Template, TemplateError};

/// One input record: the values of its arguments. Without --colsep, one value per source (the
/// source's line or ::: argument). With --colsep, each source's value is split into columns by the
/// regex and the columns of all sources are concatenated in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub args: Vec<String>,
}

/// Splits `items` at `|` for tests: "a|b c|" is ["a", "b c", ""], and "" is no items.
#[cfg(test)]
pub(crate) fn test_list(items: &str) -> Vec<String> {
    match items {
        "" => Vec::new(),
        _ => items.split('|').map(str::to_string).collect(),
    }
}
