//! Where workers that connect back over TCP arrive (Slurm's workers, started with
//! `troop --worker-connect HOST:PORT`): a listening socket, the run's secret, and a thread that
//! lets through only the connections that prove they hold it.
//!
//! [`Listener::bind`] opens the socket and makes the secret; the workers get the address
//! ([`Listener::local_addr`]) on their command line and the secret ([`Listener::secret_hex`]) in
//! their environment, as [`ENV_SECRET`]. [`Listener::start`] runs the accept thread: each
//! connection gets a thread of its own and [`Listener::handshake_limit`] to get through
//! [`troop_worker::handshake`] and say hello, and only then reaches the callback, as an
//! [`Accepted`] whose streams carry the rest of the conversation (without a second greeting:
//! open it with [`troop_worker::stream::open_greeted`]). A connection that fails (a wrong
//! secret, another protocol version, bytes that are not troop's, a frame over the handshake's
//! size limit, a silence) is closed and counted ([`Listener::refused`]); the last few reasons are
//! kept for the run's report ([`Listener::refusals`]) and each is handed to
//! [`Listener::on_refused`]'s callback as it happens. Nothing a connection sends can stop the
//! thread or take more than a handshake frame's memory; at most [`MAX_HANDSHAKES`] handshakes run
//! at once. Closing the listener (or dropping it) stops the thread.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;
use troop_worker::handshake::{self, HANDSHAKE_LIMIT};
use troop_worker::protocol::Hello;
use troop_worker::secret::Secret;

pub use troop_worker::secret::ENV_SECRET;

/// How many handshakes may run at once; a connection beyond them is refused at once.
pub const MAX_HANDSHAKES: usize = 64;
/// How many refusals [`Listener::refusals`] keeps (the latest).
pub const KEPT_REFUSALS: usize = 16;

/// A worker that proved itself and said hello.
#[derive(Debug)]
pub struct Accepted {
    pub hello: Hello,
    /// The connection, to read the worker's messages from.
    pub reader: TcpStream,
    /// The same connection, to write to the worker.
    pub writer: TcpStream,
    pub peer: SocketAddr,
}

/// A connection that was closed without reaching the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub peer: SocketAddr,
    /// Why, in words.
    pub reason: String,
}

#[derive(Debug, Error)]
pub enum ListenError {
    #[error("cannot listen for workers on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot make the run's secret: {0}")]
    Secret(std::io::Error),
    #[error("cannot start the thread that accepts workers: {0}")]
    Thread(std::io::Error),
}

type OnAccept = Box<dyn FnMut(Accepted) + Send>;
type OnRefused = Box<dyn FnMut(&Refusal) + Send>;

struct Shared {
    secret: Secret,
    limit: Duration,
    closed: AtomicBool,
    handshakes: AtomicUsize,
    refused: AtomicU64,
    refusals: Mutex<VecDeque<Refusal>>,
    on_refused: Mutex<Option<OnRefused>>,
    /// Taken, with `closed` checked under it, for each worker handed over.
    on_accept: Mutex<Option<OnAccept>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn refuse(&self, peer: SocketAddr, reason: String) {
        self.refused.fetch_add(1, Ordering::SeqCst);
        let refusal = Refusal { peer, reason };
        if let Some(f) = lock(&self.on_refused).as_mut() {
            f(&refusal);
        }
        let mut kept = lock(&self.refusals);
        if kept.len() == KEPT_REFUSALS {
            kept.pop_front();
        }
        kept.push_back(refusal);
    }
}

/// The listening socket, the run's secret, and the accept thread.
pub struct Listener {
    socket: Option<TcpListener>,
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<(JoinHandle<()>, std::os::fd::RawFd)>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("addr", &self.addr)
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// Listens on `addr` (`"0.0.0.0:0"`: every interface, a port the system picks) and makes a
    /// fresh secret for the run. Nothing is accepted before [`Listener::start`].
    pub fn bind(addr: impl ToSocketAddrs + std::fmt::Display) -> Result<Listener, ListenError> {
        let bind_error = |source| ListenError::Bind {
            addr: addr.to_string(),
            source,
        };
        let socket = TcpListener::bind(&addr).map_err(bind_error)?;
        let local = socket.local_addr().map_err(bind_error)?;
        let secret = Secret::generate().map_err(ListenError::Secret)?;
        Ok(Listener {
            socket: Some(socket),
            addr: local,
            shared: Arc::new(Shared {
                secret,
                limit: HANDSHAKE_LIMIT,
                closed: AtomicBool::new(false),
                handshakes: AtomicUsize::new(0),
                refused: AtomicU64::new(0),
                refusals: Mutex::new(VecDeque::new()),
                on_refused: Mutex::new(None),
                on_accept: Mutex::new(None),
            }),
            thread: None,
        })
    }

    /// Sets how long a connection may take to prove itself and say hello: 10 s unless set.
    /// Once [`Listener::start`] ran, the limit is fixed and this does nothing.
    pub fn handshake_limit(mut self, limit: Duration) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.limit = limit;
        }
        self
    }

    /// The address the socket is bound to, with the port the system picked.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The run's secret in hex, for [`ENV_SECRET`] in each launched worker's environment.
    pub fn secret_hex(&self) -> String {
        self.shared.secret.to_hex()
    }

    /// Calls `f` with each refusal as it happens (from the thread that refused it).
    pub fn on_refused(&self, f: impl FnMut(&Refusal) + Send + 'static) {
        *lock(&self.shared.on_refused) = Some(Box::new(f));
    }

    /// How many connections were refused so far.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// The latest refusals, oldest first (at most [`KEPT_REFUSALS`]).
    pub fn refusals(&self) -> Vec<Refusal> {
        lock(&self.shared.refusals).iter().cloned().collect()
    }

    /// Starts the accept thread; `on_accept` gets each worker that proved itself, from the
    /// thread of its handshake (one at a time). Calling it again does nothing.
    pub fn start(
        &mut self,
        on_accept: impl FnMut(Accepted) + Send + 'static,
    ) -> Result<(), ListenError> {
        let Some(socket) = self.socket.take() else {
            return Ok(());
        };
        *lock(&self.shared.on_accept) = Some(Box::new(on_accept));
        let fd = socket.as_raw_fd();
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("troop-listen".into())
            .spawn(move || accept_loop(socket, shared))
            .map_err(ListenError::Thread)?;
        self.thread = Some((thread, fd));
        Ok(())
    }

    /// Stops accepting: the accept thread ends, and once this returns the callback is not
    /// called again (a handshake still in progress ends without reaching it).
    pub fn close(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        if let Some((thread, fd)) = self.thread.take() {
            // SAFETY: `fd` is the accept thread's socket, open until that thread ends, which
            // is joined below. On Linux, shutting a listening socket down wakes `accept`.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            let _ = thread.join();
        }
        self.socket = None;
        // Waits for a callback in progress; later ones see `closed`.
        drop(lock(&self.shared.on_accept).take());
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.close();
    }
}

fn accept_loop(socket: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = socket.accept();
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of descriptors or memory, or the connection died while queued: the
                // next accept may do better. A pause (a back-off, not a poll) keeps a lasting
                // shortage from spinning.
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
        };
        if shared.handshakes.fetch_add(1, Ordering::SeqCst) >= MAX_HANDSHAKES {
            shared.handshakes.fetch_sub(1, Ordering::SeqCst);
            shared.refuse(peer, format!("over {MAX_HANDSHAKES} handshakes at once"));
            continue;
        }
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("troop-handshake".into())
            .spawn(move || {
                handshake(stream, peer, &s);
                s.handshakes.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            shared.handshakes.fetch_sub(1, Ordering::SeqCst);
            shared.refuse(peer, format!("cannot start a thread for it: {e}"));
        }
    }
}

fn handshake(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let hello = match handshake::check_worker(&mut stream, &shared.secret, shared.limit) {
        Ok(hello) => hello,
        Err(e) => return shared.refuse(peer, e.to_string()),
    };
    let reader = match stream.try_clone() {
        Ok(reader) => reader,
        Err(e) => return shared.refuse(peer, format!("cannot share the connection: {e}")),
    };
    let mut on_accept = lock(&shared.on_accept);
    if shared.closed.load(Ordering::SeqCst) {
        return;
    }
    if let Some(f) = on_accept.as_mut() {
        f(Accepted {
            hello,
            reader,
            writer: stream,
            peer,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::Receiver;
    use troop_worker::frame::{self, FrameReader};
    use troop_worker::protocol::{FromWorker, PROTOCOL_VERSION, ToWorker};

    const WAIT: Duration = Duration::from_secs(10);

    fn listener(limit: Duration) -> (Listener, Receiver<Accepted>, Receiver<Refusal>) {
        let mut l = Listener::bind("127.0.0.1:0")
            .unwrap()
            .handshake_limit(limit);
        let (refused_tx, refused) = crossbeam_channel::unbounded();
        l.on_refused(move |r| {
            let _ = refused_tx.send(r.clone());
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        l.start(move |a| {
            let _ = tx.send(a);
        })
        .unwrap();
        (l, rx, refused)
    }

    /// A worker's side: connects, proves itself with `secret` and says hello as `index`.
    fn worker(l: &Listener, secret: &str, index: u32) -> Result<TcpStream, String> {
        let mut s = TcpStream::connect(l.local_addr()).unwrap();
        let secret = Secret::from_hex(secret).unwrap();
        handshake::prove_worker(&mut s, &secret, WAIT).map_err(|e| e.to_string())?;
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            pid: 1,
            index,
            token: String::new(),
        };
        frame::write_frame(&mut s, &FromWorker::Hello(hello)).unwrap();
        Ok(s)
    }

    #[test]
    fn a_worker_with_the_secret_is_handed_over_after_its_hello() {
        let (l, accepted, _) = listener(HANDSHAKE_LIMIT);
        assert!(l.local_addr().port() > 0);
        let mut w = worker(&l, &l.secret_hex(), 5).unwrap();
        let mut a = accepted.recv_timeout(WAIT).expect("accepted");
        assert_eq!(a.hello.index, 5);
        assert_eq!(a.peer, w.local_addr().unwrap());
        // The streams carry the rest of the conversation, with no second greeting.
        frame::write_frame(&mut a.writer, &ToWorker::Shutdown).unwrap();
        let mut from_supervisor = FrameReader::new(w.try_clone().unwrap());
        assert_eq!(
            from_supervisor.read::<ToWorker>().unwrap(),
            Some(ToWorker::Shutdown)
        );
        frame::write_frame(&mut w, &FromWorker::Withdrawn(vec![3])).unwrap();
        let mut from_worker = FrameReader::new(a.reader);
        assert_eq!(
            from_worker.read::<FromWorker>().unwrap(),
            Some(FromWorker::Withdrawn(vec![3]))
        );
        assert_eq!(l.refused(), 0);
    }

    #[test]
    fn wrong_secrets_and_silences_are_refused_counted_and_reported() {
        let (l, accepted, refused) = listener(Duration::from_millis(300));
        let wrong = Secret::generate().unwrap().to_hex();
        let err = worker(&l, &wrong, 0).unwrap_err();
        assert!(err.contains("refused this worker"), "{err}");
        let first = refused.recv_timeout(WAIT).expect("a refusal");
        assert!(first.reason.contains("proof is wrong"), "{first:?}");
        let silent = TcpStream::connect(l.local_addr()).unwrap();
        let second = refused.recv_timeout(WAIT).expect("a refusal");
        assert_eq!(second.peer, silent.local_addr().unwrap());
        assert!(second.reason.contains("within"), "{second:?}");
        assert_eq!(l.refused(), 2);
        assert_eq!(l.refusals(), vec![first, second]);
        // The listener still lets the next worker in.
        let _w = worker(&l, &l.secret_hex(), 1).unwrap();
        assert_eq!(
            accepted.recv_timeout(WAIT).expect("accepted").hello.index,
            1
        );
    }

    #[test]
    fn closing_stops_the_accept_thread_and_drops_the_callback() {
        let (mut l, accepted, _) = listener(HANDSHAKE_LIMIT);
        let addr = l.local_addr();
        l.close();
        assert!(
            matches!(
                accepted.recv_timeout(WAIT),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected)
            ),
            "the callback is gone"
        );
        assert!(TcpStream::connect(addr).is_err(), "nobody listens");
        l.close();
    }

    #[test]
    fn a_port_in_use_is_a_clear_error() {
        let l = Listener::bind("127.0.0.1:0").unwrap();
        let err = Listener::bind(l.local_addr()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot listen for workers on {}", l.local_addr())),
            "{err}"
        );
    }
}
