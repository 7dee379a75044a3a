//! Workers that connect back over TCP (`troop --worker-connect`): the handshake on the run's
//! secret against troop's own listener, the conversation over the connection, and the
//! connections that are refused.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crossbeam_channel::Receiver;
use troop::pool::listen::{Accepted, ENV_SECRET, Listener, Refusal};
use troop_worker::frame::{self, FrameError, FrameReader};
use troop_worker::handshake::{Answer, Challenge, Verdict};
use troop_worker::protocol::{
    Captured, FromWorker, Job, Outcome, PROTOCOL_VERSION, TaskReport, TaskSpec, ToWorker,
    WorkerConfig,
};
use troop_worker::secret::Secret;
use troop_worker::stream::{self, Heartbeat, Peer};

use crate::util::{TROOP, wait_until};

const WAIT: Duration = Duration::from_secs(20);
const TROOP_WORKER: &str = env!("CARGO_BIN_EXE_troop-worker");

struct Run {
    listener: Listener,
    accepted: Receiver<Accepted>,
    refused: Receiver<Refusal>,
}

fn listen(limit: Duration) -> Run {
    let mut listener = Listener::bind("127.0.0.1:0")
        .expect("bind")
        .handshake_limit(limit);
    let (refused_tx, refused) = crossbeam_channel::unbounded();
    listener.on_refused(move |r| {
        let _ = refused_tx.send(r.clone());
    });
    let (tx, accepted) = crossbeam_channel::unbounded();
    listener
        .start(move |a| {
            let _ = tx.send(a);
        })
        .expect("start");
    Run {
        listener,
        accepted,
        refused,
    }
}

/// `program --worker-connect ADDR extra..` with `secret` (if any) in its environment.
fn start(program: &str, addr: SocketAddr, secret: Option<&str>, extra: &[&str]) -> Child {
    let mut cmd = Command::new(program);
    cmd.arg("--worker-connect")
        .arg(addr.to_string())
        .args(extra)
        .env_remove(ENV_SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(secret) = secret {
        cmd.env(ENV_SECRET, secret);
    }
    cmd.spawn().expect("start troop --worker-connect")
}

/// How the worker ended and what it said on stderr; killed after `WAIT`.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let mut code = None;
    wait_until(WAIT, || {
        code = child
            .try_wait()
            .ok()
            .flatten()
            .map(|s| s.code().unwrap_or(-1));
        code.is_some()
    });
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    (code, stderr)
}

/// The next message from the worker, heartbeats skipped.
fn recv(rx: &mut FrameReader<TcpStream>) -> FromWorker {
    loop {
        if let Some(msg) = rx.read::<FromWorker>().expect("a frame") {
            return msg;
        }
    }
}

fn task(id: u64, job: Job) -> TaskSpec {
    TaskSpec {
        id,
        job,
        timeout_ms: None,
        input: None,
        transfer: None,
    }
}

/// Runs `tasks` on an accepted worker and returns their reports in order of id.
fn run_batch(
    a: &mut Accepted,
    rx: &mut FrameReader<TcpStream>,
    tasks: Vec<TaskSpec>,
) -> Vec<TaskReport> {
    let n = tasks.len();
    frame::write_frame(&mut a.writer, &ToWorker::Configure(WorkerConfig::default())).unwrap();
    frame::write_frame(&mut a.writer, &ToWorker::Run(tasks)).unwrap();
    let mut reports = Vec::new();
    while reports.len() < n {
        if let FromWorker::Done(done) = recv(rx) {
            reports.extend(done);
        }
    }
    reports.sort_by_key(|r| r.id);
    reports
}

fn stdout(r: &TaskReport) -> String {
    match &r.stdout {
        Captured::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("captured in memory: {other:?}"),
    }
}

#[test]
fn a_tcp_worker_proves_itself_greets_runs_a_batch_and_shuts_down() {
    let run = listen(Duration::from_secs(10));
    let secret = run.listener.secret_hex();
    let child = start(TROOP, run.listener.local_addr(), Some(&secret), &["[w2]"]);
    let mut a = run.accepted.recv_timeout(WAIT).expect("the worker got in");
    assert_eq!(a.hello.protocol_version, PROTOCOL_VERSION);
    assert_eq!(a.hello.index, 1);
    assert_eq!(a.hello.pid, child.id());
    let pid = child.id();
    for file in ["cmdline", "environ"] {
        let bytes = std::fs::read(format!("/proc/{pid}/{file}")).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret),
            "the secret is not in /proc/PID/{file}"
        );
    }
    let mut rx = FrameReader::new(a.reader.try_clone().unwrap());
    let reports = run_batch(
        &mut a,
        &mut rx,
        vec![
            task(1, Job::Exec(vec![b"echo".to_vec(), b"one \xff".to_vec()])),
            task(2, Job::Shell(b"echo two; exit 3".to_vec())),
            task(3, Job::Exec(vec![b"env".to_vec()])),
        ],
    );
    assert_eq!(reports[0].outcome, Outcome::Exited(0));
    assert_eq!(reports[0].stdout, Captured::Bytes(b"one \xff\n".to_vec()));
    assert_eq!(reports[1].outcome, Outcome::Exited(3));
    assert_eq!(stdout(&reports[1]), "two\n");
    let env = stdout(&reports[2]);
    assert!(env.contains("PATH="), "the task's environment: {env}");
    assert!(
        !env.contains(ENV_SECRET) && !env.contains(&secret),
        "the task did not inherit the secret: {env}"
    );
    frame::write_frame(&mut a.writer, &ToWorker::Shutdown).unwrap();
    assert!(matches!(
        rx.read::<FromWorker>(),
        Err(FrameError::Closed) | Ok(None)
    ));
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(run.listener.refused(), 0);
}

#[test]
fn a_worker_with_a_wrong_or_no_secret_is_refused_and_says_so() {
    let run = listen(Duration::from_secs(10));
    let wrong = Secret::generate().unwrap().to_hex();
    let (code, stderr) = finish(start(TROOP, run.listener.local_addr(), Some(&wrong), &[]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("the supervisor refused this worker") && stderr.contains(ENV_SECRET),
        "{stderr}"
    );
    let refusal = run.refused.recv_timeout(WAIT).expect("counted");
    assert!(refusal.reason.contains("proof is wrong"), "{refusal:?}");
    assert_eq!(run.listener.refused(), 1);
    // Without a secret (and through the troop-worker program), the worker does not connect.
    let (code, stderr) = finish(start(TROOP_WORKER, run.listener.local_addr(), None, &[]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("TROOP_WORKER_SECRET is not set"),
        "{stderr}"
    );
    assert!(run.accepted.try_recv().is_err(), "nobody got in");
    assert_eq!(run.listener.refused(), 1);
}

#[test]
fn garbage_huge_frames_and_silence_are_refused_and_the_next_worker_gets_in() {
    let run = listen(Duration::from_millis(500));
    let addr = run.listener.local_addr();
    let mut noise = [0u8; 4096];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut noise)
        .unwrap();
    let undecodable = [5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff];
    let mut held = Vec::new();
    for bytes in [
        &noise[..],
        &[frame::MAGIC.as_slice(), &u32::MAX.to_le_bytes()].concat(),
        &[frame::MAGIC.as_slice(), &undecodable].concat(),
        b"",
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(bytes);
        held.push(s);
    }
    let mut reasons: Vec<String> = (0..4)
        .map(|_| run.refused.recv_timeout(WAIT).expect("a refusal").reason)
        .collect();
    reasons.sort();
    let all = reasons.join(" | ");
    for expected in [
        "does not greet",
        "over the limit",
        "does not decode",
        "within",
    ] {
        assert!(all.contains(expected), "{expected}: {all}");
    }
    assert_eq!(run.listener.refused(), 4);
    let secret = run.listener.secret_hex();
    let child = start(TROOP, addr, Some(&secret), &["[w7]"]);
    let mut a = run.accepted.recv_timeout(WAIT).expect("the worker got in");
    assert_eq!(a.hello.index, 6);
    let mut rx = FrameReader::new(a.reader.try_clone().unwrap());
    let reports = run_batch(
        &mut a,
        &mut rx,
        vec![task(1, Job::Shell(b"echo ok".to_vec()))],
    );
    assert_eq!(stdout(&reports[0]), "ok\n");
    frame::write_frame(&mut a.writer, &ToWorker::Shutdown).unwrap();
    assert_eq!(finish(child).0, Some(0));
}

/// The supervisor's side of a stream, as the pool opens it: messages and the end into a channel.
#[derive(Clone)]
struct Inbox(crossbeam_channel::Sender<Result<FromWorker, String>>);

impl Peer<FromWorker> for Inbox {
    fn message(&mut self, msg: FromWorker) -> bool {
        self.0.send(Ok(msg)).is_ok()
    }
    fn ended(&mut self, why: FrameError) {
        let _ = self.0.send(Err(why.to_string()));
    }
    fn silent(&self) {
        let _ = self.0.send(Err("silent".into()));
    }
}

#[test]
fn an_accepted_connection_carries_the_conversation_with_heartbeats_both_ways() {
    let run = listen(Duration::from_secs(10));
    let secret = run.listener.secret_hex();
    let beat = ["--heartbeat", "50/400"];
    let child = start(TROOP, run.listener.local_addr(), Some(&secret), &beat);
    let a = run.accepted.recv_timeout(WAIT).expect("the worker got in");
    let (tx, inbox) = crossbeam_channel::unbounded();
    let beat = Heartbeat {
        every: Duration::from_millis(50),
        limit: Duration::from_millis(400),
    };
    let mut to_worker =
        stream::open_greeted::<_, _, FromWorker, ToWorker, _>(a.reader, a.writer, beat, Inbox(tx))
            .unwrap();
    to_worker
        .send(&ToWorker::Configure(WorkerConfig::default()))
        .unwrap();
    // Longer than the worker's limit on silence: the heartbeats keep it in.
    let task = task(1, Job::Shell(b"sleep 0.8; echo late".to_vec()));
    to_worker.send(&ToWorker::Run(vec![task])).unwrap();
    let done = loop {
        match inbox.recv_timeout(WAIT).expect("a message") {
            Ok(FromWorker::Done(done)) => break done,
            Ok(_) => {}
            Err(why) => panic!("the stream ended: {why}"),
        }
    };
    assert_eq!(stdout(&done[0]), "late\n");
    to_worker.send(&ToWorker::Shutdown).unwrap();
    assert_eq!(
        inbox.recv_timeout(WAIT).expect("the end"),
        Err("the stream closed".into())
    );
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_tcp_worker_whose_supervisor_goes_silent_stops_its_task_and_exits() {
    let run = listen(Duration::from_secs(10));
    let secret = run.listener.secret_hex();
    let addr = run.listener.local_addr();
    let child = start(TROOP, addr, Some(&secret), &["--heartbeat", "100/600"]);
    let mut a = run.accepted.recv_timeout(WAIT).expect("the worker got in");
    frame::write_frame(&mut a.writer, &ToWorker::Configure(WorkerConfig::default())).unwrap();
    frame::write_frame(
        &mut a.writer,
        &ToWorker::Run(vec![task(1, Job::Shell(b"sleep 31".to_vec()))]),
    )
    .unwrap();
    // This side says nothing more but keeps the connection open: only the silence tells.
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("went silent"), "{stderr}");
    let sleepers = crate::util::all_procs()
        .into_iter()
        .filter(|p| crate::util::cmdline(p.pid).is_some_and(|c| c == "sleep 31"))
        .count();
    assert_eq!(sleepers, 0, "its task was killed");
    drop(a);
}

#[test]
fn a_worker_that_reaches_an_impostor_exits_with_a_clear_message() {
    // Something listens at the address but does not hold the run's secret: it can only guess
    // the proof the worker asks for.
    let impostor = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let secret = Secret::generate().unwrap().to_hex();
    let child = start(TROOP, impostor.local_addr().unwrap(), Some(&secret), &[]);
    let (mut s, _) = impostor.accept().unwrap();
    frame::write_magic(&mut s).unwrap();
    let mut rx = FrameReader::new(s.try_clone().unwrap());
    rx.read_magic().unwrap();
    frame::write_frame(&mut s, &Challenge { nonce: [1; 32] }).unwrap();
    let answer: Answer = rx.read().unwrap().expect("an answer");
    assert_eq!(answer.protocol_version, PROTOCOL_VERSION);
    let guess = Secret::generate().unwrap();
    frame::write_frame(
        &mut s,
        &Verdict {
            proof: guess.supervisor_proof(&answer.nonce),
        },
    )
    .unwrap();
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("the supervisor's proof is wrong"),
        "{stderr}"
    );
    assert!(rx.read::<FromWorker>().is_err(), "no hello for an impostor");
}

#[test]
fn bad_connect_arguments_and_an_unreachable_supervisor_are_refused() {
    for args in [
        &[][..],
        &["nohost"],
        &["localhost:0"],
        &["localhost:1", "[w0]"],
    ] {
        let out = Command::new(TROOP)
            .arg("--worker-connect")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--worker-connect"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A port nobody listens on.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let secret = Secret::generate().unwrap().to_hex();
    let (code, stderr) = finish(start(TROOP, addr, Some(&secret), &[]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to the supervisor at {addr}")),
        "{stderr}"
    );
}
