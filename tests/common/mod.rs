//! Shared helpers for integration tests that start real server processes.
//!
//! [`ServerProcess`] starts either the real etcd (`/usr/bin/etcd --enable-v2`) or the raftkv
//! binary with the same etcd-style flags on free loopback ports and a fresh temporary data
//! directory, waits until the client port answers, and kills the process by PID when dropped.
//! Every wait is bounded so a broken server fails a test instead of hanging it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where the Debian package installs etcd.
pub const ETCD_PATH: &str = "/usr/bin/etcd";

/// Which server binary a [`ServerProcess`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// The real etcd 3.4, started with `--enable-v2`.
    Etcd,
    /// This package's `raftkv` binary.
    Raftkv,
}

/// True when the etcd binary exists on this machine.
pub fn etcd_available() -> bool {
    Path::new(ETCD_PATH).exists()
}

pub use raftkv::bench::process::free_port;

static DATA_DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running server process on loopback. Killed (by PID) and its data dir removed on drop.
pub struct ServerProcess {
    /// Which binary runs.
    pub kind: ServerKind,
    /// The member name passed with `--name`.
    pub name: String,
    /// Client port on 127.0.0.1.
    pub client_port: u16,
    /// Peer port on 127.0.0.1.
    pub peer_port: u16,
    /// The temporary data directory (removed on drop).
    pub data_dir: PathBuf,
    /// Invariant: `Some` until drop kills and reaps the child.
    child: Option<Child>,
    /// Where the child's stdout+stderr go, for diagnostics when startup fails.
    log_path: PathBuf,
    /// The command-line arguments, kept for restarts.
    args: Vec<String>,
}

impl ServerProcess {
    /// Starts a single-member server of `kind` named `name` and waits (at most 15 s) until
    /// `GET /version` on its client port answers 200.
    pub fn start(kind: ServerKind, name: &str) -> Result<ServerProcess, String> {
        ServerProcess::start_with_args(kind, name, &[])
    }

    /// Like [`ServerProcess::start`], with extra command-line arguments appended (e.g.
    /// `--cors`).
    pub fn start_with_args(
        kind: ServerKind,
        name: &str,
        extra_args: &[&str],
    ) -> Result<ServerProcess, String> {
        // A free port is free only when looked at: another test's server can take it before
        // this one binds it (seen in CI: etcd's "bind: address already in use"). Then start
        // again on new ports.
        let mut attempt = 1;
        loop {
            match Self::start_on_free_ports(kind, name, extra_args) {
                Err(error)
                    if attempt < 4
                        && error
                            .to_ascii_lowercase()
                            .contains("address already in use") =>
                {
                    eprintln!("{kind:?} {name}: a port was taken meanwhile; starting again");
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    fn start_on_free_ports(
        kind: ServerKind,
        name: &str,
        extra_args: &[&str],
    ) -> Result<ServerProcess, String> {
        let client_port = free_port();
        let mut peer_port = free_port();
        while peer_port == client_port {
            peer_port = free_port();
        }
        let unique = DATA_DIR_COUNTER.fetch_add(1, Ordering::SeqCst);
        let data_dir = std::env::temp_dir().join(format!(
            "raftkv-test-{}-{}-{}-{}",
            match kind {
                ServerKind::Etcd => "etcd",
                ServerKind::Raftkv => "raftkv",
            },
            name,
            std::process::id(),
            unique
        ));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir).map_err(|e| format!("create {data_dir:?}: {e}"))?;
        let log_path = data_dir.with_extension("log");
        let _ = std::fs::remove_file(&log_path);
        let member_data_dir = data_dir.join("member-data");
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut args: Vec<String> = Vec::new();
        if kind == ServerKind::Etcd {
            args.push("--enable-v2".into());
        }
        for (flag, value) in [
            ("--name", name.to_string()),
            ("--data-dir", member_data_dir.to_string_lossy().to_string()),
            ("--listen-client-urls", client_url.clone()),
            ("--advertise-client-urls", client_url.clone()),
            ("--listen-peer-urls", peer_url.clone()),
            ("--initial-advertise-peer-urls", peer_url.clone()),
            ("--initial-cluster", format!("{name}={peer_url}")),
        ] {
            args.push(flag.into());
            args.push(value);
        }
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let mut server = ServerProcess {
            kind,
            name: name.to_string(),
            client_port,
            peer_port,
            data_dir,
            child: None,
            log_path,
            args,
        };
        server.spawn()?;
        Ok(server)
    }

    /// Kills the process (like a crash: SIGKILL) and starts it again on the same ports and
    /// data directory, waiting until it serves again.
    pub fn restart(&mut self) -> Result<(), String> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let program = match self.kind {
            ServerKind::Etcd => ETCD_PATH.to_string(),
            ServerKind::Raftkv => env!("CARGO_BIN_EXE_raftkv").to_string(),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| format!("open log {:?}: {e}", self.log_path))?;
        let log_err = log.try_clone().map_err(|e| format!("clone log: {e}"))?;
        let child = Command::new(program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| format!("spawn {:?}: {e}", self.kind))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(15))
    }

    /// `http://127.0.0.1:<client port>`.
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The last part of the server's log (stdout and stderr), for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log_path).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let start = text.len().saturating_sub(4000);
        let start = (start..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text[start..].to_string()
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "{:?} exited during startup with {status}; log:\n{}",
                        self.kind,
                        self.log_tail()
                    ));
                }
            }
            if let Some(status) = simple_get_status(self.client_port, "/version") {
                if status == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{:?} did not answer GET /version within {limit:?}; log:\n{}",
                    self.kind,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Kill exactly the process we spawned, by its PID.
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// Sends `GET <path>` with `Connection: close` and returns the status code, or None when the
/// server does not answer (bounded by 1 s timeouts).
pub fn simple_get_status(port: u16, path: &str) -> Option<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .ok()?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 64];
    let mut filled = 0;
    while filled < 12 {
        let read = stream.read(&mut head[filled..]).ok()?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    let text = std::str::from_utf8(&head[..filled]).ok()?;
    text.split(' ').nth(1)?.parse().ok()
}
