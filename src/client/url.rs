//! URLs and percent-encoding, the way Go's `net/url` does them, because etcdctl users compare
//! `--debug` lines and error texts byte for byte: `http://host:port/path?query` parsing (a
//! scheme-less `host:port` is Go's "first path segment in URL cannot contain colon"), path
//! escaping that keeps `$&+,/:;=@`, query escaping with `+` for space, and `url.Values.Encode`
//! (keys sorted).

use std::fmt;

use super::http::HttpError;

/// A parsed `http://host:port/path?query` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Invariant: lowercase ASCII; only `http` can be dialled.
    pub scheme: String,
    /// Host as written (IPv6 without brackets).
    pub host: String,
    /// Explicit port, or 80.
    pub port: u16,
    /// Whether the port was written in the URL (so `to_string` round-trips).
    pub port_explicit: bool,
    /// Decoded path; empty or starting with `/`.
    pub path: String,
    /// Raw (already encoded) query without the `?`, possibly empty.
    pub raw_query: String,
}

impl Url {
    /// Parses an endpoint or Location URL. Mirrors the two Go errors etcdctl users meet: a
    /// scheme-less `host:port` is a parse error, a string with an unknown scheme parses but
    /// cannot be dialled.
    pub fn parse(text: &str) -> Result<Url, HttpError> {
        let bad = |reason: &str| HttpError::BadUrl {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = match split_scheme(text) {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => {
                let first_segment = text.split('/').next().unwrap_or("");
                if first_segment.contains(':') {
                    return Err(bad("first path segment in URL cannot contain colon"));
                }
                (String::new(), text)
            }
        };
        let Some(after_slashes) = rest.strip_prefix("//") else {
            // Opaque or relative URL: keep it as a path-only URL.
            let (path, query) = split_query(rest);
            return Ok(Url {
                scheme,
                host: String::new(),
                port: 80,
                port_explicit: false,
                path: percent_decode(path).map_err(|reason| bad(&reason))?,
                raw_query: query.to_string(),
            });
        };
        let authority_end = after_slashes
            .find(['/', '?'])
            .unwrap_or(after_slashes.len());
        let authority = &after_slashes[..authority_end];
        let (path, query) = split_query(&after_slashes[authority_end..]);
        let host_port = authority.rsplit('@').next().unwrap_or("");
        let (host, port_text) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let close = bracketed
                .find(']')
                .ok_or_else(|| bad("missing ']' in host"))?;
            let after = &bracketed[close + 1..];
            let port_text = match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err(bad("invalid port after host")),
            };
            (bracketed[..close].to_string(), port_text)
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host.to_string(), Some(port)),
                None => (host_port.to_string(), None),
            }
        };
        let (port, port_explicit) = match port_text {
            None | Some("") => (80, false),
            Some(digits) => match digits.parse::<u16>() {
                Ok(port) if digits.bytes().all(|b| b.is_ascii_digit()) => (port, true),
                _ => {
                    return Err(bad(&format!(
                        "invalid port {:?} after host",
                        format!(":{}", digits)
                    )))
                }
            },
        };
        Ok(Url {
            scheme,
            host,
            port,
            port_explicit,
            path: percent_decode(path).map_err(|reason| bad(&reason))?,
            raw_query: query.to_string(),
        })
    }

    /// `host:port` as dialled (IPv6 in brackets).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port_explicit {
            format!("{}:{}", host, self.port)
        } else {
            host
        }
    }

    /// The request target: encoded path plus `?query` when there is one.
    pub fn request_target(&self) -> String {
        let mut target = if self.path.is_empty() {
            "/".to_string()
        } else {
            encode_path(&self.path)
        };
        if !self.raw_query.is_empty() {
            target.push('?');
            target.push_str(&self.raw_query);
        }
        target
    }

    /// Resolves a `Location` header value against this URL.
    pub fn join(&self, location: &str) -> Result<Url, HttpError> {
        let parsed = Url::parse(location).map_err(|_| HttpError::BadLocation {
            found: location.to_string(),
        })?;
        if !parsed.scheme.is_empty() {
            return Ok(parsed);
        }
        let mut joined = self.clone();
        if location.starts_with('/') {
            joined.path = parsed.path;
        } else {
            let base_dir = match self.path.rfind('/') {
                Some(slash) => &self.path[..=slash],
                None => "/",
            };
            joined.path = format!("{}{}", base_dir, parsed.path);
        }
        joined.raw_query = parsed.raw_query;
        Ok(joined)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.scheme.is_empty() {
            write!(f, "{}:", self.scheme)?;
        }
        if !self.host.is_empty() || self.port_explicit {
            write!(f, "//{}", self.authority())?;
        }
        write!(f, "{}", encode_path(&self.path))?;
        if !self.raw_query.is_empty() {
            write!(f, "?{}", self.raw_query)?;
        }
        Ok(())
    }
}

fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let colon = text.find(':')?;
    let scheme = &text[..colon];
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    if bytes.all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.') {
        Some((scheme, &text[colon + 1..]))
    } else {
        None
    }
}

fn split_query(text: &str) -> (&str, &str) {
    match text.split_once('?') {
        Some((path, query)) => (path, query),
        None => (text, ""),
    }
}

/// Decodes `%XX` escapes (and nothing else). Fails on a truncated or non-hex escape or on
/// bytes that are not UTF-8 after decoding.
pub fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(|| {
                format!(
                    "invalid URL escape {:?}",
                    String::from_utf8_lossy(&bytes[i..])
                )
            })?;
            let value = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!(
                        "invalid URL escape {:?}",
                        String::from_utf8_lossy(&bytes[i..i + 3])
                    )
                })?;
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "invalid UTF-8 after percent-decoding".to_string())
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

fn push_escaped(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[(byte >> 4) as usize] as char);
    out.push(HEX[(byte & 15) as usize] as char);
}

/// Escapes a path the way Go's `url.URL.EscapedPath` does: unreserved characters and
/// `$&+,/:;=@` stay, everything else (including `?`, `%`, space and non-ASCII) is `%XX`.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &byte in path.as_bytes() {
        if is_unreserved(byte)
            || matches!(
                byte,
                b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'@'
            )
        {
            out.push(byte as char);
        } else {
            push_escaped(&mut out, byte);
        }
    }
    out
}

/// Escapes a query or form component like Go's `url.QueryEscape`: space becomes `+`, only
/// unreserved characters stay.
pub fn encode_query_component(text: impl AsRef<[u8]>) -> String {
    let text = text.as_ref();
    let mut out = String::with_capacity(text.len());
    for &byte in text {
        if is_unreserved(byte) {
            out.push(byte as char);
        } else if byte == b' ' {
            out.push('+');
        } else {
            push_escaped(&mut out, byte);
        }
    }
    out
}

/// Encodes pairs like Go's `url.Values.Encode`: sorted by key (stable for repeated keys),
/// `key=value` joined by `&`.
pub fn encode_form<V: AsRef<[u8]>>(pairs: &[(&str, V)]) -> String {
    let mut sorted: Vec<&(&str, V)> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(key, value)| {
            format!(
                "{}={}",
                encode_query_component(key),
                encode_query_component(value)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_matches_go() {
        assert_eq!(encode_path("/v2/keys/a b?c%d"), "/v2/keys/a%20b%3Fc%25d");
        assert_eq!(encode_path("/k/$&+,:;=@-_.~"), "/k/$&+,:;=@-_.~");
        assert_eq!(encode_path("/é"), "/%C3%A9");
        assert_eq!(encode_query_component("x y&z=/"), "x+y%26z%3D%2F");
        assert_eq!(
            encode_form(&[("value", "a b".to_string()), ("ttl", "5".to_string())]),
            "ttl=5&value=a+b"
        );
        assert_eq!(percent_decode("a%20b%2F").unwrap(), "a b/");
        assert!(percent_decode("a%2").is_err());
        assert!(percent_decode("a%zz").is_err());
    }

    #[test]
    fn urls_parse_like_go() {
        let url = Url::parse("http://127.0.0.1:2379").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("127.0.0.1", 2379, "")
        );
        assert_eq!(url.to_string(), "http://127.0.0.1:2379");
        let error = Url::parse("127.0.0.1:2379").unwrap_err();
        assert_eq!(
            error.to_string(),
            "parse \"127.0.0.1:2379\": first path segment in URL cannot contain colon"
        );
        let opaque = Url::parse("localhost:2379").unwrap();
        assert_eq!(opaque.scheme, "localhost");
        let v6 = Url::parse("http://[::1]:80/x?y=1").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.authority()),
            ("::1", "[::1]:80".to_string())
        );
        assert_eq!(v6.request_target(), "/x?y=1");
        let joined = url.join("/v2/keys/a?b=c").unwrap();
        assert_eq!(joined.to_string(), "http://127.0.0.1:2379/v2/keys/a?b=c");
        assert!(Url::parse("http://h:99999").is_err());
    }
}
