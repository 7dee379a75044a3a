//! The event stream's records, as the supervisor leaves them (plain data, the commands in one
//! byte arena per batch), and how a batch of them becomes JSON lines.
//!
//! The events of every task (their bulk) are written by hand, without serde's generic
//! machinery; the few others (the run's and the workers') are serialised by serde when they
//! happen, and only get their common fields here.

use super::VERSION;

/// Where some bytes lie in a batch's arena.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    start: usize,
    end: usize,
}

/// One line to write, but for the time it is written.
#[derive(Debug, Clone, Copy)]
pub(super) enum Record {
    /// `task_started`.
    Started {
        seq: u64,
        slot: u32,
        pid: Option<u32>,
        attempt: u32,
        command: Option<Span>,
    },
    /// `task_finished` or `task_retried`.
    Ended { event: &'static str, end: TaskEnd },
    /// Any other event: its own fields, serialised as a JSON object.
    Other { event: &'static str, body: Span },
}

/// How an attempt ended (`task_finished`, `task_retried`).
#[derive(Debug, Clone, Copy)]
pub(super) struct TaskEnd {
    pub seq: u64,
    pub worker: Option<u32>,
    pub pid: Option<u32>,
    pub attempt: u32,
    pub status: &'static str,
    pub exit: Option<i32>,
    pub signal: Option<i32>,
    pub start_us: Option<u64>,
    pub wall_us: u64,
    pub user_us: u64,
    pub sys_us: u64,
    pub max_rss_kib: u64,
}

/// Records in the order they happened, and the bytes (commands, serialised bodies) they point
/// into. Batches are reused: clearing one keeps its memory.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub records: Vec<Record>,
    pub bytes: Vec<u8>,
}

impl Batch {
    pub fn with_capacity(records: usize) -> Batch {
        Batch {
            records: Vec::with_capacity(records),
            bytes: Vec::with_capacity(records * 16),
        }
    }

    /// Keeps `bytes` in the arena.
    pub fn keep(&mut self, bytes: &[u8]) -> Span {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        Span {
            start,
            end: self.bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn clear(&mut self) {
        self.records.clear();
        self.bytes.clear();
    }

    fn bytes(&self, span: Span) -> &[u8] {
        &self.bytes[span.start..span.end]
    }

    /// Appends record `i` to `out` as one line; `t` is the time it is written, in decimal.
    pub fn format(&self, i: usize, t: &[u8], out: &mut Vec<u8>) {
        out.reserve(LINE);
        match self.records[i] {
            Record::Started {
                seq,
                slot,
                pid,
                attempt,
                command,
            } => {
                head(out, "task_started", t);
                out.extend_from_slice(b",\"seq\":");
                push_u64(out, seq);
                out.extend_from_slice(b",\"worker\":");
                push_u64(out, u64::from(slot) + 1);
                out.extend_from_slice(b",\"pid\":");
                push_option(out, pid.map(u64::from));
                out.extend_from_slice(b",\"attempt\":");
                push_u64(out, attempt.into());
                out.extend_from_slice(b",\"command\":");
                match command {
                    Some(span) => push_string(out, self.bytes(span)),
                    None => out.extend_from_slice(b"null"),
                }
                out.extend_from_slice(b"}\n");
            }
            Record::Ended { event, end } => {
                head(out, event, t);
                task_end(out, &end);
                out.extend_from_slice(b"}\n");
            }
            Record::Other { event, body } => {
                head(out, event, t);
                // The body is a JSON object, `{...}`: its fields follow the common ones.
                match self.bytes(body) {
                    [b'{', b'}'] | [] => out.push(b'}'),
                    [b'{', fields @ ..] => {
                        out.push(b',');
                        out.extend_from_slice(fields);
                    }
                    other => out.extend_from_slice(other),
                }
                out.push(b'\n');
            }
        }
    }
}

/// Bytes a line of a task takes, about: reserved at once.
const LINE: usize = 400;

/// Starts a line: `{"v":1,"event":"NAME","t":T`.
#[inline]
fn head(out: &mut Vec<u8>, event: &str, t: &[u8]) {
    const _: () = assert!(VERSION == 1, "the head of a line says v 1");
    out.extend_from_slice(b"{\"v\":1,\"event\":\"");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\",\"t\":");
    out.extend_from_slice(t);
}

/// The fields of a `task_finished` or `task_retried` line.
#[inline]
fn task_end(out: &mut Vec<u8>, end: &TaskEnd) {
    out.extend_from_slice(b",\"seq\":");
    push_u64(out, end.seq);
    out.extend_from_slice(b",\"worker\":");
    push_option(out, end.worker.map(u64::from));
    out.extend_from_slice(b",\"pid\":");
    push_option(out, end.pid.map(u64::from));
    out.extend_from_slice(b",\"attempt\":");
    push_u64(out, end.attempt.into());
    // Status words are plain ASCII: no escaping needed.
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(end.status.as_bytes());
    out.extend_from_slice(b"\",\"exit\":");
    match end.exit {
        Some(code) if code < 0 => {
            out.push(b'-');
            push_u64(out, code.unsigned_abs().into());
        }
        Some(code) => push_u64(out, code as u64),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"signal\":");
    push_option(out, end.signal.map(|s| s as u64));
    out.extend_from_slice(b",\"start_us\":");
    push_option(out, end.start_us);
    out.extend_from_slice(b",\"wall_us\":");
    push_u64(out, end.wall_us);
    out.extend_from_slice(b",\"user_us\":");
    push_u64(out, end.user_us);
    out.extend_from_slice(b",\"sys_us\":");
    push_u64(out, end.sys_us);
    out.extend_from_slice(b",\"max_rss_kib\":");
    push_u64(out, end.max_rss_kib);
}

/// Appends a number, or `null`.
#[inline]
fn push_option(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(v) => push_u64(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// The decimal digits of 0 to 99, two each.
const PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

/// Appends a number in decimal, two digits at a time.
#[inline]
pub(super) fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    if v < 10 {
        out.push(b'0' + v as u8);
        return;
    }
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `bytes` as a JSON string; bytes that are not UTF-8 become U+FFFD.
fn push_string(out: &mut Vec<u8>, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => escape(out, text),
        Err(_) => escape(out, &String::from_utf8_lossy(bytes)),
    }
}

/// Appends `text` quoted, with what JSON requires escaped (as serde_json escapes it).
fn escape(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        plain = i + 1;
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every: Vec<u8> = (0u8..=0x7f).collect();
        every.extend_from_slice("é→😀 \\\"".as_bytes());
        for text in [&every[..], b"", b"plain", b"a\xffb\"", b"\xe2\x82"] {
            let mut out = Vec::new();
            push_string(&mut out, text);
            let want = serde_json::to_vec(&String::from_utf8_lossy(text)).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&want)
            );
        }
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for v in [
            0,
            7,
            10,
            99,
            100,
            101,
            1_000_001,
            1_764_000_000_000_000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }
}
