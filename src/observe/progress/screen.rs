//! The progress line on a terminal: an indicatif bar (a spinner while the total is unknown) on
//! stderr, and the writer that takes task output past it so that neither tears the other.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::figures::{Counts, Show, terminal_line};
use crate::run_io::RunIo;

/// The line on the terminal, drawn by the progress thread. indicatif clears, draws, fits the
/// line to the terminal's width and suspends it for output; the text is ours
/// ([`terminal_line`]), so each update is one draw of a consistent state.
pub struct Screen {
    bar: ProgressBar,
    show: Show,
    frame: u64,
}

impl Screen {
    /// A display on stderr (it draws nothing until the first update).
    pub fn new(show: Show) -> Screen {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(ProgressStyle::with_template("{wide_msg}").expect("a valid template"));
        bar.set_message(terminal_line(show, &Counts::default(), Duration::ZERO, 0));
        bar.set_draw_target(ProgressDrawTarget::stderr());
        Screen {
            bar,
            show,
            frame: 0,
        }
    }

    /// The bar, for the writers that must write past it.
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    /// Shows where the run stands.
    pub fn update(&mut self, counts: &Counts, elapsed: Duration) {
        self.frame += 1;
        let line = terminal_line(self.show, counts, elapsed, self.frame);
        self.bar.set_message(line);
    }

    /// Leaves the last state on the terminal, the cursor on a line of its own.
    pub fn finish(&mut self, counts: &Counts, elapsed: Duration) {
        let line = terminal_line(self.show, counts, elapsed, self.frame);
        self.bar.abandon_with_message(line);
    }

    /// Takes the drawing off the terminal (a run that ended without a summary).
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// The run's streams with task output taken past `bar`: stderr always (the bar is there), stdout
/// when it is the terminal too. `io` holds the process's own streams.
pub fn route(io: RunIo, bar: &ProgressBar) -> RunIo {
    let stdout: Box<dyn Write + Send> = if io::stdout().is_terminal() {
        Box::new(PastBar::new(io.stdout, bar.clone()))
    } else {
        io.stdout
    };
    RunIo {
        stdin: io.stdin,
        stdout,
        stderr: Box::new(PastBar::new(io.stderr, bar.clone())),
    }
}

/// Above this many held bytes, output goes out even in the middle of a line.
const HOLD_LIMIT: usize = 1 << 16;

/// A writer that writes whole lines past a progress bar: the bar is cleared, the lines written
/// and flushed, the bar drawn again, all under the bar's lock. It writes on [`Write::flush`]
/// (the output owner flushes whenever the run waits), so the bar is redrawn once per batch of
/// output, not once per line. A line still open is held until it ends, the run ends, or it
/// grows past [`HOLD_LIMIT`].
pub struct PastBar<W: Write> {
    inner: W,
    bar: ProgressBar,
    held: Vec<u8>,
}

impl<W: Write> PastBar<W> {
    pub fn new(inner: W, bar: ProgressBar) -> Self {
        PastBar {
            inner,
            bar,
            held: Vec::new(),
        }
    }

    /// Writes out the held bytes up to the last line end (all of them when `all`).
    fn push(&mut self, all: bool) -> io::Result<()> {
        let end = if all || self.held.len() >= HOLD_LIMIT {
            self.held.len()
        } else {
            match self.held.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => return Ok(()),
            }
        };
        if end == 0 {
            return Ok(());
        }
        let (inner, held) = (&mut self.inner, &self.held[..end]);
        let mut write = || inner.write_all(held).and_then(|()| inner.flush());
        if self.bar.is_finished() {
            // The final state line stays; what comes after goes below it.
            write()?;
        } else {
            self.bar.suspend(write)?;
        }
        self.held.drain(..end);
        Ok(())
    }
}

impl<W: Write> Write for PastBar<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        if self.held.len() >= HOLD_LIMIT {
            self.push(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push(false)
    }
}

impl<W: Write> Drop for PastBar<W> {
    fn drop(&mut self) {
        let _ = self.push(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_go_out_on_flush_and_an_open_line_waits() {
        let mut out = Vec::new();
        {
            let mut w = PastBar::new(&mut out, ProgressBar::hidden());
            w.write_all(b"one\ntw").unwrap();
            assert!(w.held == b"one\ntw");
            w.flush().unwrap();
            assert_eq!(w.held, b"tw");
            w.write_all(b"o\nthree").unwrap();
            w.flush().unwrap();
            assert_eq!(w.held, b"three");
        }
        assert_eq!(out, b"one\ntwo\nthree");
    }

    #[test]
    fn a_long_open_line_is_not_held_forever() {
        let mut out = Vec::new();
        let mut w = PastBar::new(&mut out, ProgressBar::hidden());
        w.write_all(&vec![b'x'; HOLD_LIMIT + 1]).unwrap();
        assert!(w.held.is_empty());
        drop(w);
        assert_eq!(out.len(), HOLD_LIMIT + 1);
    }
}
