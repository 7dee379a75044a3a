//! Turning parsed arguments into a validated [`Command`]: the last place clap types exist.

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use troop_worker::kernel::Kernel;

use super::args::{
    BenchArgs, Cli, CompletionsArgs, DemoArgs, KernelArg, ManArgs, ModeArg, RunArgs, ShellArg,
    StartArg, Sub,
};
use super::docs::Shell;
use crate::bench::{self, BenchConfig, Format};
use crate::config::{
    Chunk, Limits, Mode, OutputMode, Resume, RunConfig, SchedOptions, ShellQuote, StartMethod,
};
pub use crate::demo::DemoConfig;
use crate::error::RunError;
use crate::input::framing::parse_delimiter;
use crate::input::group::{ArgLimit, Grouping};
use crate::input::template::TemplateOptions;
use crate::input::{Framing, Header, InputSpec, SourceSpec, Template, Trim};
use crate::jobs::{parse_jobs, usable_cores};
use crate::policy::{self, RetryOn, RetryPolicy};
use crate::units;

/// What troop was asked to do.
#[derive(Debug)]
pub enum Command {
    Run(Box<RunConfig>),
    Demo(DemoConfig),
    Bench(BenchConfig),
    /// Print a shell's completion script.
    Completions(Shell),
    /// Print the manual page, or write every page into this directory.
    Man {
        dir: Option<std::path::PathBuf>,
    },
}

pub(super) fn validate(cli: Cli) -> Result<Command, RunError> {
    match cli.command {
        Sub::Run(args) => run_config(*args).map(|c| Command::Run(Box::new(c))),
        Sub::Bench(args) => bench_config(args).map(Command::Bench),
        Sub::Completions(CompletionsArgs { shell }) => Ok(Command::Completions(match shell {
            ShellArg::Bash => Shell::Bash,
            ShellArg::Zsh => Shell::Zsh,
            ShellArg::Fish => Shell::Fish,
        })),
        Sub::Man(ManArgs { dir }) => Ok(Command::Man { dir }),
        Sub::Demo(DemoArgs {
            cores,
            quick,
            json,
            svg,
        }) => {
            if cores == Some(0) {
                return Err(RunError::Usage("--cores must be at least 1".into()));
            }
            Ok(Command::Demo(DemoConfig {
                cores: cores.unwrap_or_else(usable_cores),
                quick,
                json,
                svg,
            }))
        }
    }
}

fn bench_config(args: BenchArgs) -> Result<BenchConfig, RunError> {
    let usage = RunError::Usage;
    let workers = match &args.workers {
        Some(w) => bench::parse_workers(w).map_err(usage)?,
        None => (1..=usable_cores().max(2)).collect(),
    };
    let modes = bench::parse_modes(&args.modes).map_err(usage)?;
    let kernel = match (args.dispatch, args.kernel) {
        (true, _) | (false, KernelArg::Noop) => "@noop".to_string(),
        (false, KernelArg::Primes) => format!("@primes {}", args.arg.unwrap_or(1_000_000)),
        (false, KernelArg::Spin) => format!("@spin {}", args.arg.unwrap_or(100)),
        (false, KernelArg::Hash) => format!("@hash {}", args.arg.unwrap_or(16)),
        (false, KernelArg::Sleep) => format!("@sleep {}", args.arg.unwrap_or(100)),
    };
    let most = workers.iter().copied().max().unwrap_or(1);
    let tasks = args
        .tasks
        .unwrap_or(if kernel == "@noop" { 200_000 } else { 4 * most });
    if tasks == 0 || args.repeat == 0 {
        return Err(usage("--tasks and --repeat must be at least 1".into()));
    }
    Ok(BenchConfig {
        kernel,
        modes,
        workers,
        tasks,
        repeat: args.repeat,
        chunk: parse_chunk(&args.chunksize)?,
        format: if args.json {
            Format::Json
        } else if args.csv {
            Format::Csv
        } else {
            Format::Table
        },
        svg: args.svg,
        dispatch: args.dispatch,
    })
}

fn parse_chunk(text: &str) -> Result<Chunk, RunError> {
    match text {
        "auto" => Ok(Chunk::Auto),
        n => match n.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Chunk::Fixed(n)),
            _ => Err(RunError::Usage(format!(
                "invalid --chunksize `{n}`: use a number of at least 1, or `auto`"
            ))),
        },
    }
}

fn run_config(mut args: RunArgs) -> Result<RunConfig, RunError> {
    // GNU parallel's spellings with an optional value: `-e`/`--eof[=S]`, `-l[=N]`.
    if args.eof.is_none() {
        args.eof = args.eof_opt.take();
    }
    if args.max_lines.is_none() {
        args.max_lines = args.max_lines_opt.take();
    }
    let separators = Separators::new(args.arg_sep.as_deref(), args.arg_file_sep.as_deref());
    let (mut words, given) = split_sources(std::mem::take(&mut args.command), &separators)?;
    let shellquote = match (args.shellquote, words.is_empty()) {
        (false, _) => None,
        (true, true) => {
            // The input is the command line to quote: a placeholder keeps the template valid.
            words.push("{}".into());
            Some(ShellQuote::Input)
        }
        (true, false) => Some(ShellQuote::Command),
    };
    if args.quote {
        let custom = args.replace_str.as_ref().or(args.replace.as_ref());
        let custom = custom.map(|r| r.as_bytes());
        words = words
            .iter()
            .map(|w| quote_word(w.as_bytes(), custom))
            .collect();
    }
    let mut sources: Vec<(SourceSpec, bool)> = std::mem::take(&mut args.arg_files)
        .into_iter()
        .map(|f| (SourceSpec::File(f), false))
        .collect();
    sources.extend(given);
    // A first source that links to the one before it has none to link to: as in GNU parallel,
    // `:::+` and `::::+` then read as `:::` and `::::`.
    if let Some(first) = sources.first_mut() {
        first.1 = false;
    }
    let pipe = super::pipe_args::pipe_spec(&args, &sources)?;
    if pipe.is_some() {
        // The blocks are the input: no source is read as arguments, and -N, -L and --header
        // mean records per block and the block's header, not arguments per command.
        sources.clear();
        args.max_replace_args = None;
        args.max_lines = None;
        args.header = None;
    }
    let (framing, options, colsep) = input_framing(&mut args)?;
    let template = Template::parse_with(&words, &options)?;
    if let Some(name) = template.kernel_name() {
        Kernel::check_name(name)?;
    }
    let (mut jobs, jobs_file) = jobs_of(args.jobs.as_deref())?;
    if let Some(n) = args.cpus_per_task {
        if n == 0 {
            return Err(RunError::Usage(
                "invalid --cpus-per-task `0`: use at least 1".into(),
            ));
        }
        if args.jobs.is_none() {
            // As on a cluster: as many workers as the cores hold, N cores each.
            jobs = (usable_cores() / n as usize).max(1);
        }
    }
    let grouping = grouping(&args, &template, jobs)?;
    let chunk = match args.chunksize.as_str() {
        "auto" => Chunk::Auto,
        n => match n.parse::<usize>() {
            Ok(n) if n >= 1 => Chunk::Fixed(n),
            _ => {
                return Err(RunError::Usage(format!(
                    "invalid --chunksize `{n}`: use a number of at least 1, or `auto`"
                )));
            }
        },
    };
    let input = InputSpec {
        sources,
        colsep,
        framing,
        grouping,
        link: args.link,
    };
    let mut config = RunConfig::new(template, input, jobs);
    config.pipe = pipe;
    config.shellquote = shellquote;
    config.sched = SchedOptions {
        delay: args
            .delay
            .as_deref()
            .map(|d| {
                units::parse_duration(d)
                    .or_else(|e| compound_duration(d).ok_or(e))
                    .map_err(|e| usage_of("--delay", e))
            })
            .transpose()?
            .filter(|d| !d.is_zero()),
        shuf: args.shuf,
        jobs_file,
    };
    config.tmpdir = tmpdir(args.tmpdir.take())?;
    for var in &args.env {
        // Every variable reaches local commands anyway; a name must still be a name.
        let name_ok = !var.is_empty()
            && var
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'*' || b == b'?');
        if !name_ok {
            return Err(RunError::Usage(format!(
                "invalid --env `{var}`: give the name of an environment variable, or `_`"
            )));
        }
    }
    config.mode = match args.mode {
        ModeArg::Process => Mode::Process,
        ModeArg::Thread => Mode::Thread,
        ModeArg::Gil => Mode::Gil,
        ModeArg::Async => Mode::Async,
    };
    config.remote = super::remote_args::remote_spec(
        &args,
        jobs,
        config.mode,
        config.pipe.is_some(),
        config.sched.jobs_file.is_some(),
    )?;
    if let Some(remote) = &config.remote {
        config.jobs = remote.placement.total();
    }
    config.transfer = super::remote_args::transfer_spec(&args, &options)?;
    config.slurm = super::remote_args::slurm_spec(
        &args,
        config.mode,
        config.pipe.is_some(),
        config.sched.jobs_file.is_some(),
    )?;
    config.switch_interval = units::parse_duration(&args.switch_interval)
        .map_err(|e| usage_of("--switch-interval", e))?;
    config.start = match args.start {
        StartArg::Spawn => StartMethod::Spawn,
        StartArg::Fork => StartMethod::Fork,
    };
    // As in GNU parallel, -u passes output through untouched: no order, no tag.
    config.keep_order = args.keep_order && !args.ungroup;
    config.output = if args.ungroup {
        OutputMode::Ungroup
    } else if args.line_buffer {
        OutputMode::LineBuffer
    } else {
        OutputMode::Group
    };
    let tagstring = args.tagstring.or(args.ctagstring.clone());
    config.tag = (args.tag || args.ctag) && !args.ungroup;
    config.tagstring = tagstring.filter(|_| !args.ungroup).map(|text| {
        crate::input::template::Text::parse(
            &crate::output::unquote_printf(text.as_encoded_bytes()),
            &options,
        )
    });
    config.color = (args.color || args.ctag || args.ctagstring.is_some()) && !args.ungroup;
    config.keep = match (&args.results, args.files) {
        (Some(value), _) => {
            let value = value.as_encoded_bytes();
            let text = crate::input::template::Text::parse(value, &options);
            Some(crate::results::KeepSpec::results(value, text).map_err(RunError::Usage)?)
        }
        (None, true) => Some(crate::results::KeepSpec::Files(
            config.tmpdir.clone().unwrap_or_else(std::env::temp_dir),
        )),
        (None, false) => None,
    };
    if config.keep.is_some() && !args.ungroup {
        // Kept output is whole: it is never streamed, and the command lines are not printed.
        config.output = OutputMode::Group;
        config.verbose = 0;
    } else {
        config.verbose = args.verbose;
    }
    config.announce = args.announce;
    config.dry_run = args.dry_run || shellquote.is_some();
    config.chunk = chunk;
    config.joblog = args.joblog;
    config.joblog_json = args.joblog_json;
    config.watch = crate::config::Watch {
        progress: args.progress,
        bar: args.bar,
        eta: args.eta,
        dashboard: args.dashboard,
        events: args.events,
        summary: args.summary,
    };
    config.resume = match (args.resume, args.resume_failed) {
        (_, true) => Resume::Failed,
        (true, false) => Resume::All,
        _ => Resume::No,
    };
    if config.resume != Resume::No && config.joblog.is_none() {
        return Err(RunError::Usage(
            "--resume and --resume-failed need --joblog FILE: the job log of the run to resume"
                .into(),
        ));
    }
    config.retry = RetryPolicy {
        retries: args.retries,
        base_delay: args
            .retry_delay
            .as_deref()
            .map(|d| units::parse_duration(d).map_err(|e| usage_of("--retry-delay", e)))
            .transpose()?,
        on: match &args.retry_on {
            Some(list) => policy::parse_retry_on(list)?,
            None => RetryOn::AnyFailure,
        },
    };
    config.timeout = args
        .timeout
        .as_deref()
        .map(policy::parse_timeout)
        .transpose()?;
    config.term_seq = policy::parse_term_seq(&args.term_seq)?;
    config.halt = match &args.halt {
        Some(h) => policy::parse_halt(h)?,
        None => None,
    };
    let size = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| units::parse_size(s).map_err(|e| usage_of(flag, e)))
            .transpose()
    };
    // --mem is srun's memory per worker; here it limits each command, as --memory-limit does.
    let memory_limit = match size("--memory-limit", &args.memory_limit)? {
        Some(limit) => Some(limit),
        None if config.slurm.is_none() => size("--mem", &args.mem)?,
        None => None,
    };
    if let Some(bytes) = memory_limit
        && bytes < MIN_MEMORY_LIMIT
    {
        return Err(RunError::Usage(format!(
            "invalid --memory-limit `{}`: no command can start in so little address space; use \
             at least 4M (real programs need more: 2G for instance)",
            args.memory_limit.as_deref().unwrap_or_default()
        )));
    }
    config.limits = Limits {
        memory_limit,
        nice: args.nice,
        memfree: size("--memfree", &args.memfree)?,
        load: args.load,
    };
    if let Some(n) = args.nice
        && !(-20..=19).contains(&n)
    {
        return Err(RunError::Usage(format!(
            "invalid --nice `{n}`: use a niceness from -20 to 19"
        )));
    }
    Ok(config)
}

/// `-j`: a number of workers (see [`parse_jobs`]), or a file that holds one, read again while the
/// run goes on.
fn jobs_of(given: Option<&str>) -> Result<(usize, Option<std::path::PathBuf>), RunError> {
    let given = given.unwrap_or("100%");
    let path = std::path::Path::new(given);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| {
            RunError::Usage(format!("invalid -j `{given}`: cannot read the file: {e}"))
        })?;
        let jobs = parse_jobs(text.trim(), usable_cores()).map_err(|_| {
            RunError::Usage(format!(
                "invalid -j `{given}`: the file holds `{}`, not a number of jobs (N, N%, +N or -N)",
                text.trim()
            ))
        })?;
        return Ok((jobs, Some(path.to_path_buf())));
    }
    Ok((parse_jobs(given, usable_cores())?, None))
}

/// GNU parallel's compound durations: numbers each followed by `d`, `h`, `m` or `s` (the last
/// may have none), as in `1d3.5h16.6m4s`.
fn compound_duration(text: &str) -> Option<std::time::Duration> {
    static PART: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^(?:([0-9]*\.?[0-9]+)([dhms]))*([0-9]*\.?[0-9]+)?$")
            .expect("a valid regular expression")
    });
    static EACH: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"([0-9]*\.?[0-9]+)([dhms]?)").expect("a valid regular expression")
    });
    let text = text.trim();
    if text.is_empty() || !PART.is_match(text) {
        return None;
    }
    let mut secs = 0.0;
    for part in EACH.captures_iter(text) {
        let n: f64 = part[1].parse().ok()?;
        secs += n * match &part[2] {
            "d" => 86_400.0,
            "h" => 3_600.0,
            "m" => 60.0,
            _ => 1.0,
        };
    }
    std::time::Duration::try_from_secs_f64(secs).ok()
}

/// `--tmpdir DIR`: an existing directory.
fn tmpdir(dir: Option<std::path::PathBuf>) -> Result<Option<std::path::PathBuf>, RunError> {
    match dir {
        Some(d) if !d.is_dir() => Err(RunError::Usage(format!(
            "invalid --tmpdir `{}`: not a directory",
            d.display()
        ))),
        d => Ok(d),
    }
}

/// `-q`: one command word as one shell word. Its text is quoted for the shell, except the
/// replacement strings in it (and `custom`, the string of `-I`), whose values the template
/// quotes.
fn quote_word(word: &[u8], custom: Option<&[u8]>) -> OsString {
    static REPL: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
        regex::bytes::Regex::new(r"\{(?:[0-9]+|[A-Za-z_][A-Za-z0-9_]*|#|%)?(?:\.|/|//|/\.)?\}")
            .expect("a valid regular expression")
    });
    let mut tokens: Vec<(usize, usize)> =
        REPL.find_iter(word).map(|m| (m.start(), m.end())).collect();
    if let Some(custom) = custom.filter(|c| !c.is_empty()) {
        let mut from = 0;
        while let Some(i) = memchr::memmem::find(&word[from..], custom) {
            tokens.push((from + i, from + i + custom.len()));
            from += i + custom.len();
        }
        tokens.sort_unstable();
    }
    let mut out = Vec::new();
    let mut at = 0;
    for (start, end) in tokens {
        if start < at {
            continue;
        }
        if start > at {
            out.extend(shell_quote(&word[at..start]));
        }
        out.extend_from_slice(&word[start..end]);
        at = end;
    }
    if at < word.len() || word.is_empty() {
        out.extend(shell_quote(&word[at..]));
    }
    OsString::from_vec(out)
}

/// Quotes `text` for a POSIX shell as GNU parallel does: bare when it holds only letters, digits
/// and `-_.+/`, else in single quotes, each `'` written as `'"'"'`.
pub fn shell_quote(text: &[u8]) -> Vec<u8> {
    if text.is_empty() {
        return b"''".to_vec();
    }
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"-_.+/".contains(b);
    if text.iter().all(plain) {
        return text.to_vec();
    }
    let mut out = vec![b'\''];
    for &b in text {
        if b == b'\'' {
            out.extend_from_slice(b"'\"'\"'");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    // Quotes that enclose nothing at either end are dropped.
    if out.starts_with(b"''") {
        out.drain(..2);
    }
    if out.ends_with(b"''") {
        out.truncate(out.len() - 2);
    }
    out
}

/// The smallest `--memory-limit`: less address space than this cannot start a shell.
const MIN_MEMORY_LIMIT: u64 = 4 << 20;
/// The input-framing options: how items are read and split, and how the template names them.
fn input_framing(
    args: &mut RunArgs,
) -> Result<(Framing, TemplateOptions, Option<regex::bytes::Regex>), RunError> {
    let usage = |flag: &str, why: String| RunError::Usage(format!("invalid {flag}: {why}"));
    let mut framing = Framing {
        skip_blank: args.no_run_if_empty,
        continue_lines: args.max_lines.is_some(),
        // An empty EOF-STRING means none, as in xargs.
        eof: args
            .eof
            .take()
            .map(OsString::into_vec)
            .filter(|e| !e.is_empty()),
        ..Framing::default()
    };
    if let Some(d) = &args.delimiter {
        let d = parse_delimiter(d.as_bytes()).map_err(|e| {
            usage(
                &format!("--delimiter `{}`", d.to_string_lossy()),
                e.to_string(),
            )
        })?;
        framing.delimiter = Some(d);
    } else if args.null {
        framing.delimiter = Some(b"\0".to_vec());
    }
    let header = match args.header.as_deref() {
        None | Some("0") => None,
        Some("") => {
            return Err(usage(
                "--header ``",
                "use `:`, a regular expression or a number of lines".into(),
            ));
        }
        Some(_) => Some(Header::default()),
    };
    // As in GNU parallel: --colsep trims both sides unless --trim says otherwise; --header
    // splits at a TAB unless --colsep says otherwise; --csv splits at `,`.
    framing.trim = match args.trim.as_deref() {
        Some(t) => Trim::parse(t)
            .ok_or_else(|| usage(&format!("--trim `{t}`"), "use n, l, r, lr or rl".into()))?,
        None if args.colsep.is_some() => Trim::Both,
        None => Trim::None,
    };
    let mut colsep = args.colsep.take();
    if args.csv {
        let sep = match &colsep {
            None => b",".to_vec(),
            Some(c) => parse_delimiter(c.as_bytes()).unwrap_or_default(),
        };
        let [sep] = sep[..] else {
            return Err(usage(
                &format!("--colsep `{}` with --csv", colsep.unwrap_or_default()),
                "a CSV separator is one character".into(),
            ));
        };
        framing.csv = Some(sep);
        colsep = None;
    } else if args.header.is_some() && colsep.is_none() {
        colsep = Some("\t".into());
    }
    let colsep = match colsep {
        Some(re) => {
            let compiled = regex::bytes::Regex::new(&re).map_err(|e| {
                RunError::Usage(format!("invalid --colsep regular expression `{re}`: {e}"))
            })?;
            if compiled.is_match(b"") {
                return Err(RunError::Usage(format!(
                    "invalid --colsep `{re}`: it matches the empty string, so it cannot \
                     separate columns; give the separator, as in --colsep ',' or --colsep '\\t'"
                )));
            }
            Some(compiled)
        }
        None => None,
    };
    let replace = match (args.replace_str.take(), args.replace.take()) {
        (Some(r), _) | (None, Some(r)) => Some(r.into_vec()),
        (None, None) => None,
    };
    // `-I {}` changes nothing: `{1}` keeps working, as in GNU parallel.
    let replace = replace.filter(|r| r.as_slice() != b"{}");
    if replace.as_ref().is_some_and(Vec::is_empty) {
        return Err(usage("-I ``", "the replacement string is empty".into()));
    }
    let options = TemplateOptions {
        replace,
        header: header.clone(),
        // -N and -L imply -X unless -m or --xargs says otherwise, as in GNU parallel.
        context: (args.context_replace
            || args.max_replace_args.is_some()
            || args.max_lines.is_some())
            && !(args.multiple || args.xargs),
        plus: args.plus,
    };
    framing.header = header;
    Ok((framing, options, colsep))
}

/// A count given to `flag`: a whole number, with GNU parallel's k, M, G… multipliers.
fn count(flag: &str, text: &str) -> Result<usize, RunError> {
    let bad = || {
        RunError::Usage(format!(
            "invalid {flag} `{text}`: use a whole number of at least 0, e.g. `{flag} 2`"
        ))
    };
    let (digits, scale) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let scale: usize = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                't' => 1 << 40,
                _ => return Err(bad()),
            };
            (&text[..i], scale)
        }
        _ => (text, 1),
    };
    let n: usize = digits.parse().map_err(|_| bad())?;
    n.checked_mul(scale).ok_or_else(bad)
}

/// How input records are grouped into commands: `-n`, `-N`, `-X`, `-m`, `-L`, `-s`, `--xargs`.
fn grouping(
    args: &RunArgs,
    template: &Template,
    jobs: usize,
) -> Result<Option<Grouping>, RunError> {
    let limit = ArgLimit::system();
    let max_chars = args
        .max_chars
        .as_deref()
        .map(|s| count("--max-chars", s))
        .transpose()?;
    if max_chars == Some(0) {
        return Err(RunError::Usage(
            "invalid --max-chars `0`: a command line needs at least 1 byte".into(),
        ));
    }
    if args.show_limits {
        let usable = max_chars.map_or(limit.usable(), |s| s.min(limit.usable()));
        let mut out = std::io::stdout().lock();
        let _ = write!(
            out,
            "Maximal size of command: {}\nMaximal usable size of command: {usable}\n\n\
             Execution will continue now, and it will try to read its input\n\
             and run commands; if this is not what you wanted to happen, please\n\
             press CTRL-D or CTRL-C\n",
            limit.total,
        );
        let _ = out.flush();
    }
    let n = args
        .max_args
        .as_deref()
        .map(|s| count("--max-args", s))
        .transpose()?;
    let big_n = args
        .max_replace_args
        .as_deref()
        .map(|s| count("-N", s))
        .transpose()?;
    // -L 0 means 1, as in GNU parallel.
    let lines = args
        .max_lines
        .as_deref()
        .map(|s| count("--max-lines", s).map(|l| l.max(1)))
        .transpose()?;
    let fill = args.context_replace || args.multiple || args.xargs;
    if !(fill || n.is_some() || big_n.is_some() || lines.is_some() || max_chars.is_some()) {
        return Ok(None);
    }
    let max_args = match (big_n.or(n).or(lines), fill) {
        (Some(m), _) => Some(m),
        (None, true) => None,
        (None, false) => Some(1),
    };
    Ok(Some(Grouping {
        max_args,
        max_chars,
        spread_over: (args.context_replace || args.multiple).then_some(jobs),
        template: template.clone(),
        limit,
    }))
}

/// A unit error, with the option it belongs to.
fn usage_of(flag: &str, e: units::UnitError) -> RunError {
    RunError::Usage(format!("{flag}: {e}"))
}

/// Splits `COMMAND… ::: A… :::: F… :::+ B…` into the command's words and its input sources.
/// A `::::` group names files, each its own source; a `:::` group is one source.
/// Input sources, each with whether it is linked to the one before it.
type Sources = Vec<(SourceSpec, bool)>;

/// The words that start input sources: `:::` and `::::` (`--arg-sep`, `--arg-file-sep`), and
/// the linked forms with a `+`.
struct Separators {
    args: Vec<u8>,
    files: Vec<u8>,
    linked_args: Vec<u8>,
    linked_files: Vec<u8>,
}

impl Separators {
    fn new(args: Option<&std::ffi::OsStr>, files: Option<&std::ffi::OsStr>) -> Separators {
        let args = args.map_or(b":::".to_vec(), |s| s.as_bytes().to_vec());
        let files = files.map_or(b"::::".to_vec(), |s| s.as_bytes().to_vec());
        Separators {
            linked_args: [args.as_slice(), b"+"].concat(),
            linked_files: [files.as_slice(), b"+"].concat(),
            args,
            files,
        }
    }
}

fn split_sources(
    words: Vec<OsString>,
    separators: &Separators,
) -> Result<(Vec<OsString>, Sources), RunError> {
    #[derive(PartialEq)]
    enum Group {
        Command,
        Args(bool),
        Files(bool),
    }
    let mut command = Vec::new();
    let mut sources: Vec<(SourceSpec, bool)> = Vec::new();
    let mut group = Group::Command;
    let mut args: Vec<Vec<u8>> = Vec::new();
    let mut files_in_group = 0;
    let close = |group: &Group,
                 args: &mut Vec<Vec<u8>>,
                 sources: &mut Vec<(SourceSpec, bool)>,
                 files: usize|
     -> Result<(), RunError> {
        match group {
            Group::Args(linked) => sources.push((SourceSpec::Args(std::mem::take(args)), *linked)),
            Group::Files(_) if files == 0 => {
                return Err(RunError::Usage(
                    "`::::` must be followed by at least one file name".into(),
                ));
            }
            _ => {}
        }
        Ok(())
    };
    for word in words {
        let w = word.as_bytes();
        let next = if w == separators.args {
            Some(Group::Args(false))
        } else if w == separators.linked_args {
            Some(Group::Args(true))
        } else if w == separators.files {
            Some(Group::Files(false))
        } else if w == separators.linked_files {
            Some(Group::Files(true))
        } else {
            None
        };
        if let Some(next) = next {
            close(&group, &mut args, &mut sources, files_in_group)?;
            group = next;
            files_in_group = 0;
            continue;
        }
        match &group {
            Group::Command => command.push(word),
            Group::Args(_) => args.push(word.into_vec()),
            Group::Files(linked) => {
                // Only the first file of a `::::+` group links to the source before it.
                sources.push((
                    SourceSpec::File(word.into()),
                    *linked && files_in_group == 0,
                ));
                files_in_group += 1;
            }
        }
    }
    close(&group, &mut args, &mut sources, files_in_group)?;
    Ok((command, sources))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(words: &[&str]) -> Result<(Vec<OsString>, Sources), RunError> {
        split_sources(
            words.iter().map(OsString::from).collect(),
            &Separators::new(None, None),
        )
    }

    #[test]
    fn sources_are_split_in_order() {
        let (cmd, sources) = split(&[
            "echo", "{}", ":::", "a", "b", "::::", "f1", "f2", ":::+", "x",
        ])
        .unwrap();
        assert_eq!(cmd, ["echo", "{}"]);
        assert_eq!(sources.len(), 4);
        assert!(matches!(&sources[0], (SourceSpec::Args(a), false) if a == &[b"a", b"b"]));
        assert!(matches!(&sources[1], (SourceSpec::File(f), false) if f.to_str() == Some("f1")));
        assert!(matches!(&sources[2], (SourceSpec::File(f), false) if f.to_str() == Some("f2")));
        assert!(matches!(&sources[3], (SourceSpec::Args(a), true) if a == &[b"x"]));
    }

    #[test]
    fn a_first_link_is_split_like_any_source() {
        // `run_config` reads it as a plain source (there is nothing before it to link to).
        let (_, sources) = split(&["echo", ":::+", "a"]).expect("a first :::+ is accepted");
        assert_eq!(sources.len(), 1);
    }

    #[test]
    fn compound_durations_add_up_as_in_gnu_parallel() {
        let secs = |t: &str| compound_duration(t).map(|d| d.as_secs_f64());
        assert_eq!(secs("1d3.5h16.6m4s"), Some(100_000.0));
        assert_eq!(secs("1m30"), Some(90.0));
        assert_eq!(secs("2"), Some(2.0));
        assert_eq!(secs("1x"), None);
        assert_eq!(secs("s"), None);
        assert_eq!(secs(""), None);
    }

    #[test]
    fn quoted_words_keep_their_replacement_strings() {
        assert_eq!(quote_word(b"a  b", None), "'a  b'");
        assert_eq!(quote_word(b"{}x", None), "{}x");
        assert_eq!(quote_word(b"$a{1}", None), "'$a'{1}");
        assert_eq!(quote_word(b"", None), "''");
        assert_eq!(quote_word(b"a XX;", Some(b"XX")), "'a 'XX';'");
        assert_eq!(shell_quote(b"it's"), "'it'\"'\"'s'".as_bytes());
    }

    #[test]
    fn four_colons_need_a_file() {
        assert!(split(&["echo", "::::"]).is_err());
        assert!(split(&["echo", "::::", ":::", "a"]).is_err());
    }

    #[test]
    fn an_empty_args_group_is_an_empty_source() {
        let (_, sources) = split(&["echo", ":::"]).unwrap();
        assert!(matches!(&sources[0], (SourceSpec::Args(a), false) if a.is_empty()));
    }
}
