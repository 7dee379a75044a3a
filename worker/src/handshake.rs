//! The handshake of a worker that connects back over TCP: both ends prove that they belong to
//! the same run before the conversation of [`crate::protocol`] starts.
//!
//! Anyone who can reach the supervisor's port can connect, so each end first proves that it
//! knows the run's secret: random bytes the supervisor made and handed to each worker in the
//! variable [`ENV_SECRET`] (hex, see [`crate::secret`]), never on a command line, where `ps` would show it. The worker
//! wipes and removes the variable before it does anything else, so no task inherits it. The
//! secret never crosses the network; only HMAC-SHA256 proofs over fresh challenges do:
//!
//! ```text
//! worker                                      supervisor
//!   MAGIC                                  ─▶
//!                                          ◀─ MAGIC
//!                                          ◀─ Challenge { nonce }          32 random bytes
//!   Answer { protocol_version,             ─▶ checks the version and the proof (in constant
//!            proof, nonce }                     time); closes the connection if either is wrong
//!                                          ◀─ Verdict { proof }
//!   checks the proof; exits if it is wrong,
//!   or if the connection closed instead
//!   Hello { .. }, and the protocol as usual ─▶ (see crate::protocol; no second MAGIC)
//!
//!   worker's proof     = HMAC-SHA256(secret, Challenge.nonce ‖ "troop worker v<PROTOCOL_VERSION>")
//!   Answer.nonce       = 32 random bytes of the worker's own
//!   supervisor's proof = HMAC-SHA256(secret, Answer.nonce ‖ "troop supervisor")
//! ```
//!
//! The labels keep either proof from passing for the other, and a fresh nonce from each side
//! makes a recorded proof useless later. The version travels in clear, so that a worker of
//! another build is told apart from one with a wrong secret. The supervisor gives a connection a
//! bounded time to get through all this, hello included ([`HANDSHAKE_LIMIT`]), and refuses any
//! frame over [`MAX_HANDSHAKE_FRAME`] until then. The stream is not encrypted: tasks and their
//! output travel in clear, as anything else on the cluster's network does; the secret keeps
//! strangers from taking tasks or posing as the supervisor.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::frame::{self, FrameError, MAGIC};
use crate::protocol::{FromWorker, Hello, PROTOCOL_VERSION};
use crate::secret::{ENV_SECRET, Secret, random};

/// The bytes of each challenge.
pub const NONCE_LEN: usize = 32;
/// The largest frame accepted before the worker's hello has been read, in bytes.
pub const MAX_HANDSHAKE_FRAME: u32 = 4096;
/// How long the supervisor waits for a connection to prove itself and say hello.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// How long a worker waits for its connection to open, and then for the supervisor's answers.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The supervisor's challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub nonce: [u8; NONCE_LEN],
}

/// The worker's proof, and its own challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Sent in clear, so that a worker of another version is told apart from a wrong secret.
    pub protocol_version: u32,
    pub proof: [u8; 32],
    pub nonce: [u8; NONCE_LEN],
}

/// The supervisor's proof: the worker has reached the run that started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub proof: [u8; 32],
}

/// Why a connection was not let through.
#[derive(Debug, Error)]
pub enum HandshakeError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("it does not greet as troop does")]
    NotTroop,
    #[error("it did not finish the handshake within {0:?}")]
    TimedOut(Duration),
    #[error("it speaks protocol version {theirs}, this troop speaks {ours}")]
    Version { theirs: u32, ours: u32 },
    #[error("its proof is wrong: it does not hold this run's secret")]
    WrongProof,
    #[error("it sent something other than its hello")]
    NoHello,
    #[error(
        "the supervisor refused this worker: its {ENV_SECRET} is not this run's, or troop's versions differ"
    )]
    Refused,
    #[error(
        "the supervisor's proof is wrong: whoever listens there does not hold this run's secret"
    )]
    WrongSupervisor,
    #[error("cannot read random bytes: {0}")]
    Random(std::io::Error),
}

/// A socket whose reads and writes can be bounded in time.
pub trait Socket: Read + Write {
    fn set_timeouts(&self, limit: Option<Duration>) -> std::io::Result<()>;
}

impl Socket for std::net::TcpStream {
    fn set_timeouts(&self, limit: Option<Duration>) -> std::io::Result<()> {
        self.set_read_timeout(limit)?;
        self.set_write_timeout(limit)
    }
}

impl Socket for std::os::unix::net::UnixStream {
    fn set_timeouts(&self, limit: Option<Duration>) -> std::io::Result<()> {
        self.set_read_timeout(limit)?;
        self.set_write_timeout(limit)
    }
}

/// A socket whose every read and write ends by one deadline. Reads exactly what is asked for,
/// never ahead: what follows the handshake stays in the socket for the conversation.
struct Timed<'a, S: Socket> {
    socket: &'a mut S,
    until: Instant,
    limit: Duration,
}

impl<S: Socket> Timed<'_, S> {
    fn arm(&self) -> std::io::Result<()> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.socket.set_timeouts(Some(left))
    }

    fn error(&self, e: FrameError) -> HandshakeError {
        match e {
            FrameError::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                HandshakeError::TimedOut(self.limit)
            }
            FrameError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                HandshakeError::Frame(FrameError::Closed)
            }
            e => HandshakeError::Frame(e),
        }
    }

    fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), HandshakeError> {
        frame::write_frame(self, msg).map_err(|e| self.error(e))
    }

    fn greet(&mut self) -> Result<(), HandshakeError> {
        frame::write_magic(self).map_err(|e| self.error(e))?;
        let mut magic = [0u8; MAGIC.len()];
        self.read_exact(&mut magic)
            .map_err(|e| self.error(e.into()))?;
        if magic != MAGIC {
            return Err(HandshakeError::NotTroop);
        }
        Ok(())
    }

    /// The next message; heartbeats are skipped.
    fn recv<T: DeserializeOwned>(&mut self) -> Result<T, HandshakeError> {
        loop {
            let mut len = [0u8; 4];
            self.read_exact(&mut len)
                .map_err(|e| self.error(e.into()))?;
            let len = u32::from_le_bytes(len);
            if len == 0 {
                continue;
            }
            if len > MAX_HANDSHAKE_FRAME {
                return Err(FrameError::TooLarge {
                    len: len.into(),
                    max: u64::from(MAX_HANDSHAKE_FRAME),
                }
                .into());
            }
            let mut body = vec![0u8; len as usize];
            self.read_exact(&mut body)
                .map_err(|e| self.error(e.into()))?;
            return postcard::from_bytes(&body)
                .map_err(|e| FrameError::Decode(e.to_string()).into());
        }
    }

    /// Lifts the deadline: the conversation that follows has heartbeats of its own.
    fn done(self) -> Result<(), HandshakeError> {
        self.socket
            .set_timeouts(None)
            .map_err(|e| FrameError::Io(e).into())
    }
}

impl<S: Socket> Read for Timed<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.socket.read(buf)
    }
}

impl<S: Socket> Write for Timed<'_, S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.socket.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.socket.flush()
    }
}

/// The worker's side of the handshake, within `limit`. On success the worker says hello next.
pub fn prove_worker<S: Socket>(
    socket: &mut S,
    secret: &Secret,
    limit: Duration,
) -> Result<(), HandshakeError> {
    let mut s = Timed {
        socket,
        until: Instant::now() + limit,
        limit,
    };
    s.greet()?;
    let Challenge { nonce } = s.recv()?;
    let mine = random::<NONCE_LEN>().map_err(HandshakeError::Random)?;
    s.send(&Answer {
        protocol_version: PROTOCOL_VERSION,
        proof: secret.worker_proof(&nonce),
        nonce: mine,
    })?;
    let verdict: Verdict = s.recv().map_err(|e| match e {
        HandshakeError::Frame(FrameError::Closed | FrameError::Io(_)) => HandshakeError::Refused,
        e => e,
    })?;
    if !secret.verify_supervisor(&mine, &verdict.proof) {
        return Err(HandshakeError::WrongSupervisor);
    }
    s.done()
}

/// The supervisor's side of the handshake, within `limit`: checks the worker's proof, proves
/// itself, and reads the worker's hello, which it returns.
pub fn check_worker<S: Socket>(
    socket: &mut S,
    secret: &Secret,
    limit: Duration,
) -> Result<Hello, HandshakeError> {
    let mut s = Timed {
        socket,
        until: Instant::now() + limit,
        limit,
    };
    s.greet()?;
    let nonce = random::<NONCE_LEN>().map_err(HandshakeError::Random)?;
    s.send(&Challenge { nonce })?;
    let answer: Answer = s.recv()?;
    if answer.protocol_version != PROTOCOL_VERSION {
        return Err(HandshakeError::Version {
            theirs: answer.protocol_version,
            ours: PROTOCOL_VERSION,
        });
    }
    if !secret.verify_worker(&nonce, &answer.proof) {
        return Err(HandshakeError::WrongProof);
    }
    s.send(&Verdict {
        proof: secret.supervisor_proof(&answer.nonce),
    })?;
    let FromWorker::Hello(hello) = s.recv()? else {
        return Err(HandshakeError::NoHello);
    };
    s.done()?;
    Ok(hello)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SECRET_LEN;
    use std::os::unix::net::UnixStream;

    const LIMIT: Duration = Duration::from_secs(5);

    fn secret(byte: u8) -> Secret {
        Secret::from_hex(&format!("{byte:02x}").repeat(SECRET_LEN)).unwrap()
    }

    fn hello() -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            pid: 7,
            index: 4,
            token: String::new(),
        }
    }

    /// Runs the supervisor's side on a thread and `worker` on this one.
    fn exchange<T>(
        supervisor: Secret,
        limit: Duration,
        worker: impl FnOnce(&mut UnixStream) -> T,
    ) -> (Result<Hello, HandshakeError>, T) {
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        let checker = std::thread::spawn(move || check_worker(&mut theirs, &supervisor, limit));
        let got = worker(&mut ours);
        // The worker's end stays open until the supervisor's side is done with it.
        let checked = checker.join().unwrap();
        drop(ours);
        (checked, got)
    }

    #[test]
    fn the_right_secret_passes_both_ways_and_the_hello_comes_through() {
        let (checked, proved) = exchange(secret(1), LIMIT, |s| {
            let proved = prove_worker(s, &secret(1), LIMIT);
            frame::write_frame(s, &FromWorker::Hello(hello())).unwrap();
            proved
        });
        assert!(proved.is_ok(), "{proved:?}");
        assert_eq!(checked.unwrap(), hello());
    }

    #[test]
    fn a_worker_with_a_wrong_secret_is_refused_and_told_so() {
        let (checked, proved) = exchange(secret(1), LIMIT, |s| prove_worker(s, &secret(2), LIMIT));
        assert!(
            matches!(checked, Err(HandshakeError::WrongProof)),
            "{checked:?}"
        );
        assert!(matches!(proved, Err(HandshakeError::Refused)), "{proved:?}");
    }

    #[test]
    fn a_supervisor_with_a_wrong_secret_is_found_out_by_the_worker() {
        let (mut worker, mut impostor) = UnixStream::pair().unwrap();
        let prover = std::thread::spawn(move || prove_worker(&mut worker, &secret(1), LIMIT));
        let mut s = Timed {
            socket: &mut impostor,
            until: Instant::now() + LIMIT,
            limit: LIMIT,
        };
        s.greet().unwrap();
        s.send(&Challenge {
            nonce: [9; NONCE_LEN],
        })
        .unwrap();
        let answer: Answer = s.recv().unwrap();
        // The impostor cannot check the proof; it answers as best it can.
        s.send(&Verdict {
            proof: secret(2).supervisor_proof(&answer.nonce),
        })
        .unwrap();
        let proved = prover.join().unwrap();
        assert!(
            matches!(proved, Err(HandshakeError::WrongSupervisor)),
            "{proved:?}"
        );
    }

    #[test]
    fn another_version_is_told_apart_from_a_wrong_secret() {
        let (checked, _) = exchange(secret(1), LIMIT, |s| {
            let mut s = Timed {
                socket: s,
                until: Instant::now() + LIMIT,
                limit: LIMIT,
            };
            s.greet().unwrap();
            let Challenge { nonce } = s.recv().unwrap();
            s.send(&Answer {
                protocol_version: PROTOCOL_VERSION + 1,
                proof: secret(1).worker_proof(&nonce),
                nonce,
            })
            .unwrap();
        });
        match checked {
            Err(HandshakeError::Version { theirs, ours }) => {
                assert_eq!((theirs, ours), (PROTOCOL_VERSION + 1, PROTOCOL_VERSION))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn silence_garbage_and_huge_frames_are_refused() {
        let limit = Duration::from_millis(300);
        let (silent, _) = exchange(secret(1), limit, |s| {
            std::thread::sleep(Duration::from_millis(600));
            s.write_all(&MAGIC).ok();
        });
        assert!(
            matches!(silent, Err(HandshakeError::TimedOut(l)) if l == limit),
            "{silent:?}"
        );
        let (garbage, _) = exchange(secret(1), LIMIT, |s| {
            s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap()
        });
        assert!(
            matches!(garbage, Err(HandshakeError::NotTroop)),
            "{garbage:?}"
        );
        let (huge, _) = exchange(secret(1), LIMIT, |s| {
            s.write_all(&MAGIC).unwrap();
            s.write_all(&u32::MAX.to_le_bytes()).unwrap();
        });
        assert!(
            matches!(
                huge,
                Err(HandshakeError::Frame(FrameError::TooLarge { .. }))
            ),
            "{huge:?}"
        );
    }
}
