//! `POST /api/execute` (seed §2.2) and `POST /api/validate`.

use super::{Call, Reply};
use crate::services::database::Database;
use crate::services::envelope::Envelope;
use crate::services::granulator::{self, Submitted, Waited};
use crate::services::progress::{self, Placement};
use crate::services::spend::Payer;
use crate::services::timing::{now_ms, with_timeout};
use crate::services::{economy, jobs, queue_jobs};
use crate::types::api::{ExecuteRequest, JobRequest};
use crate::types::bodies::parse_validate;
use crate::types::request::parse_execute;
use bitware_kit::error::AppResult;
use futures_util::FutureExt;
use serde_json::json;

pub async fn execute(
    call: &Call<'_>,
    request_id_header: Option<&str>,
    prefer: Option<&str>,
) -> AppResult<Reply> {
    let principal = call.principal()?;
    let db = Database::new(call.app)?;
    let reply = match parse_execute(call.body()?, request_id_header)? {
        ExecuteRequest::Granulate {
            request,
            execution_id,
            asynchronous,
        } => {
            let asynchronous = asynchronous || progress::prefers_async(prefer);
            let payer = bitware_kit::limits::payer(
                &call.app.kam(),
                principal,
                None,
                &call.app.config.limits,
            )
            .await;
            granulate(call, &db, &payer, request, execution_id, asynchronous).await?
        }
        ExecuteRequest::Validate {
            job_id,
            level,
            threshold,
        } => {
            let started = now_ms();
            let result =
                granulator::revalidate(call.app, &db, principal, job_id, level, threshold).await?;
            Reply::ok(
                Envelope {
                    action: "validate",
                    input_tokens: result.tokens_used.input,
                    output_tokens: result.tokens_used.output,
                    duration_ms: now_ms().saturating_sub(started),
                    cost: result.cost_usd,
                    model: result.model.as_deref(),
                    output: json!({"jobId": job_id, "validationResult": result}),
                }
                .into_json(),
            )
        }
        ExecuteRequest::Estimate { params, config } => {
            let started = now_ms();
            let estimate = economy::quote_with(call.app, &db, &params, &config).await?;
            // An estimate calls no model: no tokens, no cost.
            Reply::ok(
                Envelope {
                    action: "estimate",
                    input_tokens: 0,
                    output_tokens: 0,
                    duration_ms: now_ms().saturating_sub(started),
                    cost: Some(0.0),
                    model: Some(&estimate.estimate.chosen.model),
                    output: json!(estimate),
                }
                .into_json(),
            )
        }
    };
    Ok(reply.header("X-D1-Round-Trips", db.round_trips().to_string()))
}

/// `202 Accepted`: where to follow the job.
fn accepted(job_id: i64) -> Reply {
    let mut body = progress::job_links(job_id);
    body["success"] = json!(true);
    body["status"] = json!("accepted");
    Reply::ok(body)
        .status(202)
        .header("Location", format!("/api/jobs/{job_id}/status"))
        .header("Preference-Applied", "respond-async")
}

/// Submit a granulation and answer as the caller asked: 202 at once
/// (async), or the result once the job ends — 504 with the status URL if the
/// request's `timeout` comes first (the job goes on). A repeated key joins
/// the running job instead of starting another.
pub async fn granulate(
    call: &Call<'_>,
    db: &Database,
    payer: &Payer,
    request: JobRequest,
    execution_id: Option<String>,
    asynchronous: bool,
) -> AppResult<Reply> {
    let app = call.app;
    let started = now_ms();
    let until = started + request.timeout_ms;
    let (submitted, placement, prepared) =
        granulator::submit(app, db, payer, &request, execution_id, asynchronous).await?;
    match submitted {
        Submitted::Replay(envelope) => Ok(finished(
            granulator::with_structure(app, db, envelope).await?,
            true,
        )),
        Submitted::Running { job_id } if asynchronous => Ok(accepted(job_id)),
        Submitted::Running { job_id } => wait(app, db, job_id, until, started, true).await,
        Submitted::Claimed { job_id, run } if placement == Placement::Queue => {
            queue_jobs::enqueue(app, db, job_id, run).await?;
            if asynchronous {
                Ok(accepted(job_id))
            } else {
                wait(app, db, job_id, until, started, false).await
            }
        }
        Submitted::Claimed { job_id, run } => {
            // Inline: the run is shared with `waitUntil`, so it goes on when this
            // request stops waiting.
            let work = granulator::run_job(app.clone(), job_id, run, prepared)
                .boxed_local()
                .shared();
            call.ctx.wait_until(work.clone().map(|_| ()));
            match with_timeout(until.saturating_sub(now_ms()).max(1), work).await {
                Some((Ok(envelope), trips)) => {
                    db.add_round_trips(trips);
                    Ok(finished(envelope, false))
                }
                Some((Err(error), _)) => Err(error),
                None => Err(still_running(job_id, started)),
            }
        }
    }
}

/// Run a failed job again in place (`POST /api/jobs/{id}/retry`): its stored
/// request under its own execution id, answered like a synchronous execute.
pub async fn rerun(
    call: &Call<'_>,
    payer: &Payer,
    request: JobRequest,
    execution_id: String,
) -> AppResult<Reply> {
    let db = Database::new(call.app)?;
    granulate(call, &db, payer, request, Some(execution_id), false).await
}

/// Wait on a job someone else runs (the queue, or an earlier request).
async fn wait(
    app: &crate::types::env::App,
    db: &Database,
    job_id: i64,
    until: u64,
    started: u64,
    joined: bool,
) -> AppResult<Reply> {
    match granulator::wait_for(db, job_id, until).await? {
        Waited::Completed(envelope) => Ok(finished(
            granulator::with_structure(app, db, envelope).await?,
            joined,
        )),
        Waited::Failed(error) => Err(error),
        Waited::Running => Err(still_running(job_id, started)),
    }
}

/// A finished job's envelope; `replayed` when this request did not run it
/// (a completed job replayed, or a running one joined).
fn finished(envelope: serde_json::Value, replayed: bool) -> Reply {
    let reply = Reply::ok(envelope);
    if replayed {
        reply.header("Idempotent-Replay", "true")
    } else {
        reply
    }
}

/// The request stopped waiting at its timeout; the job goes on.
fn still_running(job_id: i64, started: u64) -> bitware_kit::error::AppError {
    granulator::still_running(job_id, now_ms().saturating_sub(started))
}

pub async fn validate(call: &Call<'_>) -> AppResult<Reply> {
    let request = parse_validate(call.body()?)?;
    let result = jobs::revalidate(call.app, call.principal()?, &request).await?;
    Ok(Reply::ok(
        json!({"jobId": request.job_id, "validationResult": result}),
    ))
}
