fn main() -> std::process::ExitCode {
    troop_worker::process::main()
}
