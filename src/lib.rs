//! bitware-content-granulator: turns a topic into a validated, hierarchical
//! outline (course, quiz, novel, workflow, knowledge map, learning path).
//!
//! A request walks `lib.rs` (route table, auth, dispatch) → `handlers/*`
//! (parse, call one service, shape the reply) → `services/*` (pipeline,
//! providers, storage, SQL). Pure logic — structure specs, normalisation,
//! rules, scoring, prompts, wire formats, retry policy, pricing — has no
//! `worker` types and is unit-tested natively.

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
use handlers::{admin, economy, execute, jobs, monitoring, stats, templates, Call};
use helpers::http;
use routes::{RouteId, ROUTES};
use types::env::{App, Config};
use worker::{
    event, Context, Env, MessageBatch, MessageExt, Request, Response, ScheduleContext,
    ScheduledEvent,
};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let started = services::timing::now_ms();
    let request_id = http::request_id(&req);
    if req.method() == worker::Method::Options {
        return http::preflight(&request_id);
    }
    let app = App {
        config: Config::of_isolate(&env),
        env,
        request_id,
    };
    let mut log =
        helpers::log::RequestLog::new(&app.request_id, req.method().as_ref(), &req.path());
    let answer = handle(&app, &ctx, &mut req, &mut log).await;
    front::respond(answer, &app.request_id, &mut log, started)
}

/// Cron (wrangler.toml `[triggers]`): end jobs abandoned past their deadline.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let app = App {
        config: Config::of_isolate(&env),
        env,
        request_id: "scheduled".into(),
    };
    match services::database::Database::new(&app) {
        Ok(db) => {
            let now = services::timing::now_ms();
            match db.fail_abandoned_jobs(now).await {
                Ok(n) => worker::console_log!("scheduled: {n} abandoned job(s) marked failed"),
                Err(e) => worker::console_error!("scheduled: sweep failed: {e}"),
            }
            match db.release_expired_reservations(now).await {
                Ok(n) => {
                    worker::console_log!("scheduled: {n} expired spend reservation(s) released")
                }
                Err(e) => worker::console_error!("scheduled: reservation sweep failed: {e}"),
            }
        }
        Err(e) => worker::console_error!("scheduled: {e}"),
    }
}

/// Routes that can start model calls (rate-limited per tenant and tier).
fn is_paid(id: RouteId) -> bool {
    matches!(id, RouteId::Execute | RouteId::Validate | RouteId::JobRetry)
}

/// Queue consumer (wrangler.toml `[[queues.consumers]]`): jobs sent by
/// `POST /api/execute` run here; the dead-letter queue's messages end their
/// job `failed`. A batch's messages run concurrently.
#[event(queue)]
async fn queue(
    batch: MessageBatch<services::queue_jobs::JobMessage>,
    env: Env,
    _ctx: Context,
) -> worker::Result<()> {
    let app = App {
        config: Config::of_isolate(&env),
        env,
        request_id: "queue".into(),
    };
    let dead_letters = batch.queue().ends_with("-dlq");
    let messages = batch.messages()?;
    let deliveries = futures_util::future::join_all(messages.iter().map(|m| {
        let app = &app;
        async move {
            if dead_letters {
                services::queue_jobs::dead_letter(app, m.body()).await
            } else {
                services::queue_jobs::consume(app, m.body()).await
            }
        }
    }))
    .await;
    for (message, delivery) in messages.iter().zip(deliveries) {
        match delivery {
            services::queue_jobs::Delivery::Ack => message.ack(),
            services::queue_jobs::Delivery::Retry => message.retry(),
        }
    }
    Ok(())
}

fn needs_body(id: RouteId) -> bool {
    matches!(
        id,
        RouteId::Execute | RouteId::Validate | RouteId::EconomyEstimate | RouteId::AdminTemplates
    )
}

async fn handle(
    app: &App,
    ctx: &Context,
    req: &mut Request,
    log: &mut helpers::log::RequestLog,
) -> AppResult<Answer> {
    let Admitted {
        route,
        params,
        query,
        host,
        principal,
    } = front::admit(req, ROUTES, &app.kam(), log, |p| {
        app.config.limits.tier_of(p.kam_tier()).as_str()
    })
    .await?;
    // Paid routes count against the caller's tier, before any work is done.
    if let (true, Some(p)) = (is_paid(route.id), principal.as_ref()) {
        let payer = bitware_kit::limits::payer(&app.kam(), p, None, &app.config.limits).await;
        services::spend::check_rate_limit(&app.env, &payer).await?;
    }
    let body = if needs_body(route.id) {
        Some(http::read_json(req).await?)
    } else {
        None
    };
    let call = Call {
        app,
        host,
        ctx,
        principal: principal.as_ref(),
        params,
        query,
        body,
    };
    let reply = match route.id {
        RouteId::JobEvents => return jobs::events(&call).await.map(Answer::Built),
        RouteId::OpenApi => return monitoring::openapi(&call).await.map(Answer::Built),
        RouteId::Root => monitoring::root(&call).await,
        RouteId::Health => monitoring::health(&call).await,
        RouteId::Help => monitoring::help(&call).await,
        RouteId::AiProviders => monitoring::ai_providers(&call).await,
        RouteId::Execute => {
            // Only execute reads these (idempotency key, async preference).
            let headers = req.headers();
            let request_id = headers.get("X-Request-ID").ok().flatten();
            let prefer = headers.get("Prefer").ok().flatten();
            execute::execute(&call, request_id.as_deref(), prefer.as_deref()).await
        }
        RouteId::Validate => execute::validate(&call).await,
        RouteId::Templates => templates::list(&call).await,
        RouteId::Template => templates::get(&call).await,
        RouteId::Jobs => jobs::list(&call).await,
        RouteId::Job => jobs::get(&call).await,
        RouteId::JobStatus => jobs::status(&call).await,
        RouteId::JobStructure => jobs::structure(&call).await,
        RouteId::JobRetry => jobs::retry(&call).await,
        RouteId::ValidationHistory => jobs::validation_history(&call).await,
        RouteId::Stats => stats::client(&call).await,
        RouteId::EconomyStats => economy::stats(&call).await,
        RouteId::EconomyEstimate => economy::estimate(&call).await,
        RouteId::EconomyPricing => economy::pricing(&call).await,
        RouteId::AdminStats => stats::admin(&call).await,
        RouteId::AdminTemplates => admin::templates(&call).await,
        RouteId::AdminAnalytics => stats::analytics(&call).await,
    };
    reply.map(Answer::Json)
}
