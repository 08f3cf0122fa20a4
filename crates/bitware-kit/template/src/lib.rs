//! __SERVICE__: an AI Factory worker. A request walks `lib.rs` (the kit's
//! front door: route table, auth, dispatch) → `handlers/*` (parse, call one
//! service, shape the reply) → `services/*` (the work, SQL). What every
//! worker shares — auth and KAM, the error model, routing, CORS, request
//! ids, logs, storage tiering — is `bitware_kit`.

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

pub use bitware_kit::error;

use bitware_kit::front::{self, Admitted, Answer};
use bitware_kit::http;
use error::AppResult;
use handlers::{admin, execute, monitoring, Call};
use routes::{RouteId, ROUTES};
use types::env::{App, Config};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::{Context, Env, Request, Response};

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
    _ctx: Context,
    request_id: String,
) -> worker::Result<Response> {
    let started = bitware_kit::timing::now_ms();
    // The method as sent (workers-rs' `Method` reads unknown ones as GET).
    let method = req.inner().method();
    if method == "OPTIONS" {
        return http::preflight(&request_id);
    }
    let app = App {
        config: Config::from_env(&env),
        env,
        request_id,
    };
    let mut log = bitware_kit::log::RequestLog::new(&app.request_id, &method, &req.path());
    let answer = handle(&app, &mut req, &mut log).await;
    front::respond(answer, &app.request_id, &mut log, started)
}

async fn handle(
    app: &App,
    req: &mut Request,
    log: &mut bitware_kit::log::RequestLog,
) -> AppResult<Answer> {
    let Admitted {
        route,
        params: _,
        query: _,
        host: _,
        principal,
    } = front::admit(req, ROUTES, &app.kam(), log, |p| {
        p.kam_tier()
            .and_then(routes::known_tier)
            .unwrap_or("standard")
    })
    .await?;
    let body = if route.id == RouteId::Execute {
        Some(http::read_json(req).await?)
    } else {
        None
    };
    let call = Call {
        app,
        principal: principal.as_ref(),
        body,
    };
    let reply = match route.id {
        RouteId::Root => monitoring::root(&call).await,
        RouteId::Health => monitoring::health(&call).await,
        RouteId::Help => monitoring::help(&call).await,
        RouteId::OpenApi => monitoring::openapi(&call).await,
        RouteId::Execute => execute::execute(&call).await,
        RouteId::AdminStats => admin::stats(&call).await,
    };
    reply.map(Answer::Json)
}
