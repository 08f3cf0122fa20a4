//! bitware-content-generator: an AI Factory worker. A request walks `lib.rs` (the kit's
//! front door: route table, auth, dispatch) → `handlers/*` (parse, call one
//! service, shape the reply) → `services/*` (the work, SQL). What every
//! worker shares — auth and KAM, the error model, routing, CORS, request
//! ids, logs, storage tiering, the provider chain and the job lifecycle
//! (idempotent, budgeted, observable, cancellable long jobs) — is
//! `bitware_kit`. The entry points are the granulator's: `fetch` under the
//! kit's panic containment (`contain::fetch`), `queue` (the job queue and
//! its dead letters, `entry::job_batch`) and `scheduled` (the sweep).

// No unwrap, expect or panic in library code: a panic poisons the wasm instance
// (every request in flight on it fails). Tests may (clippy.toml).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod handlers;
pub mod helpers;
pub mod openapi;
pub mod routes;
pub mod services;
pub mod types;

use bitware_kit::error::AppResult;
use bitware_kit::front::{self, Admitted, Answer};
use bitware_kit::http;
use bitware_kit::jobs::queue::JobMessage;
use handlers::{admin, execute, jobs, monitoring, Call};
use routes::{RouteId, ROUTES};
use types::env::App;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::{
    event, Context, Env, MessageBatch, Request, Response, ScheduleContext, ScheduledEvent,
};

/// The `fetch` export, as `#[event(fetch)]` writes it but under the kit's
/// panic containment (`bitware_kit::contain`): a panic answers this request
/// with a JSON 500 and the others in flight with a JSON 503, then the
/// instance is reset.
#[wasm_bindgen]
pub fn fetch(
    req: worker::web_sys::Request,
    env: Env,
    ctx: worker::worker_sys::Context,
) -> worker::js_sys::Promise {
    bitware_kit::contain::fetch(req, env, ctx, serve)
}

async fn serve(
    mut req: Request,
    env: Env,
    ctx: Context,
    request_id: String,
) -> worker::Result<Response> {
    let started = bitware_kit::timing::now_ms();
    // The method as sent (workers-rs' `Method` reads unknown ones as GET).
    let method = req.inner().method();
    if method == "OPTIONS" {
        return http::preflight(&request_id);
    }
    let app = App::new(env, request_id);
    let mut log = bitware_kit::log::RequestLog::new(&app.request_id, &method, &req.path());
    let answer = handle(&app, &ctx, &mut req, &mut log).await;
    front::respond(answer, &app.request_id, &mut log, started)
}

/// Cron (wrangler.toml `[triggers]`): end runs abandoned past their
/// deadline, release expired spend reservations.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let work = services::job::Generate(App::new(env, "scheduled".into()));
    match bitware_kit::jobs::work::sweep(&work).await {
        Ok((abandoned, released)) => worker::console_log!(
            "scheduled: {abandoned} abandoned job(s) failed, {released} expired reservation(s) released"
        ),
        Err(e) => worker::console_error!("scheduled: sweep failed: {e}"),
    }
}

/// Queue consumer (wrangler.toml `[[queues.consumers]]`): jobs sent by
/// `POST /api/execute` run here; the dead-letter queue's messages end their
/// job `failed` (`bitware_kit::entry::job_batch`: concurrently, each acked
/// or retried as the kit's consumer says).
#[event(queue)]
async fn queue(batch: MessageBatch<JobMessage>, env: Env, _ctx: Context) -> worker::Result<()> {
    let work = services::job::Generate(App::new(env, "queue".into()));
    bitware_kit::entry::job_batch(
        batch,
        async |m| bitware_kit::jobs::work::consume(&work, m).await,
        async |m| bitware_kit::jobs::work::dead_letter(&work, m).await,
    )
    .await
}

async fn handle(
    app: &App,
    ctx: &Context,
    req: &mut Request,
    log: &mut bitware_kit::log::RequestLog,
) -> AppResult<Answer> {
    let limits = &app.config.limits;
    let Admitted {
        route,
        params,
        query: _,
        host: _,
        principal,
    } = front::admit(req, ROUTES, &app.kam(), log, |p| {
        limits.tier_of(p.kam_tier()).as_str()
    })
    .await?;
    let body = if route.id == RouteId::Execute {
        Some(http::read_json(req).await?)
    } else {
        None
    };
    let call = Call {
        app,
        ctx,
        principal: principal.as_ref(),
        params,
        body,
    };
    let reply = match route.id {
        RouteId::JobEvents => return jobs::events(&call).await.map(Answer::Built),
        RouteId::Root => monitoring::root(&call).await,
        RouteId::Health => monitoring::health(&call).await,
        RouteId::Help => monitoring::help(&call).await,
        RouteId::OpenApi => monitoring::openapi(&call).await,
        RouteId::Execute => {
            // A paid route: counted against the payer's tier before any work.
            let payer =
                bitware_kit::limits::payer(&app.kam(), call.principal()?, None, limits).await;
            bitware_kit::limits::check_rate_limit(&app.env, &payer).await?;
            let headers = req.headers();
            let request_id = headers.get("X-Request-ID").ok().flatten();
            let prefer = headers.get("Prefer").ok().flatten();
            execute::execute(&call, &payer, request_id.as_deref(), prefer.as_deref()).await
        }
        RouteId::Job => jobs::get(&call).await,
        RouteId::JobStatus => jobs::status(&call).await,
        RouteId::JobCancel => jobs::cancel(&call).await,
        RouteId::JobContent => jobs::content(&call).await,
        RouteId::AdminStats => admin::stats(&call).await,
    };
    reply.map(Answer::Json)
}
