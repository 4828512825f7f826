//! The TCP peer protocol: moves opaque Raft messages between members. `transport` moves frames;
//! it does not know what they mean.
//!
//! - Every connection opens with a handshake carrying the cluster ID and both member IDs
//!   ([`frame`] draws the bytes). A connection from another cluster, for another member, or
//!   that is not a raftkv peer at all is refused and logged; garbage never panics.
//! - Each member dials each peer once for its outgoing messages: one writer thread per peer,
//!   fed by a bounded queue. When the queue is full the message is dropped (Raft retries);
//!   when the connection fails the writer reconnects with exponential backoff and reports the
//!   peer unreachable so Raft stops pipelining to it.
//! - Snapshots travel on a connection of their own, in chunks, so a large snapshot never sits in
//!   front of heartbeats; at most one snapshot per peer is in flight.
//! - Inbound connections are served thread-per-connection, at most
//!   [`TransportConfig::max_inbound_connections`] at once.

pub mod frame;

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;

use frame::{
    check_payload, decode_frame_header, encode_frame, Answer, AnswerStatus, FrameError, Handshake,
    StreamKind, ANSWER_BYTES, FRAME_HEADER_BYTES, HANDSHAKE_BYTES,
};

/// Snapshot data is sent in chunks of this many bytes.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(200);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// An inbound stream with nothing for this long is closed (heartbeats arrive every ~100 ms).
const IDLE_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes coalesced into one socket write by a peer writer.
const WRITE_BATCH_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub cluster_id: u64,
    pub local_id: u64,
    /// `host:port` to listen on for peers.
    pub listen_addr: String,
    /// Messages queued per peer before new ones are dropped.
    pub queue_capacity: usize,
    pub max_inbound_connections: usize,
    /// Largest snapshot accepted from a peer, in bytes.
    pub max_snapshot_bytes: u64,
}

/// Renders the member list for `GET /members` on the peer port.
pub type MembersJson = Arc<dyn Fn() -> String + Send + Sync>;

/// What arrives from peers (and what the transport learns about them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Message {
        from: u64,
        payload: Vec<u8>,
    },
    Snapshot {
        from: u64,
        message: Vec<u8>,
        data: Vec<u8>,
    },
    /// A connection to this peer failed; Raft should probe it instead of pipelining.
    Unreachable {
        peer: u64,
    },
    /// A snapshot send finished (`ok`) or failed.
    SnapshotSent {
        peer: u64,
        ok: bool,
    },
}

#[derive(Debug)]
pub enum TransportError {
    BadPeerUrl { url: String },
    Bind { address: String, reason: String },
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::BadPeerUrl { url } => {
                write!(f, "bad peer URL {url:?}: expected http://host:port")
            }
            TransportError::Bind { address, reason } => {
                write!(f, "cannot listen for peers on {address}: {reason}")
            }
        }
    }
}

/// Counters for `/v2/stats` and tests.
#[derive(Debug, Default)]
pub struct TransportStats {
    pub messages_sent: AtomicU64,
    pub messages_dropped: AtomicU64,
    pub messages_received: AtomicU64,
    pub connections_refused: AtomicU64,
}

struct Peer {
    queue: Sender<Vec<u8>>,
    /// Wakes the writer from its reconnect backoff (the peer just connected to us: it is up).
    wake: Sender<()>,
    stop: Arc<AtomicBool>,
    address: String,
    snapshot_in_flight: Arc<AtomicBool>,
}

/// A running transport.
pub struct Transport {
    config: TransportConfig,
    /// Invariant: one entry per known peer, never the local member.
    peers: Mutex<BTreeMap<u64, Peer>>,
    inbound: Sender<Inbound>,
    pub stats: Arc<TransportStats>,
    pub local_addr: SocketAddr,
    stopped: Arc<AtomicBool>,
    /// Answers `GET /members` on the peer port (etcd's peer API, used by proxies to find the
    /// cluster's client URLs): the JSON array of members.
    members_json: Mutex<Option<MembersJson>>,
    /// Clones of the open inbound connections, closed on shutdown.
    inbound_streams: Mutex<BTreeMap<u64, TcpStream>>,
    next_connection_id: AtomicU64,
}

impl Transport {
    /// Binds the peer listener and starts accepting.
    pub fn start(
        config: TransportConfig,
        inbound: Sender<Inbound>,
    ) -> Result<Arc<Transport>, TransportError> {
        let listener =
            TcpListener::bind(&config.listen_addr).map_err(|e| TransportError::Bind {
                address: config.listen_addr.clone(),
                reason: e.to_string(),
            })?;
        let local_addr = listener.local_addr().map_err(|e| TransportError::Bind {
            address: config.listen_addr.clone(),
            reason: e.to_string(),
        })?;
        let transport = Arc::new(Transport {
            config,
            peers: Mutex::new(BTreeMap::new()),
            inbound,
            stats: Arc::new(TransportStats::default()),
            local_addr,
            stopped: Arc::new(AtomicBool::new(false)),
            inbound_streams: Mutex::new(BTreeMap::new()),
            members_json: Mutex::new(None),
            next_connection_id: AtomicU64::new(0),
        });
        let acceptor = transport.clone();
        std::thread::Builder::new()
            .name("peer-accept".into())
            .spawn(move || acceptor.accept_loop(listener))
            .expect("spawning the peer acceptor");
        Ok(transport)
    }

    /// Starts talking to a peer at `url` (`http://host:port`). Replaces an existing entry.
    pub fn add_peer(&self, id: u64, url: &str) -> Result<(), TransportError> {
        assert_ne!(
            id, self.config.local_id,
            "add_peer called with the local member {id:x}"
        );
        let address =
            crate::node::config::host_port(url).ok_or_else(|| TransportError::BadPeerUrl {
                url: url.to_string(),
            })?;
        let (queue, outgoing) = crossbeam_channel::bounded(self.config.queue_capacity.max(1));
        let (wake, woken) = crossbeam_channel::bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = PeerWriter {
            handshake: Handshake {
                kind: StreamKind::Messages,
                cluster_id: self.config.cluster_id,
                from: self.config.local_id,
                to: id,
            },
            address: address.clone(),
            outgoing,
            woken,
            stop: stop.clone(),
            inbound: self.inbound.clone(),
            stats: self.stats.clone(),
        };
        std::thread::Builder::new()
            .name(format!("peer-writer-{id:x}"))
            .spawn(move || writer.run())
            .expect("spawning a peer writer");
        let old = self.peers.lock().insert(
            id,
            Peer {
                queue,
                wake,
                stop,
                address,
                snapshot_in_flight: Arc::new(AtomicBool::new(false)),
            },
        );
        if let Some(old) = old {
            old.stop.store(true, Ordering::Release);
        }
        Ok(())
    }

    pub fn remove_peer(&self, id: u64) {
        if let Some(peer) = self.peers.lock().remove(&id) {
            peer.stop.store(true, Ordering::Release);
        }
    }

    /// Queues a message for `to`. Returns false when it was dropped (unknown peer, full queue).
    pub fn send(&self, to: u64, payload: Vec<u8>) -> bool {
        let peers = self.peers.lock();
        let Some(peer) = peers.get(&to) else {
            return false;
        };
        match peer.queue.try_send(payload) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.messages_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Streams a snapshot to `to` on its own connection; the outcome arrives as
    /// [`Inbound::SnapshotSent`].
    pub fn send_snapshot(&self, to: u64, message: Vec<u8>, data: Arc<Vec<u8>>) {
        let peers = self.peers.lock();
        let Some(peer) = peers.get(&to) else {
            let _ = self.inbound.try_send(Inbound::SnapshotSent {
                peer: to,
                ok: false,
            });
            return;
        };
        if peer.snapshot_in_flight.swap(true, Ordering::AcqRel) {
            let _ = self.inbound.try_send(Inbound::SnapshotSent {
                peer: to,
                ok: false,
            });
            return;
        }
        let handshake = Handshake {
            kind: StreamKind::Snapshot,
            cluster_id: self.config.cluster_id,
            from: self.config.local_id,
            to,
        };
        let address = peer.address.clone();
        let in_flight = peer.snapshot_in_flight.clone();
        let inbound = self.inbound.clone();
        std::thread::Builder::new()
            .name(format!("snapshot-to-{to:x}"))
            .spawn(move || {
                let ok = send_snapshot_stream(&address, handshake, &message, &data).is_ok();
                in_flight.store(false, Ordering::Release);
                let _ = inbound.send_timeout(
                    Inbound::SnapshotSent { peer: to, ok },
                    Duration::from_secs(5),
                );
            })
            .expect("spawning a snapshot sender");
    }

    /// Stops every writer and the acceptor.
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
        for (_, peer) in std::mem::take(&mut *self.peers.lock()) {
            peer.stop.store(true, Ordering::Release);
        }
        for (_, stream) in std::mem::take(&mut *self.inbound_streams.lock()) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Wake the acceptor.
        let _ = TcpStream::connect_timeout(&self.local_addr, Duration::from_millis(200));
    }

    fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let active = Arc::new(AtomicUsize::new(0));
        for stream in listener.incoming() {
            if self.stopped.load(Ordering::Acquire) {
                return;
            }
            let Ok(stream) = stream else { continue };
            if active.load(Ordering::Acquire) >= self.config.max_inbound_connections {
                self.stats
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                let _ = stream.shutdown(Shutdown::Both);
                continue;
            }
            active.fetch_add(1, Ordering::AcqRel);
            let connection_id = self.next_connection_id.fetch_add(1, Ordering::Relaxed);
            if let Ok(clone) = stream.try_clone() {
                self.inbound_streams.lock().insert(connection_id, clone);
            }
            let this = self.clone();
            let active = active.clone();
            let spawned = std::thread::Builder::new()
                .name("peer-reader".into())
                .spawn(move || {
                    let peer = stream
                        .peer_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    if let Err(error) = this.serve_connection(stream) {
                        let quiet = matches!(error, ReadError::Closed)
                            || this.stopped.load(Ordering::Acquire);
                        if !quiet {
                            eprintln!("raftkv: peer connection from {peer} closed: {error}");
                        }
                    }
                    this.inbound_streams.lock().remove(&connection_id);
                    active.fetch_sub(1, Ordering::AcqRel);
                });
            if spawned.is_err() {
                // Thread limit of the OS: drop the connection, the peer will retry.
                eprintln!("raftkv: cannot start a thread for a peer connection");
            }
        }
    }

    /// Installs what `GET /members` on the peer port answers.
    pub fn set_members_json(&self, provider: MembersJson) {
        *self.members_json.lock() = Some(provider);
    }

    /// A plain HTTP request on the peer port: only `GET /members` is served.
    fn serve_http(&self, mut stream: TcpStream) -> Result<(), ReadError> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= 8192 {
                return Err(ReadError::Refused(
                    "HTTP request head over 8 KiB on the peer port".into(),
                ));
            }
            stream.read_exact(&mut byte)?;
            head.push(byte[0]);
        }
        let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
        let provider = self.members_json.lock().clone();
        let (status, body) = match (request_line.starts_with(b"GET /members "), provider) {
            (true, Some(provider)) => ("200 OK", provider()),
            _ => ("404 Not Found", "404 page not found\n".to_string()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Etcd-Cluster-Id: {:x}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.config.cluster_id,
            body.len()
        );
        stream.write_all(response.as_bytes())?;
        Ok(())
    }

    fn serve_connection(&self, mut stream: TcpStream) -> Result<(), ReadError> {
        stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let mut first = [0u8; 4];
        let peeked = stream.peek(&mut first)?;
        if peeked == 4 && &first == b"GET " {
            return self.serve_http(stream);
        }
        let mut bytes = [0u8; HANDSHAKE_BYTES];
        stream.read_exact(&mut bytes)?;
        let handshake = match Handshake::decode(&bytes) {
            Ok(handshake) => handshake,
            Err(error) => {
                self.stats
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                if matches!(error, FrameError::BadVersion { .. }) {
                    let answer = Answer {
                        status: AnswerStatus::BadVersion,
                        cluster_id: self.config.cluster_id,
                    };
                    let _ = stream.write_all(&answer.encode());
                }
                return Err(ReadError::Refused(format!("bad handshake: {error}")));
            }
        };
        let status = if handshake.cluster_id != self.config.cluster_id {
            AnswerStatus::OtherCluster
        } else if handshake.to != self.config.local_id {
            AnswerStatus::NotThatMember
        } else {
            AnswerStatus::Accepted
        };
        stream.write_all(
            &Answer {
                status,
                cluster_id: self.config.cluster_id,
            }
            .encode(),
        )?;
        if status != AnswerStatus::Accepted {
            self.stats
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            return Err(ReadError::Refused(format!(
                "member {:x} of cluster {:x} wants member {:x}; this is member {:x} of cluster {:x}",
                handshake.from, handshake.cluster_id, handshake.to, self.config.local_id, self.config.cluster_id
            )));
        }
        stream.set_read_timeout(Some(IDLE_READ_TIMEOUT))?;
        if let Some(peer) = self.peers.lock().get(&handshake.from) {
            let _ = peer.wake.try_send(());
        }
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, stream);
        match handshake.kind {
            StreamKind::Messages => loop {
                let payload = read_frame(&mut reader)?;
                self.stats.messages_received.fetch_add(1, Ordering::Relaxed);
                // A full inbound queue drops the message: Raft retries.
                let _ = self.inbound.try_send(Inbound::Message {
                    from: handshake.from,
                    payload,
                });
            },
            StreamKind::Snapshot => {
                let message = read_frame(&mut reader)?;
                let mut data = Vec::new();
                loop {
                    let chunk = read_frame(&mut reader)?;
                    if chunk.is_empty() {
                        break;
                    }
                    if (data.len() + chunk.len()) as u64 > self.config.max_snapshot_bytes {
                        return Err(ReadError::Refused(format!(
                            "snapshot larger than the limit of {} bytes",
                            self.config.max_snapshot_bytes
                        )));
                    }
                    data.extend_from_slice(&chunk);
                }
                self.inbound
                    .send_timeout(
                        Inbound::Snapshot {
                            from: handshake.from,
                            message,
                            data,
                        },
                        Duration::from_secs(30),
                    )
                    .map_err(|_| ReadError::Refused("node did not take the snapshot".into()))?;
                Ok(())
            }
        }
    }
}

#[derive(Debug)]
enum ReadError {
    Closed,
    Io(std::io::Error),
    Frame(FrameError),
    Refused(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => write!(f, "closed"),
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Frame(e) => write!(f, "bad frame: {e}"),
            ReadError::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

impl From<std::io::Error> for ReadError {
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            ReadError::Closed
        } else {
            ReadError::Io(error)
        }
    }
}

fn read_frame(reader: &mut impl Read) -> Result<Vec<u8>, ReadError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    reader.read_exact(&mut header)?;
    let (length, checksum) = decode_frame_header(&header).map_err(ReadError::Frame)?;
    let mut payload = vec![0u8; length as usize];
    reader.read_exact(&mut payload)?;
    check_payload(&payload, checksum).map_err(ReadError::Frame)?;
    Ok(payload)
}

/// Dials `address` and completes the handshake.
fn dial(address: &str, handshake: Handshake) -> Result<TcpStream, String> {
    let target: SocketAddr = address
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{address} resolves to nothing"))?;
    let mut stream =
        TcpStream::connect_timeout(&target, HANDSHAKE_TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&handshake.encode())
        .map_err(|e| e.to_string())?;
    let mut answer = [0u8; ANSWER_BYTES];
    stream.read_exact(&mut answer).map_err(|e| e.to_string())?;
    let answer = Answer::decode(&answer).map_err(|e| e.to_string())?;
    if answer.status != AnswerStatus::Accepted {
        return Err(format!(
            "peer at {address} refused us ({:?}; its cluster is {:x}, ours {:x})",
            answer.status, answer.cluster_id, handshake.cluster_id
        ));
    }
    Ok(stream)
}

fn send_snapshot_stream(
    address: &str,
    handshake: Handshake,
    message: &[u8],
    data: &[u8],
) -> Result<(), String> {
    let stream = dial(address, handshake)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut writer = BufWriter::with_capacity(SNAPSHOT_CHUNK_BYTES + 64, stream);
    let mut frame = Vec::with_capacity(SNAPSHOT_CHUNK_BYTES + 16);
    encode_frame(message, &mut frame);
    writer.write_all(&frame).map_err(|e| e.to_string())?;
    for chunk in data.chunks(SNAPSHOT_CHUNK_BYTES) {
        frame.clear();
        encode_frame(chunk, &mut frame);
        writer.write_all(&frame).map_err(|e| e.to_string())?;
    }
    frame.clear();
    encode_frame(&[], &mut frame);
    writer.write_all(&frame).map_err(|e| e.to_string())?;
    writer.flush().map_err(|e| e.to_string())?;
    // Wait for the receiver to close: it has taken the snapshot.
    let mut stream = writer.into_inner().map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    Ok(())
}

struct PeerWriter {
    handshake: Handshake,
    address: String,
    outgoing: Receiver<Vec<u8>>,
    woken: Receiver<()>,
    stop: Arc<AtomicBool>,
    inbound: Sender<Inbound>,
    stats: Arc<TransportStats>,
}

impl PeerWriter {
    fn run(self) {
        let mut backoff = BACKOFF_MIN;
        let mut reported = false;
        let mut last_error = String::new();
        while !self.stop.load(Ordering::Acquire) {
            match dial(&self.address, self.handshake) {
                Ok(stream) => {
                    backoff = BACKOFF_MIN;
                    reported = false;
                    if let Err(error) = self.pump(stream) {
                        if !self.stop.load(Ordering::Acquire) {
                            let _ = self.inbound.try_send(Inbound::Unreachable {
                                peer: self.handshake.to,
                            });
                            last_error = error;
                        }
                    }
                }
                Err(error) => {
                    if !reported {
                        let _ = self.inbound.try_send(Inbound::Unreachable {
                            peer: self.handshake.to,
                        });
                        reported = true;
                    }
                    if error != last_error {
                        eprintln!(
                            "raftkv: cannot reach peer {:x} at {}: {error}",
                            self.handshake.to, self.address
                        );
                        last_error = error;
                    }
                    // Drop what queued up while the peer was away: Raft resends what matters.
                    while self.outgoing.try_recv().is_ok() {}
                    // Sleep out the backoff, or less if the peer connects to us meanwhile.
                    let _ = self.woken.recv_timeout(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Writes queued messages until the connection fails or the peer is removed.
    fn pump(&self, stream: TcpStream) -> Result<(), String> {
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let mut writer = BufWriter::with_capacity(WRITE_BATCH_BYTES, stream);
        let mut frame = Vec::new();
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            let first = match self.outgoing.recv_timeout(Duration::from_millis(100)) {
                Ok(payload) => payload,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            let mut batch_bytes = 0;
            let mut next = Some(first);
            while let Some(payload) = next.take() {
                frame.clear();
                encode_frame(&payload, &mut frame);
                writer.write_all(&frame).map_err(|e| e.to_string())?;
                self.stats.messages_sent.fetch_add(1, Ordering::Relaxed);
                batch_bytes += frame.len();
                if batch_bytes < WRITE_BATCH_BYTES {
                    next = self.outgoing.try_recv().ok();
                }
            }
            writer.flush().map_err(|e| e.to_string())?;
        }
    }
}
