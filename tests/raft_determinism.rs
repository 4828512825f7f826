//! The consensus core and the simulator must be deterministic: no clock, no I/O, no threads,
//! no hash-ordered collections. This test scans their source text for the forbidden names.

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "std::time",
    "Instant",
    "SystemTime",
    "std::fs",
    "std::net",
    "std::thread",
    "HashMap",
    "HashSet",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
    {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn raft_and_sim_use_no_clock_io_threads_or_hash_collections() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/raft"), &mut files);
    rust_files(&root.join("src/sim"), &mut files);
    assert!(
        files.len() >= 10,
        "expected the raft and sim sources, found {files:?}"
    );
    let mut violations = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    violations.push(format!(
                        "{}:{}: `{word}` in: {}",
                        file.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "forbidden names in deterministic code:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_catches_a_forbidden_name() {
    // The check above must be able to fail: the same matching applied to a bad line.
    let line = "use std::collections::HashMap; // ok in comments: Instant";
    let code = line.split("//").next().unwrap_or("");
    assert!(FORBIDDEN.iter().any(|w| code.contains(w)));
    assert!(!code.contains("Instant"), "comments are ignored");
}
