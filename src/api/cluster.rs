//! Endpoints about the cluster rather than the key space: `/v2/members`, `/v2/machines`,
//! `/v2/stats/*`, `/version`, `/health`, `/metrics`, in etcd's shapes (v2-api.md §6).

use crate::api::http::Reply;
use crate::api::json::{go_duration, push_string, rfc3339_nanos};
use crate::api::render::message_json;
use crate::node::{ids::format_id, now_unix_nanos, Member, Node, ProposeError};
use crate::raft::Role;

/// The server version reported by `/version` (clients gate features on an etcd version).
pub const ETCD_SERVER_VERSION: &str = "3.4.23";
pub const ETCD_CLUSTER_VERSION: &str = "3.4.0";

fn push_string_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(out, item);
    }
    out.push(']');
}

/// One member's JSON: `{"id":..,"name":..,"peerURLs":[..],"clientURLs":[..]}`.
pub fn member_json(member: &Member) -> String {
    let mut out = String::from("{\"id\":");
    push_string(&mut out, &format_id(member.id));
    out.push_str(",\"name\":");
    push_string(&mut out, &member.name);
    out.push_str(",\"peerURLs\":");
    push_string_list(&mut out, &member.peer_urls);
    out.push_str(",\"clientURLs\":");
    push_string_list(&mut out, &member.client_urls);
    out.push('}');
    out
}

/// A request to `/v2/members*` as the handler needs it.
pub struct MembersRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub content_type: Option<&'a str>,
    /// The body, or why it did not arrive whole.
    pub body: Result<&'a [u8], &'a crate::api::request_body::BodyError>,
}

/// The peer URLs of a member add or update body, checked as etcd checks them.
fn parse_peer_urls(
    content_type: Option<&str>,
    body: Result<&[u8], &crate::api::request_body::BodyError>,
) -> Result<Vec<String>, Reply> {
    let media_type = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type != "application/json" {
        let shown = content_type.unwrap_or("");
        return Err(Reply::json(
            415,
            message_json(&format!(
                "Bad Content-Type {shown}, accept application/json"
            )),
        ));
    }
    // etcd reads the body after the media type check and answers a failed read with 400.
    let body = body.map_err(|e| Reply::json(400, message_json(&e.to_string())))?;
    #[derive(serde::Deserialize)]
    struct MemberCreateRequest {
        #[serde(rename = "peerURLs", default)]
        peer_urls: Vec<String>,
    }
    if let Some(error) = crate::api::gojson::syntax_error(body) {
        return Err(Reply::json(400, message_json(&error)));
    }
    let request: MemberCreateRequest =
        serde_json::from_slice(body).map_err(|e| Reply::json(400, message_json(&e.to_string())))?;
    if request.peer_urls.is_empty() {
        return Err(Reply::json(400, message_json("no valid URLs given")));
    }
    for url in &request.peer_urls {
        let scheme = url
            .split_once("://")
            .map(|(scheme, _)| scheme)
            .unwrap_or("");
        if !matches!(scheme, "http" | "https" | "unix" | "unixs") {
            return Err(Reply::json(
                400,
                message_json(&format!(
                    "URL scheme must be http, https, unix, or unixs: {url}"
                )),
            ));
        }
    }
    Ok(request.peer_urls)
}

fn membership_error(error: ProposeError) -> Reply {
    let _ = error;
    Reply::json(500, message_json("Internal Server Error"))
}

pub fn members(node: &Node, request: MembersRequest<'_>) -> Reply {
    let method = request.method;
    if !matches!(method, "GET" | "POST" | "DELETE" | "PUT") {
        return Reply::method_not_allowed(&["GET", "POST", "DELETE", "PUT"]);
    }
    let cluster_id = format_id(node.cluster_id);
    let rest = request
        .path
        .strip_prefix("/v2/members")
        .unwrap_or("")
        .trim_start_matches('/');
    let reply = match (method, rest) {
        ("GET", "") => {
            let members = node.members.read();
            let list: Vec<String> = members.iter().map(member_json).collect();
            Reply::json(200, format!("{{\"members\":[{}]}}\n", list.join(",")))
        }
        ("GET", "leader") => {
            let leader = node.leader_id();
            match node
                .members
                .read()
                .iter()
                .find(|m| m.id == leader && leader != 0)
            {
                Some(member) => Reply::json(200, format!("{}\n", member_json(member))),
                None => Reply::json(503, message_json("During election")),
            }
        }
        ("GET", _) => Reply::json(404, message_json("Not found")),
        ("PUT" | "DELETE", "") => {
            return Reply::go_error(405, "Method Not Allowed")
                .with_headers_cleared_but_cluster(&cluster_id)
        }
        ("POST", _) => match parse_peer_urls(request.content_type, request.body) {
            Err(reply) => reply,
            Ok(urls) => {
                let taken = node
                    .members
                    .read()
                    .iter()
                    .any(|m| m.peer_urls.iter().any(|u| urls.contains(u)));
                if taken {
                    Reply::json(409, message_json("membership: peerURL exists"))
                } else {
                    match node.add_member(urls, false) {
                        Ok(member) => Reply::json(201, format!("{}\n", member_json(&member))),
                        Err(error) => membership_error(error),
                    }
                }
            }
        },
        ("PUT" | "DELETE", id_text) => {
            let Ok(id) = u64::from_str_radix(id_text, 16) else {
                return Reply::json(404, message_json(&format!("No such member: {id_text}")))
                    .header("X-Etcd-Cluster-Id", cluster_id);
            };
            let known = node.members.read().iter().any(|m| m.id == id);
            if method == "PUT" {
                match parse_peer_urls(request.content_type, request.body) {
                    Err(reply) => reply,
                    Ok(_) if !known => Reply::json(
                        404,
                        message_json(&format!("No such member: {}", format_id(id))),
                    ),
                    Ok(urls) => {
                        let taken =
                            node.members.read().iter().any(|m| {
                                m.id != id && m.peer_urls.iter().any(|u| urls.contains(u))
                            });
                        if taken {
                            Reply::json(409, message_json("membership: peerURL exists"))
                        } else {
                            match node.update_member(id, urls) {
                                Ok(()) => Reply::empty(204),
                                Err(error) => membership_error(error),
                            }
                        }
                    }
                }
            } else if node.removed_members.read().contains(&id) {
                Reply::json(
                    410,
                    message_json(&format!("Member permanently removed: {}", format_id(id))),
                )
            } else if !known {
                Reply::json(
                    404,
                    message_json(&format!("No such member: {}", format_id(id))),
                )
            } else if node.members.read().len() == 1 {
                Reply::json(500, message_json("Internal Server Error"))
            } else {
                match node.remove_member(id) {
                    Ok(()) => Reply::empty(204),
                    Err(error) => membership_error(error),
                }
            }
        }
        _ => Reply::json(404, message_json("Not found")),
    };
    reply.header("X-Etcd-Cluster-Id", cluster_id)
}

pub fn machines(node: &Node, method: &str) -> Reply {
    if !matches!(method, "GET" | "HEAD") {
        return Reply::method_not_allowed(&["GET", "HEAD"]);
    }
    let mut urls: Vec<String> = node
        .members
        .read()
        .iter()
        .flat_map(|m| m.client_urls.iter().cloned())
        .collect();
    urls.sort();
    Reply::new(200, "text/plain; charset=utf-8", urls.join(", "))
}

pub fn stats(node: &Node, method: &str, which: &str) -> Reply {
    // GET only: etcd answers HEAD with 405 too (diff scenario route-stats-self).
    if method != "GET" {
        return Reply::method_not_allowed(&["GET"]);
    }
    match which {
        "self" => {
            let now = now_unix_nanos();
            let status = node.status.read().clone();
            let state = match status.role {
                Role::Leader => "StateLeader",
                Role::Candidate => "StateCandidate",
                Role::PreCandidate => "StatePreCandidate",
                Role::Follower => "StateFollower",
            };
            let id = format_id(node.member_id);
            let mut out = String::from("{\"name\":");
            push_string(&mut out, &node.config.name);
            out.push_str(&format!(
                ",\"id\":\"{id}\",\"state\":\"{state}\",\"startTime\":"
            ));
            push_string(&mut out, &rfc3339_nanos(node.start_time_unix_nanos));
            out.push_str(&format!(
                ",\"leaderInfo\":{{\"leader\":\"{}\",\"uptime\":",
                format_id(status.leader_id)
            ));
            let uptime = (now - status.leader_since_unix_nanos).max(0) as u64;
            push_string(&mut out, &go_duration(uptime));
            out.push_str(",\"startTime\":");
            push_string(&mut out, &rfc3339_nanos(status.leader_since_unix_nanos));
            let (received, sent) = {
                let stats = node.peer_stats.lock();
                (stats.recv_append_requests, stats.send_append_requests)
            };
            out.push_str(&format!(
                "}},\"recvAppendRequestCnt\":{received},\"sendAppendRequestCnt\":{sent}}}"
            ));
            Reply::json(200, out)
        }
        "leader" if !node.is_leader() => Reply::json(403, message_json("not current leader")),
        "leader" => {
            let members: Vec<u64> = node.members.read().iter().map(|m| m.id).collect();
            Reply::json(
                200,
                node.peer_stats.lock().leader_json(node.member_id, &members),
            )
        }
        _ => {
            node.watches.reap_closed();
            Reply::json(200, node.store.read().stats_json())
        }
    }
}

pub fn version(method: &str) -> Reply {
    if method != "GET" {
        return Reply::method_not_allowed(&["GET"]);
    }
    Reply::json(
        200,
        format!("{{\"etcdserver\":\"{ETCD_SERVER_VERSION}\",\"etcdcluster\":\"{ETCD_CLUSTER_VERSION}\"}}"),
    )
}

pub fn health(node: &Node, method: &str) -> Reply {
    if method != "GET" {
        return Reply::method_not_allowed(&["GET"]);
    }
    if node.leader_id() == 0 {
        return Reply::new(503, "text/plain; charset=utf-8", "{\"health\":\"false\"}\n");
    }
    match node.read_barrier(std::time::Duration::from_secs(1)) {
        Ok(_) => Reply::new(200, "text/plain; charset=utf-8", "{\"health\":\"true\"}"),
        Err(_) => Reply::new(503, "text/plain; charset=utf-8", "{\"health\":\"false\"}\n"),
    }
}

/// Prometheus text with etcd's metric names where they apply.
pub fn metrics(node: &Node) -> Reply {
    let store = node.store.read();
    let body = format!(
        "# HELP etcd_debugging_store_watchers Count of currently active watchers.\n\
         # TYPE etcd_debugging_store_watchers gauge\n\
         etcd_debugging_store_watchers {}\n\
         # HELP etcd_server_has_leader Whether or not a leader exists. 1 is existence, 0 is not.\n\
         # TYPE etcd_server_has_leader gauge\n\
         etcd_server_has_leader 1\n\
         # HELP raftkv_store_index The store's current etcd index.\n\
         # TYPE raftkv_store_index gauge\n\
         raftkv_store_index {}\n\
         # HELP raftkv_raft_applied_index The last applied raft index.\n\
         # TYPE raftkv_raft_applied_index gauge\n\
         raftkv_raft_applied_index {}\n",
        store.watcher_count(),
        store.current_index(),
        node.raft_index(),
    );
    drop(store);
    let mut body = body;
    node.wal_sync_latency.render_prometheus(
        "etcd_disk_wal_fsync_duration_seconds",
        "The latency of the WAL's syncs (msync of the written range), one per batch of entries.",
        &mut body,
    );
    Reply::new(200, "text/plain; version=0.0.4", body)
}

/// `/debug/vars`, in the shape of Go's expvar page: the command line and memory figures.
pub fn debug_vars(node: &Node, method: &str) -> Reply {
    if method != "GET" {
        return Reply::method_not_allowed(&["GET"]);
    }
    let args: Vec<String> = std::env::args().collect();
    let mut out = String::from("{\n\"cmdline\": ");
    push_string_list(&mut out, &args);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    out.push_str(&format!(
        ",\n\"memstats\": {{\"Sys\": {}, \"HeapInuse\": {}}},\n\"raftkv\": {{\"etcdIndex\": {}, \"raftIndex\": {}}}\n}}\n",
        kib("VmSize:") * 1024,
        kib("VmRSS:") * 1024,
        node.store.read().current_index(),
        node.raft_index()
    ));
    Reply::new(200, "application/json; charset=utf-8", out)
}

/// `/config/local/log` (deprecated in etcd, kept for tools that still call it): `PUT` a JSON
/// object whose `Level` (any case of the field name) is a log level; 204 when it is one.
/// raftkv logs only to stderr and has no levels, so the level is checked and accepted.
pub fn log_level(method: &str, body: &[u8]) -> Reply {
    if method != "PUT" {
        return Reply::method_not_allowed(&["PUT"]);
    }
    let invalid = || Reply::json(400, message_json("Invalid json body"));
    // Go decodes one JSON value and ignores what follows it.
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>();
    let Some(Ok(value)) = values.next() else {
        return invalid();
    };
    let level = match &value {
        serde_json::Value::Object(fields) => {
            let found = fields
                .iter()
                .rev()
                .find(|(name, _)| name.eq_ignore_ascii_case("level"));
            match found.map(|(_, v)| v) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(level)) => level.clone(),
                Some(_) => return invalid(),
            }
        }
        serde_json::Value::Null => String::new(),
        _ => return invalid(),
    };
    let known = [
        "CRITICAL", "C", "ERROR", "0", "E", "WARNING", "1", "W", "NOTICE", "2", "N", "INFO", "3",
        "I", "DEBUG", "4", "D", "TRACE", "5", "T",
    ];
    if known.contains(&level.to_uppercase().as_str()) {
        Reply::empty(204)
    } else {
        Reply::json(400, message_json(&format!("Invalid log level {level}")))
    }
}
