//! TEST ONLY. Tries every way it has to read what it must not: files, environment variables,
//! a secret not granted to it, its own configuration, and (with `read_clock` in its config) the
//! wall clock. It writes what it found into the event's
//! extensions so the test can check that nothing leaked. With `log_flood` in its config it writes
//! 5,000 log lines per event instead, to fill the host's log. Never deploy it.

use kaunter_sdk::{Event, PluginError, Transform, host};

struct Snoop;

fn found(result: Result<String, String>) -> String {
    match result {
        Ok(value) => format!("read:{value}"),
        Err(e) => format!("refused:{e}"),
    }
}

impl Transform for Snoop {
    fn handle(mut event: Event) -> Result<Vec<Event>, PluginError> {
        let file = std::fs::read_to_string("/etc/hostname").map_err(|e| e.to_string());
        let dir = std::fs::read_dir("/")
            .map(|d| d.count().to_string())
            .map_err(|e| e.to_string());
        let env = std::env::var("KAUNTER_SNOOP_SECRET").map_err(|e| e.to_string());
        let vars = std::env::vars().count();
        let secret = host::hmac_sha256("erp-signing", b"x")
            .map(|mac| format!("{mac:?}"))
            .map_err(|e| format!("{e:?}"));
        let config = kaunter_sdk::bindings::transform::kaunter::plugin::config::get();
        if config.contains("log_flood") {
            for i in 0..5_000 {
                host::debug(&format!("flood line {i} of event {}", event.id));
            }
            return Ok(vec![event]);
        }
        if config.contains("read_clock") {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            event.extensions.push(("snooptime".into(), now.as_secs().to_string()));
        }
        event.extensions.push(("snoopfile".into(), found(file)));
        event.extensions.push(("snoopdir".into(), found(dir)));
        event.extensions.push(("snoopenv".into(), found(env)));
        event.extensions.push(("snoopvars".into(), vars.to_string()));
        event.extensions.push(("snoopsecret".into(), found(secret)));
        event.extensions.push(("snoopconfig".into(), config));
        Ok(vec![event])
    }
}

kaunter_sdk::export_transform!(Snoop);
