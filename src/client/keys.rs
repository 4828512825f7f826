//! The `/v2/keys` (and members/auth) requests exactly as etcdctl puts them on the wire, and
//! the decoding of key responses.
//!
//! Query and form keys are in alphabetical order, `ttl` only when > 0, `prevValue` only when
//! non-empty, `prevIndex` only when non-zero; keys are cleaned like Go's `path.Clean` with the
//! trailing slash kept. Success bodies decode into [`KeysResponse`]; any other status is the
//! v2 error JSON.

use serde::Deserialize;

pub use super::errors::{AttemptError, ClientError, V2Error};
use super::http::{encode_form, Request, Response, Url};

/// A node as etcd's Go client decodes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Node {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub dir: bool,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub nodes: Option<Vec<Node>>,
    #[serde(rename = "createdIndex", default)]
    pub created_index: u64,
    #[serde(rename = "modifiedIndex", default)]
    pub modified_index: u64,
    /// RFC 3339 text as the server sent it.
    #[serde(default)]
    pub expiration: Option<String>,
    #[serde(default)]
    pub ttl: i64,
}

/// A decoded `/v2/keys` success response plus its headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysResponse {
    pub action: String,
    pub node: Option<Node>,
    pub prev_node: Option<Node>,
    /// `X-Etcd-Index`, 0 when absent.
    pub index: u64,
    /// `X-Etcd-Cluster-Id`, empty when absent.
    pub cluster_id: String,
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    action: String,
    #[serde(default)]
    node: Option<Node>,
    #[serde(rename = "prevNode", default)]
    prev_node: Option<Node>,
}

/// Decodes a `/v2/keys` reply the way the Go client does.
pub fn decode_keys_response(response: &Response) -> Result<KeysResponse, ClientError> {
    match response.status {
        200 | 201 => {
            if response.body.is_empty() {
                return Err(ClientError::EmptyBody);
            }
            let wire: WireResponse =
                serde_json::from_slice(&response.body).map_err(|_| ClientError::InvalidJson)?;
            let index = match response.header("X-Etcd-Index") {
                Some(text) if !text.is_empty() => {
                    text.parse::<u64>()
                        .map_err(|_| ClientError::BadIndexHeader {
                            found: text.to_string(),
                        })?
                }
                _ => 0,
            };
            Ok(KeysResponse {
                action: wire.action,
                node: wire.node,
                prev_node: wire.prev_node,
                index,
                cluster_id: response
                    .header("X-Etcd-Cluster-Id")
                    .unwrap_or("")
                    .to_string(),
            })
        }
        _ => match serde_json::from_slice::<V2Error>(&response.body) {
            Ok(error) => Err(ClientError::V2(error)),
            Err(_) => Err(ClientError::InvalidJson),
        },
    }
}

/// Go's `strconv.Quote` for the `-d "<body>"` part of a `cURL Command:` line.
pub fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `path.Clean` followed by etcd's "keep the trailing slash" rule
/// (`pkg/pathutil.CanonicalURLPath`).
pub fn canonical_url_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let rooted = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{}", path)
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in rooted.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut cleaned = format!("/{}", parts.join("/"));
    if rooted.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

/// Go's `path.Join(base, elem)` for the members URLs.
fn join_path(base: &str, elem: &str) -> String {
    let joined = format!("{}/{}", base, elem);
    let cleaned = canonical_url_path(&joined);
    match cleaned.trim_end_matches('/') {
        "" => "/".to_string(),
        trimmed => trimmed.to_string(),
    }
}

/// What a request does; turned into a [`Request`] per endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `GET /v2/keys/<key>?quorum=&recursive=&sorted=`
    Get {
        key: String,
        recursive: bool,
        sorted: bool,
        quorum: bool,
    },
    /// `GET /v2/keys/<key>?recursive=&wait=true&waitIndex=`
    Wait {
        key: String,
        wait_index: u64,
        recursive: bool,
    },
    /// `PUT /v2/keys/<key>` with a form body.
    Set {
        key: String,
        /// Raw bytes: a value read from stdin is sent as it is, like etcdctl.
        value: Vec<u8>,
        prev_value: String,
        prev_index: u64,
        /// `None`: no `prevExist`; `Some(b)`: `prevExist=b`.
        prev_exist: Option<bool>,
        ttl_seconds: u64,
        dir: bool,
    },
    /// `DELETE /v2/keys/<key>`.
    Delete {
        key: String,
        prev_value: String,
        prev_index: u64,
        dir: bool,
        recursive: bool,
    },
    /// `POST /v2/keys/<dir>` with a form body.
    CreateInOrder {
        dir: String,
        value: Vec<u8>,
        ttl_seconds: u64,
    },
    /// `GET /v2/members`.
    MembersList,
    /// `GET /v2/members/leader`.
    MembersLeader,
    /// `POST /v2/members` with `{"peerURLs":[…]}`.
    MembersAdd { peer_urls: Vec<String> },
    /// `PUT /v2/members/<id>` with `{"peerURLs":[…]}`.
    MembersUpdate { id: String, peer_urls: Vec<String> },
    /// `DELETE /v2/members/<id>`.
    MembersRemove { id: String },
    /// A `/v2/auth/...` request; `path` starts with `/v2/auth`, `body` is JSON.
    Auth {
        method: &'static str,
        path: String,
        body: Option<String>,
    },
}

fn bool_text(value: bool) -> String {
    if value { "true" } else { "false" }.to_string()
}

fn keys_url(endpoint: &Url, key: &str) -> Url {
    let mut url = endpoint.clone();
    let key = if !key.is_empty() && !key.starts_with('/') {
        format!("/{}", key)
    } else {
        key.to_string()
    };
    url.path = canonical_url_path(&format!("{}/v2/keys{}", endpoint.path, key));
    url
}

fn query(pairs: &[(&str, String)]) -> String {
    encode_form(pairs)
}

fn members_body(peer_urls: &[String]) -> Vec<u8> {
    let quoted: Vec<String> = peer_urls
        .iter()
        .map(|u| serde_json::to_string(u).unwrap_or_else(|_| "\"\"".to_string()))
        .collect();
    format!("{{\"peerURLs\":[{}]}}", quoted.join(",")).into_bytes()
}

impl Action {
    /// Is this the one-shot kind (not retried on another endpoint)?
    pub fn is_one_shot(&self) -> bool {
        matches!(
            self,
            Action::Set {
                prev_exist: Some(false),
                ..
            } | Action::Delete { .. }
        )
    }

    /// Is this a long poll (no header timeout, no total deadline)?
    pub fn is_wait(&self) -> bool {
        matches!(self, Action::Wait { .. })
    }

    /// The request for one endpoint.
    pub fn request(&self, endpoint: &Url) -> Request {
        let form_header = || {
            vec![(
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            )]
        };
        let json_header = || vec![("Content-Type".to_string(), "application/json".to_string())];
        match self {
            Action::Get {
                key,
                recursive,
                sorted,
                quorum,
            } => {
                let mut url = keys_url(endpoint, key);
                url.raw_query = query(&[
                    ("recursive", bool_text(*recursive)),
                    ("sorted", bool_text(*sorted)),
                    ("quorum", bool_text(*quorum)),
                ]);
                Request {
                    method: "GET".into(),
                    url,
                    headers: vec![],
                    body: None,
                }
            }
            Action::Wait {
                key,
                wait_index,
                recursive,
            } => {
                let mut url = keys_url(endpoint, key);
                url.raw_query = query(&[
                    ("wait", "true".to_string()),
                    ("waitIndex", wait_index.to_string()),
                    ("recursive", bool_text(*recursive)),
                ]);
                Request {
                    method: "GET".into(),
                    url,
                    headers: vec![],
                    body: None,
                }
            }
            Action::Set {
                key,
                value,
                prev_value,
                prev_index,
                prev_exist,
                ttl_seconds,
                dir,
            } => {
                let mut url = keys_url(endpoint, key);
                let mut params = Vec::new();
                let mut form: Vec<(&str, Vec<u8>)> = Vec::new();
                if *dir {
                    params.push(("dir", "true".to_string()));
                } else {
                    if !prev_value.is_empty() {
                        params.push(("prevValue", prev_value.clone()));
                    }
                    form.push(("value", value.clone()));
                }
                if *prev_index != 0 {
                    params.push(("prevIndex", prev_index.to_string()));
                }
                if let Some(exist) = prev_exist {
                    params.push(("prevExist", bool_text(*exist)));
                }
                if *ttl_seconds > 0 {
                    form.push(("ttl", ttl_seconds.to_string().into_bytes()));
                }
                url.raw_query = query(&params);
                Request {
                    method: "PUT".into(),
                    url,
                    headers: form_header(),
                    body: Some(encode_form(&form).into_bytes()),
                }
            }
            Action::Delete {
                key,
                prev_value,
                prev_index,
                dir,
                recursive,
            } => {
                let mut url = keys_url(endpoint, key);
                let mut params = Vec::new();
                if !prev_value.is_empty() {
                    params.push(("prevValue", prev_value.clone()));
                }
                if *prev_index != 0 {
                    params.push(("prevIndex", prev_index.to_string()));
                }
                if *dir {
                    params.push(("dir", "true".to_string()));
                }
                if *recursive {
                    params.push(("recursive", "true".to_string()));
                }
                url.raw_query = query(&params);
                Request {
                    method: "DELETE".into(),
                    url,
                    headers: form_header(),
                    body: None,
                }
            }
            Action::CreateInOrder {
                dir,
                value,
                ttl_seconds,
            } => {
                let url = keys_url(endpoint, dir);
                let mut form = vec![("value", value.clone())];
                if *ttl_seconds > 0 {
                    form.push(("ttl", ttl_seconds.to_string().into_bytes()));
                }
                Request {
                    method: "POST".into(),
                    url,
                    headers: form_header(),
                    body: Some(encode_form(&form).into_bytes()),
                }
            }
            Action::MembersList | Action::MembersLeader | Action::MembersRemove { .. } => {
                let mut url = endpoint.clone();
                url.raw_query = String::new();
                url.path = join_path(&endpoint.path, "/v2/members");
                let method = match self {
                    Action::MembersLeader => {
                        url.path = join_path(&url.path, "leader");
                        "GET"
                    }
                    Action::MembersRemove { id } => {
                        url.path = join_path(&url.path, id);
                        "DELETE"
                    }
                    _ => "GET",
                };
                Request {
                    method: method.into(),
                    url,
                    headers: vec![],
                    body: None,
                }
            }
            Action::Auth { method, path, body } => {
                let mut url = endpoint.clone();
                url.raw_query = String::new();
                url.path = join_path(&endpoint.path, path);
                let headers = if body.is_some() {
                    json_header()
                } else {
                    vec![]
                };
                Request {
                    method: method.to_string(),
                    url,
                    headers,
                    body: body.as_ref().map(|b| b.clone().into_bytes()),
                }
            }
            Action::MembersAdd { peer_urls } | Action::MembersUpdate { peer_urls, .. } => {
                let mut url = endpoint.clone();
                url.raw_query = String::new();
                url.path = join_path(&endpoint.path, "/v2/members");
                let method = if let Action::MembersUpdate { id, .. } = self {
                    url.path = join_path(&url.path, id);
                    "PUT"
                } else {
                    "POST"
                };
                Request {
                    method: method.into(),
                    url,
                    headers: json_header(),
                    body: Some(members_body(peer_urls)),
                }
            }
        }
    }
}

/// The `cURL Command:` line etcdctl's `--debug` prints for a request.
pub fn curl_line(request: &Request) -> String {
    let mut line = format!("cURL Command: curl -X {} {}", request.method, request.url);
    if let Some(body) = &request.body {
        line.push_str(&format!(" -d {}", go_quote(&String::from_utf8_lossy(body))));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Url {
        Url::parse("http://127.0.0.1:2379").unwrap()
    }

    fn set(key: &str, value: &str) -> Action {
        set_full(key, value, "", None, 0, false)
    }

    fn set_full(
        key: &str,
        value: &str,
        prev_value: &str,
        prev_exist: Option<bool>,
        ttl_seconds: u64,
        dir: bool,
    ) -> Action {
        Action::Set {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            prev_value: prev_value.into(),
            prev_index: 0,
            prev_exist,
            ttl_seconds,
            dir,
        }
    }

    #[test]
    fn wire_requests_match_etcdctl_debug_lines() {
        let ep = endpoint();
        assert_eq!(
            curl_line(&set("/a/b", "hello").request(&ep)),
            "cURL Command: curl -X PUT http://127.0.0.1:2379/v2/keys/a/b -d \"value=hello\""
        );
        let swap = set_full("/a/b", "x y&z", "hello", None, 5, false);
        assert_eq!(
            curl_line(&swap.request(&ep)),
            "cURL Command: curl -X PUT http://127.0.0.1:2379/v2/keys/a/b?prevValue=hello \
             -d \"ttl=5&value=x+y%26z\""
        );
        let mkdir = set_full("/d", "", "", Some(false), 0, true);
        assert_eq!(
            curl_line(&mkdir.request(&ep)),
            "cURL Command: curl -X PUT http://127.0.0.1:2379/v2/keys/d?dir=true&prevExist=false \
             -d \"\""
        );
        let ls = Action::Get {
            key: "/".into(),
            recursive: true,
            sorted: true,
            quorum: false,
        };
        assert_eq!(
            curl_line(&ls.request(&ep)),
            "cURL Command: curl -X GET \
             http://127.0.0.1:2379/v2/keys/?quorum=false&recursive=true&sorted=true"
        );
        let rm = Action::Delete {
            key: "a b?".into(),
            prev_value: String::new(),
            prev_index: 3,
            dir: false,
            recursive: true,
        };
        assert_eq!(
            curl_line(&rm.request(&ep)),
            "cURL Command: curl -X DELETE \
             http://127.0.0.1:2379/v2/keys/a%20b%3F?prevIndex=3&recursive=true"
        );
        let watch = Action::Wait {
            key: "/w".into(),
            wait_index: 0,
            recursive: false,
        };
        assert_eq!(
            watch.request(&ep).url.to_string(),
            "http://127.0.0.1:2379/v2/keys/w?recursive=false&wait=true&waitIndex=0"
        );
        assert_eq!(
            Action::MembersLeader.request(&ep).url.to_string(),
            "http://127.0.0.1:2379/v2/members/leader"
        );
        let add = Action::MembersAdd {
            peer_urls: vec!["http://127.0.0.1:2381".into()],
        };
        assert_eq!(
            curl_line(&add.request(&ep)),
            "cURL Command: curl -X POST http://127.0.0.1:2379/v2/members \
             -d \"{\\\"peerURLs\\\":[\\\"http://127.0.0.1:2381\\\"]}\""
        );
    }

    #[test]
    fn one_shot_and_wait_classification() {
        assert!(!set("/a", "b").is_one_shot());
        assert!(set_full("/a", "b", "", Some(false), 0, false).is_one_shot());
        assert!(Action::Delete {
            key: "/a".into(),
            prev_value: String::new(),
            prev_index: 0,
            dir: false,
            recursive: false
        }
        .is_one_shot());
    }

    #[test]
    fn canonical_paths_keep_trailing_slash() {
        assert_eq!(canonical_url_path("/v2/keys//a/../b/"), "/v2/keys/b/");
        assert_eq!(canonical_url_path("/v2/keys/"), "/v2/keys/");
        assert_eq!(canonical_url_path(""), "/");
        assert_eq!(join_path("/", "/v2/members"), "/v2/members");
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            reason: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn decodes_success_and_error_bodies() {
        let ok = response(
            201,
            &[("X-Etcd-Index", "7"), ("X-Etcd-Cluster-Id", "abc")],
            r#"{"action":"set","node":{"key":"/a","value":"b","modifiedIndex":7,"createdIndex":7}}"#,
        );
        let decoded = decode_keys_response(&ok).unwrap();
        assert_eq!(decoded.index, 7);
        assert_eq!(decoded.node.unwrap().value, "b");
        let error = response(
            404,
            &[],
            r#"{"errorCode":100,"message":"Key not found","cause":"/nokey","index":6}"#,
        );
        assert_eq!(
            decode_keys_response(&error).unwrap_err().to_string(),
            "100: Key not found (/nokey) [6]"
        );
        let garbage = response(404, &[], "404 page not found\n");
        assert_eq!(
            decode_keys_response(&garbage).unwrap_err(),
            ClientError::InvalidJson
        );
        assert_eq!(
            decode_keys_response(&response(200, &[], "")).unwrap_err(),
            ClientError::EmptyBody
        );
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\x01\"");
    }
}
