//! WIT hygiene: the contract in `wit/` parses and resolves with `wit-parser` (the parser
//! `wasm-tools` uses), has the package, interfaces and worlds the host and SDK bind to, and every
//! item is documented; `docs/wit-reference.md` is generated from it and must not drift.
//! Run with `KAUNTER_BLESS=1` to regenerate the reference after changing `wit/`.
//!
//! (Guest and host bindings are generated from `wit/` at compile time by `wit-bindgen` and
//! `wasmtime::component::bindgen!`, so they cannot drift; a change that breaks them fails the build.)

use std::fmt::Write as _;
use wit_parser::{Resolve, Type, TypeDefKind, TypeOwner};

fn wit_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

#[test]
fn the_contract_resolves_and_every_item_is_documented() {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(wit_dir()).expect("wit/ must parse and resolve");
    let p = &resolve.packages[package];
    assert_eq!(p.name.to_string(), "kaunter:plugin@0.2.0");
    for world in ["transform", "connector", "source", "host-services"] {
        assert!(p.worlds.contains_key(world), "world `{world}` is missing");
    }
    let mut undocumented = Vec::new();
    for (name, id) in &p.interfaces {
        let interface = &resolve.interfaces[*id];
        if interface.docs.contents.is_none() {
            undocumented.push(format!("interface {name}"));
        }
        for (f, function) in &interface.functions {
            if function.docs.contents.is_none() {
                undocumented.push(format!("{name}.{f}"));
            }
        }
        for (t, ty) in &interface.types {
            if resolve.types[*ty].docs.contents.is_none() && !matches!(resolve.types[*ty].kind, TypeDefKind::Type(_)) {
                undocumented.push(format!("{name}.{t}"));
            }
        }
    }
    assert!(undocumented.is_empty(), "undocumented WIT items: {undocumented:?}");
}

#[test]
fn the_wit_reference_is_generated_from_wit() {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(wit_dir()).unwrap();
    let text = reference(&resolve, package);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/wit-reference.md");
    if std::env::var_os("KAUNTER_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == text,
        "docs/wit-reference.md is out of date with wit/; regenerate it with `KAUNTER_BLESS=1 cargo test -p kaunter-tests --test all wit::`"
    );
}

fn docs(text: &Option<String>) -> String {
    text.as_deref().unwrap_or("").trim().replace('\n', " ")
}

fn ty(resolve: &Resolve, t: &Type) -> String {
    match t {
        Type::Id(id) => {
            let def = &resolve.types[*id];
            if let Some(name) = &def.name {
                return name.clone();
            }
            match &def.kind {
                TypeDefKind::List(inner) => format!("list<{}>", ty(resolve, inner)),
                TypeDefKind::Option(inner) => format!("option<{}>", ty(resolve, inner)),
                TypeDefKind::Result(r) => {
                    let part = |t: &Option<Type>| t.as_ref().map(|t| ty(resolve, t)).unwrap_or_else(|| "_".into());
                    format!("result<{}, {}>", part(&r.ok), part(&r.err))
                }
                TypeDefKind::Tuple(t) => format!(
                    "tuple<{}>",
                    t.types.iter().map(|t| ty(resolve, t)).collect::<Vec<_>>().join(", ")
                ),
                TypeDefKind::Type(inner) => ty(resolve, inner),
                other => format!("{other:?}").to_lowercase(),
            }
        }
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The reference, as Markdown: each interface with its types (fields and cases) and functions.
fn reference(resolve: &Resolve, package: wit_parser::PackageId) -> String {
    let p = &resolve.packages[package];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# WIT reference: `{}`\n\nGenerated from `wit/` by `tests/all/wit.rs`; do not edit by hand.\n",
        p.name
    );
    for (name, id) in &p.worlds {
        let world = &resolve.worlds[*id];
        let _ = writeln!(out, "- world `{name}`: {}", docs(&world.docs.contents));
    }
    for (name, id) in &p.interfaces {
        let interface = &resolve.interfaces[*id];
        let _ = writeln!(out, "\n## interface `{name}`\n\n{}\n", docs(&interface.docs.contents));
        for (t, tid) in &interface.types {
            let def = &resolve.types[*tid];
            if !matches!(def.owner, TypeOwner::Interface(_)) {
                continue;
            }
            match &def.kind {
                TypeDefKind::Record(r) => {
                    let _ = writeln!(out, "- record `{t}`: {}", docs(&def.docs.contents));
                    for f in &r.fields {
                        let _ = writeln!(
                            out,
                            "  - `{}: {}`: {}",
                            f.name,
                            ty(resolve, &f.ty),
                            docs(&f.docs.contents)
                        );
                    }
                }
                TypeDefKind::Variant(v) => {
                    let _ = writeln!(out, "- variant `{t}`: {}", docs(&def.docs.contents));
                    for c in &v.cases {
                        let payload =
                            c.ty.as_ref()
                                .map(|t| format!("({})", ty(resolve, t)))
                                .unwrap_or_default();
                        let _ = writeln!(out, "  - `{}{payload}`: {}", c.name, docs(&c.docs.contents));
                    }
                }
                TypeDefKind::Enum(e) => {
                    let _ = writeln!(out, "- enum `{t}`: {}", docs(&def.docs.contents));
                    for c in &e.cases {
                        let _ = writeln!(out, "  - `{}`: {}", c.name, docs(&c.docs.contents));
                    }
                }
                TypeDefKind::Type(inner) => {
                    let _ = writeln!(out, "- `{t}` = `{}` {}", ty(resolve, inner), docs(&def.docs.contents));
                }
                other => {
                    let kind = format!("{other:?}").to_lowercase();
                    let kind = kind.split(['(', ' ', '{']).next().unwrap_or("type").to_owned();
                    let _ = writeln!(out, "- {kind} `{t}`: {}", docs(&def.docs.contents));
                }
            }
        }
        for (f, function) in &interface.functions {
            let params: Vec<String> = function
                .params
                .iter()
                .map(|p| format!("{}: {}", p.name, ty(resolve, &p.ty)))
                .collect();
            let result = function
                .result
                .as_ref()
                .map(|r| format!(" -> {}", ty(resolve, r)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- func `{f}({}){result}`: {}",
                params.join(", "),
                docs(&function.docs.contents)
            );
        }
    }
    out
}
