//! The `kaunter` binary; everything lives in the library (`kaunter::cli`).

/// mimalloc: the pipeline allocates many small, short-lived buffers across threads, where it is
/// markedly faster than the system allocator (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kaunter::cli::main()
}
