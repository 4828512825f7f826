//! Reading a request's body whole, or knowing that it did not arrive whole.
//!
//! tiny_http 0.12 ends a body early without an error in two cases: a `Content-Length` body
//! over 1 KiB whose connection ends before it (its reader stops at the end of the stream),
//! and a chunked body whose connection ends inside a chunk. Read as it came, such a body
//! made a write of the part that arrived (found by hand: `value=` and 1,494 of 2,000 declared
//! bytes, then the client's half-close, stored the cut value and answered 201). etcd (Go)
//! answers error 210 with the cause `unexpected EOF` and changes nothing; so does this module's
//! caller now. A `Content-Length` body is checked by counting. A chunked body cut inside a
//! chunk looks whole through tiny_http's decoder (it answers end of body; a cut inside a
//! chunk-size line it reports as an error), so after a chunked body the client's connection
//! is looked at ([`crate::api::socket_scan::client_stopped_sending`]): a body that ended where
//! the client also stopped sending is taken as cut. A client that sends a whole chunked body
//! and then shuts its sending side before the body is read is refused too (etcd would take
//! it); no common client does that, and a refused write can be sent again where a cut one
//! would have been stored.
//!
//! A request with `Connection: upgrade` (what `curl --http2` sends on a plain URL, asking for
//! `h2c`) gets the raw connection from tiny_http as its body, so reading to the end waited
//! until the client closed. Go ignores the upgrade and frames the body as usual; here the body
//! is framed by its `Content-Length`, or by [`ChunkedBody`], whose cuts are all seen.
//!
//! Chunked framing (RFC 9112 §7.1), as [`ChunkedBody`] reads it:
//!
//! ```text
//! chunk   = size-in-hex [ ";" extension ] CRLF  data (size bytes)  CRLF
//! body    = *chunk  "0" [ ";" extension ] CRLF  *( trailer-line CRLF )  CRLF
//! ```

use std::io::{BufRead, Read};

use tiny_http::Request;

/// Why a body could not be read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The connection ended before the body did.
    Incomplete {
        declared_bytes: Option<u64>,
        received_bytes: u64,
    },
    /// The chunked framing is broken.
    BadChunk { reason: &'static str },
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Go's io.ErrUnexpectedEOF, which etcd reports as the cause.
            BodyError::Incomplete { .. } => write!(f, "unexpected EOF"),
            BodyError::BadChunk { reason } => write!(f, "{reason}"),
        }
    }
}

/// The longest chunk-size or trailer line read.
const MAX_CHUNK_LINE_BYTES: usize = 4096;

/// True if a `name` header of `request` contains `token`, in any ASCII case. Allocates
/// nothing: it runs for every request (see [`super::body_threads::body_may_wait`]).
pub fn header_contains(request: &Request, name: &'static str, token: &str) -> bool {
    request
        .headers()
        .iter()
        .filter(|h| h.field.equiv(name))
        .any(|h| {
            h.value
                .as_str()
                .as_bytes()
                .windows(token.len())
                .any(|window| window.eq_ignore_ascii_case(token.as_bytes()))
        })
}

/// True if `request` asks for a protocol upgrade (`Connection: upgrade`), in which case
/// tiny_http hands it the raw connection as its body.
pub fn asks_upgrade(request: &Request) -> bool {
    header_contains(request, "Connection", "upgrade")
}

/// True if `request` declares a chunked body.
fn is_chunked(request: &Request) -> bool {
    header_contains(request, "Transfer-Encoding", "chunked")
}

/// Reads `request`'s body, at most `limit + 1` bytes (enough to tell "too large"). Fails if
/// the body ends before its framing says it does.
pub fn read_whole_body(request: &mut Request, limit: usize) -> Result<Vec<u8>, BodyError> {
    let declared = request.body_length().map(|n| n as u64);
    let at_most = limit as u64 + 1;
    let upgrade = asks_upgrade(request);
    let chunked = declared.is_none() && is_chunked(request);
    let mut body = Vec::new();
    let reader = request.as_reader();
    let read = match (upgrade, declared) {
        (false, _) => reader.take(at_most).read_to_end(&mut body),
        (true, Some(declared)) => reader.take(declared.min(at_most)).read_to_end(&mut body),
        (true, None) if chunked => {
            let mut chunked = ChunkedBody::new(std::io::BufReader::new(reader));
            return match (&mut chunked).take(at_most).read_to_end(&mut body) {
                Ok(_) => Ok(body),
                Err(_) => Err(chunked.failure.unwrap_or(BodyError::Incomplete {
                    declared_bytes: None,
                    received_bytes: body.len() as u64,
                })),
            };
        }
        (true, None) => Ok(0),
    };
    let received_bytes = body.len() as u64;
    let cut = |declared_bytes| BodyError::Incomplete {
        declared_bytes,
        received_bytes,
    };
    if chunked && !upgrade && read.is_ok() {
        let stopped = request
            .remote_addr()
            .and_then(|client| crate::api::socket_scan::client_stopped_sending(*client));
        if stopped == Some(true) {
            return Err(cut(None));
        }
    }
    match (read, declared) {
        // tiny_http's chunked decoder fails alike on a cut and on bad framing; a cut is what
        // a client that goes away mid-upload causes.
        (Err(_), declared) => Err(cut(declared)),
        (Ok(_), Some(declared)) if received_bytes < declared.min(at_most) => {
            Err(cut(Some(declared)))
        }
        (Ok(_), _) => Ok(body),
    }
}

/// A strict reader of a chunked body from `inner`: it ends only at the last chunk and its
/// trailer, and fails on a cut or a malformed line (recorded in `failure`).
pub struct ChunkedBody<R: BufRead> {
    inner: R,
    /// Bytes of the current chunk not read yet.
    left_in_chunk: u64,
    /// The last chunk and its trailer have been read.
    done: bool,
    /// Data bytes returned so far.
    received_bytes: u64,
    /// Why reading failed, once it has.
    pub failure: Option<BodyError>,
}

impl<R: BufRead> ChunkedBody<R> {
    pub fn new(inner: R) -> Self {
        ChunkedBody {
            inner,
            left_in_chunk: 0,
            done: false,
            received_bytes: 0,
            failure: None,
        }
    }

    fn fail(&mut self, error: BodyError) -> std::io::Error {
        self.failure = Some(error.clone());
        std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string())
    }

    fn cut(&mut self) -> std::io::Error {
        let received_bytes = self.received_bytes;
        self.fail(BodyError::Incomplete {
            declared_bytes: None,
            received_bytes,
        })
    }

    /// One line without its CRLF; fails on a cut or an overlong line.
    fn line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let read = (&mut self.inner)
            .take(MAX_CHUNK_LINE_BYTES as u64 + 2)
            .read_until(b'\n', &mut line)?;
        if read == 0 || line.last() != Some(&b'\n') {
            return Err(if line.len() > MAX_CHUNK_LINE_BYTES {
                self.fail(BodyError::BadChunk {
                    reason: "chunk line too long",
                })
            } else {
                self.cut()
            });
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }

    /// Reads the next chunk-size line; at the last chunk, reads the trailer too.
    fn next_chunk(&mut self) -> std::io::Result<()> {
        let line = self.line()?;
        let size_text = line.split(|b| *b == b';').next().unwrap_or_default();
        let size_text = std::str::from_utf8(size_text).unwrap_or("").trim();
        let size = if size_text.is_empty() || size_text.len() > 16 {
            None
        } else {
            u64::from_str_radix(size_text, 16).ok()
        };
        let Some(size) = size else {
            return Err(self.fail(BodyError::BadChunk {
                reason: "invalid byte in chunk length",
            }));
        };
        if size > 0 {
            self.left_in_chunk = size;
            return Ok(());
        }
        loop {
            if self.line()?.is_empty() {
                self.done = true;
                return Ok(());
            }
        }
    }
}

impl<R: BufRead> Read for ChunkedBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.failure.is_some() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "chunked body already failed",
            ));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left_in_chunk == 0 {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
            if self.done {
                return Ok(0);
            }
        }
        let wanted = buf
            .len()
            .min(self.left_in_chunk.min(usize::MAX as u64) as usize);
        let read = self.inner.read(&mut buf[..wanted])?;
        if read == 0 {
            return Err(self.cut());
        }
        self.left_in_chunk -= read as u64;
        self.received_bytes += read as u64;
        if self.left_in_chunk == 0 && !self.line()?.is_empty() {
            return Err(self.fail(BodyError::BadChunk {
                reason: "malformed chunked encoding",
            }));
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(wire: &[u8]) -> Result<Vec<u8>, BodyError> {
        let mut reader = ChunkedBody::new(wire);
        let mut out = Vec::new();
        match reader.read_to_end(&mut out) {
            Ok(_) => Ok(out),
            Err(_) => Err(reader.failure.expect("a failure is recorded")),
        }
    }

    #[test]
    fn whole_chunked_bodies_are_decoded_with_extensions_and_trailers() {
        assert_eq!(
            decode(b"5\r\nvalue\r\n3;x=y\r\n=ab\r\n0\r\n\r\n").unwrap(),
            b"value=ab"
        );
        assert_eq!(decode(b"0\r\nTrailer: 1\r\n\r\n").unwrap(), b"");
        assert_eq!(decode(b"A\nabcdefghij\n0\n\n").unwrap(), b"abcdefghij");
    }

    #[test]
    fn every_cut_of_a_chunked_body_is_an_error_never_a_shorter_body() {
        let wire = b"14\r\nvalue=abcdefghijklmn\r\n3\r\nxyz\r\n0\r\n\r\n";
        assert_eq!(decode(wire).unwrap(), b"value=abcdefghijklmnxyz");
        for end in 0..wire.len() {
            let decoded = decode(&wire[..end]);
            assert!(
                decoded.is_err(),
                "cut at {end} decoded as {:?}",
                decoded.map(|b| String::from_utf8_lossy(&b).into_owned())
            );
        }
    }

    #[test]
    fn malformed_framing_is_reported() {
        assert!(matches!(
            decode(b"zz\r\nab\r\n0\r\n\r\n"),
            Err(BodyError::BadChunk { .. })
        ));
        assert!(matches!(
            decode(b"2\r\nabX\r\n0\r\n\r\n"),
            Err(BodyError::BadChunk { .. })
        ));
        let long = [b"1".repeat(MAX_CHUNK_LINE_BYTES + 10), b"\r\n".to_vec()].concat();
        assert!(matches!(decode(&long), Err(BodyError::BadChunk { .. })));
        assert!(matches!(
            decode(b"FFFFFFFFFFFFFFFFF\r\n"),
            Err(BodyError::BadChunk { .. })
        ));
    }
}
