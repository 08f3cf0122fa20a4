//! What the lifecycle's own unit tests share: a runtime for one future and
//! a claimed job on the twin.

use super::memory_jobs::MemoryJobs;
use super::spend::Reservation;
use super::store::{Claim, JobStore, Moment, NewJob, RunMode};

/// Run a future to its end on a one-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// A job claimed at 0 ms by client `c` under key `e`, run as `mode`; its
/// id and run.
pub fn claimed(jobs: &MemoryJobs, mode: RunMode) -> (i64, u32) {
    let job = NewJob {
        client_id: "c",
        execution_id: "e",
        request_params: "{}",
        deadline_at: u64::MAX / 2,
        request_hash: "h",
        run_mode: mode,
        expected_tokens: 10,
        expected_elements: 1,
        planned: None,
        columns: &[],
    };
    let r = Reservation {
        id: "r".into(),
        tenant: "c".into(),
        day: "2026-01-01".into(),
        amount_usd: 0.0,
        tier: "basic",
    };
    let now = Moment {
        ms: 0,
        stall_ms: 90_000,
        today: "2026-01-01",
    };
    match block_on(jobs.claim_job(&job, now, &r)).unwrap() {
        Claim::Run { job_id, run, .. } => (job_id, run),
        other => panic!("{other:?}"),
    }
}
