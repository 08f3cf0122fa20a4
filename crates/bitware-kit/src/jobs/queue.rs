//! Jobs on Cloudflare Queues, as a worker's consumer sees them: a message
//! names a job and its run. The consumer takes the job only if that run is
//! still waiting, or its runner wrote no heartbeat for the stall period
//! (then under the next run number, what the old runner streamed booked),
//! so a redelivered message never starts a second generation. A message the
//! queue gave up on (its dead-letter queue) ends its run `failed` with the
//! reason: nothing is left `processing`.

use super::store::{JobStatus, JobStore, Moment};
use crate::error::{worker_log, AppResult};
use serde::{Deserialize, Serialize};

/// What a job's queue message carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMessage {
    pub job_id: i64,
    pub run: u32,
}

/// What to tell the queue about a message.
#[derive(Debug, PartialEq)]
pub enum Delivery {
    Ack,
    Retry,
}

/// Start the message's run and run it with `run` (given the run number to
/// go on with). `Retry` only when the job could not be started or its end
/// recorded (D1 down): a job that ran and failed is acked, its failure is
/// its result; a run another took over is acked too.
pub async fn consume<J, F>(jobs: &J, message: &JobMessage, now: Moment<'_>, run: F) -> Delivery
where
    J: JobStore,
    F: AsyncFnOnce(u32) -> AppResult<serde_json::Value>,
{
    let run_number = match jobs.start_queued(message.job_id, message.run, now).await {
        // This run, or the next one when its runner went away.
        Ok(Some(run)) => run,
        // Taken by another delivery, finished, or run again under a newer run.
        Ok(None) => return Delivery::Ack,
        Err(_) => return Delivery::Retry,
    };
    match run(run_number).await {
        Ok(_) => Delivery::Ack,
        // Another run owns the job now: this message has nothing left to do.
        Err(e) if e.code == "run_superseded" => Delivery::Ack,
        Err(e) => match jobs.job_state(message.job_id).await {
            // The run recorded its failure unless the database itself failed.
            Ok(Some(state)) if state.status != JobStatus::Processing => Delivery::Ack,
            _ => {
                worker_log(&format!(
                    "job {}: run failed unrecorded: {e}",
                    message.job_id
                ));
                Delivery::Retry
            }
        },
    }
}

/// A message the queue gave up on: its run ends `failed` with the reason.
pub async fn dead_letter(jobs: &impl JobStore, message: &JobMessage) -> Delivery {
    let reason = "the job queue gave up on this job after its retries (its consumer kept failing); send the request again to retry";
    match jobs
        .fail_run(message.job_id, message.run, "dead_lettered", reason)
        .await
    {
        Ok(_) => Delivery::Ack,
        Err(_) => Delivery::Retry,
    }
}

/// Send a claimed job to the consumer through the queue binding `queue`; if
/// the queue refuses, the run ends `failed` (so a retry of the same id runs
/// again) and the caller gets a 503 `queue_unavailable`.
#[cfg(feature = "worker")]
pub async fn enqueue(
    env: &worker::Env,
    queue: &str,
    jobs: &impl JobStore,
    job_id: i64,
    run: u32,
) -> AppResult<()> {
    let sent = match env.queue(queue) {
        Ok(q) => q
            .send(JobMessage { job_id, run })
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = sent {
        worker_log(&format!("job {job_id}: the queue refused it: {e}"));
        let reason = "the job queue is unavailable; send the request again";
        jobs.fail_run(job_id, run, "queue_unavailable", reason)
            .await?;
        return Err(crate::error::AppError::new(
            crate::error::Kind::Unavailable,
            "queue_unavailable",
            reason,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;
    use crate::jobs::fixtures::{block_on, claimed};
    use crate::jobs::memory_jobs::MemoryJobs;
    use crate::jobs::store::RunMode;
    use std::cell::Cell;

    fn at(ms: u64) -> Moment<'static> {
        Moment {
            ms,
            stall_ms: 10_000,
            today: "2026-01-01",
        }
    }

    fn queued(jobs: &MemoryJobs) -> JobMessage {
        let (job_id, run) = claimed(jobs, RunMode::Queue);
        JobMessage { job_id, run }
    }

    #[test]
    fn a_message_runs_its_job_once_and_a_redelivery_is_acked_without_running() {
        let jobs = MemoryJobs::default();
        let message = queued(&jobs);
        let runs = Cell::new(0);
        let work = async |_run: u32| -> AppResult<serde_json::Value> {
            runs.set(runs.get() + 1);
            Ok(serde_json::json!({}))
        };
        assert_eq!(
            block_on(consume(&jobs, &message, at(1), work)),
            Delivery::Ack
        );
        let again = async |_run: u32| -> AppResult<serde_json::Value> {
            runs.set(runs.get() + 1);
            Ok(serde_json::json!({}))
        };
        assert_eq!(
            block_on(consume(&jobs, &message, at(2), again)),
            Delivery::Ack
        );
        assert_eq!(runs.get(), 1);
    }

    #[test]
    fn an_unrecorded_failure_is_retried_and_a_superseded_run_acked() {
        let jobs = MemoryJobs::default();
        let message = queued(&jobs);
        let fails = async |_run: u32| -> AppResult<serde_json::Value> {
            Err(AppError::internal("D1 went away"))
        };
        assert_eq!(
            block_on(consume(&jobs, &message, at(1), fails)),
            Delivery::Retry
        );
        // Redelivered past the stall period: taken over under run 2, which
        // finds itself superseded.
        let superseded = async |run: u32| -> AppResult<serde_json::Value> {
            assert_eq!(run, 2);
            Err(crate::jobs::run_superseded(message.job_id, run))
        };
        assert_eq!(
            block_on(consume(&jobs, &message, at(20_000), superseded)),
            Delivery::Ack
        );
    }

    #[test]
    fn a_dead_lettered_message_ends_its_run_failed() {
        let jobs = MemoryJobs::default();
        let message = queued(&jobs);
        assert_eq!(block_on(dead_letter(&jobs, &message)), Delivery::Ack);
        let job = jobs.job(message.job_id);
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.failure_code.as_deref(), Some("dead_lettered"));
    }
}
