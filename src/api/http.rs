//! Small HTTP pieces shared by the handlers: a reply value, Go's plain-text errors, the `Date`
//! header, Go's `ServeMux` path cleaning and path escaping for redirects.

/// A complete, buffered reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Header names as they go on the wire (Go-canonical spelling).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(status, "application/json", body)
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Go's `http.Error`: plain text plus `X-Content-Type-Options: nosniff`.
    pub fn go_error(status: u16, text: &str) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", format!("{text}\n"))
            .header("X-Content-Type-Options", "nosniff")
    }

    /// Go's plain-text 405 as the members handler writes it for PUT/DELETE without an ID:
    /// no `Allow` header, but the cluster ID.
    pub fn with_headers_cleared_but_cluster(mut self, cluster_id: &str) -> Reply {
        self.headers.retain(|(name, _)| *name != "Allow");
        self.header("X-Etcd-Cluster-Id", cluster_id.to_string())
    }

    pub fn not_found() -> Reply {
        Reply::go_error(404, "404 page not found")
    }

    /// 405 with the accepted methods in `Allow`, as etcd's `allowMethod` writes it.
    pub fn method_not_allowed(allowed: &[&str]) -> Reply {
        Reply::go_error(405, "Method Not Allowed").header("Allow", allowed.join(","))
    }
}

/// The reason phrase Go uses for a status.
pub fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Go's `ServeMux` `cleanPath`: `path.Clean` that keeps a trailing slash.
pub fn mux_clean_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let rooted = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut cleaned = crate::api::keys::clean_path(&rooted);
    if rooted.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

/// Go's `url.PathEscape`-style escaping of a path for a `Location` header (`/` kept).
pub fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'_'
                    | b'.'
                    | b'~'
                    | b'$'
                    | b'&'
                    | b'+'
                    | b','
                    | b'/'
                    | b':'
                    | b';'
                    | b'='
                    | b'@'
            );
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// [`http_date`] of the current second, formatted at most once a second.
pub fn cached_http_date() -> String {
    static CACHE: parking_lot::Mutex<(i64, String)> =
        parking_lot::Mutex::new((i64::MIN, String::new()));
    let now = crate::node::now_unix_nanos() / 1_000_000_000;
    let mut cache = CACHE.lock();
    if cache.0 != now {
        *cache = (now, http_date(now));
    }
    cache.1.clone()
}

/// An IMF-fixdate (`Wed, 25 Nov 2026 23:24:07 GMT`) for a Unix time in seconds.
pub fn http_date(unix_secs: i64) -> String {
    let stamp = crate::api::json::rfc3339_nanos(unix_secs * 1_000_000_000);
    // stamp: YYYY-MM-DDTHH:MM:SSZ
    let (year, month, day) = (&stamp[0..4], &stamp[5..7], &stamp[8..10]);
    let time = &stamp[11..19];
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        [unix_secs.div_euclid(86_400).rem_euclid(7) as usize];
    let month_name = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][month.parse::<usize>().unwrap_or(1) - 1];
    format!("{weekday}, {day} {month_name} {year} {time} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mux_clean_keeps_trailing_slash() {
        assert_eq!(mux_clean_path("/v2/keys/a//b/"), "/v2/keys/a/b/");
        assert_eq!(mux_clean_path("/v2/keys/./a/../b"), "/v2/keys/b");
        assert_eq!(mux_clean_path("/v2/keys/"), "/v2/keys/");
        assert_eq!(mux_clean_path("/"), "/");
    }

    #[test]
    fn http_dates_are_imf_fixdates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_795_649_047), "Wed, 25 Nov 2026 23:24:07 GMT");
    }

    #[test]
    fn paths_escape_for_locations() {
        assert_eq!(escape_path("/v2/keys/a b/é"), "/v2/keys/a%20b/%C3%A9");
    }
}
