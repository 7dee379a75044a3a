//! The `--pipe` options, validated into a [`PipeSpec`].

use std::os::unix::ffi::OsStrExt;

use regex::bytes::Regex;

use super::args::RunArgs;
use crate::error::RunError;
use crate::input::SourceSpec;
use crate::input::pipe::{Header, PipeSpec, Split, Via, parse_gnu_size};

/// The pipe mode `args` ask for, if any; `sources` are the input sources given.
pub(super) fn pipe_spec(
    args: &RunArgs,
    sources: &[(SourceSpec, bool)],
) -> Result<Option<PipeSpec>, RunError> {
    let usage = |m: String| RunError::Usage(m);
    // --cat and --fifo imply --pipe, as in GNU parallel.
    let on = args.pipe || args.pipepart || args.cat || args.fifo;
    if !on {
        // -N, -L and --header have a meaning of their own without --pipe (arguments per command,
        // named columns); these do not.
        let needs_pipe = [
            (args.block.is_some(), "--block"),
            (args.recend.is_some(), "--recend"),
            (args.recstart.is_some(), "--recstart"),
            (args.regexp, "--regexp"),
            (args.roundrobin, "--roundrobin"),
        ];
        if let Some((_, flag)) = needs_pipe.iter().find(|(given, _)| *given) {
            return Err(usage(format!(
                "{flag} is supported only with --pipe or --pipepart"
            )));
        }
        return Ok(None);
    }
    let mut spec = PipeSpec::new();
    if let Some(block) = &args.block {
        spec.block = parse_gnu_size("--block", block).map_err(|e| usage(e.to_string()))?;
        if spec.block == 0 {
            return Err(usage(format!(
                "invalid --block `{block}`: a block must hold at least one byte"
            )));
        }
    }
    let count = |flag: &'static str, value: &Option<String>| -> Result<Option<u64>, RunError> {
        let Some(text) = value else { return Ok(None) };
        let n = parse_gnu_size(flag, text).map_err(|e| usage(e.to_string()))?;
        // GNU parallel reads -N 0 and -L 0 as 1.
        Ok(Some(n.max(1)))
    };
    spec.records = count("-N", &args.max_replace_args)?;
    spec.units = count("-L", &args.max_lines)?.unwrap_or(1);
    let bytes = |v: &Option<std::ffi::OsString>| v.as_ref().map(|s| s.as_bytes().to_vec());
    let (end, start) = match (bytes(&args.recend), bytes(&args.recstart)) {
        (None, None) => (b"\n".to_vec(), Vec::new()),
        (end, start) => (end.unwrap_or_default(), start.unwrap_or_default()),
    };
    spec.split = if args.regexp {
        let text = |b: &[u8], flag: &str| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| usage(format!("{flag} with --regexp must be UTF-8 text")))
        };
        let (e, s) = (text(&end, "--recend")?, text(&start, "--recstart")?);
        let re = Regex::new(&format!("(?:{e})({s})")).map_err(|err| {
            usage(format!(
                "invalid --recend `{e}` or --recstart `{s}` regular expression: {err}"
            ))
        })?;
        if e.is_empty() && s.is_empty() {
            return Err(usage(
                "--recend and --recstart are both empty: records could not be told apart".into(),
            ));
        }
        Split::Regex(re)
    } else {
        if end.is_empty() && start.is_empty() {
            // GNU parallel: no separator at all means blocks cut anywhere; troop needs one.
            return Err(usage(
                "--recend '' needs a --recstart: records could not be told apart".into(),
            ));
        }
        Split::Literal { end, start }
    };
    spec.header = match args.header.as_deref() {
        None => Header::None,
        Some(":") => Header::Lines(1),
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Header::Lines(
            n.parse()
                .map_err(|_| usage(format!("invalid --header `{n}`: too many lines")))?,
        ),
        Some(re) => Header::Regex(
            Regex::new(re)
                .map_err(|e| usage(format!("invalid --header regular expression `{re}`: {e}")))?,
        ),
    };
    spec.via = match (args.cat, args.fifo) {
        (true, _) => Via::File,
        (_, true) => Via::Fifo,
        _ => Via::Stdin,
    };
    if args.resume || args.resume_failed {
        // Every block runs the same command line, which is how a job log names a task.
        return Err(usage(
            "--resume does not work with --pipe: every block's task has the same command line"
                .into(),
        ));
    }
    spec.roundrobin = args.roundrobin;
    if args.roundrobin {
        let clash = [
            (args.cat, "--cat"),
            (args.fifo, "--fifo"),
            (args.pipepart, "--pipepart"),
            (args.retries > 0, "--retries"),
        ];
        if let Some((_, flag)) = clash.iter().find(|(given, _)| *given) {
            // Each task reads a share of a stream that cannot be read again.
            return Err(usage(format!(
                "--roundrobin does not work with {flag}: its tasks read one stream of input, which cannot be given again"
            )));
        }
    }
    if args.pipepart {
        match sources {
            [(SourceSpec::File(path), false)] if path.as_os_str() != "-" => {
                spec.part = Some(path.clone());
            }
            _ => {
                return Err(usage(
                    "--pipepart needs exactly one input file, given with -a FILE (or :::: FILE), \
                     that is not standard input"
                        .into(),
                ));
            }
        }
        if spec.records.is_some() || args.max_lines.is_some() {
            return Err(usage(
                "-N and -L do not work with --pipepart (as in GNU parallel): use --block".into(),
            ));
        }
    } else if !sources.is_empty() {
        return Err(usage(
            "--pipe reads standard input: it takes no -a, ::: or :::: input source (use \
             --pipepart -a FILE to split a file)"
                .into(),
        ));
    }
    Ok(Some(spec))
}
