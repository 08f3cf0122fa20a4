//! Panics contained, as far as `panic = "abort"` on wasm32 allows (`worker`
//! feature).
//!
//! A panic aborts the wasm instance: nothing of Rust runs after the panic
//! hook, and `worker` 0.8's reset hook (its own panic hook plus
//! wasm-bindgen's abort handler) makes the next invocation start on a fresh
//! instance. What the hook can still do is answer: [`fetch`] runs each
//! request as a future it tracks, with the JS promise the runtime waits on
//! in its hands, so the panic hook resolves
//!
//! - the request whose code panicked with a JSON 500 `internal_error`
//!   carrying its request id (header and `details.requestId`) and nothing of
//!   the panic's text (the log line has it);
//! - every other request in flight on the instance, which dies with it, with
//!   a JSON 503 `instance_reset` (with `Retry-After`) instead of no answer.
//!
//! The hook resolves with plain values (status, body text, headers), which
//! each request's own promise reaction turns into its `Response`: an I/O
//! object made in the panicking request's context cannot answer another.
//!
//! Jobs a queue delivery was running stop with the instance; the scheduled
//! sweep ends them `abandoned` and their idempotency key runs again.
//! (`worker-build --panic-unwind` would unwind instead, but needs a nightly
//! toolchain with `rust-src` and `-Zbuild-std`.)

use crate::error::{AppError, Kind};
use crate::http;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use worker::js_sys::{Function, Object, Promise, Reflect};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::{Response, Result};

#[wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    inline_js = "export function settle(p) {
  return p.then((v) => v instanceof Response ? v : new Response(v.body, { status: v.status, headers: v.headers }));
}"
)]
extern "C" {
    /// `p`'s answer as a `Response`, made in the request's own context.
    fn settle(p: &Promise) -> Promise;
}

/// A request in flight: its id and the `resolve` of the promise answering it.
struct InFlight {
    slot: u64,
    request_id: String,
    resolve: Function,
}

thread_local! {
    static IN_FLIGHT: RefCell<Vec<InFlight>> = const { RefCell::new(Vec::new()) };
    /// The request whose future is being polled (a panic is its code's).
    static POLLING: Cell<Option<u64>> = const { Cell::new(None) };
    static NEXT_SLOT: Cell<u64> = const { Cell::new(0) };
    static HOOKED: Cell<bool> = const { Cell::new(false) };
}

/// The body of a worker's `fetch` export: `serve(request, env, ctx,
/// request_id)` answers, under containment. The export is the worker's
/// (`#[event(fetch)]` writes its own, without this):
///
/// ```ignore
/// #[wasm_bindgen]
/// pub fn fetch(req: web_sys::Request, env: Env, ctx: worker_sys::Context) -> js_sys::Promise {
///     bitware_kit::contain::fetch(req, env, ctx, serve)
/// }
/// ```
pub fn fetch<S, F>(
    req: worker::web_sys::Request,
    env: worker::Env,
    ctx: worker::worker_sys::Context,
    serve: S,
) -> Promise
where
    S: FnOnce(worker::Request, worker::Env, worker::Context, String) -> F,
    F: Future<Output = Result<Response>> + 'static,
{
    let req = worker::Request::from(req);
    let request_id = http::request_id(&req);
    let serve = serve(req, env, worker::Context::new(ctx), request_id.clone());
    install_hook();
    let slot = NEXT_SLOT.with(|n| {
        let slot = n.get();
        n.set(slot.wrapping_add(1));
        slot
    });
    let mut resolve = None;
    let promise = Promise::new(&mut |res, _rej| resolve = Some(res));
    let Some(resolve) = resolve else {
        return promise;
    };
    IN_FLIGHT.with(|f| {
        f.borrow_mut().push(InFlight {
            slot,
            request_id: request_id.clone(),
            resolve: resolve.clone(),
        });
    });
    worker::wasm_bindgen_futures::spawn_local(async move {
        let tracked = Tracked {
            slot,
            inner: Box::pin(serve),
        };
        let answer = match tracked.await {
            Ok(response) => worker::web_sys::Response::from(response).into(),
            Err(e) => {
                crate::error::worker_log(&format!("request {request_id}: {e}"));
                plain(
                    &AppError::internal("the response could not be built"),
                    &request_id,
                )
            }
        };
        IN_FLIGHT.with(|f| f.borrow_mut().retain(|r| r.slot != slot));
        let _ = resolve.call1(&JsValue::UNDEFINED, &answer);
    });
    settle(&promise)
}

/// A future that records itself as the one being polled.
struct Tracked<F: ?Sized> {
    slot: u64,
    inner: Pin<Box<F>>,
}

impl<F: Future + ?Sized> Future for Tracked<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let before = POLLING.with(|p| p.replace(Some(self.slot)));
        let poll = self.inner.as_mut().poll(cx);
        POLLING.with(|p| p.set(before));
        poll
    }
}

/// Our hook after the one already set (`worker`'s: it logs the panic and
/// marks the instance for reset).
fn install_hook() {
    if HOOKED.with(|h| h.replace(true)) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        answer_in_flight();
    }));
}

/// Resolve every request in flight: a 500 for the one that panicked, a 503
/// for the others. Never panics (it runs inside a panic).
fn answer_in_flight() {
    let polling = POLLING.with(Cell::get);
    let in_flight = IN_FLIGHT.with(|f| f.try_borrow_mut().map(|mut f| std::mem::take(&mut *f)));
    let Ok(in_flight) = in_flight else {
        return;
    };
    for request in in_flight {
        let error = if Some(request.slot) == polling {
            AppError::internal("the worker failed while answering this request")
        } else {
            AppError::new(
                Kind::Unavailable,
                "instance_reset",
                "the worker's instance was reset while answering this request; send it again",
            )
        };
        let error = error.with_details(serde_json::json!({"requestId": request.request_id}));
        let _ = request
            .resolve
            .call1(&JsValue::UNDEFINED, &plain(&error, &request.request_id));
    }
}

/// An error answer as plain values, `{status, body, headers}`, for
/// `settle` to make into a `Response` (a bare `undefined`, which the runtime
/// answers with its own 500, when not even the headers can be made).
fn plain(error: &AppError, request_id: &str) -> JsValue {
    let mut headers = worker::Headers::new();
    let made = headers.set("Content-Type", "application/json").is_ok()
        && http::set_common(&mut headers, request_id).is_ok()
        && http::error_headers(error)
            .iter()
            .all(|(name, value)| headers.set(name, value).is_ok());
    let answer = Object::new();
    let body = serde_json::to_string(&error.body()).unwrap_or_default();
    let set = |key: &str, value: &JsValue| Reflect::set(&answer, &key.into(), value).is_ok();
    if made
        && set("status", &error.status().into())
        && set("body", &body.into())
        && set("headers", &headers.0.into())
    {
        answer.into()
    } else {
        JsValue::UNDEFINED
    }
}
