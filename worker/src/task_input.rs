//! What a command reads: a block of `--pipe` input or a range of a `--pipepart` file, given on
//! its standard input, in a temporary file (`--cat`) or through a named pipe (`--fifo`).
//!
//! [`attach`] prepares the command before it is spawned, and [`Pending::start`] starts feeding
//! it once it runs. A range of a file that reaches the file's end with nothing before it is given
//! to the command as the open file itself, positioned at the range: no byte is copied. Anything
//! else is written into a pipe by a thread of its own, a file range with `sendfile(2)`, inside the
//! kernel, so a slow reader never blocks the worker. A
//! stream of blocks (`--roundrobin`) comes through a named pipe the supervisor writes into. A
//! command that stops reading early ends the feeding (the write fails with `EPIPE`, which is not
//! an error of the task, as in GNU parallel). The [`Guard`] removes the temporary file or named
//! pipe when the task ends.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::protocol::{InputData, InputVia, TaskInput};

/// Feeding still to start once the command runs.
#[must_use]
#[derive(Debug)]
pub struct Pending {
    feed: Option<Feed>,
    guard: Guard,
}

/// Where the bytes are written once the command runs.
#[derive(Debug)]
enum Feed {
    /// Into the command's standard input pipe.
    Stdin(InputData),
    /// Into the named pipe at this path.
    Fifo(InputData, PathBuf),
}

/// Removes a task's temporary file or named pipe when dropped.
#[derive(Debug, Default)]
pub struct Guard {
    path: Option<PathBuf>,
    fifo: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(path) = self.path.take() else {
            return;
        };
        if self.fifo {
            // A feeder still waiting for a reader (the command never opened the pipe) is let
            // go: this open gives it one, and the close that follows makes its writes fail.
            drop(
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&path),
            );
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// Sets up `command` to read `input`; the returned [`Pending`] starts the feeding after spawn.
/// A command without input reads `/dev/null` as before.
pub fn attach(command: &mut Command, input: Option<&TaskInput>) -> io::Result<Pending> {
    let Some(input) = input else {
        return Ok(Pending {
            feed: None,
            guard: Guard::default(),
        });
    };
    let path = |p: &String| PathBuf::from(OsStr::from_bytes(p.as_bytes()));
    match &input.via {
        InputVia::Stdin => {
            if let Some(file) = whole_tail(&input.data)? {
                command.stdin(Stdio::from(file));
                return Ok(Pending {
                    feed: None,
                    guard: Guard::default(),
                });
            }
            command.stdin(Stdio::piped());
            Ok(Pending {
                feed: Some(Feed::Stdin(input.data.clone())),
                guard: Guard::default(),
            })
        }
        InputVia::File(p) => {
            let p = path(p);
            let guard = Guard {
                path: Some(p.clone()),
                fifo: false,
            };
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&p)?;
            write_data(&input.data, &mut file)?;
            Ok(Pending { feed: None, guard })
        }
        InputVia::Fifo(p) => {
            let p = path(p);
            let _ = std::fs::remove_file(&p);
            nix::unistd::mkfifo(
                &p,
                nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
            )
            .map_err(io::Error::from)?;
            Ok(Pending {
                feed: Some(Feed::Fifo(input.data.clone(), p.clone())),
                guard: Guard {
                    path: Some(p),
                    fifo: true,
                },
            })
        }
    }
}

impl Pending {
    /// Starts feeding `child`, which was spawned from the command [`attach`] prepared. The
    /// returned guard must live until the command has ended.
    pub fn start(self, child: &mut Child) -> Guard {
        match self.feed {
            None => {}
            Some(Feed::Stdin(data)) => {
                if let Some(mut pipe) = child.stdin.take() {
                    widen(&pipe);
                    feed_thread(move || {
                        let _ = write_data(&data, &mut pipe);
                    });
                }
            }
            Some(Feed::Fifo(data, path)) => {
                feed_thread(move || {
                    if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&path) {
                        let _ = write_data(&data, &mut fifo);
                    }
                });
            }
        }
        self.guard
    }
}

/// Bytes a pipe to a command holds: more than the default 64 KiB means fewer wake-ups of the
/// feeding thread and the command while a large block passes.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// Grows `pipe` to [`PIPE_SIZE`] where the system allows (it may cap the size lower).
fn widen(pipe: &impl std::os::fd::AsRawFd) {
    // SAFETY: F_SETPIPE_SZ on an open descriptor only changes the pipe's capacity; a failure
    // leaves the pipe as it was.
    unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
}

/// Runs `feed` on a thread of its own; it ends when everything is written or the reader has
/// gone. Should no thread be available, the command reads end-of-file early and the task's
/// outcome says what it made of that.
fn feed_thread(feed: impl FnOnce() + Send + 'static) {
    let _ = std::thread::Builder::new()
        .name("troop-feed".into())
        .spawn(feed);
}

/// The file of a range that starts with no header and runs to the end of its file, opened and
/// positioned at the range: the command can read it directly.
fn whole_tail(data: &InputData) -> io::Result<Option<File>> {
    let (path, head, offset, len) = match data {
        InputData::File {
            path,
            head,
            offset,
            len,
        } => (path, head, offset, len),
        // Opening waits for the writer, which opens the pipes of all tasks in turn.
        InputData::Stream { path } => {
            return File::open(OsStr::from_bytes(path.as_bytes())).map(Some);
        }
        InputData::Bytes(_) => return Ok(None),
    };
    if !head.is_empty() {
        return Ok(None);
    }
    let mut file = File::open(OsStr::from_bytes(path.as_bytes()))?;
    if file.metadata()?.len() != offset + len {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(*offset))?;
    Ok(Some(file))
}

/// Writes all of `data` to `out`.
fn write_data(data: &InputData, out: &mut (impl Write + AsRawFd)) -> io::Result<()> {
    match data {
        InputData::Bytes(bytes) => out.write_all(bytes),
        InputData::File {
            path,
            head,
            offset,
            len,
        } => {
            out.write_all(head)?;
            let mut file = File::open(OsStr::from_bytes(path.as_bytes()))?;
            let sent = send_range(&file, *offset, *len, out)?;
            file.seek(SeekFrom::Start(offset + sent))?;
            io::copy(&mut file.take(len - sent), out)?;
            Ok(())
        }
        InputData::Stream { path } => {
            let mut stream = File::open(OsStr::from_bytes(path.as_bytes()))?;
            io::copy(&mut stream, out)?;
            Ok(())
        }
    }
}

/// Sends `len` bytes of `file` from `offset` to `out` inside the kernel (`sendfile(2)`), with
/// no copy through this process; returns how many it sent, fewer when the kernel cannot send
/// to `out` this way (the caller copies the rest).
fn send_range(file: &File, offset: u64, len: u64, out: &impl AsRawFd) -> io::Result<u64> {
    let mut at = offset as libc::off_t;
    let mut sent = 0u64;
    while sent < len {
        let chunk = (len - sent).min(1 << 30) as usize;
        // SAFETY: both descriptors are open for the duration of the call, and `at` is a valid
        // offset the kernel updates.
        let n = unsafe { libc::sendfile(out.as_raw_fd(), file.as_raw_fd(), &mut at, chunk) };
        match n {
            0 => break,
            n if n > 0 => sent += n as u64,
            _ => {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
                    Some(libc::EINVAL) | Some(libc::ENOSYS) => break,
                    _ => return Err(err),
                }
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(command: &str, input: TaskInput) -> Vec<u8> {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(command).stdout(Stdio::piped());
        let pending = attach(&mut c, Some(&input)).expect("attach");
        let mut child = c.spawn().expect("spawn");
        let _guard = pending.start(&mut child);
        child.wait_with_output().expect("wait").stdout
    }

    fn file_with(bytes: &[u8]) -> (tempfile_free::Dir, String) {
        let dir = tempfile_free::Dir::new();
        let path = dir.0.join("data");
        std::fs::write(&path, bytes).expect("write");
        (dir, path.to_string_lossy().into_owned())
    }

    /// A private directory removed on drop (the worker crate has no temp-file dependency).
    mod tempfile_free {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let p = std::env::temp_dir()
                    .join(format!("troop-input-test-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).expect("mkdir");
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn bytes_reach_the_commands_stdin() {
        let input = TaskInput {
            data: InputData::Bytes(b"a\nb\n\xff\n".to_vec()),
            via: InputVia::Stdin,
        };
        assert_eq!(run("cat", input), b"a\nb\n\xff\n");
    }

    #[test]
    fn a_file_range_with_a_header_reaches_stdin() {
        let (_dir, path) = file_with(b"0123456789");
        let input = TaskInput {
            data: InputData::File {
                path,
                head: b"h:".to_vec(),
                offset: 3,
                len: 4,
            },
            via: InputVia::Stdin,
        };
        assert_eq!(run("cat", input), b"h:3456");
    }

    #[test]
    fn a_range_to_the_end_is_the_file_itself() {
        let (_dir, path) = file_with(b"0123456789");
        let input = TaskInput {
            data: InputData::File {
                path,
                head: Vec::new(),
                offset: 6,
                len: 4,
            },
            via: InputVia::Stdin,
        };
        assert_eq!(run("cat", input), b"6789");
    }

    #[test]
    fn cat_and_fifo_name_a_path_that_is_removed_afterwards() {
        let dir = tempfile_free::Dir::new();
        for fifo in [false, true] {
            let p = dir.0.join(if fifo { "f" } else { "c" });
            let s = p.to_string_lossy().into_owned();
            let via = if fifo {
                InputVia::Fifo(s.clone())
            } else {
                InputVia::File(s.clone())
            };
            let input = TaskInput {
                data: InputData::Bytes(b"x\ny\n".to_vec()),
                via,
            };
            assert_eq!(run(&format!("cat {s}"), input), b"x\ny\n");
            assert!(!p.exists(), "{s} left behind");
        }
    }

    #[test]
    fn a_command_that_never_reads_its_fifo_is_not_waited_for() {
        let dir = tempfile_free::Dir::new();
        let s = dir.0.join("f").to_string_lossy().into_owned();
        let input = TaskInput {
            data: InputData::Bytes(vec![b'x'; 1 << 20]),
            via: InputVia::Fifo(s),
        };
        assert_eq!(run("echo done", input), b"done\n");
    }
}
