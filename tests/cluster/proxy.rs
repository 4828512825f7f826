//! A test-controlled TCP proxy in front of each member's peer listener.
//!
//! Every raftkv peer connection starts with a 36-byte handshake from the dialer whose bytes
//! 16..24 and 24..32 are the `from` and `to` member IDs (little endian; see
//! `raftkv::transport::frame`). After the 16-byte answer, bytes flow only from dialer to
//! acceptor. So one connection carries exactly one directed link, and the proxy can lose a
//! link in one direction without touching the other:
//!
//! - [`CutMode::Reset`]: open connections of the link are closed and new ones are closed right
//!   after their handshake (the sender sees errors and reconnects with backoff).
//! - [`CutMode::Blackhole`]: the receiver's side is closed at once, but the sender's side stays
//!   open and everything it writes is read and discarded; a new connection gets no answer to its
//!   handshake. The sender sees nothing but silence, like a dropped network.
//!
//! A connection that starts with `GET ` is plain HTTP on the peer port (`GET /members`) and
//! is passed through untouched.
//!
//! Healing a link closes whatever the cut left half-open, so the sender reconnects afresh and the
//! receiver never sees a frame cut in the middle.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// How a cut link loses its traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    Reset,
    Blackhole,
}

const HANDSHAKE_BYTES: usize = 36;
/// How often a forwarding thread looks at the link's state while its sender is quiet.
const POLL: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Shared {
    /// Cut directed links `(from, to)` and how they are cut.
    cuts: Mutex<BTreeMap<(u64, u64), CutMode>>,
    /// Sockets of open connections (both ends), closed on shutdown.
    open: Mutex<BTreeMap<u64, (TcpStream, Option<TcpStream>)>>,
    next_connection: AtomicU64,
    stopped: AtomicBool,
    /// Directed links seen carrying a handshake, for tests of the proxy itself.
    links_seen: Mutex<BTreeSet<(u64, u64)>>,
}

impl Shared {
    fn mode(&self, link: (u64, u64)) -> Option<CutMode> {
        self.cuts.lock().get(&link).copied()
    }
}

/// All proxies of one cluster, sharing one table of cut links.
pub struct ProxyNet {
    shared: Arc<Shared>,
    listen_ports: Vec<u16>,
}

impl Default for ProxyNet {
    fn default() -> Self {
        ProxyNet::new()
    }
}

impl ProxyNet {
    pub fn new() -> ProxyNet {
        ProxyNet {
            shared: Arc::new(Shared::default()),
            listen_ports: Vec::new(),
        }
    }

    /// Starts a proxy that forwards to `127.0.0.1:target_port`; returns the port it listens on
    /// (bound here, so nobody else can take it).
    pub fn add_destination(&mut self, target_port: u16) -> Result<u16, String> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind a proxy port: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("proxy local_addr: {e}"))?
            .port();
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name(format!("proxy-{port}"))
            .spawn(move || accept_loop(listener, target_port, shared))
            .map_err(|e| format!("spawn proxy thread: {e}"))?;
        self.listen_ports.push(port);
        Ok(port)
    }

    /// Loses what `from` sends to `to` (member IDs) until healed.
    pub fn cut(&self, from: u64, to: u64, mode: CutMode) {
        self.shared.cuts.lock().insert((from, to), mode);
    }

    pub fn heal(&self, from: u64, to: u64) {
        self.shared.cuts.lock().remove(&(from, to));
    }

    pub fn heal_all(&self) {
        self.shared.cuts.lock().clear();
    }

    pub fn links_seen(&self) -> BTreeSet<(u64, u64)> {
        self.shared.links_seen.lock().clone()
    }

    /// Stops accepting and closes every open connection.
    pub fn shutdown(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        for (_, (a, b)) in std::mem::take(&mut *self.shared.open.lock()) {
            let _ = a.shutdown(Shutdown::Both);
            if let Some(b) = b {
                let _ = b.shutdown(Shutdown::Both);
            }
        }
        for port in &self.listen_ports {
            // Wake the acceptor so it sees `stopped`.
            let _ = TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], *port)),
                Duration::from_millis(200),
            );
        }
    }
}

impl Drop for ProxyNet {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: TcpListener, target_port: u16, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = shared.clone();
        let _ = std::thread::Builder::new()
            .name("proxy-conn".into())
            .spawn(move || serve(stream, target_port, shared));
    }
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(array)
}

/// Forwards one connection, obeying the link's state until either side closes.
fn serve(mut sender: TcpStream, target_port: u16, shared: Arc<Shared>) {
    let connection = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let _ = sender.set_read_timeout(Some(Duration::from_secs(3)));
    // A plain HTTP request (`GET /members`, asked by joining members and proxies) is not a
    // Raft link: it passes untouched.
    let mut first = [0u8; 4];
    if matches!(sender.peek(&mut first), Ok(4)) && &first == b"GET " {
        let _ = sender.set_read_timeout(None);
        if let Some(mut receiver) = connect_and_pipe_back(&sender, &[], target_port) {
            let _ = std::io::copy(&mut sender, &mut receiver);
        }
        return;
    }
    let mut handshake = [0u8; HANDSHAKE_BYTES];
    if sender.read_exact(&mut handshake).is_err() {
        return;
    }
    let link = (le_u64(&handshake[16..24]), le_u64(&handshake[24..32]));
    shared.links_seen.lock().insert(link);
    let _ = sender.set_read_timeout(Some(POLL));
    if let Ok(clone) = sender.try_clone() {
        shared.open.lock().insert(connection, (clone, None));
    }
    let mut receiver: Option<TcpStream> = None;
    match shared.mode(link) {
        Some(CutMode::Reset) => {
            finish(&shared, connection, &sender, None);
            return;
        }
        Some(CutMode::Blackhole) => {}
        None => match connect_and_pipe_back(&sender, &handshake, target_port) {
            Some(stream) => {
                if let Ok(clone) = stream.try_clone() {
                    if let Some(entry) = shared.open.lock().get_mut(&connection) {
                        entry.1 = Some(clone);
                    }
                }
                receiver = Some(stream);
            }
            None => {
                finish(&shared, connection, &sender, None);
                return;
            }
        },
    }
    // Forwarding (receiver is Some) or draining a blackholed link (receiver is None).
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if shared.stopped.load(Ordering::Acquire) {
            break;
        }
        match (shared.mode(link), receiver.is_some()) {
            (Some(CutMode::Reset), _) => break,
            (Some(CutMode::Blackhole), true) => {
                // Stop delivering: the receiver loses the rest of this connection.
                if let Some(stream) = receiver.take() {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
            (None, false) => break, // healed: make the sender reconnect afresh
            _ => {}
        }
        let read = match sender.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        // Look again: a cut that came while we were reading loses this data.
        let mode = shared.mode(link);
        if let (None, Some(stream)) = (mode, receiver.as_mut()) {
            if stream.write_all(&buffer[..read]).is_err() {
                break;
            }
        } else if let (Some(CutMode::Blackhole), Some(stream)) = (mode, receiver.take()) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
    finish(&shared, connection, &sender, receiver.as_ref());
}

/// Connects to the real listener, replays the handshake and copies the answer (and anything
/// else the receiver writes) back to the sender on a thread of its own.
fn connect_and_pipe_back(
    sender: &TcpStream,
    handshake: &[u8],
    target_port: u16,
) -> Option<TcpStream> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], target_port));
    let mut receiver = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    let _ = receiver.set_nodelay(true);
    let _ = sender.set_nodelay(true);
    receiver.write_all(handshake).ok()?;
    let mut back_from = receiver.try_clone().ok()?;
    let mut back_to = sender.try_clone().ok()?;
    std::thread::Builder::new()
        .name("proxy-back".into())
        .spawn(move || {
            let _ = std::io::copy(&mut back_from, &mut back_to);
            // The receiver closed: so does the sender's side (a snapshot sender waits for
            // exactly this close to know the snapshot was taken).
            let _ = back_to.shutdown(Shutdown::Both);
        })
        .ok()?;
    Some(receiver)
}

fn finish(shared: &Shared, connection: u64, sender: &TcpStream, receiver: Option<&TcpStream>) {
    let _ = sender.shutdown(Shutdown::Both);
    if let Some(receiver) = receiver {
        let _ = receiver.shutdown(Shutdown::Both);
    }
    shared.open.lock().remove(&connection);
}
