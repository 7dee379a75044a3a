//! Running one command: its own process group, captured output, exit status, signal and usage.
//!
//! A command is started with `posix_spawn` (through `std::process`, which uses it whenever it
//! can) as the leader of a new process group, so that signals and clean-up reach every process it
//! starts. Its stdout and stderr are pipes read with `poll(2)` together with a pidfd, so the end
//! of the command is seen even when a background grandchild keeps a pipe open. The exit status
//! and resource use come from `wait4(2)`.

use std::io::{self, ErrorKind, Read};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::atomic::AtomicI32;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::protocol::{Job, Outcome, Stream, Usage, WorkerConfig};

/// The process group of the command a worker process is running now (0 when none), so that the
/// worker's exit path can kill it. Thread workers do not use it.
pub static CURRENT_PGID: AtomicI32 = AtomicI32::new(0);

/// What a finished command left behind.
#[derive(Debug)]
pub struct Finished {
    pub outcome: Outcome,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub usage: Usage,
}

/// Events a running command produces before it finishes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The command started as the leader of this process group.
    Started { pgid: i32 },
    /// Complete lines (line-buffered mode only).
    Lines { stream: Stream, bytes: &'a [u8] },
}

/// Runs `job` (which must be `Exec` or `Shell`) to completion.
pub fn run(job: &Job, config: &WorkerConfig, on_progress: &mut dyn FnMut(Progress<'_>)) -> Finished {
    let start_unix_us = crate::runtime::unix_now_us();
    let started = Instant::now();
    let mut command = match job {
        Job::Exec(argv) => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        Job::Shell(script) => {
            let mut c = Command::new(&config.shell);
            c.arg("-c").arg(script);
            c
        }
        Job::Kernel(_) => unreachable!("kernels do not run through exec"),
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = match command.spawn() {
        Ok(child) => child,
        Err(err) => return spawn_failed(job, config, &err, start_unix_us, started),
    };
    let pgid = child.id() as i32;
    on_progress(Progress::Started { pgid });
    let (stdout, stderr, status_usage) = collect(child, config.line_buffer, on_progress);
    let (outcome, mut usage) = status_usage;
    usage.start_unix_us = start_unix_us;
    usage.wall_us = started.elapsed().as_micros() as u64;
    Finished {
        outcome,
        stdout,
        stderr,
        usage,
    }
}

fn spawn_failed(job: &Job, config: &WorkerConfig, err: &io::Error, start_unix_us: u64, started: Instant) -> Finished {
    let program = match job {
        Job::Exec(argv) => argv[0].as_str(),
        _ => config.shell.as_str(),
    };
    let (code, message) = match err.kind() {
        ErrorKind::NotFound => (127, format!("{program}: command not found")),
        ErrorKind::PermissionDenied => (126, format!("{program}: permission denied")),
        _ => (126, format!("{program}: cannot run: {err}")),
    };
    Finished {
        stderr: format!("troop: {message}\n").into_bytes(),
        outcome: Outcome::SpawnFailed { code, message },
        stdout: Vec::new(),
        usage: Usage {
            start_unix_us,
            wall_us: started.elapsed().as_micros() as u64,
            ..Usage::default()
        },
    }
}

/// One captured stream: what has been read, and how much of it was already streamed as lines.
struct Capture {
    pipe: Option<OwnedFd>,
    buf: Vec<u8>,
    streamed: usize,
    stream: Stream,
}

impl Capture {
    fn new(pipe: Option<OwnedFd>, stream: Stream) -> Self {
        if let Some(fd) = &pipe {
            set_nonblocking(fd);
        }
        Capture {
            pipe,
            buf: Vec::new(),
            streamed: 0,
            stream,
        }
    }

    /// Reads what is available; closes the pipe at end of file.
    fn drain(&mut self) {
        let Some(fd) = &self.pipe else { return };
        let mut file = std::fs::File::from(fd.try_clone().expect("dup pipe"));
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match file.read(&mut chunk) {
                Ok(0) => {
                    self.pipe = None;
                    return;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.pipe = None;
                    return;
                }
            }
        }
    }

    /// Hands complete lines not yet streamed to `emit`.
    fn stream_lines(&mut self, emit: &mut dyn FnMut(Progress<'_>)) {
        let pending = &self.buf[self.streamed..];
        if let Some(last_newline) = pending.iter().rposition(|&b| b == b'\n') {
            let end = self.streamed + last_newline + 1;
            emit(Progress::Lines {
                stream: self.stream,
                bytes: &self.buf[self.streamed..end],
            });
            self.streamed = end;
        }
    }

    /// What was captured and not streamed.
    fn rest(mut self) -> Vec<u8> {
        if self.streamed == 0 {
            self.buf
        } else {
            self.buf.split_off(self.streamed)
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(fd, FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK));
    }
}

/// A descriptor that becomes readable when process `pid` exits (None on kernels without pidfd).
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        None
    } else {
        // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
        Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}

fn collect(
    mut child: Child,
    line_buffer: bool,
    on_progress: &mut dyn FnMut(Progress<'_>),
) -> (Vec<u8>, Vec<u8>, (Outcome, Usage)) {
    let pid = child.id() as i32;
    let mut out = Capture::new(child.stdout.take().map(ChildStdout::into), Stream::Stdout);
    let mut err = Capture::new(child.stderr.take().map(ChildStderr::into), Stream::Stderr);
    let pidfd = pidfd_open(pid);
    while out.pipe.is_some() || err.pipe.is_some() {
        let mut fds = Vec::with_capacity(3);
        for c in [&out, &err] {
            if let Some(p) = &c.pipe {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
        }
        let watch_pid = pidfd.is_some();
        if let (true, Some(p)) = (watch_pid, &pidfd) {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let pid_ready = watch_pid
            && fds
                .last()
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty());
        drop(fds);
        out.drain();
        err.drain();
        if line_buffer {
            out.stream_lines(on_progress);
            err.stream_lines(on_progress);
        }
        if pid_ready {
            // The command is gone. Whatever it wrote is in the pipes now; a background process
            // that still holds them open does not keep this task running.
            out.drain();
            err.drain();
            break;
        }
    }
    let status = wait4(pid);
    if line_buffer {
        out.stream_lines(on_progress);
        err.stream_lines(on_progress);
    }
    (out.rest(), err.rest(), status)
}

/// Reaps `pid` and returns how it ended and what it used.
fn wait4(pid: i32) -> (Outcome, Usage) {
    let mut status = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `ru` are valid for writes for the duration of the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() == ErrorKind::Interrupted {
            continue;
        }
        return (Outcome::Exited(255), Usage::default());
    }
    let outcome = if libc::WIFSIGNALED(status) {
        Outcome::Signaled(libc::WTERMSIG(status))
    } else {
        Outcome::Exited(libc::WEXITSTATUS(status))
    };
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    (
        outcome,
        Usage {
            user_us: us(ru.ru_utime),
            sys_us: us(ru.ru_stime),
            max_rss_kib: ru.ru_maxrss as u64,
            ..Usage::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Finished {
        run(&Job::Shell(script.into()), &WorkerConfig::default(), &mut |_| {})
    }

    #[test]
    fn captures_both_streams_and_status() {
        let f = shell("echo out; echo err >&2; exit 3");
        assert_eq!(f.stdout, b"out\n");
        assert_eq!(f.stderr, b"err\n");
        assert_eq!(f.outcome, Outcome::Exited(3));
    }

    #[test]
    fn reports_the_killing_signal() {
        let f = shell("kill -9 $$");
        assert_eq!(f.outcome, Outcome::Signaled(9));
    }

    #[test]
    fn a_missing_program_is_127() {
        let f = run(
            &Job::Exec(vec!["/nonexistent/troop-test".into()]),
            &WorkerConfig::default(),
            &mut |_| {},
        );
        assert_eq!(f.outcome.exit_value(), 127);
        assert!(String::from_utf8_lossy(&f.stderr).contains("command not found"));
    }

    #[test]
    fn runs_in_its_own_process_group() {
        let mut pgid = 0;
        let f = run(
            &Job::Shell("ps -o pgid= -p $$".into()),
            &WorkerConfig::default(),
            &mut |p| {
                if let Progress::Started { pgid: g } = p {
                    pgid = g
                }
            },
        );
        let reported: i32 = String::from_utf8_lossy(&f.stdout).trim().parse().unwrap();
        assert_eq!(reported, pgid);
        assert_ne!(pgid, nix::unistd::getpgrp().as_raw());
    }

    #[test]
    fn a_background_grandchild_does_not_hold_the_task() {
        let t = Instant::now();
        let mut pgid = 0;
        let f = run(
            &Job::Shell("sleep 5 & echo started".into()),
            &WorkerConfig::default(),
            &mut |p| {
                if let Progress::Started { pgid: g } = p {
                    pgid = g
                }
            },
        );
        assert_eq!(f.stdout, b"started\n");
        assert!(t.elapsed().as_secs() < 4, "waited for the grandchild");
        // The grandchild is still in the task's group: clean it up through the group.
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::SIGKILL).unwrap();
    }

    #[test]
    fn line_buffer_streams_whole_lines_only() {
        let mut lines = Vec::new();
        let config = WorkerConfig {
            line_buffer: true,
            ..WorkerConfig::default()
        };
        let f = run(
            &Job::Shell("printf 'a\\nb\\nc'".into()),
            &config,
            &mut |p| {
                if let Progress::Lines { bytes, .. } = p {
                    lines.push(bytes.to_vec())
                }
            },
        );
        assert_eq!(lines.concat(), b"a\nb\n");
        assert_eq!(f.stdout, b"c");
    }
}
