//! Who pays for a paid request, and the two guards on it: the tier's rate
//! limit (a Workers Rate Limiting binding per tier, keyed by the tenant; the
//! kit's) and the tier's daily spend cap (reserved atomically in D1 before
//! the first model call, settled to the real cost when the run ends).

use crate::services::database::{Database, DaySpend, JobBound, Refused, Reservation};
use crate::services::timing::day_of;
use crate::types::limits::{seconds_until_utc_midnight, Limits};
use bitware_kit::error::{AppError, AppResult, Kind};
use serde_json::json;

/// Who pays, and the tier's rate limit, are the kit's (`bitware_kit::limits`).
pub use bitware_kit::limits::{check_rate_limit, Payer};

/// The daily spend ledger: reservations against a tenant's cap, settled to
/// what was really spent (D1's `tenant_daily_spend`; an in-memory twin in tests).
#[allow(async_fn_in_trait)] // used through generics only, on one thread
pub trait SpendLedger {
    /// Reserve `r.amount_usd` unless the tenant's day would pass `cap_usd`
    /// (then what the day holds).
    async fn reserve_spend(
        &self,
        r: &Reservation,
        cap_usd: f64,
        expires_at_ms: u64,
    ) -> AppResult<Result<(), DaySpend>>;
    /// Turn a reservation into what was really spent.
    async fn settle_spend(&self, r: &Reservation, spent_usd: f64) -> AppResult<()>;
}

impl SpendLedger for Database {
    async fn reserve_spend(
        &self,
        r: &Reservation,
        cap_usd: f64,
        expires_at_ms: u64,
    ) -> AppResult<Result<(), DaySpend>> {
        Database::reserve_spend(self, r, cap_usd, expires_at_ms).await
    }
    async fn settle_spend(&self, r: &Reservation, spent_usd: f64) -> AppResult<()> {
        Database::settle_spend(self, r, spent_usd).await
    }
}

/// Set `amount_usd` aside against the payer's daily cap until `expires_at_ms`
/// (after which an unsettled reservation is released by the sweep).
pub async fn reserve(
    limits: &Limits,
    ledger: &impl SpendLedger,
    payer: &Payer,
    amount_usd: f64,
    expires_at_ms: u64,
    now_ms: u64,
) -> AppResult<Reservation> {
    let reservation = Reservation {
        id: uuid::Uuid::new_v4().to_string(),
        tenant: payer.tenant.clone(),
        day: day_of(now_ms),
        amount_usd,
        tier: payer.tier.as_str(),
    };
    let cap = limits.daily_cap(payer.tier);
    match ledger
        .reserve_spend(&reservation, cap, expires_at_ms)
        .await?
    {
        Ok(()) => Ok(reservation),
        Err(day) => Err(cap_exceeded(payer, cap, &day, &reservation, now_ms)),
    }
}

/// Set `amount_usd` aside for work on a job after its run (a review):
/// against the payer's daily cap and, in the same atomic step, within the
/// job's own budget (what it spent plus the reservations of other reviews
/// in flight). Refused: 429 `spend_cap_exceeded` or 422 `budget_exceeded`.
pub async fn reserve_for_job(
    limits: &Limits,
    db: &Database,
    payer: &Payer,
    amount_usd: f64,
    expires_at_ms: u64,
    bound: &JobBound,
) -> AppResult<Reservation> {
    let reservation = Reservation {
        id: uuid::Uuid::new_v4().to_string(),
        tenant: payer.tenant.clone(),
        day: day_of(bound.now_ms),
        amount_usd,
        tier: payer.tier.as_str(),
    };
    let cap = limits.daily_cap(payer.tier);
    match db
        .reserve(&reservation, cap, expires_at_ms, Some(bound))
        .await?
    {
        Ok(()) => Ok(reservation),
        Err(Refused::DayCap(day)) => Err(cap_exceeded(payer, cap, &day, &reservation, bound.now_ms)),
        Err(Refused::JobBudget {
            limit_usd,
            spent_usd,
            reserved_usd,
        }) => Err(AppError::new(
            Kind::Unprocessable,
            "budget_exceeded",
            format!(
                "the job's budget of ${limit_usd} does not allow another review: ${spent_usd:.6} spent and ${reserved_usd:.6} held by reviews in flight, and this one may cost up to ${amount_usd:.6}"
            ),
        )
        .with_details(json!({
            "jobId": bound.job_id,
            "budgetUsd": limit_usd,
            "spentUsd": spent_usd,
            "reservedUsd": reserved_usd,
            "requestedUsd": amount_usd,
        }))),
    }
}

/// The 429 of a full daily cap, with the day's figures.
fn cap_exceeded(
    payer: &Payer,
    cap: f64,
    day: &DaySpend,
    reservation: &Reservation,
    now_ms: u64,
) -> AppError {
    let amount_usd = reservation.amount_usd;
    let retry_after = seconds_until_utc_midnight(now_ms);
    AppError::new(
        Kind::TooManyRequests,
        "spend_cap_exceeded",
        format!(
            "the {} tier's daily spend cap of ${cap} would be passed: ${:.6} spent and ${:.6} reserved today, and this job may cost up to ${amount_usd:.6}; the cap resets at 00:00 UTC",
            payer.tier.as_str(),
            day.spent_usd,
            day.reserved_usd
        ),
    )
    .with_details(json!({
        "tier": payer.tier,
        "capUsd": cap,
        "spentUsd": day.spent_usd,
        "reservedUsd": day.reserved_usd,
        "requestedUsd": amount_usd,
        "day": reservation.day,
        "resetsAt": format!("{}T00:00:00Z", next_day(&reservation.day)),
        "retryAfterSeconds": retry_after,
    }))
}

/// `YYYY-MM-DD` of the day after `day`.
fn next_day(day: &str) -> String {
    crate::services::timing::next_day(day).unwrap_or_else(|| day.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_day_crosses_months_and_years() {
        assert_eq!(next_day("2026-11-25"), "2026-11-26");
        assert_eq!(next_day("2026-11-30"), "2026-12-01");
        assert_eq!(next_day("2026-12-31"), "2027-01-01");
    }
}
