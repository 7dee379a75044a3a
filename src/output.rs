//! Task output: the sole owner of troop's stdout and stderr during a run.
//!
//! Grouped output (the default) prints each task's stdout and then its stderr whole, when the task
//! ends, so two tasks' output never mixes. Line-buffered output prints complete lines as they are
//! written. With `--keep-order`, output appears in input order: a task that ends early is held
//! until every task before it has been printed (in line-buffered mode the oldest running task
//! streams and the others are held). With `--tag`, every line starts with the task's arguments
//! and a TAB.
//!
//! Writes are buffered; stdout is flushed before any stderr is written and whenever the
//! supervisor is about to wait, so output is prompt without a system call per line.

use std::collections::BTreeMap;
use std::io::{self, Write};

use troop_worker::protocol::Stream;

/// A task's output held back for ordering.
#[derive(Debug, Default)]
struct Held {
    tag: Option<String>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    done: bool,
}

/// Where task output goes.
pub struct Output {
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    keep_order: bool,
    /// The next task to print, with `--keep-order`.
    next: u64,
    held: BTreeMap<u64, Held>,
    dirty: bool,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("keep_order", &self.keep_order)
            .field("next", &self.next)
            .field("held", &self.held.len())
            .finish()
    }
}

impl Output {
    /// Output to `out` and `err`; with `keep_order`, tasks print in id order from 1.
    pub fn new(out: Box<dyn Write + Send>, err: Box<dyn Write + Send>, keep_order: bool) -> Self {
        Output {
            out,
            err,
            keep_order,
            next: 1,
            held: BTreeMap::new(),
            dirty: false,
        }
    }

    /// Complete lines that running task `id` wrote (line-buffered mode).
    pub fn lines(&mut self, id: u64, tag: Option<&str>, stream: Stream, bytes: &[u8]) -> io::Result<()> {
        if !self.keep_order || id == self.next {
            return self.write(tag, stream, bytes);
        }
        let held = self.held.entry(id).or_default();
        held.tag = tag.map(str::to_owned);
        match stream {
            Stream::Stdout => held.stdout.extend_from_slice(bytes),
            Stream::Stderr => held.stderr.extend_from_slice(bytes),
        }
        Ok(())
    }

    /// Task `id` ended with this (remaining) output.
    pub fn finish(&mut self, id: u64, tag: Option<&str>, stdout: &[u8], stderr: &[u8]) -> io::Result<()> {
        if !self.keep_order {
            return self.write_task(tag, stdout, stderr);
        }
        if id == self.next && self.held.is_empty() {
            self.write_task(tag, stdout, stderr)?;
            self.next += 1;
            return Ok(());
        }
        let held = self.held.entry(id).or_default();
        held.tag = tag.map(str::to_owned);
        held.stdout.extend_from_slice(stdout);
        held.stderr.extend_from_slice(stderr);
        held.done = true;
        self.advance()
    }

    /// Task `id` will never run (the run was stopped): do not wait for it.
    pub fn skip(&mut self, id: u64) -> io::Result<()> {
        if self.keep_order {
            self.held.entry(id).or_default().done = true;
            self.advance()?;
        }
        Ok(())
    }

    /// Prints whatever is still held, in order, and flushes.
    pub fn close(&mut self) -> io::Result<()> {
        for (_, held) in std::mem::take(&mut self.held) {
            self.write_task(held.tag.as_deref(), &held.stdout, &held.stderr)?;
        }
        self.flush()
    }

    /// Flushes buffered output; cheap when nothing was written.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.dirty {
            self.dirty = false;
            self.out.flush()?;
            self.err.flush()?;
        }
        Ok(())
    }

    /// Prints held tasks from `next` on while they are done; the first that is not done becomes
    /// the streaming head, so its held lines are printed now.
    fn advance(&mut self) -> io::Result<()> {
        while let Some(mut entry) = self.held.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            let held = entry.get_mut();
            let (tag, out, err) = (held.tag.clone(), std::mem::take(&mut held.stdout), std::mem::take(&mut held.stderr));
            let done = held.done;
            if done {
                entry.remove();
            }
            self.write_task(tag.as_deref(), &out, &err)?;
            if !done {
                break;
            }
            self.next += 1;
        }
        Ok(())
    }

    fn write_task(&mut self, tag: Option<&str>, stdout: &[u8], stderr: &[u8]) -> io::Result<()> {
        self.write(tag, Stream::Stdout, stdout)?;
        self.write(tag, Stream::Stderr, stderr)
    }

    fn write(&mut self, tag: Option<&str>, stream: Stream, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if stream == Stream::Stderr {
            // Keep each task's stdout ahead of its stderr on a shared terminal.
            self.out.flush()?;
        }
        let sink = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        match tag {
            None => sink.write_all(bytes)?,
            Some(tag) => {
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    sink.write_all(tag.as_bytes())?;
                    sink.write_all(b"\t")?;
                    sink.write_all(line)?;
                }
            }
        }
        self.dirty = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn output(keep_order: bool) -> (Output, Shared, Shared) {
        let (o, e) = (Shared::default(), Shared::default());
        (Output::new(Box::new(o.clone()), Box::new(e.clone()), keep_order), o, e)
    }

    #[test]
    fn keep_order_holds_early_finishers() {
        let (mut out, o, _) = output(true);
        out.finish(2, None, b"two\n", b"").unwrap();
        out.finish(3, None, b"three\n", b"").unwrap();
        assert_eq!(o.text(), "");
        out.finish(1, None, b"one\n", b"").unwrap();
        assert_eq!(o.text(), "one\ntwo\nthree\n");
    }

    #[test]
    fn completion_order_without_keep_order() {
        let (mut out, o, e) = output(false);
        out.finish(2, None, b"two\n", b"err2\n").unwrap();
        out.finish(1, None, b"one\n", b"").unwrap();
        assert_eq!(o.text(), "two\none\n");
        assert_eq!(e.text(), "err2\n");
    }

    #[test]
    fn tag_prefixes_every_line() {
        let (mut out, o, _) = output(false);
        out.finish(1, Some("a b"), b"x\ny\nz", b"").unwrap();
        assert_eq!(o.text(), "a b\tx\na b\ty\na b\tz");
    }

    #[test]
    fn line_buffer_streams_the_head_and_holds_the_rest() {
        let (mut out, o, _) = output(true);
        out.lines(2, None, Stream::Stdout, b"2a\n").unwrap();
        out.lines(1, None, Stream::Stdout, b"1a\n").unwrap();
        assert_eq!(o.text(), "1a\n");
        out.finish(1, None, b"1b\n", b"").unwrap();
        assert_eq!(o.text(), "1a\n1b\n2a\n", "task 2 became the head");
        out.lines(2, None, Stream::Stdout, b"2b\n").unwrap();
        assert_eq!(o.text(), "1a\n1b\n2a\n2b\n");
    }

    #[test]
    fn skipped_tasks_do_not_block_and_close_flushes_the_rest() {
        let (mut out, o, _) = output(true);
        out.finish(3, None, b"three\n", b"").unwrap();
        out.skip(1).unwrap();
        assert_eq!(o.text(), "");
        out.close().unwrap();
        assert_eq!(o.text(), "three\n");
    }
}
