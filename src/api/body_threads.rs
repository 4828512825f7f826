//! Requests whose body may still be on its way run on threads of their own, not on a worker.
//!
//! tiny_http 0.12 reads a body of at most 1 KiB together with the request head, on its own
//! thread for the connection. A larger body, a chunked one, one behind `Expect: 100-continue`
//! and anything after `Connection: upgrade` are read from the socket by whoever reads the
//! request, and that read waits for the client. On a worker, a client that sends a large body
//! slowly held the worker for as long as it took, so as many slow uploads as there are
//! workers (16 by default) stopped every other client (found by hand: 20 uploads of 100 KB,
//! one byte per second, and `/version` timed out). Go holds only that connection's goroutine.
//!
//! Such a request is run instead on a thread started for it, at most [`MAX_BODY_THREADS`] at
//! once (a thread ends with its request). Past that bound a request runs where it was taken,
//! as before: the bound keeps slow clients from starting threads without end, and within it
//! they hold no worker. A request that waited for its connection's turn is no different: its
//! body may still be arriving too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tiny_http::Request;

/// Threads running requests with unread bodies, at most, per server.
pub const MAX_BODY_THREADS: usize = 256;

/// The largest body tiny_http reads with the head (see its `Request` constructor).
const BODY_READ_WITH_HEAD_BYTES: usize = 1024;

/// True if reading `request`'s body may wait for its client: tiny_http did not read the body
/// with the head.
pub fn body_may_wait(request: &Request) -> bool {
    use super::request_body::{asks_upgrade, header_contains};
    if asks_upgrade(request) {
        return true;
    }
    match request.body_length() {
        Some(0) => false,
        // tiny_http accepts no `Expect` but `100-continue`, so containing it is being it.
        Some(declared) => {
            declared > BODY_READ_WITH_HEAD_BYTES
                || header_contains(request, "Expect", "100-continue")
        }
        None => request
            .headers()
            .iter()
            .any(|h| h.field.equiv("Transfer-Encoding")),
    }
}

/// Starts threads for requests with unread bodies, up to [`MAX_BODY_THREADS`] at once.
#[derive(Clone)]
pub struct BodyThreads {
    /// Threads started and not yet ended.
    /// Invariant: at most [`MAX_BODY_THREADS`], raised only by a successful reservation.
    running: Arc<AtomicUsize>,
    /// The name of the threads (`{name}-body`).
    name: String,
}

impl BodyThreads {
    pub fn new(name: &str) -> BodyThreads {
        BodyThreads {
            running: Arc::new(AtomicUsize::new(0)),
            name: format!("{name}-body"),
        }
    }

    /// Threads running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Runs `job` on a thread of its own if one may be started; otherwise gives `job` back.
    pub fn try_spawn<J: FnOnce() + Send + 'static>(&self, job: J) -> Result<(), J> {
        let reserved = self
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < MAX_BODY_THREADS).then_some(running + 1)
            })
            .is_ok();
        if !reserved {
            return Err(job);
        }
        // The job moves into the thread only if the thread starts: kept in a slot until then.
        let slot = Arc::new(parking_lot::Mutex::new(Some(job)));
        let running = self.running.clone();
        let in_thread = slot.clone();
        let spawned = std::thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || {
                let job = in_thread.lock().take();
                if let Some(job) = job {
                    job();
                }
                running.fetch_sub(1, Ordering::AcqRel);
            });
        match spawned {
            Ok(_) => Ok(()),
            Err(error) => {
                self.running.fetch_sub(1, Ordering::AcqRel);
                eprintln!("raftkv: cannot start a thread for a request body: {error}");
                let job = slot.lock().take().expect("the thread did not start");
                Err(job)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_threads_up_to_the_bound_and_are_given_back_beyond_it() {
        let threads = BodyThreads::new("test");
        let (release_tx, release) = crossbeam_channel::unbounded::<()>();
        let (started_tx, started) = crossbeam_channel::unbounded::<()>();
        for _ in 0..MAX_BODY_THREADS {
            let release = release.clone();
            let started_tx = started_tx.clone();
            let spawned = threads.try_spawn(move || {
                started_tx.send(()).unwrap();
                let _ = release.recv();
            });
            assert!(spawned.is_ok(), "below the bound a thread starts");
        }
        for _ in 0..MAX_BODY_THREADS {
            started.recv().unwrap();
        }
        assert_eq!(threads.running(), MAX_BODY_THREADS);
        let given_back = threads.try_spawn(|| panic!("must not run on a thread"));
        assert!(given_back.is_err(), "at the bound the job is given back");
        drop(release_tx);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while threads.running() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(threads.running(), 0, "ended threads are counted out");
        let (done_tx, done) = crossbeam_channel::bounded(1);
        assert!(threads.try_spawn(move || done_tx.send(()).unwrap()).is_ok());
        done.recv().unwrap();
    }
}
