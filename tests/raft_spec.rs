//! Runs the Promela models of raft-spec/ through `raft-spec/run.sh`: every correct model must
//! verify exhaustively and every deliberately broken variant must be caught by spin.
//! `cargo test` uses `--quick` (smaller bounds for the correct models, about 30 s);
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
        stdout.contains("summary: 10 runs, 10 as expected, 0 unexpected"),
        "unexpected summary:\n{stdout}"
    );
}
