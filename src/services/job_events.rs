//! `GET /api/jobs/{id}/events`: a job's status as a stream of events, read
//! from its row until it ends.

use crate::services::database::Database;
use crate::services::jobs::{job_progress, scoped};
use crate::services::timing;
use crate::types::env::App;
use crate::types::job::{JobStatus, Stage};
use bitware_kit::error::AppResult;
use serde::Serialize;
use serde_json::Value;

/// How often the events stream looks at the job, and the longest it stays
/// quiet (a `progress` event at least this often while the job runs).
const EVENTS_POLL_MS: u64 = 250;
const EVENTS_EVERY_MS: u64 = 1_000;
/// An events stream ends after this long even if the job has not.
const EVENTS_MAX_MS: u64 = 15 * 60 * 1_000;

/// One Server-Sent Event of a job's stream.
pub struct JobEvent {
    pub name: &'static str,
    pub data: Value,
}

struct EventsState {
    db: Database,
    job_id: i64,
    scope: Option<String>,
    last_sent: u64,
    last_key: Option<(Stage, JobStatus)>,
    opened: u64,
    finished: bool,
}

fn event(name: &'static str, data: &impl Serialize) -> JobEvent {
    JobEvent {
        name,
        data: serde_json::to_value(data).unwrap_or(Value::Null),
    }
}

/// The events of job `id` (checked in the caller's scope first: 404 before
/// any stream opens): `progress` at least every second while it runs and
/// within a poll of a stage change, then one `completed` or `failed` event,
/// then the end (or `timeout` after 15 minutes, `error` if it cannot be read).
pub async fn events(
    app: &App,
    id: i64,
    scope: Option<String>,
) -> AppResult<impl futures_util::Stream<Item = JobEvent>> {
    let db = Database::new(app)?;
    let job = scoped(&db, id, scope.as_deref()).await?;
    let state = EventsState {
        db,
        job_id: job.id,
        scope,
        last_sent: 0,
        last_key: None,
        opened: timing::now_ms(),
        finished: false,
    };
    Ok(futures_util::stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        loop {
            let now = timing::now_ms();
            let job = match st.db.job(st.job_id, st.scope.as_deref()).await {
                Ok(Some(job)) => job,
                Ok(None) | Err(_) => {
                    st.finished = true;
                    let data = serde_json::json!({"jobId": st.job_id, "error": "the job could not be read"});
                    return Some((
                        JobEvent {
                            name: "error",
                            data,
                        },
                        st,
                    ));
                }
            };
            let body = job_progress(&job, now);
            if job.status != JobStatus::Processing {
                // The last event is named for the end: `completed` or `failed`.
                st.finished = true;
                return Some((event(job.status.as_str(), &body), st));
            }
            let key = (body.stage, job.status);
            let changed = st.last_key != Some(key);
            if changed || now.saturating_sub(st.last_sent) >= EVENTS_EVERY_MS {
                st.last_key = Some(key);
                st.last_sent = now;
                return Some((event("progress", &body), st));
            }
            if now.saturating_sub(st.opened) > EVENTS_MAX_MS {
                st.finished = true;
                return Some((event("timeout", &body), st));
            }
            timing::sleep(EVENTS_POLL_MS).await;
        }
    }))
}
