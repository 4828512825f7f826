//! How the Raft loop answers whoever is waiting for a proposal or a read barrier.
//!
//! A [`Completion`] is called exactly once: with the [`Applied`] answer, with
//! [`ProposeError::TimedOut`] when the loop drops it past its deadline, or with
//! [`ProposeError::Stopped`] when it is dropped unanswered (the loop stopped). Two kinds exist:
//!
//! - a channel, for callers that block until the answer (the members API, internal writes,
//!   tests): [`Completion::channel`];
//! - a callback, for the client API: the worker that parsed a write hands the request itself
//!   to the loop and goes back to take the next request, and the callback queues the
//!   rendering and writing of the response for the responder threads
//!   ([`crate::api::responders`]). A write then holds no worker while it is replicated and
//!   synced, so a handful of workers serve any number of in-flight writes, and the worker is
//!   not woken again for the answer (one thread hand-off fewer per write).
//!
//! The callback runs on the thread that completes it (usually the Raft loop), so it must only
//! queue work: never block, never write to a socket.

use crossbeam_channel::Receiver;

use super::{Applied, ProposeError};

/// What a completion is called with.
pub type Outcome = Result<Applied, ProposeError>;

type Callback = Box<dyn FnOnce(Outcome) + Send>;

/// A one-shot answer to a proposal or read barrier.
pub struct Completion {
    /// Invariant: `Some` until called; called exactly once (by `complete` or by `drop`).
    callback: Option<Callback>,
}

impl Completion {
    /// A completion that calls `callback` (which must not block; see the module doc).
    pub fn callback(callback: impl FnOnce(Outcome) + Send + 'static) -> Self {
        Completion {
            callback: Some(Box::new(callback)),
        }
    }

    /// A completion whose outcome arrives on the returned receiver.
    pub fn channel() -> (Self, Receiver<Outcome>) {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let completion = Completion::callback(move |outcome| {
            // The waiter may have given up (its own deadline): nobody to tell.
            let _ = sender.send(outcome);
        });
        (completion, receiver)
    }

    /// Answers with `outcome`.
    pub fn complete(mut self, outcome: Outcome) {
        if let Some(callback) = self.callback.take() {
            callback(outcome);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(callback) = self.callback.take() {
            callback(Err(ProposeError::Stopped));
        }
    }
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("answered", &self.callback.is_none())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counting() -> (
        Completion,
        Arc<AtomicUsize>,
        Arc<parking_lot::Mutex<Option<Outcome>>>,
    ) {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(parking_lot::Mutex::new(None));
        let completion = {
            let calls = calls.clone();
            let seen = seen.clone();
            Completion::callback(move |outcome| {
                calls.fetch_add(1, Ordering::SeqCst);
                *seen.lock() = Some(outcome);
            })
        };
        (completion, calls, seen)
    }

    #[test]
    fn complete_calls_the_callback_once_with_the_outcome() {
        let (completion, calls, seen) = counting();
        completion.complete(Err(ProposeError::TimedOut));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(
            seen.lock().take(),
            Some(Err(ProposeError::TimedOut))
        ));
    }

    #[test]
    fn dropping_unanswered_says_stopped() {
        let (completion, calls, seen) = counting();
        drop(completion);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(
            seen.lock().take(),
            Some(Err(ProposeError::Stopped))
        ));
    }

    #[test]
    fn a_channel_completion_delivers_the_applied_answer() {
        let (completion, answer) = Completion::channel();
        completion.complete(Ok(Applied {
            outcome: Ok(None),
            raft_index: 7,
            raft_term: 2,
        }));
        let applied = answer.try_recv().expect("answered").expect("applied");
        assert_eq!((applied.raft_index, applied.raft_term), (7, 2));
    }
}
