//! Builds every plugin in `../plugins` for `wasm32-wasip2` (in the plugin workspace's own target
//! dir) and generates one constant per component path, plus `ALL` listing them. A build script
//! reports failure by panicking, so that lint does not apply here.

#![allow(clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    let plugins = root.join("plugins");
    for watched in ["plugins", "sdk/src", "sdk/Cargo.toml", "model/src", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let mut names = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&plugins) {
        for entry in entries.flatten() {
            let dir = entry.path();
            if dir.join("Cargo.toml").exists() {
                println!("cargo:rerun-if-changed={}", dir.join("src").display());
                if let Some(name) = dir.file_name().and_then(|n| n.to_str()) {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names.sort();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    let status = cmd.status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "building the plugins failed ({s}); run `cargo build --release --target wasm32-wasip2` in plugins/ to see why"
        ),
        Err(e) => panic!("cannot run cargo to build the plugins: {e}"),
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let mut code = String::new();
    let mut all = Vec::new();
    for name in &names {
        let file = plugins
            .join("target/wasm32-wasip2/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        if !file.exists() {
            panic!(
                "plugin {name} built but {} is missing (is its crate-type cdylib?)",
                file.display()
            );
        }
        let constant = name.replace('-', "_").to_uppercase();
        code.push_str(&format!(
            "/// `plugins/{name}` compiled to a component.\npub const {constant}: &str = {:?};\n",
            file.display().to_string()
        ));
        all.push(format!("({name:?}, {constant})"));
    }
    code.push_str(&format!(
        "/// Every plugin: (directory name, component path).\npub const ALL: &[(&str, &str)] = &[{}];\n",
        all.join(", ")
    ));
    if let Err(e) = std::fs::write(out_dir.join("plugins.rs"), code) {
        panic!("cannot write plugins.rs: {e}");
    }
}
