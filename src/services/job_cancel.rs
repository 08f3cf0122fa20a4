//! `POST /api/jobs/{id}/cancel`: stop a queued or running job. The words are
//! the job lifecycle's (job, run, cancel), none of the granulator's: what a
//! cancel does to a job in each state is `JobStatus::on_cancel`, the guarded
//! write is `Database::cancel_job`, and a run's side (stop before its next
//! model call, drop its stream, settle its spend) is `granulator::job`.

use crate::helpers::auth::Principal;
use crate::services::database::{Database, Moment};
use crate::services::jobs::{scoped, AttemptView, JobDetail, JobView};
use crate::services::{progress, timing};
use crate::types::env::App;
use crate::types::job::{JobStatus, OnCancel};
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::JobStore as _;

/// How long a cancel waits for the job's run to stop and settle, so its
/// answer shows the job's final spend: the run sees the cancel within about
/// 1.5 s (`granulator::job`'s watcher). A run that went away (its isolate
/// evicted) and wrote no heartbeat for `JOB_STALL_MS` is settled by the cancel
/// itself (`Database::cancel_job`); one that went away more recently never
/// settles: the answer comes after this wait, and the expiry sweep releases
/// the reservation.
const CANCEL_SETTLE_WAIT_MS: u64 = 5_000;

/// Who a cancel names as its author: the principal's kind and id (never a
/// credential).
pub fn cancelled_by(principal: &Principal) -> String {
    match principal {
        Principal::Client { client_id, .. } => format!("client:{client_id}"),
        Principal::Session { user_id, role, .. } if role == "admin" => format!("admin:{user_id}"),
        Principal::Session { user_id, .. } => format!("user:{user_id}"),
        Principal::Worker { worker_id, .. } => format!("worker:{worker_id}"),
    }
}

/// `POST /api/jobs/{id}/cancel`: stop a queued or running job. A cancelled
/// job answers as it is (idempotent); a completed or failed one is a 409.
/// The answer is the job as `GET /api/jobs/{id}` shows it, once its run has
/// settled (or after `CANCEL_SETTLE_WAIT_MS`).
pub async fn cancel(
    app: &App,
    id: i64,
    scope: Option<&str>,
    principal: &Principal,
) -> AppResult<JobDetail> {
    let db = Database::new(app)?;
    let job = scoped(&db, id, scope).await?;
    let not_cancellable = |status: JobStatus| {
        AppError::conflict(
            "job_not_cancellable",
            format!("job {id} is {status}; only a queued or running job can be cancelled"),
        )
        .with_details(serde_json::json!({"jobId": id, "status": status}))
    };
    match job.status.on_cancel() {
        OnCancel::NotCancellable => return Err(not_cancellable(job.status)),
        OnCancel::AlreadyCancelled => {}
        OnCancel::Stop => {
            let now = timing::now_ms();
            let moment = Moment {
                ms: now,
                stall_ms: app.config.jobs.stall_ms,
                today: &timing::day_of(now),
            };
            if !db.cancel_job(id, &cancelled_by(principal), moment).await? {
                // It ended between the read and the cancel: say how.
                let now = scoped(&db, id, scope).await?;
                if now.status.on_cancel() == OnCancel::NotCancellable {
                    return Err(not_cancellable(now.status));
                }
            }
        }
    }
    let until = timing::now_ms() + CANCEL_SETTLE_WAIT_MS;
    let mut n = 0;
    loop {
        let job = scoped(&db, id, scope).await?;
        let now = timing::now_ms();
        if job.completed_at.is_some() || now >= until {
            let attempts = db.attempts(job.id).await?;
            return Ok(JobDetail {
                job: JobView::from(&job),
                attempts: attempts.into_iter().map(AttemptView::from).collect(),
            });
        }
        timing::sleep(progress::poll_delay_ms(n).min(until - now)).await;
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
}
