//! The documentation holds together: every relative link in README.md, docs/ and the plugin
//! READMEs resolves to a file, and every plugin an integrator might copy (all but the `hostile-*`
//! test plugins) has a README.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Markdown files users read.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    for entry in std::fs::read_dir(root.join("plugins")).unwrap() {
        let readme = entry.unwrap().path().join("README.md");
        if readme.exists() {
            files.push(readme);
        }
    }
    files
}

/// `[text](target)` links whose target is a relative path (no scheme, not only an anchor).
fn relative_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split_whitespace().next().unwrap_or("");
        let path = target.split('#').next().unwrap_or("");
        if !path.is_empty() && !path.contains("://") && !path.starts_with("mailto:") {
            links.push(path.to_owned());
        }
    }
    links
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut broken = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        for link in relative_links(&text) {
            if !file.parent().unwrap().join(&link).exists() {
                broken.push(format!("{}: {link}", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to files that do not exist:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_link_finder_finds_relative_links_only() {
    let text = "see [the guide](docs/plugin-guide.md#testing), [spec](https://example.com/x) and [top](#top)";
    assert_eq!(relative_links(text), ["docs/plugin-guide.md"]);
}

#[test]
fn every_plugin_but_the_test_ones_has_a_readme() {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root().join("plugins")).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !dir.join("Cargo.toml").exists() && !dir.join("app.py").exists() && !dir.join("package.json").exists() {
            continue; // not a plugin (the shared target directory, files)
        }
        if name.starts_with("hostile-") {
            continue;
        }
        if !dir.join("README.md").exists() {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "plugins without a README: {missing:?}");
}

/// The plugin guide points at the SDK's API reference and names, by task, the helpers an
/// integrator needs; each one it names exists in the SDK's source.
#[test]
fn the_plugin_guide_has_an_api_reference_naming_real_helpers() {
    let guide = std::fs::read_to_string(root().join("docs/plugin-guide.md")).unwrap();
    let section = guide
        .split("## API reference")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/plugin-guide.md has an `## API reference` section");
    assert!(section.contains("cargo doc -p kaunter-sdk --open"), "{section}");
    let mut sdk = String::new();
    for entry in std::fs::read_dir(root().join("sdk/src")).unwrap() {
        sdk.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let wit = std::fs::read_to_string(root().join("wit/worlds.wit")).unwrap();
    for (named, defined) in [
        ("documents::document_number", "pub fn document_number("),
        ("RetryHint", "RetryHint"),
        ("fail_request", "pub fn fail_request("),
        ("http::delivery_outcome", "pub fn delivery_outcome("),
        ("webhooks::signature_headers", "pub fn signature_headers("),
        ("alerts::alert_facts", "pub fn alert_facts("),
        ("ConflictIsSuccess", "conflict-is-success"),
        ("Disable(String)", "disable(string)"),
    ] {
        assert!(section.contains(named), "the API reference does not name {named}");
        assert!(
            sdk.contains(defined) || wit.contains(defined),
            "{named} is not in the SDK"
        );
    }
}
