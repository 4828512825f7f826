//! Request parameters, parsed by Go's rules, because etcd's clients were written against them.
//!
//! - The query string and, for PUT and POST, an `application/x-www-form-urlencoded` body are
//!   parsed like Go's `url.ParseQuery`: pairs split on `&`, a pair holding `;` is an error,
//!   `+` is a space, a bad `%` escape is an error naming the escape. Parsing goes on after an
//!   error, but the first error is what the request reports.
//! - Body values come first, then query values; every lookup takes the first value, so the body
//!   wins over the query and the first of repeated names wins.
//! - Booleans follow Go's `strconv.ParseBool`, unsigned integers `strconv.ParseUint(s, 10, 64)`.
//! - Decoded bytes that are not UTF-8 become one [`INVALID_BYTE`] each, written as `\ufffd` as Go's JSON
//!   encoder prints for them.

/// Bodies larger than this are refused, as Go's `ParseForm` refuses them (10 MiB).
pub const MAX_FORM_BODY_BYTES: usize = 10 << 20;

/// Why a query or form could not be parsed. `Display` gives Go's error text, which etcd returns
/// as the `cause` of error 210.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// A `%` not followed by two hex digits; holds the offending text (at most 3 bytes).
    BadEscape { escape: String },
    /// A pair containing `;`, which Go stopped accepting as a separator.
    Semicolon,
    /// A form body over [`MAX_FORM_BODY_BYTES`].
    BodyTooLarge { limit_bytes: usize },
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormError::BadEscape { escape } => write!(f, "invalid URL escape {}", go_quote(escape)),
            FormError::Semicolon => write!(f, "invalid semicolon separator in query"),
            FormError::BodyTooLarge { .. } => write!(f, "http: POST too large"),
        }
    }
}

/// Go's `strconv.Quote` for the short strings that appear in escape errors.
fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{FFFD}' => out.push_str("\\x??"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parameters of one request, in lookup order (body first, then query).
#[derive(Debug, Default, Clone)]
pub struct Form {
    /// Invariant: body pairs precede query pairs; within each, the order of the wire.
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Parses the query, then (when given) the form body. Returns the form built from every
    /// pair that parsed and the first error met, like Go's `Request.ParseForm`.
    pub fn parse(query: &str, body: Option<&[u8]>) -> (Form, Option<FormError>) {
        Form::parse_with_limit(query, body, MAX_FORM_BODY_BYTES)
    }

    /// [`Form::parse`] with a body limit other than etcd's 10 MiB.
    pub fn parse_with_limit(
        query: &str,
        body: Option<&[u8]>,
        body_limit_bytes: usize,
    ) -> (Form, Option<FormError>) {
        let mut first_error = None;
        let mut pairs = Vec::new();
        if let Some(body) = body {
            if body.len() > body_limit_bytes {
                first_error = Some(FormError::BodyTooLarge {
                    limit_bytes: body_limit_bytes,
                });
            } else {
                parse_pairs(body, &mut pairs, &mut first_error);
            }
        }
        parse_pairs(query.as_bytes(), &mut pairs, &mut first_error);
        (Form { pairs }, first_error)
    }

    /// The first value of `name`, if the name appears at all (even with an empty value).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of `name`, or "" (Go's `FormValue`).
    pub fn value(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

fn parse_pairs(raw: &[u8], pairs: &mut Vec<(String, String)>, first_error: &mut Option<FormError>) {
    for pair in raw.split(|&b| b == b'&') {
        if pair.contains(&b';') {
            first_error.get_or_insert(FormError::Semicolon);
            continue;
        }
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let name = match unescape(name, true) {
            Ok(name) => name,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        match unescape(value, true) {
            Ok(value) => pairs.push((name, value)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
}

/// Percent-decodes `raw` (with `+` as space when `plus_is_space`), Go's `QueryUnescape` /
/// `PathUnescape`.
pub fn unescape(raw: &[u8], plus_is_space: bool) -> Result<String, FormError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                let hi = raw.get(i + 1).and_then(|b| hex_value(*b));
                let lo = raw.get(i + 2).and_then(|b| hex_value(*b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        bytes.push(hi << 4 | lo);
                        i += 3;
                    }
                    _ => {
                        let end = (i + 3).min(raw.len());
                        let escape = lossy_go(&raw[i..end]);
                        return Err(FormError::BadEscape { escape });
                    }
                }
            }
            b'+' if plus_is_space => {
                bytes.push(b' ');
                i += 1;
            }
            other => {
                bytes.push(other);
                i += 1;
            }
        }
    }
    Ok(lossy_go(&bytes))
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Stands for one byte that is not valid UTF-8 in a key, value or cause. Go keeps such bytes
/// and its JSON encoder writes each as the escape `\ufffd`, while a real U+FFFD is written as
/// is; so invalid bytes become this noncharacter (never used in interchanged text), which
/// [`crate::api::json::push_string`] renders as `\ufffd`.
pub const INVALID_BYTE: char = '\u{FFFE}';

/// Bytes to a String, one [`INVALID_BYTE`] per byte that is not part of a valid UTF-8 sequence
/// (Go's rule when it encodes such a string as JSON).
pub fn lossy_go(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).expect("prefix checked by from_utf8"));
                out.push(INVALID_BYTE);
                rest = &after[1..];
            }
        }
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(text, 10, 64)`: decimal digits only, leading zeros allowed.
pub fn parse_go_uint(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_values_win_over_query_values_and_first_repeat_wins() {
        let (form, err) = Form::parse("value=q1&value=q2&ttl=100", Some(b"ttl=abc&value=b1"));
        assert_eq!(err, None);
        assert_eq!(form.value("value"), "b1");
        assert_eq!(form.value("ttl"), "abc");
        let (form, _) = Form::parse("value=q1&value=q2", None);
        assert_eq!(form.value("value"), "q1");
    }

    #[test]
    fn bad_escapes_report_go_text_and_parsing_continues() {
        let (form, err) = Form::parse("a=%zz&b=2", None);
        assert_eq!(err.unwrap().to_string(), "invalid URL escape \"%zz\"");
        assert_eq!(form.value("b"), "2");
        let (_, err) = Form::parse("a=%4", None);
        assert_eq!(err.unwrap().to_string(), "invalid URL escape \"%4\"");
        let (_, err) = Form::parse("a=1;b=2", None);
        assert_eq!(err, Some(FormError::Semicolon));
    }

    #[test]
    fn plus_is_space_and_empty_values_are_present() {
        let (form, _) = Form::parse("value=a+b%20c&prevValue=&flag", None);
        assert_eq!(form.value("value"), "a b c");
        assert_eq!(form.get("prevValue"), Some(""));
        assert_eq!(form.get("flag"), Some(""));
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn oversized_body_is_refused() {
        let body = vec![b'a'; MAX_FORM_BODY_BYTES + 1];
        let (_, err) = Form::parse("", Some(&body));
        assert_eq!(err.unwrap().to_string(), "http: POST too large");
    }

    #[test]
    fn go_bool_and_uint_rules() {
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(yes), Some(true), "{yes}");
        }
        for bad in ["", "yes", "tRUE", " true", "2"] {
            assert_eq!(parse_go_bool(bad), None, "{bad:?}");
        }
        assert_eq!(parse_go_uint("05"), Some(5));
        assert_eq!(parse_go_uint("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "+5", "-1", "0x10", "1.5", " 1", "18446744073709551616"] {
            assert_eq!(parse_go_uint(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn invalid_utf8_becomes_one_replacement_per_byte() {
        assert_eq!(lossy_go(b"a\xE2\x82b"), "a\u{FFFE}\u{FFFE}b");
        let mut json = String::new();
        crate::api::json::push_string(&mut json, &lossy_go(b"a\xff\xef\xbf\xbd"));
        assert_eq!(
            json, "\"a\\ufffd\u{FFFD}\"",
            "invalid bytes escape, a real U+FFFD stays raw"
        );
        assert_eq!(unescape(b"%C3%A9", false).unwrap(), "é");
    }
}
