//! Threads started for one job each, at most a fixed number at once.
//!
//! Two kinds of work must not run on a shared worker because they wait on one client for as
//! long as it likes: a request whose body is still arriving ([`super::body_threads`]) and a
//! watch the proxy streams through ([`super::proxy`]). Each gets a thread of its own, within a
//! quota so that clients cannot start threads without end. When no thread may or can be
//! started, the job's payload is given back, so the caller can still answer the request (run
//! it where it is, or refuse it): a payload moves into the thread only once the thread runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Starts named threads, each for one payload, at most `max_threads` at once.
#[derive(Clone)]
pub struct ThreadQuota {
    /// Threads started and not yet ended.
    /// Invariant: at most `max_threads`, raised only by a successful reservation.
    running: Arc<AtomicUsize>,
    max_threads: usize,
    /// The name every thread gets.
    name: String,
    /// The stack size of every thread; None for std's default.
    stack_bytes: Option<usize>,
}

/// Why [`ThreadQuota::try_spawn`] started no thread; each variant gives the payload back.
#[derive(Debug)]
pub enum Refused<P> {
    /// `max_threads` threads are running already.
    AtLimit { payload: P, max_threads: usize },
    /// The system would not start a thread.
    CannotStart { payload: P, error: std::io::Error },
}

impl<P> Refused<P> {
    /// The payload that was not handed to a thread.
    pub fn into_payload(self) -> P {
        match self {
            Refused::AtLimit { payload, .. } | Refused::CannotStart { payload, .. } => payload,
        }
    }
}

impl ThreadQuota {
    pub fn new(name: String, max_threads: usize, stack_bytes: Option<usize>) -> ThreadQuota {
        ThreadQuota {
            running: Arc::new(AtomicUsize::new(0)),
            max_threads,
            name,
            stack_bytes,
        }
    }

    /// Threads running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// The most threads running at once.
    pub fn max_threads(&self) -> usize {
        self.max_threads
    }

    /// Runs `run(payload)` on a thread of its own if one may and can be started; otherwise
    /// gives `payload` back.
    pub fn try_spawn<P: Send + 'static>(
        &self,
        payload: P,
        run: impl FnOnce(P) + Send + 'static,
    ) -> Result<(), Refused<P>> {
        let max_threads = self.max_threads;
        let reserved = self
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < max_threads).then_some(running + 1)
            })
            .is_ok();
        if !reserved {
            return Err(Refused::AtLimit {
                payload,
                max_threads,
            });
        }
        // The payload is sent once the thread exists: a closure holding it would be lost
        // with a thread that failed to start.
        let (handoff, handed) = crossbeam_channel::bounded::<P>(1);
        let running = self.running.clone();
        let mut builder = std::thread::Builder::new().name(self.name.clone());
        if let Some(bytes) = self.stack_bytes {
            builder = builder.stack_size(bytes);
        }
        let spawned = builder.spawn(move || {
            if let Ok(payload) = handed.recv() {
                run(payload);
            }
            running.fetch_sub(1, Ordering::AcqRel);
        });
        match spawned {
            Ok(_) => {
                // The thread waits in recv until this arrives; a bounded(1) send never blocks.
                let _ = handoff.send(payload);
                Ok(())
            }
            Err(error) => {
                self.running.fetch_sub(1, Ordering::AcqRel);
                Err(Refused::CannotStart { payload, error })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_threads_up_to_the_quota_and_are_given_back_beyond_it() {
        const MAX: usize = 64;
        let quota = ThreadQuota::new("test-quota".into(), MAX, Some(64 << 10));
        let (release_tx, release) = crossbeam_channel::unbounded::<()>();
        let (started_tx, started) = crossbeam_channel::unbounded::<usize>();
        for n in 0..MAX {
            let release = release.clone();
            let started_tx = started_tx.clone();
            let spawned = quota.try_spawn(n, move |n| {
                started_tx.send(n).unwrap();
                let _ = release.recv();
            });
            assert!(spawned.is_ok(), "below the quota a thread starts");
        }
        let mut ran: Vec<usize> = (0..MAX).map(|_| started.recv().unwrap()).collect();
        ran.sort();
        assert_eq!(ran, (0..MAX).collect::<Vec<_>>(), "each payload ran once");
        assert_eq!(quota.running(), MAX);
        match quota.try_spawn(7usize, |_| panic!("must not run on a thread")) {
            Err(Refused::AtLimit {
                payload,
                max_threads,
            }) => assert_eq!((payload, max_threads), (7, MAX)),
            other => panic!("at the quota the payload is given back, got {other:?}"),
        }
        drop(release_tx);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while quota.running() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(quota.running(), 0, "ended threads are counted out");
        let (done_tx, done) = crossbeam_channel::bounded(1);
        assert!(quota
            .try_spawn(done_tx, |done_tx| done_tx.send(()).unwrap())
            .is_ok());
        done.recv().unwrap();
    }
}
