//! Output held back while the dashboard owns the terminal: what a run writes to a stdout or
//! stderr that is the terminal is kept, in order, in memory up to a limit and then in an
//! unlinked file in the temporary directory, and written out once the terminal is restored.
//! A stream that is not the terminal (stdout redirected to a file) is left alone.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use crate::run_io::RunIo;

/// Bytes held in memory before the rest goes to a file.
const MEMORY_LIMIT: usize = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out = 1,
    Err = 2,
}

struct Inner {
    holding: bool,
    /// Held chunks in the order written; a chunk continues the one before when on its stream.
    chunks: Vec<(Stream, Vec<u8>)>,
    in_memory: usize,
    /// Past the memory limit: records of (stream byte, length as 8 bytes, bytes).
    spill: Option<File>,
    tmpdir: PathBuf,
    out: Option<Box<dyn Write + Send>>,
    err: Option<Box<dyn Write + Send>>,
}

impl Inner {
    fn real(&mut self, stream: Stream) -> &mut Box<dyn Write + Send> {
        let w = match stream {
            Stream::Out => &mut self.out,
            Stream::Err => &mut self.err,
        };
        w.as_mut().expect("only a held stream is wrapped")
    }

    fn hold(&mut self, stream: Stream, buf: &[u8]) -> io::Result<()> {
        if self.spill.is_none() && self.in_memory + buf.len() <= MEMORY_LIMIT {
            self.in_memory += buf.len();
            match self.chunks.last_mut() {
                Some((s, bytes)) if *s == stream => bytes.extend_from_slice(buf),
                _ => self.chunks.push((stream, buf.to_vec())),
            }
            return Ok(());
        }
        if self.spill.is_none() {
            self.spill = Some(spill_file(&self.tmpdir)?);
        }
        let file = self.spill.as_mut().expect("made above");
        file.write_all(&[stream as u8])?;
        file.write_all(&(buf.len() as u64).to_le_bytes())?;
        file.write_all(buf)
    }

    /// Writes out everything held, in order, and passes what comes later straight through.
    fn release(&mut self) -> io::Result<()> {
        if !self.holding {
            return Ok(());
        }
        self.holding = false;
        for (stream, bytes) in std::mem::take(&mut self.chunks) {
            self.real(stream).write_all(&bytes)?;
        }
        if let Some(mut file) = self.spill.take() {
            file.rewind()?;
            let mut file = io::BufReader::new(file);
            let mut head = [0u8; 9];
            while file.read_exact(&mut head).is_ok() {
                let stream = if head[0] == Stream::Out as u8 {
                    Stream::Out
                } else {
                    Stream::Err
                };
                let len = u64::from_le_bytes(head[1..].try_into().expect("8 bytes"));
                let mut bytes = vec![0; len as usize];
                file.read_exact(&mut bytes)?;
                self.real(stream).write_all(&bytes)?;
            }
        }
        for w in [&mut self.out, &mut self.err].into_iter().flatten() {
            w.flush()?;
        }
        Ok(())
    }
}

/// A file for held output, unlinked at once: it goes when troop does.
fn spill_file(dir: &std::path::Path) -> io::Result<File> {
    for n in 0..100u32 {
        let path = dir.join(format!("troop-held-{}-{n}", std::process::id()));
        match File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free name for a file of held output"))
}

/// The handle that releases held output.
pub struct Held(Arc<Mutex<Inner>>);

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

impl Held {
    /// Wraps the streams of `io` that are the terminal (`out_tty`, `err_tty`) so that what is
    /// written to them is held; `None` when neither is.
    pub fn wrap(io: &mut RunIo, tmpdir: PathBuf, out_tty: bool, err_tty: bool) -> Option<Held> {
        if !out_tty && !err_tty {
            return None;
        }
        let sink = || -> Box<dyn Write + Send> { Box::new(io::sink()) };
        let inner = Arc::new(Mutex::new(Inner {
            holding: true,
            chunks: Vec::new(),
            in_memory: 0,
            spill: None,
            tmpdir,
            out: out_tty.then(|| std::mem::replace(&mut io.stdout, sink())),
            err: err_tty.then(|| std::mem::replace(&mut io.stderr, sink())),
        }));
        let writer = |stream| -> Box<dyn Write + Send> {
            Box::new(HeldWriter {
                stream,
                inner: inner.clone(),
            })
        };
        if out_tty {
            io.stdout = writer(Stream::Out);
        }
        if err_tty {
            io.stderr = writer(Stream::Err);
        }
        Some(Held(inner))
    }

    /// Wraps the process's own streams that are terminals.
    pub fn wrap_terminals(io: &mut RunIo, tmpdir: PathBuf) -> Option<Held> {
        Held::wrap(
            io,
            tmpdir,
            io::stdout().is_terminal(),
            io::stderr().is_terminal(),
        )
    }

    /// Writes out what was held (call it once the terminal is restored).
    pub fn release(&self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // On an error or a panic, what was held is still written out.
        let _ = self.release();
    }
}

struct HeldWriter {
    stream: Stream,
    inner: Arc<Mutex<Inner>>,
}

impl Write for HeldWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.holding {
            inner.hold(self.stream, buf)?;
            Ok(buf.len())
        } else {
            inner.real(self.stream).write(buf)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.holding {
            Ok(())
        } else {
            inner.real(self.stream).flush()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn output_is_held_in_order_until_released_even_past_the_memory_limit() {
        let screen = Shared::default();
        let mut io = RunIo::discard();
        io.stdout = Box::new(screen.clone());
        io.stderr = Box::new(screen.clone());
        let dir = std::env::temp_dir();
        let held = Held::wrap(&mut io, dir, true, true).unwrap();
        io.stdout.write_all(b"one\n").unwrap();
        io.stderr.write_all(b"two\n").unwrap();
        let big = vec![b'x'; MEMORY_LIMIT];
        io.stdout.write_all(&big).unwrap();
        io.stderr.write_all(b"three\n").unwrap();
        io.stdout.flush().unwrap();
        assert!(
            screen.0.lock().unwrap().is_empty(),
            "nothing passes while held"
        );
        held.release().unwrap();
        io.stdout.write_all(b"four\n").unwrap();
        let seen = screen.0.lock().unwrap().clone();
        let mut want = b"one\ntwo\n".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"three\nfour\n");
        assert!(seen == want, "held output came out in another order");
    }

    #[test]
    fn a_stream_that_is_not_the_terminal_is_not_held() {
        let (out, err) = (Shared::default(), Shared::default());
        let mut io = RunIo::discard();
        io.stdout = Box::new(out.clone());
        io.stderr = Box::new(err.clone());
        let held = Held::wrap(&mut io, std::env::temp_dir(), false, true).unwrap();
        io.stdout.write_all(b"to a file\n").unwrap();
        io.stderr.write_all(b"held\n").unwrap();
        assert_eq!(out.0.lock().unwrap().as_slice(), b"to a file\n");
        assert!(err.0.lock().unwrap().is_empty());
        drop(held);
        assert_eq!(err.0.lock().unwrap().as_slice(), b"held\n");
        assert!(Held::wrap(&mut RunIo::discard(), std::env::temp_dir(), false, false).is_none());
    }
}
