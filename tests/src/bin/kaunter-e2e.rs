//! The `kaunter` command, built in the test package so end-to-end tests can spawn, kill and
//! restart it (`CARGO_BIN_EXE_kaunter-e2e`). Identical to `host/src/main.rs`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kaunter::cli::main()
}
