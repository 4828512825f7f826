//! Shows that the linearizability checker (`raftkv::sim::linearizability`) accepts linearizable
//! key-value histories and rejects the others: hand-made cases, histories generated from a real
//! sequential model (must be accepted), the same with one response mutated (compared with an
//! exhaustive permutation checker), random small histories (compared likewise), and a timing of a
//! 2,000-operation history.

use raftkv::sim::linearizability::{
    check_kv_history, CheckOutcome, HistoryError, KvInput, KvOperation, KvOutput,
    DEFAULT_MAX_SEARCH_STEPS,
};
use std::collections::BTreeMap;
use std::time::Instant;

const BUDGET: u64 = DEFAULT_MAX_SEARCH_STEPS;

// ---------------------------------------------------------------- builders

fn get(key: &str) -> KvInput {
    KvInput::Get { key: key.into() }
}
fn put(key: &str, value: &str) -> KvInput {
    KvInput::Put {
        key: key.into(),
        value: value.into(),
    }
}
fn cas(key: &str, expected: &str, new_value: &str) -> KvInput {
    KvInput::CompareAndSwap {
        key: key.into(),
        expected: expected.into(),
        new_value: new_value.into(),
    }
}
fn delete(key: &str) -> KvInput {
    KvInput::Delete { key: key.into() }
}
fn value(v: &str) -> KvOutput {
    KvOutput::Value(Some(v.into()))
}
fn absent() -> KvOutput {
    KvOutput::Value(None)
}
fn op(client_id: u64, invoke: u64, ret: u64, input: KvInput, output: KvOutput) -> KvOperation {
    KvOperation {
        client_id,
        invoke_time: invoke,
        return_time: ret,
        input,
        output,
    }
}
fn unknown(client_id: u64, invoke: u64, input: KvInput) -> KvOperation {
    op(client_id, invoke, 0, input, KvOutput::Unknown)
}

fn check(history: &[KvOperation]) -> CheckOutcome {
    check_kv_history(history, BUDGET).expect("well-formed history")
}

fn assert_accepts(name: &str, history: &[KvOperation]) {
    let outcome = check(history);
    match &outcome {
        CheckOutcome::Linearizable => {}
        CheckOutcome::NotLinearizable(violation) => {
            panic!(
                "{name}: expected linearizable, got:\n{}",
                violation.describe(history)
            )
        }
        other => panic!("{name}: expected linearizable, got {other:?}"),
    }
    assert_eq!(
        brute_force_linearizable(history),
        Some(true),
        "{name}: the exhaustive checker disagrees"
    );
}

fn assert_rejects(name: &str, history: &[KvOperation]) -> raftkv::sim::linearizability::Violation {
    let outcome = check(history);
    let CheckOutcome::NotLinearizable(violation) = outcome else {
        panic!("{name}: expected a violation, got {outcome:?}");
    };
    assert_eq!(
        brute_force_linearizable(history),
        Some(false),
        "{name}: the exhaustive checker disagrees"
    );
    violation
}

// ---------------------------------------------------------------- hand-made cases

#[test]
fn empty_history_is_linearizable() {
    assert_accepts("empty", &[]);
}

#[test]
fn sequential_put_then_get_is_accepted() {
    assert_accepts(
        "put-get",
        &[
            op(1, 0, 1, put("x", "1"), KvOutput::Written),
            op(1, 2, 3, get("x"), value("1")),
        ],
    );
}

#[test]
fn stale_read_after_completed_write_is_rejected() {
    let history = [
        op(1, 0, 1, put("x", "1"), KvOutput::Written),
        op(1, 2, 3, put("x", "2"), KvOutput::Written),
        op(2, 4, 5, get("x"), value("1")),
    ];
    let violation = assert_rejects("stale read", &history);
    assert_eq!(violation.key, "x");
    assert_eq!(violation.longest_prefix, vec![0, 1]);
    assert_eq!(violation.value_after_prefix.as_deref(), Some("2"));
    assert_eq!(violation.stuck_op, 2);
    let text = violation.describe(&history);
    assert!(text.contains("key \"x\""), "{text}");
    assert!(
        text.contains("#2: client 2 [4, 5] get(x) -> \"1\""),
        "{text}"
    );
}

#[test]
fn get_of_never_written_key_must_be_absent() {
    assert_accepts("absent", &[op(1, 0, 1, get("x"), absent())]);
    assert_rejects("invented value", &[op(1, 0, 1, get("x"), value("1"))]);
}

#[test]
fn concurrent_overlapping_writes_may_take_either_order() {
    let writes = [
        op(1, 0, 10, put("x", "a"), KvOutput::Written),
        op(2, 1, 11, put("x", "b"), KvOutput::Written),
    ];
    for (seen, accepted) in [(value("a"), true), (value("b"), true), (absent(), false)] {
        let mut history = writes.to_vec();
        history.push(op(3, 12, 13, get("x"), seen.clone()));
        if accepted {
            assert_accepts(&format!("overlap then read {seen:?}"), &history);
        } else {
            assert_rejects(&format!("overlap then read {seen:?}"), &history);
        }
    }
}

#[test]
fn read_concurrent_with_write_sees_old_or_new_but_not_back_again() {
    let base = [
        op(1, 0, 1, put("x", "old"), KvOutput::Written),
        op(1, 2, 20, put("x", "new"), KvOutput::Written),
    ];
    let mut old_then_new = base.to_vec();
    old_then_new.push(op(2, 3, 4, get("x"), value("old")));
    old_then_new.push(op(2, 5, 6, get("x"), value("new")));
    assert_accepts("old then new", &old_then_new);
    let mut new_then_old = base.to_vec();
    new_then_old.push(op(2, 3, 4, get("x"), value("new")));
    new_then_old.push(op(2, 5, 6, get("x"), value("old")));
    assert_rejects("new then old", &new_then_old);
}

#[test]
fn cas_success_from_a_value_no_one_wrote_is_rejected() {
    let history = [
        op(1, 0, 1, put("x", "1"), KvOutput::Written),
        op(2, 2, 3, cas("x", "7", "2"), KvOutput::Swapped(true)),
    ];
    assert_rejects("cas from unwritten value", &history);
}

#[test]
fn cas_failure_when_the_value_matched_is_rejected() {
    let history = [
        op(1, 0, 1, put("x", "1"), KvOutput::Written),
        op(2, 2, 3, cas("x", "1", "2"), KvOutput::Swapped(false)),
    ];
    assert_rejects("cas failed although value matched", &history);
    let concurrent_change = [
        op(1, 0, 1, put("x", "1"), KvOutput::Written),
        op(3, 2, 6, put("x", "9"), KvOutput::Written),
        op(2, 3, 5, cas("x", "1", "2"), KvOutput::Swapped(false)),
    ];
    assert_accepts("cas failed after a concurrent put", &concurrent_change);
}

#[test]
fn lost_update_two_successful_cas_from_the_same_value_is_rejected() {
    let history = [
        op(1, 0, 1, put("counter", "0"), KvOutput::Written),
        op(1, 2, 6, cas("counter", "0", "1"), KvOutput::Swapped(true)),
        op(2, 3, 7, cas("counter", "0", "1"), KvOutput::Swapped(true)),
    ];
    assert_rejects("lost update", &history);
    let one_loses = [
        op(1, 0, 1, put("counter", "0"), KvOutput::Written),
        op(1, 2, 6, cas("counter", "0", "1"), KvOutput::Swapped(true)),
        op(2, 3, 7, cas("counter", "0", "1"), KvOutput::Swapped(false)),
        op(2, 8, 9, get("counter"), value("1")),
    ];
    assert_accepts("one cas loses", &one_loses);
}

#[test]
fn unknown_outcome_put_that_later_becomes_visible_is_accepted() {
    let history = [
        unknown(1, 0, put("x", "1")),
        op(2, 5, 6, get("x"), absent()),
        op(2, 7, 8, get("x"), value("1")),
    ];
    assert_accepts("unknown put visible late", &history);
}

#[test]
fn unknown_outcome_put_that_never_shows_is_accepted_but_cannot_vanish() {
    assert_accepts(
        "unknown put never visible",
        &[
            unknown(1, 0, put("x", "1")),
            op(2, 5, 6, get("x"), absent()),
        ],
    );
    assert_rejects(
        "unknown put seen then gone",
        &[
            unknown(1, 0, put("x", "1")),
            op(2, 5, 6, get("x"), value("1")),
            op(2, 7, 8, get("x"), absent()),
        ],
    );
}

#[test]
fn unknown_outcome_cannot_take_effect_before_its_invoke() {
    assert_rejects(
        "read of a value written later",
        &[
            op(2, 0, 1, get("x"), value("1")),
            unknown(1, 5, put("x", "1")),
        ],
    );
}

#[test]
fn unknown_cas_and_delete_may_go_either_way() {
    let base = [
        op(1, 0, 1, put("x", "1"), KvOutput::Written),
        unknown(1, 2, cas("x", "1", "2")),
    ];
    for seen in ["1", "2"] {
        let mut history = base.to_vec();
        history.push(op(2, 10, 11, get("x"), value(seen)));
        assert_accepts(&format!("unknown cas then read {seen}"), &history);
    }
    let deleted = [
        op(1, 0, 1, put("x", "1"), KvOutput::Written),
        unknown(1, 2, delete("x")),
        op(2, 10, 11, get("x"), absent()),
    ];
    assert_accepts("unknown delete took effect", &deleted);
}

#[test]
fn read_of_a_deleted_key_is_rejected() {
    let history = [
        op(1, 0, 1, put("x", "1"), KvOutput::Written),
        op(1, 2, 3, delete("x"), KvOutput::Deleted { existed: true }),
        op(2, 4, 5, get("x"), value("1")),
    ];
    assert_rejects("read of deleted key", &history);
}

#[test]
fn delete_must_report_whether_the_key_existed() {
    assert_rejects(
        "delete of absent key claims it existed",
        &[op(
            1,
            0,
            1,
            delete("x"),
            KvOutput::Deleted { existed: true },
        )],
    );
    assert_accepts(
        "delete of absent key",
        &[op(
            1,
            0,
            1,
            delete("x"),
            KvOutput::Deleted { existed: false },
        )],
    );
    assert_rejects(
        "double delete both existed",
        &[
            op(1, 0, 1, put("x", "1"), KvOutput::Written),
            op(1, 2, 5, delete("x"), KvOutput::Deleted { existed: true }),
            op(2, 3, 6, delete("x"), KvOutput::Deleted { existed: true }),
        ],
    );
}

#[test]
fn operations_touching_at_one_instant_are_concurrent() {
    // The get is invoked at the very instant the put returns: closed intervals overlap.
    let history = [
        op(1, 0, 5, put("x", "1"), KvOutput::Written),
        op(2, 5, 6, get("x"), absent()),
    ];
    assert_accepts("touching intervals", &history);
    let separated = [
        op(1, 0, 5, put("x", "1"), KvOutput::Written),
        op(2, 6, 7, get("x"), absent()),
    ];
    assert_rejects("separated intervals", &separated);
}

#[test]
fn keys_are_checked_independently_and_the_violation_names_the_key() {
    let history = [
        op(1, 0, 1, put("a", "1"), KvOutput::Written),
        op(2, 0, 1, put("b", "1"), KvOutput::Written),
        op(1, 2, 3, get("a"), value("1")),
        op(2, 2, 3, get("b"), absent()),
    ];
    let violation = assert_rejects("key b broken", &history);
    assert_eq!(violation.key, "b");
    assert_eq!(violation.stuck_op, 3);
    assert_eq!(violation.pending_ops, vec![3]);
    // Per-key real-time order is what matters: reading b's value before a's write is fine.
    assert_accepts(
        "two keys",
        &[
            op(1, 0, 1, put("a", "1"), KvOutput::Written),
            op(2, 2, 3, get("b"), absent()),
            op(2, 4, 5, put("b", "1"), KvOutput::Written),
            op(1, 6, 7, get("a"), value("1")),
        ],
    );
}

#[test]
fn the_verdict_and_explanation_are_deterministic() {
    let history = generate_history(&GeneratorConfig::small(), 77).0;
    let mut mutated = history.clone();
    let index = mutate_one_response(&mut mutated, &mut SplitMix64::new(77)).expect("mutable op");
    let first = check(&mutated);
    for _ in 0..3 {
        assert_eq!(check(&mutated), first, "mutated op #{index}");
    }
}

#[test]
fn malformed_histories_are_errors() {
    assert_eq!(
        check_kv_history(&[op(1, 5, 4, get("x"), absent())], BUDGET),
        Err(HistoryError::ReturnBeforeInvoke {
            op_index: 0,
            invoke_time: 5,
            return_time: 4
        })
    );
    assert_eq!(
        check_kv_history(&[op(1, 0, 1, get("x"), KvOutput::Swapped(true))], BUDGET),
        Err(HistoryError::OutputDoesNotMatchInput {
            op_index: 0,
            input_kind: "get",
            output_kind: "swapped"
        })
    );
}

#[test]
fn a_tiny_budget_gives_unknown_not_a_wrong_verdict() {
    let (history, _) = generate_history(
        &GeneratorConfig {
            op_count: 200,
            key_count: 1,
            client_count: 6,
            unknown_percent: 10,
        },
        5,
    );
    let outcome = check_kv_history(&history, 50).expect("well-formed");
    assert!(
        matches!(outcome, CheckOutcome::Unknown { ref key, steps_used } if key == "k0" && steps_used == 50),
        "{outcome:?}"
    );
    assert_eq!(check(&history), CheckOutcome::Linearizable);
}

// ---------------------------------------------------------------- exhaustive reference checker

/// Tries every order of the operations that respects real time (an op that returned before
/// another was invoked comes first; unknown outcomes return at infinity) against a whole-map
/// model. `None` for histories too large to enumerate.
fn brute_force_linearizable(history: &[KvOperation]) -> Option<bool> {
    if history.len() > 8 {
        return None;
    }
    let mut used = vec![false; history.len()];
    Some(try_orders(history, &mut used, &BTreeMap::new()))
}

fn return_time_or_infinity(op: &KvOperation) -> u64 {
    if op.output == KvOutput::Unknown {
        u64::MAX
    } else {
        op.return_time
    }
}

fn try_orders(
    history: &[KvOperation],
    used: &mut Vec<bool>,
    map: &BTreeMap<String, String>,
) -> bool {
    if used.iter().all(|&u| u) {
        return true;
    }
    for candidate in 0..history.len() {
        if used[candidate] {
            continue;
        }
        let must_wait = (0..history.len()).any(|other| {
            !used[other]
                && other != candidate
                && return_time_or_infinity(&history[other]) < history[candidate].invoke_time
        });
        if must_wait {
            continue;
        }
        if let Some(next_map) = apply_to_map(map, &history[candidate]) {
            used[candidate] = true;
            let found = try_orders(history, used, &next_map);
            used[candidate] = false;
            if found {
                return true;
            }
        }
    }
    false
}

/// The sequential model over the whole map; `None` when the output is impossible.
fn apply_to_map(
    map: &BTreeMap<String, String>,
    operation: &KvOperation,
) -> Option<BTreeMap<String, String>> {
    let mut next = map.clone();
    let unknown = operation.output == KvOutput::Unknown;
    let produced = apply_input(&mut next, &operation.input);
    (unknown || produced == operation.output).then_some(next)
}

fn apply_input(map: &mut BTreeMap<String, String>, input: &KvInput) -> KvOutput {
    match input {
        KvInput::Get { key } => KvOutput::Value(map.get(key).cloned()),
        KvInput::Put { key, value } => {
            map.insert(key.clone(), value.clone());
            KvOutput::Written
        }
        KvInput::CompareAndSwap {
            key,
            expected,
            new_value,
        } => {
            let swapped = map.get(key) == Some(expected);
            if swapped {
                map.insert(key.clone(), new_value.clone());
            }
            KvOutput::Swapped(swapped)
        }
        KvInput::Delete { key } => KvOutput::Deleted {
            existed: map.remove(key).is_some(),
        },
    }
}

// ---------------------------------------------------------------- generated histories

struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

struct GeneratorConfig {
    op_count: usize,
    key_count: usize,
    client_count: usize,
    unknown_percent: u64,
}

impl GeneratorConfig {
    fn small() -> GeneratorConfig {
        GeneratorConfig {
            op_count: 7,
            key_count: 2,
            client_count: 3,
            unknown_percent: 15,
        }
    }
}

const VALUES: [&str; 4] = ["v0", "v1", "v2", "v3"];

fn random_value(rng: &mut SplitMix64) -> &'static str {
    VALUES[rng.below(VALUES.len() as u64) as usize]
}

fn random_input(rng: &mut SplitMix64, key_count: usize) -> KvInput {
    let key = format!("k{}", rng.below(key_count as u64));
    match rng.below(10) {
        0..=3 => get(&key),
        4..=5 => put(&key, random_value(rng)),
        6..=8 => cas(&key, random_value(rng), random_value(rng)),
        _ => delete(&key),
    }
}

/// One in-flight request of the generator.
struct InFlight {
    client_id: u64,
    invoke_time: u64,
    input: KvInput,
    /// Set once the op took effect on the model (its linearization point passed).
    output: Option<KvOutput>,
    /// The client will give up on it (unknown outcome).
    will_time_out: bool,
}

/// Runs random clients against a real sequential map: each event (invoke, take effect, return,
/// time out) gets its own instant, so every op takes effect strictly between its invoke and its
/// return and the history is linearizable by construction. Timed-out ops may take effect later,
/// or never. Returns the history and the number of events.
fn generate_history(config: &GeneratorConfig, seed: u64) -> (Vec<KvOperation>, u64) {
    let mut rng = SplitMix64::new(seed);
    let mut map = BTreeMap::new();
    let mut history = Vec::new();
    let mut busy_clients: Vec<bool> = vec![false; config.client_count];
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut abandoned: Vec<KvInput> = Vec::new();
    let mut started = 0;
    let mut time = 0u64;
    while started < config.op_count || !in_flight.is_empty() {
        time += 1;
        let idle: Vec<usize> = (0..config.client_count)
            .filter(|&c| !busy_clients[c])
            .collect();
        let choice = rng.below(4);
        if choice == 0 && started < config.op_count && !idle.is_empty() {
            let client = *rng.pick(&idle);
            busy_clients[client] = true;
            started += 1;
            in_flight.push(InFlight {
                client_id: client as u64,
                invoke_time: time,
                input: random_input(&mut rng, config.key_count),
                output: None,
                will_time_out: rng.below(100) < config.unknown_percent,
            });
        } else if choice == 1 && !in_flight.is_empty() {
            let index = rng.below(in_flight.len() as u64) as usize;
            if in_flight[index].output.is_none() {
                in_flight[index].output = Some(apply_input(&mut map, &in_flight[index].input));
            }
        } else if choice == 2 && !abandoned.is_empty() {
            let index = rng.below(abandoned.len() as u64) as usize;
            let input = abandoned.swap_remove(index);
            if rng.below(2) == 0 {
                apply_input(&mut map, &input);
            }
        } else if !in_flight.is_empty() {
            let index = rng.below(in_flight.len() as u64) as usize;
            let request = &in_flight[index];
            if request.will_time_out {
                let request = in_flight.swap_remove(index);
                busy_clients[request.client_id as usize] = false;
                if request.output.is_none() {
                    abandoned.push(request.input.clone());
                }
                history.push(unknown(
                    request.client_id,
                    request.invoke_time,
                    request.input,
                ));
            } else if request.output.is_some() {
                let request = in_flight.swap_remove(index);
                busy_clients[request.client_id as usize] = false;
                history.push(op(
                    request.client_id,
                    request.invoke_time,
                    time,
                    request.input,
                    request.output.expect("took effect"),
                ));
            }
        }
    }
    (history, time)
}

/// Replaces one known response with a different one of the same kind. Returns the op index, or
/// `None` when no op has a mutable response.
fn mutate_one_response(history: &mut [KvOperation], rng: &mut SplitMix64) -> Option<usize> {
    let candidates: Vec<usize> = (0..history.len())
        .filter(|&i| !matches!(history[i].output, KvOutput::Written | KvOutput::Unknown))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let index = *rng.pick(&candidates);
    let output = &mut history[index].output;
    *output = match output.clone() {
        KvOutput::Value(old) => loop {
            let new = match rng.below(VALUES.len() as u64 + 1) {
                0 => None,
                n => Some(VALUES[n as usize - 1].to_string()),
            };
            if new != old {
                break KvOutput::Value(new);
            }
        },
        KvOutput::Swapped(swapped) => KvOutput::Swapped(!swapped),
        KvOutput::Deleted { existed } => KvOutput::Deleted { existed: !existed },
        KvOutput::Written | KvOutput::Unknown => unreachable!("filtered out"),
    };
    Some(index)
}

fn render(history: &[KvOperation]) -> String {
    history
        .iter()
        .enumerate()
        .map(|(i, op)| format!("  #{i}: {op}\n"))
        .collect()
}

/// Seeds to sweep: `default`, or LINCHECK_SEEDS to sweep more.
fn seed_count(default: u64) -> u64 {
    std::env::var("LINCHECK_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The largest number of operations pending at one instant.
fn max_concurrency(history: &[KvOperation]) -> usize {
    let mut events: Vec<(u64, i32)> = history
        .iter()
        .flat_map(|op| [(op.invoke_time, 1), (return_time_or_infinity(op), -1)])
        .collect();
    events.sort_by_key(|&(time, delta)| (time, -delta));
    let mut open = 0i32;
    let mut most = 0i32;
    for (_, delta) in events {
        open += delta;
        most = most.max(open);
    }
    most as usize
}

#[test]
fn generated_histories_from_a_real_model_are_accepted() {
    for seed in 0..seed_count(200) {
        let config = GeneratorConfig {
            op_count: 5 + (seed as usize % 60),
            key_count: 1 + (seed as usize % 3),
            client_count: 2 + (seed as usize % 5),
            unknown_percent: 10,
        };
        let (history, _) = generate_history(&config, seed);
        let outcome = check(&history);
        assert_eq!(
            outcome,
            CheckOutcome::Linearizable,
            "seed {seed}: a history generated from the model was rejected:\n{}",
            render(&history)
        );
        if let Some(reference) = brute_force_linearizable(&history) {
            assert!(reference, "seed {seed}: the exhaustive checker rejects it");
        }
    }
}

#[test]
fn mutated_histories_agree_with_the_exhaustive_checker() {
    let mut rejected = 0;
    let mut compared = 0;
    for seed in 0..seed_count(400) {
        let (mut history, _) = generate_history(&GeneratorConfig::small(), seed);
        let mut rng = SplitMix64::new(seed.wrapping_mul(31).wrapping_add(7));
        let Some(mutated_index) = mutate_one_response(&mut history, &mut rng) else {
            continue;
        };
        let reference = brute_force_linearizable(&history).expect("small history");
        let outcome = check(&history);
        compared += 1;
        match (&outcome, reference) {
            (CheckOutcome::Linearizable, true) => {}
            (CheckOutcome::NotLinearizable(violation), false) => {
                rejected += 1;
                let key = history[mutated_index].input.key();
                let in_key = violation
                    .longest_prefix
                    .iter()
                    .chain(&violation.pending_ops)
                    .all(|&i| history[i].input.key() == key);
                assert!(
                    violation.key == key && in_key,
                    "seed {seed}: violation is on another key than the mutated op #{mutated_index}"
                );
            }
            _ => panic!(
                "seed {seed}: mutated op #{mutated_index}; checker says {outcome:?}, exhaustive \
                 search says linearizable={reference}; history:\n{}",
                render(&history)
            ),
        }
    }
    println!("{rejected} of {compared} mutated histories are not linearizable");
    assert!(
        compared >= 300,
        "only {compared} seeds had a mutable response"
    );
    assert!(
        rejected * 3 >= compared,
        "only {rejected} of {compared} mutations broke linearizability: the test is too weak"
    );
}

#[test]
fn random_small_histories_agree_with_the_exhaustive_checker() {
    let mut linearizable_count = 0;
    for seed in 0..600u64 {
        let mut rng = SplitMix64::new(seed + 1_000_000);
        let op_count = 1 + rng.below(7) as usize;
        let history: Vec<KvOperation> = (0..op_count)
            .map(|i| {
                let input = random_input(&mut rng, 1 + (seed as usize % 2));
                let invoke = rng.below(12);
                let ret = invoke + rng.below(6);
                let mut scratch = BTreeMap::new();
                if rng.below(3) == 0 {
                    scratch.insert(input.key().to_string(), random_value(&mut rng).to_string());
                }
                let output = if rng.below(8) == 0 {
                    KvOutput::Unknown
                } else {
                    apply_input(&mut scratch, &input)
                };
                op(i as u64, invoke, ret, input, output)
            })
            .collect();
        let reference = brute_force_linearizable(&history).expect("small");
        let outcome = check(&history);
        let agrees = match outcome {
            CheckOutcome::Linearizable => reference,
            CheckOutcome::NotLinearizable(_) => !reference,
            CheckOutcome::Unknown { .. } => false,
        };
        assert!(
            agrees,
            "seed {seed}: checker {outcome:?} vs exhaustive {reference}; history:\n{}",
            render(&history)
        );
        linearizable_count += usize::from(reference);
    }
    assert!(
        (60..=540).contains(&linearizable_count),
        "{linearizable_count} of 600 random histories linearizable: the mix is degenerate"
    );
}

#[test]
fn a_2000_op_4_key_8_client_history_is_checked_quickly() {
    let config = GeneratorConfig {
        op_count: 2_000,
        key_count: 4,
        client_count: 8,
        unknown_percent: 2,
    };
    let seed = 2_000;
    let (history, _) = generate_history(&config, seed);
    let started = Instant::now();
    let outcome = check(&history);
    let elapsed = started.elapsed();
    println!(
        "2,000 ops, 4 keys, 8 clients (up to {} pending at once, {} unknown outcomes): {} ms \
         ({:?})",
        max_concurrency(&history),
        history
            .iter()
            .filter(|op| op.output == KvOutput::Unknown)
            .count(),
        elapsed.as_millis(),
        outcome
    );
    assert_eq!(outcome, CheckOutcome::Linearizable, "seed {seed}");

    // A read of a value nobody ever wrote is caught in the big history too.
    let mut broken = history.clone();
    let read = broken
        .iter()
        .position(|op| matches!(op.input, KvInput::Get { .. }) && op.output != KvOutput::Unknown)
        .expect("some get");
    broken[read].output = value("never-written");
    let started = Instant::now();
    let outcome = check(&broken);
    println!(
        "same history with one impossible read: {} ms",
        started.elapsed().as_millis()
    );
    let CheckOutcome::NotLinearizable(violation) = outcome else {
        panic!("seed {seed}: broken read #{read} not caught: {outcome:?}");
    };
    assert_eq!(violation.stuck_op, read, "seed {seed}");

    // Harder: the same load on ONE key with 10% unknown outcomes (no partitioning helps, and
    // every unknown op stays pending to the end).
    let one_key = GeneratorConfig {
        op_count: 2_000,
        key_count: 1,
        client_count: 8,
        unknown_percent: 10,
    };
    let (history, _) = generate_history(&one_key, seed);
    let started = Instant::now();
    let outcome = check(&history);
    println!(
        "2,000 ops, 1 key, 8 clients, 10% unknown (up to {} pending at once): {} ms",
        max_concurrency(&history),
        started.elapsed().as_millis()
    );
    assert_eq!(outcome, CheckOutcome::Linearizable, "seed {seed}, one key");
}
