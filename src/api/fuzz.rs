//! Fuzz entry point for the request parser: arbitrary bytes become a method, a path, a query
//! and a form body; parsing and validation must never panic, and every validation failure must
//! be a v2 error with index 0 whose JSON renders.

use crate::api::form::{unescape, Form};
use crate::api::keys::{parse_key_request, KeyOp};
use crate::api::render::error_json;

/// Runs one input through form parsing, validation and dispatch.
#[doc(hidden)]
pub fn fuzz_request_parser(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let method = ["GET", "HEAD", "PUT", "POST", "DELETE"][usize::from(selector) % 5];
    let mut parts = rest.splitn(3, |&b| b == 0);
    let path = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();
    let body = parts.next();
    let Ok(path) = unescape(path, false) else {
        return;
    };
    let query = String::from_utf8_lossy(query);
    let (form, error) = Form::parse(&query, body);
    if let Some(error) = error {
        assert!(!error.to_string().is_empty());
        return;
    }
    match parse_key_request(method, &path, &form, 1_800_000_000_000_000_000) {
        Ok(KeyOp::Get { key, .. } | KeyOp::Watch { key, .. }) => {
            assert!(key.starts_with('/'), "store keys are rooted: {key:?}");
        }
        Ok(KeyOp::Write { command, .. }) => {
            let mut encoded = Vec::new();
            command.encode(&mut encoded);
            let decoded =
                crate::store::Command::decode(&encoded).expect("an encoded command decodes");
            assert_eq!(decoded, command, "command codec round trip");
        }
        Err(error) => {
            assert_eq!(error.index, 0, "validation errors carry index 0: {error:?}");
            assert!(error_json(&error).ends_with("}\n"));
        }
    }
}
