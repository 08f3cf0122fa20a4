//! `GET /api/jobs/{id}/events`: a job's status as a stream of events, read
//! from its row until it ends.
//!
//! Streams are bounded, since each one polls D1 for as long as it is open:
//! a tenant holds at most `EVENT_STREAMS_PER_TENANT` at once (a lease each in
//! D1, renewed while the stream runs; a client that went away stops renewing
//! and its lease stops counting after [`LEASE_MS`]); beyond it, 429 with
//! `Retry-After`. The poll backs off from 250 ms to 1 s while nothing
//! changes, and a stream ends after `EVENTS_MAX_MS` (5 minutes by default)
//! with a `timeout` event and a `retry:` hint for the client's reconnect.

use crate::services::database::Database;
use crate::services::jobs::{job_progress, scoped};
use crate::services::timing;
use crate::types::env::App;
use crate::types::job::{JobStatus, Stage};
use bitware_kit::error::{AppError, AppResult, Kind};
use serde::Serialize;
use serde_json::{json, Value};

/// How often the events stream looks at the job: from the first to the
/// slowest poll, doubling while nothing changes; and the longest it stays
/// quiet (a `progress` event at least this often while the job runs).
const EVENTS_POLL_MS: u64 = 250;
const EVENTS_POLL_MAX_MS: u64 = 1_000;
const EVENTS_EVERY_MS: u64 = 1_000;
/// A stream's lease on its tenant's allowance lasts this long unless renewed
/// (renewed every `LEASE_RENEW_MS` while the stream runs).
pub const LEASE_MS: u64 = 30_000;
const LEASE_RENEW_MS: u64 = 10_000;
/// The reconnect delay a stream that reached its maximum suggests (`retry:`).
pub const RECONNECT_MS: u64 = 2_000;

/// One Server-Sent Event of a job's stream.
pub struct JobEvent {
    pub name: &'static str,
    pub data: Value,
    /// `retry:` (ms) for the client's reconnect: on a stream that ends
    /// before its job.
    pub retry_ms: Option<u64>,
}

impl JobEvent {
    /// The event as it goes on the wire.
    pub fn to_sse(&self) -> String {
        let retry = self
            .retry_ms
            .map(|ms| format!("retry: {ms}\n"))
            .unwrap_or_default();
        format!("{retry}event: {}\ndata: {}\n\n", self.name, self.data)
    }
}

struct EventsState {
    db: Database,
    job_id: i64,
    scope: Option<String>,
    lease: String,
    lease_renewed: u64,
    max_ms: u64,
    poll_ms: u64,
    last_sent: u64,
    last_key: Option<(Stage, JobStatus)>,
    last_seen: Option<Value>,
    opened: u64,
    finished: bool,
    /// Partial results (issue 24): whether the stream saw the job run, the
    /// job row's `updated_at` when branches were last read, the last branch
    /// row sent, and the events waiting to go out (branches, then the
    /// final event).
    watched: bool,
    branches_read_at: Option<String>,
    branches_after: i64,
    pending: std::collections::VecDeque<JobEvent>,
}

fn event(name: &'static str, data: &impl Serialize) -> JobEvent {
    JobEvent {
        name,
        data: serde_json::to_value(data).unwrap_or(Value::Null),
        retry_ms: None,
    }
}

/// The next poll's pause: back to the first when the job moved, else
/// doubled up to the slowest.
fn next_poll(current: u64, changed: bool) -> u64 {
    if changed {
        EVENTS_POLL_MS
    } else {
        (current * 2).min(EVENTS_POLL_MAX_MS)
    }
}

/// The events of job `id` (checked in the caller's scope first: 404 before
/// any stream opens; 429 when `tenant` holds its allowance of streams):
/// `progress` at least every second while it runs and within a poll of a
/// change, `branch` for each level-1 branch as it becomes final (those
/// already final first, for a late client), then one `completed` or
/// `failed` event, then the end (or
/// `timeout` with a `retry:` hint after the stream's maximum, `error` if the
/// job cannot be read).
pub async fn events(
    app: &App,
    id: i64,
    scope: Option<String>,
    tenant: &str,
) -> AppResult<impl futures_util::Stream<Item = JobEvent>> {
    let db = Database::new(app)?;
    let job = scoped(&db, id, scope.as_deref()).await?;
    let settings = &app.config.jobs;
    let now = timing::now_ms();
    let lease = uuid::Uuid::new_v4().to_string();
    if !db
        .take_stream_lease(
            &lease,
            tenant,
            settings.event_streams_per_tenant,
            now,
            now + LEASE_MS,
        )
        .await?
    {
        return Err(AppError::new(
            Kind::TooManyRequests,
            "too_many_streams",
            format!(
                "{} events streams are open for this tenant, the most allowed at once; close one, or poll /api/jobs/{id}/status",
                settings.event_streams_per_tenant
            ),
        )
        .with_details(json!({
            "limit": settings.event_streams_per_tenant,
            "retryAfterSeconds": LEASE_MS / 1_000,
        })));
    }
    let state = EventsState {
        db,
        job_id: job.id,
        scope,
        lease,
        lease_renewed: now,
        max_ms: settings.events_max_ms,
        poll_ms: EVENTS_POLL_MS,
        last_sent: 0,
        last_key: None,
        last_seen: None,
        opened: now,
        finished: false,
        watched: false,
        branches_read_at: None,
        branches_after: 0,
        pending: std::collections::VecDeque::new(),
    };
    Ok(futures_util::stream::unfold(state, |mut st| async move {
        if st.finished && st.pending.is_empty() {
            return None;
        }
        let event = match st.pending.pop_front() {
            Some(event) => event,
            None => next_event(&mut st).await,
        };
        if st.finished && st.pending.is_empty() {
            // Best effort: a lease not released stops counting when it expires.
            let _ = st.db.release_stream_lease(&st.lease).await;
        }
        Some((event, st))
    }))
}

/// Poll the job until there is something to send.
async fn next_event(st: &mut EventsState) -> JobEvent {
    loop {
        let now = timing::now_ms();
        if now.saturating_sub(st.lease_renewed) >= LEASE_RENEW_MS {
            st.lease_renewed = now;
            let _ = st.db.renew_stream_lease(&st.lease, now + LEASE_MS).await;
        }
        let job = match st.db.job(st.job_id, st.scope.as_deref()).await {
            Ok(Some(job)) => job,
            Ok(None) | Err(_) => {
                st.finished = true;
                let data = json!({"jobId": st.job_id, "error": "the job could not be read"});
                return JobEvent {
                    name: "error",
                    data,
                    retry_ms: None,
                };
            }
        };
        let body = job_progress(&job, now);
        let running = job.status == JobStatus::Processing;
        // Branches final since they were last read: while the job runs,
        // when its row moved (its progress is written at least once a second
        // while it streams), and once more as it ends for a stream that
        // watched it run.
        st.watched |= running;
        let moved = st.branches_read_at.as_deref() != Some(job.updated_at.as_str());
        if (running && moved) || (!running && st.watched) {
            st.branches_read_at = Some(job.updated_at.clone());
            queue_branches(st, job.run_count).await;
        }
        if !running {
            // The last event is named for the end: `completed` or `failed`.
            st.finished = true;
            st.pending.push_back(event(job.status.as_str(), &body));
        }
        if let Some(next) = st.pending.pop_front() {
            return next;
        }
        let key = (body.stage, job.status);
        let seen = serde_json::to_value(&body).ok().map(|mut v| {
            // What moves by itself is not a change.
            if let Some(o) = v.as_object_mut() {
                o.remove("elapsedMs");
                o.remove("estimatedRemainingMs");
                o.remove("updatedAt");
            }
            v
        });
        let changed = st.last_seen != seen;
        st.last_seen = seen;
        st.poll_ms = next_poll(st.poll_ms, changed);
        if st.last_key != Some(key) || now.saturating_sub(st.last_sent) >= EVENTS_EVERY_MS {
            st.last_key = Some(key);
            st.last_sent = now;
            return event("progress", &body);
        }
        if now.saturating_sub(st.opened) > st.max_ms {
            st.finished = true;
            return JobEvent {
                retry_ms: Some(RECONNECT_MS),
                ..event("timeout", &body)
            };
        }
        timing::sleep(st.poll_ms).await;
    }
}

/// Queue an `event: branch` for every branch of run `run` written since the
/// last one sent. Best effort: a failed read is tried again at the next poll.
async fn queue_branches(st: &mut EventsState, run: u32) {
    let Ok(rows) = st
        .db
        .branches_since(st.job_id, run, st.branches_after)
        .await
    else {
        return;
    };
    for (id, branch) in rows {
        st.branches_after = st.branches_after.max(id);
        st.pending.push_back(event("branch", &branch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_backs_off_while_nothing_changes_and_resets_on_a_change() {
        let mut poll = EVENTS_POLL_MS;
        let mut seen = vec![];
        for _ in 0..5 {
            poll = next_poll(poll, false);
            seen.push(poll);
        }
        assert_eq!(seen, vec![500, 1_000, 1_000, 1_000, 1_000]);
        assert_eq!(next_poll(1_000, true), EVENTS_POLL_MS);
        const {
            assert!(
                EVENTS_POLL_MAX_MS <= EVENTS_EVERY_MS,
                "a heartbeat is never missed"
            )
        };
    }

    #[test]
    fn a_stream_that_ends_early_tells_the_client_when_to_reconnect() {
        let e = JobEvent {
            retry_ms: Some(RECONNECT_MS),
            ..event("timeout", &json!({"jobId": 7}))
        };
        assert_eq!(
            e.to_sse(),
            "retry: 2000\nevent: timeout\ndata: {\"jobId\":7}\n\n"
        );
        assert_eq!(
            event("progress", &json!({})).to_sse(),
            "event: progress\ndata: {}\n\n"
        );
    }
}
