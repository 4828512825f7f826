//! python-etcd (Debian's python3-etcd, 0.4.5) against etcd and against raftkv: the same
//! script, the same output (indexes relative to the script's first write). Skips with a notice
//! when etcd or python-etcd is absent; CI installs both.

mod common;

use std::process::Command;

use common::{etcd_available, ServerKind, ServerProcess};

const PYTHON: &str = "/usr/bin/python3";

fn python_etcd_available() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import etcd"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn walk(server: &ServerProcess) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/etcd_client_walk.py"
    );
    let output = Command::new(PYTHON)
        .arg(script)
        .arg(server.client_port.to_string())
        .arg("/py")
        .output()
        .expect("running python3");
    assert!(
        output.status.success(),
        "python-etcd walk against {:?} failed:\n{}\nserver log:\n{}",
        server.kind,
        String::from_utf8_lossy(&output.stderr),
        server.log_tail()
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

#[test]
fn python_etcd_sees_raftkv_as_it_sees_etcd() {
    if !python_etcd_available() {
        eprintln!("skipped: python3-etcd not installed ({PYTHON} -c 'import etcd' failed)");
        return;
    }
    if !etcd_available() {
        eprintln!("skipped: etcd not found");
        return;
    }
    let etcd = ServerProcess::start(ServerKind::Etcd, "py").expect("etcd starts");
    let raftkv = ServerProcess::start(ServerKind::Raftkv, "py").expect("raftkv starts");
    let expected = walk(&etcd);
    let found = walk(&raftkv);
    if expected != found {
        for (line, (e, f)) in expected.lines().zip(found.lines()).enumerate() {
            if e != f {
                eprintln!("line {line}:\n  etcd:   {e}\n  raftkv: {f}");
            }
        }
        panic!("python-etcd output differs:\n--- etcd\n{expected}\n--- raftkv\n{found}");
    }
    eprintln!("{found}");
}
