//! `tenant_daily_spend` and `spend_reservations`: a tenant's daily cap as a
//! ledger. A run reserves its budget first (atomically against the cap) and
//! settles to its real cost when it ends; the sweep releases what dead runs held.

use super::{changes, i, n, oi, t, u, Database, NOW};
use bitware_kit::error::{AppError, AppResult};
use serde::Deserialize;
use worker::D1PreparedStatement;

/// Money set aside for one run against its tenant's daily cap.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub id: String,
    pub tenant: String,
    /// The UTC day (YYYY-MM-DD) the reservation and its spend count against.
    pub day: String,
    pub amount_usd: f64,
    /// The payer's tier, whose cap the day counts against (the alerts read it).
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
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct DaySpend {
    pub reserved_usd: f64,
    pub spent_usd: f64,
}

impl Database {
    /// Reserve `r.amount_usd` for `r.tenant` on `r.day` if that keeps its
    /// reserved + spent within `cap_usd`, atomically: one batch, so 32
    /// concurrent reservations can never overbook the cap. `Err` carries the
    /// day's figures when there is no room.
    pub async fn reserve_spend(
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

    /// Reserve `r.amount_usd` as `reserve_spend` does, and, for work on a
    /// job after its run (a review), also within the job's own budget: what
    /// the job spent, plus every open reservation linked to it, plus this one
    /// must fit `bound.limit_usd`. Both checks and the booking are one batch,
    /// so concurrent reviews of one job can never overrun its budget; the
    /// reservation is linked to the job (`job_id`) until it is settled.
    pub async fn reserve(
        &self,
        r: &Reservation,
        cap_usd: f64,
        expires_at_ms: u64,
        bound: Option<&JobBound>,
    ) -> AppResult<Result<(), Refused>> {
        let key = [t(&r.tenant), t(&r.day)];
        // Open reservations of the job, and what it spent, in the same statement.
        let job_fits = "AND (SELECT coalesce(cost_usd, 0) FROM granulation_jobs WHERE id = ?5) \
             + coalesce((SELECT sum(amount_usd) FROM spend_reservations WHERE job_id = ?5 AND expires_at >= ?7), 0) \
             + ?3 <= ?6 + 0.000000001";
        let mut update_binds = vec![t(&r.tenant), t(&r.day), n(r.amount_usd), n(cap_usd)];
        let (bound_sql, job_id, now) = match bound {
            Some(b) => {
                update_binds.extend([i(b.job_id), n(b.limit_usd), u(b.now_ms)]);
                (job_fits, oi(Some(b.job_id)), b.now_ms)
            }
            None => ("", oi(None), 0),
        };
        let statements = vec![
            self.stmt(
                "INSERT INTO tenant_daily_spend (tenant, day, tier) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant, day) DO UPDATE SET tier = excluded.tier",
                &[t(&r.tenant), t(&r.day), t(r.tier)],
            )?,
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = reserved_usd + ?3, updated_at = {NOW} \
                     WHERE tenant = ?1 AND day = ?2 AND reserved_usd + spent_usd + ?3 <= ?4 + 0.000000001 {bound_sql}"
                ),
                &update_binds,
            )?,
            // Recorded only if the UPDATE just before it took the money.
            self.stmt(
                "INSERT INTO spend_reservations (id, job_id, tenant, day, amount_usd, expires_at) \
                 SELECT ?1, ?6, ?2, ?3, ?4, ?5 WHERE changes() = 1 RETURNING id",
                &[
                    t(&r.id),
                    t(&r.tenant),
                    t(&r.day),
                    n(r.amount_usd),
                    u(expires_at_ms),
                    job_id.clone(),
                ],
            )?,
            self.stmt(
                "SELECT reserved_usd, spent_usd FROM tenant_daily_spend WHERE tenant = ?1 AND day = ?2",
                &key,
            )?,
            self.stmt(
                "SELECT coalesce(cost_usd, 0) AS spent_usd, \
                 coalesce((SELECT sum(amount_usd) FROM spend_reservations WHERE job_id = ?1 AND expires_at >= ?2), 0) AS reserved_usd \
                 FROM granulation_jobs WHERE id = ?1",
                &[job_id, u(now)],
            )?,
        ];
        let results = self.batch("reserving spend", statements).await?;
        #[derive(Deserialize)]
        struct Id {
            #[allow(dead_code)]
            id: String,
        }
        let reserved = results
            .get(2)
            .map(|r| r.results::<Id>().map(|rows| !rows.is_empty()))
            .transpose()
            .map_err(|e| AppError::database("reserving spend", e))?
            .unwrap_or(false);
        if reserved {
            return Ok(Ok(()));
        }
        let figures = |index: usize, what: &str| -> AppResult<DaySpend> {
            Ok(results
                .get(index)
                .map(|r| r.results::<DaySpend>())
                .transpose()
                .map_err(|e| AppError::database(what, e))?
                .and_then(|rows| rows.into_iter().next())
                .unwrap_or(DaySpend {
                    reserved_usd: 0.0,
                    spent_usd: 0.0,
                }))
        };
        let day = figures(3, "reading a tenant's spend")?;
        let fits_day = day.reserved_usd + day.spent_usd + r.amount_usd <= cap_usd + 0.000_000_001;
        match bound {
            Some(b) if fits_day => {
                let job = figures(4, "reading a job's spend")?;
                Ok(Err(Refused::JobBudget {
                    limit_usd: b.limit_usd,
                    spent_usd: job.spent_usd,
                    reserved_usd: job.reserved_usd,
                }))
            }
            _ => Ok(Err(Refused::DayCap(day))),
        }
    }

    /// Release a reservation and book what was really spent (the day of the
    /// reservation; if the sweep released it already, only the spend).
    pub(super) fn settle_statements(
        &self,
        r: &Reservation,
        spent_usd: f64,
    ) -> AppResult<Vec<D1PreparedStatement>> {
        Ok(vec![
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     coalesce((SELECT amount_usd FROM spend_reservations WHERE id = ?1), 0)), \
                     spent_usd = spent_usd + ?4, updated_at = {NOW} WHERE tenant = ?2 AND day = ?3"
                ),
                &[t(&r.id), t(&r.tenant), t(&r.day), n(spent_usd.max(0.0))],
            )?,
            self.stmt("DELETE FROM spend_reservations WHERE id = ?1", &[t(&r.id)])?,
        ])
    }

    /// Settle a job's reservations and book what its run spent, against the
    /// day of the reservation (today when the sweep released it already).
    pub(super) fn settle_job_statements(
        &self,
        job_id: i64,
        tenant: &str,
        spent_usd: f64,
        today: &str,
    ) -> AppResult<Vec<D1PreparedStatement>> {
        // The payer the reservation was made for (a worker acting for nobody
        // pays as the shared credential, not as its job's tenant), else the job's.
        let day = "coalesce((SELECT min(day) FROM spend_reservations WHERE job_id = ?1), ?3)";
        let payer = "coalesce((SELECT min(tenant) FROM spend_reservations WHERE job_id = ?1), ?2)";
        Ok(vec![
            self.stmt(
                &format!(
                    "INSERT INTO tenant_daily_spend (tenant, day) VALUES ({payer}, {day}) ON CONFLICT (tenant, day) DO NOTHING"
                ),
                &[i(job_id), t(tenant), t(today)],
            )?,
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     coalesce((SELECT sum(amount_usd) FROM spend_reservations WHERE job_id = ?1), 0)), \
                     spent_usd = spent_usd + ?4, updated_at = {NOW} WHERE tenant = {payer} AND day = {day}"
                ),
                &[i(job_id), t(tenant), t(today), n(spent_usd.max(0.0))],
            )?,
            self.stmt(
                "DELETE FROM spend_reservations WHERE job_id = ?1",
                &[i(job_id)],
            )?,
        ])
    }

    pub async fn settle_spend(&self, r: &Reservation, spent_usd: f64) -> AppResult<()> {
        let statements = self.settle_statements(r, spent_usd)?;
        self.batch("settling spend", statements).await.map(|_| ())
    }

    /// Reservations of runs that died before settling are released once past
    /// their expiry (the run's deadline plus grace).
    pub async fn release_expired_reservations(&self, now_ms: u64) -> AppResult<usize> {
        let statements = vec![
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     (SELECT coalesce(sum(r.amount_usd), 0) FROM spend_reservations r \
                      WHERE r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day AND r.expires_at < ?1)), \
                     updated_at = {NOW} WHERE EXISTS (SELECT 1 FROM spend_reservations r \
                      WHERE r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day AND r.expires_at < ?1)"
                ),
                &[u(now_ms)],
            )?,
            self.stmt(
                "DELETE FROM spend_reservations WHERE expires_at < ?1",
                &[u(now_ms)],
            )?,
        ];
        let results = self
            .batch("releasing expired reservations", statements)
            .await?;
        Ok(changes(results.get(1)))
    }

    /// A tenant's spend on one day (the spend-cap 429 and the tests read it).
    pub async fn day_spend(&self, tenant: &str, day: &str) -> AppResult<DaySpend> {
        let stmt = self.stmt(
            "SELECT reserved_usd, spent_usd FROM tenant_daily_spend WHERE tenant = ?1 AND day = ?2",
            &[t(tenant), t(day)],
        )?;
        Ok(self
            .first::<DaySpend>("reading a tenant's spend", stmt)
            .await?
            .unwrap_or(DaySpend {
                reserved_usd: 0.0,
                spent_usd: 0.0,
            }))
    }
}
