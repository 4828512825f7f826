//! A null replicated server: the least work a leader on tiny_http and its followers can do
//! and still answer a write only once a majority of members hold it durably.
//!
//! No Raft, no store, no JSON: the leader's worker threads read each request's body and hand
//! the request to one replicator thread, which takes whatever has queued up as one batch,
//! sends it to every follower first, writes it to its own file and syncs it
//! (`fdatasync`), then passes the batch on to an answerer thread. Each follower reads what
//! has arrived, writes it to its own file, syncs once, and acknowledges the highest batch it
//! holds. The answerer answers a batch (a fixed body, one write per request) once the leader
//! and enough followers for a majority hold it. Batches are pipelined: the replicator does
//! not wait for acknowledgements.
//!
//! With one member (no followers) it is the null pipeline: the design card's write flow (a
//! worker hands the request over a channel to the thread that batches, the batch is synced
//! once, the answers are written) with nothing else, and with the fewest hand-offs: the
//! batching thread writes the answers itself (raftkv hands them to responder threads, so
//! that a slow client never holds the Raft loop). It is the least a single member can do
//! per write.
//!
//! That is a leader with group commit, send-before-persist and pipelining, which is the best
//! a replicated server here can do; every real one does at least this much per write. Its
//! rate divided by a 3-member etcd's is the highest cluster write ratio reachable with
//! tiny_http and synced writes on this machine. The members are threads of this process (the
//! load generator's), all on the machine's cores, as a real cluster's processes are. Each
//! member writes into a pre-written file, overwriting it in a ring, because overwriting
//! syncs faster than appending on this disk: the null members get the cheapest sync there is.
//!
//! # Peer protocol (127.0.0.1 TCP, one connection per follower)
//!
//! Leader to follower, one frame per batch:
//!
//! ```text
//! +----------------------+----------------------+----------------------------------+
//! | payload length: u32  | batch number: u64    | payload: the batch's request     |
//! | little endian        | little endian, from 1|  bodies, each as u32 LE length + |
//! |                      | in sending order     |  bytes                           |
//! +----------------------+----------------------+----------------------------------+
//! ```
//!
//! Follower to leader, one acknowledgement per sync:
//!
//! ```text
//! +--------------------------------------------------+
//! | highest batch number now durable: u64 LE         |
//! +--------------------------------------------------+
//! ```

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crossbeam_channel::{Receiver, Sender};

use crate::bench::floor::{start_tiny_http_workers, NullServer};

/// Bytes of each member's pre-written file; writes wrap around it.
const RING_BYTES: u64 = 16 << 20;
/// Request bodies are read up to this many bytes.
const MAX_BODY_BYTES: u64 = 1 << 20;
/// Requests taken into one batch at most.
const MAX_BATCH_REQUESTS: usize = 4096;
/// Frame header: payload length (u32) and batch number (u64).
const FRAME_HEADER_BYTES: usize = 12;

/// A running null cluster; its threads end when it is dropped.
pub struct NullCluster {
    /// The leader's HTTP side; dropping it stops the workers, which ends the replicator,
    /// whose end closes the follower connections, which ends everything else.
    leader: NullServer,
}

impl NullCluster {
    /// The leader's client URL.
    pub fn url(&self) -> String {
        self.leader.url()
    }
}

/// A member's file: pre-written, then overwritten in a ring.
pub(crate) struct RingFile {
    file: File,
    /// Invariant: below `RING_BYTES`.
    offset: u64,
}

impl RingFile {
    pub(crate) fn create(path: &Path) -> std::io::Result<RingFile> {
        let mut file = File::create(path)?;
        crate::bench::disk::write_zeros_and_sync(&mut file, RING_BYTES)?;
        Ok(RingFile { file, offset: 0 })
    }

    /// Writes `bytes` at the ring's position and syncs the data.
    pub(crate) fn write_and_sync(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = (RING_BYTES - self.offset) as usize;
            let now = rest.len().min(room);
            self.file.write_all_at(&rest[..now], self.offset)?;
            self.offset = (self.offset + now as u64) % RING_BYTES;
            rest = &rest[now..];
        }
        self.file.sync_data()
    }
}

/// A batch on its way to being answered.
struct Batch {
    number: u64,
    requests: Vec<tiny_http::Request>,
}

/// What the answerer hears.
enum Answerable {
    /// The leader holds this batch durably.
    LeaderSynced(Batch),
    /// Follower `follower` holds every batch up to this number durably.
    FollowerSynced { follower: usize, number: u64 },
}

/// Starts a null cluster of `members` (at least 1) with `workers` HTTP threads on the
/// leader; each member's file goes under `dir`. One member is the null pipeline: the leader
/// alone, answering each batch once it synced it.
pub fn start_null_cluster(
    members: usize,
    workers: usize,
    dir: &Path,
) -> std::io::Result<NullCluster> {
    assert!(members >= 1, "a null cluster needs a member, got none");
    let mut follower_links = Vec::new();
    for n in 1..members {
        follower_links.push(start_follower(&dir.join(format!("null-follower-{n}")))?);
    }
    let leader_file = RingFile::create(&dir.join("null-leader"))?;
    let (answerable_tx, answerable) = crossbeam_channel::unbounded::<Answerable>();
    let mut links = Vec::new();
    for (follower, link) in follower_links.into_iter().enumerate() {
        let acks = link.try_clone()?;
        let tx = answerable_tx.clone();
        std::thread::Builder::new()
            .name(format!("null-acks-{follower}"))
            .spawn(move || read_acks(acks, follower, tx))?;
        links.push(link);
    }
    let (proposals_tx, proposals) = crossbeam_channel::unbounded::<(tiny_http::Request, Vec<u8>)>();
    if members == 1 {
        // Alone, the leader answers each batch itself once synced: no hand-off to an answerer.
        drop((answerable_tx, answerable));
        let answer_here = |batch: Batch| {
            answer_requests(batch.requests, &crate::bench::floor::null_response());
            true
        };
        std::thread::Builder::new()
            .name("null-replicator".into())
            .spawn(move || replicate(proposals, links, leader_file, answer_here))?;
    } else {
        let followers_for_majority = members / 2;
        std::thread::Builder::new()
            .name("null-answerer".into())
            .spawn(move || answer(answerable, members - 1, followers_for_majority))?;
        let pass_on =
            move |batch: Batch| answerable_tx.send(Answerable::LeaderSynced(batch)).is_ok();
        std::thread::Builder::new()
            .name("null-replicator".into())
            .spawn(move || replicate(proposals, links, leader_file, pass_on))?;
    }
    let leader = start_tiny_http_workers(workers, "null-leader", move |mut request| {
        let mut body = Vec::new();
        let _ = request
            .as_reader()
            .take(MAX_BODY_BYTES)
            .read_to_end(&mut body);
        let _ = proposals_tx.send((request, body));
    })?;
    Ok(NullCluster { leader })
}

/// Starts a follower thread on a free port and returns the leader's end of its connection.
fn start_follower(path: &Path) -> std::io::Result<TcpStream> {
    let mut ring = RingFile::create(path)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    std::thread::Builder::new()
        .name("null-follower".into())
        .spawn(move || {
            let Ok((connection, _)) = listener.accept() else {
                return;
            };
            let _ = connection.set_nodelay(true);
            follow(connection, &mut ring);
        })?;
    let link = TcpStream::connect(address)?;
    link.set_nodelay(true)?;
    Ok(link)
}

/// A follower's loop: read what arrived, persist the whole frames, acknowledge the last.
fn follow(mut connection: TcpStream, ring: &mut RingFile) {
    let mut buffer: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let read = match connection.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buffer.extend_from_slice(&chunk[..read]);
        let (complete_bytes, last_number) = whole_frames(&buffer);
        let Some(number) = last_number else { continue };
        if ring.write_and_sync(&buffer[..complete_bytes]).is_err() {
            return;
        }
        buffer.drain(..complete_bytes);
        if connection.write_all(&number.to_le_bytes()).is_err() {
            return;
        }
    }
}

/// The length of the whole frames at the start of `bytes` and the last one's batch number.
fn whole_frames(bytes: &[u8]) -> (usize, Option<u64>) {
    let mut at = 0;
    let mut last = None;
    while bytes.len() - at >= FRAME_HEADER_BYTES {
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let end = at + FRAME_HEADER_BYTES + length;
        if end > bytes.len() {
            break;
        }
        last = Some(u64::from_le_bytes(
            bytes[at + 4..at + 12].try_into().expect("8 bytes"),
        ));
        at = end;
    }
    (at, last)
}

/// Builds the frame of batch `number` from the request bodies.
fn frame(number: u64, bodies: &[Vec<u8>]) -> Vec<u8> {
    let payload: usize = bodies.iter().map(|b| 4 + b.len()).sum();
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + payload);
    out.extend_from_slice(&(payload as u32).to_le_bytes());
    out.extend_from_slice(&number.to_le_bytes());
    for body in bodies {
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
    }
    out
}

/// The leader's replicator: batch, send to followers, persist, then `synced(batch)` (false
/// ends it).
fn replicate(
    proposals: Receiver<(tiny_http::Request, Vec<u8>)>,
    mut links: Vec<TcpStream>,
    mut ring: RingFile,
    mut synced: impl FnMut(Batch) -> bool,
) {
    let mut number = 0u64;
    while let Ok(first) = proposals.recv() {
        let queued = proposals.try_iter().take(MAX_BATCH_REQUESTS - 1);
        let (requests, bodies): (Vec<_>, Vec<_>) = std::iter::once(first).chain(queued).unzip();
        number += 1;
        let bytes = frame(number, &bodies);
        for link in links.iter_mut() {
            // A follower that is gone just stops acknowledging.
            let _ = link.write_all(&bytes);
        }
        if ring.write_and_sync(&bytes).is_err() {
            return;
        }
        let batch = Batch { number, requests };
        if !synced(batch) {
            return;
        }
    }
}

/// Reads follower `follower`'s acknowledgements and passes them on.
fn read_acks(mut link: TcpStream, follower: usize, answerable: Sender<Answerable>) {
    let mut ack = [0u8; 8];
    while link.read_exact(&mut ack).is_ok() {
        let number = u64::from_le_bytes(ack);
        if answerable
            .send(Answerable::FollowerSynced { follower, number })
            .is_err()
        {
            return;
        }
    }
}

/// Answers each batch once the leader and `needed` of `followers` followers hold it.
fn answer(answerable: Receiver<Answerable>, followers: usize, needed: usize) {
    let response = crate::bench::floor::null_response();
    let mut synced = vec![0u64; followers];
    let mut waiting: VecDeque<Batch> = VecDeque::new();
    while let Ok(event) = answerable.recv() {
        match event {
            Answerable::LeaderSynced(batch) => waiting.push_back(batch),
            Answerable::FollowerSynced { follower, number } => {
                synced[follower] = synced[follower].max(number)
            }
        }
        let majority_holds = majority_synced(&synced, needed);
        while waiting
            .front()
            .is_some_and(|batch| batch.number <= majority_holds)
        {
            let batch = waiting.pop_front().expect("front exists");
            answer_requests(batch.requests, &response);
        }
    }
}

/// Writes `response` to each request, one write apiece.
fn answer_requests(requests: Vec<tiny_http::Request>, response: &[u8]) {
    for request in requests {
        let mut writer = request.into_writer();
        let _ = writer.write_all(response).and_then(|_| writer.flush());
    }
}

/// The highest batch number that at least `needed` followers hold (0 when fewer do).
fn majority_synced(synced: &[u64], needed: usize) -> u64 {
    if needed == 0 {
        return u64::MAX;
    }
    let mut sorted = synced.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.get(needed - 1).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_whole_and_only_whole() {
        let first = frame(1, &[b"a=1".to_vec(), b"bb".to_vec()]);
        let second = frame(2, &[b"value=x".to_vec()]);
        let mut bytes = first.clone();
        bytes.extend_from_slice(&second);
        assert_eq!(whole_frames(&bytes), (bytes.len(), Some(2)));
        assert_eq!(
            whole_frames(&bytes[..bytes.len() - 1]),
            (first.len(), Some(1)),
            "a cut second frame is left for the next read"
        );
        assert_eq!(whole_frames(&bytes[..5]), (0, None));
    }

    #[test]
    fn a_majority_is_counted_from_the_followers_that_hold_the_most() {
        assert_eq!(majority_synced(&[3, 7], 1), 7, "3 members: one follower");
        assert_eq!(majority_synced(&[3, 7, 5, 1], 2), 5, "5 members: two");
        assert_eq!(majority_synced(&[0, 0], 1), 0);
    }

    /// Sends three PUTs of `body` on one connection to `address`; each must be answered.
    fn put_three(address: std::net::SocketAddr, body: &str) {
        let mut connection = TcpStream::connect(address).unwrap();
        for n in 0..3 {
            let request = format!(
                "PUT /v2/keys/k{n} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            connection.write_all(request.as_bytes()).unwrap();
            let mut head = [0u8; 12];
            connection.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200", "write {n} answered");
            // Read the rest of the fixed response.
            let rest = crate::bench::floor::null_response().len() - head.len();
            let mut tail = vec![0u8; rest];
            connection.read_exact(&mut tail).unwrap();
        }
    }

    /// How many times `body` is in member file `name` under `dir`.
    fn copies_held(dir: &Path, name: &str, body: &str) -> usize {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        bytes
            .windows(body.len())
            .filter(|w| *w == body.as_bytes())
            .count()
    }

    #[test]
    fn writes_are_answered_only_once_the_leader_and_a_majority_stored_them() {
        let dir = crate::bench::process::TempDir::new("null-cluster-test").unwrap();
        let cluster = start_null_cluster(3, 2, &dir.path).unwrap();
        let body = "value=hello-null-cluster";
        put_three(cluster.leader.address, body);
        // The leader synced before answering; at least one follower did too (a majority).
        assert_eq!(copies_held(&dir.path, "null-leader", body), 3);
        let followers = [
            copies_held(&dir.path, "null-follower-1", body),
            copies_held(&dir.path, "null-follower-2", body),
        ];
        assert!(
            followers.contains(&3),
            "a majority holds every answered write: followers hold {followers:?}"
        );
    }

    #[test]
    fn the_one_member_pipeline_answers_writes_it_stored() {
        let dir = crate::bench::process::TempDir::new("null-pipeline-test").unwrap();
        let pipeline = start_null_cluster(1, 2, &dir.path).unwrap();
        let body = "value=hello-null-pipeline";
        put_three(pipeline.leader.address, body);
        assert_eq!(copies_held(&dir.path, "null-leader", body), 3);
        assert_eq!(majority_synced(&[], 0), u64::MAX, "no follower is needed");
    }
}
