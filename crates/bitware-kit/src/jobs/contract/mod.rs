//! The contract suite of the lifecycle's ports (feature `twins`): one set of
//! cases, run natively on the in-memory twins (`cargo test -p bitware-kit`)
//! and end to end on the D1 implementation under `wrangler dev` (the kit's
//! contract worker, `dev/contract/`, answers `POST /run` with every case's
//! outcome; `tests/contract_d1.rs` asks it). A twin that drifts from D1
//! fails one side or the other.
//!
//! Cases return `Err` with what differed instead of panicking (they also
//! run inside a worker); each uses tenants and jobs of its own, named from
//! `run` (unique per run), so cases never see each other's rows.
//!
//! - [`spend_ledger`]: the daily spend ledger (`ledger.rs`);
//! - [`job_store`]: the job store with the spend it settles (`store.rs`).

use super::spend::{DaySpend, Reservation};
use crate::error::AppResult;

/// Names and runs the cases, in order, each on its own tenant.
macro_rules! cases {
    ($ledger:expr, $fixture:expr, $run:expr; $($case:ident),+ $(,)?) => {{
        let mut outcomes = Vec::new();
        $(
            let tenant = format!("{}-{}", $run, stringify!($case));
            let failure = $case($ledger, $fixture, &tenant).await.err();
            outcomes.push(Outcome { case: stringify!($case).to_string(), failure });
        )+
        outcomes
    }};
}

mod ledger;
mod store;

pub use ledger::spend_ledger;
pub use store::job_store;

/// What the suite needs to set up beside the ports: a job that spent a
/// given amount (a row of the worker's job table).
#[allow(async_fn_in_trait)]
pub trait LedgerFixture {
    async fn job_costing(&self, tenant: &str, cost_usd: f64) -> AppResult<i64>;
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub case: String,
    /// `None` when it held; else what differed.
    pub failure: Option<String>,
}

pub(crate) type Check = Result<(), String>;

pub(crate) fn expect(holds: bool, what: impl FnOnce() -> String) -> Check {
    if holds {
        Ok(())
    } else {
        Err(what())
    }
}

pub(crate) fn same(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

pub(crate) fn figures(d: DaySpend, reserved: f64, spent: f64, when: &str) -> Check {
    expect(
        same(d.reserved_usd, reserved) && same(d.spent_usd, spent),
        || format!("{when}: the day holds {d:?}, expected reserved {reserved} and spent {spent}"),
    )
}

pub(crate) fn failed<T: std::fmt::Debug>(what: &str, e: T) -> String {
    format!("{what}: {e:?}")
}

pub(crate) const DAY: &str = "2026-01-02";
pub(crate) const OTHER_DAY: &str = "2026-01-03";
pub(crate) const TIER: &str = "standard";

/// Reserve `r` within `cap_usd` until `expires_at_ms`; refused is a failure.
pub(crate) async fn held(
    l: &impl crate::jobs::spend::SpendLedger,
    r: &Reservation,
    cap_usd: f64,
    expires_at_ms: u64,
) -> Check {
    l.reserve_spend(r, cap_usd, expires_at_ms)
        .await
        .map_err(|e| failed("reserve", e))?
        .map_err(|d| failed(&format!("{} was refused", r.id), d))
}

pub(crate) fn reservation(id: String, tenant: &str, day: &str, amount_usd: f64) -> Reservation {
    Reservation {
        id,
        tenant: tenant.to_string(),
        day: day.to_string(),
        amount_usd,
        tier: TIER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::memory::MemoryLedger;
    use crate::jobs::memory_jobs::MemoryJobs;

    #[tokio::test]
    async fn the_in_memory_ledger_keeps_the_ledger_contract() {
        let ledger = MemoryLedger::default();
        let outcomes = spend_ledger(&ledger, &ledger, "twin").await;
        let failures: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
        assert!(failures.is_empty(), "{failures:#?}");
        assert_eq!(outcomes.len(), 12);
    }

    #[tokio::test]
    async fn the_in_memory_job_store_keeps_the_store_contract() {
        let jobs = MemoryJobs::default();
        let outcomes = job_store(&jobs, &jobs.ledger, "twin").await;
        let failures: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
        assert!(failures.is_empty(), "{failures:#?}");
        assert_eq!(outcomes.len(), 15);
    }
}
