//! In-memory twins of the lifecycle's ports (feature `twins`), held to D1's
//! rules by the contract suite (`jobs::contract`): the same cases run on
//! these natively and on the D1 implementation under `wrangler dev`.

use super::contract::LedgerFixture;
use super::spend::{DaySpend, JobBound, Refused, Reservation, SpendLedger, CAP_TOLERANCE_USD};
use crate::error::{AppError, AppResult};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// One open reservation: what it holds, the job it pays for, its expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub reservation: Reservation,
    pub job_id: Option<i64>,
    pub expires_at_ms: u64,
}

/// The spend ledger in memory, as [`super::D1Ledger`] keeps it on D1.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    /// (tenant, day) → the day's figures.
    pub days: RefCell<HashMap<(String, String), DaySpend>>,
    /// Open reservations (`spend_reservations`).
    pub reservations: RefCell<Vec<Held>>,
    /// What each job spent (`cost_usd` of the job table), for job bounds.
    pub job_costs: RefCell<HashMap<i64, f64>>,
    /// Set to make every call fail (a D1 outage).
    pub broken: Cell<bool>,
    next_job: Cell<i64>,
}

impl MemoryLedger {
    /// A tenant's figures summed over its days (tests of one day read this).
    pub fn day(&self, tenant: &str) -> (f64, f64) {
        self.days
            .borrow()
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .fold((0.0, 0.0), |(r, s), (_, d)| {
                (r + d.reserved_usd, s + d.spent_usd)
            })
    }

    fn check(&self) -> AppResult<()> {
        if self.broken.get() {
            return Err(AppError::database("writing", "D1 is down (test)"));
        }
        Ok(())
    }

    /// Link a reservation to the job it pays for (a claim does, in D1 in the
    /// claim's batch).
    pub fn link(&self, reservation_id: &str, job_id: i64) {
        if let Some(held) = self
            .reservations
            .borrow_mut()
            .iter_mut()
            .find(|h| h.reservation.id == reservation_id)
        {
            held.job_id = Some(job_id);
        }
    }

    /// Record what a job spent (the job table's `cost_usd`).
    pub fn set_job_cost(&self, job_id: i64, cost_usd: f64) {
        self.job_costs.borrow_mut().insert(job_id, cost_usd);
    }

    /// Book `spent_usd` for a job whose run stopped, on the payer and day
    /// of its reservations (else `tenant` on `today`), leaving them open
    /// for the run that follows (D1's `book_stopped_run` without release).
    pub fn book(&self, job_id: i64, tenant: &str, spent_usd: f64, today: &str) {
        let reservations = self.reservations.borrow();
        let of_job = || reservations.iter().filter(|h| h.job_id == Some(job_id));
        let payer = of_job()
            .map(|h| h.reservation.tenant.clone())
            .min()
            .unwrap_or_else(|| tenant.to_string());
        let day = of_job()
            .map(|h| h.reservation.day.clone())
            .min()
            .unwrap_or_else(|| today.to_string());
        let mut days = self.days.borrow_mut();
        days.entry((payer, day)).or_default().spent_usd += spent_usd.max(0.0);
    }

    /// Release a job's reservations, each from its own day, booking
    /// nothing (a run that never reached a model, a job cancelled queued).
    pub fn release_job(&self, job_id: i64) {
        let mut days = self.days.borrow_mut();
        self.reservations.borrow_mut().retain(|h| {
            if h.job_id != Some(job_id) {
                return true;
            }
            let key = (h.reservation.tenant.clone(), h.reservation.day.clone());
            if let Some(day) = days.get_mut(&key) {
                day.reserved_usd = (day.reserved_usd - h.reservation.amount_usd).max(0.0);
            }
            false
        });
    }

    /// `settle_job` without the outage check: what an ending batch does.
    pub fn settle_job_now(&self, job_id: i64, tenant: &str, spent_usd: f64, today: &str) {
        let mut reservations = self.reservations.borrow_mut();
        let of_job: Vec<&Held> = reservations
            .iter()
            .filter(|h| h.job_id == Some(job_id))
            .collect();
        // D1: the smallest payer and day among the job's reservations, else
        // the job's tenant today; every reservation of the job comes off that row.
        let payer = of_job
            .iter()
            .map(|h| h.reservation.tenant.clone())
            .min()
            .unwrap_or_else(|| tenant.to_string());
        let day = of_job
            .iter()
            .map(|h| h.reservation.day.clone())
            .min()
            .unwrap_or_else(|| today.to_string());
        let held: f64 = of_job.iter().map(|h| h.reservation.amount_usd).sum();
        let mut days = self.days.borrow_mut();
        let figures = days.entry((payer, day)).or_default();
        figures.reserved_usd = (figures.reserved_usd - held).max(0.0);
        figures.spent_usd += spent_usd.max(0.0);
        reservations.retain(|h| h.job_id != Some(job_id));
    }
}

impl SpendLedger for MemoryLedger {
    async fn reserve(
        &self,
        r: &Reservation,
        cap_usd: f64,
        expires_at_ms: u64,
        bound: Option<&JobBound>,
    ) -> AppResult<Result<(), Refused>> {
        self.check()?;
        let mut days = self.days.borrow_mut();
        let day = days.entry((r.tenant.clone(), r.day.clone())).or_default();
        if day.reserved_usd + day.spent_usd + r.amount_usd > cap_usd + CAP_TOLERANCE_USD {
            return Ok(Err(Refused::DayCap(*day)));
        }
        if let Some(b) = bound {
            // A job the table does not hold fits nothing (D1's NULL sum).
            let spent = self.job_costs.borrow().get(&b.job_id).copied();
            let held: f64 = self
                .reservations
                .borrow()
                .iter()
                .filter(|h| h.job_id == Some(b.job_id) && h.expires_at_ms >= b.now_ms)
                .map(|h| h.reservation.amount_usd)
                .sum();
            let fits =
                spent.is_some_and(|s| s + held + r.amount_usd <= b.limit_usd + CAP_TOLERANCE_USD);
            if !fits {
                return Ok(Err(Refused::JobBudget {
                    limit_usd: b.limit_usd,
                    spent_usd: spent.unwrap_or(0.0),
                    reserved_usd: if spent.is_some() { held } else { 0.0 },
                }));
            }
        }
        day.reserved_usd += r.amount_usd;
        self.reservations.borrow_mut().push(Held {
            reservation: r.clone(),
            job_id: bound.map(|b| b.job_id),
            expires_at_ms,
        });
        Ok(Ok(()))
    }

    async fn settle_spend(&self, r: &Reservation, spent_usd: f64) -> AppResult<()> {
        self.check()?;
        let mut reservations = self.reservations.borrow_mut();
        let held = reservations
            .iter()
            .position(|h| h.reservation.id == r.id)
            .map(|i| reservations.remove(i).reservation.amount_usd)
            .unwrap_or(0.0);
        if let Some(day) = self
            .days
            .borrow_mut()
            .get_mut(&(r.tenant.clone(), r.day.clone()))
        {
            day.reserved_usd = (day.reserved_usd - held).max(0.0);
            day.spent_usd += spent_usd.max(0.0);
        }
        Ok(())
    }

    async fn settle_job(
        &self,
        job_id: i64,
        tenant: &str,
        spent_usd: f64,
        today: &str,
    ) -> AppResult<()> {
        self.check()?;
        self.settle_job_now(job_id, tenant, spent_usd, today);
        Ok(())
    }

    async fn release_expired(&self, now_ms: u64) -> AppResult<usize> {
        self.check()?;
        let mut reservations = self.reservations.borrow_mut();
        let mut days = self.days.borrow_mut();
        let before = reservations.len();
        reservations.retain(|h| {
            if h.expires_at_ms >= now_ms {
                return true;
            }
            let key = (h.reservation.tenant.clone(), h.reservation.day.clone());
            if let Some(day) = days.get_mut(&key) {
                day.reserved_usd = (day.reserved_usd - h.reservation.amount_usd).max(0.0);
            }
            false
        });
        Ok(before - reservations.len())
    }

    async fn day_spend(&self, tenant: &str, day: &str) -> AppResult<DaySpend> {
        self.check()?;
        Ok(self
            .days
            .borrow()
            .get(&(tenant.to_string(), day.to_string()))
            .copied()
            .unwrap_or_default())
    }
}

impl LedgerFixture for MemoryLedger {
    async fn job_costing(&self, _tenant: &str, cost_usd: f64) -> AppResult<i64> {
        let id = self.next_job.get() + 1;
        self.next_job.set(id);
        self.set_job_cost(id, cost_usd);
        Ok(id)
    }
}
