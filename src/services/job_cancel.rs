//! `POST /api/jobs/{id}/cancel`: the kit's cancel (`bitware_kit::jobs::cancel`:
//! what a cancel does in each state, the guarded `cancel_job`, the wait for
//! the run to settle) on the granulator's job row, answered as its job
//! detail. A run's side (stop before its next model call, drop its stream,
//! settle its spend) is `granulator::job` with the kit's `Watch`.

use crate::helpers::auth::Principal;
use crate::services::database::{Database, JobRow};
use crate::services::jobs::{scoped, AttemptView, JobDetail, JobView};
use crate::services::timing::WallClock;
use crate::types::env::App;
use crate::types::job::JobStatus;
use bitware_kit::error::AppResult;
use bitware_kit::jobs::cancel::Cancellable;

/// Who a cancel names as its author: the kit's (the principal's kind and
/// id, never a credential).
pub use bitware_kit::jobs::cancel::cancelled_by;

/// What the kit's cancel reads of a granulation.
impl Cancellable for JobRow {
    fn status(&self) -> JobStatus {
        self.status
    }
    fn ended(&self) -> bool {
        self.status != JobStatus::Processing
            && (self.status != JobStatus::Cancelled || self.completed_at.is_some())
    }
}

/// `POST /api/jobs/{id}/cancel`: stop a queued or running job (the kit's
/// cancel: a cancelled job answers as it is, a completed or failed one is a
/// 409). The answer is the job as `GET /api/jobs/{id}` shows it, once its
/// run has settled (or after the kit's `SETTLE_WAIT_MS`).
pub async fn cancel(
    app: &App,
    id: i64,
    scope: Option<&str>,
    principal: &Principal,
) -> AppResult<JobDetail> {
    let db = Database::new(app)?;
    let job = bitware_kit::jobs::cancel::cancel(
        &db,
        &WallClock,
        id,
        &cancelled_by(principal),
        app.config.jobs.stall_ms,
        async || scoped(&db, id, scope).await,
    )
    .await?;
    let attempts = db.attempts(job.id).await?;
    Ok(JobDetail {
        job: JobView::from(&job),
        attempts: attempts.into_iter().map(AttemptView::from).collect(),
    })
}
