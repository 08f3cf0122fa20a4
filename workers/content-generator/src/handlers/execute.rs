//! `POST /api/execute`: the Resource Manager's entry point (seed §2.2).
//! Answers as the caller asked: 202 + `Location` at once (`Prefer:
//! respond-async` or `"async": true`), or the result once the job ends —
//! 504 with the job's links if the request's `timeout` comes first (the job
//! goes on; the same `X-Request-ID` later replays its result).

use super::{Call, Reply};
use crate::services::database::Database;
use crate::services::job::{self, Submitted};
use crate::types::env::{App, JOB_QUEUE};
use crate::types::execute::ExecuteRequest;
use bitware_kit::error::AppResult;
use bitware_kit::jobs::wait::{self, Waited};
use bitware_kit::jobs::RunMode;
use bitware_kit::limits::Payer;
use bitware_kit::timing::{now_ms, with_timeout, WallClock};
use futures_util::FutureExt;
use serde_json::json;

pub async fn execute(
    call: &Call<'_>,
    payer: &Payer,
    request_id_header: Option<&str>,
    prefer: Option<&str>,
) -> AppResult<Reply> {
    let request = ExecuteRequest::parse(call.body()?)?;
    let app = call.app;
    let asynchronous = request.asynchronous || wait::prefers_async(prefer);
    // The idempotency key: the caller's X-Request-ID, else this request's own id.
    let execution_id = request_id_header.unwrap_or(&app.request_id).to_string();
    let db = Database::new(app)?;
    let started = now_ms();
    let until = started + request.timeout_ms;
    let (submitted, placement) =
        job::submit(app, &db, payer, &request, &execution_id, asynchronous).await?;
    match submitted {
        Submitted::Replay(envelope) => Ok(Reply::ok(envelope).header("Idempotent-Replay", "true")),
        Submitted::Running { job_id } if asynchronous => Ok(accepted(job_id)),
        Submitted::Running { job_id } => wait_on(&db, job_id, until, started, true).await,
        Submitted::Claimed { job_id, run } if placement == RunMode::Queue => {
            bitware_kit::jobs::queue::enqueue(&app.env, JOB_QUEUE, &db, job_id, run).await?;
            match asynchronous {
                true => Ok(accepted(job_id)),
                false => wait_on(&db, job_id, until, started, false).await,
            }
        }
        Submitted::Claimed { job_id, run } => {
            // Inline: the run is shared with `waitUntil`, so it goes on when
            // this request stops waiting.
            let work = job::run_job(App::clone(app), job_id, run)
                .boxed_local()
                .shared();
            call.ctx.wait_until(work.clone().map(|_| ()));
            match with_timeout(until.saturating_sub(now_ms()).max(1), work).await {
                Some(Ok(envelope)) => Ok(Reply::ok(envelope)),
                Some(Err(error)) => Err(error),
                None => Err(wait::still_running(
                    job_id,
                    now_ms().saturating_sub(started),
                )),
            }
        }
    }
}

/// `202 Accepted`: where to follow the job.
fn accepted(job_id: i64) -> Reply {
    let mut body = wait::job_links(job_id);
    body["success"] = json!(true);
    body["status"] = json!("accepted");
    body["cancelUrl"] = json!(format!("/api/jobs/{job_id}/cancel"));
    Reply::ok(body)
        .status(202)
        .header("Location", format!("/api/jobs/{job_id}/status"))
        .header("Preference-Applied", "respond-async")
}

/// Wait on a job someone else runs (the queue, or an earlier request).
async fn wait_on(
    db: &Database,
    job_id: i64,
    until: u64,
    started: u64,
    joined: bool,
) -> AppResult<Reply> {
    match wait::wait_for(&WallClock, db, job_id, until).await? {
        Waited::Completed(envelope) => {
            let reply = Reply::ok(envelope);
            Ok(match joined {
                true => reply.header("Idempotent-Replay", "true"),
                false => reply,
            })
        }
        Waited::Failed(error) => Err(error),
        Waited::Running => Err(wait::still_running(
            job_id,
            now_ms().saturating_sub(started),
        )),
    }
}
