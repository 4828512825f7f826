//! The peer transport on real sockets (127.0.0.1): messages both ways, refusal of other
//! clusters and of garbage, chunked snapshots, reconnect after a peer restarts, and dropping
//! (not blocking) when a peer's queue is full.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use raftkv::transport::{Inbound, Transport, TransportConfig};

fn config(cluster_id: u64, local_id: u64, listen_addr: &str) -> TransportConfig {
    TransportConfig {
        cluster_id,
        local_id,
        listen_addr: listen_addr.to_string(),
        queue_capacity: 64,
        max_inbound_connections: 8,
        max_snapshot_bytes: 64 << 20,
    }
}

fn start(cluster_id: u64, local_id: u64) -> (Arc<Transport>, Receiver<Inbound>) {
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let transport = Transport::start(config(cluster_id, local_id, "127.0.0.1:0"), tx)
        .expect("bind 127.0.0.1:0");
    (transport, rx)
}

fn url(transport: &Transport) -> String {
    format!("http://{}", transport.local_addr)
}

/// Waits for the next inbound item that is not an unreachability report.
fn next_item(rx: &Receiver<Inbound>) -> Inbound {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left).expect("an inbound item within 10 s") {
            Inbound::Unreachable { .. } => continue,
            other => return other,
        }
    }
}

#[test]
fn messages_flow_both_ways_in_order() {
    let (a, a_rx) = start(7, 1);
    let (b, b_rx) = start(7, 2);
    a.add_peer(2, &url(&b)).unwrap();
    b.add_peer(1, &url(&a)).unwrap();
    for n in 0..60u32 {
        assert!(a.send(2, n.to_le_bytes().to_vec()));
    }
    for n in 0..60u32 {
        assert_eq!(
            next_item(&b_rx),
            Inbound::Message {
                from: 1,
                payload: n.to_le_bytes().to_vec()
            }
        );
    }
    assert!(b.send(1, b"pong".to_vec()));
    assert_eq!(
        next_item(&a_rx),
        Inbound::Message {
            from: 2,
            payload: b"pong".to_vec()
        }
    );
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_member_of_another_cluster_is_refused() {
    let (a, _a_rx) = start(7, 1);
    let (stranger, stranger_rx) = start(8, 3);
    stranger.add_peer(1, &url(&a)).unwrap();
    stranger.send(1, b"hello".to_vec());
    match stranger_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("an unreachability report")
    {
        Inbound::Unreachable { peer } => assert_eq!(peer, 1),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.stats.connections_refused.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "refusal not counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(a.stats.messages_received.load(Ordering::Relaxed), 0);
    a.shutdown();
    stranger.shutdown();
}

#[test]
fn garbage_on_the_peer_port_is_refused_and_the_transport_keeps_serving() {
    let (a, a_rx) = start(7, 1);
    for garbage in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0xff; 36][..],
        &[0u8; 3][..],
        b"RKVP\x01\x00\x00\x00",
    ] {
        let mut stream = TcpStream::connect(a.local_addr).unwrap();
        let _ = stream.write_all(garbage);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    }
    let (b, _b_rx) = start(7, 2);
    b.add_peer(1, &url(&a)).unwrap();
    assert!(b.send(1, b"after garbage".to_vec()));
    assert_eq!(
        next_item(&a_rx),
        Inbound::Message {
            from: 2,
            payload: b"after garbage".to_vec()
        }
    );
    a.shutdown();
    b.shutdown();
}

#[test]
fn snapshots_arrive_whole_through_their_own_chunked_stream() {
    let (a, a_rx) = start(7, 1);
    let (b, b_rx) = start(7, 2);
    a.add_peer(2, &url(&b)).unwrap();
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    a.send_snapshot(2, b"snapshot message".to_vec(), Arc::new(data.clone()));
    match next_item(&b_rx) {
        Inbound::Snapshot {
            from,
            message,
            data: received,
        } => {
            assert_eq!((from, message.as_slice()), (1, &b"snapshot message"[..]));
            assert!(received == data, "snapshot data differs");
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }
    assert_eq!(
        next_item(&a_rx),
        Inbound::SnapshotSent { peer: 2, ok: true }
    );
    a.shutdown();
    b.shutdown();
}

#[test]
fn writers_reconnect_after_the_peer_restarts() {
    let (a, _a_rx) = start(7, 1);
    let (b, b_rx) = start(7, 2);
    let b_addr = b.local_addr.to_string();
    a.add_peer(2, &url(&b)).unwrap();
    assert!(a.send(2, b"first".to_vec()));
    assert_eq!(
        next_item(&b_rx),
        Inbound::Message {
            from: 1,
            payload: b"first".to_vec()
        }
    );
    b.shutdown();
    drop(b);
    drop(b_rx);
    std::thread::sleep(Duration::from_millis(300));
    let (tx, b_rx) = crossbeam_channel::bounded(1024);
    let deadline = Instant::now() + Duration::from_secs(10);
    let b = loop {
        match Transport::start(config(7, 2, &b_addr), tx.clone()) {
            Ok(b) => break b,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("rebinding {b_addr}: {e}"),
        }
    };
    // Keep sending until one arrives: messages sent while the peer was away may be dropped.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        a.send(2, b"again".to_vec());
        if let Ok(Inbound::Message { payload, .. }) = b_rx.recv_timeout(Duration::from_millis(200))
        {
            assert_eq!(payload, b"again");
            break;
        }
        assert!(Instant::now() < deadline, "writer never reconnected");
    }
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_full_queue_drops_instead_of_blocking() {
    let (a, _a_rx) = start(7, 1);
    // A peer that never answers: a bound listener nobody accepts from.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    a.add_peer(9, &format!("http://{}", silent.local_addr().unwrap()))
        .unwrap();
    let started = Instant::now();
    let accepted = (0..10_000).filter(|_| a.send(9, vec![0; 100])).count();
    assert!(
        accepted <= 64 + 1,
        "queue bound exceeded: {accepted} accepted"
    );
    assert!(a.stats.messages_dropped.load(Ordering::Relaxed) >= 10_000 - 65);
    assert!(started.elapsed() < Duration::from_secs(5), "send blocked");
    a.shutdown();
}
