//! The `troop-worker` binary: a worker program of its own, for installations that name it with
//! `TROOP_WORKER_EXE`. `troop` itself serves as its worker by default; both run
//! the same runtime from the `troop-worker` crate.

fn main() -> std::process::ExitCode {
    troop_worker::process::main()
}
