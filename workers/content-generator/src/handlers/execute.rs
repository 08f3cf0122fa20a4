//! `POST /api/execute`: the Resource Manager's entry point (seed §2.2).
//! The request is parsed here (the granulator's `output` as `input`, with
//! `params`/`config`); an outline sent by reference is fetched from the
//! granulator through its service binding, acting for the same client; then
//! the kit runs the job and answers as the caller asked: 202 + `Location`
//! (`Prefer: respond-async` or `"async": true`), or the result once the job
//! ends — 504 with the job's links if the request's `timeout` comes first
//! (the job goes on; the same `X-Request-ID` later replays its result).

use super::{Call, Reply};
use crate::services::granulator;
use crate::services::job::Generate;
use crate::types::request::ExecuteRequest;
use bitware_kit::error::AppResult;
use bitware_kit::jobs::work::{self, Submission};
use bitware_kit::limits::Payer;

pub async fn execute(
    call: &Call<'_>,
    payer: &Payer,
    request_id_header: Option<&str>,
    prefer: Option<&str>,
) -> AppResult<Reply> {
    let mut request = ExecuteRequest::parse(call.body()?)?;
    let app = call.app;
    // The idempotency key: the caller's X-Request-ID, else this request's own id.
    let execution_id = request_id_header.unwrap_or(&app.request_id);
    let work = Generate(app.clone());
    if request.job.structure.is_none() {
        // A retry of a completed job is answered without the granulator.
        if let Some(reply) = work::replay(&work, payer, &request.job, execution_id).await? {
            return Ok(reply);
        }
        // By reference: the granulator's own copy, never its storage.
        let scope = call.scope()?;
        let structure =
            granulator::fetch_structure(app, request.job.granulator_job_id, scope.as_deref())
                .await?;
        request.job.fetched_structure = Some(structure);
    }
    let submission = Submission {
        job: request.job,
        timeout_ms: request.timeout_ms,
        asynchronous: request.asynchronous,
    };
    work::execute(&work, call.ctx, payer, &submission, execution_id, prefer).await
}
