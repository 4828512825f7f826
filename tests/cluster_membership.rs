//! Membership changes on real processes under a recorded workload: add a member (POST
//! /v2/members, then start it with `--initial-cluster-state existing`; with a small
//! `--snapshot-count` it catches up through a snapshot), remove a follower, remove the leader,
//! add another and restart it. After each change every member's /v2/members must agree; at the end the
//! cluster must converge, every acknowledged write must be on every member and the history
//! must be linearizable.

mod cluster;
mod common;

use std::time::{Duration, Instant};

use cluster::faults::{finish_and_check, FaultReport};
use cluster::history::{first_write_after, Workload, WorkloadConfig};
use cluster::{test_seed, Cluster, TestRng};

#[test]
fn members_are_added_and_removed_under_load_including_the_leader() {
    let seed = test_seed("members_are_added_and_removed_under_load_including_the_leader");
    let mut rng = TestRng::new(seed);
    let mut cluster = Cluster::start_with(3, &["--snapshot-count", "200"]).unwrap();
    let ports: Vec<u16> = cluster.members.iter().map(|m| m.client_port).collect();
    let workload = Workload::start(ports, WorkloadConfig::default(), seed);
    let mut report = FaultReport::default();
    std::thread::sleep(Duration::from_secs(2));

    // Add a member under load.
    let via = cluster.active()[rng.below(3) as usize];
    let started = Instant::now();
    let added = cluster
        .add_member(via)
        .unwrap_or_else(|e| panic!("seed {seed}: add a member: {e}\n{}", cluster.logs()));
    println!(
        "added m{added} through m{via}; it served after {} ms",
        started.elapsed().as_millis()
    );
    workload
        .ports
        .write()
        .push(cluster.members[added].client_port);
    cluster
        .wait_members_agree(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("seed {seed}: after adding m{added}: {e}"));
    report.cycles += 1;
    std::thread::sleep(Duration::from_secs(1));

    // Remove a follower.
    let leader = cluster.wait_leader(Duration::from_secs(20)).unwrap();
    let followers: Vec<usize> = cluster
        .active()
        .into_iter()
        .filter(|&i| i != leader)
        .collect();
    let follower = followers[rng.below(followers.len() as u64) as usize];
    let via =
        followers[(followers.iter().position(|&f| f == follower).unwrap() + 1) % followers.len()];
    // Clients keep talking to a removed member until it is gone (they cannot know at once).
    cluster
        .remove_member(follower, via)
        .unwrap_or_else(|e| panic!("seed {seed}: remove follower m{follower}: {e}"));
    let port = cluster.members[follower].client_port;
    workload.ports.write().retain(|&p| p != port);
    println!("removed follower m{follower} through m{via}");
    cluster
        .wait_members_agree(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("seed {seed}: after removing m{follower}: {e}"));
    report.cycles += 1;
    std::thread::sleep(Duration::from_secs(1));

    // Remove the leader (through the leader itself).
    let leader = cluster.wait_leader(Duration::from_secs(20)).unwrap();
    let removed_at = Instant::now();
    cluster.request_removal(leader, leader).unwrap_or_else(|e| {
        panic!(
            "seed {seed}: remove leader m{leader}: {e}\n{}",
            cluster.logs()
        )
    });
    let others: Vec<u16> = cluster
        .live()
        .iter()
        .map(|&i| cluster.members[i].client_port)
        .collect();
    let took =
        first_write_after(removed_at, &others, Duration::from_secs(15)).unwrap_or_else(|| {
            panic!(
                "seed {seed}: no write after removing the leader\n{}",
                cluster.logs()
            )
        });
    println!(
        "removed leader m{leader}; first write {} ms after the DELETE was sent",
        took.as_millis()
    );
    report.leader_loss_to_write.push(took);
    cluster
        .finish_removal(leader)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let port = cluster.members[leader].client_port;
    workload.ports.write().retain(|&p| p != port);
    cluster
        .wait_members_agree(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("seed {seed}: after removing leader m{leader}: {e}"));
    report.cycles += 1;

    // Back to three members.
    let via = cluster.live()[0];
    let added = cluster
        .add_member(via)
        .unwrap_or_else(|e| panic!("seed {seed}: add a member: {e}\n{}", cluster.logs()));
    workload
        .ports
        .write()
        .push(cluster.members[added].client_port);
    println!("added m{added} through m{via}");
    cluster
        .wait_members_agree(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("seed {seed}: after adding m{added}: {e}"));
    report.cycles += 1;
    std::thread::sleep(Duration::from_secs(1));

    // A member added at run time restarts from its data dir with the same identity.
    cluster.kill9(added);
    let took = cluster
        .restart(added)
        .unwrap_or_else(|e| panic!("seed {seed}: restart the added m{added}: {e}"));
    println!(
        "restarted m{added}; it served after {} ms",
        took.as_millis()
    );
    cluster
        .wait_members_agree(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("seed {seed}: after restarting m{added}: {e}"));
    report.cycles += 1;

    finish_and_check(&mut cluster, workload, seed, &mut report);
    report.print("membership, 3 members");
}
