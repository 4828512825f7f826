//! A harness for fault tests on real `raftkv` processes: a cluster of members on 127.0.0.1,
//! each started with etcd's flags, whose peer links all pass through a test-controlled TCP
//! proxy ([`proxy`]), plus concurrent clients that record histories ([`history`]) and fault
//! cycles with their checks ([`faults`]).
//!
//! Wiring: member `i` listens for peers on its real port and advertises (in everyone's
//! `--initial-cluster`) the port of its proxy, which forwards to the real port. Member IDs are
//! derived from the advertised URLs, so every member agrees on them. The proxy reads the peer
//! handshake of each connection and so knows which directed link (`from` → `to`) it carries.
//!
//! Members added at run time (`POST /v2/members`, then `--initial-cluster-state existing`) and
//! removed ones (`DELETE /v2/members/<id>`, after which the process must stop by itself) keep
//! their slot. Every process is killed by its PID when its [`Member`] is dropped (a paused process is
//! killed too: SIGKILL works on a stopped process); every wait is bounded.

#![allow(dead_code)]

pub mod faults;
pub mod history;
pub mod proxy;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use raftkv::client::http::{Deadlines, HttpClient, Request, Response, Url};

use crate::common::free_port;

/// etcd's default `--initial-cluster-token`, which the harness does not override.
pub const CLUSTER_TOKEN: &str = "etcd-cluster";
/// Heartbeat and election timeout given to every member (etcd's defaults).
pub const HEARTBEAT_MS: u64 = 100;
pub const ELECTION_TIMEOUT_MS: u64 = 1000;

static CLUSTER_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A small deterministic generator (splitmix64) for randomized tests; the seed is printed.
#[derive(Clone, Debug)]
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> TestRng {
        TestRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "TestRng::below(0)");
        self.next_u64() % bound
    }
}

/// The seed of a randomized test: `RAFTKV_SEED` when set (to replay), else the clock.
pub fn test_seed(test_name: &str) -> u64 {
    let seed = std::env::var("RAFTKV_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("{test_name}: seed {seed} (replay with RAFTKV_SEED={seed})");
    seed
}

/// One member slot: its ports, data dir and (while running) its process.
pub struct Member {
    pub name: String,
    pub id: u64,
    pub client_port: u16,
    /// The port the member itself listens on for peers.
    pub peer_port: u16,
    /// The port of its proxy: what the other members dial.
    pub proxy_port: u16,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    /// `--initial-cluster` and `--initial-cluster-state` of its first start (kept for restarts).
    initial_cluster: String,
    initial_state: &'static str,
    /// Invariant: `Some` while the process runs (or is paused).
    child: Option<Child>,
    pub paused: bool,
    /// Removed from the cluster: never started again.
    pub removed: bool,
    /// More flags for every start (e.g. `--snapshot-count`); a test may change them before a
    /// restart.
    pub extra_args: Vec<String>,
}

impl Member {
    /// The process ID while the member runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|child| child.id())
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Starts the process with the flags of its first start (its data dir decides the rest).
    fn spawn(&mut self) -> Result<(), String> {
        assert!(
            self.child.is_none(),
            "member {} is already running",
            self.name
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| format!("open {:?}: {e}", self.log_path))?;
        let log_err = log.try_clone().map_err(|e| format!("clone log: {e}"))?;
        let client_url = self.client_url();
        let child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{}", self.peer_port))
            .arg("--initial-advertise-peer-urls")
            .arg(self.proxy_url())
            .arg("--initial-cluster")
            .arg(&self.initial_cluster)
            .arg("--initial-cluster-state")
            .arg(self.initial_state)
            .arg("--heartbeat-interval")
            .arg(HEARTBEAT_MS.to_string())
            .arg("--election-timeout")
            .arg(ELECTION_TIMEOUT_MS.to_string())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| format!("spawn raftkv {}: {e}", self.name))?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            let pid = child.id() as libc::pid_t;
            // SAFETY: kill(2) on the PID of a child we spawned and have not reaped yet.
            let result = unsafe { libc::kill(pid, signal) };
            assert_eq!(result, 0, "kill({pid}, {signal}) failed");
        }
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
        self.paused = false;
    }

    /// True when the process exited by itself (it is reaped then).
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status.to_string())
            }
            _ => None,
        }
    }

    /// The last part of the member's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log_path).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let start = text.len().saturating_sub(3000);
        let start = (start..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        format!("--- log of {} ---\n{}", self.name, &text[start..])
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A cluster of `raftkv` processes behind peer-link proxies.
pub struct Cluster {
    /// Invariant: slot `i` is member `i` forever; removed members keep their slot.
    pub members: Vec<Member>,
    pub proxies: proxy::ProxyNet,
    root: PathBuf,
    /// Keep-alive client for harness requests.
    client: HttpClient,
    /// More flags for every member.
    extra_args: Vec<String>,
}

impl Cluster {
    /// Starts `size` members as a new cluster and waits until every member answers
    /// `GET /v2/keys/` and a leader is known (bounded).
    pub fn start(size: usize) -> Result<Cluster, String> {
        Cluster::start_with(size, &[])
    }

    /// [`Cluster::start`] with more flags for every member. A port taken by someone else
    /// between choosing it and the member binding it costs a retry with new ports.
    pub fn start_with(size: usize, extra_args: &[&str]) -> Result<Cluster, String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Cluster::try_start(size, extra_args) {
                Err(error) if attempt < 3 && error.contains("Address already in use") => {
                    println!("a port was taken meanwhile, starting again: {error}");
                }
                other => return other,
            }
        }
    }

    fn try_start(size: usize, extra_args: &[&str]) -> Result<Cluster, String> {
        let unique = CLUSTER_COUNTER.fetch_add(1, Ordering::SeqCst);
        let root =
            std::env::temp_dir().join(format!("raftkv-cluster-{}-{unique}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| format!("create {root:?}: {e}"))?;
        let mut cluster = Cluster {
            members: Vec::new(),
            proxies: proxy::ProxyNet::new(),
            root,
            client: HttpClient::new(Some(Duration::from_secs(1))),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        for index in 0..size {
            cluster.new_slot(index)?;
        }
        let initial_cluster = cluster.initial_cluster_flag(None);
        for member in &mut cluster.members {
            member.initial_cluster = initial_cluster.clone();
            member.initial_state = "new";
        }
        for index in 0..size {
            cluster.members[index].spawn()?;
        }
        for index in 0..size {
            cluster.wait_serving(index, Duration::from_secs(30))?;
        }
        cluster.wait_leader(Duration::from_secs(20))?;
        Ok(cluster)
    }

    /// Allocates ports, a proxy and a data dir for slot `index` (the process is not started).
    fn new_slot(&mut self, index: usize) -> Result<usize, String> {
        assert_eq!(index, self.members.len(), "slots are allocated in order");
        let name = format!("m{index}");
        let client_port = free_port();
        let mut peer_port = free_port();
        while peer_port == client_port {
            peer_port = free_port();
        }
        let proxy_port = self.proxies.add_destination(peer_port)?;
        let proxy_url = format!("http://127.0.0.1:{proxy_port}");
        let id = raftkv::node::ids::member_id(&[proxy_url], CLUSTER_TOKEN, None);
        self.members.push(Member {
            name: name.clone(),
            id,
            client_port,
            peer_port,
            proxy_port,
            data_dir: self.root.join(&name),
            log_path: self.root.join(format!("{name}.log")),
            initial_cluster: String::new(),
            initial_state: "new",
            child: None,
            paused: false,
            removed: false,
            extra_args: self.extra_args.clone(),
        });
        Ok(index)
    }

    /// `name=url,...` over the members not removed (`extra` is included as well).
    fn initial_cluster_flag(&self, extra: Option<usize>) -> String {
        self.members
            .iter()
            .enumerate()
            .filter(|(i, m)| !m.removed || Some(*i) == extra)
            .map(|(_, m)| format!("{}={}", m.name, m.proxy_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Indexes of members that are not removed.
    pub fn active(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| !self.members[i].removed)
            .collect()
    }

    /// Indexes of members whose process runs and is not paused.
    pub fn live(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| {
                let m = &self.members[i];
                !m.removed && m.is_running() && !m.paused
            })
            .collect()
    }

    pub fn index_of_id(&self, id: u64) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    /// Waits until member `index` answers `GET /v2/keys/` with 200.
    pub fn wait_serving(&mut self, index: usize, limit: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.members[index].exited() {
                return Err(format!(
                    "member {index} exited with {status}\n{}",
                    self.members[index].log_tail()
                ));
            }
            let port = self.members[index].client_port;
            if let Ok(response) = self.request(port, "GET", "/v2/keys/", None, 1000) {
                if response.status == 200 {
                    return Ok(started.elapsed());
                }
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "member {index} did not serve GET /v2/keys/ within {limit:?}\n{}",
                    self.members[index].log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One request from the harness's own keep-alive client.
    pub fn request(
        &mut self,
        port: u16,
        method: &str,
        path: &str,
        form: Option<String>,
        timeout_ms: u64,
    ) -> Result<Response, String> {
        http_request(&mut self.client, port, method, path, form, timeout_ms)
    }

    /// The leader as most live members see it (`None` when no majority of the active members
    /// agrees on one that is live).
    pub fn leader(&mut self) -> Option<usize> {
        let active = self.active().len();
        let mut votes: std::collections::BTreeMap<u64, usize> = Default::default();
        for index in self.live() {
            let port = self.members[index].client_port;
            let Ok(response) = self.request(port, "GET", "/v2/stats/self", None, 500) else {
                continue;
            };
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(&response.body) else {
                continue;
            };
            let leader = json["leaderInfo"]["leader"]
                .as_str()
                .and_then(|text| u64::from_str_radix(text, 16).ok())
                .unwrap_or(0);
            if leader != 0 {
                *votes.entry(leader).or_default() += 1;
            }
        }
        let (id, count) = votes.into_iter().max_by_key(|(_, count)| *count)?;
        let index = self.index_of_id(id)?;
        (count > active / 2 && self.live().contains(&index)).then_some(index)
    }

    /// The leader ID each of `members` reports (0: none known, or no answer).
    pub fn leaders_seen_by(&mut self, members: &[usize]) -> Vec<u64> {
        members
            .iter()
            .map(|&index| {
                let port = self.members[index].client_port;
                self.request(port, "GET", "/v2/stats/self", None, 1000)
                    .ok()
                    .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
                    .and_then(|json| {
                        json["leaderInfo"]["leader"]
                            .as_str()
                            .and_then(|text| u64::from_str_radix(text, 16).ok())
                    })
                    .unwrap_or(0)
            })
            .collect()
    }

    pub fn wait_leader(&mut self, limit: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(leader) = self.leader() {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no leader agreed by a majority within {limit:?}\n{}",
                    self.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Tails of every member's log.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(Member::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn kill9(&mut self, index: usize) {
        self.members[index].kill9();
    }

    /// Starts a stopped member again from its data dir; returns once it serves.
    pub fn restart(&mut self, index: usize) -> Result<Duration, String> {
        let started = Instant::now();
        self.members[index].spawn()?;
        self.wait_serving(index, Duration::from_secs(30))?;
        Ok(started.elapsed())
    }

    /// Starts several stopped members at once (a member alone may not serve without a quorum);
    /// returns once all of them serve.
    pub fn restart_all(&mut self, indexes: &[usize]) -> Result<Duration, String> {
        let started = Instant::now();
        for &index in indexes {
            self.members[index].spawn()?;
        }
        for &index in indexes {
            self.wait_serving(index, Duration::from_secs(30))?;
        }
        Ok(started.elapsed())
    }

    pub fn pause(&mut self, index: usize) {
        self.members[index].pause();
    }

    pub fn resume(&mut self, index: usize) {
        self.members[index].resume();
    }

    /// Cuts the links between the two groups in both directions (`mode` says how).
    pub fn partition(&self, group_a: &[usize], group_b: &[usize], mode: proxy::CutMode) {
        for &a in group_a {
            for &b in group_b {
                self.cut_one_way(a, b, mode);
                self.cut_one_way(b, a, mode);
            }
        }
    }

    /// Loses everything `from` sends to `to`.
    pub fn cut_one_way(&self, from: usize, to: usize, mode: proxy::CutMode) {
        self.proxies
            .cut(self.members[from].id, self.members[to].id, mode);
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.proxies.heal_all();
    }

    /// Adds a member through member `via` (`POST /v2/members`), then starts it with
    /// `--initial-cluster-state existing`; returns its slot once it serves.
    pub fn add_member(&mut self, via: usize) -> Result<usize, String> {
        let index = self.members.len();
        self.new_slot(index)?;
        let proxy_url = self.members[index].proxy_url();
        let port = self.members[via].client_port;
        let body = format!("{{\"peerURLs\":[\"{proxy_url}\"]}}");
        let response = json_request(port, "POST", "/v2/members", body, 10_000)?;
        if response.status != 201 {
            return Err(format!(
                "POST /v2/members answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
        let json: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| format!("POST /v2/members body: {e}"))?;
        let id = json["id"]
            .as_str()
            .and_then(|text| u64::from_str_radix(text, 16).ok())
            .ok_or_else(|| format!("POST /v2/members gave no id: {json}"))?;
        self.members[index].id = id;
        self.members[index].initial_cluster = self.initial_cluster_flag(Some(index));
        self.members[index].initial_state = "existing";
        self.members[index].spawn()?;
        self.wait_serving(index, Duration::from_secs(30))?;
        Ok(index)
    }

    /// Removes member `index` through member `via` (`DELETE /v2/members/<id>`), then kills
    /// its process.
    pub fn remove_member(&mut self, index: usize, via: usize) -> Result<(), String> {
        self.request_removal(index, via)?;
        self.finish_removal(index)
    }

    /// `DELETE /v2/members/<id>` of member `index` through member `via`; the process is left
    /// running.
    pub fn request_removal(&mut self, index: usize, via: usize) -> Result<(), String> {
        let path = format!("/v2/members/{:x}", self.members[index].id);
        let port = self.members[via].client_port;
        let response = self.request(port, "DELETE", &path, None, 10_000)?;
        if response.status != 204 {
            return Err(format!(
                "DELETE {path} answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
        self.members[index].removed = true;
        Ok(())
    }

    /// After [`Cluster::request_removal`]: waits (at most 5 s) for the removed member to stop
    /// by itself, as etcd's does, then makes sure it is gone; errs when it had to be killed.
    pub fn finish_removal(&mut self, index: usize) -> Result<(), String> {
        assert!(
            self.members[index].removed,
            "member {index} was not removed"
        );
        let started = Instant::now();
        let mut exited = None;
        while exited.is_none() && started.elapsed() < Duration::from_secs(5) {
            exited = self.members[index].exited();
            std::thread::sleep(Duration::from_millis(50));
        }
        self.members[index].kill9();
        match exited {
            Some(status) => {
                println!(
                    "removed member {index} stopped by itself after {} ms ({status})",
                    started.elapsed().as_millis()
                );
                Ok(())
            }
            None => Err(format!(
                "removed member {index} still runs 5 s after its removal\n{}",
                self.members[index].log_tail()
            )),
        }
    }

    /// Waits until every live member reports the same `X-Etcd-Index` and the same recursive
    /// sorted listing of `/`; returns that index and listing.
    pub fn wait_converged(&mut self, limit: Duration) -> Result<(u64, String), String> {
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        loop {
            let mut seen: Vec<(usize, u64, String)> = Vec::new();
            for index in self.live() {
                let port = self.members[index].client_port;
                match self.request(
                    port,
                    "GET",
                    "/v2/keys/?recursive=true&sorted=true",
                    None,
                    2000,
                ) {
                    Ok(response) if response.status == 200 => {
                        let etcd_index = response
                            .header("X-Etcd-Index")
                            .and_then(|text| text.parse().ok())
                            .unwrap_or(0);
                        let body = String::from_utf8_lossy(&response.body).into_owned();
                        seen.push((index, etcd_index, body));
                    }
                    Ok(response) => last = format!("member {index} answered {}", response.status),
                    Err(e) => last = format!("member {index}: {e}"),
                }
            }
            if seen.len() == self.live().len() && !seen.is_empty() {
                let (_, index0, body0) = &seen[0];
                if seen.iter().all(|(_, i, b)| i == index0 && b == body0) {
                    return Ok((*index0, body0.clone()));
                }
                last = seen
                    .iter()
                    .map(|(m, i, b)| format!("member {m}: index {i}, {} bytes", b.len()))
                    .collect::<Vec<_>>()
                    .join("; ");
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "members did not converge within {limit:?}: {last}\n{}",
                    self.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `GET /v2/members` on every live member lists exactly the active members
    /// (by ID), each with its name and client URL published.
    pub fn wait_members_agree(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut expected: Vec<u64> = self.active().iter().map(|&i| self.members[i].id).collect();
        expected.sort_unstable();
        loop {
            let mut last = String::new();
            let mut agree = true;
            for index in self.live() {
                let port = self.members[index].client_port;
                let listed = self
                    .request(port, "GET", "/v2/members", None, 2000)
                    .ok()
                    .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok());
                let mut ids: Vec<u64> = Vec::new();
                let mut all_published = true;
                if let Some(members) = listed.as_ref().and_then(|j| j["members"].as_array()) {
                    for member in members {
                        if let Some(id) = member["id"]
                            .as_str()
                            .and_then(|t| u64::from_str_radix(t, 16).ok())
                        {
                            ids.push(id);
                        }
                        all_published &= member["name"].as_str().is_some_and(|n| !n.is_empty());
                    }
                }
                ids.sort_unstable();
                if ids != expected || !all_published {
                    agree = false;
                    last = format!("member {index} lists {listed:?}, expected IDs {expected:x?}");
                }
            }
            if agree {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "/v2/members did not agree within {limit:?}: {last}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts that every key in `keys` exists on every live member (local reads after
    /// convergence).
    pub fn check_keys_everywhere(&mut self, keys: &[String]) -> Result<(), String> {
        for index in self.live() {
            let port = self.members[index].client_port;
            let response = self.request(
                port,
                "GET",
                "/v2/keys/acked?recursive=true&sorted=true",
                None,
                5000,
            )?;
            let text = String::from_utf8_lossy(&response.body);
            for key in keys {
                if !text.contains(&format!("\"key\":\"{key}\"")) {
                    return Err(format!(
                        "acknowledged write {key} is missing on member {index}"
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.kill9();
        }
        self.proxies.shutdown();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        } else {
            eprintln!("cluster data and logs kept in {:?}", self.root);
        }
    }
}

/// Sends one request on a keep-alive client with a total deadline of `timeout_ms`.
pub fn http_request(
    client: &mut HttpClient,
    port: u16,
    method: &str,
    path: &str,
    form: Option<String>,
    timeout_ms: u64,
) -> Result<Response, String> {
    let url = Url::parse(&format!("http://127.0.0.1:{port}{path}")).map_err(|e| e.to_string())?;
    let mut headers = Vec::new();
    if form.is_some() {
        headers.push((
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ));
    }
    let request = Request {
        method: method.to_string(),
        url,
        headers,
        body: form.map(String::into_bytes),
    };
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    client
        .send(
            &request,
            Deadlines {
                headers: Some(deadline),
                body: Some(deadline),
            },
        )
        .map_err(|e| e.to_string())
}

/// A JSON request on a fresh connection.
pub fn json_request(
    port: u16,
    method: &str,
    path: &str,
    body: String,
    timeout_ms: u64,
) -> Result<Response, String> {
    let url = Url::parse(&format!("http://127.0.0.1:{port}{path}")).map_err(|e| e.to_string())?;
    let request = Request {
        method: method.to_string(),
        url,
        headers: vec![("Content-Type".to_string(), "application/json".to_string())],
        body: Some(body.into_bytes()),
    };
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    HttpClient::new(Some(Duration::from_secs(1)))
        .send(
            &request,
            Deadlines {
                headers: Some(deadline),
                body: Some(deadline),
            },
        )
        .map_err(|e| e.to_string())
}
