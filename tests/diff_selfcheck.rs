//! Validates the differential harness itself: the whole scenario suite run against two
//! independent etcd instances must show zero differences. A difference here means the
//! normalisation (indexes, times, ordering) is unsound, not that raftkv is wrong.

mod common;
#[path = "diff/mod.rs"]
mod diff;

#[test]
fn harness_finds_no_difference_between_two_etcds() {
    if !common::etcd_available() {
        println!("skipped: etcd not found");
        return;
    }
    diff::run_and_compare(common::ServerKind::Etcd, common::ServerKind::Etcd);
}
