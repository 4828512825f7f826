//! Proxy mode: a `--proxy on` listener that joins no quorum learns the cluster's client URLs
//! from a peer's `GET /members` and forwards reads, writes and (streamed) watches; `--proxy
//! readonly` refuses writes.

mod support;

use std::time::Duration;

use raftkv::node::Config;
use support::*;

fn proxy_for(server: &Server, mode: &str) -> std::sync::Arc<raftkv::api::proxy::Proxy> {
    let peer = format!(
        "http://{}",
        server
            .node
            .transport
            .as_ref()
            .expect("a transport")
            .local_addr
    );
    let args: Vec<String> = [
        "--proxy",
        mode,
        "--listen-client-urls",
        "http://127.0.0.1:0",
        "--initial-cluster",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("default={peer}")])
    .collect();
    let config = Config::from_args_and_env(&args, |_| None).expect("proxy config parses");
    raftkv::api::proxy::start(&config).expect("proxy starts")
}

#[test]
fn the_peer_port_answers_get_members_with_client_urls() {
    let server = start(&["--advertise-client-urls", "http://127.0.0.1:7"]);
    let peer = format!(
        "http://{}",
        server.node.transport.as_ref().unwrap().local_addr
    );
    let urls =
        raftkv::api::proxy::discover_client_urls(&[peer]).expect("members from the peer port");
    assert_eq!(urls, vec!["http://127.0.0.1:7".to_string()]);
}

#[test]
fn a_proxy_forwards_reads_writes_and_watches() {
    let server = start(&[]);
    let proxy = proxy_for(&server, "on");
    // The in-process node advertises the default client URL, not its port-0 listener.
    proxy.set_endpoints_for_test(vec![format!("http://{}", server.addr)]);
    let addr = proxy.local_addr;
    let reply = put(addr, "/v2/keys/p/k", "value=through");
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(
        reply.header("X-Etcd-Index").is_some(),
        "headers pass through: {}",
        reply.head
    );
    let reply = get(addr, "/v2/keys/p/k");
    assert!(
        reply.body.contains("\"value\":\"through\""),
        "{}",
        reply.body
    );
    let reply = get(addr, "/v2/keys/p/missing");
    assert_eq!(reply.status, 404);
    assert!(reply.body.contains("\"errorCode\":100"));

    let (status, _, mut watch) = open_watch(addr, "/v2/keys/p/k?wait=true");
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        put(server.addr, "/v2/keys/p/k", "value=changed").status,
        200
    );
    let mut event = String::new();
    while !event.ends_with('\n') {
        event.push_str(&read_chunk(&mut watch).expect("the watch event through the proxy"));
    }
    assert!(event.contains("\"value\":\"changed\""), "{event}");
}

#[test]
fn a_readonly_proxy_refuses_writes() {
    let server = start(&[]);
    let proxy = proxy_for(&server, "readonly");
    proxy.set_endpoints_for_test(vec![format!("http://{}", server.addr)]);
    let reply = put(proxy.local_addr, "/v2/keys/r", "value=x");
    assert_eq!(reply.status, 501, "{}", reply.body);
    assert_eq!(get(proxy.local_addr, "/v2/keys/r").status, 404);
}
