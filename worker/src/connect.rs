//! A worker that connects back to its supervisor over TCP: `troop --worker-connect HOST:PORT
//! [w<N>] [--heartbeat EVERY_MS/LIMIT_MS]`, as Slurm's `srun` starts workers on other nodes.
//!
//! The worker takes the run's secret from [`crate::secret::ENV_SECRET`] (hex) and wipes it from
//! its environment at once, before any thread or task starts. It connects within
//! [`CONNECT_TIMEOUT`], and both ends prove that they hold the secret ([`crate::handshake`]):
//!
//! ```text
//! worker                                      supervisor (troop::pool::listen)
//!   MAGIC                                  ─▶
//!                                          ◀─ MAGIC
//!                                          ◀─ Challenge { nonce }
//!   Answer { version, proof, nonce }       ─▶ refuses a wrong proof by closing
//!                                          ◀─ Verdict { proof }
//!   exits on a wrong proof or a refusal
//!   Hello, and the protocol as on stdio    ─▶
//! ```
//!
//! From the hello on, the connection carries the conversation of a stdio worker
//! ([`crate::process::serve_stdio`]), heartbeats included, without a second greeting. A worker
//! refused by the supervisor, or that reached something that is not its supervisor, says so on
//! stderr and exits with 2.

use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;

use crate::handshake::{CONNECT_TIMEOUT, prove_worker};
use crate::process::{self, ConnectArgs};
use crate::secret::take_secret;
use crate::stream::StreamTransport;

/// Entry point of a worker that connects back (`troop --worker-connect`).
pub fn serve_connect(args: ConnectArgs) -> ExitCode {
    process::serve_or_report(open(&args))
}

fn open(args: &ConnectArgs) -> Result<StreamTransport<TcpStream>, String> {
    let secret = take_secret().map_err(|e| e.to_string())?;
    let mut stream = connect(&args.addr)?;
    prove_worker(&mut stream, &secret, CONNECT_TIMEOUT)
        .map_err(|e| format!("{}: {e}", args.addr))?;
    drop(secret);
    let reader = stream
        .try_clone()
        .map_err(|e| format!("cannot share the connection: {e}"))?;
    process::open_stream(reader, stream, args.index, args.beat, " (tcp)", true)
}

/// Connects to the first address of `addr` that answers, each within [`CONNECT_TIMEOUT`].
fn connect(addr: &str) -> Result<TcpStream, String> {
    let fail =
        |e: &dyn std::fmt::Display| format!("cannot connect to the supervisor at {addr}: {e}");
    let mut last = None;
    for at in addr.to_socket_addrs().map_err(|e| fail(&e))? {
        match TcpStream::connect_timeout(&at, CONNECT_TIMEOUT) {
            Ok(stream) => {
                // Frames are small and each is awaited: no batching delay.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => fail(&e),
        None => fail(&"the name has no address"),
    })
}

#[cfg(test)]
mod tests {
    use crate::process::{ConnectArgs, connect_worker_args};
    use crate::stream::Heartbeat;
    use std::time::Duration;

    fn parse(args: &[&str]) -> Option<Result<ConnectArgs, String>> {
        connect_worker_args(
            std::iter::once("troop")
                .chain(args.iter().copied())
                .map(Into::into),
        )
    }

    #[test]
    fn the_address_comes_first_then_the_usual_worker_options() {
        assert_eq!(parse(&["--worker-stdio"]), None);
        assert_eq!(
            parse(&[
                "--worker-connect",
                "node1:4000",
                "[w2]",
                "--heartbeat",
                "100/900"
            ]),
            Some(Ok(ConnectArgs {
                addr: "node1:4000".into(),
                index: 1,
                beat: Heartbeat {
                    every: Duration::from_millis(100),
                    limit: Duration::from_millis(900),
                },
            }))
        );
        let v6 = parse(&["--worker-connect", "[::1]:9"]).unwrap().unwrap();
        assert_eq!((v6.addr.as_str(), v6.index), ("[::1]:9", 0));
        for bad in [
            &[][..],
            &["node1"],
            &["node1:0"],
            &[":80"],
            &["[w1]"],
            &["h:1", "--x"],
        ] {
            let args: Vec<&str> = std::iter::once("--worker-connect")
                .chain(bad.iter().copied())
                .collect();
            let err = parse(&args).unwrap().unwrap_err();
            assert!(err.contains("--worker-connect"), "{bad:?}: {err}");
        }
    }
}
