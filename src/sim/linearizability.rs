//! Linearizability checker for key-value histories.
//!
//! A history is what clients saw: for every operation (get, put, compare-and-swap, delete on a
//! map of string keys) the client id, the invoke and return times, the input and the output.
//! The history is linearizable when every operation can be given one instant between its invoke
//! and its return such that, replayed in the order of those instants, a plain sequential map
//! produces exactly the outputs the clients saw. This module owns that decision so that the
//! simulator, the cluster tests and the fuzz targets all judge histories the same way.
//!
//! # Algorithm
//! Wing & Gong's search with Lowe's just-in-time linearization and memoisation, as in Porcupine:
//! 1. **P-compositionality**: linearizability is local, so the history is split by key and each
//!    key's sub-history is checked on its own (a single-register model, much smaller states).
//! 2. Each operation becomes a *call* entry at its invoke time and a *return* entry at its return
//!    time; the entries are sorted into one doubly linked list. Ties put calls before returns:
//!    intervals are closed, so two operations that touch at one instant count as concurrent.
//! 3. Depth-first search walks the list. At a call entry it tries to linearize that operation
//!    now: if the model accepts the output, both entries are *lifted* out of the list, the
//!    choice is pushed on a stack and the walk restarts from the head. Reaching a return entry
//!    means that operation should already have been linearized: the search backtracks (pops the
//!    last choice, *unlifts* its entries and tries the next call after it). An empty list means
//!    every operation found its instant; backtracking past an empty stack means none exists.
//! 4. A memo of (set of linearized operations, model state) pairs prunes every search state
//!    that was already explored through another order.
//!
//! # Unknown outcomes
//! An operation whose client never learned the outcome (timeout, crash) has [`KvOutput::Unknown`].
//! It may have taken effect at any instant after its invoke, or never: its return is treated as
//! "at infinity" and the model accepts whatever it does. Linearizing it after every other
//! operation is indistinguishable from "never happened", so one search covers both. A get with
//! an unknown outcome constrains nothing and is dropped.
//!
//! # Determinism and bounds
//! No hashing: partitions, the value interning table and the memo are `BTreeMap`s, so the same
//! history gives the same result and the same explanation every time. The search is bounded by
//! a step budget (one step = one visit of a list entry, summed over all keys); when it runs out
//! the answer is [`CheckOutcome::Unknown`], never a hang.
//!
//! # Use
//! Record a `Vec<KvOperation>`, call [`check_kv_history`] (with [`DEFAULT_MAX_SEARCH_STEPS`]
//! unless you know better), and on [`CheckOutcome::NotLinearizable`] print
//! [`Violation::describe`]: the key, the longest linearizable prefix found and the operation
//! that could not follow it.

use std::collections::BTreeMap;
use std::fmt;

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvInput {
    /// Read the value of `key`.
    Get { key: String },
    /// Set `key` to `value`, whatever it held.
    Put { key: String, value: String },
    /// Set `key` to `new_value` only if it currently holds `expected` (an absent key never
    /// matches).
    CompareAndSwap {
        key: String,
        expected: String,
        new_value: String,
    },
    /// Remove `key`.
    Delete { key: String },
}

impl KvInput {
    /// The key this operation touches.
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get { key }
            | KvInput::Put { key, .. }
            | KvInput::CompareAndSwap { key, .. }
            | KvInput::Delete { key } => key,
        }
    }

    fn kind_name(&self) -> &'static str {
        match self {
            KvInput::Get { .. } => "get",
            KvInput::Put { .. } => "put",
            KvInput::CompareAndSwap { .. } => "compare-and-swap",
            KvInput::Delete { .. } => "delete",
        }
    }
}

/// What the client was told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOutput {
    /// Answer to a get: the value, or `None` when the key was absent.
    Value(Option<String>),
    /// Answer to a put: acknowledged.
    Written,
    /// Answer to a compare-and-swap: whether the value was swapped.
    Swapped(bool),
    /// Answer to a delete: whether the key existed.
    Deleted { existed: bool },
    /// No answer (timeout, crash): the operation may have taken effect at any instant after its
    /// invoke, or never. Valid for every kind of input.
    Unknown,
}

impl KvOutput {
    fn kind_name(&self) -> &'static str {
        match self {
            KvOutput::Value(_) => "value",
            KvOutput::Written => "written",
            KvOutput::Swapped(_) => "swapped",
            KvOutput::Deleted { .. } => "deleted",
            KvOutput::Unknown => "unknown",
        }
    }
}

/// One operation as a client saw it. Times are in any unit, as long as all clients share it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvOperation {
    /// Which client issued it (used only in explanations).
    pub client_id: u64,
    /// When the request was sent.
    pub invoke_time: u64,
    /// When the answer arrived. Ignored when `output` is [`KvOutput::Unknown`].
    /// Invariant: `return_time >= invoke_time` (checked, see [`HistoryError`]).
    pub return_time: u64,
    pub input: KvInput,
    pub output: KvOutput,
}

impl fmt::Display for KvOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let input = match &self.input {
            KvInput::Get { key } => format!("get({key})"),
            KvInput::Put { key, value } => format!("put({key}, {value:?})"),
            KvInput::CompareAndSwap {
                key,
                expected,
                new_value,
            } => format!("cas({key}, {expected:?} -> {new_value:?})"),
            KvInput::Delete { key } => format!("delete({key})"),
        };
        let output = match &self.output {
            KvOutput::Value(Some(value)) => format!("{value:?}"),
            KvOutput::Value(None) => "absent".to_string(),
            KvOutput::Written => "ok".to_string(),
            KvOutput::Swapped(swapped) => format!("swapped={swapped}"),
            KvOutput::Deleted { existed } => format!("existed={existed}"),
            KvOutput::Unknown => "unknown".to_string(),
        };
        let returned = if self.output == KvOutput::Unknown {
            "?".to_string()
        } else {
            self.return_time.to_string()
        };
        write!(
            f,
            "client {} [{}, {}] {} -> {}",
            self.client_id, self.invoke_time, returned, input, output
        )
    }
}

/// A history the checker cannot judge because it is malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryError {
    /// An operation returned before it was invoked.
    ReturnBeforeInvoke {
        op_index: usize,
        invoke_time: u64,
        return_time: u64,
    },
    /// The output does not answer this kind of input (e.g. a get answered with `Swapped`).
    OutputDoesNotMatchInput {
        op_index: usize,
        input_kind: &'static str,
        output_kind: &'static str,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::ReturnBeforeInvoke {
                op_index,
                invoke_time,
                return_time,
            } => write!(
                f,
                "operation {op_index}: return time {return_time} is before invoke time {invoke_time}"
            ),
            HistoryError::OutputDoesNotMatchInput {
                op_index,
                input_kind,
                output_kind,
            } => write!(
                f,
                "operation {op_index}: a {input_kind} cannot be answered with a {output_kind} output"
            ),
        }
    }
}

impl std::error::Error for HistoryError {}

/// Why a history is not linearizable: the key whose sub-history fails and the furthest the
/// search got on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key whose operations admit no linearization.
    pub key: String,
    /// History indexes of the longest linearizable prefix found, in linearization order.
    /// Invariant: every index names an operation on `key`.
    pub longest_prefix: Vec<usize>,
    /// The key's value after that prefix (`None`: absent).
    pub value_after_prefix: Option<String>,
    /// History index of the operation whose return the search reached without being able to
    /// linearize it after `longest_prefix`.
    pub stuck_op: usize,
    /// History indexes of the operations that had been invoked but not linearized at that
    /// point (the candidates that were tried next, `stuck_op` among them).
    pub pending_ops: Vec<usize>,
}

impl Violation {
    /// A multi-line explanation naming the operations involved.
    pub fn describe(&self, history: &[KvOperation]) -> String {
        let mut text = format!(
            "key {:?} is not linearizable; longest linearizable prefix ({} ops):\n",
            self.key,
            self.longest_prefix.len()
        );
        for &index in &self.longest_prefix {
            text.push_str(&format!("  #{index}: {}\n", history[index]));
        }
        text.push_str(&format!(
            "value after the prefix: {:?}\nno pending operation can come next; pending:\n",
            self.value_after_prefix
        ));
        for &index in &self.pending_ops {
            let marker = if index == self.stuck_op {
                "  <- returned before it could be linearized"
            } else {
                ""
            };
            text.push_str(&format!("  #{index}: {}{marker}\n", history[index]));
        }
        text
    }
}

/// The checker's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    Linearizable,
    NotLinearizable(Violation),
    /// The step budget ran out on `key` before a verdict (no other key was found violating).
    Unknown {
        key: String,
        steps_used: u64,
    },
}

/// A step budget far above what the 2,000-operation, 8-client histories of
/// `tests/lincheck_cases.rs` need (they check in milliseconds), which still stops a
/// pathological search after seconds rather than hours.
pub const DEFAULT_MAX_SEARCH_STEPS: u64 = 10_000_000;

/// Checks `history` for linearizability against a sequential map, spending at most
/// `max_search_steps` search steps over all keys.
pub fn check_kv_history(
    history: &[KvOperation],
    max_search_steps: u64,
) -> Result<CheckOutcome, HistoryError> {
    validate(history)?;
    let mut partitions: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        let unknown_get = matches!(op.input, KvInput::Get { .. }) && op.output == KvOutput::Unknown;
        if !unknown_get {
            partitions.entry(op.input.key()).or_default().push(index);
        }
    }
    let mut steps_used = 0u64;
    let mut out_of_budget: Option<String> = None;
    for (key, op_indexes) in partitions {
        let budget_left = max_search_steps.saturating_sub(steps_used);
        let mut search = KeySearch::new(history, &op_indexes);
        let verdict = search.run(budget_left);
        steps_used += search.steps_used;
        match verdict {
            KeyVerdict::Linearizable => {}
            KeyVerdict::OutOfBudget => {
                if out_of_budget.is_none() {
                    out_of_budget = Some(key.to_string());
                }
            }
            KeyVerdict::NotLinearizable => {
                return Ok(CheckOutcome::NotLinearizable(search.violation(key)));
            }
        }
    }
    Ok(match out_of_budget {
        Some(key) => CheckOutcome::Unknown { key, steps_used },
        None => CheckOutcome::Linearizable,
    })
}

fn validate(history: &[KvOperation]) -> Result<(), HistoryError> {
    for (op_index, op) in history.iter().enumerate() {
        let output_fits = matches!(
            (&op.input, &op.output),
            (_, KvOutput::Unknown)
                | (KvInput::Get { .. }, KvOutput::Value(_))
                | (KvInput::Put { .. }, KvOutput::Written)
                | (KvInput::CompareAndSwap { .. }, KvOutput::Swapped(_))
                | (KvInput::Delete { .. }, KvOutput::Deleted { .. })
        );
        if !output_fits {
            return Err(HistoryError::OutputDoesNotMatchInput {
                op_index,
                input_kind: op.input.kind_name(),
                output_kind: op.output.kind_name(),
            });
        }
        if op.output != KvOutput::Unknown && op.return_time < op.invoke_time {
            return Err(HistoryError::ReturnBeforeInvoke {
                op_index,
                invoke_time: op.invoke_time,
                return_time: op.return_time,
            });
        }
    }
    Ok(())
}

/// Value ids: 0 is "absent", n > 0 is the n-th distinct value string of the key.
type ValueId = u32;
const ABSENT: ValueId = 0;

/// One operation of a single key, with values interned. `None` outcomes are unknown.
#[derive(Clone, Copy, Debug)]
enum RegisterOp {
    Get {
        observed: ValueId,
    },
    Put {
        value: ValueId,
    },
    Cas {
        expected: ValueId,
        new_value: ValueId,
        swapped: Option<bool>,
    },
    Delete {
        existed: Option<bool>,
    },
}

impl RegisterOp {
    /// The sequential single-register model: the state after this op, or `None` when the op's
    /// output is impossible from `state`.
    fn step(self, state: ValueId) -> Option<ValueId> {
        match self {
            RegisterOp::Get { observed } => (observed == state).then_some(state),
            RegisterOp::Put { value } => Some(value),
            RegisterOp::Cas {
                expected,
                new_value,
                swapped,
            } => {
                let matches = state == expected;
                if swapped.is_some_and(|swapped| swapped != matches) {
                    return None;
                }
                Some(if matches { new_value } else { state })
            }
            RegisterOp::Delete { existed } => {
                let exists = state != ABSENT;
                if existed.is_some_and(|existed| existed != exists) {
                    return None;
                }
                Some(ABSENT)
            }
        }
    }
}

/// Interns value strings of one key into small ids (deterministically: first seen, first id).
struct ValueTable {
    ids: BTreeMap<String, ValueId>,
    /// Invariant: `names[id - 1]` is the string with id `id`.
    names: Vec<String>,
}

impl ValueTable {
    fn intern(&mut self, value: &str) -> ValueId {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        self.names.push(value.to_string());
        let id = ValueId::try_from(self.names.len()).expect("fewer than 2^32 distinct values");
        self.ids.insert(value.to_string(), id);
        id
    }

    fn name(&self, id: ValueId) -> Option<String> {
        (id != ABSENT).then(|| self.names[id as usize - 1].clone())
    }
}

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

/// One call or return entry of the linked list.
#[derive(Clone, Copy, Debug)]
struct Entry {
    is_call: bool,
    /// Local op index (into `KeySearch::ops`).
    op: usize,
    /// For a call: the node of its return; for a return: the node of its call.
    /// Invariant: `entries[partner].partner` is this node, and a call's node precedes its
    /// return's node in time order.
    partner: usize,
}

enum KeyVerdict {
    Linearizable,
    NotLinearizable,
    OutOfBudget,
}

/// The search over one key's operations.
struct KeySearch {
    /// Invariant: `history_index[local]` is the history index of local op `local`.
    history_index: Vec<usize>,
    ops: Vec<RegisterOp>,
    values: ValueTable,
    /// Node 0 is the list head; nodes 1.. are entries in time order.
    entries: Vec<Entry>,
    /// Invariant: `next`/`prev` describe a doubly linked list starting at HEAD that holds
    /// exactly the entries of the ops not linearized in the current search state.
    next: Vec<usize>,
    prev: Vec<usize>,
    steps_used: u64,
    /// Longest prefix seen when the search got stuck: (local ops in order, state, stuck op,
    /// pending ops).
    best: Option<(Vec<usize>, ValueId, usize, Vec<usize>)>,
}

impl KeySearch {
    fn new(history: &[KvOperation], op_indexes: &[usize]) -> KeySearch {
        let mut values = ValueTable {
            ids: BTreeMap::new(),
            names: Vec::new(),
        };
        let mut ops = Vec::with_capacity(op_indexes.len());
        // (time, 0 = call / 1 = return, local op)
        let mut timeline: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * op_indexes.len());
        for (local, &index) in op_indexes.iter().enumerate() {
            let op = &history[index];
            let known = op.output != KvOutput::Unknown;
            let register_op = match (&op.input, &op.output) {
                (KvInput::Get { .. }, KvOutput::Value(observed)) => RegisterOp::Get {
                    observed: observed.as_deref().map_or(ABSENT, |v| values.intern(v)),
                },
                (KvInput::Put { value, .. }, _) => RegisterOp::Put {
                    value: values.intern(value),
                },
                (
                    KvInput::CompareAndSwap {
                        expected,
                        new_value,
                        ..
                    },
                    output,
                ) => RegisterOp::Cas {
                    expected: values.intern(expected),
                    new_value: values.intern(new_value),
                    swapped: match output {
                        KvOutput::Swapped(swapped) => Some(*swapped),
                        _ => None,
                    },
                },
                (KvInput::Delete { .. }, output) => RegisterOp::Delete {
                    existed: match output {
                        KvOutput::Deleted { existed } => Some(*existed),
                        _ => None,
                    },
                },
                (KvInput::Get { .. }, _) => {
                    unreachable!("validated history; unknown gets are dropped before the search")
                }
            };
            ops.push(register_op);
            timeline.push((op.invoke_time, 0, local));
            let return_time = if known { op.return_time } else { u64::MAX };
            timeline.push((return_time, 1, local));
        }
        timeline.sort_unstable();
        let node_count = timeline.len() + 1;
        let mut entries = vec![
            Entry {
                is_call: false,
                op: NIL,
                partner: NIL,
            };
            node_count
        ];
        let mut call_node = vec![NIL; ops.len()];
        for (position, &(_, kind, local)) in timeline.iter().enumerate() {
            let node = position + 1;
            entries[node].is_call = kind == 0;
            entries[node].op = local;
            if kind == 0 {
                call_node[local] = node;
            } else {
                let call = call_node[local];
                assert!(
                    call != NIL,
                    "op {} returns before its call in the timeline",
                    op_indexes[local]
                );
                entries[node].partner = call;
                entries[call].partner = node;
            }
        }
        let next = (0..node_count)
            .map(|node| if node + 1 < node_count { node + 1 } else { NIL })
            .collect();
        let prev = (0..node_count)
            .map(|node| if node == 0 { NIL } else { node - 1 })
            .collect();
        KeySearch {
            history_index: op_indexes.to_vec(),
            ops,
            values,
            entries,
            next,
            prev,
            steps_used: 0,
            best: None,
        }
    }

    fn unlink(&mut self, node: usize) {
        let (before, after) = (self.prev[node], self.next[node]);
        self.next[before] = after;
        if after != NIL {
            self.prev[after] = before;
        }
    }

    fn relink(&mut self, node: usize) {
        let (before, after) = (self.prev[node], self.next[node]);
        self.next[before] = node;
        if after != NIL {
            self.prev[after] = node;
        }
    }

    /// Removes a call entry and its return entry from the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.entries[call].partner);
    }

    /// Undoes `lift(call)`; must be called in the reverse order of the lifts.
    fn unlift(&mut self, call: usize) {
        self.relink(self.entries[call].partner);
        self.relink(call);
    }

    fn run(&mut self, max_steps: u64) -> KeyVerdict {
        let words = self.ops.len().div_ceil(64);
        let mut linearized = vec![0u64; words];
        // The memo: for each set of linearized ops, the model states already explored with it.
        // Looked up by slice, so a repeated search state costs no allocation.
        let mut seen: BTreeMap<Vec<u64>, Vec<ValueId>> = BTreeMap::new();
        // (call node, state before it)
        let mut stack: Vec<(usize, ValueId)> = Vec::new();
        let mut state = ABSENT;
        let mut cursor = self.next[HEAD];
        while self.next[HEAD] != NIL {
            if self.steps_used >= max_steps {
                return KeyVerdict::OutOfBudget;
            }
            self.steps_used += 1;
            assert!(cursor != NIL, "the list always ends with a return entry");
            let entry = self.entries[cursor];
            let (word, bit) = (entry.op / 64, 1u64 << (entry.op % 64));
            if entry.is_call {
                if let Some(next_state) = self.ops[entry.op].step(state) {
                    linearized[word] |= bit;
                    let unexplored = match seen.get_mut(linearized.as_slice()) {
                        Some(states) if states.contains(&next_state) => false,
                        Some(states) => {
                            states.push(next_state);
                            true
                        }
                        None => {
                            seen.insert(linearized.clone(), vec![next_state]);
                            true
                        }
                    };
                    if unexplored {
                        stack.push((cursor, state));
                        state = next_state;
                        self.lift(cursor);
                        cursor = self.next[HEAD];
                        continue;
                    }
                    linearized[word] &= !bit;
                }
                cursor = self.next[cursor];
            } else {
                self.remember_if_longest(&stack, state, entry.op, cursor);
                let Some((call, state_before)) = stack.pop() else {
                    return KeyVerdict::NotLinearizable;
                };
                let op = self.entries[call].op;
                linearized[op / 64] &= !(1u64 << (op % 64));
                state = state_before;
                self.unlift(call);
                cursor = self.next[call];
            }
        }
        KeyVerdict::Linearizable
    }

    fn remember_if_longest(
        &mut self,
        stack: &[(usize, ValueId)],
        state: ValueId,
        stuck_op: usize,
        return_node: usize,
    ) {
        if self
            .best
            .as_ref()
            .is_some_and(|best| best.0.len() >= stack.len())
        {
            return;
        }
        let prefix = stack
            .iter()
            .map(|&(call, _)| self.entries[call].op)
            .collect();
        let mut pending = Vec::new();
        let mut node = self.next[HEAD];
        while node != NIL && node != return_node {
            if self.entries[node].is_call {
                pending.push(self.entries[node].op);
            }
            node = self.next[node];
        }
        self.best = Some((prefix, state, stuck_op, pending));
    }

    fn violation(&self, key: &str) -> Violation {
        let (prefix, state, stuck_op, pending) = self
            .best
            .clone()
            .expect("a failed search got stuck at least once");
        Violation {
            key: key.to_string(),
            longest_prefix: prefix.iter().map(|&op| self.history_index[op]).collect(),
            value_after_prefix: self.values.name(state),
            stuck_op: self.history_index[stuck_op],
            pending_ops: pending.iter().map(|&op| self.history_index[op]).collect(),
        }
    }
}
