//! A conversation over a byte stream: both ends of it, with a heartbeat in each direction.
//!
//! [`open`] greets the other side, starts a reader thread that decodes [`crate::frame`]s and
//! hands each message to a callback, and a heartbeat thread that writes a heartbeat frame every
//! [`Heartbeat::every`] and says when nothing at all (no message, no heartbeat) came from the
//! other side for [`Heartbeat::limit`]: a host that died or dropped off the network is found by
//! that silence, not only when the stream closes, which over a dead network may take hours.
//!
//! Both ends use it: a remote worker ([`StreamTransport`], the runtime's [`Transport`] over
//! stdin and stdout) and the supervisor's side of each remote worker, which delivers messages
//! straight into its inbox.

use std::io::{Read, Write};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{self, FrameError, FrameReader};
use crate::protocol::{FromWorker, ToWorker};
use crate::transport::{Transport, TransportError};

/// How often each side says it is alive, and how long a silence means the other side is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub every: Duration,
    pub limit: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            every: Duration::from_secs(1),
            limit: Duration::from_secs(10),
        }
    }
}

/// What the reader thread reports besides messages.
pub trait Peer<In>: Send + 'static {
    /// A message arrived. Returns false when nobody wants more: the reader stops.
    fn message(&mut self, msg: In) -> bool;
    /// The stream ended or failed; no message follows. Called once, unless [`Peer::silent`]
    /// was called first.
    fn ended(&mut self, why: FrameError);
    /// Nothing came for [`Heartbeat::limit`]. Called once, from the heartbeat thread, with a
    /// clone of the peer made when the stream opened; [`Peer::ended`] is not called after it.
    fn silent(&self);
}

/// The sending half of a stream of `Out` messages. Dropping it stops the heartbeat; the
/// stream closes when the reader's side ends too.
pub struct StreamSender<W, Out> {
    shared: Arc<Shared<W>>,
    buf: Vec<u8>,
    out: PhantomData<fn(Out)>,
}

impl<W, Out> std::fmt::Debug for StreamSender<W, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamSender")
    }
}

struct Shared<W> {
    writer: Mutex<W>,
    /// When anything last came from the other side, in ms since the stream opened.
    heard_ms: AtomicU64,
    /// Set once the conversation is over: the heartbeat thread stops.
    over: AtomicBool,
    opened: Instant,
    /// Wakes the heartbeat thread early, when the stream closes.
    stop: Mutex<Option<Sender<()>>>,
}

impl<W: Write> Shared<W> {
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write_all(bytes)?;
        w.flush()
    }

    fn finish(&self) {
        self.over.store(true, Ordering::SeqCst);
        drop(self.stop.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

impl<W: Write, Out: Serialize> StreamSender<W, Out> {
    /// Sends one message.
    pub fn send(&mut self, msg: &Out) -> Result<(), FrameError> {
        self.buf.clear();
        frame::encode(msg, &mut self.buf)?;
        self.shared.write(&self.buf)?;
        Ok(())
    }

    /// Ends the conversation from this side: the heartbeat stops. The stream itself closes
    /// when the writer is dropped.
    pub fn close(&self) {
        self.shared.finish();
    }
}

impl<W, Out> Drop for StreamSender<W, Out> {
    fn drop(&mut self) {
        // Nothing will be sent any more, heartbeats included.
        self.shared.over.store(true, Ordering::SeqCst);
        drop(
            self.shared
                .stop
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
    }
}

/// Opens a conversation: writes the greeting, then starts the reader and heartbeat threads.
/// The reader first skips whatever comes before the other side's greeting; what it skipped is
/// given to `preamble` (a remote shell's chatter, say), if anything.
pub fn open<R, W, In, Out, P>(
    reader: R,
    mut writer: W,
    beat: Heartbeat,
    peer: P,
    preamble: impl FnOnce(Vec<u8>) + Send + 'static,
) -> Result<StreamSender<W, Out>, FrameError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
    In: DeserializeOwned + Send + 'static,
    Out: Serialize,
    P: Peer<In> + Clone,
{
    frame::write_magic(&mut writer)?;
    start(reader, writer, beat, peer, Some(Box::new(preamble)))
}

/// Opens a conversation whose greeting both sides exchanged already (a TCP connection greets
/// and authenticates before the conversation starts: see [`crate::connect`]). The reader reads
/// frames from the first byte.
pub fn open_greeted<R, W, In, Out, P>(
    reader: R,
    writer: W,
    beat: Heartbeat,
    peer: P,
) -> Result<StreamSender<W, Out>, FrameError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
    In: DeserializeOwned + Send + 'static,
    Out: Serialize,
    P: Peer<In> + Clone,
{
    start(reader, writer, beat, peer, None)
}

/// What the reader does with the bytes before the other side's greeting; `None` when the
/// greeting was read already.
type Preamble = Option<Box<dyn FnOnce(Vec<u8>) + Send>>;

fn start<R, W, In, Out, P>(
    reader: R,
    writer: W,
    beat: Heartbeat,
    peer: P,
    preamble: Preamble,
) -> Result<StreamSender<W, Out>, FrameError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
    In: DeserializeOwned + Send + 'static,
    Out: Serialize,
    P: Peer<In> + Clone,
{
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let shared = Arc::new(Shared {
        writer: Mutex::new(writer),
        heard_ms: AtomicU64::new(0),
        over: AtomicBool::new(false),
        opened: Instant::now(),
        stop: Mutex::new(Some(stop_tx)),
    });
    let silent_peer = peer.clone();
    let s = shared.clone();
    std::thread::Builder::new()
        .name("troop-stream-in".into())
        .spawn(move || read_loop(reader, s, peer, preamble))?;
    let s = shared.clone();
    std::thread::Builder::new()
        .name("troop-stream-beat".into())
        .spawn(move || beat_loop(s, beat, stop_rx, silent_peer))?;
    Ok(StreamSender {
        shared,
        buf: Vec::new(),
        out: PhantomData,
    })
}

fn read_loop<R: Read, W: Write, In: DeserializeOwned, P: Peer<In>>(
    reader: R,
    shared: Arc<Shared<W>>,
    mut peer: P,
    preamble: Preamble,
) {
    let mut frames = FrameReader::new(reader);
    let heard = |s: &Shared<W>| {
        s.heard_ms
            .store(s.opened.elapsed().as_millis() as u64, Ordering::Relaxed)
    };
    let greeting = match preamble {
        Some(preamble) => frames.read_magic().map(|skipped| {
            if !skipped.is_empty() {
                preamble(skipped);
            }
        }),
        None => Ok(()),
    };
    let why = match greeting {
        Ok(()) => {
            heard(&shared);
            loop {
                match frames.read::<In>() {
                    Ok(msg) => {
                        heard(&shared);
                        if let Some(msg) = msg
                            && !peer.message(msg)
                        {
                            break None;
                        }
                    }
                    Err(e) => break Some(e),
                }
            }
        }
        Err(e) => Some(e),
    };
    // After a silence the peer was told already; a stream that ends then is no news.
    let told = shared.over.swap(true, Ordering::SeqCst);
    shared.finish();
    if let Some(why) = why
        && !told
    {
        peer.ended(why);
    }
}

fn beat_loop<W: Write, In, P: Peer<In>>(
    shared: Arc<Shared<W>>,
    beat: Heartbeat,
    stop: Receiver<()>,
    peer: P,
) {
    loop {
        // The channel never carries anything: it only closes, early, when the stream does.
        if stop.recv_timeout(beat.every).is_ok() || shared.over.load(Ordering::SeqCst) {
            return;
        }
        if shared.write(&frame::HEARTBEAT).is_err() {
            // The reader will see the stream end.
            return;
        }
        let heard = Duration::from_millis(shared.heard_ms.load(Ordering::Relaxed));
        if shared.opened.elapsed().saturating_sub(heard) > beat.limit {
            if !shared.over.swap(true, Ordering::SeqCst) {
                peer.silent();
            }
            return;
        }
    }
}

/// A remote worker's transport: the runtime's [`Transport`] over a stream (ssh's stdin and
/// stdout, or a TCP connection back to the supervisor).
#[derive(Debug)]
pub struct StreamTransport<W> {
    rx: Receiver<ToWorker>,
    tx: StreamSender<W, FromWorker>,
    /// Why the stream ended, once it has.
    why: Arc<Mutex<Option<String>>>,
}

/// The worker end's peer: messages go into a channel the runtime reads.
#[derive(Clone)]
struct WorkerPeer {
    tx: Sender<ToWorker>,
    why: Arc<Mutex<Option<String>>>,
    on_silence: Arc<dyn Fn() + Send + Sync>,
}

impl Peer<ToWorker> for WorkerPeer {
    fn message(&mut self, msg: ToWorker) -> bool {
        self.tx.send(msg).is_ok()
    }

    fn ended(&mut self, why: FrameError) {
        if !matches!(why, FrameError::Closed) {
            *self.why.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.to_string());
        }
        // Dropping the sender closes the channel: the runtime sees the supervisor gone.
        let (dead, _) = crossbeam_channel::bounded(0);
        self.tx = dead;
    }

    fn silent(&self) {
        (self.on_silence)();
    }
}

impl<W: Write + Send + 'static> StreamTransport<W> {
    /// Opens the worker's end. `on_silence` runs when the supervisor has not been heard from
    /// for the heartbeat's limit: it should stop what runs and end the process.
    pub fn open<R: Read + Send + 'static>(
        reader: R,
        writer: W,
        beat: Heartbeat,
        on_silence: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Self, FrameError> {
        Self::start(reader, writer, beat, on_silence, false)
    }

    /// As [`StreamTransport::open`], over a stream whose greeting was exchanged already.
    pub fn open_greeted<R: Read + Send + 'static>(
        reader: R,
        writer: W,
        beat: Heartbeat,
        on_silence: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Self, FrameError> {
        Self::start(reader, writer, beat, on_silence, true)
    }

    fn start<R: Read + Send + 'static>(
        reader: R,
        writer: W,
        beat: Heartbeat,
        on_silence: Arc<dyn Fn() + Send + Sync>,
        greeted: bool,
    ) -> Result<Self, FrameError> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let why = Arc::new(Mutex::new(None));
        let peer = WorkerPeer {
            tx,
            why: why.clone(),
            on_silence,
        };
        let tx = if greeted {
            open_greeted(reader, writer, beat, peer)?
        } else {
            open(reader, writer, beat, peer, |_| {})?
        };
        Ok(StreamTransport { rx, tx, why })
    }

    fn closed(&self) -> TransportError {
        match self.why.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(why) => TransportError::Ipc(why),
            None => TransportError::Closed,
        }
    }
}

impl<W: Write + Send + 'static> Transport for StreamTransport<W> {
    fn recv(&mut self) -> Result<ToWorker, TransportError> {
        self.rx.recv().map_err(|_| self.closed())
    }

    fn try_recv(&mut self) -> Result<Option<ToWorker>, TransportError> {
        match self.rx.try_recv() {
            Ok(msg) => Ok(Some(msg)),
            Err(crossbeam_channel::TryRecvError::Empty) => Ok(None),
            Err(crossbeam_channel::TryRecvError::Disconnected) => Err(self.closed()),
        }
    }

    fn send(&mut self, msg: FromWorker) -> Result<(), TransportError> {
        self.tx
            .send(&msg)
            .map_err(|e| TransportError::Ipc(e.to_string()))
    }
}
