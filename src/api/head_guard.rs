//! Bounds the request head a client connection can make tiny_http buffer.
//!
//! tiny_http 0.12 reads a request line and its headers into a growing buffer, with no limit:
//! a client that sends one endless header line makes the server hold every byte of it (a
//! 300 MiB line held 200 MiB of memory until the client left). Go's server, and so etcd,
//! refuses a head over 1 MiB with `431 Request Header Fields Too Large` and closes the
//! connection. tiny_http has no hook for that, but the kernel counts every connection's bytes
//! ([`super::socket_scan`]): a connection that keeps receiving while the server sends it
//! nothing is in the middle of one request.
//!
//! So at every look (the pool nudger's, every 10-100 ms) the guard remembers, per connection,
//! the bytes received when it last saw the server send something. When a connection has
//! received more than [`HeadGuard::limit_bytes`] since then (a head of [`MAX_HEAD_BYTES`],
//! like Go's, plus the largest body the server accepts, plus slack: the guard cannot tell a
//! head from a body being uploaded, so it must allow both), it is refused in two steps, as
//! Go refuses one: first, unless one of its requests is still being answered, it is sent
//! etcd's 431 response and its sending side is shut down (the client reads the 431 and an
//! end of stream); at the next look, if it is still open, it is aborted: `connect(2)` with
//! `AF_UNSPEC` dissolves the TCP connection (a reset to the client, both queues dropped)
//! while the descriptor stays tiny_http's, whose next read fails, so it drops the connection
//! and its buffer. (Shutting down the receiving side is not enough: data that keeps
//! arriving keeps being read.) What a connection can make the server hold is therefore about
//! the limit plus what arrives in two looks.
//!
//! Requests pipelined behind a parked watch also arrive without an answer; they are queued in
//! tiny_http's memory, so the same bound applies to them.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::socket_scan::{is_still, ClientSocket, SocketKey};

/// The request head Go's server accepts (`http.DefaultMaxHeaderBytes`).
pub const MAX_HEAD_BYTES: u64 = 1 << 20;

/// Slack on top of a head and a body (Go allows 4 KiB over its limit; requests also carry
/// their own framing).
const SLACK_BYTES: u64 = 64 << 10;

/// Go's answer to an oversized head, byte for byte.
pub const REFUSAL: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large";

/// What to do to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send the refusal (unless answering) and shut down the sending side.
    Refuse,
    /// Dissolve the connection (it was refused at the look before and is still open).
    Abort,
}

/// What the guard remembers between looks.
#[derive(Debug)]
pub struct HeadGuard {
    /// Bytes a connection may receive without being sent anything.
    limit_bytes: u64,
    /// Per connection: (bytes sent, bytes received when that count was first seen).
    /// Invariant: only connections present at the last look.
    quiet_since: BTreeMap<SocketKey, (u64, u64)>,
    /// Connections refused at the last look.
    refused: BTreeSet<SocketKey>,
}

impl HeadGuard {
    /// A guard for a server that accepts bodies of up to `max_body_bytes`.
    pub fn new(max_body_bytes: u64) -> HeadGuard {
        HeadGuard {
            limit_bytes: MAX_HEAD_BYTES
                .saturating_add(max_body_bytes)
                .saturating_add(SLACK_BYTES),
            quiet_since: BTreeMap::new(),
            refused: BTreeSet::new(),
        }
    }

    /// Bytes a connection may receive while the server sends it nothing.
    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    /// Takes the client connections seen now; returns what to do to which.
    pub fn look(&mut self, sockets: &[ClientSocket]) -> Vec<(SocketKey, Step)> {
        let mut steps = Vec::new();
        let mut now = BTreeMap::new();
        let mut refused = BTreeSet::new();
        for socket in sockets {
            if self.refused.contains(&socket.key) {
                steps.push((socket.key, Step::Abort));
                continue;
            }
            let mut entry = (socket.sent_bytes, socket.received_bytes);
            if let Some(&(sent, received)) = self.quiet_since.get(&socket.key) {
                // A descriptor reused for a new connection of the same client address would
                // show smaller counts: start over then.
                if sent == socket.sent_bytes && received <= socket.received_bytes {
                    entry = (sent, received);
                    if socket.received_bytes - received > self.limit_bytes {
                        steps.push((socket.key, Step::Refuse));
                        refused.insert(socket.key);
                        continue;
                    }
                }
            }
            now.insert(socket.key, entry);
        }
        self.quiet_since = now;
        self.refused = refused;
        steps
    }
}

/// Takes `step` on connection `key` on local port `port`. Refusing sends [`REFUSAL`] unless
/// `answering` (a response of its own may be half written) and shuts down the sending side;
/// aborting dissolves the connection. Nothing is done if the descriptor no longer is that
/// connection (and were it reused in between by anything but a TCP socket, both calls would
/// fail on it harmlessly). Never blocks.
pub fn take_step(key: SocketKey, step: Step, port: u16, answering: bool) {
    let (fd, peer) = key;
    if !is_still(fd, port, peer) {
        return;
    }
    if step == Step::Abort {
        // SAFETY: an all-zero sockaddr with family AF_UNSPEC, valid for the call's length;
        // connect(2) with AF_UNSPEC disconnects a TCP socket and leaves the descriptor open.
        unsafe {
            let mut unspecified: libc::sockaddr = std::mem::zeroed();
            unspecified.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
            libc::connect(
                fd,
                &unspecified,
                std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
            );
        }
        return;
    }
    eprintln!(
        "raftkv: refusing connection from {peer}: more than the request size limit received without an answer (an endless request head?)"
    );
    close_sending(fd, (!answering).then_some(REFUSAL));
}

/// Sends `answer`, if any, on socket `fd` without blocking (a partial send only shortens it)
/// and shuts down the socket's sending side, so the client reads the answer and then the end
/// of the stream. The caller has just checked that `fd` is the connection it means; the
/// descriptor stays its owner's.
pub(crate) fn close_sending(fd: i32, answer: Option<&[u8]>) {
    if let Some(bytes) = answer {
        // SAFETY: sends from a valid buffer; MSG_DONTWAIT never blocks, MSG_NOSIGNAL raises no
        // SIGPIPE.
        unsafe {
            libc::send(
                fd,
                bytes.as_ptr().cast::<libc::c_void>(),
                bytes.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            );
        }
    }
    // SAFETY: shutdown on a descriptor the caller checked; it is not closed here.
    unsafe {
        libc::shutdown(fd, libc::SHUT_WR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn socket(fd: i32, received: u64, sent: u64) -> ClientSocket {
        ClientSocket {
            key: (fd, SocketAddr::from(([127, 0, 0, 1], 40_000 + fd as u16))),
            unread_bytes: 0,
            received_bytes: received,
            sent_bytes: sent,
        }
    }

    #[test]
    fn a_connection_receiving_past_the_limit_without_an_answer_is_refused() {
        let mut guard = HeadGuard::new(1000);
        let limit = guard.limit_bytes();
        assert_eq!(limit, MAX_HEAD_BYTES + 1000 + SLACK_BYTES);
        assert!(guard.look(&[socket(5, 100, 50)]).is_empty());
        assert!(
            guard.look(&[socket(5, 100 + limit, 50)]).is_empty(),
            "at the limit"
        );
        let key = socket(5, 0, 0).key;
        assert_eq!(
            guard.look(&[socket(5, 101 + limit, 50)]),
            vec![(key, Step::Refuse)]
        );
        assert_eq!(
            guard.look(&[socket(5, 200 + limit, 50)]),
            vec![(key, Step::Abort)],
            "still open at the next look: aborted"
        );
        assert!(
            guard.look(&[socket(5, 300 + limit, 50)]).is_empty(),
            "aborted once; what is left is counted afresh"
        );
    }

    #[test]
    fn a_refused_connection_that_closed_is_forgotten() {
        let mut guard = HeadGuard::new(0);
        let limit = guard.limit_bytes();
        assert!(guard.look(&[socket(5, 0, 0)]).is_empty());
        assert_eq!(guard.look(&[socket(5, limit + 1, 0)]).len(), 1);
        assert!(guard.look(&[]).is_empty(), "it closed after the refusal");
        assert!(
            guard.look(&[socket(5, 0, 0)]).is_empty(),
            "a new one starts fresh"
        );
    }

    #[test]
    fn an_answer_starts_the_count_over() {
        let mut guard = HeadGuard::new(0);
        let limit = guard.limit_bytes();
        assert!(guard.look(&[socket(5, 0, 0)]).is_empty());
        assert!(guard.look(&[socket(5, limit, 0)]).is_empty());
        // The server answered: what came before no longer counts.
        assert!(guard.look(&[socket(5, limit + 10, 300)]).is_empty());
        assert!(guard.look(&[socket(5, 2 * limit + 10, 300)]).is_empty());
        assert_eq!(guard.look(&[socket(5, 2 * limit + 11, 300)]).len(), 1);
    }

    #[test]
    fn connections_are_counted_apart_and_forgotten_when_gone() {
        let mut guard = HeadGuard::new(0);
        let limit = guard.limit_bytes();
        assert!(guard.look(&[socket(5, 0, 0), socket(6, 0, 0)]).is_empty());
        assert_eq!(
            guard.look(&[socket(5, limit + 1, 0), socket(6, limit, 0)]),
            vec![(socket(5, 0, 0).key, Step::Refuse)]
        );
        // 6 left; a new connection on the same descriptor and client address starts fresh.
        assert!(guard.look(&[]).is_empty());
        assert!(guard.look(&[socket(6, limit + 1, 0)]).is_empty());
        // So does one whose counts went down (a reused descriptor seen between looks).
        assert!(guard.look(&[socket(6, 10, 0)]).is_empty());
        assert!(guard.look(&[socket(6, 10 + limit, 0)]).is_empty());
    }
}
