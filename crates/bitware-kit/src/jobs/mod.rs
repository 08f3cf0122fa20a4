//! The job lifecycle every worker shares, behind ports that speak the kit's
//! own types, with their D1 implementations, in-memory twins and one
//! contract suite that holds both to the same rules.
//!
//! Moved here so far (issue 23, step by step from the granulator):
//! - [`spend`]: the daily spend ledger — reservations against a tenant's
//!   cap and a job's budget, settlement, the sweep of expired reservations —
//!   with the 429 `spend_cap_exceeded` / 422 `budget_exceeded` answers;
//!   `D1Ledger` on D1 (`worker`), `memory::MemoryLedger` in memory.
//!
//! The tables are the kit's (`crates/bitware-kit/migrations/`); a worker
//! copies those migrations into its own, first. [`Tables`] names the job
//! table a worker's ledger reads (a job's spend, for its budget).
//!
//! Feature `twins`: the in-memory twins ([`memory`]) and the contract suite
//! ([`contract`]), for a worker's tests and for the kit's contract worker.

pub mod spend;

#[cfg(feature = "worker")]
mod ledger_d1;
#[cfg(feature = "worker")]
pub use ledger_d1::D1Ledger;

#[cfg(any(test, feature = "twins"))]
pub mod contract;
#[cfg(any(test, feature = "twins"))]
pub mod memory;

pub use spend::{DaySpend, JobBound, Refused, Reservation, SpendLedger};

/// The kit's migrations, in order: what a worker's `/health` expects among
/// its own applied migrations (a worker that made the same tables before
/// the kit shipped them, as the granulator did, lists its own instead).
pub const MIGRATIONS: &[&str] = &["0001_kit_jobs.sql"];

/// The tables of a worker's jobs. The kit's migrations make `jobs`; a
/// worker whose job table predates them names its own (it carries every
/// column of the kit's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    pub jobs: &'static str,
}

impl Tables {
    /// The tables the kit's migrations make.
    pub const KIT: Tables = Tables { jobs: "jobs" };
}
