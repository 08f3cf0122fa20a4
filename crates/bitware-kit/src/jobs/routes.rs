//! The job routes every worker on the kit's tables answers the same way,
//! in the caller's scope (another tenant's job is a 404 like a missing one):
//! `GET /api/jobs/{id}` (the job and, once completed, the result its
//! request answered), `GET /api/jobs/{id}/status` (`view::JobView`),
//! `GET /api/jobs/{id}/events` (`events`, as Server-Sent Events) and
//! `POST /api/jobs/{id}/cancel` (`cancel`). A worker's handlers pass the
//! job id and the caller; its route table and OpenAPI document list them.

use super::view::{read_job, JobView};
use super::work::Lifecycle;
use super::{cancel, events, JobSchema};
use crate::auth::Principal;
use crate::d1::bind::{i, ot};
use crate::d1::D1;
use crate::error::{AppError, AppResult};
use crate::http::Reply;
use crate::timing::{now_ms, WallClock};
use serde::Deserialize;
use serde_json::{json, Value};
use worker::Env;

/// Where a worker's jobs are: its env, its D1 binding and tables.
pub struct JobRoutes<'a> {
    pub env: &'a Env,
    pub db: &'static str,
    pub schema: JobSchema,
    /// The request's id (the events stream's response carries it).
    pub request_id: &'a str,
}

impl JobRoutes<'_> {
    fn store(&self) -> AppResult<Lifecycle> {
        Ok(Lifecycle {
            db: D1::open(self.env, self.db)?,
            schema: self.schema,
        })
    }

    /// The job and, once completed, the result its request answered.
    pub async fn get(&self, id: i64, scope: Option<&str>) -> AppResult<Reply> {
        let store = self.store()?;
        let row = read_job(&store.db, self.schema, id, scope).await?;
        let result = read_result(&store.db, self.schema, id, scope).await?;
        Ok(Reply::ok(
            json!({"job": JobView::of(&row, now_ms()), "result": result}),
        ))
    }

    pub async fn status(&self, id: i64, scope: Option<&str>) -> AppResult<Reply> {
        let store = self.store()?;
        let row = read_job(&store.db, self.schema, id, scope).await?;
        Reply::json(&JobView::of(&row, now_ms()))
    }

    /// The job as Server-Sent Events for at most `max_ms`.
    pub async fn events(
        &self,
        id: i64,
        scope: Option<String>,
        max_ms: u64,
    ) -> AppResult<worker::Response> {
        let stream =
            events::events(self.env.clone(), self.db, self.schema, id, scope, max_ms).await?;
        let bytes = futures_util::StreamExt::map(stream, |e| {
            Ok::<Vec<u8>, worker::Error>(e.to_sse().into_bytes())
        });
        crate::http::event_stream_response(bytes, self.request_id)
            .map_err(|e| AppError::internal(format!("opening the events stream: {e}")))
    }

    /// Cancel the job as `principal` (in its scope); the job's status once
    /// its run settled.
    pub async fn cancel(&self, id: i64, principal: &Principal, stall_ms: u64) -> AppResult<Reply> {
        let store = self.store()?;
        let scope = principal.scope();
        let row = cancel::cancel(
            &store,
            &WallClock,
            id,
            &cancel::cancelled_by(principal),
            stall_ms,
            async || read_job(&store.db, self.schema, id, scope.as_deref()).await,
        )
        .await?;
        Reply::json(&JobView::of(&row, now_ms()))
    }
}

/// The stored result of job `id` (`None` until it completed), in `scope`.
pub async fn read_result(
    db: &D1,
    schema: JobSchema,
    id: i64,
    scope: Option<&str>,
) -> AppResult<Option<Value>> {
    #[derive(Deserialize)]
    struct Stored {
        result_json: Option<String>,
    }
    let sql = format!(
        "SELECT result_json FROM {} WHERE id = ?1 AND (?2 IS NULL OR client_id = ?2)",
        schema.jobs
    );
    let row: Option<Stored> = db
        .first(
            "reading a job's result",
            db.stmt(&sql, &[i(id), ot(scope)])?,
        )
        .await?;
    Ok(row
        .and_then(|r| r.result_json)
        .and_then(|json| serde_json::from_str(&json).ok()))
}
