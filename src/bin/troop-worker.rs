//! The `troop-worker` binary: a worker process that `troop` spawns; everything it does lives in
//! the `troop-worker` crate.

fn main() -> std::process::ExitCode {
    troop_worker::process::main()
}
