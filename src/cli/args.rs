//! The clap definitions of every subcommand and option.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "troop",
    version,
    propagate_version = true,
    about = "Run batches of tasks on a pool of worker processes fed over IPC, or on threads, and measure the difference.",
    after_help = "Start with `troop demo`, then try `seq 10 | troop run -j2 'echo hello {}'`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Run a command for every input, like GNU parallel: `troop run [OPTIONS] COMMAND ::: ARGS`.
    #[command(after_help = RUN_HELP, display_name = "troop")]
    Run(Box<RunArgs>),
    /// The concurrency lesson, measured: one CPU-bound and one I/O-bound batch, serially and in
    /// every mode, with a table, a chart and a reading.
    Demo(DemoArgs),
    /// Scaling curves and dispatch overhead: a kernel batch over modes and worker counts.
    Bench(BenchArgs),
    /// Print the shell completion script for bash, zsh or fish: `troop completions bash`.
    Completions(CompletionsArgs),
    /// Print the manual page troop.1 (roff), or write every page into a directory.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell the script is for.
    #[arg(value_enum)]
    pub shell: ShellArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write troop.1 and a page per subcommand (troop-run.1, ...) into this directory instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

const RUN_HELP: &str = "\
Inputs: lines of stdin when no source is given; `::: a b c`; `:::: FILE` (- is stdin); -a FILE.
Several sources form their cartesian product; `:::+` and `::::+` link a source to the one before.

Replacement strings: {} input, {.} without extension, {/} basename, {//} dirname, {/.} basename
without extension, {#} sequence number, {%} worker slot, {N} and {N.} the Nth argument or column.
A command with none of them gets the arguments appended.

The command's words are joined with spaces and run by the shell when they contain shell syntax
(`troop run 'echo {} | wc -c'`), or when the first word names a function from bash's `export -f`
or no program on PATH; otherwise the program is executed directly. The shell is $PARALLEL_SHELL,
else $SHELL, else /bin/sh (csh and fish are passed over). Input is bytes and reaches the command
unchanged, UTF-8 or not. A first word `@name` runs a built-in kernel inside the worker:
@primes N, @spin MS, @sleep MS, @hash MB, @noop.

What quoting protects: each value is quoted as one shell word, so input cannot inject shell
syntax where a replacement string stands outside quotes in the command (`echo {}`, `cp {} {.}.bak`).
Inside the command's own quotes it can, as in GNU parallel: in `echo \"{}\"` a value `$(rm -rf ~)`
runs, and in `echo '{}'` a value's quotes cancel the command's, so `x; rm -rf ~` runs. Write
`echo {}`, never `echo \"{}\"` or `echo '{}'`. Input is code wherever the command runs it as code
(`sh -c {}`, `eval {}`, `ssh host echo {}`), and a value that starts with `-` may be taken for an
option (`rm -- {}` prevents that).

Exit status: 0 when every task succeeded, 1-100 the number of failed tasks, 101 more than 100,
130 interrupted, 255 any other error.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// troop-worker processes fed over IPC; one line per worker in `top`.
    Process,
    /// The same worker runtime on threads inside troop.
    Thread,
    /// Threads that must hold one global lock while they compute, as CPython's threads do.
    Gil,
    /// One thread running an event loop, as asyncio does: waits overlap, computing does not.
    Async,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartArg {
    /// Execute the troop-worker program: a fresh process image per worker (the default).
    Spawn,
    /// Fork troop before it starts any thread; replacements come from a single-threaded fork server.
    Fork,
}

/// Where workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LauncherArg {
    Local,
    Ssh,
    Slurm,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workers: N, N% of the cores, +N or -N cores, or 0 for as many as possible [default: the
    /// cores this process may use, respecting CPU affinity and cgroup quota]
    #[arg(
        short = 'j',
        long = "jobs",
        short_alias = 'P',
        alias = "max-procs",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub jobs: Option<String>,
    /// Where tasks run.
    #[arg(long, value_enum, default_value_t = ModeArg::Process)]
    pub mode: ModeArg,
    /// In gil mode, how long a computing task may hold the lock while others wait (CPython's
    /// sys.setswitchinterval).
    #[arg(
        long = "switch-interval",
        value_name = "DURATION",
        default_value = "5ms"
    )]
    pub switch_interval: String,
    /// How worker processes start. `spawn` executes troop-worker (clean state, a little slower to
    /// start); `fork` copies troop itself before it starts any thread (fastest start, shares the
    /// supervisor's loaded state), as Python's fork and forkserver start methods do.
    #[arg(long, value_enum, default_value_t = StartArg::Spawn)]
    pub start: StartArg,
    /// Print output in input order.
    #[arg(short = 'k', long = "keep-order")]
    pub keep_order: bool,
    /// Print complete lines as they come instead of each task's output whole.
    #[arg(long = "line-buffer", visible_alias = "lb")]
    pub line_buffer: bool,
    /// Prefix every output line with the task's arguments and a TAB.
    #[arg(long)]
    pub tag: bool,
    /// Print the commands that would run, and run nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Split each input line into columns {1} {2} … at this regular expression.
    #[arg(long, short = 'C', value_name = "REGEX")]
    pub colsep: Option<String>,
    /// Link the input sources: the Nth values of every source make the Nth task, and shorter
    /// sources start over until the longest ends (`:::+` links one source and stops at the
    /// shortest).
    #[arg(long, alias = "xapply")]
    pub link: bool,
    /// Use SEP instead of `:::` to start a source of arguments.
    #[arg(long = "arg-sep", value_name = "SEP")]
    pub arg_sep: Option<OsString>,
    /// Use SEP instead of `::::` to start a source of files.
    #[arg(long = "arg-file-sep", value_name = "SEP")]
    pub arg_file_sep: Option<OsString>,
    /// Read arguments from FILE (like `:::: FILE`); may be repeated.
    #[arg(short = 'a', long = "arg-file", value_name = "FILE")]
    pub arg_files: Vec<PathBuf>,
    /// Log every finished task to FILE in GNU parallel's --joblog format (TSV).
    #[arg(long, value_name = "FILE")]
    pub joblog: Option<PathBuf>,
    /// Log every finished task to FILE as JSON lines, with worker, pid, CPU time, max RSS,
    /// attempts, outcome and input.
    #[arg(long = "joblog-json", value_name = "FILE")]
    pub joblog_json: Option<PathBuf>,
    /// Show progress on stderr: tasks done, failed and running, the rate and an ETA. A bar on a
    /// terminal; without one, a plain line every few seconds.
    #[arg(long, help_heading = "Watching")]
    pub progress: bool,
    /// Show a progress bar on stderr (only when stderr is a terminal).
    #[arg(long, help_heading = "Watching")]
    pub bar: bool,
    /// Show the estimated time left on stderr (only when stderr is a terminal).
    #[arg(long, help_heading = "Watching")]
    pub eta: bool,
    /// A live full-screen view of the workers: one row per worker, totals, throughput; keys
    /// q (stop), + and - (workers), p (pause), k (kill the selected task).
    #[arg(long, help_heading = "Watching")]
    pub dashboard: bool,
    /// Write a JSON-lines stream of run, worker and task events to FILE (- for stdout).
    #[arg(long, value_name = "FILE", help_heading = "Watching")]
    pub events: Option<PathBuf>,
    /// Print a summary on stderr when the run ends: tasks, failures, retries, wall and CPU
    /// time, the slowest tasks, each worker's peak memory. Without it, the summary is printed
    /// only on a terminal, after -v or when something failed.
    #[arg(long, help_heading = "Watching")]
    pub summary: bool,
    /// Skip the tasks the --joblog FILE records, and append to it. Tasks are matched by their
    /// command line, so reordered or appended input resumes correctly.
    #[arg(long, conflicts_with = "resume_failed")]
    pub resume: bool,
    /// Like --resume, but run the tasks the job log records as failed again.
    #[arg(long = "resume-failed")]
    pub resume_failed: bool,
    /// Run a failed task again up to N more times, on any worker.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// Wait before a retry: DURATION, doubled for each further retry, with jitter.
    #[arg(long = "retry-delay", value_name = "DURATION")]
    pub retry_delay: Option<String>,
    /// Retry only these failures: exit codes and/or signals, e.g. `1,75,KILL` [default: any]
    #[arg(long = "retry-on", value_name = "LIST")]
    pub retry_on: Option<String>,
    /// Stop a task that runs longer than DURATION (10s, 500ms, 2m), or N% of the median run time
    /// of the successful tasks.
    #[arg(long, value_name = "DURATION|N%")]
    pub timeout: Option<String>,
    /// How a task is stopped: signals and milliseconds to wait, sent to its whole process group.
    #[arg(
        long = "term-seq",
        value_name = "SEQ",
        default_value = "TERM,200,TERM,100,TERM,50,KILL,25"
    )]
    pub term_seq: String,
    /// Stop the run early: `now|soon,fail=N|fail=N%|success=N|done=N`. `soon` starts no new
    /// task; `now` also stops the running ones.
    #[arg(
        long,
        alias = "halt-on-error",
        value_name = "WHEN,CONDITION",
        allow_hyphen_values = true
    )]
    pub halt: Option<String>,
    /// Limit each command's address space (RLIMIT_AS), e.g. 2G.
    #[arg(long = "memory-limit", value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// Run tasks at this niceness.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub nice: Option<i32>,
    /// Start no new task while free memory is below SIZE.
    #[arg(long, value_name = "SIZE")]
    pub memfree: Option<String>,
    /// Start no new task while the 1-minute load average is above N.
    #[arg(long, value_name = "N")]
    pub load: Option<f64>,
    /// Tasks per message to a process worker: a number, or `auto` to grow batches while tasks are tiny.
    #[arg(long, value_name = "N|auto", default_value = "auto")]
    pub chunksize: String,
    // Input framing, with GNU parallel's meaning.
    /// Input items end at NUL, not at a newline (for `find -print0`).
    #[arg(short = '0', long = "null", help_heading = "Input framing")]
    pub null: bool,
    /// Input items end at DELIM, not at a newline: any text, with the escapes `\n`, `\t`, `\r`,
    /// `\0`, octal `\NNN` and `\xHH`.
    #[arg(
        short = 'd',
        long = "delimiter",
        value_name = "DELIM",
        allow_hyphen_values = true,
        help_heading = "Input framing"
    )]
    pub delimiter: Option<OsString>,
    /// Stop reading a source at an item equal to EOF-STRING.
    #[arg(
        short = 'E',
        value_name = "EOF-STRING",
        allow_hyphen_values = true,
        help_heading = "Input framing"
    )]
    pub eof: Option<OsString>,
    /// Like -E; without a value, no EOF-STRING.
    #[arg(
        short = 'e',
        long = "eof",
        value_name = "EOF-STRING",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        help_heading = "Input framing"
    )]
    pub eof_opt: Option<OsString>,
    /// Skip input items (records) that are empty or only blanks.
    #[arg(
        short = 'r',
        long = "no-run-if-empty",
        alias = "norunifempty",
        help_heading = "Input framing"
    )]
    pub no_run_if_empty: bool,
    /// Strip blanks from each input item or column: n (none), l (left), r (right), lr or rl
    /// (both) [default: lr with --colsep, else n]
    #[arg(long, value_name = "n|l|r|lr|rl", help_heading = "Input framing")]
    pub trim: Option<String>,
    /// Use STRING instead of `{}` for the arguments (`{}` and `{N}` are then plain text).
    #[arg(
        short = 'I',
        value_name = "STRING",
        allow_hyphen_values = true,
        help_heading = "Input framing"
    )]
    pub replace_str: Option<OsString>,
    /// Like -I, with `{}` as the default STRING.
    #[arg(
        short = 'i',
        long = "replace",
        value_name = "STRING",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "{}",
        help_heading = "Input framing"
    )]
    pub replace: Option<OsString>,
    /// The first item of each source is a header naming its columns, so that `{name}` works;
    /// `:` (or any regular expression, or a number of lines) means the first line, 0 none.
    /// Columns are split at --colsep, a TAB unless given.
    #[arg(long, value_name = ":|REGEX|N", help_heading = "Input framing")]
    pub header: Option<String>,
    /// Read each input item as a CSV row (fields split at --colsep, `,` unless given; quoted
    /// fields may hold separators, quotes and newlines).
    #[arg(long, help_heading = "Input framing")]
    pub csv: bool,
    // Several arguments per command, with GNU parallel's meaning.
    /// Put at most N input items (records) in each command; `{}` gives them all, `{1}`… each.
    #[arg(
        short = 'n',
        long = "max-args",
        alias = "maxargs",
        value_name = "N",
        allow_hyphen_values = true,
        help_heading = "Several arguments per command"
    )]
    pub max_args: Option<String>,
    /// Like -n, with context replace as -X does; -N0 reads one item and inserts none.
    #[arg(
        short = 'N',
        long = "max-replace-args",
        alias = "maxreplaceargs",
        value_name = "N",
        allow_hyphen_values = true,
        help_heading = "Several arguments per command"
    )]
    pub max_replace_args: Option<String>,
    /// Context replace: as many items per command as fit the command line, a word holding
    /// `{}` repeated for each; at the end of the input, the items left are spread over the jobs.
    #[arg(short = 'X', help_heading = "Several arguments per command")]
    pub context_replace: bool,
    /// As many items per command as fit, `{}` giving them all in one place; at the end of the
    /// input, the items left are spread over the jobs.
    #[arg(short = 'm', help_heading = "Several arguments per command")]
    pub multiple: bool,
    /// At most N input lines per command (implies -X); a line ending in a blank goes on with the
    /// next line.
    #[arg(
        short = 'L',
        long = "max-lines",
        alias = "maxlines",
        value_name = "N",
        allow_hyphen_values = true,
        help_heading = "Several arguments per command"
    )]
    pub max_lines: Option<String>,
    /// Like -L; without a value, 1.
    #[arg(
        short = 'l',
        value_name = "N",
        num_args = 0..=1,
        default_missing_value = "1",
        help_heading = "Several arguments per command"
    )]
    pub max_lines_opt: Option<String>,
    /// Keep each command line (as --dry-run shows it) shorter than N bytes [default: the
    /// system's limit, ARG_MAX less the environment]
    #[arg(
        short = 's',
        long = "max-chars",
        alias = "maxchars",
        value_name = "N",
        allow_hyphen_values = true,
        help_heading = "Several arguments per command"
    )]
    pub max_chars: Option<String>,
    /// The extra replacement strings of GNU parallel's --plus: {..} {...} {/..} {/...} (without
    /// two or three extensions), {+/} {+.} {+..} {+...} (the parts those leave out).
    #[arg(long, help_heading = "Several arguments per command")]
    pub plus: bool,
    /// As many items per command as fit, like xargs (without spreading them over the jobs).
    #[arg(long, help_heading = "Several arguments per command")]
    pub xargs: bool,
    /// Print the limits on the size of a command line, then run.
    #[arg(
        long = "show-limits",
        alias = "showlimits",
        help_heading = "Several arguments per command"
    )]
    pub show_limits: bool,
    // GNU parallel compatibility.
    /// Accepted for GNU parallel's scripts; troop prints no citation notice.
    #[arg(
        long = "will-cite",
        visible_alias = "willcite",
        aliases = ["nn", "nonotice", "no-notice"],
        help_heading = "GNU parallel compatibility"
    )]
    pub will_cite: bool,
    /// Accepted for GNU parallel's scripts; prints nothing.
    #[arg(long, hide = true)]
    pub citation: bool,
    /// Accepted for GNU parallel's scripts; prints nothing.
    #[arg(long, hide = true)]
    pub bibtex: bool,
    // --pipe: GNU parallel's second mode, standard input cut into blocks.
    /// Cut standard input into blocks of whole records (see --block, -N, --recend); each block
    /// is the standard input of one command.
    #[arg(long, visible_alias = "spreadstdin", help_heading = "Pipe mode")]
    pub pipe: bool,
    /// Like --pipe, for the file given with -a: each command reads its part of the file
    /// directly, with no copy through troop.
    #[arg(long, visible_alias = "pipe-part", help_heading = "Pipe mode")]
    pub pipepart: bool,
    /// With --pipe: bytes per block; K M G T P are powers of 1024, k m g t p of 1000 [default: 1M]
    #[arg(
        long,
        visible_alias = "block-size",
        value_name = "SIZE",
        help_heading = "Pipe mode"
    )]
    pub block: Option<String>,
    /// With --pipe: records end with STRING [default: \n, or nothing when --recstart is given]
    #[arg(
        long,
        value_name = "STRING",
        allow_hyphen_values = true,
        help_heading = "Pipe mode"
    )]
    pub recend: Option<OsString>,
    /// With --pipe: records start with STRING.
    #[arg(
        long,
        value_name = "STRING",
        allow_hyphen_values = true,
        help_heading = "Pipe mode"
    )]
    pub recstart: Option<OsString>,
    /// With --pipe: --recstart and --recend are regular expressions.
    #[arg(long, help_heading = "Pipe mode")]
    pub regexp: bool,
    /// With --pipe: start one command per worker and deal the blocks out among them.
    #[arg(long, visible_alias = "round-robin", help_heading = "Pipe mode")]
    pub roundrobin: bool,
    /// With --pipe: the block is in a temporary file, named by {}.
    #[arg(long, conflicts_with = "fifo", help_heading = "Pipe mode")]
    pub cat: bool,
    /// With --pipe: the block comes through a named pipe, named by {}.
    #[arg(long, help_heading = "Pipe mode")]
    pub fifo: bool,
    // Scheduling and the shell, with GNU parallel's meaning.
    /// Wait DURATION between the starts of two tasks (0.5, 2s, 1m; a bare number is seconds).
    #[arg(
        long,
        value_name = "DURATION",
        help_heading = "Scheduling and the shell"
    )]
    pub delay: Option<String>,
    /// Run the tasks in random order: all input is read first; `{#}` numbers them in the order run.
    #[arg(long, help_heading = "Scheduling and the shell")]
    pub shuf: bool,
    /// Quote the command, so that no shell interprets it: each word is passed as one word.
    #[arg(short = 'q', long = "quote", help_heading = "Scheduling and the shell")]
    pub quote: bool,
    /// Print each input quoted for the shell, and run nothing.
    #[arg(long, help_heading = "Scheduling and the shell")]
    pub shellquote: bool,
    /// Put the run's private directory (spilled output, blocks) in DIR [default: $TMPDIR, else /tmp]
    #[arg(
        long,
        visible_alias = "tempdir",
        value_name = "DIR",
        help_heading = "Scheduling and the shell"
    )]
    pub tmpdir: Option<PathBuf>,
    /// Pass the environment variable VAR to the commands; on this machine every variable is
    /// passed anyway (`_` names them all).
    #[arg(long, value_name = "VAR", help_heading = "Scheduling and the shell")]
    pub env: Vec<String>,
    // Remote workers.
    /// Run workers on other hosts through ssh: [N/][user@]host[:port], several separated by
    /// commas, `:` for this machine. N/ sets the workers on that host; -j applies to the others.
    #[arg(
        short = 'S',
        long = "sshlogin",
        value_name = "LOGINS",
        help_heading = "Remote workers"
    )]
    pub sshlogin: Vec<String>,
    /// Read sshlogins from FILE, one per line (`#` starts a comment).
    #[arg(
        long = "sshloginfile",
        visible_alias = "slf",
        value_name = "FILE",
        help_heading = "Remote workers"
    )]
    pub sshloginfile: Vec<PathBuf>,
    /// The command that reaches a host [default: ssh]; its words are split as a shell would.
    #[arg(
        long,
        value_name = "CMD",
        overrides_with = "ssh",
        help_heading = "Remote workers"
    )]
    pub ssh: Option<String>,
    /// The troop program on the remote hosts, run there as `PROGRAM --worker-stdio`.
    #[arg(
        long = "remote-worker",
        value_name = "PROGRAM",
        overrides_with = "remote_worker",
        default_value = "troop",
        help_heading = "Remote workers"
    )]
    pub remote_worker: String,
    /// Where workers run: here (`local`), on the -S hosts (`ssh`, implied by -S), or as job
    /// steps of a Slurm allocation (`slurm`: inside the current one when SLURM_JOB_ID is set,
    /// else each worker asks for its own with --slurm-args).
    #[arg(long, value_enum, help_heading = "Remote workers")]
    pub launcher: Option<LauncherArg>,
    /// Options for srun, as one string (its words are split as a shell would): `-p batch -t 60`.
    #[arg(
        long = "slurm-args",
        value_name = "ARGS",
        allow_hyphen_values = true,
        help_heading = "Remote workers"
    )]
    pub slurm_args: Option<String>,
    /// CPUs per worker: srun's --cpus-per-task with Slurm; here, the default -j is the cores
    /// divided by N.
    #[arg(
        long = "cpus-per-task",
        value_name = "N",
        help_heading = "Remote workers"
    )]
    pub cpus_per_task: Option<u32>,
    /// Memory per worker: srun's --mem with Slurm; here, each command's --memory-limit.
    #[arg(long, value_name = "SIZE", help_heading = "Remote workers")]
    pub mem: Option<String>,
    /// The address Slurm workers connect back to [default: this host's name, any free port];
    /// HOST or HOST:PORT.
    #[arg(long, value_name = "HOST[:PORT]", help_heading = "Remote workers")]
    pub listen: Option<String>,
    /// Send FILE (replacement strings allowed: `{}`) to the host before a remote task runs.
    #[arg(
        long = "transferfile",
        visible_alias = "tf",
        value_name = "FILE",
        help_heading = "Remote workers"
    )]
    pub transferfile: Vec<String>,
    /// Send each task's input file to the host first: --transferfile {}.
    #[arg(long, help_heading = "Remote workers")]
    pub transfer: bool,
    /// Bring FILE back from the host after a remote task ends (replacement strings allowed).
    #[arg(long = "return", value_name = "FILE", help_heading = "Remote workers")]
    pub return_file: Vec<String>,
    /// Remove the files sent and brought back from the host after each task.
    #[arg(long, help_heading = "Remote workers")]
    pub cleanup: bool,
    /// Send FILE to every remote worker once, before its first task.
    #[arg(
        long,
        visible_alias = "bf",
        value_name = "FILE",
        help_heading = "Remote workers"
    )]
    pub basefile: Vec<PathBuf>,
    /// --transfer --return FILE --cleanup.
    #[arg(long, value_name = "FILE", help_heading = "Remote workers")]
    pub trc: Vec<String>,
    /// Copy this troop program to each host that lacks it (or has another build), into
    /// ~/.cache/troop/VERSION-HASH/, and run the workers from there.
    #[arg(long = "transfer-worker", help_heading = "Remote workers")]
    pub transfer_worker: bool,
    /// How often each side of a remote worker's stream says it is alive, and how long a
    /// silence means the host is gone: EVERY or EVERY/LIMIT [default LIMIT: 10 x EVERY].
    #[arg(
        long,
        value_name = "EVERY[/LIMIT]",
        default_value = "1s",
        overrides_with = "heartbeat",
        help_heading = "Remote workers"
    )]
    pub heartbeat: String,
    // Output, with GNU parallel's meaning.
    /// Print each task's command line to stdout before its output; -v -v prints the same.
    #[arg(short = 'v', action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,
    /// Print each task's command line to stderr as it starts (with --dry-run too).
    #[arg(short = 't', long = "verbose", help_heading = "Output")]
    pub announce: bool,
    /// Print each task's output whole when it ends, stdout then stderr (the default).
    #[arg(long, conflicts_with = "line_buffer", help_heading = "Output")]
    pub group: bool,
    /// Pass output through as it comes: lines of different tasks may mix; -k, --tag and --color
    /// have no effect.
    #[arg(short = 'u', long, help_heading = "Output")]
    pub ungroup: bool,
    /// Prefix every output line with STR and a TAB: like --tag, with replacement strings such as
    /// `{}`, `{#}`, `{%}`, `{1}` (unquoted) and the escapes `\t`, `\n`, `\r`, `\NNN`.
    #[arg(
        long,
        visible_alias = "tag-string",
        value_name = "STR",
        allow_hyphen_values = true,
        help_heading = "Output"
    )]
    pub tagstring: Option<OsString>,
    /// Colour each task's output lines, each task in a colour of its own (ANSI 256 colours).
    #[arg(long, visible_alias = "colour", help_heading = "Output")]
    pub color: bool,
    /// --tag and --color.
    #[arg(long, help_heading = "Output")]
    pub ctag: bool,
    /// --tagstring STR and --color.
    #[arg(
        long,
        visible_alias = "ctag-string",
        value_name = "STR",
        allow_hyphen_values = true,
        help_heading = "Output"
    )]
    pub ctagstring: Option<OsString>,
    /// Print the name of a file holding each task's stdout instead of the output; the files,
    /// `parXXXXX.par` in $TMPDIR, are left for the caller. stderr is dropped.
    #[arg(
        long,
        visible_alias = "output-as-files",
        alias = "outputasfiles",
        help_heading = "Output"
    )]
    pub files: bool,
    /// Keep each task's output in files instead of printing it: DIR/1/ARG/stdout, stderr and
    /// seq (one level per argument; a DIR with replacement strings names the directory, or with
    /// no final `/` the files themselves), or one table of every task in NAME.csv, NAME.tsv or
    /// NAME.json.
    #[arg(
        long,
        visible_alias = "res",
        alias = "result",
        value_name = "DIR|NAME.csv|NAME.tsv|NAME.json",
        allow_hyphen_values = true,
        help_heading = "Output"
    )]
    pub results: Option<OsString>,
    /// The command, then input sources: COMMAND… [::: ARG…] [:::: FILE…] [:::+ …] [::::+ …]
    /// Any bytes, UTF-8 or not.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Workers for the parallel runs [default: usable cores]
    #[arg(long, value_name = "N")]
    pub cores: Option<usize>,
    /// Smaller batches: about 5 s instead of 30 s on 2 cores.
    #[arg(long)]
    pub quick: bool,
    /// Print the measurements as JSON on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Where to write the bar chart.
    #[arg(long, value_name = "PATH", default_value = "troop-demo.svg")]
    pub svg: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KernelArg {
    Primes,
    Spin,
    Hash,
    Noop,
    Sleep,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The kernel each task runs.
    #[arg(long, value_enum, default_value_t = KernelArg::Primes)]
    pub kernel: KernelArg,
    /// The kernel's argument [default: primes 1000000, spin 100, hash 16, sleep 100]
    #[arg(long, value_name = "N")]
    pub arg: Option<u64>,
    /// Modes to measure, comma-separated: process, thread, gil, async.
    #[arg(long, default_value = "process,thread")]
    pub modes: String,
    /// Worker counts: N, A..B or a list such as 1,2,4 [default: 1..usable cores]
    #[arg(long, value_name = "LIST")]
    pub workers: Option<String>,
    /// Tasks per run [default: 4 × the most workers; 200000 for noop and --dispatch]
    #[arg(long, value_name = "N")]
    pub tasks: Option<usize>,
    /// Repetitions of every cell (interleaved).
    #[arg(long, value_name = "R", default_value_t = 3)]
    pub repeat: usize,
    /// Tasks per IPC message: a number, or `auto`.
    #[arg(long, value_name = "N|auto", default_value = "auto")]
    pub chunksize: String,
    /// Measure dispatch overhead: @noop tasks/s at chunksize 1 and batched, per mode.
    #[arg(long)]
    pub dispatch: bool,
    /// Print CSV.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Write a chart of speedup against workers.
    #[arg(long, value_name = "PATH")]
    pub svg: Option<PathBuf>,
}
