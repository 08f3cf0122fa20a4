//! `POST /api/jobs/{id}/cancel`, the lifecycle's side: who a cancel names,
//! what it does to a job in each state (`JobStatus::on_cancel`: a running
//! or queued job is stopped, a cancelled one answers as it is, a completed
//! or failed one is a 409 naming its state), the guarded `cancel_job`, and
//! the wait for the run to see it and settle, so the answer shows the
//! job's final spend. The job is read in the caller's scope by the worker
//! (another tenant's job is a 404 before anything is written).

use super::store::{JobStatus, JobStore, Moment, OnCancel};
use super::view::{JobRow, JobView};
use super::wait::poll_delay_ms;
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::timing::{day_of, Clock};

/// How long a cancel waits for the job's run to stop and settle: a run sees
/// a cancel within about 1.5 s (`run::Watch`). One that went away settles
/// through the store (a stopped run is booked by `cancel_job` itself, else
/// the expiry sweep releases its reservation); the answer comes after this.
pub const SETTLE_WAIT_MS: u64 = 5_000;

/// Who a cancel names as its author: the principal's kind and id, never a
/// credential.
pub fn cancelled_by(principal: &Principal) -> String {
    match principal {
        Principal::Client { client_id, .. } => format!("client:{client_id}"),
        Principal::Session { user_id, role, .. } if role == "admin" => format!("admin:{user_id}"),
        Principal::Session { user_id, .. } => format!("user:{user_id}"),
        Principal::Worker { worker_id, .. } => format!("worker:{worker_id}"),
    }
}

/// The 409 for a job that ended before it could be cancelled.
pub fn not_cancellable(id: i64, status: JobStatus) -> AppError {
    AppError::conflict(
        "job_not_cancellable",
        format!("job {id} is {status}; only a queued or running job can be cancelled"),
    )
    .with_details(serde_json::json!({"jobId": id, "status": status}))
}

/// A job as the worker reads it for a cancel: the kit's [`JobRow`], or a
/// worker's own row of the same job.
pub trait Cancellable {
    fn status(&self) -> JobStatus;
    /// Whether the job has ended and, for a cancelled one, its run settled
    /// (`completed_at` is set by the settling).
    fn ended(&self) -> bool;
}

impl Cancellable for JobRow {
    fn status(&self) -> JobStatus {
        self.status
    }
    fn ended(&self) -> bool {
        JobView::ended(self)
    }
}

/// Cancel job `id` (as `read` shows it in the caller's scope) for `by`, then
/// wait up to [`SETTLE_WAIT_MS`] for its run to settle; the job as `read`
/// shows it then.
pub async fn cancel<J: JobStore, C: Clock, R: Cancellable>(
    jobs: &J,
    clock: &C,
    id: i64,
    by: &str,
    stall_ms: u64,
    read: impl AsyncFn() -> AppResult<R>,
) -> AppResult<R> {
    let job = read().await?;
    match job.status().on_cancel() {
        OnCancel::NotCancellable => return Err(not_cancellable(id, job.status())),
        OnCancel::AlreadyCancelled => {}
        OnCancel::Stop => {
            let now = clock.now_ms();
            let today = day_of(now);
            let moment = Moment {
                ms: now,
                stall_ms,
                today: &today,
            };
            if !jobs.cancel_job(id, by, moment).await? {
                // It ended between the read and the cancel: say how.
                let now = read().await?;
                if now.status().on_cancel() == OnCancel::NotCancellable {
                    return Err(not_cancellable(id, now.status()));
                }
            }
        }
    }
    let until = clock.now_ms() + SETTLE_WAIT_MS;
    let mut n = 0;
    loop {
        let row = read().await?;
        let now = clock.now_ms();
        if row.ended() || now >= until {
            return Ok(row);
        }
        clock.sleep(poll_delay_ms(n).min(until - now)).await;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_names_the_principal_by_kind_and_id_never_a_credential() {
        let client = Principal::Client {
            client_id: "acme".into(),
            tier: "basic".into(),
        };
        assert_eq!(cancelled_by(&client), "client:acme");
        let admin = Principal::Session {
            user_id: "u1".into(),
            email: "a@x".into(),
            role: "admin".into(),
            client_id: None,
        };
        assert_eq!(cancelled_by(&admin), "admin:u1");
        let user = Principal::Session {
            user_id: "u2".into(),
            email: "b@x".into(),
            role: "user".into(),
            client_id: Some("acme".into()),
        };
        assert_eq!(cancelled_by(&user), "user:u2");
        let worker = Principal::Worker {
            worker_id: "rm".into(),
            acting_for: Some("acme".into()),
        };
        assert_eq!(cancelled_by(&worker), "worker:rm");
    }

    #[test]
    fn a_finished_job_is_a_409_that_names_its_state() {
        let e = not_cancellable(4, JobStatus::Completed);
        assert_eq!((e.status(), e.code), (409, "job_not_cancellable"));
        assert!(e.message.contains("completed"));
    }
}
