//! Endpoints about the cluster rather than the key space: `/v2/members`, `/v2/machines`,
//! `/v2/stats/*`, `/version`, `/health`, `/metrics`, in etcd's shapes (v2-api.md §6).

use crate::api::http::Reply;
use crate::api::json::{go_duration, push_string, rfc3339_nanos};
use crate::api::render::message_json;
use crate::node::{ids::format_id, now_unix_nanos, Member, Node};

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

pub fn members(node: &Node, method: &str, path: &str) -> Reply {
    if !matches!(method, "GET" | "POST" | "DELETE" | "PUT") {
        return Reply::method_not_allowed(&["GET", "POST", "DELETE", "PUT"]);
    }
    let cluster_id = format_id(node.cluster_id);
    let rest = path
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
            match node.members.read().iter().find(|m| m.id == leader) {
                Some(member) => Reply::json(200, format!("{}\n", member_json(member))),
                None => Reply::json(503, message_json("During election")),
            }
        }
        ("GET", _) => Reply::json(404, message_json("Not found")),
        // etcd's 405 here has no Allow header but, unlike the method check above, does
        // carry X-Etcd-Cluster-Id (diff scenario route-members-405).
        ("PUT" | "DELETE", "") => Reply::go_error(405, "Method Not Allowed"),
        _ => Reply::json(
            500,
            message_json("raftkv: membership changes need the replicated cluster, not built yet"),
        ),
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
            let id = format_id(node.member_id);
            let mut out = String::from("{\"name\":");
            push_string(&mut out, &node.config.name);
            out.push_str(&format!(
                ",\"id\":\"{id}\",\"state\":\"StateLeader\",\"startTime\":"
            ));
            push_string(&mut out, &rfc3339_nanos(node.start_time_unix_nanos));
            out.push_str(&format!(
                ",\"leaderInfo\":{{\"leader\":\"{}\",\"uptime\":",
                format_id(node.leader_id())
            ));
            let uptime = (now - node.leader_since_unix_nanos).max(0) as u64;
            push_string(&mut out, &go_duration(uptime));
            out.push_str(",\"startTime\":");
            push_string(&mut out, &rfc3339_nanos(node.leader_since_unix_nanos));
            out.push_str("},\"recvAppendRequestCnt\":0,\"sendAppendRequestCnt\":0}");
            Reply::json(200, out)
        }
        "leader" => Reply::json(
            200,
            format!(
                "{{\"leader\":\"{}\",\"followers\":{{}}}}",
                format_id(node.member_id)
            ),
        ),
        _ => Reply::json(200, node.store.read().stats_json()),
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
    match node.barrier() {
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
    Reply::new(200, "text/plain; version=0.0.4", body)
}
