//! The `kaunter` binary; everything lives in the library (`kaunter::cli`).

fn main() -> std::process::ExitCode {
    kaunter::cli::main()
}
