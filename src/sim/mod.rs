//! A deterministic simulator of a Raft cluster, for tests, fuzzing and teaching.
//!
//! Everything is a function of one seed: simulated time ([`cluster::Simulation::tick`]),
//! a network that delays, drops, duplicates, reorders and partitions ([`network`]), disks
//! where a crash loses what was not synced ([`disk`]), and the fault schedule. The nodes run
//! the real core ([`crate::raft`]) under the Ready contract. Checkers ([`checkers`]) run
//! after every step; a violation names the seed that replays it, and the same seed gives the
//! same trace byte for byte. [`fuzz`] turns arbitrary bytes into a schedule.

pub mod checkers;
pub mod cluster;
pub mod disk;
pub mod fuzz;
pub mod linearizability;
pub mod network;

pub use self::checkers::Violation;
pub use self::cluster::{run_seed, SimOptions, SimSummary, Simulation};
pub use self::fuzz::fuzz_sim_schedule;
