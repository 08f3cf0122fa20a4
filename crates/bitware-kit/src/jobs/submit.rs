//! Submitting a job: reserve its budget against the payer's daily cap, then
//! claim it under its idempotency key, in that order, so a job never runs
//! unpaid for and a reservation never outlives a claim that did not run.

use super::spend::{self, SpendLedger};
use super::store::{Claim, JobStore, Moment, NewJob};
use super::wait::cancelled_error;
use crate::error::{AppError, AppResult, Kind};
use crate::limits::{Limits, Payer};
use serde_json::{json, Value};

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

/// What became of a submitted job, for its request.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// This request claimed it (new, or a failed or stopped one run again).
    Claimed { job_id: i64, run: u32 },
    /// Completed before under this key: the stored answer.
    Replay(Value),
    /// Another request, or the queue, is running it.
    Running { job_id: i64 },
}

impl Submitted {
    /// What a claim means for its request, and what earlier runs of a
    /// claimed job spent (a re-run is charged against the same budget). A
    /// key used for another request is a 422, a cancelled job's key the
    /// cancel's 409.
    pub fn of(claim: Claim) -> AppResult<(Submitted, f64)> {
        match claim {
            Claim::Run {
                job_id,
                run,
                spent_usd,
            } => Ok((Submitted::Claimed { job_id, run }, spent_usd)),
            Claim::Replay { result, .. } => Ok((Submitted::Replay(result), 0.0)),
            Claim::InProgress { job_id } => Ok((Submitted::Running { job_id }, 0.0)),
            Claim::Mismatch { job_id } => Err(idempotency_key_reused(job_id)),
            Claim::Cancelled {
                job_id,
                cancelled_by,
                cancelled_at,
            } => Err(cancelled_error(
                job_id,
                cancelled_by.as_deref(),
                cancelled_at.as_deref(),
            )),
        }
    }
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
        assert_eq!(
            Submitted::of(joined.clone().unwrap()).unwrap().0,
            Submitted::Running { job_id: 1 }
        );
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

    #[test]
    fn a_reused_key_is_422_and_a_cancelled_one_409() {
        assert_eq!(
            Submitted::of(Claim::Mismatch { job_id: 3 })
                .unwrap_err()
                .code,
            "idempotency_key_reused"
        );
        let cancelled = Claim::Cancelled {
            job_id: 3,
            cancelled_by: Some("admin:a".into()),
            cancelled_at: None,
        };
        assert_eq!(Submitted::of(cancelled).unwrap_err().code, "job_cancelled");
        let run = Claim::Run {
            job_id: 3,
            run: 2,
            spent_usd: 0.25,
        };
        assert_eq!(
            Submitted::of(run).unwrap(),
            (Submitted::Claimed { job_id: 3, run: 2 }, 0.25)
        );
    }
}
