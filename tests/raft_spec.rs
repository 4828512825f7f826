//! Runs the Promela models of raft-spec/ through `raft-spec/run.sh`: every correct model must
//! verify exhaustively and every deliberately broken variant must be caught by spin.
//! `cargo test` uses `--quick` (smaller bounds for the correct models, about 20 s of CPU);
//! RAFT_SPEC_FULL=1 runs the bounds stated in raft-spec/README.md (a few minutes).
//! Skipped with a notice when spin or gcc is not installed.

use std::path::Path;
use std::process::Command;

fn tool_present(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false)
}

#[test]
fn spin_verifies_the_models_and_catches_every_broken_variant() {
    for tool in ["spin", "gcc"] {
        if !tool_present(tool) {
            println!("skipped: {tool} not found");
            return;
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("raft-spec/run.sh");
    let mut command = Command::new("bash");
    command.arg(&script);
    if std::env::var_os("RAFT_SPEC_FULL").is_none() {
        command.arg("--quick");
    }
    let output = command.output().expect("run raft-spec/run.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "raft-spec/run.sh failed with {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status.code()
    );
    assert!(
        stdout.contains("summary: 11 runs, 11 as expected, 0 unexpected"),
        "unexpected summary:\n{stdout}"
    );
}

/// One citation `src/raft/FILE`: `Type::item` found in raft-spec/README.md.
#[derive(Debug)]
struct Citation {
    path: String,
    owner: Option<String>,
    item: String,
}

/// Finds every "`src/raft/FILE`: `A::b`, `C::d`" run in `text` (names may wrap lines).
fn citations(text: &str) -> Vec<Citation> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("`src/raft/") {
        rest = &rest[start + 1..];
        let Some(end) = rest.find('`') else { break };
        let path = rest[..end].to_string();
        rest = &rest[end + 1..];
        let Some(mut names) = rest.strip_prefix(": ") else {
            continue;
        };
        loop {
            names = names.trim_start();
            let Some(after_tick) = names.strip_prefix('`') else {
                break;
            };
            let Some(close) = after_tick.find('`') else {
                break;
            };
            let name = &after_tick[..close];
            let (owner, item) = match name.rsplit_once("::") {
                Some((owner, item)) => (Some(owner.to_string()), item.to_string()),
                None => (None, name.to_string()),
            };
            found.push(Citation {
                path: path.clone(),
                owner,
                item,
            });
            names = &after_tick[close + 1..];
            match names.strip_prefix(',') {
                Some(more) => names = more,
                None => break,
            }
        }
        rest = names;
    }
    found
}

fn defines(source: &str, item: &str) -> bool {
    ["fn ", "struct ", "enum ", "const ", "type "]
        .iter()
        .any(|keyword| {
            source
                .match_indices(&format!("{keyword}{item}"))
                .any(|(at, matched)| {
                    let next = source[at + matched.len()..].chars().next();
                    !matches!(next, Some(c) if c.is_alphanumeric() || c == '_')
                })
        })
        || source.contains(&format!("pub {item}:"))
}

/// Every `src/raft/FILE`: `Type::function` citation in raft-spec/README.md names a file
/// that exists and an item defined in it (and, for `Type::item`, a file that implements or
/// defines `Type`). RAFT_SPEC_SOURCE_ROOT points the check at another checkout.
#[test]
fn every_citation_in_the_readme_exists() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(manifest.join("raft-spec/README.md")).expect("README");
    let root = std::env::var_os("RAFT_SPEC_SOURCE_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| manifest.to_path_buf());
    if !root.join("src/raft/core").is_dir() {
        println!("skipped: src/raft/core not present in {}", root.display());
        return;
    }
    let found = citations(&readme);
    assert!(
        found.len() >= 40,
        "only {} citations parsed from raft-spec/README.md",
        found.len()
    );
    let mut missing = Vec::new();
    for citation in &found {
        let Ok(source) = std::fs::read_to_string(root.join(&citation.path)) else {
            missing.push(format!("{}: file does not exist", citation.path));
            continue;
        };
        if !defines(&source, &citation.item) {
            missing.push(format!("{}: no `{}`", citation.path, citation.item));
        }
        if let Some(owner) = &citation.owner {
            let owns = source.contains(&format!("impl {owner}"))
                || defines(&source, owner)
                || source.contains(&format!("impl<'a> {owner}"));
            if !owns {
                missing.push(format!("{}: no `impl {owner}`", citation.path));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} citations in raft-spec/README.md do not exist:\n{}",
        missing.len(),
        found.len(),
        missing.join("\n")
    );
}
