//! Normalisation: turns a raw response into a form that two correct servers agree on.
//!
//! What is kept exactly: the status, the spelling and value of the headers that matter, body
//! JSON structure including object key order, strings, trailing newlines. What is rewritten:
//! - every index (modifiedIndex, createdIndex, error `index`, X-Etcd-Index, in-order key names,
//!   the numbers in 401 causes and in `[<prevIndex> != <modifiedIndex>]` causes) becomes its
//!   offset from the scenario's base index, `<B+k>` (0 stays `0`);
//! - `expiration` becomes `<expiration>` after checking it is RFC 3339, UTC, `Z`, nanoseconds
//!   with trailing zeros trimmed (`<BAD expiration ...>` otherwise);
//! - `ttl` is compared with a tolerance of one second (see [`same`]);
//! - X-Raft-Index/Term and X-Etcd-Cluster-Id are checked for shape only;
//! - member/cluster IDs, start times, uptimes, stats counters (except the current number of
//!   watchers) and /version's server string are replaced by shape tokens; the servers' own ports become `CLIENT_PORT` / `PEER_PORT`;
//! - `nodes` arrays are sorted by key unless the request asked for `sorted=true` (etcd's
//!   unsorted order is random).

use super::http::RawResponse;
use super::json::Json;
use super::scenario::Compare;

/// Headers compared between servers (looked up case-insensitively, spelling recorded).
const COMPARED_HEADERS: &[&str] = &[
    "Content-Type",
    "Content-Length",
    "Transfer-Encoding",
    "X-Etcd-Cluster-Id",
    "X-Etcd-Index",
    "X-Raft-Index",
    "X-Raft-Term",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Headers",
    "Allow",
    "Location",
    "X-Content-Type-Options",
];

/// One body part: a JSON document (with whether a `\n` followed it) or opaque text.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Json { value: Json, newline: bool },
    Text(String),
}

/// A normalised response.
#[derive(Clone, Debug, PartialEq)]
pub struct Norm {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<Part>,
    pub complete: bool,
    pub transport_error: bool,
    /// The escape sequences used in the JSON body's strings, in order (`\u003c`, `\n`, ...),
    /// and whitespace between tokens if any:
    /// parsing decodes them, but etcd's bytes (Go escapes `<`, `>`, `&`, U+2028, U+2029 and
    /// invalid UTF-8 as `\ufffd`) are part of what clients and etcd's tests see.
    pub json_escapes: String,
}

/// What normalisation needs to know about the request and the server.
pub struct Context<'a> {
    pub base_index: u64,
    pub client_port: u16,
    pub peer_port: u16,
    /// The request target (path and query) as sent.
    pub target: &'a [u8],
    pub compare: Compare,
    /// The request was a HEAD.
    pub is_head: bool,
}

impl Context<'_> {
    fn relative(&self, index: u64) -> String {
        // Huge numbers are user-supplied (e.g. prevIndex=2^64-1), not indexes: keep them.
        if index == 0 || index > 1_000_000_000_000 {
            index.to_string()
        } else {
            format!("<B{:+}>", index as i128 - self.base_index as i128)
        }
    }

    fn relative_text(&self, text: &str) -> String {
        match text.parse::<u64>() {
            Ok(n) => self.relative(n),
            Err(_) => format!("<BAD index {text:?}>"),
        }
    }

    fn path(&self) -> String {
        let target = String::from_utf8_lossy(self.target);
        target.split('?').next().unwrap_or("").to_string()
    }

    /// True when the query's first `name=` value is one of Go's true spellings.
    fn query_flag(&self, name: &str) -> bool {
        let target = String::from_utf8_lossy(self.target);
        let Some((_, query)) = target.split_once('?') else {
            return false;
        };
        let prefix = format!("{name}=");
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(prefix.as_str()))
            .is_some_and(|value| matches!(value, "1" | "t" | "T" | "TRUE" | "true" | "True"))
    }

    fn sorted_requested(&self) -> bool {
        self.query_flag("sorted")
    }

    /// A watch request: its response is streamed, so its framing is part of the contract.
    fn is_watch(&self) -> bool {
        self.path().starts_with("/v2/keys") && self.query_flag("wait") && !self.query_flag("quorum")
    }

    fn replace_ports(&self, text: &str) -> String {
        text.replace(
            &format!("127.0.0.1:{}", self.client_port),
            "127.0.0.1:CLIENT_PORT",
        )
        .replace(
            &format!("127.0.0.1:{}", self.peer_port),
            "127.0.0.1:PEER_PORT",
        )
    }
}

/// Normalises `raw` for comparison.
pub fn normalize(raw: &RawResponse, ctx: &Context) -> Norm {
    let mut norm = Norm {
        status: raw.status,
        headers: Vec::new(),
        body: Vec::new(),
        complete: raw.complete,
        transport_error: raw.transport_error.is_some(),
        json_escapes: String::new(),
    };
    if ctx.compare == Compare::StatusOnly {
        norm.complete = true;
        norm.transport_error = false;
        return norm;
    }
    for name in COMPARED_HEADERS {
        let Some((wire_name, value)) = raw.header(name) else {
            continue;
        };
        let value = match *name {
            "X-Etcd-Index" => ctx.relative_text(value),
            "X-Raft-Index" | "X-Raft-Term" => {
                if value.parse::<u64>().is_ok() {
                    "<number>".to_string()
                } else {
                    format!("<BAD number {value:?}>")
                }
            }
            "X-Etcd-Cluster-Id" => hex_id_token(value),
            "Content-Length" => "<present>".to_string(),
            _ => ctx.replace_ports(value),
        };
        let copies = raw
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count();
        let value = if copies > 1 {
            format!("{value} (sent {copies} times)")
        } else {
            value
        };
        norm.headers.push((wire_name.to_string(), value));
    }
    if ctx.is_head {
        // A HEAD response has no body, so its framing headers carry nothing to compare
        // (etcd sends Content-Length on some HEAD responses and not on others, e.g. 301s).
        norm.headers.retain(|(n, _)| {
            !n.eq_ignore_ascii_case("Content-Length")
                && !n.eq_ignore_ascii_case("Transfer-Encoding")
        });
    } else if !ctx.is_watch() {
        // Outside watches, Content-Length versus chunked is a transport detail (Go switches to
        // chunked above 2 KiB of unbuffered output); only require that the body is framed.
        let framed = norm.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("Content-Length")
                || (n.eq_ignore_ascii_case("Transfer-Encoding")
                    && v.eq_ignore_ascii_case("chunked"))
        });
        norm.headers.retain(|(n, _)| {
            !n.eq_ignore_ascii_case("Content-Length")
                && !n.eq_ignore_ascii_case("Transfer-Encoding")
        });
        if framed {
            norm.headers.push((
                "(framing)".to_string(),
                "Content-Length or chunked".to_string(),
            ));
        }
    }
    let parts = split_body(&raw.body);
    if parts.iter().any(|part| matches!(part, Part::Json { .. })) {
        norm.json_escapes = escape_sequences(&raw.body);
    }
    norm.body = parts
        .into_iter()
        .map(|part| match part {
            Part::Json { value, newline } => Part::Json {
                value: normalize_json(value, ctx),
                newline,
            },
            Part::Text(text) => Part::Text(ctx.replace_ports(&text)),
        })
        .collect();
    norm
}

/// Every backslash escape in `body` (in JSON they only occur inside strings), space-separated,
/// plus a note when there is whitespace between tokens (Go's encoder writes none).
fn escape_sequences(body: &[u8]) -> String {
    let mut found: Vec<String> = Vec::new();
    let mut in_string = false;
    let mut depth = 0usize;
    let mut padding = 0usize;
    let mut i = 0;
    while i < body.len() {
        let byte = body[i];
        if in_string {
            if byte == b'\\' && i + 1 < body.len() {
                let length = if body[i + 1] == b'u' { 6 } else { 2 };
                let end = (i + length).min(body.len());
                found.push(String::from_utf8_lossy(&body[i..end]).to_string());
                i = end;
                continue;
            }
            if byte == b'"' {
                in_string = false;
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                b' ' | b'\t' | b'\r' | b'\n' if depth > 0 => padding += 1,
                _ => {}
            }
        }
        i += 1;
    }
    if padding > 0 {
        found.push(format!("(+{padding} whitespace bytes between tokens)"));
    }
    found.join(" ")
}

fn hex_id_token(value: &str) -> String {
    let ok = !value.is_empty()
        && value.len() <= 16
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && !value.starts_with('0');
    if ok {
        "<hex id>".to_string()
    } else {
        format!("<BAD hex id {value:?}>")
    }
}

/// Splits a body into JSON documents each optionally followed by one `\n`; anything else is text.
fn split_body(body: &[u8]) -> Vec<Part> {
    if body.is_empty() {
        return Vec::new();
    }
    let mut parts = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let starts_json = matches!(body[pos], b'{' | b'[' | b'"');
        if !starts_json {
            return vec![text_part(body)];
        }
        let Ok(value) = Json::parse_at(body, &mut pos) else {
            return vec![text_part(body)];
        };
        let newline = body.get(pos) == Some(&b'\n');
        if newline {
            pos += 1;
        }
        parts.push(Part::Json { value, newline });
    }
    parts
}

fn text_part(body: &[u8]) -> Part {
    match std::str::from_utf8(body) {
        Ok(text) => Part::Text(text.to_string()),
        Err(_) => Part::Text(format!("<NOT UTF-8> {}", String::from_utf8_lossy(body))),
    }
}

fn normalize_json(value: Json, ctx: &Context) -> Json {
    if ctx.compare == Compare::ShapeOnly {
        return shape(value);
    }
    let path = ctx.path();
    if path.starts_with("/v2/keys") {
        keys_json(value, ctx, None)
    } else if path == "/v2/stats/self" || path == "/v2/stats/leader" {
        stats_self_json(value, ctx)
    } else if path == "/v2/stats/store" {
        // Counters depend on each server's history (etcd counts internal reads too); the
        // number of registered watchers is exact and shows whether closed watches are freed.
        match value {
            Json::Obj(fields) => Json::Obj(
                fields
                    .into_iter()
                    .map(|(k, v)| {
                        if k == "watchers" {
                            (k, v)
                        } else {
                            (k, shape(v))
                        }
                    })
                    .collect(),
            ),
            other => shape(other),
        }
    } else if path.starts_with("/v2/members") {
        members_json(value, ctx)
    } else if path == "/version" {
        match value {
            Json::Obj(fields) => Json::Obj(
                fields
                    .into_iter()
                    .map(|(k, v)| {
                        if k == "etcdserver" {
                            (k, shape(v))
                        } else {
                            (k, v)
                        }
                    })
                    .collect(),
            ),
            other => other,
        }
    } else {
        strings_with_ports(value, ctx)
    }
}

/// Replaces every scalar by its type.
fn shape(value: Json) -> Json {
    match value {
        Json::Null => Json::Token("<null>".into()),
        Json::Bool(_) => Json::Token("<bool>".into()),
        Json::Num(_) => Json::Token("<num>".into()),
        Json::Str(_) => Json::Token("<str>".into()),
        Json::Token(t) => Json::Token(t),
        Json::Arr(items) => Json::Arr(items.into_iter().map(shape).collect()),
        Json::Obj(fields) => Json::Obj(fields.into_iter().map(|(k, v)| (k, shape(v))).collect()),
    }
}

fn strings_with_ports(value: Json, ctx: &Context) -> Json {
    match value {
        Json::Str(s) => Json::Str(ctx.replace_ports(&s)),
        Json::Arr(items) => Json::Arr(
            items
                .into_iter()
                .map(|v| strings_with_ports(v, ctx))
                .collect(),
        ),
        Json::Obj(fields) => Json::Obj(
            fields
                .into_iter()
                .map(|(k, v)| (k, strings_with_ports(v, ctx)))
                .collect(),
        ),
        other => other,
    }
}

fn members_json(value: Json, ctx: &Context) -> Json {
    match value {
        Json::Obj(fields) => Json::Obj(
            fields
                .into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("id", Json::Str(id)) => (k, Json::Token(hex_id_token(&id))),
                    (_, v) => (k, members_json(v, ctx)),
                })
                .collect(),
        ),
        Json::Arr(items) => Json::Arr(items.into_iter().map(|v| members_json(v, ctx)).collect()),
        Json::Str(s) => Json::Str(ctx.replace_ports(&s)),
        other => other,
    }
}

fn stats_self_json(value: Json, ctx: &Context) -> Json {
    match value {
        Json::Obj(fields) => Json::Obj(
            fields
                .into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("id" | "leader", Json::Str(id)) => (k, Json::Token(hex_id_token(&id))),
                    ("startTime", Json::Str(t)) => (k, Json::Token(time_token(&t))),
                    ("uptime", v) => (k, shape(v)),
                    (_, Json::Num(_)) => (k, Json::Token("<num>".into())),
                    (_, v) => (k, stats_self_json(v, ctx)),
                })
                .collect(),
        ),
        Json::Str(s) => Json::Str(ctx.replace_ports(&s)),
        other => other,
    }
}

fn keys_json(value: Json, ctx: &Context, field: Option<&str>) -> Json {
    match (field, value) {
        (Some("modifiedIndex" | "createdIndex" | "index"), Json::Num(n)) => {
            Json::Token(ctx.relative_text(&n))
        }
        (Some("expiration"), Json::Str(t)) => Json::Token(time_token(&t)),
        (Some("key"), Json::Str(key)) => Json::Str(in_order_segments(&key, ctx)),
        (Some("cause"), Json::Str(cause)) => Json::Str(cause_text(&cause, ctx)),
        (Some("nodes"), Json::Arr(items)) => {
            let mut items: Vec<Json> = items.into_iter().map(|v| keys_json(v, ctx, None)).collect();
            if !ctx.sorted_requested() {
                items.sort_by_key(|item| item.get("key").map(Json::render).unwrap_or_default());
            }
            Json::Arr(items)
        }
        (_, Json::Obj(fields)) => Json::Obj(
            fields
                .into_iter()
                .map(|(k, v)| {
                    let v = keys_json(v, ctx, Some(k.as_str()));
                    (k, v)
                })
                .collect(),
        ),
        (_, Json::Arr(items)) => {
            Json::Arr(items.into_iter().map(|v| keys_json(v, ctx, None)).collect())
        }
        (_, other) => other,
    }
}

/// Rewrites path segments that are exactly 20 digits (in-order keys) as relative indexes.
fn in_order_segments(key: &str, ctx: &Context) -> String {
    key.split('/')
        .map(|segment| {
            if segment.len() == 20 && segment.bytes().all(|b| b.is_ascii_digit()) {
                ctx.relative_text(segment)
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Normalises indexes inside error causes.
fn cause_text(cause: &str, ctx: &Context) -> String {
    let prefix = "the requested history has been cleared [";
    if let Some(rest) = cause.strip_prefix(prefix) {
        if let Some(inner) = rest.strip_suffix(']') {
            if let Some((oldest, requested)) = inner.split_once('/') {
                return format!(
                    "{prefix}{}/{}]",
                    ctx.relative_text(oldest),
                    ctx.relative_text(requested)
                );
            }
        }
    }
    // "[a != b]" groups where both sides are numbers are prevIndex comparisons (scenarios
    // never compare numeric values with prevValue, so this is unambiguous).
    let mut out = String::new();
    let mut rest = cause;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) => {
                let inner = &after[..close];
                match inner.split_once(" != ") {
                    Some((a, b))
                        if !a.is_empty()
                            && !b.is_empty()
                            && a.bytes().all(|c| c.is_ascii_digit())
                            && b.bytes().all(|c| c.is_ascii_digit()) =>
                    {
                        out.push_str(&format!(
                            "[{} != {}]",
                            ctx.relative_text(a),
                            ctx.relative_text(b)
                        ));
                    }
                    _ => {
                        out.push('[');
                        out.push_str(inner);
                        out.push(']');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    in_order_segments(&out, ctx)
}

/// `<time>` when `text` is RFC 3339 in UTC with `Z` and a fraction of 1–9 digits without
/// trailing zeros (or none), as Go's RFC3339Nano prints; a `<BAD ...>` token otherwise.
pub fn time_token(text: &str) -> String {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let mut ok = bytes.len() >= 20
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && bytes[10] == b'T'
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19)
        && bytes.last() == Some(&b'Z');
    if ok && bytes.len() > 20 {
        let fraction = &bytes[19..bytes.len() - 1];
        ok = fraction.len() >= 2
            && fraction.len() <= 10
            && fraction[0] == b'.'
            && fraction[1..].iter().all(u8::is_ascii_digit)
            && fraction.last() != Some(&b'0');
    }
    if ok {
        "<time>".to_string()
    } else {
        format!("<BAD time {text:?}>")
    }
}

/// True when two normalised responses agree (`ttl` fields may differ by one).
pub fn same(a: &Norm, b: &Norm) -> bool {
    a.status == b.status
        && a.headers == b.headers
        && a.complete == b.complete
        && a.transport_error == b.transport_error
        && a.json_escapes == b.json_escapes
        && a.body.len() == b.body.len()
        && a.body.iter().zip(&b.body).all(|(x, y)| match (x, y) {
            (
                Part::Json {
                    value: v1,
                    newline: n1,
                },
                Part::Json {
                    value: v2,
                    newline: n2,
                },
            ) => n1 == n2 && json_same(v1, v2, None),
            _ => x == y,
        })
}

fn json_same(a: &Json, b: &Json, field: Option<&str>) -> bool {
    match (a, b) {
        (Json::Num(x), Json::Num(y)) if field == Some("ttl") => {
            match (x.parse::<i64>(), y.parse::<i64>()) {
                (Ok(x), Ok(y)) => (x - y).abs() <= 1,
                _ => x == y,
            }
        }
        (Json::Arr(x), Json::Arr(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_same(p, q, None))
        }
        (Json::Obj(x), Json::Obj(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && json_same(v1, v2, Some(k1)))
        }
        _ => a == b,
    }
}

/// Human-readable rendering of a normalised response.
pub fn render(norm: &Norm) -> String {
    let mut out = format!("  status {}", norm.status);
    if !norm.complete {
        out.push_str(" (body incomplete)");
    }
    if norm.transport_error {
        out.push_str(" (transport error)");
    }
    out.push('\n');
    for (name, value) in &norm.headers {
        out.push_str(&format!("  {name}: {value}\n"));
    }
    if !norm.json_escapes.is_empty() {
        out.push_str(&format!("  (JSON escapes: {})\n", norm.json_escapes));
    }
    for part in &norm.body {
        match part {
            Part::Json { value, newline } => out.push_str(&format!(
                "  body {}{}\n",
                truncate(&value.render(), 3000),
                if *newline { "\\n" } else { "" }
            )),
            Part::Text(text) => out.push_str(&format!("  text {:?}\n", truncate(text, 3000))),
        }
    }
    out
}

fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...({} bytes)", &text[..end], text.len())
}

/// A one-line summary of where two normalised responses differ (for the report).
pub fn describe_difference(a: &Norm, b: &Norm) -> String {
    let mut notes = Vec::new();
    if a.status != b.status {
        notes.push(format!("status {} vs {}", a.status, b.status));
    }
    if a.complete != b.complete {
        notes.push(format!("body complete {} vs {}", a.complete, b.complete));
    }
    if a.transport_error != b.transport_error {
        notes.push(format!(
            "transport error {} vs {}",
            a.transport_error, b.transport_error
        ));
    }
    let mut names: Vec<String> = a
        .headers
        .iter()
        .chain(&b.headers)
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let find = |norm: &Norm| {
            norm.headers
                .iter()
                .find(|(n, _)| n.to_ascii_lowercase() == name)
                .map(|(n, v)| format!("{n}: {v}"))
                .unwrap_or_else(|| "(absent)".to_string())
        };
        let (x, y) = (find(a), find(b));
        if x != y {
            notes.push(format!("header [{x}] vs [{y}]"));
        }
    }
    if a.json_escapes != b.json_escapes {
        notes.push(format!(
            "JSON escapes [{}] vs [{}]",
            a.json_escapes, b.json_escapes
        ));
    }
    if a.body.len() != b.body.len() {
        notes.push(format!("{} body parts vs {}", a.body.len(), b.body.len()));
    }
    for (i, (x, y)) in a.body.iter().zip(&b.body).enumerate() {
        let equal = match (x, y) {
            (
                Part::Json {
                    value: v1,
                    newline: n1,
                },
                Part::Json {
                    value: v2,
                    newline: n2,
                },
            ) => n1 == n2 && json_same(v1, v2, None),
            _ => x == y,
        };
        if !equal {
            notes.push(format!("body part {} differs", i + 1));
        }
    }
    notes.join("; ")
}
