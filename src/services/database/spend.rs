//! `tenant_daily_spend` and `spend_reservations`: the daily spend ledger is
//! the kit's (`bitware_kit::jobs::D1Ledger`, on the tables the granulator's
//! migration 0003 made before the kit shipped them); a job's own budget is
//! read from `granulation_jobs`. Settlement statements join the batches that
//! end a job, a review or a re-validation.

use super::Database;
use bitware_kit::jobs::{D1Ledger, JobSchema};

pub use bitware_kit::jobs::{DaySpend, JobBound, Refused, Reservation};

/// The granulator's job and attempts tables (they predate the kit's and
/// carry every column of its `jobs` and `job_attempts`).
pub const SCHEMA: JobSchema = JobSchema {
    jobs: "granulation_jobs",
    attempts: "resource_consumption",
    first_stage: "generating",
    stopped_purpose: "granulate",
};

impl Database {
    /// The spend ledger on this database.
    pub fn ledger(&self) -> D1Ledger<'_> {
        D1Ledger::new(&self.db, SCHEMA)
    }
}
