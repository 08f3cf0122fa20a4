//! The spend ledger on D1: `tenant_daily_spend` (a tenant's day: reserved
//! and spent) and `spend_reservations` (open reservations, linked to the
//! job they pay for), shipped by the kit's migrations. Settlement is also
//! offered as statements, so a worker ends a job and settles its spend in
//! one batch.

use super::spend::{DaySpend, JobBound, Refused, Reservation, SpendLedger};
use super::store::JobSchema;
use crate::d1::bind::{i, n, oi, t, u};
use crate::d1::{changes, D1, NOW};
use crate::error::{AppError, AppResult};
use serde::Deserialize;
use worker::D1PreparedStatement;

/// [`SpendLedger`] on a worker's D1; the job bound reads `cost_usd` of
/// the worker's job table (`schema.jobs`).
pub struct D1Ledger<'a> {
    pub db: &'a D1,
    pub schema: JobSchema,
}

impl<'a> D1Ledger<'a> {
    pub fn new(db: &'a D1, schema: JobSchema) -> D1Ledger<'a> {
        D1Ledger { db, schema }
    }

    /// Release a reservation and book what was really spent (the day of the
    /// reservation; if the sweep released it already, only the spend).
    pub fn settle_statements(
        &self,
        r: &Reservation,
        spent_usd: f64,
    ) -> AppResult<Vec<D1PreparedStatement>> {
        Ok(vec![
            self.db.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     coalesce((SELECT amount_usd FROM spend_reservations WHERE id = ?1), 0)), \
                     spent_usd = spent_usd + ?4, updated_at = {NOW} WHERE tenant = ?2 AND day = ?3"
                ),
                &[t(&r.id), t(&r.tenant), t(&r.day), n(spent_usd.max(0.0))],
            )?,
            self.db
                .stmt("DELETE FROM spend_reservations WHERE id = ?1", &[t(&r.id)])?,
        ])
    }

    /// Settle a job's reservations and book what its run spent, against the
    /// payer and day of its reservations (`tenant` on `today` when the sweep
    /// released them already).
    pub fn settle_job_statements(
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
            self.db.stmt(
                &format!(
                    "INSERT INTO tenant_daily_spend (tenant, day) VALUES ({payer}, {day}) ON CONFLICT (tenant, day) DO NOTHING"
                ),
                &[i(job_id), t(tenant), t(today)],
            )?,
            self.db.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     coalesce((SELECT sum(amount_usd) FROM spend_reservations WHERE job_id = ?1), 0)), \
                     spent_usd = spent_usd + ?4, updated_at = {NOW} WHERE tenant = {payer} AND day = {day}"
                ),
                &[i(job_id), t(tenant), t(today), n(spent_usd.max(0.0))],
            )?,
            self.db.stmt(
                "DELETE FROM spend_reservations WHERE job_id = ?1",
                &[i(job_id)],
            )?,
        ])
    }
}

impl SpendLedger for D1Ledger<'_> {
    async fn reserve(
        &self,
        r: &Reservation,
        cap_usd: f64,
        expires_at_ms: u64,
        bound: Option<&JobBound>,
    ) -> AppResult<Result<(), Refused>> {
        let jobs = self.schema.jobs;
        let key = [t(&r.tenant), t(&r.day)];
        // Open reservations of the job, and what it spent, in the same statement.
        let job_fits = format!(
            "AND (SELECT coalesce(cost_usd, 0) FROM {jobs} WHERE id = ?5) \
             + coalesce((SELECT sum(amount_usd) FROM spend_reservations WHERE job_id = ?5 AND expires_at >= ?7), 0) \
             + ?3 <= ?6 + 0.000000001"
        );
        let mut update_binds = vec![t(&r.tenant), t(&r.day), n(r.amount_usd), n(cap_usd)];
        let (bound_sql, job_id, now) = match bound {
            Some(b) => {
                update_binds.extend([i(b.job_id), n(b.limit_usd), u(b.now_ms)]);
                (job_fits.as_str(), oi(Some(b.job_id)), b.now_ms)
            }
            None => ("", oi(None), 0),
        };
        let db = self.db;
        let statements = vec![
            db.stmt(
                "INSERT INTO tenant_daily_spend (tenant, day, tier) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant, day) DO UPDATE SET tier = excluded.tier",
                &[t(&r.tenant), t(&r.day), t(r.tier)],
            )?,
            db.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = reserved_usd + ?3, updated_at = {NOW} \
                     WHERE tenant = ?1 AND day = ?2 AND reserved_usd + spent_usd + ?3 <= ?4 + 0.000000001 {bound_sql}"
                ),
                &update_binds,
            )?,
            // Recorded only if the UPDATE just before it took the money.
            db.stmt(
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
            db.stmt(
                "SELECT reserved_usd, spent_usd FROM tenant_daily_spend WHERE tenant = ?1 AND day = ?2",
                &key,
            )?,
            db.stmt(
                &format!(
                    "SELECT coalesce(cost_usd, 0) AS spent_usd, \
                     coalesce((SELECT sum(amount_usd) FROM spend_reservations WHERE job_id = ?1 AND expires_at >= ?2), 0) AS reserved_usd \
                     FROM {jobs} WHERE id = ?1"
                ),
                &[job_id, u(now)],
            )?,
        ];
        let results = db.batch("reserving spend", statements).await?;
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
                .unwrap_or_default())
        };
        let day = figures(3, "reading a tenant's spend")?;
        let fits_day = day.reserved_usd + day.spent_usd + r.amount_usd
            <= cap_usd + super::spend::CAP_TOLERANCE_USD;
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

    async fn settle_spend(&self, r: &Reservation, spent_usd: f64) -> AppResult<()> {
        let statements = self.settle_statements(r, spent_usd)?;
        self.db
            .batch("settling spend", statements)
            .await
            .map(|_| ())
    }

    async fn settle_job(
        &self,
        job_id: i64,
        tenant: &str,
        spent_usd: f64,
        today: &str,
    ) -> AppResult<()> {
        let statements = self.settle_job_statements(job_id, tenant, spent_usd, today)?;
        self.db
            .batch("settling a job's spend", statements)
            .await
            .map(|_| ())
    }

    async fn release_expired(&self, now_ms: u64) -> AppResult<usize> {
        let statements = vec![
            self.db.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     (SELECT coalesce(sum(r.amount_usd), 0) FROM spend_reservations r \
                      WHERE r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day AND r.expires_at < ?1)), \
                     updated_at = {NOW} WHERE EXISTS (SELECT 1 FROM spend_reservations r \
                      WHERE r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day AND r.expires_at < ?1)"
                ),
                &[u(now_ms)],
            )?,
            self.db.stmt(
                "DELETE FROM spend_reservations WHERE expires_at < ?1",
                &[u(now_ms)],
            )?,
        ];
        let results = self
            .db
            .batch("releasing expired reservations", statements)
            .await?;
        Ok(changes(results.get(1)))
    }

    async fn day_spend(&self, tenant: &str, day: &str) -> AppResult<DaySpend> {
        let stmt = self.db.stmt(
            "SELECT reserved_usd, spent_usd FROM tenant_daily_spend WHERE tenant = ?1 AND day = ?2",
            &[t(tenant), t(day)],
        )?;
        Ok(self
            .db
            .first::<DaySpend>("reading a tenant's spend", stmt)
            .await?
            .unwrap_or_default())
    }
}
