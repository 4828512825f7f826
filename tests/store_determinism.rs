//! Guards the store's determinism rule: src/store/ must not read a clock, do I/O, start
//! threads, iterate hash maps or draw randomness. Every replica applies the same commands and
//! must reach the same state, so these are banned in the source text itself.

use std::path::{Path, PathBuf};

/// Forbidden spellings and why.
const FORBIDDEN: [(&str, &str); 9] = [
    ("std::time", "clock"),
    ("Instant", "clock"),
    ("SystemTime", "clock"),
    ("std::fs", "file I/O"),
    ("std::net", "network I/O"),
    ("std::thread", "threads"),
    ("HashMap", "unordered iteration"),
    ("HashSet", "unordered iteration"),
    ("rand", "unseeded randomness"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|error| panic!("read {dir:?}: {error}"));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Whether `word` occurs in `line` as a whole token (so "rand" does not match "operand" or
/// "random_programs", but matches "rand::" and "use rand;").
fn contains_token(line: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut start = 0;
    while let Some(found) = line[start..].find(word) {
        let at = start + found;
        let before_ok = line[..at].chars().next_back().is_none_or(|c| !is_ident(c));
        let after_ok = line[at + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !is_ident(c));
        if before_ok && after_ok {
            return true;
        }
        start = at + word.len();
    }
    false
}

/// Every offending line under `dir`, as "file:line: `word` (reason): text".
fn violations(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        for (number, line) in text.lines().enumerate() {
            for (word, reason) in FORBIDDEN {
                if contains_token(line, word) {
                    found.push(format!(
                        "{}:{}: `{word}` ({reason}): {}",
                        file.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn store_sources_use_no_clock_io_threads_hash_maps_or_randomness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(files.len() >= 5, "expected the store sources under {dir:?}");
    let found = violations(&dir);
    assert!(
        found.is_empty(),
        "forbidden in src/store:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scanner_catches_each_forbidden_word() {
    let dir = std::env::temp_dir().join(format!("raftkv-determinism-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("nested")).expect("create temp dir");
    std::fs::write(
        dir.join("nested/bad.rs"),
        "use std::time::Duration;\nlet t = Instant::now();\nlet s = SystemTime::now();\n\
         std::fs::read(p);\nstd::net::TcpStream::connect(a);\nstd::thread::spawn(f);\n\
         let m: HashMap<u8, u8>;\nlet s: HashSet<u8>;\nlet x = rand::random();\n\
         let operand = random_programs; // not a violation\n",
    )
    .expect("write probe file");
    let found = violations(&dir);
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    assert_eq!(found.len(), 9, "{found:#?}");
    for (word, _) in FORBIDDEN {
        assert!(
            found.iter().any(|line| line.contains(&format!("`{word}`"))),
            "{word} not caught"
        );
    }
}
