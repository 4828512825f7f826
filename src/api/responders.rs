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

use crossbeam_channel::{Receiver, Sender};

/// One response to render and write.
pub type Job = Box<dyn FnOnce() + Send>;

/// The responder pool's queue.
#[derive(Clone)]
pub struct Responders {
    jobs: Sender<Job>,
}

impl Responders {
    /// Starts `threads` responder threads (at least one). They end when every `Responders`
    /// handle is dropped and the queue is empty.
    pub fn start(threads: usize) -> Self {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        for n in 0..threads.max(1) {
            let queue: Receiver<Job> = queue.clone();
            std::thread::Builder::new()
                .name(format!("client-responder-{n}"))
                .spawn(move || {
                    for job in queue.iter() {
                        job();
                    }
                })
                .expect("spawning a client responder");
        }
        Responders { jobs }
    }

    /// Queues `job`. If the pool has stopped, the job is dropped unrun (its request, dropped
    /// unanswered, is answered 500 by tiny_http).
    pub fn queue(&self, job: Job) {
        let _ = self.jobs.send(job);
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
}
