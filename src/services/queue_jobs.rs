//! Jobs on Cloudflare Queues: the producer side (`enqueue`) and the consumer
//! (`consume`, and `dead_letter` for messages the queue gave up on).
//!
//! A message names a job and its run. The consumer takes the job only if that
//! run is still waiting, or its runner wrote no heartbeat for `JOB_STALL_MS`
//! (then under the next run number, what the old runner streamed booked), so
//! a redelivered message never starts a second generation. A message whose consumer kept
//! failing reaches the dead-letter queue, whose consumer ends the run `failed`
//! with the reason: nothing is left `processing`.

use crate::services::database::Database;
use crate::services::granulator;
use crate::services::timing::{day_of, now_ms};
use crate::types::env::{App, JOB_QUEUE};
use bitware_kit::error::{worker_log, AppResult};
use bitware_kit::jobs::{queue, Moment};

/// A job's queue message and what to tell the queue: the kit's.
pub use bitware_kit::jobs::queue::{Delivery, JobMessage};

/// Send a claimed job to the consumer; if the queue refuses, the run ends
/// `failed` (so a retry of the same id runs again) and the caller gets a 503.
pub async fn enqueue(app: &App, db: &Database, job_id: i64, run: u32) -> AppResult<()> {
    queue::enqueue(&app.env, JOB_QUEUE, db, job_id, run).await
}

/// Run a queued job (the kit's consumer: started once per run, a stalled
/// run taken over, `Retry` only when the job could not be started or its
/// end recorded).
pub async fn consume(app: &App, message: &JobMessage) -> Delivery {
    if let Some(marker) = fault_marker(app) {
        if let Ok(db) = Database::new(app) {
            if let Ok(Some(job)) = db.job(message.job_id, None).await {
                if job.topic.contains(&marker) {
                    worker_log(&format!("job {}: injected consumer fault", message.job_id));
                    return Delivery::Retry;
                }
            }
        }
    }
    let Ok(db) = Database::new(app) else {
        return Delivery::Retry;
    };
    let now = now_ms();
    let today = day_of(now);
    let moment = Moment {
        ms: now,
        stall_ms: app.config.jobs.stall_ms,
        today: &today,
    };
    queue::consume(&db, message, moment, async |run| {
        granulator::run_job(app.clone(), message.job_id, run, None)
            .await
            .0
    })
    .await
}

/// A message the queue gave up on: its run ends `failed` with the reason.
pub async fn dead_letter(app: &App, message: &JobMessage) -> Delivery {
    let Ok(db) = Database::new(app) else {
        return Delivery::Retry;
    };
    queue::dead_letter(&db, message).await
}

/// Test hook, ignored in production: queued jobs whose topic contains this
/// marker make the consumer fail (to exercise retries and the dead-letter queue).
fn fault_marker(app: &App) -> Option<String> {
    if app.config.environment == "production" {
        return None;
    }
    app.env
        .var("QUEUE_FAULT_MARKER")
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.trim().is_empty())
}
