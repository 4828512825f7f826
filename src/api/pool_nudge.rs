//! Keeps tiny_http's connection pool from leaving new connections unserved.
//!
//! tiny_http 0.12 serves each connection on a thread of its task pool. The pool starts a new
//! thread for a connection only when it counts no idle thread, and it counts a thread as idle
//! until that thread has woken up and taken a task. So when connections arrive together while
//! k threads are idle, every one of them is queued, k are taken, and the rest wait until a
//! thread becomes free, which the thread of a keep-alive connection never does. Nothing in
//! tiny_http's API shows that queue (found by raftkv-bench: 161 of 256 connections opened at
//! once waited until the client dialled again).
//!
//! The kernel shows it: a queued connection's request sits unread in its socket. Every
//! [`LOOK_INTERVAL`] the nudger lists this process's sockets on the listener's port that hold
//! unread bytes ([`scan_client_sockets`]: read-only, on sockets tiny_http owns; the same thread
//! runs the request-head guard of [`super::head_guard`] on the same scan). For each one that
//! already held unread bytes at the previous look, and has not been nudged for, it connects to
//! the listener once. That connection finds no idle thread (none is idle while connections
//! wait), so the pool starts a thread for it, and that thread, after this connection that
//! closes at once, takes the oldest queued one. A socket first seen unread is looked at again
//! after [`BUSY_LOOK_INTERVAL`], so a waiting connection gets its thread within about
//! `LOOK_INTERVAL + BUSY_LOOK_INTERVAL`. One blind connection per [`LOOK_INTERVAL`] is made as
//! well, so that a queued connection that sent nothing yet, or a system without `/proc`, still
//! gets a thread (one per interval).
//!
//! Each open connection is a descriptor to examine, so looks are spaced by at least
//! `SCAN_COST_SHARE` times their own duration (`next_pause`): about 2% of a core at most.
//! A look costs a few microseconds per open connection.
//!
//! A socket with unread bytes is not always queued: a request pipelined behind a long poll
//! waits in its socket too. Such a socket is nudged for once, not again while it stays
//! unread, so the cost is bounded by the number of sockets.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::head_guard::{self, HeadGuard};
use crate::api::socket_scan::{scan_client_sockets, SocketKey};

/// How often the nudger looks for waiting connections, and how often it nudges blind.
pub const LOOK_INTERVAL: Duration = Duration::from_millis(100);

/// How soon it looks again after it found sockets with unread bytes not nudged for yet.
pub const BUSY_LOOK_INTERVAL: Duration = Duration::from_millis(10);

/// The time between looks is at least this many times what a look takes.
const SCAN_COST_SHARE: u32 = 50;

/// Nudges per look at most.
const MAX_NUDGES_PER_LOOK: usize = 64;

/// The request-head guard a connection watch runs (see [`super::head_guard`]).
pub struct HeadLimit {
    pub guard: HeadGuard,
    /// True while a request of the connection from this client is being answered.
    pub answering: Box<dyn Fn(SocketAddr) -> bool + Send>,
}

/// Starts the connection watch of `server`, listening on `local_addr`: one thread that
/// looks at the client sockets, nudges the pool and, given a `head_limit`, refuses
/// connections that send an overlong request head. It ends when the server is dropped.
pub fn spawn_connection_watch(
    server: &Arc<tiny_http::Server>,
    local_addr: SocketAddr,
    mut head_limit: Option<HeadLimit>,
) {
    let weak = Arc::downgrade(server);
    let mut target = local_addr;
    if target.ip().is_unspecified() {
        target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let port = local_addr.port();
    let spawned = std::thread::Builder::new()
        .name("pool-nudge".into())
        .spawn(move || {
            let mut nudger = Nudger::default();
            let mut pause = LOOK_INTERVAL;
            let mut last_blind_nudge = Instant::now();
            loop {
                std::thread::sleep(pause);
                if weak.upgrade().is_none() {
                    return;
                }
                let started = Instant::now();
                let sockets = scan_client_sockets(port);
                if let (Some(limit), Some(sockets)) = (head_limit.as_mut(), sockets.as_ref()) {
                    for (key, step) in limit.guard.look(sockets) {
                        head_guard::take_step(key, step, port, (limit.answering)(key.1));
                    }
                }
                let unread = sockets.map(|all| {
                    all.into_iter()
                        .filter(|s| s.unread_bytes > 0)
                        .map(|s| s.key)
                        .collect()
                });
                let nudges = nudger.look(unread);
                pause = next_pause(nudger.look_soon, started.elapsed());
                let blind = last_blind_nudge.elapsed() >= LOOK_INTERVAL;
                if blind {
                    last_blind_nudge = Instant::now();
                }
                for _ in 0..nudges + usize::from(blind) {
                    let _ = TcpStream::connect_timeout(&target, LOOK_INTERVAL);
                }
            }
        });
    if let Err(error) = spawned {
        eprintln!("raftkv: cannot start the connection-pool nudger: {error}");
    }
}

/// The pause before the next look: [`BUSY_LOOK_INTERVAL`] while a socket waits to be looked
/// at again, else [`LOOK_INTERVAL`], and never less than [`SCAN_COST_SHARE`] times what the
/// last look took, so that the looks cost at most about 2% of a core however many connections
/// are open (each open connection is a descriptor to examine; looking every 100 ms whatever
/// the cost took 4% of a core with 1,000 idle keep-alive connections).
fn next_pause(look_soon: bool, last_look: Duration) -> Duration {
    let wanted = if look_soon {
        BUSY_LOOK_INTERVAL
    } else {
        LOOK_INTERVAL
    };
    wanted.max(last_look.saturating_mul(SCAN_COST_SHARE))
}

/// What the nudger remembers between looks.
#[derive(Debug, Default)]
struct Nudger {
    /// Sockets with unread bytes at the last look.
    unread: BTreeSet<SocketKey>,
    /// Sockets nudged for that have stayed unread since.
    /// Invariant: a subset of `unread`.
    nudged: BTreeSet<SocketKey>,
    /// The last look found unread sockets not nudged for yet: look again after
    /// [`BUSY_LOOK_INTERVAL`].
    look_soon: bool,
}

impl Nudger {
    /// Takes the sockets holding unread bytes now (None: cannot tell); returns how many
    /// connections to make.
    fn look(&mut self, unread_now: Option<BTreeSet<SocketKey>>) -> usize {
        let Some(unread_now) = unread_now else {
            self.unread.clear();
            self.nudged.clear();
            self.look_soon = false;
            return 0;
        };
        let waiting: Vec<SocketKey> = unread_now.intersection(&self.unread).copied().collect();
        self.nudged.retain(|key| unread_now.contains(key));
        let mut nudges = 0;
        for key in waiting {
            if nudges == MAX_NUDGES_PER_LOOK {
                break;
            }
            if self.nudged.insert(key) {
                nudges += 1;
            }
        }
        // Look again soon while some unread socket has not been nudged for: it is nudged for
        // one short interval after it was first seen.
        self.look_soon = unread_now.iter().any(|key| !self.nudged.contains(key));
        self.unread = unread_now;
        nudges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fd: i32, port: u16) -> SocketKey {
        (fd, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn a_socket_is_nudged_for_once_after_two_looks_and_again_only_when_it_comes_back() {
        let mut nudger = Nudger::default();
        let a = key(10, 5000);
        let b = key(11, 5001);
        assert_eq!(
            nudger.look(Some([a].into())),
            0,
            "seen once: maybe in flight"
        );
        assert!(nudger.look_soon, "a is looked at again soon");
        assert_eq!(
            nudger.look(Some([a, b].into())),
            1,
            "a waited a whole interval"
        );
        assert!(nudger.look_soon, "b is new");
        assert_eq!(nudger.look(Some([a, b].into())), 1, "b now; a not again");
        assert_eq!(nudger.look(Some([a, b].into())), 0);
        assert!(!nudger.look_soon, "both nudged for: no hurry");
        assert_eq!(nudger.look(Some([b].into())), 0, "a was read");
        assert_eq!(nudger.look(Some([a, b].into())), 0, "a is back: seen once");
        assert_eq!(nudger.look(Some([a, b].into())), 1, "a waited again");
        assert_eq!(
            nudger.look(None),
            0,
            "cannot tell: no nudges, memory cleared"
        );
        assert_eq!(nudger.look(Some([a].into())), 0);
    }

    #[test]
    fn looks_are_spaced_by_their_own_cost() {
        assert_eq!(next_pause(false, Duration::from_micros(50)), LOOK_INTERVAL);
        assert_eq!(
            next_pause(true, Duration::from_micros(50)),
            BUSY_LOOK_INTERVAL
        );
        assert_eq!(
            next_pause(true, Duration::from_millis(4)),
            Duration::from_millis(200),
            "a 4 ms look is followed by 200 ms without one"
        );
    }

    #[test]
    fn nudges_per_look_are_bounded() {
        let mut nudger = Nudger::default();
        let many: BTreeSet<SocketKey> = (0..200).map(|n| key(n, 6000 + n as u16)).collect();
        assert_eq!(nudger.look(Some(many.clone())), 0);
        assert_eq!(nudger.look(Some(many.clone())), MAX_NUDGES_PER_LOOK);
        assert_eq!(nudger.look(Some(many.clone())), MAX_NUDGES_PER_LOOK);
    }
}
