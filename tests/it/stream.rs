//! The stream worker (`troop --worker-stdio`): the protocol in frames over stdin and stdout,
//! as a remote worker speaks it through ssh.

use std::io::Write;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use troop_worker::frame::{self, FrameError, FrameReader};
use troop_worker::protocol::{
    Captured, FromWorker, Job, Outcome, PROTOCOL_VERSION, TaskSpec, ToWorker, WorkerConfig,
};

use crate::util::{TROOP, wait_until};

struct StdioWorker {
    child: Child,
    tx: ChildStdin,
    rx: FrameReader<ChildStdout>,
}

impl StdioWorker {
    fn start(extra: &[&str]) -> StdioWorker {
        let mut child = Command::new(TROOP)
            .arg("--worker-stdio")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start troop --worker-stdio");
        let tx = child.stdin.take().unwrap();
        let rx = FrameReader::new(child.stdout.take().unwrap());
        StdioWorker { child, tx, rx }
    }

    fn send(&mut self, msg: &ToWorker) {
        frame::write_frame(&mut self.tx, msg).expect("send a frame");
    }

    /// The next message, heartbeats skipped.
    fn recv(&mut self) -> FromWorker {
        loop {
            if let Some(msg) = self.rx.read::<FromWorker>().expect("a frame") {
                return msg;
            }
        }
    }

    fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        let mut code = None;
        wait_until(limit, || {
            code = self
                .child
                .try_wait()
                .ok()
                .flatten()
                .map(|s| s.code().unwrap_or(-1));
            code.is_some()
        });
        if code.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        code
    }
}

#[test]
fn a_stdio_worker_greets_runs_a_batch_and_shuts_down() {
    let mut w = StdioWorker::start(&["[w3]"]);
    frame::write_magic(&mut w.tx).unwrap();
    assert_eq!(w.rx.read_magic().expect("the greeting"), b"");
    let FromWorker::Hello(hello) = w.recv() else {
        panic!("hello first")
    };
    assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
    assert_eq!(hello.index, 2);
    assert_eq!(hello.pid, w.child.id());
    w.send(&ToWorker::Configure(WorkerConfig::default()));
    let task = |id, job| TaskSpec {
        id,
        job,
        timeout_ms: None,
        input: None,
        transfer: None,
    };
    w.send(&ToWorker::Run(vec![
        task(1, Job::Exec(vec![b"echo".to_vec(), b"one \xff".to_vec()])),
        task(2, Job::Shell(b"echo two; exit 3".to_vec())),
    ]));
    let mut reports = Vec::new();
    while reports.len() < 2 {
        if let FromWorker::Done(done) = w.recv() {
            reports.extend(done);
        }
    }
    assert_eq!(reports[0].outcome, Outcome::Exited(0));
    assert_eq!(reports[0].stdout, Captured::Bytes(b"one \xff\n".to_vec()));
    assert_eq!(reports[1].outcome, Outcome::Exited(3));
    assert_eq!(reports[1].stdout, Captured::Bytes(b"two\n".to_vec()));
    w.send(&ToWorker::Shutdown);
    assert!(matches!(
        w.rx.read::<FromWorker>(),
        Err(FrameError::Closed) | Ok(None)
    ));
    assert_eq!(w.exit_code(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_task_cannot_write_into_the_stream() {
    // A command that writes to the worker's own stdout (fd 1 of its parent) and reads its stdin
    // must not reach the stream: the worker moved both away.
    let mut w = StdioWorker::start(&[]);
    frame::write_magic(&mut w.tx).unwrap();
    w.rx.read_magic().unwrap();
    let FromWorker::Hello(_) = w.recv() else {
        panic!("hello first")
    };
    w.send(&ToWorker::Configure(WorkerConfig::default()));
    w.send(&ToWorker::Run(vec![TaskSpec {
        id: 1,
        job: Job::Shell(b"cat; echo out >/proc/$PPID/fd/1; echo done".to_vec()),
        timeout_ms: None,
        input: None,
        transfer: None,
    }]));
    let done = loop {
        if let FromWorker::Done(done) = w.recv() {
            break done;
        }
    };
    assert_eq!(done[0].stdout, Captured::Bytes(b"done\n".to_vec()));
    w.send(&ToWorker::Shutdown);
    assert_eq!(w.exit_code(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_stdio_worker_whose_supervisor_goes_silent_stops_its_task_and_exits() {
    let mut w = StdioWorker::start(&["--heartbeat", "100/600"]);
    frame::write_magic(&mut w.tx).unwrap();
    w.rx.read_magic().unwrap();
    let FromWorker::Hello(_) = w.recv() else {
        panic!("hello first")
    };
    w.send(&ToWorker::Configure(WorkerConfig::default()));
    w.send(&ToWorker::Run(vec![TaskSpec {
        id: 1,
        job: Job::Shell(b"sleep 30".to_vec()),
        timeout_ms: None,
        input: None,
        transfer: None,
    }]));
    // The worker beats while it runs; this side says nothing more, but keeps the stream open.
    let since = Instant::now();
    let mut beats = 0;
    while since.elapsed() < Duration::from_millis(400) {
        if let Ok(None) = w.rx.read::<FromWorker>() {
            beats += 1;
        }
    }
    assert!(beats >= 2, "the worker sent heartbeats: {beats}");
    assert_eq!(
        w.exit_code(Duration::from_secs(10)),
        Some(3),
        "the worker gave up on a silent supervisor"
    );
    let sleepers = crate::util::all_procs()
        .into_iter()
        .filter(|p| crate::util::cmdline(p.pid).is_some_and(|c| c == "sleep 30"))
        .count();
    assert_eq!(sleepers, 0, "its task was killed");
    let _ = w.tx.flush();
}

#[test]
fn a_stdio_worker_refuses_bytes_that_are_not_frames() {
    for garbage in [
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        [frame::MAGIC.as_slice(), &u32::MAX.to_le_bytes(), b"xx"].concat(),
        [
            frame::MAGIC.as_slice(),
            &[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat(),
    ] {
        // The stream stays open: the worker must give up on its own.
        let mut w = StdioWorker::start(&["--heartbeat", "100/600"]);
        w.tx.write_all(&garbage).unwrap();
        w.tx.flush().unwrap();
        let code = w.exit_code(Duration::from_secs(10));
        assert!(
            matches!(code, Some(c) if c != 0 && c != 101),
            "refused without a panic: {code:?} for {garbage:?}"
        );
    }
}

#[test]
fn bad_stdio_worker_arguments_are_refused() {
    for args in [&["--heartbeat", "5"][..], &["[w0]"], &["--bogus"]] {
        let out = Command::new(TROOP)
            .arg("--worker-stdio")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--worker-stdio"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
