//! Bytes -> simulator schedule, for cargo-fuzz and corpus replay.
//!
//! The first byte picks the cluster size (3 or 5 voters, plus one spare) and seeds the
//! election jitter. Every following byte is one step, its low 4 bits the operation and,
//! where needed, the next byte its argument:
//!
//! | low 4 bits | step |
//! |---|---|
//! | 0-1 | one tick on every node |
//! | 2-3 | one tick, then deliver every message sent before it (a synchronous round) |
//! | 4-6 | deliver the queued message at position `arg` |
//! | 7 | drop the queued message at position `arg` |
//! | 8 | duplicate the queued message at position `arg` |
//! | 9 | crash node `arg` |
//! | 10 | restart node `arg` |
//! | 11 | partition by the bits of `arg` (bit i: group of node i+1) |
//! | 12 | heal |
//! | 13 | a client proposes at node `arg` |
//! | 14 | a client reads at node `arg` |
//! | 15 | a membership step of a random node (arg even) or a leadership transfer (arg odd) |
//!
//! Then all faults heal and the liveness phase runs. Any checker violation panics with the
//! violation (and the input bytes replay it).

use super::cluster::{FaultRates, SimOptions, Simulation};
use super::network::NetworkFaults;
use crate::raft::{MessageKind, NodeId};

/// Longest schedule interpreted; longer inputs are cut (keeps each run fast).
pub const MAX_SCHEDULE_BYTES: usize = 4096;

/// Options of a schedule-driven run: no random faults, every fault comes from the bytes.
fn options(voters: usize) -> SimOptions {
    SimOptions {
        voters,
        spares: 1,
        fault_ticks: 0,
        liveness_ticks: 1000,
        network: NetworkFaults {
            drop_per_mille: 0,
            duplicate_per_mille: 0,
            min_delay_ticks: 1,
            max_delay_ticks: 1,
        },
        rates: FaultRates {
            propose: 0,
            read: 0,
            crash: 0,
            crash_before_sync: 0,
            restart: 0,
            partition: 0,
            heal: 0,
            conf_change: 0,
            transfer: 0,
        },
        max_inflight_msgs: 2,
        max_entries_bytes_per_msg: 16,
        compact_after_entries: 8,
        record_trace: false,
        unsafe_skip_vote_log_check: false,
        unsafe_commit_any_term: false,
        unsafe_send_before_sync: false,
        unsafe_read_without_quorum: false,
        unsafe_send_first_with_unpersisted_commit: false,
    }
}

/// Runs the schedule encoded by `data`; panics if any checker fails.
#[doc(hidden)]
pub fn fuzz_sim_schedule(data: &[u8]) {
    let Some((&first, steps)) = data.split_first() else {
        return;
    };
    let steps = &steps[..steps.len().min(MAX_SCHEDULE_BYTES)];
    let voters = if first & 1 == 0 { 3 } else { 5 };
    let mut sim = Simulation::new(first as u64, options(voters));
    if let Err(v) = run_schedule(&mut sim, steps) {
        panic!("fuzz_sim_schedule: {v}");
    }
}

fn run_schedule(sim: &mut Simulation, steps: &[u8]) -> Result<(), super::Violation> {
    let n = sim.len() as u64;
    let mut i = 0;
    while i < steps.len() {
        let op = steps[i] & 0x0F;
        let arg = steps.get(i + 1).copied().unwrap_or(0);
        let node: NodeId = 1 + (arg as u64 % n);
        i += if op <= 3 || op == 12 { 1 } else { 2 };
        match op {
            0..=1 => sim.tick_all()?,
            2..=3 => {
                sim.tick_all()?;
                sim.deliver_due()?;
            }
            4..=6 => {
                if let Some(f) = sim.network.take_at(arg as usize) {
                    sim.deliver(f)?;
                }
            }
            7 => {
                if let Some(f) = sim.network.take_at(arg as usize) {
                    if f.msg.kind == MessageKind::Snapshot {
                        if let Some(raw) = sim.nodes[(f.msg.from - 1) as usize].raw.as_mut() {
                            raw.report_snapshot(f.msg.to, false);
                        }
                        sim.handle_ready(f.msg.from)?;
                    }
                }
            }
            8 => {
                if !sim.network.queue.is_empty() {
                    let at = arg as usize % sim.network.queue.len();
                    let copy = sim.network.queue[at].clone();
                    sim.network.queue.push(copy);
                }
            }
            9 => sim.crash(node),
            10 => sim.restart(node)?,
            11 => {
                for (g, slot) in sim.network.partition.iter_mut().enumerate() {
                    *slot = (arg >> (g % 8)) & 1;
                }
            }
            12 => sim.network.heal(),
            13 => {
                sim.propose(node)?;
            }
            14 => sim.read(node)?,
            _ => {
                if arg % 2 == 0 {
                    sim.change_membership()?;
                } else {
                    sim.transfer_leadership()?;
                }
            }
        }
    }
    let summary = sim.run()?;
    if std::env::var_os("SIM_FUZZ_VERBOSE").is_some() {
        eprintln!("schedule of {} bytes: {summary:?}", steps.len());
    }
    Ok(())
}
