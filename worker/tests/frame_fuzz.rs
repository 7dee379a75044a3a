//! Fuzzing the frame decoder: whatever bytes arrive on a remote worker's stream, the reader
//! returns messages or an error, never panics, and never allocates past the frame limit.
//!
//! Two parts: every file of the corpus in `tests/corpus/frame/` (valid conversations, and
//! streams that once were troublesome), and proptest cases that mutate valid streams and make
//! up random ones. `TROOP_WRITE_CORPUS=1 cargo test -p troop-worker --test frame_fuzz` rewrites
//! the generated part of the corpus.

use std::io::Cursor;
use std::path::PathBuf;

use proptest::prelude::*;
use troop_worker::frame::{self, FrameError, FrameReader, MAGIC, MAX_FRAME};
use troop_worker::kernel::Kernel;
use troop_worker::protocol::{
    Captured, FileCopy, FromWorker, Hello, Job, Outcome, PROTOCOL_VERSION, Stream, TaskReport,
    TaskSpec, ToWorker, Transfer, Usage, WorkerConfig,
};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/frame")
}

/// A valid stream in each direction: greeting, messages of every kind, heartbeats.
fn conversations() -> Vec<(&'static str, Vec<u8>)> {
    let mut to = MAGIC.to_vec();
    for msg in [
        ToWorker::Configure(WorkerConfig::default()),
        ToWorker::Run(vec![
            TaskSpec {
                id: 1,
                job: Job::Exec(vec![b"echo".to_vec(), b"\xff\xfe".to_vec()]),
                timeout_ms: Some(5),
                input: None,
                transfer: None,
            },
            TaskSpec {
                id: 2,
                job: Job::Shell(b"exit 3".to_vec()),
                timeout_ms: None,
                input: None,
                transfer: Some(Box::new(Transfer {
                    base: Vec::new(),
                    send: vec![FileCopy {
                        path: "in/2.txt".into(),
                        bytes: b"\x00\xff data".to_vec(),
                        mode: 0o600,
                    }],
                    fetch: vec!["out/2.txt".into()],
                    cleanup: true,
                })),
            },
            TaskSpec {
                id: 3,
                job: Job::Kernel(Kernel::Noop),
                timeout_ms: None,
                input: None,
                transfer: None,
            },
        ]),
        ToWorker::Withdraw,
        ToWorker::Shutdown,
    ] {
        frame::encode(&msg, &mut to).unwrap();
        to.extend_from_slice(&frame::HEARTBEAT);
    }
    let mut from = b"motd\n".to_vec();
    from.extend_from_slice(&MAGIC);
    for msg in [
        FromWorker::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            pid: 7,
            index: 1,
            token: String::new(),
        }),
        FromWorker::Started { id: 1, pgid: 99 },
        FromWorker::Output {
            id: 1,
            stream: Stream::Stderr,
            bytes: b"line\n".to_vec(),
        },
        FromWorker::Done(vec![TaskReport {
            id: 1,
            outcome: Outcome::Exited(0),
            stdout: Captured::from(b"out\n".to_vec()),
            stderr: Captured::from(Vec::new()),
            usage: Usage::default(),
            returned: vec![FileCopy {
                path: "out/1.txt".into(),
                bytes: b"back".to_vec(),
                mode: 0o644,
            }],
        }]),
        FromWorker::Withdrawn(vec![2, 3]),
    ] {
        frame::encode(&msg, &mut from).unwrap();
        from.extend_from_slice(&frame::HEARTBEAT);
    }
    vec![("to_worker.bin", to), ("from_worker.bin", from)]
}

/// Reads a whole stream both ways; counts the messages. Panics only if the decoder does.
fn decode_all(bytes: &[u8]) -> (usize, Option<String>) {
    let mut n = 0;
    for direction in 0..2 {
        let mut r = FrameReader::new(Cursor::new(bytes));
        if let Err(e) = r.read_magic() {
            return (n, Some(e.to_string()));
        }
        loop {
            let next = if direction == 0 {
                r.read::<ToWorker>().map(|m| m.is_some())
            } else {
                r.read::<FromWorker>().map(|m| m.is_some())
            };
            match next {
                Ok(_) => n += 1,
                Err(FrameError::Closed) => break,
                Err(e) => {
                    if direction == 1 {
                        return (n, Some(e.to_string()));
                    }
                    break;
                }
            }
        }
    }
    (n, None)
}

#[test]
fn the_corpus_decodes_without_a_panic() {
    let dir = corpus_dir();
    if std::env::var_os("TROOP_WRITE_CORPUS").is_some() {
        for (name, bytes) in conversations() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        decode_all(&bytes);
        files += 1;
    }
    assert!(files >= 4, "the corpus in {} is there", dir.display());
    // The generated files are what this build writes: the protocol did not drift from them.
    for (name, bytes) in conversations() {
        assert_eq!(
            std::fs::read(dir.join(name)).unwrap(),
            bytes,
            "{name}: the corpus is stale; rewrite it with TROOP_WRITE_CORPUS=1"
        );
    }
}

#[test]
fn valid_conversations_decode_whole() {
    for (name, bytes) in conversations() {
        let mut r = FrameReader::new(Cursor::new(&bytes));
        r.read_magic().unwrap();
        let mut n = 0;
        loop {
            let msg = if name.starts_with("to") {
                r.read::<ToWorker>().map(|m| m.is_some())
            } else {
                r.read::<FromWorker>().map(|m| m.is_some())
            };
            match msg {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(FrameError::Closed) => break,
                Err(e) => panic!("{name}: {e}"),
            }
        }
        assert!(n >= 4, "{name}: {n} messages");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        decode_all(&bytes);
        let mut with_magic = MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        decode_all(&with_magic);
    }

    #[test]
    fn mutated_conversations_never_panic(
        which in 0usize..2,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = conversations()[which].1.clone();
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at % bytes.len();
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        decode_all(&bytes);
    }

    #[test]
    fn any_length_prefix_is_bounded(len in any::<u32>(), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&tail);
        let mut r = FrameReader::new(Cursor::new(&bytes));
        r.read_magic().unwrap();
        match r.read::<ToWorker>() {
            Err(FrameError::TooLarge { .. }) => prop_assert!(len > MAX_FRAME),
            Err(FrameError::Truncated) => prop_assert!(len as usize > tail.len()),
            _ => prop_assert!(len as usize <= tail.len()),
        }
    }
}
