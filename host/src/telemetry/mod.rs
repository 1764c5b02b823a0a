//! Logging setup: one `init` for the whole process, structured fields, filter from `KAUNTER_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `default` applies when `KAUNTER_LOG` is unset
/// (e.g. `info`, or `warn` for the demo so its progress line stays readable).
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_env("KAUNTER_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
