//! Frames: protocol messages over a byte stream, for workers on other machines.
//!
//! ipc-channel reaches only processes of the same OS instance, so a worker started through ssh
//! (its stdin and stdout are the stream) or connecting back over TCP speaks the same
//! [`crate::protocol`] messages as length-prefixed postcard frames:
//!
//! ```text
//!   MAGIC (8 bytes, once, from each side)   then, per message, one or more frames:
//!   header: u32, little-endian  │  `length` bytes of the message's postcard body
//!   (bit 31 of the header: more frames of this message follow; bits 0-30: length <= MAX_FRAME)
//! ```
//!
//! A message longer than [`MAX_FRAME`] (a task's large output) is cut into frames that the
//! reader joins again, up to [`MAX_MESSAGE`] in all.
//!
//! A frame of length 0 is a heartbeat: it carries no message (no message encodes to nothing),
//! and says only that the other side is alive. Heartbeats belong to the stream, not to the
//! protocol: the runtime never sees them.
//!
//! The magic lets a reader skip what a remote login prints before the worker starts (a banner,
//! a shell's start-up files writing to stdout) instead of taking it for a frame, and tells a
//! stream that is not troop's at once. A length over [`MAX_FRAME`] is refused before anything is
//! allocated, so random bytes can never make a reader take unbounded memory; a body that does
//! not decode is refused too. Every error ends the conversation: a stream cannot resynchronise
//! after a bad frame.

use std::io::{BufRead, BufReader, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// What each side writes first.
pub const MAGIC: [u8; 8] = *b"\0troop\x01\n";

/// The largest frame body accepted, in bytes; longer messages take several frames.
pub const MAX_FRAME: u32 = 16 << 20;

/// The largest message accepted, in bytes, over all its frames.
pub const MAX_MESSAGE: u64 = 1 << 30;

/// The header bit that says more frames of the same message follow.
const MORE: u32 = 1 << 31;

/// How much a reader skips while looking for [`MAGIC`] before it gives up.
pub const MAX_PREAMBLE: usize = 64 << 10;

/// A stream that cannot carry the conversation any further.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The stream ended at a frame boundary: the other side closed it.
    #[error("the stream closed")]
    Closed,
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    #[error("a frame of {len} bytes is over the limit of {max} bytes")]
    TooLarge { len: u64, max: u64 },
    #[error("a frame does not decode: {0}")]
    Decode(String),
    #[error("the stream does not start with troop's greeting ({skipped} bytes read)")]
    NoMagic { skipped: usize },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Appends `msg` to `buf` as one frame, or as several when it is longer than [`MAX_FRAME`].
pub fn encode<T: Serialize>(msg: &T, buf: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    if let Err(e) = postcard::to_io(msg, &mut *buf) {
        buf.truncate(start);
        return Err(FrameError::Decode(e.to_string()));
    }
    let len = buf.len() - start - 4;
    if len as u64 > MAX_MESSAGE {
        buf.truncate(start);
        return Err(FrameError::TooLarge {
            len: len as u64,
            max: MAX_MESSAGE,
        });
    }
    if len <= MAX_FRAME as usize {
        buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
        return Ok(());
    }
    // Cut the body into frames, each with its own header.
    let body = buf.split_off(start + 4);
    buf.truncate(start);
    let mut chunks = body.chunks(MAX_FRAME as usize).peekable();
    while let Some(chunk) = chunks.next() {
        let more = if chunks.peek().is_some() { MORE } else { 0 };
        buf.extend_from_slice(&(chunk.len() as u32 | more).to_le_bytes());
        buf.extend_from_slice(chunk);
    }
    Ok(())
}

/// Writes the greeting that opens a stream.
pub fn write_magic<W: Write>(w: &mut W) -> Result<(), FrameError> {
    w.write_all(&MAGIC)?;
    w.flush()?;
    Ok(())
}

/// The heartbeat frame: a length of 0.
pub const HEARTBEAT: [u8; 4] = [0; 4];

/// Writes `msg` as one frame and flushes.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let mut buf = Vec::new();
    encode(msg, &mut buf)?;
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads frames from a stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: BufReader<R>,
    body: Vec<u8>,
    max_message: u64,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader::with_limit(inner, MAX_MESSAGE)
    }

    /// A reader that refuses messages longer than `max_message` bytes.
    pub fn with_limit(inner: R, max_message: u64) -> Self {
        FrameReader {
            inner: BufReader::with_capacity(64 << 10, inner),
            body: Vec::new(),
            max_message,
        }
    }

    /// Skips everything before [`MAGIC`] and the magic itself. Returns what was skipped, so
    /// that the caller can show it (it is usually a remote shell saying something).
    pub fn read_magic(&mut self) -> Result<Vec<u8>, FrameError> {
        let mut seen: Vec<u8> = Vec::new();
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Err(if seen.is_empty() {
                    FrameError::Closed
                } else {
                    FrameError::NoMagic {
                        skipped: seen.len(),
                    }
                });
            }
            let old = seen.len();
            seen.extend_from_slice(chunk);
            let from = old.saturating_sub(MAGIC.len() - 1);
            if let Some(at) = memchr::memmem::find(&seen[from..], &MAGIC).map(|i| i + from) {
                // Consume exactly up to the end of the magic.
                let used = at + MAGIC.len() - old;
                self.inner.consume(used);
                seen.truncate(at);
                return Ok(seen);
            }
            let n = chunk.len();
            self.inner.consume(n);
            if seen.len() > MAX_PREAMBLE {
                return Err(FrameError::NoMagic {
                    skipped: seen.len(),
                });
            }
        }
    }

    /// Reads the next message (joining its frames): `None` for a heartbeat.
    pub fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        self.body.clear();
        loop {
            let mut header = [0u8; 4];
            match read_full(&mut self.inner, &mut header)? {
                0 if self.body.is_empty() => return Err(FrameError::Closed),
                4 => {}
                _ => return Err(FrameError::Truncated),
            }
            let header = u32::from_le_bytes(header);
            let (len, more) = (header & !MORE, header & MORE != 0);
            if len == 0 && !more && self.body.is_empty() {
                return Ok(None);
            }
            if len > MAX_FRAME {
                return Err(FrameError::TooLarge {
                    len: len.into(),
                    max: MAX_FRAME.into(),
                });
            }
            let total = self.body.len() as u64 + u64::from(len);
            if total > self.max_message {
                return Err(FrameError::TooLarge {
                    len: total,
                    max: self.max_message,
                });
            }
            let at = self.body.len();
            self.body.resize(at + len as usize, 0);
            if read_full(&mut self.inner, &mut self.body[at..])? != len as usize {
                return Err(FrameError::Truncated);
            }
            if !more {
                break;
            }
        }
        let msg =
            postcard::from_bytes(&self.body).map_err(|e| FrameError::Decode(e.to_string()))?;
        if self.body.capacity() > 1 << 20 {
            // A rare huge message does not pin its memory for the rest of the run.
            self.body = Vec::new();
        }
        Ok(Some(msg))
    }
}

/// Reads until `buf` is full or the stream ends; returns how much was read. A connection reset
/// is an end too: a peer that exits with bytes it did not read (the heartbeats sent while it
/// shut down) resets its TCP connection instead of closing it.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{FromWorker, Hello, PROTOCOL_VERSION, ToWorker};

    fn hello() -> FromWorker {
        FromWorker::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            pid: 42,
            index: 3,
            token: String::new(),
        })
    }

    fn stream(parts: &[&[u8]]) -> FrameReader<std::io::Cursor<Vec<u8>>> {
        FrameReader::new(std::io::Cursor::new(parts.concat()))
    }

    #[test]
    fn messages_and_heartbeats_come_back_in_order() {
        let mut bytes = MAGIC.to_vec();
        encode(&hello(), &mut bytes).unwrap();
        bytes.extend_from_slice(&HEARTBEAT);
        encode(&ToWorker::Shutdown, &mut bytes).unwrap();
        let mut r = stream(&[&bytes]);
        assert_eq!(r.read_magic().unwrap(), b"");
        assert_eq!(r.read::<FromWorker>().unwrap(), Some(hello()));
        assert_eq!(r.read::<ToWorker>().unwrap(), None, "a heartbeat");
        assert_eq!(r.read::<ToWorker>().unwrap(), Some(ToWorker::Shutdown));
        assert!(matches!(r.read::<ToWorker>(), Err(FrameError::Closed)));
    }

    #[test]
    fn what_a_login_prints_before_the_greeting_is_skipped_and_kept() {
        let mut bytes = b"Welcome to h1\nlast login: never\n".to_vec();
        bytes.extend_from_slice(&MAGIC);
        encode(&ToWorker::Withdraw, &mut bytes).unwrap();
        let mut r = stream(&[&bytes]);
        assert_eq!(
            r.read_magic().unwrap(),
            b"Welcome to h1\nlast login: never\n"
        );
        assert_eq!(r.read::<ToWorker>().unwrap(), Some(ToWorker::Withdraw));
    }

    #[test]
    fn a_stream_without_the_greeting_is_refused_after_a_bounded_read() {
        let noise = vec![b'x'; MAX_PREAMBLE * 3];
        let mut r = stream(&[&noise]);
        match r.read_magic() {
            Err(FrameError::NoMagic { skipped }) => {
                assert!(skipped <= MAX_PREAMBLE + (64 << 10), "{skipped}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(stream(&[]).read_magic(), Err(FrameError::Closed)));
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_reading_the_body() {
        let len = (MAX_FRAME + 1).to_le_bytes();
        let mut r = stream(&[&len, b"tiny"]);
        match r.read::<ToWorker>() {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!((len, max), (u64::from(MAX_FRAME) + 1, u64::from(MAX_FRAME)))
            }
            other => panic!("{other:?}"),
        }
        assert!(r.body.capacity() < 1024, "nothing was allocated for it");
    }

    #[test]
    fn a_message_over_the_frame_limit_travels_in_several_frames() {
        let big = FromWorker::Output {
            id: 1,
            stream: crate::protocol::Stream::Stdout,
            bytes: (0..MAX_FRAME as usize * 2 + 10).map(|i| i as u8).collect(),
        };
        let mut buf = Vec::new();
        encode(&big, &mut buf).unwrap();
        let header = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().unwrap());
        assert_eq!(
            header(0),
            MAX_FRAME | MORE,
            "a first frame, full, with more to come"
        );
        let mut r = stream(&[&buf, &HEARTBEAT]);
        assert_eq!(r.read::<FromWorker>().unwrap(), Some(big));
        assert_eq!(r.read::<FromWorker>().unwrap(), None, "then the heartbeat");
    }

    #[test]
    fn a_message_over_the_message_limit_is_refused_as_its_frames_arrive() {
        // Three full frames where two are allowed: refused at the third header, before its
        // body is read.
        let mut bytes = Vec::new();
        for _ in 0..3 {
            bytes.extend_from_slice(&(MAX_FRAME | MORE).to_le_bytes());
            bytes.resize(bytes.len() + MAX_FRAME as usize, 0);
        }
        let limit = 2 * u64::from(MAX_FRAME);
        let mut r = FrameReader::with_limit(std::io::Cursor::new(bytes), limit);
        match r.read::<FromWorker>() {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!((len, max), (3 * u64::from(MAX_FRAME), limit))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_truncated() {
        let mut bytes = Vec::new();
        encode(&hello(), &mut bytes).unwrap();
        for cut in [1, 3, 5, bytes.len() - 1] {
            let mut r = stream(&[&bytes[..cut]]);
            assert!(
                matches!(r.read::<FromWorker>(), Err(FrameError::Truncated)),
                "cut at {cut}"
            );
        }
    }

    /// Reads `bytes`, then fails as a reset connection does.
    struct ThenReset(std::io::Cursor<Vec<u8>>);

    impl Read for ThenReset {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(std::io::ErrorKind::ConnectionReset.into()),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_reset_between_frames_is_a_close_and_inside_one_a_cut() {
        let mut bytes = Vec::new();
        encode(&hello(), &mut bytes).unwrap();
        let mut r = FrameReader::new(ThenReset(std::io::Cursor::new(bytes.clone())));
        assert_eq!(r.read::<FromWorker>().unwrap(), Some(hello()));
        assert!(matches!(r.read::<FromWorker>(), Err(FrameError::Closed)));
        let cut = bytes[..bytes.len() - 1].to_vec();
        let mut r = FrameReader::new(ThenReset(std::io::Cursor::new(cut)));
        assert!(matches!(r.read::<FromWorker>(), Err(FrameError::Truncated)));
    }

    #[test]
    fn a_body_that_does_not_decode_is_refused() {
        let mut bytes = 3u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0xff, 0xff, 0xff]);
        assert!(matches!(
            stream(&[&bytes]).read::<FromWorker>(),
            Err(FrameError::Decode(_))
        ));
    }
}
