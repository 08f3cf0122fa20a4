//! Job endpoints, client-scoped (worker and admin see every client's jobs).
//! Another client's job is a 404, exactly like a job that does not exist.

use super::{Call, Reply};
use crate::services::database::JobFilter;
use crate::services::spend::Payer;
use crate::services::{job_cancel, job_events, jobs};
use crate::types::job::JobStatus;
use crate::types::structure::StructureType;
use bitware_kit::error::{AppError, AppResult};

pub const MAX_PAGE: u32 = 100;

/// `YYYY-MM-DD` or a full ISO-8601 UTC timestamp.
fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    let date_ok = b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    date_ok
        && (b.len() == 10
            || (b[10] == b'T'
                && s.len() <= 30
                && s[11..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || ":.Z".contains(c))))
}

pub async fn list(call: &Call<'_>) -> AppResult<Reply> {
    let status = match call.query.get("status") {
        None => None,
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
            AppError::invalid_field(
                "status",
                format!("`{s}` is not one of {}", JobStatus::names().join(", ")),
            )
        })?),
    };
    let structure_type = match call.query.get("structure_type") {
        None => None,
        Some(t) => Some(StructureType::parse(t).ok_or_else(|| {
            AppError::invalid_field(
                "structure_type",
                format!("`{t}` is not one of {}", StructureType::names().join(", ")),
            )
        })?),
    };
    for name in ["from", "to"] {
        if let Some(d) = call.query.get(name).filter(|d| !valid_date(d)) {
            return Err(AppError::invalid_field(
                name,
                format!("`{d}` is not a date (YYYY-MM-DD or ISO-8601 UTC)"),
            ));
        }
    }
    let scope = call.scope()?;
    let filter = JobFilter {
        scope: scope.as_deref(),
        status,
        structure_type,
        from: call.query.get("from").map(String::as_str),
        to: call.query.get("to").map(String::as_str),
        limit: call.query_u32("limit", 20, 1, MAX_PAGE)?,
        offset: call.query_u32("offset", 0, 0, 1_000_000)?,
    };
    Reply::json(&jobs::list(call.app, &filter).await?)
}

pub async fn get(call: &Call<'_>) -> AppResult<Reply> {
    let id = call.id_param("id")?;
    Reply::json(&jobs::detail(call.app, id, call.scope()?.as_deref()).await?)
}

pub async fn status(call: &Call<'_>) -> AppResult<Reply> {
    let id = call.id_param("id")?;
    Reply::json(&jobs::status(call.app, id, call.scope()?.as_deref()).await?)
}

/// `GET /api/jobs/{id}/events`: the job's status as Server-Sent Events.
pub async fn events(call: &Call<'_>) -> AppResult<worker::Response> {
    let id = call.id_param("id")?;
    // Streams count against the payer's allowance (workers acting for nobody share one).
    let tenant = Payer::of(call.principal()?, &call.app.config.limits).tenant;
    let stream = job_events::events(call.app, id, call.scope()?, &tenant).await?;
    let bytes = futures_util::StreamExt::map(stream, |e| {
        Ok::<Vec<u8>, worker::Error>(e.to_sse().into_bytes())
    });
    crate::helpers::http::event_stream_response(bytes, &call.app.request_id)
        .map_err(|e| AppError::internal(format!("opening the events stream: {e}")))
}

pub async fn structure(call: &Call<'_>) -> AppResult<Reply> {
    let from_elements = match call.query.get("source").map(String::as_str) {
        None | Some("storage") => false,
        Some("elements") => true,
        Some(other) => {
            return Err(AppError::invalid_field(
                "source",
                format!("`{other}` is not storage or elements"),
            ))
        }
    };
    let id = call.id_param("id")?;
    let view = jobs::structure(call.app, id, call.scope()?.as_deref(), from_elements).await?;
    Reply::json(&view)
}

/// `POST /api/jobs/{id}/cancel`.
pub async fn cancel(call: &Call<'_>) -> AppResult<Reply> {
    let id = call.id_param("id")?;
    let principal = call.principal()?;
    Reply::json(&job_cancel::cancel(call.app, id, call.scope()?.as_deref(), principal).await?)
}

pub async fn retry(call: &Call<'_>) -> AppResult<Reply> {
    let id = call.id_param("id")?;
    let (job, request) = jobs::retry_request(call.app, id, call.scope()?.as_deref()).await?;
    // Same client and execution id: the failed job runs again in place, paid
    // by the job's tenant (at the caller's tier when the caller is that tenant).
    let payer = bitware_kit::limits::payer(
        &call.app.kam(),
        call.principal()?,
        Some(&job.client_id),
        &call.app.config.limits,
    )
    .await;
    super::execute::rerun(call, &payer, request, job.execution_id).await
}

pub async fn validation_history(call: &Call<'_>) -> AppResult<Reply> {
    let job_id = match call.query.get("job_id") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|i| *i > 0)
                .ok_or_else(|| AppError::invalid_field("job_id", "must be a positive integer"))?,
        ),
    };
    let limit = call.query_u32("limit", 50, 1, MAX_PAGE)?;
    let history =
        jobs::validation_history(call.app, call.scope()?.as_deref(), job_id, limit).await?;
    Reply::json(&history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked() {
        assert!(valid_date("2026-11-25"));
        assert!(valid_date("2026-11-25T10:00:00.000Z"));
        assert!(!valid_date("yesterday"));
        assert!(!valid_date("2026-1-25"));
        assert!(!valid_date("2026-11-25 OR 1=1"));
    }
}
