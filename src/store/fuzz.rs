//! The store's fuzz entry point: [`fuzz_store`] reads bytes as a program of commands, reads and
//! watches over a small key alphabet (so operations collide), and checks invariants after every
//! step. The `fuzz/` crate calls it, and `cargo test` replays its corpus.

use super::event::Event;
use super::path;
use super::{Command, Store, WatchStart, WatcherId};

const T0: i64 = 1_800_000_000_000_000_000;
const SECOND: i64 = 1_000_000_000;
const SEGMENTS: [&str; 4] = ["a", "b", "_h", "c"];
const VALUES: [&str; 4] = ["", "x", "y", "a b]"];

/// Yields bytes of the input, then zeros.
struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }

    fn byte(&mut self) -> u8 {
        let value = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        value
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn key(&mut self) -> String {
        let shape = self.byte();
        if shape == 0xff {
            return "/".to_owned();
        }
        let depth = 1 + usize::from(shape % 3);
        let mut key = String::new();
        for _ in 0..depth {
            key.push('/');
            key.push_str(SEGMENTS[usize::from(self.byte() % 4)]);
        }
        if shape & 0x80 != 0 {
            key.push('/'); // a trailing slash the store must normalise away
        }
        key
    }

    fn value(&mut self) -> String {
        VALUES[usize::from(self.byte() % 4)].to_owned()
    }

    fn expire_at(&mut self) -> Option<i64> {
        match self.byte() % 4 {
            0 => None,
            step => Some(T0 + i64::from(step) * SECOND),
        }
    }
}

fn check_listing(event: &Event) {
    let mut stack = vec![&event.node];
    while let Some(node) = stack.pop() {
        if let Some(children) = &node.nodes {
            assert!(!children.is_empty(), "an empty listing must be None");
            for pair in children.windows(2) {
                assert!(
                    pair[0].key < pair[1].key,
                    "listing not sorted: {:?}",
                    node.key
                );
            }
            for child in children {
                assert!(
                    !path::is_hidden(&child.key),
                    "hidden child listed: {}",
                    child.key
                );
                stack.push(child);
            }
        }
    }
}

fn check_round_trip(store: &Store) {
    let bytes = store.save();
    let restored = Store::restore(&bytes).unwrap_or_else(|error| panic!("restore failed: {error}"));
    assert_eq!(restored.save(), bytes, "save/restore/save differs");
    assert_eq!(restored.get("/", true, true), store.get("/", true, true));
    assert_eq!(restored.current_index(), store.current_index());
    assert_eq!(restored.has_ttl_nodes(), store.has_ttl_nodes());
}

/// Interprets `data` as a program against a fresh store and asserts the store's invariants:
/// each successful write moves the index by exactly one, failures and reads never move it,
/// Sync leaves nothing expired behind, fired events are never refreshes, listings are sorted
/// and hide `_` nodes, and save/restore round-trips. Panics on a violation.
#[doc(hidden)]
pub fn fuzz_store(data: &[u8]) {
    run_program(data);
}

/// [`fuzz_store`]'s body; returns the final store so tests can check the program did work.
fn run_program(data: &[u8]) -> Store {
    // The same bytes as untrusted encodings: the decoders must not panic.
    let _ = Command::decode(data);
    if let Ok(store) = Store::restore(data) {
        check_round_trip(&store);
    }
    let mut input = Input { data, at: 0 };
    let mut store = Store::new();
    let mut fired: Vec<(WatcherId, Event)> = Vec::new();
    let mut next_watcher: WatcherId = 1;
    let mut steps = 0usize;
    while !input.done() && steps < 4096 {
        steps += 1;
        let before = store.current_index();
        let op = input.byte() % 14;
        let command = match op {
            0 | 1 => Some(Command::Set {
                key: input.key(),
                value: input.value(),
                dir: op == 1,
                expire_at: input.expire_at(),
                refresh: input.byte().is_multiple_of(8),
            }),
            2 | 3 => Some(Command::Create {
                key: input.key(),
                value: input.value(),
                dir: input.flag(),
                expire_at: input.expire_at(),
                in_order: op == 3,
            }),
            4 => Some(Command::Update {
                key: input.key(),
                value: input.value(),
                expire_at: input.expire_at(),
                refresh: input.byte().is_multiple_of(8),
            }),
            5 => Some(Command::CompareAndSwap {
                key: input.key(),
                value: input.value(),
                prev_value: Some(input.value()).filter(|_| input.flag()),
                prev_index: u64::from(input.byte() % 8),
                expire_at: input.expire_at(),
                refresh: input.byte().is_multiple_of(8),
            }),
            6 => Some(Command::Delete {
                key: input.key(),
                dir: input.flag(),
                recursive: input.flag(),
            }),
            7 => Some(Command::CompareAndDelete {
                key: input.key(),
                prev_value: Some(input.value()).filter(|_| input.flag()),
                prev_index: u64::from(input.byte() % 8),
            }),
            8 => Some(Command::Sync {
                now: T0 + i64::from(input.byte() % 6) * SECOND,
            }),
            9 => Some(Command::Internal {
                key: input.key(),
                value: input.value(),
            }),
            _ => None,
        };
        if let Some(command) = command {
            let encoded = command.to_bytes();
            assert_eq!(Command::decode(&encoded).as_ref(), Ok(&command), "codec");
            let expire_count_before = store.stats.values()[14];
            fired.clear();
            let result = store.apply(&command, &mut fired);
            match (&command, result) {
                (Command::Sync { now }, Ok(None)) => {
                    let expired = store.stats.values()[14] - expire_count_before;
                    assert_eq!(
                        store.current_index(),
                        before + expired,
                        "one index per expiry"
                    );
                    assert!(store.next_expiration().is_none_or(|at| at > *now));
                }
                (Command::Internal { .. }, Ok(None)) => {
                    assert_eq!(store.current_index(), before + 1);
                }
                (_, Ok(Some(event))) => {
                    assert_eq!(store.current_index(), before + 1, "{command:?}");
                    assert_eq!(event.etcd_index, before + 1);
                    assert_eq!(event.node.modified_index, before + 1);
                    assert!(event.node.nodes.is_none());
                    if event.refresh {
                        assert!(fired.is_empty(), "a refresh fired watchers");
                    }
                }
                (_, Err(error)) => {
                    assert_eq!(store.current_index(), before, "{command:?} failed: {error}");
                    assert_eq!(error.index, before);
                }
                (_, Ok(other)) => panic!("{command:?} returned {other:?}"),
            }
            for (_, event) in &fired {
                assert!(!event.refresh);
                assert!(event.index() > before && event.index() <= store.current_index());
            }
            continue;
        }
        match op {
            10 => {
                let key = input.key();
                if let Ok(event) = store.get(&key, input.flag(), true) {
                    assert_eq!(event.etcd_index, before);
                    check_listing(&event);
                }
            }
            11 => {
                let key = input.key();
                let recursive = input.flag();
                let stream = input.flag();
                let since_index = u64::from(input.byte() % 16);
                let count_before = store.watcher_count();
                let id = next_watcher;
                next_watcher += 1;
                match store.watch(&key, recursive, stream, since_index, id) {
                    Ok(WatchStart::Parked { registered_index }) => {
                        assert_eq!(registered_index, before);
                        assert_eq!(store.watcher_count(), count_before + 1);
                    }
                    Ok(WatchStart::Ready(event)) => {
                        assert!(event.index() >= since_index && !event.refresh);
                        assert_eq!(store.watcher_count(), count_before);
                    }
                    Err(error) => assert_eq!(error.index, before),
                }
            }
            12 => {
                let id = WatcherId::from(input.byte()) % next_watcher.max(1);
                store.remove_watcher(id);
            }
            _ => check_round_trip(&store),
        }
        assert_eq!(
            store.current_index(),
            before,
            "reads and watches never move the index"
        );
    }
    check_round_trip(&store);
    store
}

#[cfg(test)]
mod tests {
    use super::{fuzz_store, run_program};

    /// xorshift64*: the seeded generator for the random programs below.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn random_programs_keep_the_invariants() {
        let mut total_index = 0;
        let mut total_expired = 0;
        for seed in 1..=300u64 {
            let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let len = 16 + (next(&mut state) % 600) as usize;
            let data: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
            let result = std::panic::catch_unwind(|| run_program(&data));
            let store = result.unwrap_or_else(|_| {
                panic!("fuzz_store failed for seed {seed} (replay: fuzz_store(&{data:?}))")
            });
            total_index += store.current_index();
            total_expired += store.stats.values()[14];
        }
        // The programs must actually write and expire things, or they test nothing.
        assert!(
            total_index > 3000,
            "only {total_index} writes in 300 programs"
        );
        assert!(
            total_expired > 50,
            "only {total_expired} expiries in 300 programs"
        );
    }

    /// The committed seeds (the lead's replay test runs the whole corpus; this keeps the store's
    /// own seeds exercised by `cargo test --lib store::`).
    #[test]
    fn corpus_seeds_hold_the_invariants_and_do_work() {
        let seeds: [(&str, &[u8]); 3] = [
            (
                "basic-writes",
                include_bytes!("../../fuzz/corpus/fuzz_store/basic-writes"),
            ),
            (
                "ttl-sync",
                include_bytes!("../../fuzz/corpus/fuzz_store/ttl-sync"),
            ),
            (
                "watches",
                include_bytes!("../../fuzz/corpus/fuzz_store/watches"),
            ),
        ];
        for (name, data) in seeds {
            let store = run_program(data);
            assert!(store.current_index() >= 3, "seed {name} wrote too little");
        }
    }

    #[test]
    fn empty_and_tiny_inputs() {
        fuzz_store(&[]);
        fuzz_store(&[0]);
        fuzz_store(&[255; 64]);
    }
}
