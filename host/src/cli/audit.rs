//! `kaunter audit log|verify`: read the hash-chained audit log straight from a data directory,
//! read-only, with or without a running host.

use crate::store::audit::{self, AuditRecord};
use crate::store::sqlite::{open_read_only, read_audit};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// `kaunter audit …`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; names the first record that was edited, inserted or deleted.
    Verify {
        /// Data directory holding kaunter.db.
        #[arg(long, default_value = "kaunter-data")]
        data: PathBuf,
    },
    /// Print the audit log, oldest first.
    Log {
        /// Data directory holding kaunter.db.
        #[arg(long, default_value = "kaunter-data")]
        data: PathBuf,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn all_records(data: &std::path::Path) -> anyhow::Result<Vec<AuditRecord>> {
    let conn = open_read_only(data)?;
    let mut records = Vec::new();
    loop {
        let batch = read_audit(&conn, records.last().map(|r: &AuditRecord| r.seq).unwrap_or(0), 10_000)?;
        if batch.is_empty() {
            return Ok(records);
        }
        records.extend(batch);
    }
}

/// Runs an audit subcommand.
pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { data } => match audit::verify(all_records(&data)?) {
            Ok((count, last)) => {
                println!("audit log intact: {count} records; last hash {last}");
                println!("(record the last hash elsewhere to detect a truncated log later)");
                Ok(ExitCode::SUCCESS)
            }
            Err(broken) => {
                println!("{broken}");
                Ok(ExitCode::FAILURE)
            }
        },
        AuditCommand::Log { data, json } => {
            for r in all_records(&data)? {
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    let at = crate::ingress::rfc3339(Some(r.at_ms));
                    println!(
                        "#{:<5} {} {:<22} {:<18} {}  {}",
                        r.seq,
                        at.as_str().unwrap_or(""),
                        r.actor,
                        r.action,
                        r.subject,
                        r.detail
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
