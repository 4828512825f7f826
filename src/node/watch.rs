//! Parked watches: the connections of `wait=true` requests that no event has answered yet.
//!
//! A parked watch holds no worker thread. The worker that registered it leaves a [`WatchSink`]
//! here (the raw response writer of the connection, with the response head still to send) and
//! returns to the pool. When the apply thread applies an event that fires a watcher, it renders
//! the event and queues a delivery; a small pool of delivery threads writes it. The apply thread
//! never writes to a socket, so a slow or stuck watcher never stalls apply: when the delivery
//! queue is full, or a stream watcher falls more than [`STREAM_BACKLOG_LIMIT`] events behind,
//! that watcher is ended instead.
//!
//! Only a sink's delivery thread writes to it once it is parked: ending a watcher from any
//! other thread (the apply thread when the watcher falls behind, the reaper when its client
//! left, a worker making room) marks the sink ended and hands it to its delivery thread, which
//! writes the end. Writing it there matters: a client that stopped reading leaves its socket
//! full, and the write would wait (up to the client send timeout,
//! `crate::api::server::CLIENT_SEND_TIMEOUT`) with the sink's lock held; when the apply
//! thread ended such a watcher itself, it waited on that lock and every later write of the
//! member with it.
//!
//! Responses are written by hand: a response head with `Transfer-Encoding: chunked`, then one
//! chunk per event, then (for one-shot watches) the terminating `0\r\n\r\n`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};

use crate::store::{Store, WatcherId};

/// A stream watcher more than this many undelivered events behind is ended (etcd's per-watcher
/// buffer is 100 events).
pub const STREAM_BACKLOG_LIMIT: usize = 100;

/// How often parked watches are checked for clients that went away.
const REAP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Deliveries waiting for a delivery thread, across all watchers.
const DELIVERY_QUEUE_CAPACITY: usize = 16 * 1024;

/// Deliveries are handed to the delivery threads in batches of about this many (one channel
/// message and at most one wake-up per batch, not per watcher).
const DELIVERY_BATCH: usize = 32;

/// The open response of one parked watch.
pub struct WatchSink {
    pub id: WatcherId,
    pub stream: bool,
    client: Option<SocketAddr>,
    /// Events queued for this sink and not yet written.
    backlog: AtomicUsize,
    /// Set once when the watcher is ended; its delivery thread then writes the end, and skips
    /// the events still queued for it.
    /// Invariant: set only by [`WatchHub::drop_watcher`], which then hands the sink to its
    /// delivery thread exactly once.
    ended: AtomicBool,
    state: Mutex<SinkState>,
}

struct SinkState {
    /// None once the response has ended (fired one-shot, error, or dropped).
    writer: Option<Box<dyn Write + Send>>,
    /// The response head, until it has been written.
    pending_head: Option<Vec<u8>>,
}

impl WatchSink {
    /// `client` is the client's address, by which the reaper recognises the connection (on
    /// one of the hub's listener ports) once the client has closed it.
    pub fn new(
        id: WatcherId,
        stream: bool,
        writer: Box<dyn Write + Send>,
        head: Vec<u8>,
        client: Option<SocketAddr>,
    ) -> Self {
        WatchSink {
            id,
            stream,
            client,
            backlog: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
            state: Mutex::new(SinkState {
                writer: Some(writer),
                pending_head: Some(head),
            }),
        }
    }

    /// Writes the response head if it has not gone out yet (etcd flushes the head as soon as a
    /// watch is registered, before any event).
    pub fn send_head(&self) -> std::io::Result<()> {
        let mut state = self.state.lock();
        write_head(&mut state)
    }

    /// Writes one event as a chunk; ends the response when `last`.
    /// One write per event: the head (if still pending), the chunk and, for the last event,
    /// the terminating chunk go out together. Separate small writes would each wait for the
    /// client's delayed ACK (Nagle), about 40 ms apiece.
    fn write_event(&self, body: &[u8], last: bool) -> std::io::Result<()> {
        let mut state = self.state.lock();
        let head = state.pending_head.take().unwrap_or_default();
        let Some(writer) = state.writer.as_mut() else {
            return Ok(());
        };
        let mut message = head;
        push_chunk(&mut message, body, last);
        let written = writer.write_all(&message).and_then(|_| writer.flush());
        if last || written.is_err() {
            // After a failed write the response is cut mid-chunk: nothing more may follow.
            state.writer = None;
        }
        written
    }

    /// Ends the response cleanly (the terminating chunk), as etcd does when it drops a watcher.
    /// Called on the sink's delivery thread only (see the module doc).
    fn finish(&self) {
        let mut state = self.state.lock();
        if write_head(&mut state).is_ok() {
            if let Some(writer) = state.writer.as_mut() {
                let _ = writer.write_all(b"0\r\n\r\n").and_then(|_| writer.flush());
            }
        }
        state.writer = None;
    }
}

/// Appends `body` to `message` as one HTTP chunk, and the terminating chunk when `last`.
pub fn push_chunk(message: &mut Vec<u8>, body: &[u8], last: bool) {
    message.reserve(body.len() + 16);
    message.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
    message.extend_from_slice(body);
    message.extend_from_slice(b"\r\n");
    if last {
        message.extend_from_slice(b"0\r\n\r\n");
    }
}

fn write_head(state: &mut SinkState) -> std::io::Result<()> {
    if let Some(head) = state.pending_head.take() {
        if let Some(writer) = state.writer.as_mut() {
            writer.write_all(&head)?;
            writer.flush()?;
        }
    }
    Ok(())
}

struct Delivery {
    sink: Arc<WatchSink>,
    body: Arc<Vec<u8>>,
}

/// All parked watches of a node and the threads that answer them.
pub struct WatchHub {
    sinks: Mutex<BTreeMap<WatcherId, Arc<WatchSink>>>,
    next_id: AtomicU64,
    max_parked: usize,
    /// Batches of deliveries, one queue per delivery thread. A watcher's deliveries always go
    /// to the same thread ([`WatchHub::thread_for`]), so a stream watcher's events are written
    /// in the order they fired.
    /// Invariant: not empty.
    deliveries: Vec<Sender<Vec<Delivery>>>,
    /// Ended sinks whose end their delivery thread is to write, one queue per delivery thread
    /// (the same thread as the sink's deliveries).
    /// Invariant: a sink is sent once (guarded by its `ended` flag), so what waits here is
    /// bounded by the watchers ended while the thread is busy.
    ends: Vec<Sender<Arc<WatchSink>>>,
    /// Deliveries sent and not yet written.
    /// Invariant: at most `DELIVERY_QUEUE_CAPACITY` (a batch that would pass it is refused).
    queued_deliveries: AtomicUsize,
    store: Arc<RwLock<Store>>,
    /// Addresses of the client listeners whose connections the parked watches use.
    listeners: Mutex<Vec<SocketAddr>>,
}

/// Why a watch could not be parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParkError {
    TooManyWatches { limit: usize },
}

impl WatchHub {
    /// Starts `delivery_threads` delivery threads.
    pub fn start(
        store: Arc<RwLock<Store>>,
        max_parked: usize,
        delivery_threads: usize,
    ) -> Arc<Self> {
        let threads = delivery_threads.max(1);
        let (deliveries, queues): (Vec<_>, Vec<_>) = (0..threads)
            .map(|_| crossbeam_channel::bounded(DELIVERY_QUEUE_CAPACITY))
            .unzip();
        let (ends, end_queues): (Vec<_>, Vec<_>) =
            (0..threads).map(|_| crossbeam_channel::unbounded()).unzip();
        let hub = Arc::new(WatchHub {
            sinks: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            max_parked,
            deliveries,
            ends,
            queued_deliveries: AtomicUsize::new(0),
            store,
            listeners: Mutex::new(Vec::new()),
        });
        for (n, (queue, end_queue)) in queues.into_iter().zip(end_queues).enumerate() {
            let hub = Arc::downgrade(&hub);
            let queue: Receiver<Vec<Delivery>> = queue;
            let end_queue: Receiver<Arc<WatchSink>> = end_queue;
            std::thread::Builder::new()
                .name(format!("watch-delivery-{n}"))
                .spawn(move || loop {
                    crossbeam_channel::select! {
                        recv(queue) -> batch => {
                            let Ok(batch) = batch else { return };
                            let Some(hub) = hub.upgrade() else { return };
                            for delivery in batch {
                                hub.deliver(delivery);
                                hub.queued_deliveries.fetch_sub(1, Ordering::AcqRel);
                            }
                        }
                        recv(end_queue) -> sink => {
                            let Ok(sink) = sink else { return };
                            sink.finish();
                        }
                    }
                })
                .expect("spawning a watch delivery thread");
        }
        let reaper = Arc::downgrade(&hub);
        std::thread::Builder::new()
            .name("watch-reaper".into())
            .spawn(move || loop {
                std::thread::sleep(REAP_INTERVAL);
                let Some(hub) = reaper.upgrade() else { return };
                hub.reap_closed();
            })
            .expect("spawning the watch reaper");
        hub
    }

    /// Ends the parked watches whose client has closed its connection (also called before
    /// reporting the watcher count, so the count is exact at that moment, as etcd's is).
    pub fn reap_closed(&self) {
        let watched: Vec<Arc<WatchSink>> = self
            .sinks
            .lock()
            .values()
            .filter(|sink| sink.client.is_some())
            .cloned()
            .collect();
        if watched.is_empty() {
            return;
        }
        let listeners = self.listeners.lock().clone();
        // Read after listing the sinks: every sink's connection existed before this read, so
        // one that is not established now was closed or reset by its client.
        let Some(live) = crate::node::closed::live_connections(&listeners) else {
            return;
        };
        for sink in watched {
            let gone = sink.client.is_some_and(|client| {
                let client = SocketAddr::new(client.ip().to_canonical(), client.port());
                !listeners
                    .iter()
                    .any(|listener| live.contains(&(listener.port(), client)))
            });
            if gone {
                self.drop_watcher(&sink);
            }
        }
    }

    /// Registers a client listener (connections to it can be reaped).
    pub fn add_listener(&self, address: SocketAddr) {
        self.listeners.lock().push(address);
    }

    pub fn next_id(&self) -> WatcherId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Checks the parked-watch limit before a watch is registered in the store.
    /// When full, an inert sink (a stream answered from history, which nothing will ever
    /// fire again) is closed to make room, the oldest first.
    pub fn check_capacity(&self) -> Result<(), ParkError> {
        // Lock order: never hold `sinks` while taking the store lock (workers registering a
        // watch hold the store's write lock while they park).
        let streams: Vec<Arc<WatchSink>> = {
            let sinks = self.sinks.lock();
            if sinks.len() < self.max_parked {
                return Ok(());
            }
            sinks.values().filter(|sink| sink.stream).cloned().collect()
        };
        let inert = {
            let store = self.store.read();
            streams.into_iter().find(|sink| !store.has_watcher(sink.id))
        };
        match inert {
            Some(sink) => {
                self.drop_watcher(&sink);
                Ok(())
            }
            None => Err(ParkError::TooManyWatches {
                limit: self.max_parked,
            }),
        }
    }

    /// Parks a sink. Call while holding the store's write lock that registered the watcher, so
    /// that the apply thread cannot fire it before the sink is here.
    pub fn park(&self, sink: Arc<WatchSink>) {
        self.sinks.lock().insert(sink.id, sink);
    }

    pub fn parked_count(&self) -> usize {
        self.sinks.lock().len()
    }

    /// Called by the apply thread with every watcher the last batch fired and the event body
    /// rendered for it. Never blocks.
    pub fn fire(&self, fired: Vec<(WatcherId, Arc<Vec<u8>>)>) {
        let mut batches: Vec<Vec<Delivery>> =
            (0..self.deliveries.len()).map(|_| Vec::new()).collect();
        for (id, body) in fired {
            let sink = {
                let mut sinks = self.sinks.lock();
                let Some(sink) = sinks.get(&id).cloned() else {
                    continue;
                };
                if !sink.stream {
                    sinks.remove(&id);
                }
                sink
            };
            if sink.stream && sink.backlog.fetch_add(1, Ordering::AcqRel) >= STREAM_BACKLOG_LIMIT {
                self.drop_watcher(&sink);
                continue;
            }
            let thread = self.thread_for(id);
            batches[thread].push(Delivery { sink, body });
            if batches[thread].len() == DELIVERY_BATCH {
                self.send_batch(thread, std::mem::take(&mut batches[thread]));
            }
        }
        for (thread, batch) in batches.into_iter().enumerate() {
            if !batch.is_empty() {
                self.send_batch(thread, batch);
            }
        }
    }

    /// The delivery thread that writes every event of watcher `id`.
    fn thread_for(&self, id: WatcherId) -> usize {
        (id % self.deliveries.len() as u64) as usize
    }

    /// Queues one batch for a delivery thread; when the queue is full, its watchers are ended
    /// instead (a slow reader never makes apply wait).
    fn send_batch(&self, thread: usize, batch: Vec<Delivery>) {
        let count = batch.len();
        let queued = self.queued_deliveries.fetch_add(count, Ordering::AcqRel);
        let refused = if queued + count > DELIVERY_QUEUE_CAPACITY {
            Some(batch)
        } else {
            match self.deliveries[thread].try_send(batch) {
                Ok(()) => None,
                Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => Some(batch),
            }
        };
        if let Some(batch) = refused {
            self.queued_deliveries.fetch_sub(count, Ordering::AcqRel);
            for delivery in batch {
                self.drop_watcher(&delivery.sink);
            }
        }
    }

    fn deliver(&self, delivery: Delivery) {
        let sink = delivery.sink;
        let last = !sink.stream;
        if sink.stream {
            sink.backlog.fetch_sub(1, Ordering::AcqRel);
        }
        if sink.ended.load(Ordering::Acquire) {
            return;
        }
        if sink.write_event(&delivery.body, last).is_err() {
            self.drop_watcher(&sink);
        }
    }

    /// Ends a watcher: removes it from the store and from here, and has its delivery thread
    /// close its response. Never writes to a socket, so never waits for a client.
    fn drop_watcher(&self, sink: &Arc<WatchSink>) {
        self.sinks.lock().remove(&sink.id);
        self.store.write().remove_watcher(sink.id);
        if !sink.ended.swap(true, Ordering::AcqRel) {
            // The thread is gone only when the hub is being dropped; nothing is left to end.
            let _ = self.ends[self.thread_for(sink.id)].send(sink.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A response writer that keeps what was written.
    struct Recorder(Arc<Mutex<Vec<u8>>>);

    impl Write for Recorder {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The event numbers in the chunks written (bodies are `<n>;`).
    fn numbers_written(written: &[u8]) -> Vec<u64> {
        String::from_utf8_lossy(written)
            .split(';')
            .filter_map(|part| part.rsplit('\n').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn a_stream_watcher_gets_its_events_in_the_order_they_fired() {
        // Regression: with two delivery threads taking events from one queue, a stream
        // watcher's consecutive events could be written in the wrong order.
        let hub = WatchHub::start(Arc::new(RwLock::new(Store::new())), 10, 2);
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::new(WatchSink::new(
            7,
            true,
            Box::new(Recorder(written.clone())),
            Vec::new(),
            None,
        ));
        hub.park(sink);
        let (groups, group_size) = (200u64, 40u64);
        for group in 0..groups {
            for n in group * group_size..(group + 1) * group_size {
                hub.fire(vec![(7, Arc::new(format!("{n};").into_bytes()))]);
            }
            // Stay under the stream backlog limit: let the group be written first.
            let deadline = Instant::now() + Duration::from_secs(10);
            while numbers_written(&written.lock()).len() < ((group + 1) * group_size) as usize {
                assert!(Instant::now() < deadline, "group {group} was not delivered");
                std::thread::yield_now();
            }
        }
        let numbers = numbers_written(&written.lock());
        let expected: Vec<u64> = (0..groups * group_size).collect();
        let first_out_of_order = numbers.windows(2).position(|pair| pair[0] > pair[1]);
        assert_eq!(
            first_out_of_order, None,
            "events written out of order (first at position {first_out_of_order:?})"
        );
        assert_eq!(numbers, expected);
    }
}
