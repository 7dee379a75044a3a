//! The `troop-worker` binary: a worker program of its own, for installations that name it with
//! `TROOP_WORKER_EXE`. `troop` itself serves as its worker by default; both run
//! the same runtime from the `troop-worker` crate.

fn main() -> std::process::ExitCode {
    match troop_worker::process::stdio_worker_args(std::env::args_os()) {
        Some(Ok(args)) => troop_worker::process::serve_stdio(args),
        Some(Err(msg)) => {
            troop_worker::process::eprint_line(&format!("troop-worker: {msg}"));
            std::process::ExitCode::from(255)
        }
        None => match troop_worker::process::connect_worker_args(std::env::args_os()) {
            Some(Ok(args)) => troop_worker::connect::serve_connect(args),
            Some(Err(msg)) => {
                troop_worker::process::eprint_line(&format!("troop-worker: {msg}"));
                std::process::ExitCode::from(255)
            }
            None => troop_worker::process::main(),
        },
    }
}
