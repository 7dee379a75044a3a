//! The worker as a process of its own: bootstrap, identity (`troop-w<N>` in `top`), and dying
//! with the supervisor.
//!
//! A spawned worker finds the supervisor's one-shot socket, its token and its index in its
//! environment (never on its command line, where `ps` would show the token), connects, and sends a
//! [`Bootstrap`] carrying its [`Hello`] and the channel ends the supervisor keeps. A forked worker
//! inherits its channel ends instead, and starts at [`serve_forked`].
//!
//! Either way the worker asks the kernel for `SIGTERM` when its parent dies
//! (`PR_SET_PDEATHSIG`). A small signal thread then kills the process group of the command that is
//! running, so no task outlives its worker, and exits.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ipc_channel::ipc::{self, IpcReceiver, IpcSender};

use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;

use crate::exec::CURRENT_PGID;
use crate::kernel::CancelHost;
use crate::protocol::{Bootstrap, FromWorker, Hello, PROTOCOL_VERSION, ToWorker};
use crate::stream::{Heartbeat, StreamTransport};
use crate::title;
use crate::transport::{IpcTransport, Transport};

/// The name of the one-shot server to connect to.
pub const ENV_SERVER: &str = "TROOP_WORKER_SERVER";
/// The token that proves this worker was started by this supervisor.
pub const ENV_TOKEN: &str = "TROOP_WORKER_TOKEN";
/// The worker's index, from 0.
pub const ENV_INDEX: &str = "TROOP_WORKER_INDEX";
/// The supervisor's pid; a worker whose parent is already someone else exits at once.
pub const ENV_PARENT: &str = "TROOP_WORKER_PARENT";

/// The program name a spawned worker runs under: `ps` shows `troop-worker [w<N>]`.
pub const WORKER_ARGV0: &str = "troop-worker";

/// The short name a worker shows in `top`: `troop-w<N>`, N from 1.
pub fn comm_name(index: u32) -> String {
    format!("troop-w{}", index + 1)
}

/// The one argument of a spawned worker: `[w<N>]`, N from 1.
pub fn worker_arg(index: u32) -> String {
    format!("[w{}]", index + 1)
}

/// True when this process was started as a worker: its argv is exactly `troop-worker [w<N>]`,
/// perhaps followed by the spaces that make room for its title ([`crate::title::room_arg`]).
///
/// This is how the `troop` program serves as its own worker. The marker is the command line, not
/// the environment, so a `troop` that a task runs (whatever variables it inherited) is never
/// taken for a worker: a user's command line starts with the program's own name.
pub fn invoked_as_worker() -> bool {
    let args: Vec<std::ffi::OsString> = std::env::args_os().take(4).collect();
    let (argv0, arg) = match args.as_slice() {
        [argv0, arg] => (argv0, arg),
        [argv0, arg, room] if room.to_str().is_some_and(crate::title::is_room_arg) => (argv0, arg),
        _ => return false,
    };
    let named = std::path::Path::new(argv0).file_name() == Some(WORKER_ARGV0.as_ref());
    let marker = arg.to_str().is_some_and(|a| {
        a.strip_prefix("[w")
            .and_then(|rest| rest.strip_suffix(']'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    named && marker
}

/// Writes one message line to stderr in a single `write`, so that the lines of troop and of its
/// workers, which share the terminal, never splice into one another.
pub fn eprint_line(line: &str) {
    use std::io::Write;
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Entry point of a worker process (the `troop-worker` program, and `troop` started as a
/// worker): connects to the supervisor and serves it.
pub fn main() -> ExitCode {
    // Before the first batch arrives: its decoding is the first large allocation.
    crate::exec::tune_allocator();
    match bootstrap() {
        Ok(transport) => ExitCode::from(serve_code(transport) as u8),
        Err(msg) => {
            eprint_line(&format!("troop-worker: {msg}"));
            ExitCode::from(2)
        }
    }
}

/// Reads the bootstrap variables, takes on the worker's identity, connects to the supervisor and
/// says hello.
fn bootstrap() -> Result<IpcTransport, String> {
    let read = |key: &str| std::env::var(key).ok();
    let (Some(server), Some(token), Some(index), Some(parent)) = (
        read(ENV_SERVER),
        read(ENV_TOKEN),
        read(ENV_INDEX),
        read(ENV_PARENT),
    ) else {
        return Err("this program is started by `troop`; it is not meant to be run by hand".into());
    };
    let (Ok(index), Ok(parent)) = (index.parse::<u32>(), parent.parse::<i32>()) else {
        return Err(format!("malformed {ENV_INDEX} or {ENV_PARENT}"));
    };
    // SAFETY: the worker is still single-threaded here, so nothing reads the environment
    // concurrently. The tasks it starts must not inherit these variables.
    unsafe {
        for key in [ENV_SERVER, ENV_TOKEN, ENV_INDEX, ENV_PARENT] {
            std::env::remove_var(key);
        }
    }
    // SAFETY: `invoked_as_worker` and `main` copied the arguments already; this is the
    // process's only title area.
    if let Some(area) = unsafe { title::Area::argv() } {
        show_titles(area, format!("{WORKER_ARGV0} {}", worker_arg(index)), "");
    }
    become_worker(index, parent)?;
    let bootstrap = IpcSender::<Bootstrap>::connect(server)
        .map_err(|e| format!("cannot reach the supervisor: {e}"))?;
    let channel_error = |e: std::io::Error| format!("cannot create a channel: {e}");
    let (to_worker, rx) = ipc::channel::<ToWorker>().map_err(channel_error)?;
    let (tx, from_worker) = ipc::channel::<FromWorker>().map_err(channel_error)?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
        index,
        token,
    };
    bootstrap
        .send(Bootstrap {
            hello,
            to_worker,
            from_worker,
        })
        .map_err(|e| format!("cannot say hello to the supervisor: {e}"))?;
    Ok(IpcTransport::new(rx, tx))
}

/// Entry point of a worker forked from the supervisor or the fork server, with the channel ends
/// it inherited: it leads a process group of its own and renames its command line, since it
/// would otherwise read like its parent's. Never returns.
pub fn serve_forked(
    index: u32,
    parent: i32,
    token: String,
    rx: IpcReceiver<ToWorker>,
    tx: IpcSender<FromWorker>,
) -> ! {
    let _ = nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0));
    // SAFETY: a forked worker is single-threaded until `become_worker` (it was forked from a
    // single-threaded supervisor or from the fork server, which never starts a thread), the
    // supervisor's arguments it inherited were copied before the fork, and this is the process's
    // only title area.
    if let Some(area) = unsafe { title::Area::argv_and_environ() } {
        show_titles(
            area,
            format!("{WORKER_ARGV0} {}", worker_arg(index)),
            " (forked)",
        );
    }
    let code = match become_worker(index, parent) {
        Ok(()) => {
            let mut transport = IpcTransport::new(rx, tx);
            let hello = Hello {
                protocol_version: PROTOCOL_VERSION,
                pid: std::process::id(),
                index,
                token,
            };
            if transport.send(FromWorker::Hello(hello)).is_err() {
                std::process::exit(2);
            }
            serve_code(transport)
        }
        Err(msg) => {
            eprint_line(&format!("troop-worker: {msg}"));
            2
        }
    };
    std::process::exit(code)
}

/// The argument that makes `troop` (or `troop-worker`) a worker speaking over its stdin and
/// stdout: `troop --worker-stdio [w<N>] [--heartbeat EVERY_MS/LIMIT_MS]`, as ssh runs it.
pub const STDIO_FLAG: &str = "--worker-stdio";

/// How a stdio worker was asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdioArgs {
    pub index: u32,
    pub beat: Heartbeat,
}

/// `Some` when this process was started as a stdio worker; `Err` names a malformed argument.
pub fn stdio_worker_args<I: IntoIterator<Item = std::ffi::OsString>>(
    args: I,
) -> Option<Result<StdioArgs, String>> {
    let mut args = args.into_iter().skip(1);
    if args.next()? != STDIO_FLAG {
        return None;
    }
    let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    Some(worker_options(STDIO_FLAG, &rest))
}

/// The argument that makes `troop` (or `troop-worker`) a worker that connects back to its
/// supervisor over TCP: `troop --worker-connect HOST:PORT [w<N>] [--heartbeat EVERY_MS/LIMIT_MS]`,
/// with the run's secret in the environment (see [`crate::connect`]).
pub const CONNECT_FLAG: &str = "--worker-connect";

/// How a worker that connects back was asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectArgs {
    /// `HOST:PORT`, as given.
    pub addr: String,
    pub index: u32,
    pub beat: Heartbeat,
}

/// `Some` when this process was started as a worker that connects back; `Err` names a
/// malformed argument.
pub fn connect_worker_args<I: IntoIterator<Item = std::ffi::OsString>>(
    args: I,
) -> Option<Result<ConnectArgs, String>> {
    let mut args = args.into_iter().skip(1);
    if args.next()? != CONNECT_FLAG {
        return None;
    }
    let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    let addr = rest.first().map(String::as_str).unwrap_or_default();
    let port = addr
        .rsplit_once(':')
        .map(|(host, port)| (host, port.parse::<u16>()));
    if !matches!(port, Some((host, Ok(port))) if !host.is_empty() && port > 0) {
        return Some(Err(format!(
            "{CONNECT_FLAG} wants the supervisor's HOST:PORT first, not `{addr}`"
        )));
    }
    Some(
        worker_options(CONNECT_FLAG, &rest[1..]).map(|o| ConnectArgs {
            addr: addr.to_owned(),
            index: o.index,
            beat: o.beat,
        }),
    )
}

/// `[w<N>]` and `--heartbeat EVERY_MS/LIMIT_MS`, after `flag`.
fn worker_options(flag: &str, rest: &[String]) -> Result<StdioArgs, String> {
    let mut parsed = StdioArgs {
        index: 0,
        beat: Heartbeat::default(),
    };
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        if let Some(n) = arg.strip_prefix("[w").and_then(|a| a.strip_suffix(']')) {
            match n.parse::<u32>() {
                Ok(n) if n >= 1 => parsed.index = n - 1,
                _ => return Err(format!("{flag}: bad worker name `{arg}`")),
            }
        } else if arg == "--heartbeat" {
            let value = rest.next().map(String::as_str).unwrap_or_default();
            let ms = value
                .split_once('/')
                .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
            match ms {
                Some((every, limit)) if every > 0 && limit > every => {
                    parsed.beat = Heartbeat {
                        every: std::time::Duration::from_millis(every),
                        limit: std::time::Duration::from_millis(limit),
                    }
                }
                _ => {
                    return Err(format!(
                        "{flag}: --heartbeat wants EVERY_MS/LIMIT_MS with LIMIT > EVERY > 0, not `{value}`"
                    ));
                }
            }
        } else {
            return Err(format!("{flag}: unknown argument `{arg}`"));
        }
    }
    Ok(parsed)
}

/// Entry point of a worker whose stream is its stdin and stdout (`troop --worker-stdio`): a
/// worker on another host, started through ssh. Says hello as soon as it is up; the supervisor
/// vouches for nothing else, since ssh already authenticated both ends.
pub fn serve_stdio(args: StdioArgs) -> ExitCode {
    serve_or_report(open_stdio(&args))
}

/// Serves the supervisor over `transport`, or says why there is none; the process's exit code.
pub(crate) fn serve_or_report<T: Transport>(transport: Result<T, String>) -> ExitCode {
    match transport {
        Ok(transport) => ExitCode::from(serve_code(transport) as u8),
        Err(msg) => {
            eprint_line(&format!("troop-worker: {msg}"));
            ExitCode::from(2)
        }
    }
}

fn open_stdio(args: &StdioArgs) -> Result<StreamTransport<std::fs::File>, String> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // The stream keeps the original stdin and stdout; fd 0 becomes /dev/null and fd 1 a copy of
    // stderr, so nothing a task or a library prints can reach the stream.
    let keep = |fd: i32| {
        // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor, owned from here on.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if new < 0 {
            return Err(format!(
                "cannot take over descriptor {fd}: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `new` was just opened and is owned by nothing else.
        Ok(unsafe { std::fs::File::from_raw_fd(new) })
    };
    let (input, output) = (keep(0)?, keep(1)?);
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    // SAFETY: dup2 onto the standard descriptors, which this process owns.
    unsafe {
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(2, 1);
    }
    open_stream(input, output, args.index, args.beat, " (stdio)", false)
}

/// Takes on the identity of worker `index` (its title ends in `how`), opens the stream's
/// transport and says hello. `greeted`: the streams' greeting was exchanged already.
///
/// The process must still be single-threaded: it takes over its title area.
pub(crate) fn open_stream<R, W>(
    input: R,
    output: W,
    index: u32,
    beat: Heartbeat,
    how: &str,
    greeted: bool,
) -> Result<StreamTransport<W>, String>
where
    R: std::io::Read + Send + 'static,
    W: std::io::Write + Send + 'static,
{
    // SAFETY: nothing else holds the title area of this single-threaded process yet.
    if let Some(area) = unsafe { title::Area::argv() } {
        show_titles(area, format!("{WORKER_ARGV0} {}", worker_arg(index)), how);
    }
    become_worker(index, nix::unistd::getppid().as_raw())?;
    let on_silence: Arc<dyn Fn() + Send + Sync> = Arc::new(|| {
        // The supervisor is unreachable: what runs is stopped, and the worker ends.
        let pgid = CURRENT_PGID.load(Ordering::SeqCst);
        if pgid > 0 {
            // SAFETY: killpg has no memory effects.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
        eprint_line("troop-worker: the supervisor went silent; exiting");
        std::process::exit(3);
    });
    let mut transport = if greeted {
        StreamTransport::open_greeted(input, output, beat, on_silence)
    } else {
        StreamTransport::open(input, output, beat, on_silence)
    }
    .map_err(|e| format!("cannot open the stream: {e}"))?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
        index,
        token: String::new(),
    };
    transport
        .send(FromWorker::Hello(hello))
        .map_err(|e| format!("cannot say hello to the supervisor: {e}"))?;
    Ok(transport)
}

fn serve_code<T: Transport>(mut transport: T) -> i32 {
    let host = CancelHost {
        cancel: CANCEL.get().cloned().unwrap_or_default(),
    };
    match crate::runtime::serve_free(&mut transport, host) {
        Ok(()) => 0,
        Err(_) => {
            // The channel closed without a Shutdown: the supervisor is gone (its files close
            // before the kernel even reparents this process, so getppid cannot tell yet). Its
            // run directory is ours to remove.
            if let Some(dir) = crate::exec::SPILL_DIR.get() {
                let _ = std::fs::remove_dir_all(dir);
            }
            3
        }
    }
}

/// Raised by SIGUSR1 (the supervisor's second interrupt): running kernels stop.
static CANCEL: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Takes on a worker's identity: name, death with the parent, a signal thread that cleans up,
/// and SIGUSR1 to stop a running kernel.
pub fn become_worker(index: u32, parent: i32) -> Result<(), String> {
    set_comm(&comm_name(index));
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and has no memory effects.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    if nix::unistd::getppid().as_raw() != parent {
        return Err("the supervisor exited before this worker started".into());
    }
    let watched = [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGUSR1];
    let mut signals = SignalsInfo::<WithOrigin>::new(watched)
        .map_err(|e| format!("cannot watch signals: {e}"))?;
    let cancel = CANCEL.get_or_init(Arc::default).clone();
    let main_thread = std::thread::current();
    std::thread::Builder::new()
        .name("troop-w-signals".into())
        .spawn(move || {
            for origin in signals.forever() {
                let sig = origin.signal;
                if sig == libc::SIGUSR1 {
                    cancel.store(true, Ordering::Relaxed);
                    main_thread.unpark();
                    continue;
                }
                let pgid = CURRENT_PGID.load(Ordering::SeqCst);
                if pgid > 0 {
                    // SAFETY: killpg has no memory effects.
                    unsafe { libc::killpg(pgid, libc::SIGKILL) };
                }
                // The parent-death signal comes from the supervisor as it dies (the supervisor
                // itself never sends SIGTERM to a worker). Nobody else will remove its spilled
                // output. (getppid cannot tell: the kernel signals before it has reparented every
                // thread of this process.)
                let from_parent = origin.process.is_some_and(|p| p.pid == parent);
                if (from_parent || nix::unistd::getppid().as_raw() != parent)
                    && let Some(dir) = crate::exec::SPILL_DIR.get()
                {
                    let _ = std::fs::remove_dir_all(dir);
                }
                std::process::exit(128 + sig);
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}

/// Sets this process's short name, as `top` and `/proc/PID/comm` show it.
pub fn set_comm(name: &str) {
    let mut bytes = [0u8; 16];
    let n = name.len().min(15);
    bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes, which `bytes` is.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, bytes.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

/// Shows `prefix` and `suffix` as the worker's title until its first task, and `prefix` at the
/// head of every task's title from then on (see [`crate::title`]).
fn show_titles(mut area: title::Area, prefix: String, suffix: &str) {
    area.set(format!("{prefix}{suffix}").as_bytes());
    title::enable_task_titles(area, prefix);
}

/// Rewrites this process's command line as `ps` shows it (for the fork server, whose argv would
/// otherwise read like the supervisor's). The new title is cut to the space of the old one.
pub fn set_title(title: &str) {
    // SAFETY: the fork server read nothing from its argv (it inherited the supervisor's copies)
    // and holds no other title area.
    if let Some(mut area) = unsafe { title::Area::argv() } {
        area.set(title.as_bytes());
    }
}
