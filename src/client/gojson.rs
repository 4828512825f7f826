//! The texts of Go's `encoding/json` decode errors, which etcdctl prints verbatim when a
//! server answers the members, auth or health endpoints with something that is not the JSON
//! expected (a plain-text `404 page not found`, an HTML error page, an empty body).

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

/// What Go's `json.Unmarshal(body, &v)` reports when `body` does not decode into a value of
/// Go type `go_type` (given for the "cannot unmarshal" case, e.g. `client.authError`). Syntax
/// errors come from the server's Go-exact scanner ([`crate::api::gojson::syntax_error`]).
pub fn decode_error_text(body: &[u8], go_type: &str) -> String {
    if let Some(syntax) = crate::api::gojson::syntax_error(body) {
        return syntax;
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => format!(
            "json: cannot unmarshal {} into Go value of type {}",
            kind(&value),
            go_type
        ),
        Err(error) => error.to_string(),
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
