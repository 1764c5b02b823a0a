//! The host's folders form layers: each uses only folders below it, so there are no import
//! circles. Read from the source (code lines, not comments).

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom to top.
const LAYERS: &[&str] = &[
    "telemetry",
    "loadgen",
    "scrub",
    "net",
    "store",
    "config",
    "audit",
    "credentials",
    "egress",
    "engine",
    "plugins",
    "pipeline",
    "lifecycle",
    "ingress",
    "admin",
    "server",
    "demo",
    "cli",
];

/// The folders `crate::…` paths in the code of `dir` name.
fn uses(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            uses(&path, found);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                found.insert(name);
            }
        }
    }
}

#[test]
fn each_folder_uses_only_folders_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(level) = LAYERS.iter().position(|l| *l == name) else {
            panic!("folder host/src/{name} has no place in LAYERS; add it where it belongs");
        };
        let mut found = BTreeSet::new();
        uses(&path, &mut found);
        for used in found {
            if used == name {
                continue;
            }
            match LAYERS.iter().position(|l| *l == used) {
                Some(other) if other < level => {}
                Some(_) => problems.push(format!("{name} uses {used}, which is not below it")),
                None => {}
            }
        }
    }
    assert!(problems.is_empty(), "import circles:\n{}", problems.join("\n"));
}
