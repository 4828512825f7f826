//! Limits that hold across members: what one member accepts, another with smaller limits must
//! not be broken by.

mod cluster;
mod common;

use std::time::Duration;

use cluster::Cluster;

const SMALL_SEGMENT: &str = "65536";
const LARGE_SEGMENT: &str = "1048576";

/// Regression: a follower with larger WAL segments than the leader forwarded a proposal whose
/// entry the leader's WAL could not hold; the entry entered the leader's log, failed to
/// persist and stopped every later write. The leader now drops such a proposal.
#[test]
fn a_forwarded_entry_too_large_for_the_leaders_wal_is_dropped_and_writes_go_on() {
    let mut cluster = Cluster::start_with(3, &["--wal-segment-bytes", SMALL_SEGMENT]).unwrap();
    let leader = cluster.wait_leader(Duration::from_secs(20)).unwrap();
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    // One follower at a time, so the leader keeps its quorum and its leadership.
    for &follower in &followers {
        cluster.members[follower].extra_args =
            vec!["--wal-segment-bytes".to_string(), LARGE_SEGMENT.to_string()];
        cluster.kill9(follower);
        cluster.restart(follower).unwrap();
    }
    let leader_now = cluster.wait_leader(Duration::from_secs(20)).unwrap();
    assert_eq!(
        leader_now,
        leader,
        "the leader (the member with small segments) changed; the test needs it to lead\n{}",
        cluster.logs()
    );
    let via = cluster.members[followers[0]].client_port;
    let big = format!("value={}", "v".repeat(100_000));
    let refused = cluster
        .request(via, "PUT", "/v2/keys/limits/big", Some(big), 15_000)
        .map(|response| response.status);
    assert_ne!(
        refused,
        Ok(201),
        "the leader's WAL cannot hold the entry, so the write cannot succeed"
    );
    for member in [leader, followers[0], followers[1]] {
        let port = cluster.members[member].client_port;
        let key = format!("/v2/keys/limits/small{member}");
        let response = cluster
            .request(port, "PUT", &key, Some("value=ok".into()), 10_000)
            .unwrap_or_else(|e| panic!("write through member {member}: {e}\n{}", cluster.logs()));
        assert_eq!(
            response.status,
            201,
            "writes go on through member {member}: {}\n{}",
            String::from_utf8_lossy(&response.body),
            cluster.logs()
        );
    }
    let port = cluster.members[leader].client_port;
    let missing = cluster
        .request(port, "GET", "/v2/keys/limits/big", None, 5_000)
        .unwrap();
    assert_eq!(missing.status, 404);
    assert!(
        cluster.logs().contains("dropped a proposal forwarded by"),
        "the leader says why\n{}",
        cluster.logs()
    );
}
