//! `GET /api/jobs/{id}/events`: a job as Server-Sent Events, read from the
//! kit's `jobs` table until it ends: a `progress` event (the job's view)
//! within a poll of every change and at least every second while it runs,
//! then one end event — `completed`, `failed` or `cancelled` (once its run
//! settled) — and the end of the stream. A stream is bounded: after
//! `max_ms` it ends with `timeout` and a `retry:` hint for the reconnect;
//! a job that cannot be read ends it with `error`.

use super::store::JobStatus;
use super::view::{JobRow, JobView};
use serde_json::Value;

/// The first pause between looks at the row, the slowest (doubling while
/// nothing changes), and the longest a running job's stream stays quiet.
pub const POLL_MS: u64 = 250;
pub const POLL_MAX_MS: u64 = 1_000;
pub const EVERY_MS: u64 = 1_000;
/// The reconnect delay a stream that reached its maximum suggests.
pub const RECONNECT_MS: u64 = 2_000;

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub name: &'static str,
    pub data: Value,
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

/// What a stream remembers between looks.
#[derive(Debug, Default)]
pub struct Seen {
    key: Option<(JobStatus, String, i64)>,
    sent_at: Option<u64>,
}

/// The event (if any) for the row as read at `now_ms`, and whether it ends
/// the stream.
pub fn next_event(seen: &mut Seen, row: &JobRow, now_ms: u64) -> Option<(JobEvent, bool)> {
    let view = JobView::of(row, now_ms);
    let data = serde_json::to_value(&view).unwrap_or(Value::Null);
    if JobView::ended(row) {
        let name = match row.status {
            JobStatus::Completed => "completed",
            JobStatus::Cancelled => "cancelled",
            _ => "failed",
        };
        return Some((
            JobEvent {
                name,
                data,
                retry_ms: None,
            },
            true,
        ));
    }
    let key = (row.status, row.stage.clone(), row.progress_tokens);
    let changed = seen.key.as_ref() != Some(&key);
    let quiet = seen
        .sent_at
        .is_none_or(|at| now_ms.saturating_sub(at) >= EVERY_MS);
    if !changed && !quiet {
        return None;
    }
    seen.key = Some(key);
    seen.sent_at = Some(now_ms);
    Some((
        JobEvent {
            name: "progress",
            data,
            retry_ms: None,
        },
        false,
    ))
}

/// The last event of a stream that reached its maximum.
pub fn timeout_event(job_id: i64, max_ms: u64) -> JobEvent {
    JobEvent {
        name: "timeout",
        data: serde_json::json!({"jobId": job_id, "message": format!("the stream ends after {max_ms} ms; reconnect to follow the job")}),
        retry_ms: Some(RECONNECT_MS),
    }
}

/// The events of job `id` (read in `scope` first: a 404 before any stream
/// opens) from the D1 binding `binding`, for at most `max_ms`.
#[cfg(feature = "worker")]
pub async fn events(
    env: worker::Env,
    binding: &'static str,
    schema: super::JobSchema,
    id: i64,
    scope: Option<String>,
    max_ms: u64,
) -> crate::error::AppResult<impl futures_util::Stream<Item = JobEvent>> {
    use crate::d1::D1;
    use crate::timing::{now_ms, sleep};
    let db = D1::open(&env, binding)?;
    super::view::read_job(&db, schema, id, scope.as_deref()).await?;
    struct State {
        db: D1,
        scope: Option<String>,
        seen: Seen,
        opened: u64,
        poll_ms: u64,
        done: bool,
    }
    let state = State {
        db,
        scope,
        seen: Seen::default(),
        opened: now_ms(),
        poll_ms: POLL_MS,
        done: false,
    };
    Ok(futures_util::stream::unfold(
        state,
        move |mut st| async move {
            if st.done {
                return None;
            }
            loop {
                let now = now_ms();
                if now.saturating_sub(st.opened) >= max_ms {
                    st.done = true;
                    return Some((timeout_event(id, max_ms), st));
                }
                let row = match super::view::read_job(&st.db, schema, id, st.scope.as_deref()).await
                {
                    Ok(row) => row,
                    Err(e) => {
                        st.done = true;
                        let data = serde_json::json!({"jobId": id, "error": e.message});
                        let event = JobEvent {
                            name: "error",
                            data,
                            retry_ms: Some(RECONNECT_MS),
                        };
                        return Some((event, st));
                    }
                };
                if let Some((event, last)) = next_event(&mut st.seen, &row, now) {
                    st.done = last;
                    st.poll_ms = POLL_MS;
                    return Some((event, st));
                }
                sleep(st.poll_ms).await;
                st.poll_ms = (st.poll_ms * 2).min(POLL_MAX_MS);
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::view::JobRow;

    fn row(status: JobStatus, tokens: i64) -> JobRow {
        serde_json::from_value(serde_json::json!({
            "id": 3, "client_id": "c", "execution_id": "e", "status": status, "stage": "running",
            "run_mode": "inline", "run_count": 1, "provider": null, "model": null, "tokens_input": 0,
            "tokens_output": 0, "cost_usd": null, "failure_code": null, "failure_reason": null,
            "cancelled_by": "client:c", "cancelled_at": "t", "progress_tokens": tokens, "expected_tokens": 100,
            "submitted_at_ms": 0, "started_at_ms": 0, "heartbeat_at_ms": null, "processing_time_ms": null,
            "created_at": "t", "updated_at": "t", "completed_at": null
        }))
        .unwrap()
    }

    #[test]
    fn progress_goes_out_on_a_change_or_each_second_then_one_end_event() {
        let mut seen = Seen::default();
        let (first, end) = next_event(&mut seen, &row(JobStatus::Processing, 0), 0).unwrap();
        assert_eq!((first.name, end), ("progress", false));
        assert!(next_event(&mut seen, &row(JobStatus::Processing, 0), 500).is_none());
        let (moved, _) = next_event(&mut seen, &row(JobStatus::Processing, 40), 600).unwrap();
        assert_eq!(moved.data["percent"], 40);
        assert!(next_event(&mut seen, &row(JobStatus::Processing, 40), 1_600).is_some());
        // Cancelled but not yet settled: still progress; settled: the end.
        let mut cancelled = row(JobStatus::Cancelled, 40);
        assert_eq!(
            next_event(&mut seen, &cancelled, 1_700).unwrap().0.name,
            "progress"
        );
        cancelled.completed_at = Some("t".into());
        let (last, end) = next_event(&mut seen, &cancelled, 1_800).unwrap();
        assert_eq!((last.name, end), ("cancelled", true));
        assert!(last.to_sse().starts_with("event: cancelled\ndata: {"));
        assert!(timeout_event(3, 10)
            .to_sse()
            .starts_with("retry: 2000\nevent: timeout\n"));
    }
}
