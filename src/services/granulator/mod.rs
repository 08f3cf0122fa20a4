//! The granulation pipeline behind `POST /api/execute` (seed §2.2, §8, §12).
//!
//! claim the job (idempotent per client + execution id) → render the
//! template's prompt → provider chain with the type's JSON schema →
//! normalise → rule check (violations go back to the model once) → enforce
//! constraints → quality score → optional validation (a failed one
//! re-granulates once with the feedback) → estimates and metadata → storage
//! tier → one atomic batch that writes elements, job, attempts and analytics.
//! Any failure ends the job `failed` with its reason and its attempts' usage;
//! a cancel (`POST /api/jobs/{id}/cancel`) stops the run before its next model
//! call or at its stream's next chunk, and it settles `cancelled`.
//! A large outline's first draft may be fanned out instead (`fanout.rs`): a
//! skeleton call, then its branches and root fields in parallel, merged.

mod fanout;
mod finish;
mod job;
mod pipeline;
mod plan;
pub mod ports;
mod revalidate;
mod submit;
mod wait;

#[cfg(test)]
mod fanout_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod memory;
#[cfg(test)]
mod tests;

pub use plan::chain_error;
pub use revalidate::{load_structure, revalidate, with_structure, Revalidated};
pub use wait::{cancelled_error, failure_error, still_running, Waited};

use crate::services::ai_provider::runtime::WorkerRuntime;
use crate::services::database::Database;
use crate::services::progress::Placement;
use crate::services::spend::Payer;
use crate::services::timing::WallClock;
use crate::types::api::JobRequest;
use crate::types::env::App;
use bitware_kit::error::AppResult;
use plan::Plan;
use ports::{WorkerPorts, WorkerStructures, WorkerTemplates};
use serde_json::Value;

/// Time a crashed run keeps its claim after the request deadline.
const ABANDON_GRACE_MS: u64 = 30_000;

/// What became of a submitted granulation: the kit's.
pub use bitware_kit::jobs::submit::Submitted;

/// A claimed job's plan, so an inline run starts without reading it back.
pub struct Prepared {
    plan: Plan,
    client_id: String,
    execution_id: String,
}

fn worker_ports<'a>(
    app: &'a App,
    db: &'a Database,
    runtime: &'a WorkerRuntime<'a>,
) -> WorkerPorts<'a> {
    ports::Ports {
        config: &app.config,
        runtime,
        jobs: db,
        structures: WorkerStructures { app },
        templates: WorkerTemplates { app, db },
        overbilled: std::cell::RefCell::default(),
        cancel: ports::RunCancel::default(),
    }
}

/// Check a granulation request and claim its job (`submit::submit` on the
/// worker's bindings).
pub async fn submit(
    app: &App,
    db: &Database,
    payer: &Payer,
    request: &JobRequest,
    execution_id: Option<String>,
    async_requested: bool,
) -> AppResult<(Submitted, Placement, Option<Prepared>)> {
    let runtime = WorkerRuntime::with_gate(&app.env, app.gate.clone());
    let ports = worker_ports(app, db, &runtime);
    submit::submit(&ports, payer, request, execution_id, async_requested).await
}

/// Run a claimed job to its end (inline or in the queue consumer): the
/// stored request is planned again, generated with live progress, and the
/// job ends `completed` or `failed`. Owns its `App`, so it can outlive the
/// request that started it.
///
/// Also returns the D1 round trips the run made (the inline path reports them
/// in its request's `X-D1-Round-Trips`).
pub async fn run_job(
    app: App,
    job_id: i64,
    run: u32,
    prepared: Option<Prepared>,
) -> (AppResult<Value>, u32) {
    let db = match Database::new(&app) {
        Ok(db) => db,
        Err(e) => return (Err(e), 0),
    };
    let result = run_with(&app, &db, job_id, run, prepared).await;
    (result, db.round_trips())
}

async fn run_with(
    app: &App,
    db: &Database,
    job_id: i64,
    run: u32,
    prepared: Option<Prepared>,
) -> AppResult<Value> {
    let runtime = WorkerRuntime::with_gate(&app.env, app.gate.clone());
    let ports = worker_ports(app, db, &runtime);
    let start = ports.now_ms();
    let prepared = match prepared {
        Some(p) => p,
        None => match submit::prepare(&ports, job_id, run, start).await? {
            Ok(p) => p,
            Err(error) => return Err(error),
        },
    };
    job::run_prepared(&ports, job_id, run, prepared, start).await
}

/// Wait for a job to end, looking at its row with a growing pause, until
/// `until_ms`.
pub async fn wait_for(db: &Database, job_id: i64, until_ms: u64) -> AppResult<Waited> {
    wait::wait_for(&WallClock, db, job_id, until_ms).await
}
