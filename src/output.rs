//! Task output: the sole owner of troop's stdout and stderr during a run.
//!
//! Grouped output (the default) prints each task's stdout and then its stderr whole, when the task
//! ends, so two tasks' output never mixes. Line-buffered output prints complete lines as they are
//! written. With `--keep-order`, output appears in input order: a task that ends early is held
//! until every task before it has been printed (in line-buffered mode the oldest running task
//! streams and the others are held). With `--tag` or `--tagstring`, every line starts with the
//! task's tag and a TAB; with `--color`, every line is shown in the task's colour, as GNU parallel
//! shows it.
//!
//! Writes are buffered. Whenever output switches from one stream to the other, the stream written
//! so far is flushed first, so that when both go to one place (`2>&1`) each task's stdout is
//! followed by its own stderr, never by another task's output. Both are also flushed whenever the
//! supervisor is about to wait, so output is prompt without a system call per line.
//!
//! Output that outgrew a worker's memory arrives as a file in the run's private directory. It is
//! opened and its name removed at once, so it takes no memory while held and leaves nothing
//! behind, and it is copied out in small blocks. Lines of a task that is held back (line-buffered
//! output with `--keep-order`) go to a nameless file of the same kind once they pass
//! [`HOLD_IN_MEMORY`], so memory stays bounded however much a held task prints.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::PathBuf;

use troop_worker::protocol::{Captured, Stream};

/// Line-buffered output on its way from the workers to the supervisor. A worker's side waits
/// while more than [`MAX_LINES_IN_FLIGHT`] bytes are on their way, so a slow reader of troop's
/// stdout slows the tasks down (they block on their own writes, as with GNU parallel) instead of
/// filling memory. There is one per process: the run in progress resets it when it starts and
/// lets every waiting sender go when it stops reading.
pub static LINES_IN_FLIGHT: InFlight = InFlight::new();

/// How many bytes of lines may be on their way to the supervisor at once.
pub const MAX_LINES_IN_FLIGHT: u64 = 8 << 20;

/// A count of bytes in flight, with room to wait for.
#[derive(Debug)]
pub struct InFlight {
    /// Bytes in flight, and whether senders must wait for room.
    state: std::sync::Mutex<(u64, bool)>,
    room: std::sync::Condvar,
}

impl InFlight {
    const fn new() -> Self {
        InFlight {
            state: std::sync::Mutex::new((0, false)),
            room: std::sync::Condvar::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (u64, bool)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `n` more bytes may be in flight (any amount when none are), then counts them.
    pub fn reserve(&self, n: u64) {
        let mut state = self.state();
        while state.1 && state.0 > 0 && state.0 + n > MAX_LINES_IN_FLIGHT {
            state = self.room.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.0 += n;
    }

    /// `n` bytes arrived.
    pub fn release(&self, n: u64) {
        let mut state = self.state();
        state.0 = state.0.saturating_sub(n);
        self.room.notify_all();
    }

    /// Starts counting afresh, with senders waiting for room.
    fn limit(&self) {
        *self.state() = (0, true);
    }

    /// Lets every sender go without waiting, for good: nobody reads any more.
    fn unlimit(&self) {
        self.state().1 = false;
        self.room.notify_all();
    }
}

/// Part of a task's output: bytes in memory, an open, unlinked spill file, or a message of
/// troop's own about the task (printed after its output, never tagged).
#[derive(Debug)]
pub enum Piece {
    Bytes(Vec<u8>),
    File(File),
    Note(String),
    /// Lines of a held task, written to a nameless file: appended to, then printed from the
    /// start.
    Held(File),
}

/// Held lines kept in memory per task and stream before they move to a file.
pub const HOLD_IN_MEMORY: usize = 1 << 20;

impl Piece {
    fn is_empty(&self) -> bool {
        matches!(self, Piece::Bytes(b) if b.is_empty())
    }

    /// Takes over captured output; a spill file is opened and unlinked here.
    pub fn open(captured: Captured) -> io::Result<Piece> {
        match captured {
            Captured::Bytes(b) => Ok(Piece::Bytes(b)),
            Captured::File { path, .. } => {
                let file = File::open(&path)?;
                std::fs::remove_file(&path)?;
                Ok(Piece::File(file))
            }
        }
    }
}

/// A task's output held back for ordering.
#[derive(Debug, Default)]
struct Held {
    tag: Option<Vec<u8>>,
    stdout: Vec<Piece>,
    stderr: Vec<Piece>,
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
    /// Where held lines past [`HOLD_IN_MEMORY`] go.
    hold_dir: PathBuf,
    /// The stream written to since the last flush, if any: it is flushed before the other one is
    /// written, so the order of writes is the order on a shared descriptor.
    dirty: Option<Stream>,
    /// `-v`: the command line of each task whose output has not begun, printed to stdout
    /// (tagged like its output) just before it.
    commands: std::collections::HashMap<u64, Vec<u8>>,
    /// `--color`: a tag starts with a colour, and every line ends by resetting it.
    colour: bool,
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
    /// Output to `out` and `err`; with `keep_order`, tasks print in id order from 1. Lines in
    /// flight ([`LINES_IN_FLIGHT`]) are limited from now until [`Output::stop_reading`].
    pub fn new(out: Box<dyn Write + Send>, err: Box<dyn Write + Send>, keep_order: bool) -> Self {
        LINES_IN_FLIGHT.limit();
        Output {
            out,
            err,
            keep_order,
            next: 1,
            held: BTreeMap::new(),
            hold_dir: std::env::temp_dir(),
            dirty: None,
            commands: std::collections::HashMap::new(),
            colour: false,
        }
    }

    /// Tags start with a colour ([`colour`]); every tagged line ends by resetting it.
    pub fn coloured(mut self, colour: bool) -> Self {
        self.colour = colour;
        self
    }

    /// Held lines past [`HOLD_IN_MEMORY`] go to nameless files in `dir` (by default `$TMPDIR`).
    pub fn hold_in(mut self, dir: PathBuf) -> Self {
        self.hold_dir = dir;
        self
    }

    /// Senders of lines must no longer wait for room: the run reads no more messages.
    pub fn stop_reading(&self) {
        LINES_IN_FLIGHT.unlimit();
    }

    /// Task `id` runs `command` (`-v`): the line is printed to stdout before the task's output,
    /// as the first line of it. A retry replaces it.
    pub fn command(&mut self, id: u64, command: &[u8]) {
        let mut line = Vec::with_capacity(command.len() + 1);
        line.extend_from_slice(command);
        line.push(b'\n');
        self.commands.insert(id, line);
    }

    /// `-t`: command lines of tasks about to start, printed to stderr now, whatever the order.
    pub fn announce(&mut self, lines: &[u8]) -> io::Result<()> {
        self.write(None, Stream::Stderr, lines)
    }

    /// Complete lines that running task `id` wrote (line-buffered mode).
    pub fn lines(
        &mut self,
        id: u64,
        tag: Option<&[u8]>,
        stream: Stream,
        bytes: &[u8],
    ) -> io::Result<()> {
        LINES_IN_FLIGHT.release(bytes.len() as u64);
        if let Some(command) = self.commands.remove(&id) {
            self.hold_or_write(id, tag, Stream::Stdout, &command)?;
        }
        self.hold_or_write(id, tag, stream, bytes)
    }

    /// Writes lines of task `id` now, or holds them while an earlier task is printing.
    fn hold_or_write(
        &mut self,
        id: u64,
        tag: Option<&[u8]>,
        stream: Stream,
        bytes: &[u8],
    ) -> io::Result<()> {
        if !self.keep_order || id == self.next {
            return self.write(tag, stream, bytes);
        }
        let held = self.held.entry(id).or_default();
        held.tag = tag.map(<[u8]>::to_vec);
        let pieces = match stream {
            Stream::Stdout => &mut held.stdout,
            Stream::Stderr => &mut held.stderr,
        };
        match pieces.last_mut() {
            Some(Piece::Held(file)) => return file.write_all(bytes),
            Some(Piece::Bytes(b)) => b.extend_from_slice(bytes),
            _ => pieces.push(Piece::Bytes(bytes.to_vec())),
        }
        if let Some(Piece::Bytes(b)) = pieces.last_mut()
            && b.len() > HOLD_IN_MEMORY
        {
            let mut file = hold_file(&self.hold_dir)?;
            file.write_all(b)?;
            if let Some(last) = pieces.last_mut() {
                *last = Piece::Held(file);
            }
        }
        Ok(())
    }

    /// Task `id` ended with this (remaining) output.
    pub fn finish(
        &mut self,
        id: u64,
        tag: Option<&[u8]>,
        stdout: Piece,
        stderr: Piece,
    ) -> io::Result<()> {
        self.finish_noted(id, tag, stdout, stderr, None)
    }

    /// Task `id` ended with this (remaining) output, and troop has `note` to say about it: a
    /// line printed to stderr right after the task's output, in the task's place in the order.
    pub fn finish_noted(
        &mut self,
        id: u64,
        tag: Option<&[u8]>,
        stdout: Piece,
        stderr: Piece,
        note: Option<String>,
    ) -> io::Result<()> {
        let command = self.commands.remove(&id);
        if !self.keep_order || (id == self.next && self.held.is_empty()) {
            if let Some(command) = command {
                self.write(tag, Stream::Stdout, &command)?;
            }
            // Nothing to print is the common case for tiny tasks: keep it free of allocation.
            if !(stdout.is_empty() && stderr.is_empty()) {
                self.write_task(tag, vec![stdout], vec![stderr])?;
            }
            if let Some(note) = note {
                self.write(None, Stream::Stderr, note.as_bytes())?;
            }
            if self.keep_order {
                self.next += 1;
            }
            return Ok(());
        }
        let held = self.held.entry(id).or_default();
        held.tag = tag.map(<[u8]>::to_vec);
        held.stdout.extend(command.map(Piece::Bytes));
        held.stdout.push(stdout);
        held.stderr.push(stderr);
        held.stderr.extend(note.map(Piece::Note));
        held.done = true;
        self.advance()
    }

    /// Task `id` will never run (the run was stopped): do not wait for it.
    pub fn skip(&mut self, id: u64) -> io::Result<()> {
        self.commands.remove(&id);
        if self.keep_order {
            self.held.entry(id).or_default().done = true;
            self.advance()?;
        }
        Ok(())
    }

    /// Prints whatever is still held, in order, and flushes.
    pub fn close(&mut self) -> io::Result<()> {
        self.stop_reading();
        for (_, held) in std::mem::take(&mut self.held) {
            self.write_task(held.tag.as_deref(), held.stdout, held.stderr)?;
        }
        self.flush()
    }

    /// Flushes buffered output; cheap when nothing was written.
    pub fn flush(&mut self) -> io::Result<()> {
        match self.dirty.take() {
            Some(Stream::Stdout) => self.out.flush(),
            Some(Stream::Stderr) => self.err.flush(),
            None => Ok(()),
        }
    }

    /// Prints held tasks from `next` on while they are done; the first that is not done becomes
    /// the streaming head, so its held lines are printed now.
    fn advance(&mut self) -> io::Result<()> {
        while let Some(mut entry) = self.held.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            let held = entry.get_mut();
            let (tag, out, err) = (
                held.tag.clone(),
                std::mem::take(&mut held.stdout),
                std::mem::take(&mut held.stderr),
            );
            let done = held.done;
            if done {
                entry.remove();
            }
            self.write_task(tag.as_deref(), out, err)?;
            if !done {
                break;
            }
            self.next += 1;
        }
        Ok(())
    }

    fn write_task(
        &mut self,
        tag: Option<&[u8]>,
        stdout: Vec<Piece>,
        stderr: Vec<Piece>,
    ) -> io::Result<()> {
        for (stream, pieces) in [(Stream::Stdout, stdout), (Stream::Stderr, stderr)] {
            for piece in pieces {
                match piece {
                    Piece::Bytes(b) => self.write(tag, stream, &b)?,
                    Piece::File(f) => self.write_file(tag, stream, f)?,
                    Piece::Held(mut f) => {
                        f.rewind()?;
                        self.write_file(tag, stream, f)?
                    }
                    Piece::Note(text) => self.write(None, stream, text.as_bytes())?,
                }
            }
        }
        Ok(())
    }

    /// Copies a spill file out in blocks, tagging lines when asked.
    fn write_file(&mut self, tag: Option<&[u8]>, stream: Stream, file: File) -> io::Result<()> {
        let mut reader = BufReader::with_capacity(1 << 16, file);
        if tag.is_some() {
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line)? > 0 {
                self.write(tag, stream, &line)?;
                line.clear();
            }
            return Ok(());
        }
        let mut block = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut block)?;
            if n == 0 {
                return Ok(());
            }
            self.write(None, stream, &block[..n])?;
        }
    }

    fn write(&mut self, tag: Option<&[u8]>, stream: Stream, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.dirty.is_some_and(|d| d != stream) {
            // Switching streams: what was written to the other one goes out first.
            self.flush()?;
        }
        let sink = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        match tag {
            None => sink.write_all(bytes)?,
            Some(tag) if self.colour => {
                // As GNU parallel colours a line: the colour and tag, the line with the colour
                // reset and set again around each CR, a reset, and a newline even at the end.
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    let line = line.strip_suffix(b"\n").unwrap_or(line);
                    sink.write_all(tag)?;
                    for (i, part) in line.split(|&b| b == b'\r').enumerate() {
                        if i > 0 {
                            sink.write_all(RESET)?;
                            sink.write_all(b"\r")?;
                            sink.write_all(tag)?;
                        }
                        sink.write_all(part)?;
                    }
                    sink.write_all(RESET)?;
                    sink.write_all(b"\n")?;
                }
            }
            Some(tag) => {
                // The tag starts every line, and every part of a line after a CR.
                for line in bytes.split_inclusive(|&b| b == b'\n' || b == b'\r') {
                    sink.write_all(tag)?;
                    sink.write_all(line)?;
                }
            }
        }
        self.dirty = Some(stream);
        Ok(())
    }
}

/// Ends a coloured line, as GNU parallel ends one where the terminal has no `sgr0`.
const RESET: &[u8] = b"\x1b[m";

/// The colour of task `seq` with `--color`, as GNU parallel 20221122 chooses it: readable pairs
/// of 256-colour background and black or white text, ordered so that neighbours differ, then
/// "clear to end of line".
pub fn colour(seq: u64) -> String {
    static COLOURS: std::sync::OnceLock<Vec<(u8, u8)>> = std::sync::OnceLock::new();
    let colours = COLOURS.get_or_init(|| {
        let black: &[std::ops::RangeInclusive<u8>] = &[
            6..=7,
            9..=11,
            13..=15,
            40..=51,
            75..=87,
            113..=123,
            147..=159,
            171..=182,
            185..=231,
            249..=254,
        ];
        let white: &[std::ops::RangeInclusive<u8>] = &[
            1..=9,
            12..=13,
            16..=45,
            52..=81,
            88..=114,
            124..=149,
            160..=178,
            180..=180,
            182..=184,
            196..=214,
            232..=250,
        ];
        let pairs: Vec<(u8, u8)> = black
            .iter()
            .flat_map(|r| r.clone().map(|c| (c, 0)))
            .chain(white.iter().flat_map(|r| r.clone().map(|c| (c, 231))))
            .collect();
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        // A stable sort, as Perl's: by index mod 23, then by index mod 7 descending.
        order.sort_by_key(|&i| (i % 23, std::cmp::Reverse(i % 7)));
        order.into_iter().map(|i| pairs[i]).collect()
    });
    let (background, text) = colours[(seq % colours.len() as u64) as usize];
    format!("\x1b[48;5;{background:03};38;5;{text:03}m\x1b[K")
}

/// `text` with GNU parallel's escapes for `--tagstring` read: `\t`, `\n`, `\r`, and a
/// character by its octal code, `\NNN` or `\N`.
pub fn unquote_printf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\\' && i + 1 < text.len() {
            let rest = &text[i + 1..];
            let digits = match rest
                .iter()
                .take(3)
                .take_while(|b| (b'0'..=b'7').contains(b))
            {
                d if d.clone().count() == 3 => 3,
                mut d => usize::from(d.next().is_some()),
            };
            match rest[0] {
                b't' => (out.push(b'\t'), i += 2).1,
                b'n' => (out.push(b'\n'), i += 2).1,
                b'r' => (out.push(b'\r'), i += 2).1,
                _ if digits > 0 => {
                    let code = rest[..digits]
                        .iter()
                        .fold(0u32, |n, d| n * 8 + u32::from(d - b'0'));
                    out.push(code as u8);
                    i += 1 + digits;
                }
                _ => (out.push(b'\\'), i += 1).1,
            }
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// A file for held lines that has no name, so it leaves nothing behind: `O_TMPFILE` where the
/// file system has it, else a new name removed at once.
fn hold_file(dir: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let nameless = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    if let Ok(file) = nameless {
        return Ok(file);
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("held-{}-{n}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
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

    fn b(bytes: &[u8]) -> Piece {
        Piece::Bytes(bytes.to_vec())
    }

    fn output(keep_order: bool) -> (Output, Shared, Shared) {
        let (o, e) = (Shared::default(), Shared::default());
        (
            Output::new(Box::new(o.clone()), Box::new(e.clone()), keep_order),
            o,
            e,
        )
    }

    #[test]
    fn each_tasks_stderr_follows_its_stdout_on_one_shared_descriptor() {
        // As with `2>&1`: both streams buffered, both ending in the same place.
        let shared = Shared::default();
        let mut out = Output::new(
            Box::new(io::BufWriter::new(shared.clone())),
            Box::new(io::BufWriter::new(shared.clone())),
            true,
        );
        for id in 1..=3 {
            let text = |s: &str| b(format!("{id}-{s}\n").as_bytes());
            out.finish(id, None, text("out"), text("err")).unwrap();
        }
        out.close().unwrap();
        assert_eq!(
            shared.text(),
            "1-out\n1-err\n2-out\n2-err\n3-out\n3-err\n",
            "a task's stderr was written after the next task's stdout"
        );
    }

    #[test]
    fn a_sender_of_lines_waits_for_room_until_released() {
        let in_flight = Arc::new(InFlight::new());
        in_flight.limit();
        in_flight.reserve(MAX_LINES_IN_FLIGHT);
        let (tx, rx) = std::sync::mpsc::channel();
        let sender = {
            let in_flight = in_flight.clone();
            std::thread::spawn(move || {
                in_flight.reserve(1);
                tx.send(()).unwrap();
            })
        };
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "a sender went past a full budget"
        );
        in_flight.release(MAX_LINES_IN_FLIGHT);
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the sender still waits after room was made");
        sender.join().unwrap();
        // Once nobody reads, nobody waits, however much is in flight.
        in_flight.unlimit();
        in_flight.reserve(MAX_LINES_IN_FLIGHT);
        in_flight.reserve(MAX_LINES_IN_FLIGHT);
    }

    #[test]
    fn keep_order_holds_early_finishers() {
        let (mut out, o, _) = output(true);
        out.finish(2, None, b(b"two\n"), b(b"")).unwrap();
        out.finish(3, None, b(b"three\n"), b(b"")).unwrap();
        assert_eq!(o.text(), "");
        out.finish(1, None, b(b"one\n"), b(b"")).unwrap();
        assert_eq!(o.text(), "one\ntwo\nthree\n");
    }

    #[test]
    fn completion_order_without_keep_order() {
        let (mut out, o, e) = output(false);
        out.finish(2, None, b(b"two\n"), b(b"err2\n")).unwrap();
        out.finish(1, None, b(b"one\n"), b(b"")).unwrap();
        assert_eq!(o.text(), "two\none\n");
        assert_eq!(e.text(), "err2\n");
    }

    #[test]
    fn colours_are_gnu_parallels_and_wrap_around() {
        assert_eq!(colour(1), "\x1b[48;5;134;38;5;231m\x1b[K");
        assert_eq!(colour(2), "\x1b[48;5;021;38;5;231m\x1b[K");
        let distinct: std::collections::HashSet<String> = (0..1000).map(colour).collect();
        let n = distinct.len() as u64;
        assert!(n > 200, "only {n} colours");
        assert_eq!(colour(1 + n), colour(1));
    }

    #[test]
    fn gnu_escapes_in_a_tagstring() {
        assert_eq!(unquote_printf(br"a\tb\n\r\101\0\x\"), b"a\tb\n\rA\0\\x\\");
        assert_eq!(unquote_printf(br"\12"), b"\x012");
    }

    #[test]
    fn a_command_line_stays_with_its_tasks_output_when_held() {
        let (mut out, o, _) = output(true);
        out.command(1, b"echo one");
        out.command(2, b"echo two");
        out.finish(2, None, b(b"two\n"), b(b"")).unwrap();
        assert_eq!(o.text(), "", "task 2 is held, its command line too");
        out.finish(1, None, b(b"one\n"), b(b"")).unwrap();
        assert_eq!(o.text(), "echo one\none\necho two\ntwo\n");
    }

    #[test]
    fn a_command_line_comes_before_the_first_streamed_line_only() {
        let (mut out, o, _) = output(false);
        out.command(1, b"cmd");
        out.lines(1, Some(b"t\t"), Stream::Stderr, b"e\n").unwrap();
        out.lines(1, Some(b"t\t"), Stream::Stdout, b"o\n").unwrap();
        out.finish(1, Some(b"t\t"), b(b""), b(b"")).unwrap();
        assert_eq!(o.text(), "t\tcmd\nt\to\n");
    }

    #[test]
    fn tag_prefixes_every_line() {
        let (mut out, o, _) = output(false);
        out.finish(1, Some(b"a b\t"), b(b"x\ny\nz"), b(b""))
            .unwrap();
        assert_eq!(o.text(), "a b\tx\na b\ty\na b\tz");
    }

    #[test]
    fn line_buffer_streams_the_head_and_holds_the_rest() {
        let (mut out, o, _) = output(true);
        out.lines(2, None, Stream::Stdout, b"2a\n").unwrap();
        out.lines(1, None, Stream::Stdout, b"1a\n").unwrap();
        assert_eq!(o.text(), "1a\n");
        out.finish(1, None, b(b"1b\n"), b(b"")).unwrap();
        assert_eq!(o.text(), "1a\n1b\n2a\n", "task 2 became the head");
        out.lines(2, None, Stream::Stdout, b"2b\n").unwrap();
        assert_eq!(o.text(), "1a\n1b\n2a\n2b\n");
    }

    #[test]
    fn held_lines_move_to_a_file_past_the_memory_limit() {
        let (mut out, o, _) = output(true);
        let line = [b'x'; 999]
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>();
        let lines = 3 * HOLD_IN_MEMORY / line.len();
        for _ in 0..lines {
            out.lines(2, None, Stream::Stdout, &line).unwrap();
        }
        let held = &out.held[&2].stdout;
        assert!(
            matches!(held.as_slice(), [Piece::Held(_)]),
            "held lines stayed in memory: {held:?}"
        );
        out.finish(2, None, b(b"end\n"), b(b"")).unwrap();
        out.finish(1, None, b(b"first\n"), b(b"")).unwrap();
        let mut expected = b"first\n".to_vec();
        for _ in 0..lines {
            expected.extend_from_slice(&line);
        }
        expected.extend_from_slice(b"end\n");
        assert!(*o.0.lock().unwrap() == expected, "held output changed");
    }

    #[test]
    fn a_spill_file_is_unlinked_on_open_and_copied_whole() {
        let path = std::env::temp_dir().join(format!("troop-output-test-{}", std::process::id()));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let piece = Piece::open(Captured::File {
            path: path.to_string_lossy().into_owned(),
            len: data.len() as u64,
        })
        .unwrap();
        assert!(
            !path.exists(),
            "the name is removed as soon as the file is open"
        );
        let (mut out, o, _) = output(true);
        out.finish(2, None, piece, b(b"")).unwrap();
        out.finish(1, None, b(b"first"), b(b"")).unwrap();
        let mut expected = b"first".to_vec();
        expected.extend_from_slice(&data);
        assert_eq!(*o.0.lock().unwrap(), expected);
    }

    #[test]
    fn skipped_tasks_do_not_block_and_close_flushes_the_rest() {
        let (mut out, o, _) = output(true);
        out.finish(3, None, b(b"three\n"), b(b"")).unwrap();
        out.skip(1).unwrap();
        assert_eq!(o.text(), "");
        out.close().unwrap();
        assert_eq!(o.text(), "three\n");
    }
}
