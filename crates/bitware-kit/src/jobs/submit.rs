//! Submitting a job: reserve its budget against the payer's daily cap, then
//! claim it under its idempotency key, in that order, so a job never runs
//! unpaid for and a reservation never outlives a claim that did not run.

use super::spend::{self, SpendLedger};
use super::store::{Claim, JobStore, Moment, NewJob};
use crate::error::{AppError, AppResult, Kind};
use crate::limits::{Limits, Payer};
use serde_json::json;

/// Reserve `budget_usd` for `payer` (until the job's deadline), then claim
/// `job` with it at `now_ms`. A request whose job already completed is
/// replayed, and one whose job is running joins it, even when the cap is
/// reached: neither spends. Only a claimed run keeps its reservation; any
/// other claim gives it back.
pub async fn reserve_and_claim<S: JobStore + SpendLedger>(
    store: &S,
    limits: &Limits,
    payer: &Payer,
    job: &NewJob<'_>,
    budget_usd: f64,
    now_ms: u64,
    stall_ms: u64,
) -> AppResult<Claim> {
    let (claim, reservation) =
        match spend::reserve(limits, store, payer, budget_usd, job.deadline_at, now_ms).await {
            Ok(reservation) => {
                let now = Moment {
                    ms: now_ms,
                    stall_ms,
                    today: &reservation.day,
                };
                match store.claim_job(job, now, &reservation).await {
                    Ok(claim) => (claim, Some(reservation)),
                    Err(e) => {
                        let _ = store.settle_spend(&reservation, 0.0).await;
                        return Err(e);
                    }
                }
            }
            Err(refused) if refused.kind == Kind::TooManyRequests => {
                match store.existing_claim(job, now_ms, stall_ms).await? {
                    Some(claim) => (claim, None),
                    None => return Err(refused),
                }
            }
            Err(e) => return Err(e),
        };
    if let (false, Some(reservation)) = (matches!(claim, Claim::Run { .. }), &reservation) {
        // Nothing runs under this reservation: give it back.
        store.settle_spend(reservation, 0.0).await?;
    }
    Ok(claim)
}

/// 422 for an idempotency key used before for a different request.
pub fn idempotency_key_reused(job_id: i64) -> AppError {
    AppError::new(
        Kind::Unprocessable,
        "idempotency_key_reused",
        "this X-Request-ID (or executionId) was used for a different request; use a new id for a new request",
    )
    .with_details(json!({"jobId": job_id}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::fixtures::block_on;
    use crate::jobs::memory_jobs::MemoryJobs;
    use crate::jobs::store::{JobStatus, RunMode};
    use crate::limits::Tier;

    fn job(hash: &str) -> NewJob<'_> {
        NewJob {
            client_id: "client-a",
            execution_id: "key-1",
            request_params: "{}",
            deadline_at: 1_000_000,
            request_hash: hash,
            run_mode: RunMode::Inline,
            expected_tokens: 100,
            expected_elements: 1,
            planned: None,
            columns: &[],
        }
    }

    fn payer() -> Payer {
        Payer {
            tenant: "client-a".into(),
            tier: Tier::Basic,
        }
    }

    #[test]
    fn a_claimed_run_keeps_its_reservation_and_a_join_gives_its_own_back() {
        let (store, limits) = (MemoryJobs::default(), Limits::default());
        let cap = limits.daily_cap(Tier::Basic);
        let first = block_on(reserve_and_claim(
            &store,
            &limits,
            &payer(),
            &job("h"),
            cap / 2.0,
            0,
            90_000,
        ));
        assert!(matches!(first, Ok(Claim::Run { run: 1, .. })), "{first:?}");
        let joined = block_on(reserve_and_claim(
            &store,
            &limits,
            &payer(),
            &job("h"),
            cap / 2.0,
            1,
            90_000,
        ));
        assert!(matches!(joined, Ok(Claim::InProgress { .. })), "{joined:?}");
        let (reserved, spent) = store.day("client-a");
        assert!(
            (reserved - cap / 2.0).abs() < 1e-9 && spent == 0.0,
            "{reserved} {spent}"
        );
    }

    #[test]
    fn a_full_day_still_joins_a_running_job_but_refuses_a_new_one() {
        let (store, limits) = (MemoryJobs::default(), Limits::default());
        let cap = limits.daily_cap(Tier::Basic);
        block_on(reserve_and_claim(
            &store,
            &limits,
            &payer(),
            &job("h"),
            cap,
            0,
            90_000,
        ))
        .unwrap();
        let joined = block_on(reserve_and_claim(
            &store,
            &limits,
            &payer(),
            &job("h"),
            cap,
            1,
            90_000,
        ));
        assert!(matches!(joined, Ok(Claim::InProgress { .. })), "{joined:?}");
        let mut other = job("h");
        other.execution_id = "key-2";
        let refused = block_on(reserve_and_claim(
            &store,
            &limits,
            &payer(),
            &other,
            cap,
            2,
            90_000,
        ))
        .unwrap_err();
        assert_eq!(refused.code, "spend_cap_exceeded");
        assert_eq!(store.job(1).status, JobStatus::Processing);
        assert_eq!(
            store.jobs.borrow().len(),
            1,
            "nothing was claimed for the refused request"
        );
    }
}
