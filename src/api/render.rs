//! etcd's v2 JSON for events, nodes and errors, byte for byte (field order and omission rules
//! of etcd's `NodeExtern`, `Event` and `v2error.Error`).
//!
//! `ttl` is computed here from the node's absolute expiration and a clock reading: the time
//! of the write for events of writes ([`crate::store::Event::at`], so an event served from
//! the history shows the TTL it had then), the responding member's clock for reads: `ceil((expiration - now) / 1 s)` for a future expiration,
//! truncated toward zero for a past one, and omitted when it comes out as 0.

use crate::api::json::{push_string, rfc3339_nanos};
use crate::store::{Event, NodeExtern, UnixNanos, V2Error};

/// The event as etcd writes it (one JSON object and a newline). With `no_value_on_success`,
/// set/create/update/compareAndSwap events keep only their action.
pub fn event_json(event: &Event, now: UnixNanos, no_value_on_success: bool) -> String {
    let mut out = String::with_capacity(160);
    out.push_str("{\"action\":");
    push_string(&mut out, event.action.as_str());
    use crate::store::Action::*;
    let drop_nodes =
        no_value_on_success && matches!(event.action, Set | CompareAndSwap | Create | Update);
    // A write's TTLs are as of the write (what etcd stored in the event); a read's as of now.
    let now = event.at.unwrap_or(now);
    if !drop_nodes {
        out.push_str(",\"node\":");
        push_node(&mut out, &event.node, now);
        if let Some(prev) = &event.prev_node {
            out.push_str(",\"prevNode\":");
            push_node(&mut out, prev, now);
        }
    }
    out.push_str("}\n");
    out
}

/// Remaining TTL in whole seconds as etcd reports it.
pub fn ttl_seconds(expiration: UnixNanos, now: UnixNanos) -> i64 {
    let remaining = i128::from(expiration) - i128::from(now);
    let second = 1_000_000_000i128;
    let mut ttl = remaining / second;
    if remaining % second > 0 {
        ttl += 1;
    }
    ttl.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn push_node(out: &mut String, node: &NodeExtern, now: UnixNanos) {
    out.push('{');
    let mut first = true;
    let mut field = |out: &mut String, name: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
    };
    if !node.key.is_empty() {
        field(out, "key");
        push_string(out, &node.key);
    }
    if let Some(value) = &node.value {
        field(out, "value");
        push_string(out, value);
    }
    if node.dir {
        field(out, "dir");
        out.push_str("true");
    }
    if let Some(expiration) = node.expiration {
        field(out, "expiration");
        push_string(out, &rfc3339_nanos(expiration));
        let ttl = ttl_seconds(expiration, now);
        if ttl != 0 {
            field(out, "ttl");
            out.push_str(&ttl.to_string());
        }
    }
    if let Some(children) = &node.nodes {
        if !children.is_empty() {
            field(out, "nodes");
            out.push('[');
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_node(out, child, now);
            }
            out.push(']');
        }
    }
    if node.modified_index != 0 {
        field(out, "modifiedIndex");
        out.push_str(&node.modified_index.to_string());
    }
    if node.created_index != 0 {
        field(out, "createdIndex");
        out.push_str(&node.created_index.to_string());
    }
    out.push('}');
}

/// The v2 error body: `{"errorCode":N,"message":"...","cause":"...","index":N}` and a newline;
/// `cause` omitted when empty.
pub fn error_json(error: &V2Error) -> String {
    let mut out = String::with_capacity(96);
    out.push_str("{\"errorCode\":");
    out.push_str(&error.code.code().to_string());
    out.push_str(",\"message\":");
    push_string(&mut out, error.code.message());
    if !error.cause.is_empty() {
        out.push_str(",\"cause\":");
        push_string(&mut out, &error.cause);
    }
    out.push_str(",\"index\":");
    out.push_str(&error.index.to_string());
    out.push_str("}\n");
    out
}

/// The `{"message":"..."}` body of Go's HTTPError (members, stats, auth); no newline.
pub fn message_json(message: &str) -> String {
    let mut out = String::from("{\"message\":");
    push_string(&mut out, message);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_in_the_future_and_toward_zero_in_the_past() {
        let s = 1_000_000_000;
        assert_eq!(ttl_seconds(10 * s, 10 * s), 0);
        assert_eq!(ttl_seconds(10 * s + 1, 10 * s), 1);
        assert_eq!(ttl_seconds(40 * s, 10 * s + s / 3), 30);
        assert_eq!(ttl_seconds(10 * s, 10 * s + s / 2), 0);
        assert_eq!(ttl_seconds(10 * s, 11 * s + s / 2), -1);
    }
}
