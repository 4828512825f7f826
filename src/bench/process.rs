//! Servers started by the comparison: raftkv and etcd on 127.0.0.1 free ports, each with a
//! fresh data directory under the system temp dir, killed by PID when their guard drops (also
//! while a panic unwinds), plus what is read from outside a process: resident memory from
//! `/proc/PID/status` and the size of a data directory.

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::requests::{RequestError, Session};

/// How long a restarted server may answer "not found" for a loaded key before the key counts
/// as lost (a server may answer before it has replayed everything).
pub const RESTART_GRACE: Duration = Duration::from_secs(5);

/// Which server a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Raftkv,
    Etcd,
}

impl ServerKind {
    pub fn label(self) -> &'static str {
        match self {
            ServerKind::Raftkv => "raftkv",
            ServerKind::Etcd => "etcd",
        }
    }
}

/// Why a server could not be started or observed.
#[derive(Debug)]
pub enum ProcessError {
    Spawn { program: PathBuf, reason: String },
    NotReady { program: PathBuf, waited: Duration },
    Exited { program: PathBuf, status: String },
    NoLeader { program: PathBuf, waited: Duration },
    Io { path: PathBuf, reason: String },
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::Spawn { program, reason } => {
                write!(f, "cannot start {}: {reason}", program.display())
            }
            ProcessError::NotReady { program, waited } => write!(
                f,
                "{} did not answer GET /version within {:?}",
                program.display(),
                waited
            ),
            ProcessError::NoLeader { program, waited } => write!(
                f,
                "no {} member reported StateLeader within {:?}",
                program.display(),
                waited
            ),
            ProcessError::Exited { program, status } => {
                write!(f, "{} exited early: {status}", program.display())
            }
            ProcessError::Io { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for ProcessError {}

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_ports_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768)
}

/// The lowest port [`free_port`] picks.
const PICKED_PORTS_START: u16 = 20_000;

/// A port on 127.0.0.1 that was free a moment ago, for a server about to be started.
///
/// A port from `bind(127.0.0.1:0)` comes from the kernel's ephemeral range, the range every
/// outgoing connection takes its local port from; with a suite's thousands of connections one
/// of them could take it before the server bound it (seen once in CI: etcd's `bind: address
/// already in use`). So the port is picked at random below that range (from
/// `/proc/sys/net/ipv4/ip_local_port_range`, 32768 by default) and checked free by binding
/// it; port 0 is the fallback when the range starts too low to leave room.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let ephemeral_start = ephemeral_ports_start();
    if ephemeral_start > PICKED_PORTS_START + 1_000 {
        let span = u64::from(ephemeral_start - PICKED_PORTS_START);
        for _ in 0..64 {
            // std's RandomState is seeded at random for each instance.
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u32(std::process::id());
            let candidate = PICKED_PORTS_START + (hasher.finish() % span) as u16;
            if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
                return candidate;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}

/// A directory under the system temp dir, removed (with its contents) on drop.
#[derive(Debug)]
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> Result<TempDir, ProcessError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "raftkv-bench-{}-{label}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).map_err(|e| ProcessError::Io {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// How to start one server: program, data dir and ports stay the same across restarts.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub kind: ServerKind,
    pub program: PathBuf,
    pub data_dir: PathBuf,
    /// Member name (`--name`).
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    /// `--initial-cluster`: `name=http://127.0.0.1:port,…` of every member, this one included.
    pub initial_cluster: String,
}

impl ServerSpec {
    /// A single-member server.
    pub fn new(kind: ServerKind, program: PathBuf, data_dir: PathBuf) -> ServerSpec {
        let peer_port = free_port();
        ServerSpec {
            kind,
            program,
            data_dir,
            name: "bench".into(),
            client_port: free_port(),
            peer_port,
            initial_cluster: format!("bench=http://127.0.0.1:{peer_port}"),
        }
    }

    /// The members of a new `members`-member cluster, data dirs `base_dir/m1`, `m2`, ….
    pub fn cluster(
        kind: ServerKind,
        program: &Path,
        base_dir: &Path,
        members: usize,
    ) -> Vec<ServerSpec> {
        let mut specs: Vec<ServerSpec> = (1..=members)
            .map(|n| {
                let name = format!("m{n}");
                ServerSpec {
                    kind,
                    program: program.to_path_buf(),
                    data_dir: base_dir.join(&name),
                    name,
                    client_port: free_port(),
                    peer_port: free_port(),
                    initial_cluster: String::new(),
                }
            })
            .collect();
        let initial_cluster = specs
            .iter()
            .map(|s| format!("{}=http://127.0.0.1:{}", s.name, s.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        for spec in &mut specs {
            spec.initial_cluster = initial_cluster.clone();
        }
        specs
    }

    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn arguments(&self) -> Vec<String> {
        let client = self.client_url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut args = vec![
            "--name".to_string(),
            self.name.clone(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--listen-client-urls".into(),
            client.clone(),
            "--advertise-client-urls".into(),
            client,
            "--listen-peer-urls".into(),
            peer.clone(),
            "--initial-advertise-peer-urls".into(),
            peer,
            "--initial-cluster".into(),
            self.initial_cluster.clone(),
            "--initial-cluster-state".into(),
            "new".into(),
        ];
        if self.kind == ServerKind::Etcd {
            // etcd fsyncs its WAL on every commit by default; nothing to change for durability.
            args.extend([
                "--enable-v2".to_string(),
                "--log-level".into(),
                "error".into(),
            ]);
        }
        args
    }

    /// Starts the server; returns once it is spawned (see [`Server::wait_ready`]).
    pub fn spawn(&self) -> Result<Server, ProcessError> {
        let started_at = Instant::now();
        let child = Command::new(&self.program)
            .args(self.arguments())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ProcessError::Spawn {
                program: self.program.clone(),
                reason: e.to_string(),
            })?;
        Ok(Server {
            spec: self.clone(),
            child,
            started_at,
        })
    }
}

/// A running server process; killed (by its PID) and reaped on drop.
#[derive(Debug)]
pub struct Server {
    pub spec: ServerSpec,
    child: Child,
    /// When `spawn` was called.
    pub started_at: Instant,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `GET /version` until it answers 200, the process exits, or `limit` passes.
    pub fn wait_ready(&mut self, limit: Duration) -> Result<(), ProcessError> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ProcessError::Exited {
                    program: self.spec.program.clone(),
                    status: status.to_string(),
                });
            }
            if let Ok(mut session) =
                Session::new(&self.spec.client_url(), Duration::from_millis(500))
            {
                if session.warm_up().is_ok() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(ProcessError::NotReady {
            program: self.spec.program.clone(),
            waited: limit,
        })
    }

    /// Time from spawn until `GET /v2/keys<key>` answers 200 (polling every few ms), or None
    /// if it never does within `limit`, or if the server keeps answering something else (a
    /// 404: the key was lost) for [`RESTART_GRACE`] after its first answer.
    pub fn time_to_first_read(&mut self, key: &str, limit: Duration) -> Option<Duration> {
        let deadline = self.started_at + limit;
        let mut first_answer: Option<Instant> = None;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return None;
            }
            if let Ok(mut session) =
                Session::new(&self.spec.client_url(), Duration::from_millis(500))
            {
                match session.get(key, false) {
                    Ok(_) => return Some(self.started_at.elapsed()),
                    Err(RequestError::Status { .. }) => {
                        let since = *first_answer.get_or_insert_with(Instant::now);
                        if since.elapsed() > RESTART_GRACE {
                            return None;
                        }
                    }
                    Err(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    /// `state` of `GET /v2/stats/self` (`StateLeader`, `StateFollower`, …), if it answers.
    pub fn raft_state(&self) -> Option<String> {
        let mut session = Session::new(&self.spec.client_url(), Duration::from_secs(2)).ok()?;
        let response = session.get_path("/v2/stats/self").ok()?;
        let stats: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
        stats.get("state")?.as_str().map(String::from)
    }

    /// VmRSS of the process in KiB.
    pub fn resident_kib(&self) -> Option<u64> {
        resident_kib(self.pid())
    }

    /// Kills the process (SIGKILL by PID) and reaps it.
    pub fn stop(mut self) {
        self.kill_and_reap();
    }

    fn kill_and_reap(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// VmRSS of `pid` in KiB, from `/proc/PID/status`.
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss_kib(&status)
}

/// The `VmRSS:   1234 kB` line of a `/proc/PID/status` text.
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Bytes allocated on disk under `path` (st_blocks × 512, like `du`), following no symlinks.
pub fn disk_usage_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = metadata.blocks() * 512;
    if metadata.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                total += disk_usage_bytes(&entry.path());
            }
        }
    }
    total
}

/// Bytes of file content under `path` (the sum of file lengths, like `du --apparent-size`).
pub fn apparent_size_bytes(path: &Path) -> u64 {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !metadata.is_dir() {
        return metadata.len();
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| apparent_size_bytes(&entry.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// `name` if it is a path to a file, else the first match in `$PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let direct = PathBuf::from(name);
    if name.contains('/') {
        return direct.is_file().then_some(direct);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_parsed_from_status_text() {
        let status = "Name:\tx\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss_kib(status), Some(12345));
        assert_eq!(parse_vm_rss_kib("Name: x\n"), None);
        assert!(resident_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }

    #[test]
    fn disk_usage_counts_file_blocks() {
        let dir = TempDir::new("du-test").expect("temp dir");
        std::fs::write(dir.path.join("a"), vec![1u8; 64 * 1024]).expect("write");
        std::fs::create_dir(dir.path.join("sub")).expect("mkdir");
        std::fs::write(dir.path.join("sub/b"), vec![1u8; 8 * 1024]).expect("write");
        let bytes = disk_usage_bytes(&dir.path);
        assert!(bytes >= 72 * 1024, "du found {bytes} bytes");
        assert_eq!(apparent_size_bytes(&dir.path), 72 * 1024);
    }

    #[test]
    fn free_ports_come_from_below_the_ephemeral_range_and_can_be_bound() {
        let ephemeral_start = ephemeral_ports_start();
        let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
        for &port in &ports {
            TcpListener::bind(("127.0.0.1", port)).expect("a free port binds");
            if ephemeral_start > PICKED_PORTS_START + 1_000 {
                assert!(
                    (PICKED_PORTS_START..ephemeral_start).contains(&port),
                    "{port} is outside {PICKED_PORTS_START}..{ephemeral_start}"
                );
            }
        }
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert!(distinct.len() > 15, "picked at random: {ports:?}");
    }
}
