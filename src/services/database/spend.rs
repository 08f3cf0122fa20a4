//! `tenant_daily_spend` and `spend_reservations`: the daily spend ledger is
//! the kit's (`bitware_kit::jobs::D1Ledger`, on the tables the granulator's
//! migration 0003 made before the kit shipped them); a job's own budget is
//! read from `granulation_jobs`. Settlement statements join the batches that
//! end a job, a review or a re-validation.

use super::Database;
use bitware_kit::error::AppResult;
use bitware_kit::jobs::{D1Ledger, Tables};
use worker::D1PreparedStatement;

pub use bitware_kit::jobs::{DaySpend, JobBound, Refused, Reservation};

/// The granulator's job table, which carries every column of the kit's `jobs`.
pub const TABLES: Tables = Tables {
    jobs: "granulation_jobs",
};

impl Database {
    /// The spend ledger on this database.
    pub fn ledger(&self) -> D1Ledger<'_> {
        D1Ledger::new(&self.db, TABLES)
    }

    pub(super) fn settle_statements(
        &self,
        r: &Reservation,
        spent_usd: f64,
    ) -> AppResult<Vec<D1PreparedStatement>> {
        self.ledger().settle_statements(r, spent_usd)
    }

    pub(super) fn settle_job_statements(
        &self,
        job_id: i64,
        tenant: &str,
        spent_usd: f64,
        today: &str,
    ) -> AppResult<Vec<D1PreparedStatement>> {
        self.ledger()
            .settle_job_statements(job_id, tenant, spent_usd, today)
    }
}
