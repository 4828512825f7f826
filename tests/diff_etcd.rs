//! The etcd differential suite: every scenario in `tests/diff/scenarios/` is sent to a real
//! etcd 3.4 (`etcd --enable-v2`) and to raftkv; any difference after normalisation (see
//! `tests/diff/normalize.rs`) fails the test, listing each differing scenario with the request
//! and both responses.

mod common;
#[path = "diff/mod.rs"]
mod diff;

#[test]
fn raftkv_answers_like_etcd() {
    if !common::etcd_available() {
        println!("skipped: etcd not found");
        return;
    }
    diff::run_and_compare(common::ServerKind::Etcd, common::ServerKind::Raftkv);
}
