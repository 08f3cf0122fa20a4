//! `tenant_daily_spend` and `spend_reservations`: a tenant's daily cap as a
//! ledger. A run reserves its budget first (atomically against the cap) and
//! settles to its real cost when it ends; the sweep releases what dead runs held.

use super::{changes, i, n, t, u, Database, NOW};
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
        let key = [t(&r.tenant), t(&r.day)];
        let statements = vec![
            self.stmt(
                "INSERT INTO tenant_daily_spend (tenant, day, tier) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant, day) DO UPDATE SET tier = excluded.tier",
                &[t(&r.tenant), t(&r.day), t(r.tier)],
            )?,
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = reserved_usd + ?3, updated_at = {NOW} \
                     WHERE tenant = ?1 AND day = ?2 AND reserved_usd + spent_usd + ?3 <= ?4 + 0.000000001"
                ),
                &[t(&r.tenant), t(&r.day), n(r.amount_usd), n(cap_usd)],
            )?,
            // Recorded only if the UPDATE just before it took the money.
            self.stmt(
                "INSERT INTO spend_reservations (id, tenant, day, amount_usd, expires_at) \
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE changes() = 1 RETURNING id",
                &[t(&r.id), t(&r.tenant), t(&r.day), n(r.amount_usd), u(expires_at_ms)],
            )?,
            self.stmt(
                "SELECT reserved_usd, spent_usd FROM tenant_daily_spend WHERE tenant = ?1 AND day = ?2",
                &key,
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
        let day = results
            .get(3)
            .map(|r| r.results::<DaySpend>())
            .transpose()
            .map_err(|e| AppError::database("reading a tenant's spend", e))?
            .and_then(|rows| rows.into_iter().next())
            .unwrap_or(DaySpend {
                reserved_usd: 0.0,
                spent_usd: 0.0,
            });
        Ok(Err(day))
    }

    /// Release a reservation and book what was really spent (the day of the
    /// reservation; if the sweep released it already, only the spend).
    fn settle_statements(
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
        let day = "coalesce((SELECT min(day) FROM spend_reservations WHERE job_id = ?1), ?3)";
        Ok(vec![
            self.stmt(
                &format!(
                    "INSERT INTO tenant_daily_spend (tenant, day) VALUES (?2, {day}) ON CONFLICT (tenant, day) DO NOTHING"
                ),
                &[i(job_id), t(tenant), t(today)],
            )?,
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     coalesce((SELECT sum(amount_usd) FROM spend_reservations WHERE job_id = ?1), 0)), \
                     spent_usd = spent_usd + ?4, updated_at = {NOW} WHERE tenant = ?2 AND day = {day}"
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
