//! The fault tests' peer-link proxy on its own, between two real raftkv transports: messages
//! pass; a cut link (reset or blackholed) loses exactly its direction and nothing else; a healed
//! link carries messages again; a snapshot stream ends when the receiver has taken it.

mod cluster;
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::proxy::{CutMode, ProxyNet};
use crossbeam_channel::Receiver;
use raftkv::transport::{Inbound, Transport, TransportConfig};

const CLUSTER_ID: u64 = 0x5eed;

fn start(local_id: u64) -> (Arc<Transport>, Receiver<Inbound>) {
    let (tx, rx) = crossbeam_channel::bounded(4096);
    let transport = Transport::start(
        TransportConfig {
            cluster_id: CLUSTER_ID,
            local_id,
            listen_addr: "127.0.0.1:0".to_string(),
            queue_capacity: 256,
            max_inbound_connections: 8,
            max_snapshot_bytes: 64 << 20,
        },
        tx,
    )
    .expect("bind 127.0.0.1:0");
    (transport, rx)
}

/// Sends `payload` from `from` to peer `to` every 20 ms until it arrives on `rx` or `limit`
/// passes; true when it arrived.
fn arrives(
    from: &Transport,
    to: u64,
    rx: &Receiver<Inbound>,
    payload: &[u8],
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        from.send(to, payload.to_vec());
        while let Ok(item) = rx.recv_timeout(Duration::from_millis(20)) {
            if let Inbound::Message { payload: got, .. } = item {
                if got == payload {
                    return true;
                }
            }
        }
    }
    false
}

/// Drops whatever is queued on `rx`.
fn drain(rx: &Receiver<Inbound>) {
    std::thread::sleep(Duration::from_millis(100));
    while rx.try_recv().is_ok() {}
}

#[test]
fn cuts_lose_exactly_one_direction_and_heal() {
    let (a, a_rx) = start(1);
    let (b, b_rx) = start(2);
    let mut net = ProxyNet::new();
    let to_a = net.add_destination(a.local_addr.port()).unwrap();
    let to_b = net.add_destination(b.local_addr.port()).unwrap();
    a.add_peer(2, &format!("http://127.0.0.1:{to_b}")).unwrap();
    b.add_peer(1, &format!("http://127.0.0.1:{to_a}")).unwrap();
    let second = Duration::from_secs(1);
    let long = Duration::from_secs(10);
    assert!(
        arrives(&a, 2, &b_rx, b"a to b", long),
        "no message through the proxy"
    );
    assert!(arrives(&b, 1, &a_rx, b"b to a", long));
    assert!(net.links_seen().contains(&(1, 2)) && net.links_seen().contains(&(2, 1)));

    for mode in [CutMode::Reset, CutMode::Blackhole] {
        net.cut(1, 2, mode);
        drain(&b_rx);
        assert!(
            !arrives(&a, 2, &b_rx, b"lost", second),
            "{mode:?}: a message crossed a cut link"
        );
        assert!(
            arrives(&b, 1, &a_rx, b"other way", long),
            "{mode:?}: the other direction was cut too"
        );
        net.heal(1, 2);
        assert!(
            arrives(&a, 2, &b_rx, b"healed", long),
            "{mode:?}: the healed link carries nothing"
        );
    }

    net.heal_all();
    net.cut(2, 1, CutMode::Blackhole);
    net.cut(1, 2, CutMode::Reset);
    drain(&a_rx);
    drain(&b_rx);
    assert!(!arrives(&a, 2, &b_rx, b"x", second));
    assert!(!arrives(&b, 1, &a_rx, b"y", second));
    net.heal_all();
    assert!(arrives(&a, 2, &b_rx, b"both healed 1", long));
    assert!(arrives(&b, 1, &a_rx, b"both healed 2", long));
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_snapshot_through_the_proxy_ends_when_the_receiver_has_it() {
    let (a, a_rx) = start(1);
    let (b, b_rx) = start(2);
    let mut net = ProxyNet::new();
    let to_b = net.add_destination(b.local_addr.port()).unwrap();
    a.add_peer(2, &format!("http://127.0.0.1:{to_b}")).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let started = Instant::now();
    a.send_snapshot(2, b"snapshot message".to_vec(), Arc::new(data.clone()));
    let received = loop {
        match b_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the snapshot within 10 s")
        {
            Inbound::Snapshot { data, .. } => break data,
            _ => continue,
        }
    };
    assert_eq!(received, data);
    // The sender learns it was taken as soon as the receiver closes (not at a 30 s timeout).
    loop {
        match a_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a SnapshotSent within 10 s")
        {
            Inbound::SnapshotSent { peer: 2, ok } => {
                assert!(ok, "snapshot reported failed");
                break;
            }
            _ => continue,
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the snapshot sender waited {:?}",
        started.elapsed()
    );
    a.shutdown();
    b.shutdown();
}
