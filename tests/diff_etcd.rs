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

/// v2-api.md section 1.5: with `--cors` set to a list, CORS headers appear only for a listed
/// `Origin`, which is echoed; with `--host-whitelist`, other Host names get 421.
#[test]
fn raftkv_answers_like_etcd_with_a_cors_list_and_host_whitelist() {
    if !common::etcd_available() {
        println!("skipped: etcd not found");
        return;
    }
    diff::run_and_compare_with(
        common::ServerKind::Etcd,
        common::ServerKind::Raftkv,
        "scenarios-cors",
        &[
            "--cors",
            "http://good.example:80,http://other.example:8080",
            "--host-whitelist",
            "127.0.0.1,good.example",
        ],
    );
}
