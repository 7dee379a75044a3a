//! `--pipe` and `--pipepart`: input cut into blocks of whole records, each block the input of
//! one task, as in GNU parallel.
//!
//! A block holds as many whole records as fit in `--block` bytes (more when one record alone is
//! larger), or exactly `-N` records. Records end where `--recend` is followed by `--recstart`
//! (literal strings, or regular expressions with `--regexp`); by default a record is a line.
//! With `-L N` a record is N such units. The header (`--header`) is read once and put at the top
//! of every block. `--pipepart` reads no data here: it only finds the record ends nearest to
//! each multiple of the block size in the file, and each task reads its range itself.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::bytes::Regex;
use troop_worker::protocol::{InputData, InputVia, TaskInput};

/// How input is cut into blocks.
#[derive(Debug, Clone)]
pub struct PipeSpec {
    /// `--block`: bytes per block.
    pub block: u64,
    /// `-N`: records per block, instead of a size.
    pub records: Option<u64>,
    /// `-L`: units (lines) per record.
    pub units: u64,
    pub split: Split,
    pub header: Header,
    pub via: Via,
    /// `--pipepart -a FILE`: the file that tasks read in parts.
    pub part: Option<PathBuf>,
    /// `--roundrobin`: one task per worker, the blocks dealt out among them.
    pub roundrobin: bool,
}

impl PipeSpec {
    /// GNU parallel's defaults: 1 MiB blocks of lines, on standard input.
    pub fn new() -> Self {
        PipeSpec {
            block: 1 << 20,
            records: None,
            units: 1,
            split: Split::Literal {
                end: b"\n".to_vec(),
                start: Vec::new(),
            },
            header: Header::None,
            via: Via::Stdin,
            part: None,
            roundrobin: false,
        }
    }
}

impl Default for PipeSpec {
    fn default() -> Self {
        Self::new()
    }
}

/// Where one record ends and the next starts.
#[derive(Debug, Clone)]
pub enum Split {
    /// Between `end` and `start`.
    Literal { end: Vec<u8>, start: Vec<u8> },
    /// Between a match of the first group and one of the second (`(?:END)(START)`).
    Regex(Regex),
}

/// The header put at the top of every block.
#[derive(Debug, Clone)]
pub enum Header {
    None,
    /// The first N lines.
    Lines(usize),
    /// What this expression matches at the very start of the input.
    Regex(Regex),
}

/// How a block reaches its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Stdin,
    /// `--cat`: a temporary file named by `{}`.
    File,
    /// `--fifo`: a named pipe named by `{}`.
    Fifo,
}

/// Why a pipe option's value was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid {option} `{value}`: {why}")]
pub struct PipeOptionError {
    pub option: &'static str,
    pub value: String,
    pub why: String,
}

/// Parses a size as GNU parallel does: a number with an optional multiplier, `K M G T P` for
/// powers of 1024 and `k m g t p` for powers of 1000 (`1M` is 1048576, `10k` is 10000).
pub fn parse_gnu_size(option: &'static str, text: &str) -> Result<u64, PipeOptionError> {
    let bad = |why: &str| PipeOptionError {
        option,
        value: text.into(),
        why: why.into(),
    };
    let t = text.trim();
    let (number, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult: f64 = match c {
                'K' => 1024f64,
                'M' => 1024f64.powi(2),
                'G' => 1024f64.powi(3),
                'T' => 1024f64.powi(4),
                'P' => 1024f64.powi(5),
                'k' => 1e3,
                'm' => 1e6,
                'g' => 1e9,
                't' => 1e12,
                'p' => 1e15,
                _ => {
                    return Err(bad(
                        "use a number with an optional K, M, G, T, P (×1024) or k, m, g, t, p (×1000), such as 10M",
                    ));
                }
            };
            (&t[..i], mult)
        }
        _ => (t, 1.0),
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| bad("use a number with an optional K, M, G, T, P (×1024) or k, m, g, t, p (×1000), such as 10M"))?;
    let bytes = value * mult;
    if bytes >= u64::MAX as f64 {
        return Err(bad("too large"));
    }
    Ok(bytes as u64)
}

/// One block read for a task.
#[derive(Debug)]
pub struct Block {
    data: BlockData,
    /// `{}` for `--cat` and `--fifo`: where the block appears to the command.
    pub path: Option<PathBuf>,
    via: Via,
}

#[derive(Debug)]
enum BlockData {
    /// The header and the block, in memory.
    Memory(Vec<u8>),
    /// The header and the block in a file of the run's private directory, removed with the
    /// block.
    Spilled(SpilledFile),
    /// A named pipe that a stream of blocks is written into (`--roundrobin`), removed with the
    /// block.
    Stream(SpilledFile),
    /// A range of the `--pipepart` file, after the shared header.
    Part {
        path: Arc<String>,
        head: Arc<Vec<u8>>,
        offset: u64,
        len: u64,
    },
}

#[derive(Debug)]
struct SpilledFile {
    path: PathBuf,
    len: u64,
}

impl Drop for SpilledFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Block {
    /// The block as it travels to its worker.
    pub fn task_input(&self) -> TaskInput {
        let data = match &self.data {
            BlockData::Memory(bytes) => InputData::Bytes(bytes.clone()),
            BlockData::Spilled(f) => InputData::File {
                path: f.path.to_string_lossy().into_owned(),
                head: Vec::new(),
                offset: 0,
                len: f.len,
            },
            BlockData::Stream(f) => InputData::Stream {
                path: f.path.to_string_lossy().into_owned(),
            },
            BlockData::Part {
                path,
                head,
                offset,
                len,
            } => InputData::File {
                path: path.to_string(),
                head: head.to_vec(),
                offset: *offset,
                len: *len,
            },
        };
        let named = || {
            self.path
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let via = match self.via {
            Via::Stdin => InputVia::Stdin,
            Via::File => InputVia::File(named()),
            Via::Fifo => InputVia::Fifo(named()),
        };
        TaskInput { data, via }
    }

    /// The number of bytes the command reads.
    pub fn len(&self) -> u64 {
        match &self.data {
            BlockData::Memory(b) => b.len() as u64,
            BlockData::Spilled(f) | BlockData::Stream(f) => f.len,
            BlockData::Part { head, len, .. } => head.len() as u64 + len,
        }
    }

    /// Whether the block holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where blocks are kept: blocks larger than `spill_over` bytes go to files in `dir` (for
/// worker processes, which then read them from there), and `{}` paths are made in `dir`.
#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
    pub spill_over: Option<usize>,
}

impl Store {
    /// Wraps block number `n` for its task.
    fn keep(&self, n: u64, bytes: Vec<u8>, via: Via) -> io::Result<Block> {
        let data = match self.spill_over {
            Some(limit) if bytes.len() > limit => {
                let path = self.dir.join(format!("block-{n}"));
                write_private(&path, &bytes)?;
                BlockData::Spilled(SpilledFile {
                    path,
                    len: bytes.len() as u64,
                })
            }
            _ => BlockData::Memory(bytes),
        };
        Ok(self.block(n, data, via))
    }

    fn block(&self, n: u64, data: BlockData, via: Via) -> Block {
        let path = match via {
            Via::Stdin => None,
            Via::File => Some(self.dir.join(format!("cat-{n}"))),
            Via::Fifo => Some(self.dir.join(format!("fifo-{n}"))),
        };
        Block { data, path, via }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// Cuts a stream into blocks.
pub struct Blocks<R> {
    spec: PipeSpec,
    store: Store,
    reader: R,
    /// Bytes read and not yet given out.
    buf: Vec<u8>,
    /// Where the not yet given out bytes start in `buf`.
    pos: usize,
    eof: bool,
    header: Option<Vec<u8>>,
    n: u64,
}

impl<R> std::fmt::Debug for Blocks<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocks")
            .field("spec", &self.spec)
            .field("read", &self.n)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Blocks<R> {
    pub fn new(spec: PipeSpec, store: Store, reader: R) -> Self {
        Blocks {
            spec,
            store,
            reader,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            header: None,
            n: 0,
        }
    }

    /// Reads until at least `want` unread bytes are held, or the input ends.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        while !self.eof && self.buf.len() - self.pos < want {
            let have = self.buf.len();
            let room = (want - (have - self.pos)).max(64 * 1024);
            self.buf.resize(have + room, 0);
            let read = loop {
                match self.reader.read(&mut self.buf[have..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            match read {
                Ok(0) => {
                    self.buf.truncate(have);
                    self.eof = true;
                }
                Ok(n) => self.buf.truncate(have + n),
                Err(e) => {
                    self.buf.truncate(have);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Reads the header, once, before the first block.
    fn read_header(&mut self) -> io::Result<Vec<u8>> {
        let header = self.spec.header.clone();
        let mut len = 0;
        match header {
            Header::None => {}
            Header::Lines(lines) => {
                for _ in 0..lines {
                    loop {
                        if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos + len..]) {
                            len += i + 1;
                            break;
                        }
                        let before = self.buf.len() - self.pos;
                        self.fill(before + 64 * 1024)?;
                        if self.eof && self.buf.len() - self.pos == before {
                            len = before;
                            break;
                        }
                    }
                }
            }
            Header::Regex(re) => {
                self.fill(1 << 20)?;
                if let Some(m) = re.find(&self.buf[self.pos..])
                    && m.start() == 0
                {
                    len = m.end();
                }
            }
        }
        let head = self.buf[self.pos..self.pos + len].to_vec();
        self.pos += len;
        Ok(head)
    }

    /// The next block's bytes, without its header.
    fn next_bytes(&mut self) -> io::Result<Option<Vec<u8>>> {
        let cut = match self.spec.records {
            Some(n) => self.cut_after_records(n.saturating_mul(self.spec.units))?,
            None => self.cut_by_size()?,
        };
        if cut == 0 {
            return Ok(None);
        }
        let bytes = self.buf[self.pos..self.pos + cut].to_vec();
        self.pos += cut;
        Ok(Some(bytes))
    }

    /// The length of the next block of at most `--block` bytes that ends at a record end; a
    /// first record that is longer is the block alone; at the end of input, whatever is left.
    fn cut_by_size(&mut self) -> io::Result<usize> {
        let block = self.spec.block.max(1) as usize;
        self.fill(block + self.lookahead())?;
        let avail = self.buf.len() - self.pos;
        if avail == 0 {
            return Ok(0);
        }
        let units = self.spec.units.max(1);
        if let Some(cut) = self.last_cut(block.min(avail), units) {
            return Ok(cut);
        }
        // No record ends within the block: it grows to the first record end.
        loop {
            let avail = self.buf.len() - self.pos;
            if let Some(cut) = self.nth_cut(0, units) {
                return Ok(cut);
            }
            if self.eof {
                return Ok(avail);
            }
            self.fill(avail * 2)?;
        }
    }

    /// The length of the next `records` units, or what is left at the end of input.
    fn cut_after_records(&mut self, records: u64) -> io::Result<usize> {
        let records = records.max(1);
        let mut found = 0u64;
        let mut at = 0usize;
        self.fill(64 * 1024)?;
        loop {
            match self.next_split(at) {
                Some(next) => {
                    found += 1;
                    at = next;
                    if found == records {
                        return Ok(at);
                    }
                }
                None if self.eof => return Ok(self.buf.len() - self.pos),
                None => {
                    let avail = self.buf.len() - self.pos;
                    self.fill(avail + (64 * 1024).max(avail))?;
                }
            }
        }
    }

    /// How many bytes past a split point the matcher needs to see.
    fn lookahead(&self) -> usize {
        match &self.spec.split {
            Split::Literal { start, .. } => start.len(),
            Split::Regex(_) => 256,
        }
    }

    /// The first split point (a length from `pos`) after `from`, if the bytes held show one.
    fn next_split(&self, from: usize) -> Option<usize> {
        next_split_in(&self.spec.split, &self.buf[self.pos..], from)
    }

    /// The `units`-th split point after `from`.
    fn nth_cut(&self, from: usize, units: u64) -> Option<usize> {
        let mut at = from;
        for _ in 0..units {
            at = self.next_split(at)?;
        }
        Some(at)
    }

    /// The last split point within `limit` bytes that ends a whole number of `units`.
    fn last_cut(&self, limit: usize, units: u64) -> Option<usize> {
        let data = &self.buf[self.pos..];
        if units == 1 {
            return last_split_in(&self.spec.split, data, limit);
        }
        let mut at = 0;
        let mut best = None;
        'outer: loop {
            for _ in 0..units {
                match next_split_in(&self.spec.split, data, at) {
                    Some(next) if next <= limit => at = next,
                    _ => break 'outer,
                }
            }
            best = Some(at);
        }
        best
    }
}

/// The first split point in `data` after `from` (never at 0). A split point needs the record
/// start after it to be seen.
fn next_split_in(split: &Split, data: &[u8], from: usize) -> Option<usize> {
    match split {
        Split::Literal { end, start } => {
            let pattern = [end.as_slice(), start.as_slice()].concat();
            if pattern.is_empty() {
                return None;
            }
            let mut search = from;
            loop {
                let i = memchr::memmem::find(data.get(search..)?, &pattern)? + search;
                let cut = i + end.len();
                if cut > from {
                    return Some(cut);
                }
                search = i + 1;
            }
        }
        Split::Regex(re) => re
            .captures_iter(data.get(from..)?)
            .filter_map(|c| c.get(1).map(|m| m.start() + from))
            .find(|&cut| cut > from),
    }
}

/// The last split point in `data` at or before `limit` (never at 0).
fn last_split_in(split: &Split, data: &[u8], limit: usize) -> Option<usize> {
    match split {
        Split::Literal { end, start } => {
            let pattern = [end.as_slice(), start.as_slice()].concat();
            if pattern.is_empty() {
                return None;
            }
            let window = &data[..(limit + start.len()).min(data.len())];
            let mut upto = window.len();
            loop {
                let i = memchr::memmem::rfind(&window[..upto], &pattern)?;
                let cut = i + end.len();
                if cut > 0 && cut <= limit {
                    return Some(cut);
                }
                if i == 0 {
                    return None;
                }
                upto = i + pattern.len() - 1;
            }
        }
        Split::Regex(_) => {
            let mut at = 0;
            let mut best = None;
            while let Some(next) = next_split_in(split, data, at) {
                if next > limit {
                    break;
                }
                best = Some(next);
                at = next;
            }
            best
        }
    }
}

impl<R: Read> Iterator for Blocks<R> {
    type Item = io::Result<Block>;

    fn next(&mut self) -> Option<Self::Item> {
        let step = (|| {
            if self.header.is_none() {
                self.header = Some(self.read_header()?);
            }
            let Some(bytes) = self.next_bytes()? else {
                return Ok(None);
            };
            self.n += 1;
            let head = self.header.as_deref().unwrap_or_default();
            let bytes = if head.is_empty() {
                bytes
            } else {
                [head, &bytes].concat()
            };
            self.store.keep(self.n, bytes, self.spec.via).map(Some)
        })();
        step.transpose()
    }
}

/// The blocks of a `--pipepart` file: ranges that start after the header and end at record
/// ends near each multiple of the block size. Only the bytes around each boundary are read.
pub fn parts(spec: &PipeSpec, store: &Store, path: &Path) -> io::Result<Vec<Block>> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    // The header, read with the same rules as for a stream.
    let head = {
        let mut head_reader = Blocks::new(
            spec.clone(),
            store.clone(),
            Read::by_ref(&mut file).take(16 << 20),
        );
        head_reader.read_header()?
    };
    let name = Arc::new(path.to_string_lossy().into_owned());
    let head = Arc::new(head);
    let block = spec.block.max(1);
    let mut starts = vec![head.len() as u64];
    let mut want = head.len() as u64 + block;
    let mut window = Vec::new();
    // As in GNU parallel, a part ends at the first record end found from `want` on: a record
    // that ends exactly at `want` does not count (it ends in the part), unless records have no
    // end mark and a record start is enough (the window then starts one byte before `want`).
    let back = match &spec.split {
        Split::Literal { end, .. } if end.is_empty() => 1,
        _ => 0,
    };
    while want < size {
        // The window is grown as needed.
        let from = want - back;
        let mut len = 64 * 1024;
        let found = loop {
            window.resize(len, 0);
            file.seek(SeekFrom::Start(from))?;
            let n = read_full(&mut file, &mut window)?;
            if let Some(cut) = next_split_in(&spec.split, &window[..n], 0) {
                break Some(from + cut as u64);
            }
            if from + n as u64 >= size {
                break None;
            }
            len *= 2;
        };
        match found {
            Some(at) if at < size => {
                starts.push(at);
                want = at + block;
            }
            _ => break,
        }
    }
    let mut blocks = Vec::with_capacity(starts.len());
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(size);
        if end <= start {
            continue;
        }
        let n = blocks.len() as u64 + 1;
        let data = BlockData::Part {
            path: name.clone(),
            head: head.clone(),
            offset: start,
            len: end - start,
        };
        blocks.push(store.block(n, data, spec.via));
    }
    Ok(blocks)
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `--roundrobin`: at most one task per worker, each reading a named pipe that blocks are
/// written into. The first blocks each start a task, as in GNU parallel; later ones go whole
/// to a pipe whose reader has room for more.
#[derive(Debug)]
pub struct RoundRobin {
    store: Store,
    tasks: usize,
}

impl RoundRobin {
    /// Deals out to at most `tasks` tasks, whose pipes are made in the store's directory.
    pub fn new(store: Store, tasks: usize) -> Self {
        RoundRobin {
            store,
            tasks: tasks.max(1),
        }
    }

    /// Writes every block of `blocks` to one of the pipes. `start` is called with the input of
    /// each new task, and says whether the run still takes it; the pipe is then opened, which
    /// waits for the task to start reading. A pipe whose reader has gone is dropped; when none
    /// is left, the rest of the input is not read.
    pub fn feed<R: Read>(
        self,
        blocks: Blocks<R>,
        start: &mut dyn FnMut(Block) -> bool,
    ) -> io::Result<()> {
        use std::io::Write as _;
        use std::os::fd::AsFd;
        let mut pipes: Vec<File> = Vec::new();
        let mut started = 0;
        let mut next = 0;
        for block in blocks {
            let block = block?;
            let BlockData::Memory(bytes) = &block.data else {
                continue;
            };
            if started < self.tasks {
                started += 1;
                let n = started as u64;
                let path = self.store.dir.join(format!("stream-{n}"));
                nix::unistd::mkfifo(
                    &path,
                    nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
                )
                .map_err(io::Error::from)?;
                let stream = SpilledFile {
                    path: path.clone(),
                    len: 0,
                };
                if !start(self.store.block(n, BlockData::Stream(stream), Via::Stdin)) {
                    return Ok(());
                }
                let mut pipe = std::fs::OpenOptions::new().write(true).open(&path)?;
                match pipe.write_all(bytes) {
                    Ok(()) => pipes.push(pipe),
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            loop {
                if pipes.is_empty() {
                    return Ok(());
                }
                // The first pipe with room, looking from the one after the last used.
                let mut fds: Vec<nix::poll::PollFd> = pipes
                    .iter()
                    .map(|p| nix::poll::PollFd::new(p.as_fd(), nix::poll::PollFlags::POLLOUT))
                    .collect();
                match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                    Ok(_) => {}
                }
                let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
                drop(fds);
                let count = pipes.len();
                let Some(i) = (0..count).map(|k| (next + k) % count).find(|&i| ready[i]) else {
                    continue;
                };
                match pipes[i].write_all(bytes) {
                    Ok(()) => {
                        next = i + 1;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                        pipes.remove(i);
                        next = i;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that gives one byte per read, as a slow pipe may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn cut(spec: PipeSpec, input: &[u8]) -> Vec<String> {
        let store = Store {
            dir: std::env::temp_dir(),
            spill_over: None,
        };
        Blocks::new(spec, store, Trickle(input))
            .map(|b| match b.expect("block").data {
                BlockData::Memory(bytes) => String::from_utf8(bytes).expect("utf-8"),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn gnu_sizes_use_1024_for_upper_case_and_1000_for_lower_case() {
        assert_eq!(parse_gnu_size("--block", "1M").unwrap(), 1 << 20);
        assert_eq!(parse_gnu_size("--block", "10k").unwrap(), 10_000);
        assert_eq!(parse_gnu_size("--block", "1.5K").unwrap(), 1536);
        assert_eq!(parse_gnu_size("--block", "7").unwrap(), 7);
        assert!(parse_gnu_size("--block", "1X").is_err());
        assert!(parse_gnu_size("--block", "-1").is_err());
    }

    #[test]
    fn blocks_hold_whole_lines_even_when_input_trickles_in() {
        let spec = PipeSpec {
            block: 6,
            ..PipeSpec::new()
        };
        assert_eq!(
            cut(spec, b"a\nbb\nccc\ndddddddd\ne"),
            ["a\nbb\n", "ccc\n", "dddddddd\n", "e"]
        );
    }

    #[test]
    fn records_split_between_recend_and_recstart() {
        let spec = PipeSpec {
            records: Some(1),
            split: Split::Literal {
                end: b"}".to_vec(),
                start: b"{".to_vec(),
            },
            ..PipeSpec::new()
        };
        assert_eq!(cut(spec, b"{a}{b}x}{c}"), ["{a}", "{b}x}", "{c}"]);
    }

    #[test]
    fn the_header_tops_every_block() {
        let spec = PipeSpec {
            records: Some(2),
            header: Header::Lines(1),
            ..PipeSpec::new()
        };
        assert_eq!(cut(spec, b"h\n1\n2\n3\n"), ["h\n1\n2\n", "h\n3\n"]);
    }
}
