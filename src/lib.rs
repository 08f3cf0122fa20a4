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

use bitware_kit::ai::gate::HeaderGate;
use bitware_kit::error::AppResult;
use bitware_kit::front::{self, Admitted, Answer};
use bitware_kit::jobs::{JobStore as _, SpendLedger as _};
use handlers::{admin, alerts, economy, execute, jobs, monitoring, stats, templates, Call};
use helpers::http;
use routes::{RouteId, ROUTES};
use types::env::{App, Config};
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
    let started = services::timing::now_ms();
    // The method as sent (workers-rs' `Method` reads unknown ones as GET).
    let method = req.inner().method();
    if method == "OPTIONS" {
        return http::preflight(&request_id);
    }
    let app = App {
        config: Config::of_isolate(&env),
        env,
        request_id,
        gate: HeaderGate::new(),
    };
    if req.path() == PANIC_PATH {
        test_panic(&app);
    }
    let mut log = helpers::log::RequestLog::new(&app.request_id, &method, &req.path());
    let answer = handle(&app, &ctx, &mut req, &mut log).await;
    let response = front::respond(answer, &app.request_id, &mut log, started);
    // Authenticated and admin requests are counted per 10 seconds for the
    // alerts' 5xx rate and KAM failures, after the response (services::alerts).
    if matches!(log.access, Some("authenticated" | "admin")) {
        let status = response.as_ref().map_or(500, |r| r.status_code());
        let error_code = log.error_code;
        ctx.wait_until(
            async move { services::alerts::record_request(&app, status, error_code).await },
        );
    }
    response
}

/// The development-only route that panics, to test containment end to end
/// (tests/panic.rs): it exists when `ENVIRONMENT` is `development` and
/// `TEST_PANIC_ROUTE` is `enabled` (scripts/lib.sh start_stack), otherwise
/// the path is an unknown route like any other.
const PANIC_PATH: &str = "/__test/panic";

fn test_panic(app: &App) {
    let enabled = app.config.environment == "development"
        && app
            .env
            .var("TEST_PANIC_ROUTE")
            .is_ok_and(|v| v.to_string() == "enabled");
    if enabled {
        panic_on_purpose();
    }
}

#[allow(clippy::panic, reason = "the test route's one purpose")]
fn panic_on_purpose() -> ! {
    panic!("test-panic-route: a panic on purpose, with text no answer may show");
}

/// Jobs the sweep ends at most per run (each is one D1 batch; the rest wait
/// for the next run, 5 minutes later).
const SWEEP_LIMIT: u32 = 200;

/// Cron (wrangler.toml `[triggers]`): end jobs abandoned past their deadline.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let app = App {
        config: Config::of_isolate(&env),
        env,
        request_id: "scheduled".into(),
        gate: HeaderGate::new(),
    };
    match services::database::Database::new(&app) {
        Ok(db) => {
            let now = services::timing::now_ms();
            match db
                .fail_abandoned_jobs(now, &services::timing::day_of(now), SWEEP_LIMIT)
                .await
            {
                Ok(n) => worker::console_log!("scheduled: {n} abandoned job(s) marked failed"),
                Err(e) => worker::console_error!("scheduled: sweep failed: {e}"),
            }
            match db.release_expired(now).await {
                Ok(n) => {
                    worker::console_log!("scheduled: {n} expired spend reservation(s) released")
                }
                Err(e) => worker::console_error!("scheduled: reservation sweep failed: {e}"),
            }
            if let Err(e) = db.clear_ended_branches().await {
                worker::console_error!("scheduled: clearing partial branches failed: {e}");
            }
        }
        Err(e) => worker::console_error!("scheduled: {e}"),
    }
    if let Err(e) = services::alerts::prune(&app).await {
        worker::console_error!("scheduled: pruning request counts failed: {e}");
    }
    // The alerts over the default window, one JSON line per signal (`event:
    // "alert"`): what Workers Logs queries and notifications watch (docs/runbook.md).
    match services::alerts::report(&app, app.config.alerts.window_seconds).await {
        Ok(report) => {
            for line in report.log_lines("scheduled") {
                worker::console_log!("{line}");
            }
        }
        Err(e) => worker::console_error!("scheduled: alerts failed: {e}"),
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
        gate: HeaderGate::new(),
    };
    // The kit's batch: job messages run concurrently, dead letters end
    // their runs, each acked or retried as the kit's consumer says.
    bitware_kit::entry::job_batch(
        batch,
        async |m| services::queue_jobs::consume(&app, m).await,
        async |m| services::queue_jobs::dead_letter(&app, m).await,
    )
    .await
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
        RouteId::JobCancel => jobs::cancel(&call).await,
        RouteId::ValidationHistory => jobs::validation_history(&call).await,
        RouteId::Stats => stats::client(&call).await,
        RouteId::EconomyStats => economy::stats(&call).await,
        RouteId::EconomyEstimate => economy::estimate(&call).await,
        RouteId::EconomyPricing => economy::pricing(&call).await,
        RouteId::AdminStats => stats::admin(&call).await,
        RouteId::AdminTemplates => admin::templates(&call).await,
        RouteId::AdminAnalytics => stats::analytics(&call).await,
        RouteId::AdminAlerts => alerts::alerts(&call).await,
    };
    reply.map(Answer::Json)
}
