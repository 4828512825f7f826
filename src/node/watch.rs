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
//! Responses are written by hand: a response head with `Transfer-Encoding: chunked`, then one
//! chunk per event, then (for one-shot watches) the terminating `0\r\n\r\n`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// The open response of one parked watch.
pub struct WatchSink {
    pub id: WatcherId,
    pub stream: bool,
    client: Option<SocketAddr>,
    /// Events queued for this sink and not yet written.
    backlog: AtomicUsize,
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
        writer.write_all(&message)?;
        writer.flush()?;
        if last {
            state.writer = None;
        }
        Ok(())
    }

    /// Ends the response cleanly (the terminating chunk), as etcd does when it drops a watcher.
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
    deliveries: Sender<Delivery>,
    store: Arc<RwLock<Store>>,
    /// Ports of the client listeners whose connections the parked watches use.
    listener_ports: Mutex<Vec<u16>>,
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
        let (deliveries, queue) = crossbeam_channel::bounded(DELIVERY_QUEUE_CAPACITY);
        let hub = Arc::new(WatchHub {
            sinks: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            max_parked,
            deliveries,
            store,
            listener_ports: Mutex::new(Vec::new()),
        });
        for n in 0..delivery_threads.max(1) {
            let hub = Arc::downgrade(&hub);
            let queue: Receiver<Delivery> = queue.clone();
            std::thread::Builder::new()
                .name(format!("watch-delivery-{n}"))
                .spawn(move || {
                    for delivery in queue.iter() {
                        let Some(hub) = hub.upgrade() else { return };
                        hub.deliver(delivery);
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
        let ports = self.listener_ports.lock().clone();
        // Read after listing the sinks: every sink's connection existed before this read, so
        // one that is not established now was closed or reset by its client.
        let Some(live) = crate::node::closed::live_connections() else {
            return;
        };
        for sink in watched {
            let gone = sink
                .client
                .is_some_and(|client| !ports.iter().any(|port| live.contains(&(*port, client))));
            if gone {
                self.drop_watcher(&sink);
            }
        }
    }

    /// Registers a client listener's port (connections to it can be reaped).
    pub fn add_listener_port(&self, port: u16) {
        self.listener_ports.lock().push(port);
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
    pub fn fire(&self, fired: Vec<(WatcherId, Vec<u8>)>) {
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
            let delivery = Delivery {
                sink: sink.clone(),
                body: Arc::new(body),
            };
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                self.deliveries.try_send(delivery)
            {
                self.drop_watcher(&sink);
            }
        }
    }

    fn deliver(&self, delivery: Delivery) {
        let sink = delivery.sink;
        let last = !sink.stream;
        if sink.stream {
            sink.backlog.fetch_sub(1, Ordering::AcqRel);
        }
        if sink.write_event(&delivery.body, last).is_err() {
            self.drop_watcher(&sink);
        }
    }

    /// Ends a watcher: removes it from the store and from here, and closes its response.
    fn drop_watcher(&self, sink: &Arc<WatchSink>) {
        self.sinks.lock().remove(&sink.id);
        self.store.write().remove_watcher(sink.id);
        sink.finish();
    }
}
