//! Who pays for a paid request, and the two guards on it: the tier's rate
//! limit (a Workers Rate Limiting binding per tier, keyed by the tenant) and
//! the tier's daily spend cap (reserved atomically in D1 before the first
//! model call, settled to the real cost when the run ends). All of it is the
//! kit's (`bitware_kit::limits`, `bitware_kit::jobs::spend`); the ledger on
//! the granulator's D1 is `Database::ledger`.

use crate::services::database::Database;
use crate::services::database::{DaySpend, JobBound, Refused, Reservation};
use bitware_kit::error::AppResult;

pub use bitware_kit::jobs::spend::{reserve, reserve_for_job, SpendLedger};
pub use bitware_kit::limits::{check_rate_limit, Payer};

impl SpendLedger for Database {
    async fn reserve(
        &self,
        r: &Reservation,
        cap_usd: f64,
        expires_at_ms: u64,
        bound: Option<&JobBound>,
    ) -> AppResult<Result<(), Refused>> {
        self.ledger()
            .reserve(r, cap_usd, expires_at_ms, bound)
            .await
    }
    async fn settle_spend(&self, r: &Reservation, spent_usd: f64) -> AppResult<()> {
        self.ledger().settle_spend(r, spent_usd).await
    }
    async fn settle_job(
        &self,
        job_id: i64,
        tenant: &str,
        spent_usd: f64,
        today: &str,
    ) -> AppResult<()> {
        self.ledger()
            .settle_job(job_id, tenant, spent_usd, today)
            .await
    }
    async fn release_expired(&self, now_ms: u64) -> AppResult<usize> {
        self.ledger().release_expired(now_ms).await
    }
    async fn day_spend(&self, tenant: &str, day: &str) -> AppResult<DaySpend> {
        self.ledger().day_spend(tenant, day).await
    }
}
