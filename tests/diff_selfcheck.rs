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

#[test]
fn harness_finds_no_difference_between_two_etcds_with_a_cors_list_and_host_whitelist() {
    if !common::etcd_available() {
        println!("skipped: etcd not found");
        return;
    }
    diff::run_and_compare_with(
        common::ServerKind::Etcd,
        common::ServerKind::Etcd,
        "scenarios-cors",
        &["--cors", CORS_ORIGINS, "--host-whitelist", HOST_WHITELIST],
    );
}

/// etcd 3.4 wants an explicit port on each origin.
const CORS_ORIGINS: &str = "http://good.example:80,http://other.example:8080";

/// Host names (ports are not compared) that may be used in the Host header.
const HOST_WHITELIST: &str = "127.0.0.1,good.example";

// The normaliser must hide only what legitimately differs; these tests show it still reports
// every difference that matters.

use diff::http::RawResponse;
use diff::normalize::{normalize, same, Context};
use diff::scenario::{Compare, Substitution};

fn response(headers: &[(&str, &str)], body: &str) -> RawResponse {
    RawResponse {
        status: 200,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
        complete: true,
        transport_error: None,
    }
}

fn agree(a: (&RawResponse, u64), b: (&RawResponse, u64), target: &str) -> bool {
    let context = |base| Context {
        base_index: base,
        client_port: 1000,
        peer_port: 2000,
        target: target.as_bytes(),
        compare: Compare::Full,
        is_head: false,
    };
    same(
        &normalize(a.0, &context(a.1)),
        &normalize(b.0, &context(b.1)),
    )
}

const SET: &str = r#"{"action":"set","node":{"key":"/a","value":"v","modifiedIndex":7,"createdIndex":7}}
"#;

#[test]
fn equal_offsets_from_different_bases_agree() {
    let a = response(&[("X-Etcd-Index", "7")], SET);
    let b = response(&[("X-Etcd-Index", "17")], &SET.replace('7', "17"));
    assert!(agree((&a, 5), (&b, 15), "/v2/keys/a"));
}

#[test]
fn different_offsets_disagree() {
    let a = response(&[("X-Etcd-Index", "7")], SET);
    let b = response(
        &[("X-Etcd-Index", "7")],
        &SET.replace("\"createdIndex\":7", "\"createdIndex\":6"),
    );
    assert!(!agree((&a, 5), (&b, 5), "/v2/keys/a"));
    let c = response(&[("X-Etcd-Index", "8")], SET);
    assert!(!agree((&a, 5), (&c, 5), "/v2/keys/a"));
}

#[test]
fn field_order_newline_and_header_spelling_matter() {
    let a = response(&[("X-Etcd-Index", "7")], SET);
    let reordered = SET.replace(
        r#""modifiedIndex":7,"createdIndex":7"#,
        r#""createdIndex":7,"modifiedIndex":7"#,
    );
    assert!(!agree(
        (&a, 5),
        (&response(&[("X-Etcd-Index", "7")], &reordered), 5),
        "/v2/keys/a"
    ));
    let no_newline = SET.trim_end();
    assert!(!agree(
        (&a, 5),
        (&response(&[("X-Etcd-Index", "7")], no_newline), 5),
        "/v2/keys/a"
    ));
    assert!(!agree(
        (&a, 5),
        (&response(&[("x-etcd-index", "7")], SET), 5),
        "/v2/keys/a"
    ));
    assert!(!agree((&a, 5), (&response(&[], SET), 5), "/v2/keys/a"));
}

#[test]
fn ttl_tolerates_one_second_and_expiration_format_is_checked() {
    let body = |ttl: u32, expiration: &str| {
        format!(
            r#"{{"action":"get","node":{{"key":"/t","value":"v","expiration":"{expiration}","ttl":{ttl},"modifiedIndex":6,"createdIndex":6}}}}
"#
        )
    };
    let good = "2026-11-25T21:48:17.608024803Z";
    let a = response(&[], &body(30, good));
    let other_time = "2026-11-25T21:48:18.1Z";
    assert!(agree(
        (&a, 5),
        (&response(&[], &body(29, other_time)), 5),
        "/v2/keys/t"
    ));
    assert!(!agree(
        (&a, 5),
        (&response(&[], &body(28, good)), 5),
        "/v2/keys/t"
    ));
    for bad in [
        "2026-11-25T21:48:17.608024803+00:00",
        "2026-11-25T21:48:17.60802480Z",
        "2026-11-25 21:48:17Z",
    ] {
        assert!(
            !agree((&a, 5), (&response(&[], &body(30, bad)), 5), "/v2/keys/t"),
            "{bad}"
        );
    }
}

#[test]
fn listing_order_matters_only_when_sorted_was_requested() {
    let listing = |first: &str, second: &str| {
        format!(
            r#"{{"action":"get","node":{{"key":"/d","dir":true,"nodes":[{{"key":"/d/{first}","value":"","modifiedIndex":6,"createdIndex":6}},{{"key":"/d/{second}","value":"","modifiedIndex":6,"createdIndex":6}}],"modifiedIndex":6,"createdIndex":6}}}}
"#
        )
    };
    let ab = response(&[], &listing("a", "b"));
    let ba = response(&[], &listing("b", "a"));
    assert!(agree((&ab, 5), (&ba, 5), "/v2/keys/d"));
    assert!(!agree((&ab, 5), (&ba, 5), "/v2/keys/d?sorted=true"));
}

#[test]
fn causes_and_in_order_keys_are_normalised() {
    let cleared = |oldest: u64, requested: u64, index: u64| {
        format!(
            r#"{{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [{oldest}/{requested}]","index":{index}}}
"#
        )
    };
    let a = response(&[], &cleared(47, 5, 1046));
    assert!(agree(
        (&a, 3),
        (&response(&[], &cleared(57, 15, 1056)), 13),
        "/v2/keys/h"
    ));
    assert!(!agree(
        (&a, 3),
        (&response(&[], &cleared(48, 15, 1056)), 13),
        "/v2/keys/h"
    ));
    let queued = |n: u64| {
        format!(
            r#"{{"action":"create","node":{{"key":"/q/{n:020}","value":"j","modifiedIndex":{n},"createdIndex":{n}}}}}"#
        )
    };
    assert!(agree(
        (&response(&[], &queued(9)), 5),
        (&response(&[], &queued(19)), 15),
        "/v2/keys/q"
    ));
    assert!(!agree(
        (&response(&[], &queued(9)), 5),
        (&response(&[], &queued(10)), 5),
        "/v2/keys/q"
    ));
}

#[test]
fn substitutions_and_escapes() {
    let subst = Substitution {
        scenario_number: 12,
        base_index: 40,
        client_port: 2379,
    };
    assert_eq!(
        subst.apply("$K/a?prevIndex={B+2}&x={B-1}"),
        b"/v2/keys/s12/a?prevIndex=42&x=39".to_vec()
    );
    assert_eq!(
        subst.apply("/v2/keys/{P+1}"),
        b"/v2/keys/00000000000000000041".to_vec()
    );
    assert_eq!(
        subst.apply("$P\\xff\\r\\n\\s{host}"),
        b"s12\xff\r\n 127.0.0.1:2379".to_vec()
    );
}

#[test]
fn scenario_files_parse_and_are_numerous() {
    let scenarios = diff::load_scenarios_from("scenarios");
    assert!(scenarios.len() >= 150, "only {} scenarios", scenarios.len());
    assert!(!diff::load_scenarios_from("scenarios-cors").is_empty());
}

#[test]
fn json_escapes_are_compared_not_only_decoded_strings() {
    let go = response(&[], "{\"action\":\"get\",\"node\":{\"key\":\"/k\",\"value\":\"\\u003cb\\u003e\",\"modifiedIndex\":6,\"createdIndex\":6}}\n");
    let raw = response(&[], "{\"action\":\"get\",\"node\":{\"key\":\"/k\",\"value\":\"<b>\",\"modifiedIndex\":6,\"createdIndex\":6}}\n");
    assert!(agree((&go, 5), (&go, 5), "/v2/keys/k"));
    assert!(!agree((&go, 5), (&raw, 5), "/v2/keys/k"));
    let spaced = response(&[], "{\"action\": \"get\",\"node\":{\"key\":\"/k\",\"value\":\"\\u003cb\\u003e\",\"modifiedIndex\":6,\"createdIndex\":6}}\n");
    assert!(!agree((&go, 5), (&spaced, 5), "/v2/keys/k"));
}
