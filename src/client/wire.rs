//! HTTP/1.1 response wire format, on any `BufRead`: the status line and headers (interim
//! 1xx responses skipped), body framing (`Content-Length`, chunked, until close; none for
//! HEAD/204/304), and an incremental [`BodyReader`] that can hand out a chunked watch stream
//! one line at a time. Never panics on any bytes: every malformed input is an
//! [`HttpError`].
//!
//! Chunked framing (RFC 9112 §7.1):
//! ```text
//! <hex size>[;ext]\r\n <size bytes> \r\n   ... repeated ...
//! 0[;ext]\r\n [trailer-line\r\n]* \r\n
//! ```

use std::io::{self, BufRead, Read};

use super::http::HttpError;

/// Longest status line or header line accepted, in bytes.
pub(super) const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most header lines accepted in one response.
const MAX_HEADER_COUNT: usize = 256;
/// Largest body `read_to_end` accepts, in bytes.
const MAX_BODY_BYTES: u64 = 512 * 1024 * 1024;

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header names as sent; look them up with [`Response::header`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

pub(super) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// How the rest of a body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// Invariant: `remaining` bytes of the body have not been read yet.
    Length { remaining: u64 },
    /// `in_chunk`: bytes left in the current chunk; `None` before the next size line.
    Chunked { in_chunk: Option<u64> },
    /// Body runs until the server closes the connection.
    UntilClose,
    /// The body has been read completely.
    Done,
}

/// Reads a response body incrementally; works on any `BufRead` so it can be tested with
/// readers that return one byte at a time.
#[derive(Debug)]
pub struct BodyReader<R> {
    pub(super) reader: R,
    framing: Framing,
    /// Set when the connection can carry another request once the body is done.
    pub(super) keep_alive: bool,
}

impl<R: BufRead> BodyReader<R> {
    pub(super) fn new(reader: R, framing: Framing, keep_alive: bool) -> Self {
        BodyReader {
            reader,
            framing,
            keep_alive,
        }
    }

    /// A chunked body reader over `reader` (for tests and for callers that framed the
    /// headers themselves).
    pub fn chunked(reader: R) -> Self {
        BodyReader::new(reader, Framing::Chunked { in_chunk: None }, true)
    }

    /// True once the whole body has been consumed.
    pub fn is_done(&self) -> bool {
        self.framing == Framing::Done
    }

    /// Reads up to `buf.len()` body bytes; `Ok(0)` means the body is complete.
    pub fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, io::Error> {
        loop {
            match self.framing {
                Framing::Done => return Ok(0),
                Framing::Length { remaining: 0 } => {
                    self.framing = Framing::Done;
                    return Ok(0);
                }
                Framing::Length { remaining } => {
                    let want = buf
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let got = self.reader.read(&mut buf[..want])?;
                    if got == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "body shorter than Content-Length",
                        ));
                    }
                    self.framing = Framing::Length {
                        remaining: remaining - got as u64,
                    };
                    return Ok(got);
                }
                Framing::UntilClose => {
                    let got = self.reader.read(buf)?;
                    if got == 0 {
                        self.framing = Framing::Done;
                    }
                    return Ok(got);
                }
                Framing::Chunked { in_chunk: None } => {
                    let size = read_chunk_size(&mut self.reader)?;
                    if size == 0 {
                        skip_trailers(&mut self.reader)?;
                        self.framing = Framing::Done;
                        return Ok(0);
                    }
                    self.framing = Framing::Chunked {
                        in_chunk: Some(size),
                    };
                }
                Framing::Chunked {
                    in_chunk: Some(remaining),
                } => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    let want = buf
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let got = self.reader.read(&mut buf[..want])?;
                    if got == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "stream ended inside a chunk",
                        ));
                    }
                    let left = remaining - got as u64;
                    if left == 0 {
                        expect_crlf(&mut self.reader)?;
                        self.framing = Framing::Chunked { in_chunk: None };
                    } else {
                        self.framing = Framing::Chunked {
                            in_chunk: Some(left),
                        };
                    }
                    return Ok(got);
                }
            }
        }
    }

    /// Reads body bytes up to and including the next `\n` (or the end of the body).
    /// `Ok(None)` once the body is complete. A watch stream yields one event per line.
    pub fn read_line(&mut self) -> Result<Option<Vec<u8>>, io::Error> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            if line.len() > MAX_BODY_BYTES as usize {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            match self.read_body(&mut byte)? {
                0 if line.is_empty() => return Ok(None),
                0 => return Ok(Some(line)),
                _ => {
                    line.push(byte[0]);
                    if byte[0] == b'\n' {
                        return Ok(Some(line));
                    }
                }
            }
        }
    }

    /// Reads the rest of the body.
    pub fn read_to_end(&mut self) -> Result<Vec<u8>, io::Error> {
        let mut body = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let got = self.read_body(&mut buf)?;
            if got == 0 {
                return Ok(body);
            }
            if body.len() as u64 + got as u64 > MAX_BODY_BYTES {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
            }
            body.extend_from_slice(&buf[..got]);
        }
    }
}

/// An I/O error carrying an [`HttpError`] so framing problems survive `io::Error` plumbing.
pub(super) fn framing_error(error: HttpError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

fn read_limited_line<R: BufRead>(reader: &mut R, what: &'static str) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let limit = MAX_LINE_BYTES as u64 + 1;
    reader.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if line.len() as u64 >= limit {
        return Err(framing_error(HttpError::TooLarge {
            what,
            limit: MAX_LINE_BYTES as u64,
        }));
    }
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, what));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

fn read_chunk_size<R: BufRead>(reader: &mut R) -> io::Result<u64> {
    let line = read_limited_line(reader, "chunk size line")?;
    let text = String::from_utf8_lossy(&line).to_string();
    let digits = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim_end_matches([' ', '\t']);
    let bad = || {
        framing_error(HttpError::BadChunkSize {
            found: text.clone(),
        })
    };
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(digits, 16).map_err(|_| bad())
}

fn expect_crlf<R: BufRead>(reader: &mut R) -> io::Result<()> {
    let mut pair = [0u8; 2];
    reader.read_exact(&mut pair)?;
    if &pair != b"\r\n" {
        return Err(framing_error(HttpError::BadChunkTerminator {
            found: pair.to_vec(),
        }));
    }
    Ok(())
}

fn skip_trailers<R: BufRead>(reader: &mut R) -> io::Result<()> {
    for _ in 0..MAX_HEADER_COUNT {
        if read_limited_line(reader, "chunked trailer")?.is_empty() {
            return Ok(());
        }
    }
    Err(framing_error(HttpError::TooLarge {
        what: "chunked trailer",
        limit: MAX_HEADER_COUNT as u64,
    }))
}

/// Decodes a complete response held in memory (the answer to a request with `method`).
/// Used by tests and fuzzing; never panics on any bytes.
pub fn decode_response_bytes(method: &str, bytes: &[u8]) -> Result<Response, HttpError> {
    let mut reader = io::Cursor::new(bytes);
    let as_http = |error: io::Error| -> HttpError {
        if let Some(inner) = error.get_ref().and_then(|e| e.downcast_ref::<HttpError>()) {
            return inner.clone();
        }
        match error.kind() {
            io::ErrorKind::UnexpectedEof => HttpError::UnexpectedEof {
                expected: "response",
            },
            _ => HttpError::Io {
                addr: "memory".to_string(),
                reason: error.to_string(),
            },
        }
    };
    let Head {
        status,
        reason,
        headers,
        ..
    } = read_head(&mut reader).map_err(as_http)?;
    let framing = framing_for(method, status, &headers)?;
    let body = BodyReader::new(reader, framing, false)
        .read_to_end()
        .map_err(as_http)?;
    Ok(Response {
        status,
        reason,
        headers,
        body,
    })
}

/// A parsed status line and header section.
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) reason: String,
    pub(super) headers: Vec<(String, String)>,
    /// `HTTP/1.0`: the connection closes after the response unless it says keep-alive.
    pub(super) is_http10: bool,
}

pub(super) fn read_head<R: BufRead>(reader: &mut R) -> io::Result<Head> {
    // Skip 1xx interim responses (100 Continue).
    loop {
        let line = read_limited_line(reader, "status line")?;
        let text = String::from_utf8_lossy(&line).to_string();
        let malformed = || {
            framing_error(HttpError::MalformedStatusLine {
                found: text.clone(),
            })
        };
        let mut parts = text.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let code = parts.next().unwrap_or("");
        let reason = parts.next().unwrap_or("").to_string();
        if !version.starts_with("HTTP/1.") || code.len() != 3 {
            return Err(malformed());
        }
        let status: u16 = code.parse().map_err(|_| malformed())?;
        if !(100..=999).contains(&status) {
            return Err(malformed());
        }
        let mut headers = Vec::new();
        loop {
            let line = read_limited_line(reader, "header line")?;
            if line.is_empty() {
                break;
            }
            if headers.len() >= MAX_HEADER_COUNT {
                return Err(framing_error(HttpError::TooLarge {
                    what: "header section",
                    limit: MAX_HEADER_COUNT as u64,
                }));
            }
            let text = String::from_utf8(line).map_err(|e| {
                framing_error(HttpError::MalformedHeader {
                    found: String::from_utf8_lossy(e.as_bytes()).to_string(),
                })
            })?;
            let Some((name, value)) = text.split_once(':') else {
                return Err(framing_error(HttpError::MalformedHeader { found: text }));
            };
            if name.is_empty() || name.contains([' ', '\t']) {
                return Err(framing_error(HttpError::MalformedHeader {
                    found: text.clone(),
                }));
            }
            headers.push((name.to_string(), value.trim().to_string()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        return Ok(Head {
            status,
            reason,
            headers,
            is_http10: version == "HTTP/1.0",
        });
    }
}

pub(super) fn framing_for(
    method: &str,
    status: u16,
    headers: &[(String, String)],
) -> Result<Framing, HttpError> {
    if method == "HEAD" || status == 204 || status == 304 {
        return Ok(Framing::Done);
    }
    let chunked = find_header(headers, "Transfer-Encoding")
        .map(|v| v.to_ascii_lowercase().contains("chunked"))
        .unwrap_or(false);
    if chunked {
        return Ok(Framing::Chunked { in_chunk: None });
    }
    match find_header(headers, "Content-Length") {
        Some(text) => {
            let remaining = text
                .parse::<u64>()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| HttpError::BadContentLength {
                    found: text.to_string(),
                })?;
            Ok(if remaining == 0 {
                Framing::Done
            } else {
                Framing::Length { remaining }
            })
        }
        None => Ok(Framing::UntilClose),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    /// A reader that hands out one byte per `read`, so chunk boundaries never line up with
    /// read boundaries.
    struct OneByteReader {
        data: Vec<u8>,
        at: usize,
    }

    impl Read for OneByteReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at >= self.data.len() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.data[self.at];
            self.at += 1;
            Ok(1)
        }
    }

    fn chunked_of(data: &[u8]) -> BodyReader<BufReader<OneByteReader>> {
        BodyReader::chunked(BufReader::with_capacity(
            1,
            OneByteReader {
                data: data.to_vec(),
                at: 0,
            },
        ))
    }

    fn inner_error(error: io::Error) -> Option<HttpError> {
        error
            .get_ref()
            .and_then(|e| e.downcast_ref::<HttpError>())
            .cloned()
    }

    #[test]
    fn chunked_body_is_reassembled_across_one_byte_reads() {
        let wire = b"4\r\nWiki\r\n5;name=ext\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let mut body = chunked_of(wire);
        assert_eq!(body.read_to_end().unwrap(), b"Wikipedia in\r\n\r\nchunks.");
        assert!(body.is_done());
    }

    #[test]
    fn chunked_lines_are_yielded_one_at_a_time_even_when_split_over_chunks() {
        let wire = b"3\r\n{\"a\r\n5\r\n\":1}\n\r\n8\r\n{\"b\":2}\n\r\n0\r\n\r\n";
        let mut body = chunked_of(wire);
        assert_eq!(body.read_line().unwrap().unwrap(), b"{\"a\":1}\n");
        assert_eq!(body.read_line().unwrap().unwrap(), b"{\"b\":2}\n");
        assert_eq!(body.read_line().unwrap(), None);
    }

    #[test]
    fn bad_chunk_sizes_are_errors_not_panics() {
        for wire in [
            &b"zz\r\nabc\r\n0\r\n\r\n"[..],
            b"\r\nabc\r\n",
            b"-1\r\n",
            b"1FFFFFFFFFFFFFFFF\r\n",
            b"0x10\r\n",
        ] {
            let error = chunked_of(wire).read_to_end().unwrap_err();
            assert!(
                matches!(inner_error(error), Some(HttpError::BadChunkSize { .. })),
                "wire {:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn truncated_and_unterminated_chunks_are_errors() {
        let error = chunked_of(b"5\r\nab").read_to_end().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        let error = chunked_of(b"2\r\nabXY0\r\n\r\n").read_to_end().unwrap_err();
        assert_eq!(
            inner_error(error),
            Some(HttpError::BadChunkTerminator {
                found: b"XY".to_vec()
            })
        );
        let error = chunked_of(b"2\r\nab\r\n").read_to_end().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn chunked_decoder_never_panics_on_arbitrary_bytes() {
        // A fixed-seed xorshift generator: the failing seed and input are printed on panic.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for case in 0..2000 {
            let mut data = Vec::new();
            let len = (state % 40) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let alphabet = b"0123456789aAfF\r\n;xz ";
                data.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let result = std::panic::catch_unwind(|| {
                let _ = chunked_of(&data).read_to_end();
            });
            assert!(result.is_ok(), "case {} panicked on {:?}", case, data);
        }
    }

    #[test]
    fn response_decoder_never_panics_on_arbitrary_bytes() {
        let pieces: [&[u8]; 14] = [
            b"HTTP/1.1 ",
            b"200 OK",
            b"\r\n",
            b"Content-Length: ",
            b"Transfer-Encoding: chunked",
            b"5",
            b"ff",
            b":",
            b"abc",
            b"\n",
            b"0\r\n\r\n",
            b"HTTP/1.0 100 Continue\r\n\r\n",
            b"\xff\xfe",
            b"-1",
        ];
        let seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut state = seed;
        for case in 0..5000 {
            let mut data = Vec::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                data.extend_from_slice(pieces[(state % pieces.len() as u64) as usize]);
            }
            let result = std::panic::catch_unwind(|| decode_response_bytes("GET", &data));
            assert!(
                result.is_ok(),
                "seed {:#x} case {} panicked on {:?}",
                seed,
                case,
                data
            );
        }
        let ok = decode_response_bytes(
            "GET",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        )
        .unwrap();
        assert_eq!((ok.status, ok.body.as_slice()), (201, &b"ok"[..]));
        assert_eq!(
            decode_response_bytes("GET", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(HttpError::BadContentLength { found: "x".into() })
        );
        assert_eq!(
            decode_response_bytes("GET", b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n"),
            Err(HttpError::MalformedHeader {
                found: "bad header".into()
            })
        );
        let head = decode_response_bytes("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(head.unwrap().body, b"");
    }
}
