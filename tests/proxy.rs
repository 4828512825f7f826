//! Proxy mode: a `--proxy on` listener that joins no quorum learns the cluster's client URLs
//! from a peer's `GET /members` and forwards reads, writes and (streamed) watches; `--proxy
//! readonly` refuses writes.

mod support;

use std::time::Duration;

use raftkv::node::Config;
use support::*;

fn proxy_for(server: &Server, mode: &str) -> std::sync::Arc<raftkv::api::proxy::Proxy> {
    proxy_with(server, mode, &[])
}

/// A proxy in `mode` (with `extra` flags) that forwards to `server`'s client listener. The
/// in-process member advertises the default client URL, not its port-0 listener, so the
/// proxy's member list is set to that listener, for good.
fn proxy_with(
    server: &Server,
    mode: &str,
    extra: &[&str],
) -> std::sync::Arc<raftkv::api::proxy::Proxy> {
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
    .chain(extra.iter().map(|s| s.to_string()))
    .collect();
    let config = Config::from_args_and_env(&args, |_| None).expect("proxy config parses");
    let proxy = raftkv::api::proxy::start(&config).expect("proxy starts");
    proxy.set_endpoints_for_test(vec![format!("http://{}", server.addr)]);
    proxy
}

/// Reads one watch event streamed through the proxy, which may pass it on in several chunks.
fn read_streamed_event(reader: &mut impl std::io::BufRead, what: &str) -> String {
    let mut event = String::new();
    while !event.ends_with('\n') {
        event.push_str(&read_chunk(reader).unwrap_or_else(|| panic!("{what}")));
    }
    event
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
    let event = read_streamed_event(&mut watch, "the watch event through the proxy");
    assert!(event.contains("\"value\":\"changed\""), "{event}");
}

#[test]
fn a_readonly_proxy_refuses_writes() {
    let server = start(&[]);
    let proxy = proxy_for(&server, "readonly");
    let reply = put(proxy.local_addr, "/v2/keys/r", "value=x");
    assert_eq!(reply.status, 501, "{}", reply.body);
    assert_eq!(get(proxy.local_addr, "/v2/keys/r").status, 404);
}

/// Regression: the proxy streamed each watch through on the worker that forwarded it, so as
/// many parked watches as it has workers (64 at least) stopped it answering anything else.
#[test]
fn parked_watches_through_a_proxy_hold_no_worker() {
    let server = start(&[]);
    let proxy = proxy_for(&server, "on");
    let addr = proxy.local_addr;
    let watches: Vec<_> = (0..70)
        .map(|n| {
            let (status, head, reader) = open_watch(addr, &format!("/v2/keys/pw/k{n}?wait=true"));
            assert_eq!(status, 200, "watch {n}: {head}");
            reader
        })
        .collect();
    let reply = get(addr, "/v2/keys/pw/missing");
    assert_eq!(
        reply.status, 404,
        "answered beside 70 parked watches: {}",
        reply.body
    );
    assert_eq!(put(addr, "/v2/keys/pw/k69", "value=fired").status, 201);
    let mut last = watches.into_iter().last().expect("70 watches");
    let event = read_streamed_event(&mut last, "the event through the proxy");
    assert!(event.contains("\"value\":\"fired\""), "{event}");
}

#[test]
fn watches_beyond_the_proxys_limit_are_refused_with_503() {
    let server = start(&[]);
    let proxy = proxy_with(&server, "on", &["--max-parked-watches", "2"]);
    let addr = proxy.local_addr;
    let _first = open_watch(addr, "/v2/keys/lim/a?wait=true");
    let _second = open_watch(addr, "/v2/keys/lim/b?wait=true");
    let (status, head, _third) = open_watch(addr, "/v2/keys/lim/c?wait=true");
    assert_eq!(status, 503, "{head}");
    // The limit counts watches being streamed, not requests: others go on.
    assert_eq!(get(addr, "/v2/keys/lim/a").status, 404);
}

/// Regression: the proxy forwarded a connection's pipelined requests on several workers at
/// once, so a GET pipelined behind a PUT could reach the member first and miss the write.
#[test]
fn requests_pipelined_through_a_proxy_are_forwarded_in_order() {
    use std::io::Write;
    let server = start(&[]);
    let proxy = proxy_for(&server, "on");
    let mut stream = std::net::TcpStream::connect(proxy.local_addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    for n in 0..10 {
        let form = format!("value=v{n}");
        let pipelined = format!(
            "PUT /v2/keys/order/k{n} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}\
             GET /v2/keys/order/k{n} HTTP/1.1\r\nHost: t\r\n\r\n",
            form.len()
        );
        stream.write_all(pipelined.as_bytes()).unwrap();
        let mut bodies = Vec::new();
        for _ in 0..2 {
            let reply = read_reply(&mut reader, false);
            bodies.push((reply.status, reply.body));
        }
        assert_eq!(bodies[0].0, 201, "the PUT of k{n}: {:?}", bodies[0]);
        assert!(
            bodies[1].0 == 200 && bodies[1].1.contains(&format!("\"value\":\"v{n}\"")),
            "the GET pipelined behind the PUT of k{n} missed it: {:?}",
            bodies[1]
        );
    }
}

/// Regression: the proxy forwarded the part of a body that arrived as if it were whole, and
/// the member wrote it. It now answers as etcd's proxy does (500) and forwards nothing.
#[test]
fn a_proxy_never_forwards_a_body_cut_short() {
    let server = start(&[]);
    let proxy = proxy_for(&server, "on");
    let value = format!("value={}", "a".repeat(1494));
    let answer = send_then_stop_sending(
        proxy.local_addr,
        &raw_form_put("p/cut", "Content-Length: 2000\r\n", value.as_bytes()),
    );
    assert!(
        answer.starts_with("HTTP/1.1 500")
            && answer.contains("httpproxy: failed to read request body: unexpected EOF"),
        "{answer}"
    );
    assert_eq!(get(server.addr, "/v2/keys/p/cut").status, 404);
}
