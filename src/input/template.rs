//! The command template: GNU parallel's replacement strings, the choice between running a command
//! directly, through the shell or as a built-in `@kernel`, and rendering one task's command.
//!
//! Replacement strings: `{}` `{.}` `{/}` `{//}` `{/.}` (all arguments, each transformed, joined by
//! spaces), `{N}` `{N.}` `{N/}` `{N//}` `{N/.}` (the Nth argument, from 1; blanks may follow `N`
//! as in GNU parallel), `{-N}` and its variants (the Nth argument from the end), `{#}` (sequence
//! number) and `{%}` (slot). A missing argument gives nothing. A command with none of them gets
//! ` {}` appended. Any other text in braces stays as written, except `{name}` with `--header`,
//! the column the header names so. `-I STRING` puts STRING in the place of `{}`. With context
//! replace (`-X`), a word holding `{}` repeats for each value of a command. Templates and
//! values are bytes: what is not UTF-8 reaches the command unchanged, quoted for the shell like
//! any other byte.
//!
//! Quoting makes each value one shell word where its replacement string stands outside quotes in
//! the template; inside the template's own quotes (`echo "{}"`, `echo '{}'`) a value can still
//! inject shell syntax, as in GNU parallel.
//!
//! Deliberate differences from GNU parallel 20221122:
//! - Values are always quoted for the shell. GNU leaves them bare when the command starts with a
//!   replacement string (`parallel {} ::: 'echo hi'` runs the value as a command line); here that
//!   value names one program, and `sh -c {}` runs input lines as commands.
//! - An empty command is an error (GNU runs each input as a command).
//! - `{= perl =}` expressions, `--plus` strings, `{0}`, `{N#}` and `{N%}` stay literal.
//! - `{-N}` beyond the number of arguments is empty (GNU wraps around).
//! - Values equal to a shell reserved word or containing `=` or `^` are quoted; GNU leaves them
//!   bare, so a value `a=b` in command position becomes an assignment there.
//! - `{/}` and `{/.}` cut at the last `/` of the whole value even when it spans several lines.

use super::plus::Edit;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use super::Record;
use super::framing::Header;
use super::quote::{is_plain_byte, is_shell_word, push_quoted};

/// How the command's text is read, besides GNU parallel's default replacement strings.
#[derive(Debug, Clone, Default)]
pub struct TemplateOptions {
    /// `-I STRING`: STRING stands for all arguments instead of `{}`. As in GNU parallel, `{}`
    /// and the positional `{N}` are then plain text, while `{.}`, `{/}`, `{1.}` and the other
    /// strings keep working.
    pub replace: Option<Vec<u8>>,
    /// `--header`: `{name}` (and `{name.}`, `{name/}`, `{name//}`, `{name/.}`) stand for the
    /// column the header line names `name`.
    pub header: Option<Header>,
    /// `-X` (and `-N`, `-L`): context replace. When a command takes several input records, a
    /// word holding `{}` (or `{.}`, `{/}`, …) is repeated for each of their values: `pre{}post`
    /// gives `prea1post prea2post`. Without it `{}` gives all the values in one place.
    pub context: bool,
    /// `--plus`: the extra strings `{..}`, `{...}`, `{/..}`, `{/...}`, `{+/}`, `{+.}`, `{+..}`
    /// and `{+...}` (and their positional forms `{1..}`…), with GNU parallel's meaning.
    pub plus: bool,
}

/// How a task's command will run. Commands are bytes: values that are not UTF-8 pass unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// Argument vector, run directly without a shell. Never empty.
    Exec(Vec<Vec<u8>>),
    /// Script for `$SHELL -c`.
    Shell(Vec<u8>),
    /// The first word was `@name`: a built-in kernel, `name` without the `@`. Its arguments are
    /// numbers, so bytes that are not UTF-8 are shown as U+FFFD.
    Kernel { name: String, args: Vec<String> },
}

/// Why a command template is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error(
        "`{0}` does not name a kernel: write `@` directly followed by the kernel's name, \
         e.g. `@sleep {{}}`"
    )]
    BadKernelName(String),
    #[error(
        "`{0}` is a GNU parallel Perl expression, which troop does not run: use a replacement \
         string such as {{.}} or {{/}}, or do the edit in the command, e.g. \
         `troop run 'echo \"$(echo {{}} | sed s/a/b/)\"'`"
    )]
    PerlExpression(String),
}

/// Which part of a path-like value a replacement string takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Whole,
    NoExt,
    Base,
    Dir,
    BaseNoExt,
    /// `--plus`: `{..}` (2) and `{...}` (3): without that many extensions.
    NoExts(u8),
    /// `--plus`: `{/..}` (2) and `{/...}` (3): the basename without that many extensions.
    BaseNoExts(u8),
    /// `--plus`: `{+/}`: what `{/}` leaves out, so that `{+/}/{/}` is `{}`.
    DirPlus,
    /// `--plus`: `{+.}` (1), `{+..}` (2), `{+...}` (3): the extensions `{.}`, `{..}`,
    /// `{...}` leave out.
    Exts(u8),
}

/// A replacement string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repl {
    Seq,
    Slot,
    /// `--plus`'s `{##}`: the number of tasks in the run.
    Total,
    /// `--plus`'s `{0#}`: `{#}` with leading zeros, as wide as the number of tasks.
    SeqPadded,
    All(Part),
    /// 0-based index.
    Nth(usize, Part),
    /// 1-based count from the end.
    FromEnd(usize, Part),
    /// `{name}` with `--header`: an index into [`Template::names`]; the column is looked up when
    /// the header has been read.
    Named(usize),
    /// `--plus`'s editing strings (`{%.gz}`, `{/a/b}`, …): an index into [`Template::names`]
    /// (its text) and the template's edits (compiled), applied to each value of `{}`.
    Edit(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Lit(Vec<u8>),
    Repl(Repl),
}

/// A word of a command run without a shell: literal text and replacement strings.
type Word = Vec<Segment>;

#[derive(Debug, Clone)]
enum Mode {
    Exec(Vec<Word>),
    Shell(Vec<Segment>),
    Kernel {
        name: String,
        args: Vec<Word>,
    },
    /// No command was given: each input is itself a command line for the shell, as in GNU
    /// parallel (`troop run < commands.txt`).
    Input,
}

/// A parsed command template, ready to render one command per record.
#[derive(Debug, Clone)]
pub struct Template {
    mode: Mode,
    /// Matches any command line this template renders; see [`Template::resume_key`].
    matcher: regex::bytes::Regex,
    /// For each capture group of `matcher`, whether it holds the worker slot `{%}`.
    slot_groups: Vec<bool>,
    /// The text inside the braces of each `{name}`.
    names: Vec<Vec<u8>>,
    /// For each of `names`, the `--plus` edit it spells, if it is one.
    edits: Vec<Option<Edit>>,
    /// The number of tasks, for `{##}` and `{0#}`: known once the input has ended.
    total: std::sync::Arc<std::sync::OnceLock<u64>>,
    /// The header that names the columns, with `--header`.
    header: Option<Header>,
    /// `-X`: words with a replacement string repeat for each value of a group.
    context: bool,
}

impl Template {
    /// `words` is the command as given on the command line (everything before the first
    /// `:::`/`::::`). The words are joined with single spaces and treated as one shell command
    /// line, as GNU parallel does: so `["echo {} | wc -c"]` and `["echo","{}","|","wc","-c"]` mean
    /// the same. A command without shell syntax whose first word is not a shell builtin or
    /// reserved word runs without a shell; its rendering gives the same argument vector as the
    /// shell would.
    pub fn parse<S: AsRef<OsStr>>(words: &[S]) -> Result<Template, TemplateError> {
        Template::parse_with(words, &TemplateOptions::default())
    }

    /// [`Template::parse`], reading the replacement strings as `options` say.
    pub fn parse_with<S: AsRef<OsStr>>(
        words: &[S],
        options: &TemplateOptions,
    ) -> Result<Template, TemplateError> {
        if words.is_empty() {
            return Ok(Template::with_mode(Mode::Input));
        }
        let text = command_text(words, options)?;
        if options.replace.is_none()
            && let Some(start) = text.windows(2).position(|w| w == b"{=")
            && let Some(len) = text[start + 2..].windows(2).position(|w| w == b"=}")
        {
            let expression = &text[start..start + 2 + len + 2];
            return Err(TemplateError::PerlExpression(
                String::from_utf8_lossy(expression).into_owned(),
            ));
        }
        let mut names = Vec::new();
        let segments = parse_segments(&text, options, &mut names);
        let mut template = Template::parse_segments(&text, segments)?;
        template.edits = compile_edits(&names, options.plus);
        template.names = names;
        template.header = options.header.clone();
        template.context = options.context;
        Ok(template)
    }

    fn parse_segments(text: &[u8], segments: Vec<Segment>) -> Result<Template, TemplateError> {
        if text.trim_ascii_start().starts_with(b"@") {
            let mut words = split_words(&segments, |b| b.is_ascii_whitespace()).into_iter();
            let name = match words.next().as_deref() {
                Some([Segment::Lit(first)]) if first.len() > 1 => {
                    std::str::from_utf8(&first[1..]).ok().map(str::to_string)
                }
                _ => None,
            };
            let Some(name) = name else {
                let first = text
                    .split(u8::is_ascii_whitespace)
                    .find(|w| !w.is_empty())
                    .unwrap_or_default();
                return Err(TemplateError::BadKernelName(
                    String::from_utf8_lossy(first).into_owned(),
                ));
            };
            let args = words.collect();
            return Ok(Template::with_mode(Mode::Kernel { name, args }));
        }
        let words = split_words(&segments, |b| b == b' ');
        let plain = segments.iter().all(|s| match s {
            Segment::Lit(l) => l.iter().all(|&b| is_plain_byte(b)),
            Segment::Repl(_) => true,
        });
        let first_ok = words.first().is_some_and(|w| {
            let assigns = w
                .iter()
                .any(|s| matches!(s, Segment::Lit(l) if l.contains(&b'=')));
            let builtin = matches!(w.as_slice(), [Segment::Lit(l)] if is_shell_word(l));
            !assigns && !builtin
        });
        let mode = if plain && first_ok {
            Mode::Exec(words)
        } else {
            Mode::Shell(segments)
        };
        Ok(Template::with_mode(mode))
    }

    fn with_mode(mode: Mode) -> Template {
        let (matcher, slot_groups) = build_matcher(&mode);
        Template {
            mode,
            matcher,
            slot_groups,
            names: Vec::new(),
            edits: Vec::new(),
            total: Default::default(),
            header: None,
            context: false,
        }
    }

    /// The key under which a job log's command line counts as the same task, or `None` when
    /// this template cannot have produced `command` (a log written for another command).
    ///
    /// A command line is a function of the template and the input record, so it is the key, and
    /// reordered or appended input still finds its finished tasks. The worker slot `{%}` varies
    /// from run to run, so the parts of the line it fills are left out of the key. Keys are
    /// bytes, like the command lines they come from.
    pub fn resume_key(&self, command: &[u8]) -> Option<Vec<u8>> {
        let caps = self.matcher.captures(command)?;
        if !self.slot_groups.contains(&true) {
            return Some(command.to_vec());
        }
        let mut key = Vec::new();
        for (i, is_slot) in self.slot_groups.iter().enumerate() {
            if !is_slot {
                key.extend_from_slice(caps.get(i + 1).map_or(&[][..], |m| m.as_bytes()));
                key.push(0x1f);
            }
        }
        Some(key)
    }

    /// For a command run directly whose arguments appear only as whole `{}` words (`gzip {}`,
    /// `echo` with ` {}` appended): the lengths of its literal words and the number of `{}`
    /// words. Its argument vector is then those words plus each value once per `{}` word,
    /// however the values are grouped.
    pub fn plain_shape(&self) -> Option<(Vec<usize>, usize)> {
        let Mode::Exec(words) = &self.mode else {
            return None;
        };
        let mut literals = Vec::new();
        let mut copies = 0;
        for word in words {
            match word.as_slice() {
                [Segment::Lit(lit)] => literals.push(lit.len()),
                [Segment::Repl(Repl::All(Part::Whole))] => copies += 1,
                _ => return None,
            }
        }
        Some((literals, copies))
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
    /// Whether commands name the number of tasks (`{##}`, `{0#}`): then the whole input is read
    /// before the first task starts, as GNU parallel does, and [`Template::set_total`] says it.
    pub fn needs_total(&self) -> bool {
        let total = |s: &Segment| matches!(s, Segment::Repl(Repl::Total | Repl::SeqPadded));
        match &self.mode {
            Mode::Exec(words) | Mode::Kernel { args: words, .. } => {
                words.iter().flatten().any(total)
            }
            Mode::Shell(segments) => segments.iter().any(total),
            Mode::Input => false,
        }
    }

    /// Gives `{##}` and `{0#}` the number of tasks (the first value given stays).
    pub fn set_total(&self, total: u64) {
        let _ = self.total.set(total);
    }

    pub fn render(&self, record: &Record, seq: u64, slot: u32) -> Rendered {
        let ctx = Ctx {
            args: &record.args,
            part: None,
            seq,
            slot,
            names: &self.names,
            edits: &self.edits,
            total: self.total.get().copied(),
            header: self.header.as_ref(),
        };
        // Context replace repeats a word for each value of the command, as GNU parallel does
        // (each column of each record, with --colsep or several sources).
        let parts = match self.context && !record.ends.is_empty() {
            true => Some(record.args.chunks(1).collect::<Vec<_>>()),
            false => None,
        };
        match &self.mode {
            Mode::Exec(words) => {
                let argv = match &parts {
                    Some(parts) => render_words_in_context(words, &ctx, parts),
                    None => render_words(words, &ctx),
                };
                if argv.is_empty() {
                    Rendered::Shell(Vec::new())
                } else {
                    Rendered::Exec(argv)
                }
            }
            Mode::Shell(segments) => Rendered::Shell(match &parts {
                Some(parts) => render_shell_in_context(segments, &ctx, parts),
                None => render_shell(segments, &ctx),
            }),
            Mode::Input => Rendered::Shell(record.args.join(&b' ')),
            Mode::Kernel { name, args } => Rendered::Kernel {
                name: name.clone(),
                args: render_words(args, &ctx)
                    .into_iter()
                    .map(|a| String::from_utf8_lossy(&a).into_owned())
                    .collect(),
            },
        }
    }

    /// The command line shown for `--dry-run` and written to the job log: a shell command line
    /// (an argument vector quoted and joined; a script as is; a kernel as `@name` followed by its
    /// arguments, quoted the same way). Bytes, exactly as the command gets them.
    pub fn display(rendered: &Rendered) -> Vec<u8> {
        let mut out = Vec::new();
        let push_words = |out: &mut Vec<u8>, words: &mut dyn Iterator<Item = &[u8]>| {
            for word in words {
                if !out.is_empty() {
                    out.push(b' ');
                }
                push_quoted(out, word);
            }
        };
        match rendered {
            Rendered::Shell(script) => return script.clone(),
            Rendered::Exec(argv) => push_words(&mut out, &mut argv.iter().map(Vec::as_slice)),
            Rendered::Kernel { name, args } => {
                out.push(b'@');
                out.extend_from_slice(name.as_bytes());
                push_words(&mut out, &mut args.iter().map(String::as_bytes));
            }
        }
        out
    }

    /// The `--tag` prefix for a record: its arguments joined by spaces, as GNU parallel's `--tag`
    /// does, without the trailing TAB.
    pub fn tag(record: &Record) -> Vec<u8> {
        record.args.join(&b' ')
    }
}

/// A text with replacement strings, rendered without quoting: `--tagstring` and the path of
/// `--results`. Values of several arguments are joined with spaces.
#[derive(Debug, Clone)]
pub struct Text {
    segments: Vec<Segment>,
    names: Vec<Vec<u8>>,
    edits: Vec<Option<Edit>>,
    header: Option<Header>,
}

impl Text {
    /// Reads `text` as the command is read (`-I` and `--header` included).
    pub fn parse(text: &[u8], options: &TemplateOptions) -> Text {
        let mut names = Vec::new();
        let segments = parse_segments(text, options, &mut names);
        Text {
            segments,
            edits: compile_edits(&names, options.plus),
            names,
            header: options.header.clone(),
        }
    }

    /// Whether the text holds any replacement string.
    pub fn has_replacements(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::Repl(_)))
    }

    /// The text for one task: `seq` is `{#}`, `slot` is `{%}`.
    pub fn render(&self, record: &Record, seq: u64, slot: u32) -> Vec<u8> {
        let ctx = Ctx {
            args: &record.args,
            part: None,
            seq,
            slot,
            names: &self.names,
            edits: &self.edits,
            total: None,
            header: self.header.as_ref(),
        };
        render_segments(&self.segments, &ctx, |out, value| {
            out.extend_from_slice(value)
        })
    }
}

/// `bytes` as a regular expression that matches exactly them, for a pattern in `(?-u)` mode.
fn push_escaped(pattern: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b == b' ' {
            pattern.push(char::from(b));
        } else {
            pattern.push_str(&format!("\\x{b:02x}"));
        }
    }
}

/// A regular expression matching every command line `mode` renders (as [`Template::display`]
/// shows it): literal text as is, each replacement as a lazy group of any bytes.
fn build_matcher(mode: &Mode) -> (regex::bytes::Regex, Vec<bool>) {
    let mut pattern = String::from("(?s-u)^");
    let mut slots = Vec::new();
    let mut hole = |pattern: &mut String, is_slot: bool| {
        pattern.push_str("(.*?)");
        slots.push(is_slot);
    };
    let mut words_pattern = |pattern: &mut String, words: &[Word], first: bool| {
        for (i, word) in words.iter().enumerate() {
            if i > 0 || !first {
                pattern.push(' ');
            }
            let literal: Option<Vec<u8>> = word
                .iter()
                .map(|s| match s {
                    Segment::Lit(l) => Some(l.as_slice()),
                    Segment::Repl(_) => None,
                })
                .collect::<Option<Vec<&[u8]>>>()
                .map(|parts| parts.concat());
            match literal {
                Some(text) => {
                    let mut quoted = Vec::new();
                    push_quoted(&mut quoted, &text);
                    push_escaped(pattern, &quoted);
                }
                None => hole(pattern, word.as_slice() == [Segment::Repl(Repl::Slot)]),
            }
        }
    };
    match mode {
        Mode::Shell(segments) => {
            for s in segments {
                match s {
                    Segment::Lit(l) => push_escaped(&mut pattern, l),
                    Segment::Repl(r) => hole(&mut pattern, *r == Repl::Slot),
                }
            }
        }
        Mode::Exec(words) => words_pattern(&mut pattern, words, true),
        Mode::Input => pattern.push_str(".*"),
        Mode::Kernel { name, args } => {
            push_escaped(&mut pattern, format!("@{name}").as_bytes());
            words_pattern(&mut pattern, args, false);
        }
    }
    pattern.push('$');
    let regex = regex::bytes::Regex::new(&pattern).expect("an escaped pattern is a valid regex");
    (regex, slots)
}

/// The command line as one text, with ` {}` (or the `-I` string) appended when it has no
/// replacement string.
fn command_text<S: AsRef<OsStr>>(
    words: &[S],
    options: &TemplateOptions,
) -> Result<Vec<u8>, TemplateError> {
    let mut text = words
        .iter()
        .map(|w| w.as_ref().as_bytes())
        .collect::<Vec<_>>()
        .join(&b' ');
    if !parse_segments(&text, options, &mut Vec::new())
        .iter()
        .any(|s| matches!(s, Segment::Repl(_)))
    {
        text.push(b' ');
        text.extend_from_slice(options.replace.as_deref().unwrap_or(b"{}"));
    }
    Ok(text)
}

/// Splits the command's text into literal text and replacement strings; `names` receives the
/// text of each `{name}`.
fn parse_segments(
    text: &[u8],
    options: &TemplateOptions,
    names: &mut Vec<Vec<u8>>,
) -> Vec<Segment> {
    let mut segments = Vec::new();
    let (mut lit_start, mut pos) = (0, 0);
    let replace = options.replace.as_deref().filter(|r| !r.is_empty());
    let starts = |b: u8| b == b'{' || replace.is_some_and(|r| r[0] == b);
    while let Some(offset) = text[pos..].iter().position(|&b| starts(b)) {
        let open = pos + offset;
        let found = match replace {
            Some(r) if text[open..].starts_with(r) => Some((Repl::All(Part::Whole), r.len())),
            _ if text[open] != b'{' => None,
            _ => parse_repl(&text[open..], options, names),
        };
        match found {
            Some((repl, len)) => {
                if open > lit_start {
                    segments.push(Segment::Lit(text[lit_start..open].to_vec()));
                }
                segments.push(Segment::Repl(repl));
                pos = open + len;
                lit_start = pos;
            }
            None => pos = open + 1,
        }
    }
    if lit_start < text.len() {
        segments.push(Segment::Lit(text[lit_start..].to_vec()));
    }
    segments
}

/// Splits segments into words at the separators in their literal text.
fn split_words(segments: &[Segment], is_separator: fn(u8) -> bool) -> Vec<Word> {
    let mut words = Vec::new();
    let mut word = Word::new();
    for segment in segments {
        let Segment::Lit(lit) = segment else {
            word.push(segment.clone());
            continue;
        };
        for (i, piece) in lit.split(|&b| is_separator(b)).enumerate() {
            if i > 0 && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            if !piece.is_empty() {
                word.push(Segment::Lit(piece.to_vec()));
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Reads a replacement string at the start of `s` (which starts with `{`): the replacement and
/// its length, or `None` when the braces hold anything else.
fn parse_repl(
    s: &[u8],
    options: &TemplateOptions,
    names: &mut Vec<Vec<u8>>,
) -> Option<(Repl, usize)> {
    let close = s[1..].iter().position(|&b| b == b'}')? + 1;
    let inner = &s[1..close];
    let repl = match parse_builtin(inner, options.plus) {
        // `-I` takes the place of `{}`, and of the positional strings made from it.
        Some(
            Repl::All(Part::Whole) | Repl::Nth(_, Part::Whole) | Repl::FromEnd(_, Part::Whole),
        ) if options.replace.is_some() => None,
        Some(repl) => Some(repl),
        None if options.plus && super::plus::Edit::parse(inner).is_some() => {
            names.push(inner.to_vec());
            Some(Repl::Edit(names.len() - 1))
        }
        None if options.header.is_some() && !inner.is_empty() => {
            names.push(inner.to_vec());
            Some(Repl::Named(names.len() - 1))
        }
        None => None,
    }?;
    Some((repl, close + 1))
}

/// The replacement string GNU parallel always knows, from the text between the braces.
fn parse_builtin(inner: &[u8], plus: bool) -> Option<Repl> {
    let repl = match inner {
        b"#" => Repl::Seq,
        b"##" if plus => Repl::Total,
        b"0#" if plus => Repl::SeqPadded,
        b"%" => Repl::Slot,
        _ => {
            let (from_end, rest) = match inner.strip_prefix(b"-") {
                Some(rest) => (true, rest),
                None => (false, inner),
            };
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            // GNU parallel allows blanks between a position and its suffix: `{1 .}`.
            let suffix = match digits {
                0 => rest,
                _ => rest[digits..].trim_ascii_start(),
            };
            let part = match suffix {
                b"" => Part::Whole,
                b"." => Part::NoExt,
                b"/" => Part::Base,
                b"//" => Part::Dir,
                b"/." => Part::BaseNoExt,
                b".." if plus => Part::NoExts(2),
                b"..." if plus => Part::NoExts(3),
                b"/.." if plus => Part::BaseNoExts(2),
                b"/..." if plus => Part::BaseNoExts(3),
                b"+/" if plus => Part::DirPlus,
                b"+." if plus => Part::Exts(1),
                b"+.." if plus => Part::Exts(2),
                b"+..." if plus => Part::Exts(3),
                _ => return None,
            };
            match (digits, from_end) {
                (0, false) => Repl::All(part),
                (0, true) => return None,
                _ => match std::str::from_utf8(&rest[..digits])
                    .ok()?
                    .parse::<usize>()
                    .ok()?
                {
                    0 => return None,
                    n if from_end => Repl::FromEnd(n, part),
                    n => Repl::Nth(n - 1, part),
                },
            }
        }
    };
    Some(repl)
}

/// The `--plus` edit each name spells (none without `--plus`).
fn compile_edits(names: &[Vec<u8>], plus: bool) -> Vec<Option<Edit>> {
    names
        .iter()
        .map(|name| if plus { Edit::parse(name) } else { None })
        .collect()
}

/// What a render needs besides the template.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    args: &'a [Vec<u8>],
    /// In context replace, the value whose copy of a word is being rendered: `{}` gives it,
    /// while positions keep giving the whole command's.
    part: Option<&'a [Vec<u8>]>,
    seq: u64,
    slot: u32,
    names: &'a [Vec<u8>],
    edits: &'a [Option<Edit>],
    /// The number of tasks, once known.
    total: Option<u64>,
    header: Option<&'a Header>,
}

impl Ctx<'_> {
    /// Calls `f` with each value `repl` stands for, in order (none for a missing argument).
    fn each_value(&self, repl: Repl, mut f: impl FnMut(&[u8])) {
        let args = self.args;
        let mut digits = [0u8; 20];
        match repl {
            Repl::Seq => f(format_u64(self.seq, &mut digits)),
            Repl::Total => match self.total {
                Some(total) => f(format_u64(total, &mut digits)),
                None => f(b"{##}"),
            },
            Repl::SeqPadded => {
                let seq = format_u64(self.seq, &mut digits);
                let width = self
                    .total
                    .map_or(0, |t| format_u64(t, &mut [0u8; 20]).len());
                let mut padded = vec![b'0'; width.saturating_sub(seq.len())];
                padded.extend_from_slice(seq);
                f(&padded)
            }
            Repl::Slot => f(format_u64(u64::from(self.slot), &mut digits)),
            Repl::All(part) => self
                .part
                .unwrap_or(args)
                .iter()
                .for_each(|a| f(part.apply(a))),
            Repl::Nth(i, part) => args.get(i).into_iter().for_each(|a| f(part.apply(a))),
            Repl::FromEnd(n, part) => {
                let arg = args.len().checked_sub(n).map(|i| &args[i]);
                arg.into_iter().for_each(|a| f(part.apply(a)))
            }
            Repl::Edit(k) => {
                let values = self.part.unwrap_or(args);
                match &self.edits[k] {
                    Some(edit) => values.iter().for_each(|a| f(&edit.apply(a))),
                    None => values.iter().for_each(|a| f(a)),
                }
            }
            Repl::Named(k) => {
                let name = &self.names[k];
                match self.column(name) {
                    Some((i, part)) => args.get(i).into_iter().for_each(|a| f(part.apply(a))),
                    None => f(&[b"{", name.as_slice(), b"}"].concat()),
                }
            }
        }
    }

    /// The column and part `{name}` stands for: the header's column named `name`, or one
    /// named `name` less a suffix (`.`, `/`, `//`, `/.`).
    fn column(&self, name: &[u8]) -> Option<(usize, Part)> {
        let header = self.header?;
        if let Some(i) = header.position(name) {
            return Some((i, Part::Whole));
        }
        let suffixes: [(&[u8], Part); 4] = [
            (b"/.", Part::BaseNoExt),
            (b"//", Part::Dir),
            (b"/", Part::Base),
            (b".", Part::NoExt),
        ];
        suffixes.into_iter().find_map(|(suffix, part)| {
            let stem = name.strip_suffix(suffix)?;
            header.position(stem).map(|i| (i, part))
        })
    }
}

fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[start..]
}

/// Renders words the way the shell would split the quoted rendering: a replacement with several
/// values breaks its word between them, one with no value adds nothing, and a word that ends up
/// with no text and no value disappears.
fn render_words(words: &[Word], ctx: &Ctx) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(words.len() + ctx.args.len());
    for word in words {
        match word.as_slice() {
            [Segment::Lit(lit)] => {
                out.push(lit.clone());
                continue;
            }
            [Segment::Repl(repl)] => {
                ctx.each_value(*repl, |value| out.push(value.to_vec()));
                continue;
            }
            _ => {}
        }
        let mut current = Vec::new();
        let mut present = false;
        for segment in word {
            match segment {
                Segment::Lit(lit) => {
                    current.extend_from_slice(lit);
                    present = true;
                }
                Segment::Repl(repl) => {
                    let mut first = true;
                    ctx.each_value(*repl, |value| {
                        if !first {
                            out.push(std::mem::take(&mut current));
                        }
                        first = false;
                        current.extend_from_slice(value);
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

/// Whether a replacement string stands for each value of a group in context replace: those
/// that give all arguments do; positions (named columns included), `{#}` and `{%}` do not, and
/// keep standing for the whole group, as in GNU parallel.
fn repeats(segment: &Segment) -> bool {
    matches!(segment, Segment::Repl(Repl::All(_)))
}

/// [`render_words`] with context replace: a word holding a repeating replacement string is
/// rendered once for each of `parts`.
fn render_words_in_context(words: &[Word], ctx: &Ctx, parts: &[&[Vec<u8>]]) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(words.len() + ctx.args.len());
    for word in words {
        let word = std::slice::from_ref(word);
        if word[0].iter().any(repeats) {
            for part in parts {
                let ctx = Ctx {
                    part: Some(part),
                    ..*ctx
                };
                out.extend(render_words(word, &ctx));
            }
        } else {
            out.extend(render_words(word, ctx));
        }
    }
    out
}

/// [`render_shell`] with context replace: a run of non-blank text holding a repeating
/// replacement string is rendered once for each of `parts`, the copies separated by spaces.
fn render_shell_in_context(segments: &[Segment], ctx: &Ctx, parts: &[&[Vec<u8>]]) -> Vec<u8> {
    // The runs of non-blank text, each followed by the blanks after it.
    let mut runs: Vec<(Vec<Segment>, Vec<u8>)> = vec![(Vec::new(), Vec::new())];
    for segment in segments {
        let Segment::Lit(lit) = segment else {
            let run = runs.last_mut().expect("never empty");
            if !run.1.is_empty() {
                runs.push((vec![segment.clone()], Vec::new()));
            } else {
                run.0.push(segment.clone());
            }
            continue;
        };
        for &b in lit {
            let run = runs.last_mut().expect("never empty");
            if b.is_ascii_whitespace() {
                run.1.push(b);
            } else if run.1.is_empty() {
                match run.0.last_mut() {
                    Some(Segment::Lit(text)) => text.push(b),
                    _ => run.0.push(Segment::Lit(vec![b])),
                }
            } else {
                runs.push((vec![Segment::Lit(vec![b])], Vec::new()));
            }
        }
    }
    let mut out = Vec::with_capacity(128);
    for (run, blanks) in &runs {
        if run.iter().any(repeats) {
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                let ctx = Ctx {
                    part: Some(part),
                    ..*ctx
                };
                out.extend(render_shell(run, &ctx));
            }
        } else {
            out.extend(render_shell(run, ctx));
        }
        out.extend_from_slice(blanks);
    }
    out
}

fn render_shell(segments: &[Segment], ctx: &Ctx) -> Vec<u8> {
    render_segments(segments, ctx, push_quoted)
}

/// Literal text as it is, and the values of each replacement string joined by spaces, each
/// written by `push` (quoted for a shell, or as it is).
fn render_segments(segments: &[Segment], ctx: &Ctx, push: impl Fn(&mut Vec<u8>, &[u8])) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    for segment in segments {
        match segment {
            Segment::Lit(lit) => out.extend_from_slice(lit),
            Segment::Repl(repl) => {
                let mut first = true;
                ctx.each_value(*repl, |value| {
                    if !first {
                        out.push(b' ');
                    }
                    first = false;
                    push(&mut out, value);
                });
            }
        }
    }
    out
}

impl Part {
    fn apply(self, value: &[u8]) -> &[u8] {
        match self {
            Part::Whole => value,
            Part::NoExt => without_ext(value),
            Part::Base => basename(value),
            Part::Dir => dirname(value),
            Part::BaseNoExt => without_ext(basename(value)),
            Part::NoExts(n) => last_exts(value, n).map_or(value, |dot| &value[..dot]),
            Part::BaseNoExts(n) => {
                let base = basename(value);
                last_exts(base, n).map_or(base, |dot| &base[..dot])
            }
            // GNU's `s:/[^/]*$:: || s:.*$::`.
            Part::DirPlus => value
                .iter()
                .rposition(|&b| b == b'/')
                .map_or(&[], |slash| &value[..slash]),
            // GNU's `s:.*\.:: || s:.*$::`: whatever follows the last dot, slashes included.
            Part::Exts(1) => value
                .iter()
                .rposition(|&b| b == b'.')
                .map_or(&[], |dot| &value[dot + 1..]),
            Part::Exts(n) => last_exts(value, n).map_or(&[], |dot| &value[dot + 1..]),
        }
    }
}

/// Where the last `n` extensions of `value` start (the position of their first dot): GNU
/// parallel's `(\.[^/.]*){n}$`, `None` when `value` does not end with that many.
fn last_exts(value: &[u8], n: u8) -> Option<usize> {
    let mut end = value.len();
    for _ in 0..n {
        let dot = value[..end].iter().rposition(|&b| b == b'.' || b == b'/')?;
        if value[dot] != b'.' {
            return None;
        }
        end = dot;
    }
    Some(end)
}

/// `{.}`: drops the last `.` and what follows when no `/` follows it (GNU's `s:\.[^/.]*$::`).
fn without_ext(value: &[u8]) -> &[u8] {
    match value.iter().rposition(|&b| b == b'.') {
        Some(dot) if !value[dot..].contains(&b'/') => &value[..dot],
        _ => value,
    }
}

/// `{/}`: what follows the last `/`.
fn basename(value: &[u8]) -> &[u8] {
    value
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(value, |slash| &value[slash + 1..])
}

/// `{//}`: Perl's `File::Basename::dirname`, which GNU parallel uses: like dirname(1), so
/// `foo` → `.`, `/foo` → `/`, `a/b/` → `a`, `/` → `/`.
fn dirname(value: &[u8]) -> &[u8] {
    fn split(path: &[u8]) -> (&[u8], &[u8]) {
        path.iter()
            .rposition(|&b| b == b'/')
            .map_or((b"./", path), |slash| (&path[..=slash], &path[slash + 1..]))
    }
    fn strip_trailing_slashes(dir: &[u8]) -> &[u8] {
        let keep = dir.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        if keep == 0 {
            &dir[..dir.len().min(1)]
        } else {
            &dir[..keep]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{InputSpec, SourceSpec, open};
    use crate::input::{test_join, test_list as list};
    use std::process::Command;

    fn template(text: &str) -> Template {
        Template::parse(&[text.to_string()]).expect("valid template")
    }

    fn render(text: &str, args: &str) -> Rendered {
        template(text).render(
            &Record {
                args: list(args),
                ..Record::default()
            },
            7,
            3,
        )
    }

    fn exec(text: &str, args: &str) -> String {
        match render(text, args) {
            Rendered::Exec(argv) => test_join(&argv, "|"),
            other => panic!("expected Exec for {text:?}, got {other:?}"),
        }
    }

    fn shell(text: &str, args: &str) -> String {
        match render(text, args) {
            Rendered::Shell(script) => text_of(script),
            other => panic!("expected Shell for {text:?}, got {other:?}"),
        }
    }

    /// The template rendered as a shell script whatever its mode.
    fn as_shell(text: &str, args: &[&str], seq: u64, slot: u32) -> String {
        let options = TemplateOptions::default();
        let text = command_text(&[text], &options).expect("valid template");
        let args = bytes_of(args);
        let ctx = Ctx {
            args: &args,
            part: None,
            seq,
            slot,
            names: &[],
            edits: &[],
            total: None,
            header: None,
        };
        text_of(render_shell(
            &parse_segments(&text, &options, &mut Vec::new()),
            &ctx,
        ))
    }

    fn text_of(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("UTF-8")
    }

    fn bytes_of(values: &[&str]) -> Vec<Vec<u8>> {
        values.iter().map(|v| v.as_bytes().to_vec()).collect()
    }

    fn words(items: &str) -> Vec<String> {
        items.split('|').map(str::to_string).collect()
    }

    fn have(program: &str) -> bool {
        let probe = Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output();
        probe.is_ok_and(|o| o.status.success())
    }

    /// Replacement string, then the argv of `echo` with it for "sub.dir/foo.jpg|x/y.tar.gz",
    /// `{#}` = 7 and `{%}` = 3.
    const REPLACEMENTS: &str = "\
        {} echo|sub.dir/foo.jpg|x/y.tar.gz\n{.} echo|sub.dir/foo|x/y.tar\n\
        {/} echo|foo.jpg|y.tar.gz\n{//} echo|sub.dir|x\n{/.} echo|foo|y.tar\n{#} echo|7\n\
        {%} echo|3\n{1} echo|sub.dir/foo.jpg\n{2} echo|x/y.tar.gz\n{1.} echo|sub.dir/foo\n\
        {2/} echo|y.tar.gz\n{1//} echo|sub.dir\n{2/.} echo|y.tar\n{-1} echo|x/y.tar.gz\n\
        {-2/.} echo|foo\n{01} echo|sub.dir/foo.jpg\n{3} echo\n{-3} echo\n{#}{%} echo|73";

    #[test]
    fn resume_keys_match_own_commands_and_refuse_foreign_ones() {
        let rec = |args: &[&str]| Record {
            args: bytes_of(args),
            ..Record::default()
        };
        for text in [
            "echo {}",
            "echo {} | wc -c",
            "gzip --keep {}",
            "@sleep {}",
            "echo x{}y {#}",
        ] {
            let t = template(text);
            for args in [&["a"][..], &["a b"], &["it's"], &[""]] {
                let cmd = Template::display(&t.render(&rec(args), 7, 2));
                assert_eq!(
                    t.resume_key(&cmd).as_deref(),
                    Some(cmd.as_slice()),
                    "{text} {args:?}"
                );
            }
            assert_eq!(t.resume_key(b"rm -rf /x"), None, "{text}");
        }
        // The slot varies between runs: it is not part of the key.
        let t = template("echo {%} {}");
        let a = Template::display(&t.render(&rec(&["v"]), 1, 1));
        let b = Template::display(&t.render(&rec(&["v"]), 1, 2));
        assert_ne!(a, b);
        assert_eq!(t.resume_key(&a), t.resume_key(&b));
        let c = Template::display(&t.render(&rec(&["w"]), 1, 1));
        assert_ne!(t.resume_key(&a), t.resume_key(&c));
    }

    #[test]
    fn every_replacement_string() {
        for line in REPLACEMENTS.lines() {
            let (repl, want) = line.trim().split_once(' ').expect("two fields");
            assert_eq!(
                exec(&format!("echo {repl}"), "sub.dir/foo.jpg|x/y.tar.gz"),
                want
            );
        }
        // GNU parallel allows blanks between a position and its suffix.
        assert_eq!(
            exec("echo {1 } {2 /.} {-1\t.}", "a.b|c/d.e"),
            "echo|a.b|d|c/d"
        );
    }

    /// Value, then `{.}`, `{/}`, `{//}` and `{/.}` of it, as GNU parallel 20221122 gives them.
    const PATHS: &str = "\
        sub.dir/foo.jpg|sub.dir/foo|foo.jpg|sub.dir|foo\nsub.dir/bar|sub.dir/bar|bar|sub.dir|bar\n\
        foo|foo|foo|.|foo\n/foo|/foo|foo|/|foo\na/b/|a/b/||a|\na/b//|a/b//||a|\na//b|a//b|b|a|b\n\
        //a|//a|a|/|a\n/|/||/|\n//|//||/|\n|||.|\n.||.|.|\n./a|./a|a|.|a\n../a|../a|a|..|a\n\
        a/./|a/./||a|\n.bashrc||.bashrc|.|\na.b.c|a.b|a.b.c|.|a.b\na.|a|a.|.|a\n/x.y/z|/x.y/z|z|/x.y|z";

    #[test]
    fn path_parts_match_gnu() {
        for line in PATHS.lines() {
            let fields = list(line.trim());
            let [value, no_ext, base, dir, base_no_ext] = &fields[..] else {
                panic!("bad line {line:?}");
            };
            assert_eq!(without_ext(value), no_ext, "{{.}} of {value:?}");
            assert_eq!(basename(value), base, "{{/}} of {value:?}");
            assert_eq!(dirname(value), dir, "{{//}} of {value:?}");
            assert_eq!(
                Part::BaseNoExt.apply(value),
                base_no_ext,
                "{{/.}} of {value:?}"
            );
        }
    }

    #[test]
    fn words_are_joined_into_one_command_line() {
        let given = ["echo", "{}", "|", "wc", "-c"].map(String::from);
        let split = Template::parse(&given).expect("valid");
        let record = Record {
            args: list("a b"),
            ..Record::default()
        };
        assert_eq!(
            split.render(&record, 1, 1),
            template("echo {} | wc -c").render(&record, 1, 1)
        );
        let spaced = Template::parse(&words("echo|{} x"))
            .expect("valid")
            .render(&record, 1, 1);
        assert_eq!(spaced, Rendered::Exec(list("echo|a b|x")));
    }

    #[test]
    fn args_are_appended_only_without_replacement_strings() {
        assert_eq!(exec("echo", "a|b c"), "echo|a|b c");
        assert_eq!(exec("echo x", "a"), "echo|x|a");
        assert_eq!(exec("echo {#}", "a"), "echo|7");
        assert_eq!(exec("echo {%}", "a"), "echo|3");
        assert_eq!(exec("echo {2}", "a|b"), "echo|b");
        assert_eq!(shell("echo $0", "a b"), "echo $0 'a b'");
        assert_eq!(shell("echo {foo}", "a"), "echo {foo} a");
    }

    #[test]
    fn several_values_split_words_like_the_shell() {
        assert_eq!(exec("echo x{}y", "a|b c"), "echo|xa|b cy");
        assert_eq!(exec("echo {}{}", "a|b"), "echo|a|ba|b");
        assert_eq!(exec("echo {.}", "a.1|b.2"), "echo|a|b");
        assert_eq!(exec("echo {}", "|"), "echo||");
        assert_eq!(exec("echo {}", ""), "echo");
        assert_eq!(exec("echo x{3}y {3}", "a"), "echo|xy");
        assert_eq!(shell("echo {} | cat", "a|b c"), "echo a 'b c' | cat");
        assert_eq!(shell("echo {3}x | cat", "a"), "echo x | cat");
        assert_eq!(shell("echo {} | cat", "|"), "echo '' '' | cat");
    }

    #[test]
    fn unknown_braces_stay_literal() {
        assert_eq!(shell("echo { } {}", "v"), "echo { } v");
        assert_eq!(shell("echo ${HOME} {}", "v"), "echo ${HOME} v");
        assert_eq!(shell("awk '{print $1}' {}", "v"), "awk '{print $1}' v");
        assert_eq!(shell("echo {{}} {}} {{}", "v"), "echo {v} v} {v");
        for literal in "{0} {-0} {-} {..} {+/} {1#} {a} {1x} {".split(' ') {
            let text = format!("echo {literal} {{}}");
            assert_eq!(shell(&text, "v"), format!("echo {literal} v"), "{literal}");
        }
    }

    #[test]
    fn perl_expressions_are_refused() {
        for text in ["echo {=1=}", "echo {= s/a/b/ =} {}", "x{=uc=}y"] {
            let err = Template::parse(&[text.to_string()]).expect_err(text);
            assert!(
                matches!(err, TemplateError::PerlExpression(_)),
                "{text}: {err:?}"
            );
        }
    }

    /// Commands that run directly, one per line.
    const DIRECT: &str = "echo {}\nsleep 1\n/bin/echo a-b_c.d/e,f:g+h@i%j^k=l\n\
        echo {} {.} {#} {%}\n{} x\ntrue\nenv A=1 {}";

    /// Commands that need a shell, one per line.
    const NEED_SHELL: &str = "echo {} | wc -c\necho a; b\necho 'a'\necho \"a\"\necho $HOME\n\
        echo a&\necho >x\necho <x\necho (x)\necho *\necho ?\necho [a]\necho ~\necho #c\n\
        echo a\\b\necho `x`\necho !x\necho {a,b}\necho\tx\nA=1 env\nX={} env\ncd {}\n\
        export X={}\nset -e\nsource f\n. f\n:\nif x\nfor x\nwhile x\ncase x\nexit 1\neval {}\n\
        exec x\nulimit -n\numask\nread x\nwait\ntrap x\nkill 1";

    #[test]
    fn exec_or_shell() {
        for text in DIRECT.lines() {
            assert!(matches!(render(text, "a"), Rendered::Exec(_)), "{text:?}");
        }
        for text in NEED_SHELL.lines().chain(["echo\nx"]) {
            assert!(matches!(render(text, "a"), Rendered::Shell(_)), "{text:?}");
        }
    }

    #[test]
    fn shell_values_are_quoted_once_each() {
        let injection = "a; touch /tmp/pwned";
        assert_eq!(
            shell("echo {} | cat", injection),
            "echo 'a; touch /tmp/pwned' | cat"
        );
        assert_eq!(shell("echo {} | cat", "it's"), "echo 'it'\\''s' | cat");
        assert_eq!(shell("echo {} | cat", "|$(x)"), "echo '' '$(x)' | cat");
        assert_eq!(shell("{} | cat", "a=b"), "'a=b' | cat");
        assert_eq!(shell("{} | cat", "if"), "'if' | cat");
        // Like GNU parallel, values are quoted for the top level even inside template quotes.
        assert_eq!(shell("echo \"{}\"", "a b"), "echo \"'a b'\"");
    }

    #[test]
    fn injection_never_runs() {
        if !have("sh") {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let marker = dir.path().join("pwned");
        let value = format!(
            "a; touch {0}; $(touch {0}) `touch {0}` ' \" \\",
            marker.display()
        );
        let script = shell("printf '%s\\n' {} | cat", &value);
        let out = Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("run sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{value}\n"));
        assert!(!marker.exists());
    }

    const TRICKY: &[&str] = &[
        "",
        "a",
        "a b",
        " lead",
        "trail ",
        "it's",
        "''",
        "\"",
        "a\\b",
        "$HOME",
        "$(id)",
        "`id`",
        "*",
        "?",
        "[a]",
        "~",
        "~/x",
        "#c",
        "a;b",
        "a|b",
        "a&b",
        "a>b",
        "<",
        "(x)",
        "{}",
        "{a,b}",
        "a=b",
        "-n",
        "--",
        "é",
        "tab\tx",
        "new\nline",
        "if",
        "!",
        "^",
        "%",
        "@",
        ",",
        ":",
    ];

    const EXEC_TEMPLATES: &str = "printf %s/\nprintf %s/ {}\nprintf %s/ x{}y {.} {/} {//} {/.}\n\
        printf %s/ {1} {2}z {3} z{3} {-1} {#}{%}\nprintf %s/ {}{} {1}{2}\n{1} {2}";

    #[test]
    fn exec_matches_the_shell_parse() {
        for text in EXEC_TEMPLATES.lines() {
            let template = template(text);
            for (i, a) in TRICKY.iter().enumerate() {
                let b = TRICKY[(i * 7 + 3) % TRICKY.len()];
                for args in [&[][..], &[*a][..], &[*a, b][..]] {
                    let script = as_shell(text, args, 12, 4);
                    let record = Record {
                        args: bytes_of(args),
                        ..Record::default()
                    };
                    let argv = match template.render(&record, 12, 4) {
                        Rendered::Exec(argv) => argv.into_iter().map(text_of).collect(),
                        Rendered::Shell(script) if script.is_empty() => Vec::new(),
                        other => panic!("{other:?}"),
                    };
                    assert_eq!(
                        shlex::split(&script),
                        Some(argv),
                        "{text:?} {args:?}: {script}"
                    );
                }
            }
        }
    }

    #[test]
    fn exec_matches_a_real_shell() {
        if !have("sh") || !have("printf") {
            return;
        }
        let text = "printf %s/ x{}y {.} {/} {//} {2} {3}";
        for (i, a) in TRICKY.iter().enumerate() {
            let args = [*a, TRICKY[(i + 1) % TRICKY.len()]];
            let record = Record {
                args: bytes_of(&args),
                ..Record::default()
            };
            let Rendered::Exec(argv) = template(text).render(&record, 1, 1) else {
                panic!("expected Exec");
            };
            let argv: Vec<String> = argv.into_iter().map(text_of).collect();
            let direct = Command::new(&argv[0])
                .args(&argv[1..])
                .output()
                .expect("run printf");
            let script = as_shell(text, &args, 1, 1);
            let via_sh = Command::new("sh")
                .args(["-c", &script])
                .output()
                .expect("run sh");
            assert_eq!(direct.stdout, via_sh.stdout, "{args:?}: {script}");
        }
    }

    #[test]
    fn kernels() {
        let kernel = |name: &str, args: &str| Rendered::Kernel {
            name: name.into(),
            args: words(args),
        };
        assert_eq!(template("@sleep {}").kernel_name(), Some("sleep"));
        assert_eq!(render("@sleep {}", "10"), kernel("sleep", "10"));
        assert_eq!(render("@noop", "a b|c"), kernel("noop", "a b|c"));
        assert_eq!(
            render(" @spin {1}x\t{#} ; {3}", "a"),
            kernel("spin", "ax|7|;")
        );
        assert_eq!(template("echo @x").kernel_name(), None);
        for bad in ["@", "@{}", "@a{1}"] {
            let err = Template::parse(&words(&format!("{bad}|x"))).expect_err(bad);
            assert_eq!(err, TemplateError::BadKernelName(bad.into()));
            assert!(err.to_string().contains(&format!("`{bad}`")));
        }
    }

    #[test]
    fn without_a_command_each_input_is_the_command() {
        {
            let t = Template::parse::<&str>(&[]).expect("no command is allowed");
            let rec = Record {
                args: bytes_of(&["echo a; echo 'b c'", "d"]),
                ..Record::default()
            };
            let rendered = t.render(&rec, 1, 1);
            assert_eq!(rendered, Rendered::Shell(b"echo a; echo 'b c' d".to_vec()));
            assert_eq!(
                t.resume_key(b"echo a; echo 'b c' d").as_deref(),
                Some(&b"echo a; echo 'b c' d"[..])
            );
        }
    }

    #[test]
    fn dry_run_display() {
        let show = |text: &str, args: &str| text_of(Template::display(&render(text, args)));
        assert_eq!(show("echo", "a b|it's||-n"), "echo 'a b' 'it'\\''s' '' -n");
        assert_eq!(show("echo {} | wc -c", "a b"), "echo 'a b' | wc -c");
        assert_eq!(show("@sleep {}", "1 0"), "@sleep '1 0'");
        assert_eq!(show("echo {2}", "a"), "echo");
        assert_eq!(show("{2}", "a"), "");
    }

    #[test]
    fn bytes_that_are_not_utf8_render_unchanged() {
        let record = Record {
            args: vec![b"d\xff/f\xfe.x".to_vec(), b"a b\x80".to_vec()],
            ..Record::default()
        };
        let exec = Template::parse(&["printf %s/ {1} {1.} {1/} {1//} {2}"]).expect("valid");
        let want: Vec<&[u8]> = vec![
            b"printf",
            b"%s/",
            b"d\xff/f\xfe.x",
            b"d\xff/f\xfe",
            b"f\xfe.x",
            b"d\xff",
            b"a b\x80",
        ];
        assert_eq!(
            exec.render(&record, 1, 1),
            Rendered::Exec(bytes_list(&want))
        );
        let shell = Template::parse(&["echo {2} | cat"]).expect("valid");
        assert_eq!(
            shell.render(&record, 1, 1),
            Rendered::Shell(b"echo 'a b\x80' | cat".to_vec())
        );
        // A template may hold such bytes too, and resume keys are bytes.
        let text = std::ffi::OsStr::from_bytes(b"echo \xfe{%} {}");
        let t = Template::parse(&[text]).expect("valid");
        let a = Template::display(&t.render(&record, 1, 1));
        let b = Template::display(&t.render(&record, 1, 2));
        assert_eq!(a, b"echo \xfe1 'd\xff/f\xfe.x' 'a b\x80'");
        assert_eq!(t.resume_key(&a), t.resume_key(&b));
        assert!(t.resume_key(&a).is_some());
        assert_eq!(t.resume_key(b"echo \xfd1 x"), None);
    }

    fn bytes_list(values: &[&[u8]]) -> Vec<Vec<u8>> {
        values.iter().map(|v| v.to_vec()).collect()
    }

    #[test]
    fn tag_joins_with_spaces() {
        assert_eq!(
            Template::tag(&Record {
                args: list("a|b c|"),
                ..Record::default()
            }),
            b"a b c "
        );
        assert_eq!(Template::tag(&Record::default()), b"");
    }

    /// Runs each rendered command, for comparing with what GNU parallel prints.
    fn run_all(text: &str, spec: &InputSpec) -> Vec<u8> {
        let records = open(spec, Box::new(std::io::empty())).expect("open");
        let mut out = Vec::new();
        for (i, record) in records.enumerate() {
            let output = match template(text).render(&record.expect("record"), i as u64 + 1, 1) {
                Rendered::Exec(argv) => Command::new(OsStr::from_bytes(&argv[0]))
                    .args(argv[1..].iter().map(|a| OsStr::from_bytes(a)))
                    .output(),
                Rendered::Shell(script) => Command::new("sh")
                    .arg("-c")
                    .arg(OsStr::from_bytes(&script))
                    .output(),
                other => panic!("{other:?}"),
            };
            out.extend(output.expect("run").stdout);
        }
        out
    }

    #[test]
    fn same_output_as_gnu_parallel() {
        if !crate::test_support::require_gnu_parallel("the comparison with GNU parallel") {
            return;
        }
        let values = list("sub.dir/foo.jpg|a b|it's||$HOME|x;y|/|a/b/");
        let templates = "printf %s/\nprintf %s/ {} {.} {/} {//} {/.} {#} {%}\n\
            printf %s/ x{1}y {2.} {2/} {2//} {2/.} {3} {-1}\n\
            printf '<%s>' {} | tr a-z A-Z; echo\nprintf %s/ { } {foo} {{}} {1 }";
        for text in templates.lines() {
            let sources = vec![
                (SourceSpec::Args(values.clone()), false),
                (SourceSpec::Args(list("q.r/s|")), false),
            ];
            let got = run_all(
                text,
                &InputSpec {
                    sources,
                    colsep: None,
                    ..InputSpec::default()
                },
            );
            let mut gnu = Command::new("parallel");
            gnu.args(["--will-cite", "-j1", "-k", text, ":::"])
                .args(values.iter().map(|v| OsStr::from_bytes(v)));
            let want = gnu
                .args([":::", "q.r/s", ""])
                .output()
                .expect("run parallel")
                .stdout;
            let (got, want) = (
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
            );
            assert_eq!(got, want, "{text:?}");
        }
    }
}
