//! Several input records per command, as GNU parallel's `-n`, `-N`, `-X`, `-m`, `-L`, `-s` and
//! `--xargs` put them, and the limit on the size of a command line.
//!
//! A command takes records while its command line fits: under `-s` (its length as `--dry-run`
//! shows it, which must stay below the number given) and under the system's own limit on the
//! arguments of a new program (ARG_MAX less the environment, and 128 KiB for any single
//! argument, which a shell script is). The size of a command of many records is estimated as
//! the size of the command with the first record plus, for each further record, what it adds
//! to the command with none and the separators and repeated text a record of its width adds
//! beyond that (measured once). That is exact for GNU parallel's replacement strings except
//! positional ones, where it is too high, and the estimate is checked by rendering the command
//! once.
//! With `-X` and `-m`, the last command when the input ends is spread over the job slots, as
//! GNU parallel spreads it: `parallel -j3 -X echo ::: a b c d e f g` runs `a b c`, `d e f`, `g`.

use std::collections::VecDeque;

use super::Record;
use super::source::InputError;
use super::template::{Rendered, Template};

/// How records are grouped into commands.
#[derive(Debug, Clone)]
pub struct Grouping {
    /// At most this many records per command (`-n`, `-N`, `-L`); 0 means one record whose
    /// arguments are left out (`-N0`). `None`: as many as fit.
    pub max_args: Option<usize>,
    /// `-s`: the command line, as `--dry-run` shows it, is shorter than this.
    pub max_chars: Option<usize>,
    /// `-X`, `-m`: when the input ends, the records left are spread over this many job slots.
    pub spread_over: Option<usize>,
    /// The command, to measure command lines.
    pub template: Template,
    /// The system's limits.
    pub limit: ArgLimit,
}

/// What the system lets a new program take as arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgLimit {
    /// Bytes for arguments, their pointers included: ARG_MAX less the environment and a margin.
    pub total: usize,
    /// Bytes in any one argument, its terminating NUL included (MAX_ARG_STRLEN).
    pub single: usize,
}

/// Room kept free for what the worker adds to a command's environment.
const ENV_MARGIN: usize = 4096;
/// Linux's MAX_ARG_STRLEN: 32 pages of 4 KiB.
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// The bytes a pointer takes in the argument and environment vectors.
const POINTER: usize = std::mem::size_of::<usize>();

impl ArgLimit {
    /// The limits of this system for a program started with this process's environment.
    pub fn system() -> ArgLimit {
        // SAFETY: sysconf has no preconditions.
        let arg_max = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
        // Linux never allows more than 3/4 of the default 8 MiB stack, whatever the stack limit
        // (glibc reports a quarter of an unlimited stack as ARG_MAX).
        let arg_max = usize::try_from(arg_max)
            .unwrap_or(128 * 1024)
            .clamp(4096, 6 << 20);
        let env: usize = std::env::vars_os()
            .map(|(k, v)| k.len() + v.len() + 2 + POINTER)
            .sum();
        ArgLimit {
            total: arg_max.saturating_sub(env + ENV_MARGIN + POINTER).max(4096),
            single: MAX_ARG_STRLEN,
        }
    }

    /// The longest command line troop builds here, in the bytes `--dry-run` shows: what
    /// `--show-limits` reports as the usable size.
    pub fn usable(self) -> usize {
        self.total.min(self.single - 1)
    }
}

/// The size of one rendered command.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    /// Bytes it takes in the new program's argument vector.
    argv: usize,
    /// The longest single argument (for a shell command, the script), NUL included.
    longest: usize,
    /// The length of its command line as `--dry-run` shows it.
    shown: usize,
}

impl Size {
    /// The size of `rendered`; its length as shown only when `shown` (it costs quoting).
    fn of(rendered: &Rendered, shown: bool) -> Size {
        let shown = match shown {
            true => Template::display(rendered).len(),
            false => 0,
        };
        match rendered {
            Rendered::Exec(argv) => Size {
                argv: argv.iter().map(|a| a.len() + 1 + POINTER).sum::<usize>() + POINTER,
                longest: argv.iter().map(|a| a.len() + 1).max().unwrap_or(0),
                shown,
            },
            // `$SHELL -c SCRIPT`: the shell's path is far shorter than the margin.
            Rendered::Shell(script) => Size {
                argv: script.len() + 1 + 64 + 4 * POINTER,
                longest: script.len() + 1,
                shown,
            },
            Rendered::Kernel { name, args } => {
                let len = name.len() + args.iter().map(|a| a.len() + 1).sum::<usize>();
                Size {
                    argv: len + 1,
                    longest: len + 1,
                    shown,
                }
            }
        }
    }
}

impl Grouping {
    /// Renders `record` as a command that could run at any sequence number and slot.
    fn size(&self, record: &Record) -> Size {
        let rendered = self.template.render(record, u64::MAX, u32::MAX);
        Size::of(&rendered, self.max_chars.is_some())
    }

    fn fits(&self, size: Size) -> bool {
        size.argv <= self.limit.total
            && size.longest <= self.limit.single
            && self.max_chars.is_none_or(|max| size.shown < max)
    }
}

/// The size of a plain command (see [`Grouper::plain`]) of `record` alone, and what `record`
/// adds to a command.
fn plain_sizes((argv, longest, copies): (usize, usize, usize), record: &Record) -> (Size, Size) {
    let values: usize = record.args.iter().map(|a| a.len() + 1 + POINTER).sum();
    let widest = record.args.iter().map(|a| a.len() + 1).max().unwrap_or(0);
    let adds = Size {
        argv: copies * values,
        longest: 0,
        shown: 0,
    };
    let alone = Size {
        argv: argv + adds.argv,
        longest: if copies > 0 {
            longest.max(widest)
        } else {
            longest
        },
        shown: 0,
    };
    (alone, adds)
}

/// Groups records as [`Grouping`] says, reading ahead as far as one command needs.
#[derive(Debug)]
pub(crate) struct Grouper {
    grouping: Grouping,
    /// Records read and not yet grouped, each with the size of a command of it alone and what
    /// it adds to a command.
    pending: VecDeque<(Record, Size, Size)>,
    /// The size of the command with no record.
    empty: Size,
    /// For records of each number of arguments: what a record adds to a command that holds one
    /// already, beyond what it adds to the command with none (the separators and the text
    /// repeated around it). It does not depend on the values, so it is measured once.
    extra: std::collections::HashMap<usize, [isize; 3]>,
    /// For a command whose size is a plain sum over the values (see
    /// [`Template::plain_shape`]), without `-s`: its literal words' bytes in the argument
    /// vector, the longest of them, and the number of `{}` words. Records are then measured
    /// without rendering, exactly.
    plain: Option<(usize, usize, usize)>,
    /// The input has ended (or failed, with `failed` holding why).
    input_done: bool,
    failed: Option<InputError>,
    spread_done: bool,
    max_args: Option<usize>,
    /// The most values a command held so far: room reserved for the next one.
    last_len: usize,
}

impl Grouper {
    pub fn new(grouping: Grouping) -> Grouper {
        let max_args = grouping.max_args;
        let empty = grouping.size(&Record::default());
        let plain = match grouping.max_chars {
            Some(_) => None,
            None => grouping.template.plain_shape().map(|(literals, copies)| {
                let argv = literals.iter().map(|l| l + 1 + POINTER).sum::<usize>() + POINTER;
                let longest = literals.iter().map(|l| l + 1).max().unwrap_or(0);
                (argv, longest, copies)
            }),
        };
        Grouper {
            grouping,
            empty,
            plain,
            extra: std::collections::HashMap::new(),
            pending: VecDeque::new(),
            input_done: false,
            failed: None,
            spread_done: false,
            max_args,
            last_len: 0,
        }
    }

    /// Reads records until `n` are pending or the input ends; returns how many are pending.
    fn fill(
        &mut self,
        n: usize,
        read: &mut dyn FnMut() -> Option<Result<Record, InputError>>,
    ) -> usize {
        while self.pending.len() < n && !self.input_done {
            match read() {
                Some(Ok(record)) => {
                    if let Some(plain) = self.plain {
                        let (alone, adds) = plain_sizes(plain, &record);
                        self.pending.push_back((record, alone, adds));
                        continue;
                    }
                    let alone = self.grouping.size(&record);
                    let extra = match self.extra.get(&record.args.len()) {
                        Some(extra) => *extra,
                        None => {
                            let twice = Record::merge(&[record.clone(), record.clone()]);
                            let twice = self.grouping.size(&twice);
                            let extra = |twice: usize, empty: usize, alone: usize| {
                                (twice + empty) as isize - 2 * alone as isize
                            };
                            let extra = [
                                extra(twice.argv, self.empty.argv, alone.argv),
                                extra(twice.longest, self.empty.longest, alone.longest),
                                extra(twice.shown, self.empty.shown, alone.shown),
                            ];
                            self.extra.insert(record.args.len(), extra);
                            extra
                        }
                    };
                    let adds = |alone: usize, extra: isize, empty: usize| {
                        (alone as isize + extra - empty as isize).max(0) as usize
                    };
                    let adds = Size {
                        argv: adds(alone.argv, extra[0], self.empty.argv),
                        longest: adds(alone.longest, extra[1], self.empty.longest),
                        shown: adds(alone.shown, extra[2], self.empty.shown),
                    };
                    self.pending.push_back((record, alone, adds));
                }
                Some(Err(error)) => {
                    self.failed = Some(error);
                    self.input_done = true;
                }
                None => self.input_done = true,
            }
        }
        self.pending.len()
    }

    fn merged(&self, n: usize) -> Record {
        let records: Vec<Record> = self
            .pending
            .iter()
            .take(n)
            .map(|(r, ..)| r.clone())
            .collect();
        Record::merge(&records)
    }

    /// The next command's record, made of as many input records as fit.
    pub fn next(
        &mut self,
        read: &mut dyn FnMut() -> Option<Result<Record, InputError>>,
    ) -> Option<Result<Record, InputError>> {
        if self.fill(1, read) == 0 {
            return self.failed.take().map(Err);
        }
        if self.max_args == Some(0) {
            self.pending.pop_front();
            return Some(Ok(Record::default()));
        }
        if let Some(plain) = self.plain {
            return Some(self.next_plain(plain, read));
        }
        let max = self.max_args.unwrap_or(usize::MAX);
        // Take records while the estimate fits.
        let mut size = self.pending[0].1;
        let mut n = 1;
        while n < max && self.fill(n + 1, read) > n {
            let (_, alone, adds) = self.pending[n];
            let next = Size {
                argv: size.argv + adds.argv,
                // A script grows with each record; an argument vector does not.
                longest: (size.longest + adds.longest).max(alone.longest),
                shown: size.shown + adds.shown,
            };
            if !self.grouping.fits(next) {
                break;
            }
            size = next;
            n += 1;
        }
        // Check the estimate; shrink in the rare case it was short. A plain command's is exact.
        let fits = |n: usize, me: &Self| me.grouping.fits(me.grouping.size(&me.merged(n)));
        if self.plain.is_some() {
            if !self.grouping.fits(size) {
                return Some(Err(self.too_long()));
            }
        } else if !fits(n, self) {
            if n == 1 {
                return Some(Err(self.too_long()));
            }
            let (mut lo, mut hi) = (1, n);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if fits(mid, self) { lo = mid } else { hi = mid }
            }
            if !fits(lo, self) {
                return Some(Err(self.too_long()));
            }
            n = lo;
        }
        // At the end of the input, -X and -m spread what is left over the job slots.
        if let Some(slots) = self.grouping.spread_over
            && !self.spread_done
            && self.input_done
            && self.failed.is_none()
            && self.pending.len() == n
            && n > 1
        {
            self.spread_done = true;
            let per = n.div_ceil(slots.max(1));
            self.max_args = Some(per);
            n = per;
        }
        Some(Ok(Record::merge_owned(
            self.pending.drain(..n).map(|(r, ..)| r),
        )))
    }

    /// [`Grouper::next`] for a plain command (see [`Grouper::plain`]), whose sizes are exact:
    /// records are merged as they are read, so only the one that did not fit waits in `pending`.
    fn next_plain(
        &mut self,
        plain: (usize, usize, usize),
        read: &mut dyn FnMut() -> Option<Result<Record, InputError>>,
    ) -> Result<Record, InputError> {
        let mut size = self.pending[0].1;
        if !self.grouping.fits(size) {
            return Err(self.too_long());
        }
        let max = self.max_args.unwrap_or(usize::MAX);
        let (first, ..) = self.pending.pop_front().expect("filled above");
        let mut args = first.args;
        args.reserve(self.last_len.saturating_sub(args.len()));
        let mut ends = Vec::with_capacity(self.last_len.min(max));
        ends.push(args.len());
        while ends.len() < max && self.fill(1, read) > 0 {
            let (_, alone, adds) = self.pending[0];
            let next = Size {
                argv: size.argv + adds.argv,
                longest: (size.longest + adds.longest).max(alone.longest),
                shown: size.shown + adds.shown,
            };
            if !self.grouping.fits(next) {
                break;
            }
            size = next;
            let (record, ..) = self.pending.pop_front().expect("filled above");
            args.extend(record.args);
            ends.push(args.len());
        }
        self.last_len = self.last_len.max(args.len());
        // At the end of the input, -X and -m spread what is left over the job slots: the
        // records past this command's share wait in `pending` again, in order.
        let n = ends.len();
        if let Some(slots) = self.grouping.spread_over
            && !self.spread_done
            && self.input_done
            && self.failed.is_none()
            && self.pending.is_empty()
            && n > 1
        {
            self.spread_done = true;
            let per = n.div_ceil(slots.max(1));
            self.max_args = Some(per);
            let mut rest = args.split_off(ends[per - 1]).into_iter();
            let mut start = ends[per - 1];
            for &end in &ends[per..] {
                let record = Record {
                    args: rest.by_ref().take(end - start).collect(),
                    ..Record::default()
                };
                start = end;
                let (alone, adds) = plain_sizes(plain, &record);
                self.pending.push_back((record, alone, adds));
            }
            ends.truncate(per);
        }
        Ok(Record { args, ends })
    }

    /// The error for a record that does not fit a command line alone; the input ends there.
    fn too_long(&mut self) -> InputError {
        let record = self
            .pending
            .pop_front()
            .map(|(r, ..)| r)
            .unwrap_or_default();
        self.pending.clear();
        self.input_done = true;
        let rendered = self.grouping.template.render(&record, 1, 1);
        let size = Size::of(&rendered, true);
        let mut input = record.args.join(&b' ');
        let long = input.len() > 50;
        input.truncate(50);
        InputError::TooLong {
            input: format!(
                "{}{}",
                String::from_utf8_lossy(&input),
                if long { "…" } else { "" }
            ),
            length: size.shown,
            limit: self
                .grouping
                .max_chars
                .unwrap_or(self.grouping.limit.usable()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::template::TemplateOptions;
    use crate::input::test_join;

    fn grouping(command: &str, context: bool) -> Grouping {
        let options = TemplateOptions {
            context,
            ..TemplateOptions::default()
        };
        Grouping {
            max_args: None,
            max_chars: None,
            spread_over: None,
            template: Template::parse_with(&[command], &options).expect("template"),
            limit: ArgLimit::system(),
        }
    }

    /// The commands `grouping` makes of the values, each as its display line.
    fn commands(grouping: Grouping, values: &[&str]) -> Vec<String> {
        let template = grouping.template.clone();
        let mut input = values.iter().map(|v| {
            Ok(Record {
                args: vec![v.as_bytes().to_vec()],
                ..Record::default()
            })
        });
        let mut grouper = Grouper::new(grouping);
        let mut out = Vec::new();
        while let Some(record) = grouper.next(&mut || input.next()) {
            let record = record.expect("fits");
            out.push(
                String::from_utf8_lossy(&Template::display(&template.render(&record, 1, 1)))
                    .into_owned(),
            );
        }
        out
    }

    #[test]
    fn the_estimate_is_exact_for_every_style() {
        // Each command stays below -s, and taking one record more would reach it.
        for (command, context) in [
            ("echo {}", false),
            ("echo pre{}post", false),
            ("echo pre{}post", true),
            ("echo {} | cat", false),
            ("echo x{}y | cat", true),
            ("echo {.} {/} | cat", true),
            ("echo {1} {}", false),
        ] {
            let values: Vec<String> = (0..200)
                .map(|i| format!("v{}", "x".repeat(i % 7)))
                .collect();
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let mut g = grouping(command, context);
            g.max_chars = Some(100);
            let lines = commands(g.clone(), &values);
            let mut at = 0;
            for line in &lines {
                assert!(line.len() < 100, "{command}: {line}");
                let copies = 1 + usize::from(command.contains("{/}"));
                let n = (line.matches('v').count() - usize::from(command.contains("{1}"))) / copies;
                at += n;
                // A positional string is counted for every record: the estimate is high.
                if at < values.len() && !command.contains("{1}") {
                    let more = Record::merge(
                        &values[at - n..=at]
                            .iter()
                            .map(|v| Record {
                                args: vec![v.as_bytes().to_vec()],
                                ..Record::default()
                            })
                            .collect::<Vec<_>>(),
                    );
                    let longer = Template::display(&g.template.render(&more, 1, 1));
                    assert!(longer.len() >= 100, "{command}: one more would fit: {line}");
                }
            }
            assert_eq!(at, values.len(), "{command}: every value once");
        }
    }

    #[test]
    fn a_plain_command_is_measured_exactly_without_rendering() {
        for command in ["echo {}", "cp {} {} dir", "gzip"] {
            let mut g = grouping(command, true);
            g.limit = ArgLimit {
                total: 1000,
                single: MAX_ARG_STRLEN,
            };
            assert!(g.template.plain_shape().is_some(), "{command}");
            let values: Vec<String> = (0..300)
                .map(|i| format!("f{}", "x".repeat(i % 11)))
                .collect();
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let mut input = values.iter().map(|v| {
                Ok(Record {
                    args: vec![v.as_bytes().to_vec()],
                    ..Record::default()
                })
            });
            let mut grouper = Grouper::new(g.clone());
            let mut at = 0;
            while let Some(record) = grouper.next(&mut || input.next()) {
                let record = record.expect("fits");
                let n = record.ends.len();
                assert!(g.fits(g.size(&record)), "{command}: too big");
                if at + n < values.len() {
                    let mut more = record.clone();
                    more.args.push(values[at + n].as_bytes().to_vec());
                    more.ends.push(more.args.len());
                    assert!(!g.fits(g.size(&more)), "{command}: one more would fit");
                }
                at += n;
            }
            assert_eq!(at, values.len());
        }
    }

    #[test]
    fn the_last_command_is_spread_over_the_slots() {
        let mut g = grouping("echo {}", true);
        g.spread_over = Some(3);
        let values = ["a", "b", "c", "d", "e", "f", "g"];
        assert_eq!(commands(g, &values), ["echo a b c", "echo d e f", "echo g"]);
        let mut g = grouping("echo {}", true);
        g.spread_over = Some(1);
        assert_eq!(commands(g, &values), ["echo a b c d e f g"]);
    }

    #[test]
    fn spread_records_of_several_values_keep_their_ends() {
        let mut g = grouping("echo", true);
        g.spread_over = Some(2);
        let mut input = (0..5).map(|n| {
            Ok(Record {
                args: vec![format!("a{n}").into_bytes(), format!("b{n}").into_bytes()],
                ..Record::default()
            })
        });
        let mut grouper = Grouper::new(g);
        let mut got = Vec::new();
        while let Some(record) = grouper.next(&mut || input.next()) {
            let record = record.expect("fits");
            got.push((test_join(&record.args, " "), record.ends));
        }
        assert_eq!(
            got,
            [
                ("a0 b0 a1 b1 a2 b2".to_string(), vec![2, 4, 6]),
                ("a3 b3 a4 b4".to_string(), vec![2, 4]),
            ]
        );
    }

    #[test]
    fn max_args_zero_inserts_nothing() {
        let mut g = grouping("echo hi {}", false);
        g.max_args = Some(0);
        assert_eq!(commands(g, &["a", "b"]), ["echo hi", "echo hi"]);
    }

    #[test]
    fn a_record_too_long_alone_is_an_error_that_ends_the_input() {
        let mut g = grouping("echo {}", false);
        g.max_chars = Some(8);
        let mut input = ["ab", "abcdef", "c"].into_iter().map(|v| {
            Ok(Record {
                args: vec![v.as_bytes().to_vec()],
                ..Record::default()
            })
        });
        let mut grouper = Grouper::new(g);
        let first = grouper
            .next(&mut || input.next())
            .expect("one")
            .expect("fits");
        assert_eq!(test_join(&first.args, " "), "ab");
        let err = grouper
            .next(&mut || input.next())
            .expect("error")
            .expect_err("too long");
        assert!(err.to_string().contains("abcdef"), "{err}");
        assert!(grouper.next(&mut || input.next()).is_none());
    }

    #[test]
    fn a_script_is_one_argument_of_at_most_128_kib() {
        let g = grouping("echo {} | cat", false);
        let values: Vec<String> = (0..20_000).map(|i| format!("file_{i:08}")).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let lines = commands(g, &values);
        assert!(
            lines.iter().all(|l| l.len() < MAX_ARG_STRLEN),
            "each script fits"
        );
        assert_eq!(lines.len(), (20_000 * 14usize).div_ceil(MAX_ARG_STRLEN));
    }
}
