//! Per-connection ordering of pipelined requests.
//!
//! tiny_http queues the next request of a keep-alive connection as soon as the body of the
//! previous one has been read, so two workers can run one connection's requests at the same
//! time: a GET pipelined behind a PUT could be answered before the PUT is applied, and the
//! client would not read its own write. Go's server (etcd) runs a connection's requests one
//! after another. Here each worker takes a [`Ticket`] for the connection (identified by the
//! client's address, unique while the connection is open) right when it receives a request,
//! under the same lock as the receive so tickets follow arrival order, and a request runs only
//! after every earlier ticket of that connection is finished.
//!
//! A request's turn lasts until its response is written, not until its worker returns: a
//! write handed to the Raft loop finishes its turn on the responder that writes its answer
//! ([`super::responders`]), so a GET pipelined behind a PUT reads the PUT; a parked watch
//! finishes its turn when its response ends, so later requests on that connection wait
//! until then, as they do behind a long poll in Go.
//!
//! A request whose turn has not come holds no thread: [`ConnectionSequencer::admit`] keeps it
//! with its connection and the worker goes on. When the turn before it finishes, the thread
//! that finishes it sends the request, with its turn, to the sequencer's ready channel, where
//! a runner thread takes it. (Workers that waited for their turn could all be held by one
//! client that pipelined requests behind a long poll, and then no other client was served.)
//! A connection may keep [`MAX_DEFERRED_PER_CONNECTION`] requests waiting; admitting more
//! says so, and the caller ends the connection: tiny_http reads ahead without a limit, so
//! nothing else would bound them.
//!
//! Progress: the oldest unfinished ticket of a connection is always running (admitted as
//! ready, or sent to the ready channel when the one before it finished), and each turn ends
//! when its response is written (or, for a watch, ends), so a connection's requests always
//! advance.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use crossbeam_channel::Sender;
use parking_lot::Mutex;

/// Requests of one connection that may wait for their turn at once.
pub const MAX_DEFERRED_PER_CONNECTION: usize = 64;

/// The turns of one connection.
/// Invariant: `finished <= issued`; an entry with `finished == issued` is removed; `deferred`
/// holds tickets above `finished`, sorted by ticket number.
#[derive(Debug)]
struct Turns<T> {
    issued: u64,
    finished: u64,
    deferred: VecDeque<(u64, T)>,
}

/// Hands out and enforces per-connection turns for items of type `T` (requests).
#[derive(Debug)]
pub struct ConnectionSequencer<T: Send> {
    turns: Mutex<BTreeMap<SocketAddr, Turns<T>>>,
    /// Where a deferred item goes, with its turn, when the turn comes.
    ready: Sender<(T, TurnGuard<T>)>,
}

/// A request's place in its connection's order. Requests without a known client address
/// (not TCP) are not ordered.
#[derive(Debug)]
pub struct Ticket {
    connection: Option<SocketAddr>,
    number: u64,
}

/// What [`ConnectionSequencer::admit`] decided.
pub enum Admission<T: Send> {
    /// The item's turn has come: run it now.
    Run(T, TurnGuard<T>),
    /// It waits with its connection and will be sent to the ready channel.
    Deferred {
        /// The connection's waiting items now, this one included. Above
        /// [`MAX_DEFERRED_PER_CONNECTION`] the caller must end the connection.
        waiting: usize,
        connection: SocketAddr,
    },
}

impl<T: Send> ConnectionSequencer<T> {
    /// A sequencer that sends deferred items to `ready` when their turn comes.
    pub fn new(ready: Sender<(T, TurnGuard<T>)>) -> Self {
        ConnectionSequencer {
            turns: Mutex::new(BTreeMap::new()),
            ready,
        }
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
            deferred: VecDeque::new(),
        });
        let number = entry.issued;
        entry.issued += 1;
        Ticket {
            connection: Some(address),
            number,
        }
    }

    /// Runs `item` now if `ticket`'s turn has come, or keeps it until then. Never blocks.
    pub fn admit(self: &Arc<Self>, ticket: Ticket, item: T) -> Admission<T> {
        let Some(address) = ticket.connection else {
            return Admission::Run(item, self.guard(ticket));
        };
        let mut turns = self.turns.lock();
        let Some(entry) = turns.get_mut(&address) else {
            panic!(
                "sequencer: admitting ticket {} of {address}, which has no turns",
                ticket.number
            );
        };
        if entry.finished == ticket.number {
            drop(turns);
            return Admission::Run(item, self.guard(ticket));
        }
        assert!(
            entry.finished < ticket.number,
            "sequencer: ticket {} of {address} admitted after its turn ended (finished {})",
            ticket.number,
            entry.finished
        );
        // Workers admit after they let go of the receive lock, so tickets may come in out of
        // order; keep them sorted.
        let at = entry.deferred.partition_point(|(n, _)| *n < ticket.number);
        entry.deferred.insert(at, (ticket.number, item));
        Admission::Deferred {
            waiting: entry.deferred.len(),
            connection: address,
        }
    }

    fn guard(self: &Arc<Self>, ticket: Ticket) -> TurnGuard<T> {
        TurnGuard {
            sequencer: self.clone(),
            ticket: Some(ticket),
        }
    }

    /// Marks `ticket` finished; if the connection's next item waits, sends it on with its turn.
    fn finish(self: &Arc<Self>, ticket: Ticket) {
        let Some(address) = ticket.connection else {
            return;
        };
        let next = {
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
            let finished = entry.finished;
            if finished == entry.issued {
                turns.remove(&address);
                None
            } else if entry.deferred.front().is_some_and(|(n, _)| *n == finished) {
                entry.deferred.pop_front().map(|(number, item)| {
                    let next = Ticket {
                        connection: Some(address),
                        number,
                    };
                    (item, next)
                })
            } else {
                None
            }
        };
        if let Some((item, next)) = next {
            // If no runner is left (the server is going away), the item and its turn are
            // dropped here, which finishes that turn too.
            let _ = self.ready.send((item, self.guard(next)));
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

/// An item running in its turn; dropping it finishes the turn.
pub struct TurnGuard<T: Send> {
    sequencer: Arc<ConnectionSequencer<T>>,
    /// Invariant: `Some` until dropped.
    ticket: Option<Ticket>,
}

impl<T: Send> std::fmt::Debug for TurnGuard<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnGuard")
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl<T: Send> Drop for TurnGuard<T> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.sequencer.finish(ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::Receiver;

    type Ready = Receiver<(u32, TurnGuard<u32>)>;

    fn sequencer() -> (Arc<ConnectionSequencer<u32>>, Ready) {
        let (ready_tx, ready) = crossbeam_channel::unbounded();
        (Arc::new(ConnectionSequencer::new(ready_tx)), ready)
    }

    fn address(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn run(admission: Admission<u32>) -> (u32, TurnGuard<u32>) {
        match admission {
            Admission::Run(item, turn) => (item, turn),
            Admission::Deferred { .. } => panic!("expected to run at once"),
        }
    }

    fn deferred(admission: Admission<u32>) -> usize {
        match admission {
            Admission::Deferred { waiting, .. } => waiting,
            Admission::Run(item, _) => panic!("item {item} ran out of turn"),
        }
    }

    #[test]
    fn a_later_request_waits_without_a_thread_and_runs_when_the_earlier_one_finishes() {
        let (sequencer, ready) = sequencer();
        let first = sequencer.ticket(address(1000));
        let second = sequencer.ticket(address(1000));
        let third = sequencer.ticket(address(1000));
        let (_, first_turn) = run(sequencer.admit(first, 1));
        assert_eq!(deferred(sequencer.admit(second, 2)), 1);
        assert_eq!(deferred(sequencer.admit(third, 3)), 2);
        assert!(ready.try_recv().is_err(), "nothing runs before its turn");
        drop(first_turn);
        let (item, second_turn) = ready.try_recv().expect("the second is sent on");
        assert_eq!(item, 2);
        assert!(ready.try_recv().is_err(), "the third waits for the second");
        drop(second_turn);
        let (item, third_turn) = ready.try_recv().expect("then the third");
        assert_eq!(item, 3);
        drop(third_turn);
        assert_eq!(sequencer.busy_connections(), 0);
    }

    #[test]
    fn tickets_admitted_out_of_order_still_run_in_order() {
        let (sequencer, ready) = sequencer();
        let tickets: Vec<Ticket> = (0..4).map(|_| sequencer.ticket(address(1000))).collect();
        let mut tickets = tickets.into_iter();
        let first = tickets.next().unwrap();
        let (second, third, fourth) = (
            tickets.next().unwrap(),
            tickets.next().unwrap(),
            tickets.next().unwrap(),
        );
        deferred(sequencer.admit(fourth, 4));
        deferred(sequencer.admit(second, 2));
        let (_, first_turn) = run(sequencer.admit(first, 1));
        drop(first_turn);
        let (item, second_turn) = ready.try_recv().unwrap();
        assert_eq!(item, 2);
        drop(second_turn);
        assert!(ready.try_recv().is_err(), "the third is not admitted yet");
        let (item, third_turn) = run(sequencer.admit(third, 3));
        assert_eq!(item, 3);
        drop(third_turn);
        let (item, fourth_turn) = ready.try_recv().unwrap();
        assert_eq!(item, 4);
        drop(fourth_turn);
        assert_eq!(sequencer.busy_connections(), 0);
    }

    #[test]
    fn a_ticket_admitted_after_its_turn_came_runs_at_once() {
        let (sequencer, ready) = sequencer();
        let first = sequencer.ticket(address(1000));
        let second = sequencer.ticket(address(1000));
        drop(run(sequencer.admit(first, 1)));
        let (item, turn) = run(sequencer.admit(second, 2));
        assert_eq!(item, 2);
        drop(turn);
        assert!(ready.try_recv().is_err());
        assert_eq!(sequencer.busy_connections(), 0);
    }

    #[test]
    fn other_connections_and_unknown_addresses_do_not_wait() {
        let (sequencer, _ready) = sequencer();
        let busy = sequencer.ticket(address(1000));
        let other = sequencer.ticket(address(1001));
        let unknown = sequencer.ticket(None);
        let busy = run(sequencer.admit(busy, 1));
        drop(run(sequencer.admit(other, 2)));
        drop(run(sequencer.admit(unknown, 3)));
        assert_eq!(sequencer.busy_connections(), 1);
        assert!(sequencer.is_busy(address(1000).unwrap()));
        drop(busy);
        assert_eq!(sequencer.busy_connections(), 0);
    }

    #[test]
    fn a_panicking_handler_still_finishes_its_turn() {
        let (sequencer, ready) = sequencer();
        let first = sequencer.ticket(address(1000));
        let second = sequencer.ticket(address(1000));
        let (_, turn) = run(sequencer.admit(first, 1));
        assert_eq!(deferred(sequencer.admit(second, 2)), 1);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _turn = turn;
            panic!("handler failed");
        }));
        assert!(outcome.is_err());
        let (item, turn) = ready.try_recv().expect("the next request is sent on");
        assert_eq!(item, 2);
        drop(turn);
        assert_eq!(sequencer.busy_connections(), 0);
    }

    #[test]
    fn without_runners_waiting_requests_are_dropped_and_their_turns_finished() {
        let (sequencer, ready) = sequencer();
        let tickets: Vec<Ticket> = (0..3).map(|_| sequencer.ticket(address(1000))).collect();
        let mut tickets = tickets.into_iter();
        let (_, first) = run(sequencer.admit(tickets.next().unwrap(), 1));
        for (n, ticket) in tickets.enumerate() {
            deferred(sequencer.admit(ticket, n as u32 + 2));
        }
        drop(ready);
        drop(first);
        assert_eq!(sequencer.busy_connections(), 0);
    }

    #[test]
    #[should_panic(expected = "out of turn")]
    fn finishing_out_of_turn_is_a_broken_invariant() {
        let (sequencer, _ready) = sequencer();
        let _first = sequencer.ticket(address(1000));
        let second = sequencer.ticket(address(1000));
        sequencer.finish(second);
    }
}
