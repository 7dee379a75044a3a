//! The command template: GNU parallel's replacement strings, the choice between running a command
//! directly, through `sh -c` or as a built-in `@kernel`, and rendering one task's command.
//!
//! Replacement strings: `{}` `{.}` `{/}` `{//}` `{/.}` (all arguments, each transformed, joined by
//! spaces), `{N}` `{N.}` `{N/}` `{N//}` `{N/.}` (the Nth argument, from 1), `{-N}` and its variants
//! (the Nth argument from the end), `{#}` (sequence number) and `{%}` (slot). A command with none of
//! them gets ` {}` appended. Any other text in braces stays as written.
//!
//! Deliberate differences from GNU parallel 20221122:
//! - `{= perl =}` expressions, `--plus` strings and `{0}` are not replacement strings and stay
//!   literal (GNU evaluates `{= =}` and reads `{0}` as the last argument).
//! - `{-N}` beyond the number of arguments is empty (GNU wraps around).
//! - Values equal to a shell reserved word or containing `=` or `^` are quoted; GNU leaves them bare,
//!   so a value `a=b` in command position becomes an assignment there.
//! - `{/}` and `{/.}` cut at the last `/` of the whole value even when it spans several lines.

use super::Record;
use super::quote::{is_plain_byte, is_shell_word, push_quoted};

/// How a task's command will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// Argument vector, run directly without a shell. Never empty.
    Exec(Vec<String>),
    /// Script for `sh -c`.
    Shell(String),
    /// The first word was `@name`: a built-in kernel, `name` without the `@`.
    Kernel { name: String, args: Vec<String> },
}

/// Why a command template is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error(
        "no command given: write the command to run before the first `:::` or `::::`, \
         e.g. `troop run echo {{}} ::: a b`"
    )]
    Empty,
    #[error(
        "`{0}` does not name a kernel: write `@` directly followed by the kernel's name, \
         e.g. `@sleep {{}}`"
    )]
    BadKernelName(String),
}

/// Which part of a path-like value a replacement string takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Whole,
    NoExt,
    Base,
    Dir,
    BaseNoExt,
}

/// A replacement string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repl {
    Seq,
    Slot,
    All(Part),
    /// 0-based index.
    Nth(usize, Part),
    /// 1-based count from the end.
    FromEnd(usize, Part),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Lit(String),
    Repl(Repl),
}

/// A word of a command run without a shell: literal text and replacement strings.
type Word = Vec<Segment>;

#[derive(Debug, Clone)]
enum Mode {
    Exec(Vec<Word>),
    Shell(Vec<Segment>),
    Kernel { name: String, args: Vec<Word> },
}

/// A parsed command template, ready to render one command per record.
#[derive(Debug, Clone)]
pub struct Template {
    mode: Mode,
}

impl Template {
    /// `words` is the command as given on the command line (everything before the first
    /// `:::`/`::::`). The words are joined with single spaces and treated as one shell command
    /// line, as GNU parallel does: so `["echo {} | wc -c"]` and `["echo","{}","|","wc","-c"]` mean
    /// the same. A command without shell syntax whose first word is not a shell builtin or
    /// reserved word runs without a shell; its rendering gives the same argument vector as the
    /// shell would.
    pub fn parse(words: &[String]) -> Result<Template, TemplateError> {
        let text = command_text(words)?;
        let first = text.split_whitespace().next().unwrap_or_default();
        if let Some(name) = first.strip_prefix('@') {
            if name.is_empty() || parse_segments(name) != [Segment::Lit(name.to_string())] {
                return Err(TemplateError::BadKernelName(first.to_string()));
            }
            let args = text
                .split_whitespace()
                .skip(1)
                .map(parse_segments)
                .collect();
            let name = name.to_string();
            return Ok(Template {
                mode: Mode::Kernel { name, args },
            });
        }
        let segments = parse_segments(&text);
        let words: Vec<Word> = text
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(parse_segments)
            .collect();
        let plain = segments.iter().all(|s| match s {
            Segment::Lit(l) => l.bytes().all(is_plain_byte),
            Segment::Repl(_) => true,
        });
        let first_ok = words.first().is_some_and(|w| {
            let assigns = w
                .iter()
                .any(|s| matches!(s, Segment::Lit(l) if l.contains('=')));
            let builtin = matches!(w.as_slice(), [Segment::Lit(l)] if is_shell_word(l));
            !assigns && !builtin
        });
        let mode = if plain && first_ok {
            Mode::Exec(words)
        } else {
            Mode::Shell(segments)
        };
        Ok(Template { mode })
    }

    /// The kernel name (without '@') if the first word is `@name`.
    pub fn kernel_name(&self) -> Option<&str> {
        match &self.mode {
            Mode::Kernel { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Renders the command for one task. `seq` is `{#}` (from 1), `slot` is `{%}` (from 1).
    ///
    /// A direct command whose words all render to nothing (say `{2}` with one argument) becomes
    /// the empty script, which succeeds, as it does in GNU parallel.
    pub fn render(&self, record: &Record, seq: u64, slot: u32) -> Rendered {
        let ctx = Ctx { record, seq, slot };
        match &self.mode {
            Mode::Exec(words) => {
                let argv = render_words(words, &ctx);
                if argv.is_empty() {
                    Rendered::Shell(String::new())
                } else {
                    Rendered::Exec(argv)
                }
            }
            Mode::Shell(segments) => Rendered::Shell(render_shell(segments, &ctx)),
            Mode::Kernel { name, args } => Rendered::Kernel {
                name: name.clone(),
                args: render_words(args, &ctx),
            },
        }
    }

    /// The text shown for `--dry-run`: a shell command line (an argument vector quoted and
    /// joined; a script as is; a kernel as `@name` followed by its arguments, quoted the same way).
    pub fn display(rendered: &Rendered) -> String {
        let (mut out, words) = match rendered {
            Rendered::Shell(script) => return script.clone(),
            Rendered::Exec(argv) => (String::new(), argv),
            Rendered::Kernel { name, args } => (format!("@{name}"), args),
        };
        for word in words {
            if !out.is_empty() {
                out.push(' ');
            }
            push_quoted(&mut out, word);
        }
        out
    }

    /// The `--tag` prefix for a record: its arguments joined by spaces, as GNU parallel's `--tag`
    /// does, without the trailing TAB.
    pub fn tag(record: &Record) -> String {
        record.args.join(" ")
    }
}

/// The command line as one text, with ` {}` appended when it has no replacement string.
fn command_text(words: &[String]) -> Result<String, TemplateError> {
    let mut text = words.join(" ");
    if text.trim().is_empty() {
        return Err(TemplateError::Empty);
    }
    if !parse_segments(&text)
        .iter()
        .any(|s| matches!(s, Segment::Repl(_)))
    {
        text.push_str(" {}");
    }
    Ok(text)
}

fn parse_segments(text: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let (mut lit_start, mut pos) = (0, 0);
    while let Some(offset) = text[pos..].find('{') {
        let open = pos + offset;
        match parse_repl(&text[open..]) {
            Some((repl, len)) => {
                if open > lit_start {
                    segments.push(Segment::Lit(text[lit_start..open].to_string()));
                }
                segments.push(Segment::Repl(repl));
                pos = open + len;
                lit_start = pos;
            }
            None => pos = open + 1,
        }
    }
    if lit_start < text.len() {
        segments.push(Segment::Lit(text[lit_start..].to_string()));
    }
    segments
}

/// Reads a replacement string at the start of `s` (which starts with `{`): the replacement and
/// its length, or `None` when the braces hold anything else.
fn parse_repl(s: &str) -> Option<(Repl, usize)> {
    let close = s[1..].find('}')? + 1;
    let inner = &s[1..close];
    let repl = match inner {
        "#" => Repl::Seq,
        "%" => Repl::Slot,
        _ => {
            let (from_end, rest) = match inner.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, inner),
            };
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let part = match &rest[digits..] {
                "" => Part::Whole,
                "." => Part::NoExt,
                "/" => Part::Base,
                "//" => Part::Dir,
                "/." => Part::BaseNoExt,
                _ => return None,
            };
            match (digits, from_end) {
                (0, false) => Repl::All(part),
                (0, true) => return None,
                _ => match rest[..digits].parse::<usize>().ok()? {
                    0 => return None,
                    n if from_end => Repl::FromEnd(n, part),
                    n => Repl::Nth(n - 1, part),
                },
            }
        }
    };
    Some((repl, close + 1))
}

/// What a render needs besides the template.
struct Ctx<'a> {
    record: &'a Record,
    seq: u64,
    slot: u32,
}

impl Ctx<'_> {
    /// Calls `f` with each value `repl` stands for, in order (none for a missing argument).
    fn each_value(&self, repl: Repl, mut f: impl FnMut(&str)) {
        let args = &self.record.args;
        let mut digits = [0u8; 20];
        match repl {
            Repl::Seq => f(format_u64(self.seq, &mut digits)),
            Repl::Slot => f(format_u64(u64::from(self.slot), &mut digits)),
            Repl::All(part) => args.iter().for_each(|a| f(part.apply(a))),
            Repl::Nth(i, part) => args.get(i).into_iter().for_each(|a| f(part.apply(a))),
            Repl::FromEnd(n, part) => {
                let arg = args.len().checked_sub(n).map(|i| &args[i]);
                arg.into_iter().for_each(|a| f(part.apply(a)))
            }
        }
    }
}

fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[start..]).unwrap_or_default()
}

/// Renders words the way the shell would split the quoted rendering: a replacement with several
/// values breaks its word between them, one with no value adds nothing, and a word that ends up
/// with no text and no value disappears.
fn render_words(words: &[Word], ctx: &Ctx) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len() + ctx.record.args.len());
    for word in words {
        let mut current = String::new();
        let mut present = false;
        for segment in word {
            match segment {
                Segment::Lit(lit) => {
                    current.push_str(lit);
                    present = true;
                }
                Segment::Repl(repl) => {
                    let mut first = true;
                    ctx.each_value(*repl, |value| {
                        if !first {
                            out.push(std::mem::take(&mut current));
                        }
                        first = false;
                        current.push_str(value);
                        present = true;
                    });
                }
            }
        }
        if present {
            out.push(current);
        }
    }
    out
}

fn render_shell(segments: &[Segment], ctx: &Ctx) -> String {
    let mut out = String::with_capacity(128);
    for segment in segments {
        match segment {
            Segment::Lit(lit) => out.push_str(lit),
            Segment::Repl(repl) => {
                let mut first = true;
                ctx.each_value(*repl, |value| {
                    if !first {
                        out.push(' ');
                    }
                    first = false;
                    push_quoted(&mut out, value);
                });
            }
        }
    }
    out
}

impl Part {
    fn apply(self, value: &str) -> &str {
        match self {
            Part::Whole => value,
            Part::NoExt => without_ext(value),
            Part::Base => basename(value),
            Part::Dir => dirname(value),
            Part::BaseNoExt => without_ext(basename(value)),
        }
    }
}

/// `{.}`: drops the last `.` and what follows when no `/` follows it (GNU's `s:\.[^/.]*$::`).
fn without_ext(value: &str) -> &str {
    match value.rfind('.') {
        Some(dot) if !value[dot..].contains('/') => &value[..dot],
        _ => value,
    }
}

/// `{/}`: what follows the last `/`.
fn basename(value: &str) -> &str {
    value.rfind('/').map_or(value, |slash| &value[slash + 1..])
}

/// `{//}`: Perl's `File::Basename::dirname`, which GNU parallel uses: like dirname(1), so
/// `foo` → `.`, `/foo` → `/`, `a/b/` → `a`, `/` → `/`.
fn dirname(value: &str) -> &str {
    fn split(path: &str) -> (&str, &str) {
        path.rfind('/')
            .map_or(("./", path), |slash| (&path[..=slash], &path[slash + 1..]))
    }
    fn strip_trailing_slashes(dir: &str) -> &str {
        let stripped = dir.trim_end_matches('/');
        if stripped.is_empty() {
            &dir[..dir.len().min(1)]
        } else {
            stripped
        }
    }
    let (dir, base) = split(value);
    let dir = strip_trailing_slashes(dir);
    if base.is_empty() {
        strip_trailing_slashes(split(dir).0)
    } else {
        dir
    }
}
