//! The texts of Go's `encoding/json` decode errors, which etcdctl prints verbatim when a
//! server answers the members, auth or health endpoints with something that is not the JSON
//! expected (a plain-text `404 page not found`, an HTML error page, an empty body).

/// Go's `quoteChar`: `'p'`, `'\''`, `'"'`, `'\n'`, `'\x00'`.
fn quote_char(byte: u8) -> String {
    match byte {
        b'\'' => "'\\''".to_string(),
        b'"' => "'\"'".to_string(),
        b'\n' => "'\\n'".to_string(),
        b'\r' => "'\\r'".to_string(),
        b'\t' => "'\\t'".to_string(),
        0x20..=0x7e => format!("'{}'", byte as char),
        _ => format!("'\\x{:02x}'", byte),
    }
}

fn is_space(byte: &u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Byte offset of a serde error's line/column in `body`.
fn error_offset(body: &[u8], error: &serde_json::Error) -> usize {
    let mut line = 1;
    let mut offset = 0;
    while line < error.line() && offset < body.len() {
        if body[offset] == b'\n' {
            line += 1;
        }
        offset += 1;
    }
    (offset + error.column().saturating_sub(1)).min(body.len())
}

/// What Go's `json.Unmarshal(body, &v)` reports when `body` does not decode into a value of
/// Go type `go_type` (given for the "cannot unmarshal" case, e.g. `client.authError`).
pub fn decode_error_text(body: &[u8], go_type: &str) -> String {
    if body.iter().all(is_space) {
        return "unexpected end of JSON input".to_string();
    }
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>();
    match stream.next() {
        Some(Ok(value)) => {
            let end = stream.byte_offset();
            if let Some(extra) = body[end..].iter().position(|b| !is_space(b)) {
                return format!(
                    "invalid character {} after top-level value",
                    quote_char(body[end + extra])
                );
            }
            format!(
                "json: cannot unmarshal {} into Go value of type {}",
                kind(&value),
                go_type
            )
        }
        Some(Err(error)) if error.is_eof() => "unexpected end of JSON input".to_string(),
        Some(Err(error)) => {
            let start = body.iter().position(|b| !is_space(b)).unwrap_or(0);
            let at = error_offset(body, &error).max(start);
            let found = body.get(at).copied().unwrap_or(b' ');
            if at == start {
                format!(
                    "invalid character {} looking for beginning of value",
                    quote_char(found)
                )
            } else {
                format!("invalid character {} in JSON input", quote_char(found))
            }
        }
        None => "unexpected end of JSON input".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_go_for_common_non_json_bodies() {
        assert_eq!(
            decode_error_text(b"404 page not found\n", "client.authError"),
            "invalid character 'p' after top-level value"
        );
        assert_eq!(
            decode_error_text(b"<html></html>", "client.authError"),
            "invalid character '<' looking for beginning of value"
        );
        assert_eq!(decode_error_text(b"", "x"), "unexpected end of JSON input");
        assert_eq!(
            decode_error_text(b"{\"a\":", "x"),
            "unexpected end of JSON input"
        );
        assert_eq!(
            decode_error_text(b"[1]", "client.authError"),
            "json: cannot unmarshal array into Go value of type client.authError"
        );
    }
}
