//! (placeholder: filled in by its issue)

pub mod linearizability;
