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
//! Such a request is run instead on a thread started for it ([`super::thread_quota`]), at
//! most [`MAX_BODY_THREADS`] at once (a thread ends with its request). Past that bound a
//! request runs where it was taken, as before: the bound keeps slow clients from starting
//! threads without end, and within it they hold no worker. A request that waited for its connection's turn is no different: its
//! body may still be arriving too.

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
