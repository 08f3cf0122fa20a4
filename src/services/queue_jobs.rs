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
use crate::types::job::JobStatus;
use bitware_kit::error::{worker_log, AppError, AppResult};
use bitware_kit::jobs::{JobStore as _, Moment};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMessage {
    pub job_id: i64,
    pub run: u32,
}

/// Send a claimed job to the consumer; if the queue refuses, the run ends
/// `failed` (so a retry of the same id runs again) and the caller gets a 503.
pub async fn enqueue(app: &App, db: &Database, job_id: i64, run: u32) -> AppResult<()> {
    let sent = match app.env.queue(JOB_QUEUE) {
        Ok(queue) => queue
            .send(JobMessage { job_id, run })
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = sent {
        worker_log(&format!("job {job_id}: the queue refused it: {e}"));
        let reason = "the job queue is unavailable; send the request again";
        db.fail_run(job_id, run, "queue_unavailable", reason)
            .await?;
        return Err(AppError::new(
            bitware_kit::error::Kind::Unavailable,
            "queue_unavailable",
            reason,
        ));
    }
    Ok(())
}

/// What to tell the queue about a message.
#[derive(Debug, PartialEq)]
pub enum Delivery {
    Ack,
    Retry,
}

/// Run a queued job. `Retry` only when the job could not be started or
/// recorded (D1 down, an injected fault): a job that ran and failed is acked,
/// its failure is its result.
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
    let db = match Database::new(app) {
        Ok(db) => db,
        Err(_) => return Delivery::Retry,
    };
    let now = now_ms();
    let today = day_of(now);
    let moment = Moment {
        ms: now,
        stall_ms: app.config.jobs.stall_ms,
        today: &today,
    };
    let run = match db.start_queued(message.job_id, message.run, moment).await {
        // This run, or the next one when its runner went away.
        Ok(Some(run)) => run,
        // Taken by another delivery, finished, or run again under a newer run.
        Ok(None) => return Delivery::Ack,
        Err(_) => return Delivery::Retry,
    };
    match granulator::run_job(app.clone(), message.job_id, run, None)
        .await
        .0
    {
        Ok(_) => Delivery::Ack,
        // Another run owns the job now: this message has nothing left to do.
        Err(e) if e.code == "run_superseded" => Delivery::Ack,
        Err(e) => {
            // The run recorded its failure unless the database itself failed.
            match db.job_state(message.job_id).await {
                Ok(Some(state)) if state.status != JobStatus::Processing => Delivery::Ack,
                _ => {
                    worker_log(&format!(
                        "job {}: run failed unrecorded: {e}",
                        message.job_id
                    ));
                    Delivery::Retry
                }
            }
        }
    }
}

/// A message the queue gave up on: its run ends `failed` with the reason.
pub async fn dead_letter(app: &App, message: &JobMessage) -> Delivery {
    let Ok(db) = Database::new(app) else {
        return Delivery::Retry;
    };
    let reason = "the job queue gave up on this job after its retries (its consumer kept failing); send the request again to retry";
    match db
        .fail_run(message.job_id, message.run, "dead_lettered", reason)
        .await
    {
        Ok(_) => Delivery::Ack,
        Err(_) => Delivery::Retry,
    }
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
