//! The responder threads: they render and write the responses of requests that were answered
//! by the Raft loop (writes, `quorum=true` reads) instead of by the worker that parsed them.
//!
//! A worker that parsed a write hands the request to the Raft loop with a
//! [`crate::node::Completion`] and goes back to take the next request; when the entry is
//! applied, the loop completes it, and the completion queues a job here. The loop itself never
//! renders or touches a socket (a write to a client that does not read could block it), and
//! a write holds no worker while it is replicated and synced.
//!
//! Bounds: a fixed number of threads. The queue is not bounded by a count of its own: it holds
//! at most one job per request handed to the Raft loop, and those are bounded by the loop's
//! request queue and by the per-connection order (one request of a connection at a time,
//! [`super::sequencer`]). A job blocks its thread only while a client leaves megabytes of
//! responses unread (a full socket buffer).

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

/// One response to render and write.
pub type Job = Box<dyn FnOnce() + Send>;

/// The queue the responders take jobs from. A mutex and a condition variable rather than a
/// channel: an idle responder parks at once (a channel's receiver spins and yields first,
/// which on a two-core machine under load took CPU from the threads doing the work).
struct Queue {
    state: Mutex<QueueState>,
    job_queued: Condvar,
}

struct QueueState {
    jobs: VecDeque<Job>,
    /// Set when every `Responders` handle is gone: the threads finish the queue and end.
    /// Invariant: never unset once set.
    closing: bool,
}

/// The responder pool's queue. The threads end when the last clone is dropped and the queue
/// is empty.
#[derive(Clone)]
pub struct Responders {
    handle: Arc<PoolHandle>,
}

/// The queue, shared with the threads; dropping it (with the last `Responders`) closes it.
struct PoolHandle(Arc<Queue>);

impl Drop for PoolHandle {
    fn drop(&mut self) {
        self.0.state.lock().closing = true;
        self.0.job_queued.notify_all();
    }
}

impl Responders {
    /// Starts `threads` responder threads (at least one).
    pub fn start(threads: usize) -> Self {
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState {
                jobs: VecDeque::new(),
                closing: false,
            }),
            job_queued: Condvar::new(),
        });
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("client-responder-{n}"))
                .spawn(move || {
                    while let Some(job) = next_job(&queue) {
                        job();
                    }
                })
                .expect("spawning a client responder");
        }
        Responders {
            handle: Arc::new(PoolHandle(queue)),
        }
    }

    /// Queues `job` for the next free responder.
    pub fn queue(&self, job: Job) {
        let queue = &self.handle.0;
        queue.state.lock().jobs.push_back(job);
        queue.job_queued.notify_one();
    }
}

/// The next job, waiting for one; None once the pool is closing and the queue is empty.
fn next_job(queue: &Queue) -> Option<Job> {
    let mut state = queue.state.lock();
    loop {
        if let Some(job) = state.jobs.pop_front() {
            return Some(job);
        }
        if state.closing {
            return None;
        }
        queue.job_queued.wait(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_the_responder_threads() {
        let responders = Responders::start(2);
        let (done, finished) = crossbeam_channel::unbounded();
        for n in 0..10 {
            let done = done.clone();
            responders.queue(Box::new(move || {
                let name = std::thread::current().name().map(str::to_string);
                let _ = done.send((n, name));
            }));
        }
        let mut seen: Vec<u32> = Vec::new();
        for _ in 0..10 {
            let (n, name) = finished
                .recv_timeout(std::time::Duration::from_secs(5))
                .expect("job ran");
            assert!(name.unwrap_or_default().starts_with("client-responder-"));
            seen.push(n);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn jobs_queued_before_the_pool_is_dropped_still_run() {
        let responders = Responders::start(1);
        let (done, finished) = crossbeam_channel::unbounded();
        let gate = Arc::new(parking_lot::Mutex::new(()));
        let held = gate.lock();
        {
            let gate = gate.clone();
            let done = done.clone();
            responders.queue(Box::new(move || {
                drop(gate.lock());
                let _ = done.send(std::thread::current().name().map(str::to_string));
            }));
        }
        let done_later = done.clone();
        responders.queue(Box::new(move || {
            let _ = done_later.send(None);
        }));
        drop(responders);
        drop(held);
        let first = finished.recv_timeout(std::time::Duration::from_secs(5));
        let second = finished.recv_timeout(std::time::Duration::from_secs(5));
        assert!(
            first.is_ok() && second.is_ok(),
            "queued jobs ran after the drop"
        );
    }
}
