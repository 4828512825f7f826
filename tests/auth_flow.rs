//! etcd's v2 auth served by an in-process node: every `/v2/auth` endpoint with its statuses,
//! bodies and messages, the access checks on `/v2/keys` (guest role, Basic credentials,
//! prefix patterns, recursive requests, the uncleaned trailing slash) and on `/v2/members`
//! writes, the etcd-index cost of auth writes, and that the auth state survives a restart on
//! the same data directory. Expected values were taken from etcd 3.4.23 (see v2-api.md §6.6).

mod support;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use raftkv::api::auth::decode_base64_std;
use raftkv::bench::process::free_port;
use raftkv::node::{Config, Node};

static NEXT_DIR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

struct Server {
    addr: SocketAddr,
    node: Arc<Node>,
}

/// Removes the data directory when the test ends, whatever happens.
struct DataDir(PathBuf);

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fresh_data_dir() -> DataDir {
    let dir = std::env::temp_dir().join(format!(
        "raftkv-auth-test-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    DataDir(dir)
}

fn start(data_dir: &Path) -> Server {
    let args: Vec<String> = vec![
        "--listen-client-urls".into(),
        "http://127.0.0.1:0".into(),
        "--listen-peer-urls".into(),
        "http://127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ];
    let config = Config::from_args_and_env(&args, |_| None).expect("test config parses");
    let workers = config.max_client_workers;
    // After a shutdown the stopped Raft loop releases the data directory's lock a moment
    // after it acknowledges; a restart waits for that (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let node = loop {
        match Node::start(config.clone()) {
            Ok(node) => break node,
            Err(e) if format!("{e:?}").contains("DirLocked") => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "data dir still locked after 5 s: {e:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("node starts: {e:?}"),
        }
    };
    assert!(
        node.wait_ready(Duration::from_secs(10)),
        "single node never became ready"
    );
    let server = raftkv::api::server::serve(node.clone(), "http://127.0.0.1:0", workers)
        .expect("binding 127.0.0.1:0");
    Server {
        addr: server.local_addr,
        node,
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    fn etcd_index(&self) -> u64 {
        self.header("X-Etcd-Index")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no X-Etcd-Index in {self:?}"))
    }
}

/// Base64 of `user:password` for a Basic header (checked against the library's decoder).
fn basic(credentials: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = credentials.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let bits = u32::from_be_bytes([0, group[0], group[1], group[2]]);
        for n in 0..4 {
            if n <= chunk.len() {
                out.push(ALPHABET[(bits >> (18 - 6 * n) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    assert_eq!(decode_base64_std(&out).as_deref(), Some(bytes));
    format!("Basic {out}")
}

/// One request on its own connection. `auth` is `user:password`.
fn send(
    server: &Server,
    method: &str,
    target: &str,
    auth: Option<&str>,
    content_type: &str,
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(server.addr).expect("connecting to the test server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    if let Some(credentials) = auth {
        raw.push_str(&format!("Authorization: {}\r\n", basic(credentials)));
    }
    if !body.is_empty() {
        raw.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    stream.write_all(raw.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let (status, head) = support::read_head(&mut reader);
    let mut body = String::new();
    if method != "HEAD" {
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let mut bytes = vec![0; length];
        reader.read_exact(&mut bytes).unwrap();
        body = String::from_utf8_lossy(&bytes).into_owned();
    }
    Reply { status, head, body }
}

fn get(server: &Server, target: &str, auth: Option<&str>) -> Reply {
    send(server, "GET", target, auth, "", "")
}

fn put_json(server: &Server, target: &str, auth: Option<&str>, json: &str) -> Reply {
    send(server, "PUT", target, auth, "application/json", json)
}

fn put_form(server: &Server, target: &str, auth: Option<&str>, form: &str) -> Reply {
    send(
        server,
        "PUT",
        target,
        auth,
        "application/x-www-form-urlencoded",
        form,
    )
}

fn delete(server: &Server, target: &str, auth: Option<&str>) -> Reply {
    send(server, "DELETE", target, auth, "", "")
}

/// The store's current etcd index, read through a key GET.
fn etcd_index(server: &Server, auth: Option<&str>) -> u64 {
    get(server, "/v2/keys/", auth).etcd_index()
}

#[track_caller]
fn expect(reply: &Reply, status: u16, body: &str) {
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (status, body),
        "unexpected reply: {reply:?}"
    );
}

/// An HTTPError of the auth handlers: JSON, no trailing newline, cluster ID present.
#[track_caller]
fn expect_auth_error(reply: &Reply, status: u16, message: &str) {
    expect(reply, status, &format!("{{\"message\":\"{message}\"}}"));
    assert_eq!(
        reply.header("Content-Type").as_deref(),
        Some("application/json")
    );
    assert!(reply.header("X-Etcd-Cluster-Id").is_some(), "{reply:?}");
}

/// The 401 of `/v2/auth` and `/v2/members`: no cluster ID.
#[track_caller]
fn expect_insufficient(reply: &Reply) {
    expect(reply, 401, "{\"message\":\"Insufficient credentials\"}");
    assert!(reply.header("X-Etcd-Cluster-Id").is_none(), "{reply:?}");
}

/// The 401 of `/v2/keys`: v2 error 110 with index 0.
#[track_caller]
fn expect_key_denied(reply: &Reply) {
    expect(
        reply,
        401,
        "{\"errorCode\":110,\"message\":\"The request requires user authentication\",\
         \"cause\":\"Insufficient credentials\",\"index\":0}\n",
    );
    assert_eq!(reply.header("X-Etcd-Index").as_deref(), Some("0"));
}

const ROOT_ROLE_JSON: &str =
    r#"{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}"#;
const GUEST_ROLE_JSON: &str =
    r#"{"role":"guest","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}"#;

#[test]
fn user_and_role_endpoints_answer_like_etcd_and_cost_indexes_like_etcd() {
    let dir = fresh_data_dir();
    let s = start(&dir.0);
    let fresh = etcd_index(&s, None);

    // Routing, method checks and the open state before any write.
    expect(
        &get(&s, "/v2/auth/enable", None),
        200,
        "{\"enabled\":false}\n",
    );
    expect(&get(&s, "/v2/auth/users", None), 200, "{\"users\":null}\n");
    expect(&get(&s, "/v2/auth/users/", None), 200, "{\"users\":null}\n");
    expect(
        &get(&s, "/v2/auth/roles", None),
        200,
        &format!("{{\"roles\":[{ROOT_ROLE_JSON}]}}\n"),
    );
    let reply = send(&s, "POST", "/v2/auth/users", None, "", "");
    expect(&reply, 405, "Method Not Allowed\n");
    assert_eq!(reply.header("Allow").as_deref(), Some("GET"));
    let reply = send(&s, "HEAD", "/v2/auth/enable", None, "", "");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("Allow").as_deref(), Some("GET,PUT,DELETE"));
    let reply = send(&s, "POST", "/v2/auth/roles/a/b", None, "", "");
    expect(&reply, 400, "{\"message\":\"Invalid path\"}");
    assert!(reply.header("X-Etcd-Cluster-Id").is_none());
    expect(&get(&s, "/v2/auth", None), 404, "404 page not found\n");
    expect(
        &get(&s, "/v2/auth/enable/", None),
        404,
        "404 page not found\n",
    );
    expect_auth_error(
        &send(&s, "PUT", "/v2/auth/enable", None, "", ""),
        409,
        "auth: No root user available, please create one",
    );
    expect_auth_error(
        &delete(&s, "/v2/auth/enable", None),
        409,
        "auth: already disabled",
    );
    expect_auth_error(
        &get(&s, "/v2/auth/users/nobody", None),
        404,
        "auth: User nobody does not exist.",
    );
    expect_auth_error(
        &put_json(
            &s,
            "/v2/auth/users/alice",
            None,
            r#"{"user":"alice","password":""}"#,
        ),
        400,
        "auth: Cannot create user alice with an empty password",
    );
    expect_auth_error(
        &put_json(
            &s,
            "/v2/auth/users/alice",
            None,
            r#"{"user":"bob","password":"x"}"#,
        ),
        400,
        "User JSON name does not match the name in the URL",
    );
    expect_auth_error(
        &put_json(&s, "/v2/auth/users/alice", None, "not json"),
        400,
        "Invalid JSON in request body.",
    );
    assert_eq!(
        etcd_index(&s, None),
        fresh,
        "refused requests write nothing"
    );

    // A failed delete is the first write to reach the store: it creates /2, /2/users/,
    // /2/roles/ and /2/enabled (+4) and then finds nothing.
    expect_auth_error(
        &delete(&s, "/v2/auth/users/nobody", None),
        404,
        "auth: User nobody does not exist",
    );
    assert_eq!(etcd_index(&s, None), fresh + 4);

    // Users: create (201), change the password (200, roles [] from null), no-op (400).
    let reply = put_json(
        &s,
        "/v2/auth/users/alice",
        None,
        r#"{"user":"alice","password":"pw"}"#,
    );
    expect(&reply, 201, "{\"user\":\"alice\",\"roles\":null}\n");
    assert!(reply.header("X-Etcd-Cluster-Id").is_some());
    assert_eq!(etcd_index(&s, None), fresh + 5);
    expect(
        &put_json(
            &s,
            "/v2/auth/users/alice",
            None,
            r#"{"user":"alice","password":"pw"}"#,
        ),
        200,
        "{\"user\":\"alice\",\"roles\":[]}\n",
    );
    expect_auth_error(
        &put_json(&s, "/v2/auth/users/alice", None, r#"{"user":"alice"}"#),
        400,
        "auth: User not updated. Use grant/revoke/password to update the user.",
    );
    expect(
        &get(&s, "/v2/auth/users/alice", None),
        200,
        "{\"user\":\"alice\"}\n",
    );
    assert_eq!(etcd_index(&s, None), fresh + 6);

    // Grant and revoke roles on a user; granting a missing role is accepted.
    expect(
        &put_json(
            &s,
            "/v2/auth/users/alice",
            None,
            r#"{"user":"alice","grant":["r1"]}"#,
        ),
        200,
        "{\"user\":\"alice\",\"roles\":[\"r1\"]}\n",
    );
    expect_auth_error(
        &put_json(
            &s,
            "/v2/auth/users/alice",
            None,
            r#"{"user":"alice","grant":["r1"]}"#,
        ),
        409,
        "auth: Granting duplicate role r1 for user alice",
    );
    expect_auth_error(
        &put_json(
            &s,
            "/v2/auth/users/alice",
            None,
            r#"{"user":"alice","revoke":["r9"]}"#,
        ),
        409,
        "auth: Revoking ungranted role r9 for user alice",
    );
    expect_auth_error(
        &put_json(
            &s,
            "/v2/auth/users/alice",
            None,
            r#"{"user":"alice","roles":["x"],"grant":["r2"]}"#,
        ),
        400,
        "User JSON contains both roles and grant/revoke",
    );
    expect_auth_error(
        &put_json(
            &s,
            "/v2/auth/users/carol",
            None,
            r#"{"user":"carol","grant":["r1"]}"#,
        ),
        404,
        "auth: User carol does not exist.",
    );
    expect_auth_error(
        &get(&s, "/v2/auth/users/alice", None),
        404,
        "auth: Role r1 does not exist.",
    );
    // The list skips missing roles instead.
    expect(
        &get(&s, "/v2/auth/users", None),
        200,
        "{\"users\":[{\"user\":\"alice\"}]}\n",
    );
    // Create with roles: 200 (not 201), roles kept in the given order; again: 409.
    let bob = r#"{"user":"bob","password":"b","roles":["zz","r1"]}"#;
    expect(
        &put_json(&s, "/v2/auth/users/bob", None, bob),
        200,
        "{\"user\":\"bob\",\"roles\":[\"zz\",\"r1\"]}\n",
    );
    expect_auth_error(
        &put_json(&s, "/v2/auth/users/bob", None, bob),
        409,
        "auth: User bob already exists.",
    );
    assert_eq!(etcd_index(&s, None), fresh + 8);

    // Roles.
    expect(
        &put_json(&s, "/v2/auth/roles/r1", None, r#"{"role":"r1"}"#),
        201,
        "{\"role\":\"r1\",\"permissions\":{\"kv\":{\"read\":null,\"write\":null}}}\n",
    );
    expect_auth_error(
        &put_json(&s, "/v2/auth/roles/r1", None, r#"{"role":"r1"}"#),
        409,
        "auth: Role r1 already exists.",
    );
    for request in [
        put_json(&s, "/v2/auth/roles/root", None, r#"{"role":"root"}"#),
        put_json(
            &s,
            "/v2/auth/roles/root",
            None,
            r#"{"role":"root","grant":{"kv":{"read":["/x"]}}}"#,
        ),
        delete(&s, "/v2/auth/roles/root", None),
    ] {
        expect_auth_error(
            &request,
            403,
            "auth: Cannot modify role root: is root role.",
        );
    }
    expect(
        &put_json(
            &s,
            "/v2/auth/roles/r3",
            None,
            r#"{"role":"r3","grant":{"kv":{"read":["/b","/a"]}}}"#,
        ),
        404,
        "{\"message\":\"auth: Role r3 does not exist.\"}",
    );
    expect(
        &put_json(
            &s,
            "/v2/auth/roles/r3",
            None,
            r#"{"role":"r3","permissions":{"kv":{"read":["/q"]}}}"#,
        ),
        201,
        "{\"role\":\"r3\",\"permissions\":{\"kv\":{\"read\":[\"/q\"],\"write\":null}}}\n",
    );
    expect(
        &put_json(
            &s,
            "/v2/auth/roles/r3",
            None,
            r#"{"role":"r3","grant":{"kv":{"read":["/b","/a"]}}}"#,
        ),
        200,
        "{\"role\":\"r3\",\"permissions\":{\"kv\":{\"read\":[\"/a\",\"/b\",\"/q\"],\"write\":[]}}}\n",
    );
    expect_auth_error(
        &put_json(
            &s,
            "/v2/auth/roles/r3",
            None,
            r#"{"role":"r3","grant":{"kv":{"write":["/w","/w"]}}}"#,
        ),
        409,
        "auth: Granting duplicate write permission /w",
    );
    expect_auth_error(
        &put_json(
            &s,
            "/v2/auth/roles/r3",
            None,
            r#"{"role":"r3","revoke":{"kv":{"read":["/zz"]}}}"#,
        ),
        400,
        "auth: Role not updated. Use grant/revoke to update the role.",
    );
    expect_auth_error(
        &put_json(
            &s,
            "/v2/auth/roles/r3",
            None,
            r#"{"role":"r3","permissions":{"kv":{"read":["/q"]}},"revoke":{"kv":{"read":["/a"]}}}"#,
        ),
        400,
        "Role JSON contains both permissions and grant/revoke",
    );
    expect_auth_error(
        &put_json(&s, "/v2/auth/roles/r3", None, r#"{"role":"r4"}"#),
        400,
        "Role JSON name does not match the name in the URL",
    );
    expect(
        &put_json(
            &s,
            "/v2/auth/roles/r3",
            None,
            r#"{"role":"r3","revoke":{"kv":{"read":["/a","/b","/q"]}}}"#,
        ),
        200,
        "{\"role\":\"r3\",\"permissions\":{\"kv\":{\"read\":[],\"write\":[]}}}\n",
    );
    expect(
        &get(&s, "/v2/auth/roles", None),
        200,
        &format!(
            "{{\"roles\":[{{\"role\":\"r1\",\"permissions\":{{\"kv\":{{\"read\":null,\"write\":null}}}}}},\
             {{\"role\":\"r3\",\"permissions\":{{\"kv\":{{\"read\":[],\"write\":[]}}}}}},{ROOT_ROLE_JSON}]}}\n"
        ),
    );
    expect(
        &get(&s, "/v2/auth/roles/root", None),
        200,
        &format!("{ROOT_ROLE_JSON}\n"),
    );
    expect_auth_error(
        &get(&s, "/v2/auth/roles/nope", None),
        404,
        "auth: Role nope does not exist.",
    );
    expect_auth_error(
        &delete(&s, "/v2/auth/roles/nope", None),
        404,
        "auth: Role nope doesn't exist.",
    );
    assert_eq!(etcd_index(&s, None), fresh + 12);

    // Deletes answer 200 with no body and cost one index each.
    let reply = delete(&s, "/v2/auth/roles/r3", None);
    expect(&reply, 200, "");
    assert_eq!(
        reply.header("Content-Type").as_deref(),
        Some("application/json")
    );
    expect(&delete(&s, "/v2/auth/users/bob", None), 200, "");
    expect_auth_error(
        &delete(&s, "/v2/auth/users/bob", None),
        404,
        "auth: User bob does not exist",
    );
    assert_eq!(etcd_index(&s, None), fresh + 14);
    expect(
        &get(&s, "/v2/auth/users", None),
        200,
        "{\"users\":[{\"user\":\"alice\",\"roles\":[{\"role\":\"r1\",\"permissions\":{\"kv\":{\"read\":null,\"write\":null}}}]}]}\n",
    );
    // None of this is visible in the key space.
    expect(
        &get(&s, "/v2/keys/", None),
        200,
        "{\"action\":\"get\",\"node\":{\"dir\":true}}\n",
    );
}

/// Creates root (+5 on a fresh store), a reader role and alice, enables auth (+2: guest and
/// the flag) and writes a few keys as root.
fn set_up_enabled_auth(s: &Server) {
    let fresh = etcd_index(s, None);
    expect(
        &put_json(
            s,
            "/v2/auth/users/root",
            None,
            r#"{"user":"root","password":"rootpw"}"#,
        ),
        201,
        "{\"user\":\"root\",\"roles\":[\"root\"]}\n",
    );
    assert_eq!(etcd_index(s, None), fresh + 5);
    expect(
        &put_json(
            s,
            "/v2/auth/roles/reader",
            None,
            r#"{"role":"reader","permissions":{"kv":{"read":["/r1/*","/exact"],"write":["/w1/*"]}}}"#,
        ),
        201,
        "{\"role\":\"reader\",\"permissions\":{\"kv\":{\"read\":[\"/r1/*\",\"/exact\"],\"write\":[\"/w1/*\"]}}}\n",
    );
    expect(
        &put_json(
            s,
            "/v2/auth/users/alice",
            None,
            r#"{"user":"alice","password":"apw","roles":["reader"]}"#,
        ),
        200,
        "{\"user\":\"alice\",\"roles\":[\"reader\"]}\n",
    );
    let before_enable = etcd_index(s, None);
    expect(&send(s, "PUT", "/v2/auth/enable", None, "", ""), 200, "");
    assert_eq!(etcd_index(s, Some("root:rootpw")), before_enable + 2);
    for (key, value) in [("r1/a", "ra"), ("exact", "e"), ("open", "o")] {
        let reply = put_form(
            s,
            &format!("/v2/keys/{key}"),
            Some("root:rootpw"),
            &format!("value={value}"),
        );
        assert_eq!(reply.status, 201, "{reply:?}");
    }
}

#[test]
fn enabled_auth_guards_keys_auth_and_members_by_etcd_rules() {
    let dir = fresh_data_dir();
    let s = start(&dir.0);
    set_up_enabled_auth(&s);
    let root = Some("root:rootpw");
    let alice = Some("alice:apw");

    expect(
        &get(&s, "/v2/auth/enable", None),
        200,
        "{\"enabled\":true}\n",
    );
    expect_auth_error(
        &send(&s, "PUT", "/v2/auth/enable", root, "", ""),
        409,
        "auth: already enabled",
    );
    expect(
        &get(&s, "/v2/auth/roles", root),
        200,
        &format!("{{\"roles\":[{GUEST_ROLE_JSON},{{\"role\":\"reader\",\"permissions\":{{\"kv\":{{\"read\":[\"/r1/*\",\"/exact\"],\"write\":[\"/w1/*\"]}}}}}},{ROOT_ROLE_JSON}]}}\n"),
    );
    expect_auth_error(
        &delete(&s, "/v2/auth/users/root", root),
        403,
        "auth: Cannot delete root user while auth is enabled.",
    );

    // /v2/auth needs a root user: no credentials, a wrong password, an unknown user, a
    // malformed header and a non-root user are all refused.
    expect_insufficient(&send(&s, "PUT", "/v2/auth/enable", None, "", ""));
    expect_insufficient(&get(&s, "/v2/auth/users", None));
    expect_insufficient(&get(&s, "/v2/auth/users", Some("root:wrong")));
    expect_insufficient(&get(&s, "/v2/auth/users", Some("ghost:x")));
    expect_insufficient(&get(&s, "/v2/auth/roles/reader", alice));
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream
        .write_all(b"GET /v2/auth/users HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer x\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");
    assert_eq!(get(&s, "/v2/auth/users", root).status, 200);

    // /v2/members: reads open, writes need root (the 401 comes before any other check).
    assert_eq!(get(&s, "/v2/members", None).status, 200);
    expect_insufficient(&send(
        &s,
        "POST",
        "/v2/members",
        alice,
        "application/json",
        r#"{"peerURLs":["http://127.0.0.1:1"]}"#,
    ));
    expect_insufficient(&delete(&s, "/v2/members", None));
    expect_insufficient(&put_json(&s, "/v2/members/abc", None, "{}"));
    assert_eq!(delete(&s, "/v2/members/abc", root).status, 404);

    // Keys: the guest role (all access by default) serves requests without credentials.
    assert_eq!(get(&s, "/v2/keys/open", None).status, 200);
    expect_key_denied(&get(&s, "/v2/keys/open", Some("root:wrong")));
    expect_key_denied(&get(&s, "/v2/keys/open", Some("ghost:x")));

    // alice: read /r1/* and /exact, write /w1/*.
    assert_eq!(get(&s, "/v2/keys/r1/a", alice).status, 200);
    assert_eq!(get(&s, "/v2/keys/r1/a?recursive=true", alice).status, 200);
    expect_key_denied(&get(&s, "/v2/keys/r1?recursive=true", alice));
    assert_eq!(get(&s, "/v2/keys/r1/?recursive=true", alice).status, 200);
    expect_key_denied(&get(&s, "/v2/keys/r1", alice));
    assert_eq!(get(&s, "/v2/keys/r1/", alice).status, 200);
    assert_eq!(get(&s, "/v2/keys/exact", alice).status, 200);
    expect_key_denied(&get(&s, "/v2/keys/exact?recursive=true", alice));
    expect_key_denied(&get(&s, "/v2/keys/exact/", alice));
    expect_key_denied(&put_form(&s, "/v2/keys/r1/a", alice, "value=no"));
    expect_key_denied(&delete(&s, "/v2/keys/r1/a", alice));
    assert_eq!(
        put_form(&s, "/v2/keys/w1/a", alice, "value=yes").status,
        201
    );
    expect_key_denied(&get(&s, "/v2/keys/w1/a", alice));
    assert_eq!(send(&s, "HEAD", "/v2/keys/r1/a", alice, "", "").status, 200);
    expect_key_denied(&get(&s, "/v2/keys", alice));
    expect_key_denied(&get(&s, "/v2/keys/", alice));
    // A watch needs read access only; validation errors come before the access check.
    assert_eq!(
        get(&s, "/v2/keys/r1/a?wait=true&waitIndex=1", alice).status,
        200
    );
    expect_key_denied(&get(&s, "/v2/keys/w1/a?wait=true&waitIndex=1", alice));
    assert_eq!(get(&s, "/v2/keys/w1/a?prevExist=x", alice).status, 400);
    // Root reaches everything.
    assert_eq!(get(&s, "/v2/keys?recursive=true", root).status, 200);

    // Disabling and enabling again cost one index each: the guest role exists already.
    let before = etcd_index(&s, root);
    expect(&delete(&s, "/v2/auth/enable", root), 200, "");
    expect(&send(&s, "PUT", "/v2/auth/enable", root, "", ""), 200, "");
    assert_eq!(etcd_index(&s, root), before + 2);

    // Narrow the guest role: without credentials only /open is readable, not writable; the
    // guest check ignores `recursive` (etcd's hasGuestAccess).
    expect(
        &put_json(
            &s,
            "/v2/auth/roles/guest",
            root,
            r#"{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}"#,
        ),
        200,
        "{\"role\":\"guest\",\"permissions\":{\"kv\":{\"read\":[],\"write\":[]}}}\n",
    );
    expect_key_denied(&get(&s, "/v2/keys/open", None));
    put_json(
        &s,
        "/v2/auth/roles/guest",
        root,
        r#"{"role":"guest","grant":{"kv":{"read":["/open"]}}}"#,
    );
    assert_eq!(get(&s, "/v2/keys/open", None).status, 200);
    assert_eq!(get(&s, "/v2/keys/open?recursive=true", None).status, 200);
    expect_key_denied(&put_form(&s, "/v2/keys/open", None, "value=2"));
    expect(&delete(&s, "/v2/auth/roles/guest", root), 200, "");
    expect_key_denied(&get(&s, "/v2/keys/open", None));

    // Granting the root role to a user makes it an administrator; a password change takes
    // effect at once (the old password's cached check no longer matches).
    put_json(
        &s,
        "/v2/auth/users/alice",
        root,
        r#"{"user":"alice","grant":["root"]}"#,
    );
    assert_eq!(get(&s, "/v2/auth/users", alice).status, 200);
    expect(
        &put_json(
            &s,
            "/v2/auth/users/alice",
            alice,
            r#"{"user":"alice","password":"new"}"#,
        ),
        200,
        "{\"user\":\"alice\",\"roles\":[\"reader\",\"root\"]}\n",
    );
    expect_insufficient(&get(&s, "/v2/auth/users", alice));
    assert_eq!(get(&s, "/v2/auth/users", Some("alice:new")).status, 200);

    // Disabling opens everything again; root can then be deleted.
    expect(&delete(&s, "/v2/auth/enable", Some("alice:new")), 200, "");
    expect(
        &get(&s, "/v2/auth/enable", None),
        200,
        "{\"enabled\":false}\n",
    );
    assert_eq!(get(&s, "/v2/keys/open", None).status, 200);
    expect(&delete(&s, "/v2/auth/users/root", None), 200, "");
    expect_auth_error(
        &send(&s, "PUT", "/v2/auth/enable", None, "", ""),
        409,
        "auth: No root user available, please create one",
    );
}

#[test]
fn auth_state_survives_a_restart_on_the_same_data_dir() {
    let dir = fresh_data_dir();
    let before = {
        let s = start(&dir.0);
        set_up_enabled_auth(&s);
        let index = etcd_index(&s, Some("root:rootpw"));
        s.node.shutdown();
        index
    };
    let s = start(&dir.0);
    expect(
        &get(&s, "/v2/auth/enable", None),
        200,
        "{\"enabled\":true}\n",
    );
    expect_insufficient(&get(&s, "/v2/auth/users", None));
    assert_eq!(get(&s, "/v2/auth/users", Some("root:rootpw")).status, 200);
    assert_eq!(get(&s, "/v2/keys/r1/a", Some("alice:apw")).status, 200);
    expect_key_denied(&get(&s, "/v2/keys/r1/a", Some("alice:wrong")));
    expect_key_denied(&get(&s, "/v2/keys/exact?recursive=true", Some("alice:apw")));
    // The restart itself costs one index (the member publishes its attributes again), and
    // the next auth write no longer recreates the auth directories.
    assert_eq!(etcd_index(&s, Some("root:rootpw")), before + 1);
    expect(
        &put_json(
            &s,
            "/v2/auth/roles/r9",
            Some("root:rootpw"),
            r#"{"role":"r9"}"#,
        ),
        201,
        "{\"role\":\"r9\",\"permissions\":{\"kv\":{\"read\":null,\"write\":null}}}\n",
    );
    assert_eq!(etcd_index(&s, Some("root:rootpw")), before + 2);
}

/// Polls `check` on `server` for at most five seconds (followers apply a little later).
#[track_caller]
fn eventually(server: &Server, what: &str, check: impl Fn(&Server) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !check(server) {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not true on {} within 5 s",
            server.addr
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn auth_records_replicate_to_every_member_of_a_cluster() {
    let dirs: Vec<DataDir> = (0..3).map(|_| fresh_data_dir()).collect();
    let peer_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let initial_cluster = peer_ports
        .iter()
        .enumerate()
        .map(|(n, port)| format!("m{n}=http://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",");
    let nodes: Vec<Arc<Node>> = (0..3)
        .map(|n| {
            let peer_url = format!("http://127.0.0.1:{}", peer_ports[n]);
            let args: Vec<String> = [
                "--name",
                &format!("m{n}"),
                "--listen-client-urls",
                "http://127.0.0.1:0",
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &initial_cluster,
                "--data-dir",
                &dirs[n].0.display().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let config = Config::from_args_and_env(&args, |_| None).expect("test config parses");
            Node::start(config).expect("member starts")
        })
        .collect();
    let members: Vec<Server> = nodes
        .into_iter()
        .map(|node| {
            assert!(
                node.wait_ready(Duration::from_secs(15)),
                "a member never became ready"
            );
            let workers = node.config.max_client_workers;
            let server = raftkv::api::server::serve(node.clone(), "http://127.0.0.1:0", workers)
                .expect("binding 127.0.0.1:0");
            Server {
                addr: server.local_addr,
                node,
            }
        })
        .collect();
    let (a, b, c) = (&members[0], &members[1], &members[2]);

    // Writes through three different members, whichever leads.
    assert_eq!(
        put_json(
            a,
            "/v2/auth/users/root",
            None,
            r#"{"user":"root","password":"rootpw"}"#
        )
        .status,
        201
    );
    assert_eq!(
        put_json(
            b,
            "/v2/auth/roles/reader",
            None,
            r#"{"role":"reader","permissions":{"kv":{"read":["/r1/*"]}}}"#
        )
        .status,
        201
    );
    assert_eq!(
        put_json(
            c,
            "/v2/auth/users/alice",
            None,
            r#"{"user":"alice","password":"apw","roles":["reader"]}"#
        )
        .status,
        200
    );
    expect(&send(b, "PUT", "/v2/auth/enable", None, "", ""), 200, "");
    assert_eq!(
        put_form(c, "/v2/keys/r1/a", Some("root:rootpw"), "value=1").status,
        201
    );
    let index = etcd_index(c, Some("root:rootpw"));
    for member in &members {
        eventually(member, "same etcd index", |s| {
            etcd_index(s, Some("root:rootpw")) == index
        });
        expect(
            &get(member, "/v2/auth/enable", None),
            200,
            "{\"enabled\":true}\n",
        );
        expect_insufficient(&get(member, "/v2/auth/users", Some("alice:apw")));
        assert_eq!(
            get(member, "/v2/auth/users", Some("root:rootpw")).status,
            200
        );
        assert_eq!(get(member, "/v2/keys/r1/a", Some("alice:apw")).status, 200);
        expect_key_denied(&get(member, "/v2/keys/r1/a", Some("alice:wrong")));
        expect_key_denied(&put_form(
            member,
            "/v2/keys/r1/a",
            Some("alice:apw"),
            "value=2",
        ));
    }
    for member in &members {
        member.node.shutdown();
    }
}
