//! The granulator, asked through its service binding (`GRANULATOR`): a
//! stored outline (`structureReference`) is fetched with
//! `GET /api/jobs/{id}/structure` as a worker acting for the job's client,
//! never by reading the granulator's KV or R2 (its storage is its own).
//!
//! What its answers mean here (`read_structure`, pure, tested natively):
//! 200 `complete: true` → the outline; a running job (`complete: false`) or
//! a job that did not complete (409) → 409 `structure_not_ready`; 404 (no
//! such job, or another client's) → 422 `structure_reference_not_found`;
//! 401/403 → 502 `granulator_refused` (our worker credentials are wrong: an
//! operator's problem); 5xx, garbage, or the binding missing or unreachable →
//! 503 `granulator_unavailable`; no answer within `GRANULATOR_TIMEOUT_MS` →
//! 504 `granulator_timeout`. No message carries the shared secret.

use crate::types::env::{App, GRANULATOR, SERVICE_NAME};
use bitware_kit::error::{AppError, AppResult, Kind};
use bitware_kit::peer::{Peer, PeerFault};
use serde_json::{json, Value};

/// The granulator as this worker asks it (the kit's `Peer`).
fn granulator(app: &App, timeout_ms: u64) -> Peer<'_> {
    Peer {
        env: &app.env,
        binding: GRANULATOR,
        name: "granulator",
        worker_id: SERVICE_NAME,
        shared_secret: app.config.shared_secret.as_ref().map(|s| s.expose()),
        timeout_ms,
    }
}

/// The outline of granulator job `granulator_job_id`, asked for as this
/// worker (acting for `client_id` when the job runs for a client, so the
/// granulator scopes it to that client's jobs).
pub async fn fetch_structure(
    app: &App,
    granulator_job_id: i64,
    client_id: Option<&str>,
) -> AppResult<Value> {
    let timeout_ms = app.config.granulator_timeout_ms;
    let path = format!("/api/jobs/{granulator_job_id}/structure");
    match granulator(app, timeout_ms)
        .get(&path, &app.request_id, client_id)
        .await
    {
        Ok(reply) => read_structure(granulator_job_id, reply.status, &reply.body),
        Err(PeerFault::Timeout) => Err(AppError::new(
            Kind::GatewayTimeout,
            "granulator_timeout",
            format!("the granulator did not answer within {timeout_ms} ms for the outline of its job {granulator_job_id}"),
        )),
        Err(fault) => Err(unavailable(&fault.describe("the granulator", timeout_ms))),
    }
}

fn unavailable(why: &str) -> AppError {
    AppError::unavailable(
        "granulator_unavailable",
        format!("{why}; the stored outline cannot be fetched now, retry later"),
    )
}

/// What the granulator's answer to `GET /api/jobs/{id}/structure` means for
/// this request.
pub fn read_structure(job_id: i64, status: u16, body: &str) -> AppResult<Value> {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    // Only the granulator's own error code is echoed (never its message).
    let their_code = parsed
        .as_ref()
        .and_then(|v| v["code"].as_str())
        .map(str::to_string);
    let details = json!({"granulatorJobId": job_id, "granulatorStatus": status, "granulatorCode": their_code});
    match status {
        200 => {
            let Some(v) = parsed.filter(Value::is_object) else {
                return Err(unavailable("the granulator answered with something that is not JSON").with_details(details));
            };
            if v["complete"] == false {
                return Err(not_ready(job_id, details));
            }
            match v.get("structure") {
                Some(s) if v["complete"] == true && s.is_object() => Ok(s.clone()),
                _ => Err(unavailable(
                    "the granulator's answer holds no complete structure",
                )
                .with_details(details)),
            }
        }
        409 => Err(not_ready(job_id, details)),
        404 => Err(AppError::new(
            Kind::Unprocessable,
            "structure_reference_not_found",
            format!(
                "structureReference: the granulator has no job {job_id} for this client; send the outline inline (`structure`) or the reference of a job that exists"
            ),
        )
        .with_details(details)),
        401 | 403 => Err(AppError::new(
            Kind::BadGateway,
            "granulator_refused",
            format!(
                "the granulator refused this worker's credentials (HTTP {status}): SHARED_SECRET differs between the workers; an operator must set the same secret on both"
            ),
        )
        .with_details(details)),
        _ => Err(unavailable(&format!("the granulator answered HTTP {status}")).with_details(details)),
    }
}

fn not_ready(job_id: i64, details: Value) -> AppError {
    AppError::conflict(
        "structure_not_ready",
        format!("the granulator's job {job_id} has not completed its outline; retry once it has"),
    )
    .with_details(details)
}

/// `/health`: any granulator answer below 500 to `GET /` within
/// `timeout_ms` counts.
pub async fn reachable(app: &App, timeout_ms: u64) -> Result<(), String> {
    granulator(app, timeout_ms).reachable().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_job_gives_its_structure() {
        let body = r#"{"jobId":7,"structureType":"course","source":"kv","complete":true,"structure":{"title":"T","modules":[]}}"#;
        assert_eq!(read_structure(7, 200, body).unwrap()["title"], "T");
    }

    #[test]
    fn a_running_or_unfinished_job_is_not_ready() {
        let running = r#"{"jobId":7,"complete":false,"branches":[]}"#;
        for (status, body) in [(200, running), (409, r#"{"code":"job_not_completed"}"#)] {
            let e = read_structure(7, status, body).unwrap_err();
            assert_eq!((e.status(), e.code), (409, "structure_not_ready"));
        }
    }

    #[test]
    fn each_granulator_answer_maps_to_its_error() {
        let cases = [
            (404, "{}", 422, "structure_reference_not_found"),
            (401, "{}", 502, "granulator_refused"),
            (403, "{}", 502, "granulator_refused"),
            (500, "{}", 503, "granulator_unavailable"),
            (503, "oops", 503, "granulator_unavailable"),
            (200, "<html>", 503, "granulator_unavailable"),
            (200, r#"{"complete":true}"#, 503, "granulator_unavailable"),
        ];
        for (status, body, want, code) in cases {
            let e = read_structure(42, status, body).unwrap_err();
            assert_eq!((e.status(), e.code), (want, code), "{status} {body}");
        }
        let e = read_structure(42, 404, "{}").unwrap_err();
        assert!(e.message.contains("42"), "{}", e.message);
        assert_eq!(e.details.unwrap()["granulatorJobId"], 42);
    }
}
