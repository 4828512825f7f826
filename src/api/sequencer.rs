//! Per-connection ordering of pipelined requests.
//!
//! tiny_http queues the next request of a keep-alive connection as soon as the body of the
//! previous one has been read, so two workers can run one connection's requests at the same
//! time: a GET pipelined behind a PUT could be answered before the PUT is applied, and the
//! client would not read its own write. Go's server (etcd) runs a connection's requests one
//! after another. Here each worker takes a [`Ticket`] for the connection (identified by the
//! client's address, unique while the connection is open) right when it receives a request,
//! under the same lock as the receive so tickets follow arrival order, and runs the request
//! only after every earlier ticket of that connection is finished.
//!
//! A request's turn lasts until its response is written, not until its worker returns: a
//! write handed to the Raft loop finishes its turn on the responder that writes its answer
//! ([`super::responders`]), so a GET pipelined behind a PUT reads the PUT; a parked watch
//! finishes its turn when its response ends, so later requests on that connection wait
//! until then, as they do behind a long poll in Go.
//!
//! Progress: the holder of the oldest unfinished ticket of a connection never waits, and each
//! turn ends when its response is written (or, for a watch, ends), so a connection's requests
//! always advance.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

/// The turns of one connection.
/// Invariant: `finished <= issued`; an entry with `finished == issued` is removed.
#[derive(Debug, Clone, Copy)]
struct Turns {
    issued: u64,
    finished: u64,
}

/// Hands out and enforces per-connection turns.
#[derive(Debug, Default)]
pub struct ConnectionSequencer {
    turns: Mutex<BTreeMap<SocketAddr, Turns>>,
    turn_finished: Condvar,
}

/// A request's place in its connection's order. Requests without a known client address
/// (not TCP) are not ordered.
#[derive(Debug)]
pub struct Ticket {
    connection: Option<SocketAddr>,
    number: u64,
}

impl ConnectionSequencer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next ticket of `connection`. Call in arrival order (while holding the lock
    /// that serialises receiving requests).
    pub fn ticket(&self, connection: Option<SocketAddr>) -> Ticket {
        let Some(address) = connection else {
            return Ticket {
                connection: None,
                number: 0,
            };
        };
        let mut turns = self.turns.lock();
        let entry = turns.entry(address).or_insert(Turns {
            issued: 0,
            finished: 0,
        });
        let number = entry.issued;
        entry.issued += 1;
        Ticket {
            connection: Some(address),
            number,
        }
    }

    /// Blocks until every earlier ticket of the same connection is finished.
    pub fn wait_turn(&self, ticket: &Ticket) {
        let Some(address) = ticket.connection else {
            return;
        };
        let mut turns = self.turns.lock();
        loop {
            let finished = turns.get(&address).map(|t| t.finished);
            match finished {
                Some(finished) if finished < ticket.number => {
                    self.turn_finished.wait(&mut turns);
                }
                _ => return,
            }
        }
    }

    /// Marks `ticket` finished, letting the connection's next request run.
    pub fn finish(&self, ticket: Ticket) {
        let Some(address) = ticket.connection else {
            return;
        };
        let mut turns = self.turns.lock();
        let Some(entry) = turns.get_mut(&address) else {
            panic!(
                "sequencer: finishing ticket {} of {address}, which has no turns",
                ticket.number
            );
        };
        assert!(
            entry.finished == ticket.number,
            "sequencer: finishing ticket {} of {address} out of turn (expected {})",
            ticket.number,
            entry.finished
        );
        entry.finished += 1;
        if entry.finished == entry.issued {
            turns.remove(&address);
        }
        drop(turns);
        self.turn_finished.notify_all();
    }

    /// Waits for `ticket`'s turn and returns a guard that finishes it when dropped (also when
    /// the request handler panics, so the connection's later requests are not stuck). The
    /// guard travels with the request: a write hands it to its responder, a watch to the
    /// writer of its response.
    pub fn run_in_turn(self: &Arc<Self>, ticket: Ticket) -> TurnGuard {
        self.wait_turn(&ticket);
        TurnGuard {
            sequencer: self.clone(),
            ticket: Some(ticket),
        }
    }

    /// True while the connection from `client` has an unfinished request.
    pub fn is_busy(&self, client: SocketAddr) -> bool {
        self.turns.lock().contains_key(&client)
    }

    /// Connections with unfinished requests (for tests and diagnostics).
    pub fn busy_connections(&self) -> usize {
        self.turns.lock().len()
    }
}

/// A request running in its turn; dropping it finishes the turn.
pub struct TurnGuard {
    sequencer: Arc<ConnectionSequencer>,
    /// Invariant: `Some` until dropped.
    ticket: Option<Ticket>,
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.sequencer.finish(ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn address(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn a_later_request_waits_for_the_earlier_one_of_its_connection() {
        let sequencer = Arc::new(ConnectionSequencer::new());
        let first = sequencer.ticket(address(1000));
        let second = sequencer.ticket(address(1000));
        let done_in_order = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let sequencer = sequencer.clone();
            let done_in_order = done_in_order.clone();
            std::thread::spawn(move || {
                sequencer.wait_turn(&second);
                // The first request must have finished before the second runs.
                let seen = done_in_order.load(Ordering::SeqCst);
                sequencer.finish(second);
                seen
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        sequencer.wait_turn(&first);
        done_in_order.store(1, Ordering::SeqCst);
        sequencer.finish(first);
        assert_eq!(waiter.join().expect("waiter thread"), 1);
        assert_eq!(sequencer.busy_connections(), 0);
    }

    #[test]
    fn other_connections_and_unknown_addresses_do_not_wait() {
        let sequencer = ConnectionSequencer::new();
        let busy = sequencer.ticket(address(1000));
        let other = sequencer.ticket(address(1001));
        let unknown = sequencer.ticket(None);
        sequencer.wait_turn(&other);
        sequencer.wait_turn(&unknown);
        sequencer.finish(other);
        sequencer.finish(unknown);
        assert_eq!(sequencer.busy_connections(), 1);
        sequencer.finish(busy);
        assert_eq!(sequencer.busy_connections(), 0);
    }

    #[test]
    fn a_panicking_handler_still_finishes_its_turn() {
        let sequencer = Arc::new(ConnectionSequencer::new());
        let first = sequencer.ticket(address(1000));
        let second = sequencer.ticket(address(1000));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _turn = sequencer.run_in_turn(first);
            panic!("handler failed");
        }));
        assert!(outcome.is_err());
        drop(sequencer.run_in_turn(second));
        assert_eq!(sequencer.busy_connections(), 0);
    }

    #[test]
    #[should_panic(expected = "out of turn")]
    fn finishing_out_of_turn_is_a_broken_invariant() {
        let sequencer = ConnectionSequencer::new();
        let _first = sequencer.ticket(address(1000));
        let second = sequencer.ticket(address(1000));
        sequencer.finish(second);
    }
}
