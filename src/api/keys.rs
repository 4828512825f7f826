//! `/v2/keys`: turns a request into one key-space operation, validating parameters in etcd's
//! order (the first failure wins) and dispatching methods and parameters to store commands as
//! etcd's v2 applier does (v2-api.md §2.2 and §2.4).
//!
//! Pure: the caller supplies the clock reading used to turn `ttl` into an absolute expiration,
//! so every rule here is unit-tested without a server.

use crate::api::form::{parse_go_bool, parse_go_uint, Form};
use crate::store::{Command, ErrorCode, UnixNanos, V2Error};

/// Expirations before 2000-01-01 mean "no TTL" (etcd's guard against overflowed TTLs).
const MIN_EXPIRATION_UNIX_NANOS: i64 = 946_684_800 * 1_000_000_000;

/// What a `/v2/keys` request asks for, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOp {
    /// A local read (GET, HEAD) or, with `quorum`, a linearizable one.
    Get {
        key: String,
        recursive: bool,
        sorted: bool,
        quorum: bool,
    },
    /// A watch (`wait=true`): one-shot or `stream`.
    Watch {
        key: String,
        recursive: bool,
        stream: bool,
        since_index: u64,
    },
    /// A write to replicate.
    Write {
        command: Command,
        no_value_on_success: bool,
    },
}

/// The store key for a path below `/v2/keys`: Go's `path.Join` cleans it; the root is "/".
pub fn store_key(path_below_keys: &str) -> String {
    clean_path(&format!("/{path_below_keys}"))
}

/// Go's `path.Clean` for absolute paths: collapses `//`, resolves `.` and `..`, drops a
/// trailing slash (except for "/").
pub fn clean_path(path: &str) -> String {
    let already_clean = path.starts_with('/')
        && (path.len() == 1 || !path.ends_with('/'))
        && !path.contains("//")
        && !path.contains("/./")
        && !path.contains("/../")
        && !path.ends_with("/.")
        && !path.ends_with("/..");
    if already_clean {
        return path.to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for part in &parts {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn invalid(code: ErrorCode, cause: &str) -> V2Error {
    V2Error::new(code, cause, 0)
}

fn bool_param(form: &Form, name: &str) -> Result<bool, V2Error> {
    match form.get(name) {
        None => Ok(false),
        Some(text) => parse_go_bool(text).ok_or_else(|| {
            invalid(
                ErrorCode::InvalidField,
                &format!("invalid value for \"{name}\""),
            )
        }),
    }
}

fn index_param(form: &Form, name: &str) -> Result<u64, V2Error> {
    match form.get(name) {
        None => Ok(0),
        Some(text) => parse_go_uint(text).ok_or_else(|| {
            invalid(
                ErrorCode::IndexNaN,
                &format!("invalid value for \"{name}\""),
            )
        }),
    }
}

/// Absolute expiration for `ttl` seconds from `now`, with Go's wrapping arithmetic (so absurd
/// TTLs behave as they do on etcd) and the pre-2000 rule.
pub fn expiration_for_ttl(ttl_seconds: u64, now: UnixNanos) -> Option<UnixNanos> {
    let expire_at = now.wrapping_add((ttl_seconds as i64).wrapping_mul(1_000_000_000));
    (expire_at >= MIN_EXPIRATION_UNIX_NANOS).then_some(expire_at)
}

/// Validates and dispatches one request. `method` is the HTTP method (already checked to be
/// one of HEAD, GET, PUT, POST, DELETE).
pub fn parse_key_request(
    method: &str,
    path_below_keys: &str,
    form: &Form,
    now: UnixNanos,
) -> Result<KeyOp, V2Error> {
    let key = store_key(path_below_keys);
    let prev_index = index_param(form, "prevIndex")?;
    let wait_index = index_param(form, "waitIndex")?;
    let recursive = bool_param(form, "recursive")?;
    let sorted = bool_param(form, "sorted")?;
    let wait = bool_param(form, "wait")?;
    let dir = bool_param(form, "dir")?;
    let quorum = bool_param(form, "quorum")?;
    let stream = bool_param(form, "stream")?;
    if wait && method != "GET" {
        return Err(invalid(
            ErrorCode::InvalidField,
            "\"wait\" can only be used with GET requests",
        ));
    }
    let prev_value = form.value("prevValue").to_string();
    if form.has("prevValue") && prev_value.is_empty() {
        return Err(invalid(
            ErrorCode::PrevValueRequired,
            "\"prevValue\" cannot be empty",
        ));
    }
    let no_value_on_success = bool_param(form, "noValueOnSuccess")?;
    let ttl = match form.value("ttl") {
        "" => None,
        text => Some(
            parse_go_uint(text)
                .ok_or_else(|| invalid(ErrorCode::TtlNaN, "invalid value for \"ttl\""))?,
        ),
    };
    let prev_exist = match form.get("prevExist") {
        None => None,
        Some(text) => Some(
            parse_go_bool(text)
                .ok_or_else(|| invalid(ErrorCode::InvalidField, "invalid value for prevExist"))?,
        ),
    };
    let refresh = match form.get("refresh") {
        None => false,
        Some(text) => {
            let refresh = parse_go_bool(text)
                .ok_or_else(|| invalid(ErrorCode::InvalidField, "invalid value for refresh"))?;
            if refresh {
                if form.has("value") && !form.value("value").is_empty() {
                    return Err(invalid(
                        ErrorCode::RefreshValue,
                        "A value was provided on a refresh",
                    ));
                }
                if ttl.is_none() {
                    return Err(invalid(ErrorCode::RefreshTtlRequired, "No TTL value set"));
                }
            }
            refresh
        }
    };
    let expire_at = ttl.and_then(|ttl| expiration_for_ttl(ttl, now));
    let value = form.value("value").to_string();
    let prev_value = (!prev_value.is_empty()).then_some(prev_value);
    let compare = prev_index > 0 || prev_value.is_some();

    let command = match method {
        "GET" | "HEAD" => {
            if method == "GET" && quorum {
                return Ok(KeyOp::Get { key, recursive, sorted, quorum: true });
            }
            if wait {
                return Ok(KeyOp::Watch { key, recursive, stream, since_index: wait_index });
            }
            return Ok(KeyOp::Get { key, recursive, sorted, quorum: false });
        }
        "POST" => Command::Create { key, value, dir, expire_at, in_order: true },
        "PUT" => match prev_exist {
            Some(true) if !compare => Command::Update { key, value, expire_at, refresh },
            Some(true) => {
                Command::CompareAndSwap { key, value, prev_value, prev_index, expire_at, refresh }
            }
            Some(false) => Command::Create { key, value, dir, expire_at, in_order: false },
            None if compare => {
                Command::CompareAndSwap { key, value, prev_value, prev_index, expire_at, refresh }
            }
            None => Command::Set { key, value, dir, expire_at, refresh },
        },
        "DELETE" if compare => Command::CompareAndDelete { key, prev_value, prev_index },
        "DELETE" => Command::Delete { key, dir, recursive },
        other => panic!("parse_key_request called with method {other:?}; the router admits only HEAD, GET, PUT, POST, DELETE"),
    };
    Ok(KeyOp::Write {
        command,
        no_value_on_success,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000 * 1_000_000_000;

    fn parse(method: &str, path: &str, query: &str, body: &str) -> Result<KeyOp, V2Error> {
        let body = matches!(method, "PUT" | "POST").then_some(body.as_bytes());
        let (form, err) = Form::parse(query, body);
        assert!(err.is_none(), "{err:?}");
        parse_key_request(method, path, &form, NOW)
    }

    fn error_of(result: Result<KeyOp, V2Error>) -> (u16, String) {
        let err = result.expect_err("expected a validation error");
        assert_eq!(err.index, 0, "validation errors carry index 0");
        (err.code.code(), err.cause)
    }

    #[test]
    fn validation_runs_in_etcds_order() {
        let (code, cause) = error_of(parse("GET", "k", "prevIndex=x&waitIndex=y&recursive=z", ""));
        assert_eq!(
            (code, cause.as_str()),
            (203, "invalid value for \"prevIndex\"")
        );
        let (code, cause) = error_of(parse("GET", "k", "waitIndex=y&recursive=z", ""));
        assert_eq!(
            (code, cause.as_str()),
            (203, "invalid value for \"waitIndex\"")
        );
        for name in [
            "recursive",
            "sorted",
            "wait",
            "dir",
            "quorum",
            "stream",
            "noValueOnSuccess",
        ] {
            let (code, cause) = error_of(parse("GET", "k", &format!("{name}="), ""));
            assert_eq!(code, 209);
            assert_eq!(cause, format!("invalid value for \"{name}\""));
        }
        let (code, cause) = error_of(parse("PUT", "k", "wait=true", ""));
        assert_eq!(
            (code, cause.as_str()),
            (209, "\"wait\" can only be used with GET requests")
        );
        let (code, cause) = error_of(parse("PUT", "k", "prevValue=", ""));
        assert_eq!(
            (code, cause.as_str()),
            (201, "\"prevValue\" cannot be empty")
        );
        let (code, cause) = error_of(parse("PUT", "k", "ttl=-1", ""));
        assert_eq!((code, cause.as_str()), (202, "invalid value for \"ttl\""));
        let (code, cause) = error_of(parse("PUT", "k", "prevExist=maybe", ""));
        assert_eq!((code, cause.as_str()), (209, "invalid value for prevExist"));
        let (code, cause) = error_of(parse("PUT", "k", "refresh=x", ""));
        assert_eq!((code, cause.as_str()), (209, "invalid value for refresh"));
        let (code, _) = error_of(parse("PUT", "k", "refresh=true&ttl=5", "value=v"));
        assert_eq!(code, 211);
        let (code, cause) = error_of(parse("PUT", "k", "refresh=true", ""));
        assert_eq!((code, cause.as_str()), (212, "No TTL value set"));
    }

    #[test]
    fn empty_ttl_means_no_ttl_and_body_beats_query() {
        let op = parse("PUT", "k", "ttl=100", "ttl=&value=v").unwrap();
        let KeyOp::Write {
            command: Command::Set {
                expire_at, value, ..
            },
            ..
        } = op
        else {
            panic!("expected set, got {op:?}")
        };
        assert_eq!((expire_at, value.as_str()), (None, "v"));
        let op = parse("PUT", "k", "ttl=abc", "ttl=100").unwrap();
        let KeyOp::Write {
            command: Command::Set { expire_at, .. },
            ..
        } = op
        else {
            panic!()
        };
        assert_eq!(expire_at, Some(NOW + 100_000_000_000));
    }

    #[test]
    fn methods_and_parameters_dispatch_like_etcds_applier() {
        let command = |method, query| match parse(method, "a//b/", query, "value=v").unwrap() {
            KeyOp::Write { command, .. } => command,
            other => panic!("expected a write, got {other:?}"),
        };
        assert!(matches!(command("PUT", ""), Command::Set { key, .. } if key == "/a/b"));
        assert!(matches!(
            command("PUT", "prevExist=true"),
            Command::Update { .. }
        ));
        assert!(matches!(
            command("PUT", "prevExist=true&prevIndex=3"),
            Command::CompareAndSwap { .. }
        ));
        assert!(matches!(
            command("PUT", "prevExist=false&prevValue=x"),
            Command::Create {
                in_order: false,
                ..
            }
        ));
        assert!(matches!(
            command("PUT", "prevValue=x"),
            Command::CompareAndSwap { .. }
        ));
        assert!(matches!(command("PUT", "prevIndex=0"), Command::Set { .. }));
        assert!(matches!(
            command("POST", "prevValue=x"),
            Command::Create { in_order: true, .. }
        ));
        assert!(matches!(
            command("DELETE", "prevIndex=2&recursive=true"),
            Command::CompareAndDelete { .. }
        ));
        assert!(matches!(
            command("DELETE", "recursive=true"),
            Command::Delete {
                recursive: true,
                ..
            }
        ));
        let get = parse("GET", "", "wait=true&quorum=true", "").unwrap();
        assert_eq!(
            get,
            KeyOp::Get {
                key: "/".into(),
                recursive: false,
                sorted: false,
                quorum: true
            }
        );
        let head = parse("HEAD", "k", "quorum=true", "").unwrap();
        assert!(matches!(head, KeyOp::Get { quorum: false, .. }));
        let watch = parse("GET", "k", "wait=true&waitIndex=7&stream=1", "").unwrap();
        assert_eq!(
            watch,
            KeyOp::Watch {
                key: "/k".into(),
                recursive: false,
                stream: true,
                since_index: 7
            }
        );
    }

    #[test]
    fn absurd_ttls_wrap_like_go() {
        assert_eq!(expiration_for_ttl(9_999_999_999, NOW), None);
        assert_eq!(expiration_for_ttl(u64::MAX, NOW), Some(NOW - 1_000_000_000));
        assert_eq!(expiration_for_ttl(0, NOW), Some(NOW));
    }
}
