//! The daily spend ledger: a tenant's daily cap as reservations and spend.
//! A run reserves its worst case first (atomically against the cap, and,
//! for work on a job after its run, within the job's own budget), settles
//! to what it really spent when it ends; the sweep releases what dead runs
//! held once their reservations expire.

use crate::error::{AppError, AppResult, Kind};
use crate::limits::{seconds_until_utc_midnight, Limits, Payer};
use crate::timing::{day_of, next_day};
use serde::Deserialize;
use serde_json::json;

/// Money set aside for one run against its tenant's daily cap.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub id: String,
    pub tenant: String,
    /// The UTC day (YYYY-MM-DD) the reservation and its spend count against.
    pub day: String,
    pub amount_usd: f64,
    /// The payer's tier, whose cap the day counts against (alerts read it).
    pub tier: &'static str,
}

/// The job a reservation is also bounded by: its budget, and now (open
/// reservations of the job count until they expire).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobBound {
    pub job_id: i64,
    pub limit_usd: f64,
    pub now_ms: u64,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refused {
    /// The tenant's daily cap, with the day's figures.
    DayCap(DaySpend),
    /// The job's own budget: what it spent and what open reservations hold.
    JobBudget {
        limit_usd: f64,
        spent_usd: f64,
        reserved_usd: f64,
    },
}

/// A tenant's day so far, as the ledger holds it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
pub struct DaySpend {
    pub reserved_usd: f64,
    pub spent_usd: f64,
}

/// How far past a cap rounding may go (a sum of prices is not exact).
pub const CAP_TOLERANCE_USD: f64 = 0.000_000_001;

/// The ledger a worker's jobs pay through: D1's `tenant_daily_spend` and
/// `spend_reservations` ([`super::D1Ledger`]), or its in-memory twin
/// (`MemoryLedger`, feature `twins`). The contract suite
/// (`jobs::contract`) holds both to the same rules.
#[allow(async_fn_in_trait)] // used through generics only, on one thread
pub trait SpendLedger {
    /// Reserve `r.amount_usd` for `r.tenant` on `r.day` if its reserved +
    /// spent stays within `cap_usd`, and, with `bound`, if what the job
    /// spent plus its open reservations plus this one stays within the
    /// job's limit; the reservation is then linked to the job. Checks and
    /// booking are one atomic step: concurrent reservations never overbook.
    async fn reserve(
        &self,
        r: &Reservation,
        cap_usd: f64,
        expires_at_ms: u64,
        bound: Option<&JobBound>,
    ) -> AppResult<Result<(), Refused>>;

    /// [`SpendLedger::reserve`] without a job bound: refused only by the day.
    async fn reserve_spend(
        &self,
        r: &Reservation,
        cap_usd: f64,
        expires_at_ms: u64,
    ) -> AppResult<Result<(), DaySpend>> {
        match self.reserve(r, cap_usd, expires_at_ms, None).await? {
            Ok(()) => Ok(Ok(())),
            Err(Refused::DayCap(day)) => Ok(Err(day)),
            Err(Refused::JobBudget { .. }) => Err(AppError::internal(
                "a reservation without a job bound was refused by one",
            )),
        }
    }

    /// Release a reservation and book what was really spent on its day (if
    /// the sweep released it already, only the spend is booked).
    async fn settle_spend(&self, r: &Reservation, spent_usd: f64) -> AppResult<()>;

    /// Release every reservation linked to `job_id` and book `spent_usd`
    /// once, for the payer and day of its reservations (else `tenant` on
    /// `today`: the sweep released them already).
    async fn settle_job(
        &self,
        job_id: i64,
        tenant: &str,
        spent_usd: f64,
        today: &str,
    ) -> AppResult<()>;

    /// Release reservations past their expiry (their run died before
    /// settling): how many.
    async fn release_expired(&self, now_ms: u64) -> AppResult<usize>;

    /// A tenant's figures for one day (zero when it has none).
    async fn day_spend(&self, tenant: &str, day: &str) -> AppResult<DaySpend>;
}

/// Set `amount_usd` aside against the payer's daily cap until
/// `expires_at_ms` (after which an unsettled reservation is released by the
/// sweep). Refused: 429 `spend_cap_exceeded` with the day's figures.
pub async fn reserve(
    limits: &Limits,
    ledger: &impl SpendLedger,
    payer: &Payer,
    amount_usd: f64,
    expires_at_ms: u64,
    now_ms: u64,
) -> AppResult<Reservation> {
    let reservation = new_reservation(payer, amount_usd, now_ms);
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
/// job's own budget (what it spent plus the reservations of other work in
/// flight). Refused: 429 `spend_cap_exceeded` or 422 `budget_exceeded`.
pub async fn reserve_for_job(
    limits: &Limits,
    ledger: &impl SpendLedger,
    payer: &Payer,
    amount_usd: f64,
    expires_at_ms: u64,
    bound: &JobBound,
) -> AppResult<Reservation> {
    let reservation = new_reservation(payer, amount_usd, bound.now_ms);
    let cap = limits.daily_cap(payer.tier);
    match ledger
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

fn new_reservation(payer: &Payer, amount_usd: f64, now_ms: u64) -> Reservation {
    Reservation {
        id: uuid::Uuid::new_v4().to_string(),
        tenant: payer.tenant.clone(),
        day: day_of(now_ms),
        amount_usd,
        tier: payer.tier.as_str(),
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
    let next = next_day(&reservation.day).unwrap_or_else(|| reservation.day.clone());
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
        "resetsAt": format!("{next}T00:00:00Z"),
        "retryAfterSeconds": retry_after,
    }))
}
