//! The chain's `Runtime` on Workers: `fetch` with an abort on timeout, the
//! Workers AI binding, `Delay` for backoff, `Date.now()` and `Math.random()`.

use super::gate::HeaderGate;
use super::wire::HttpCall;
use super::{HttpReply, Runtime, Transport, MAX_ANSWER_BYTES, MAX_ERROR_BODY_BYTES};
use crate::timing::{now_ms, random, sleep, with_timeout};

/// The Workers AI binding every worker of the system binds the model under.
pub const AI: &str = "AI";
use futures_util::StreamExt;
use serde_json::Value;
use worker::{AbortController, ByteStream, Env, Fetch, Headers, Request};

/// A failed exchange: the platform's or provider's text goes to the log,
/// redacted; the attempt (stored, and shown to clients) gets our words.
fn failed(what: &str, e: worker::Error) -> Transport {
    crate::error::worker_log(&format!(
        "{what}: {}",
        super::wire::redact_credentials(&e.to_string().chars().take(300).collect::<String>())
    ));
    Transport::Failed(format!("{what} (details in the worker log)"))
}

/// Hand a body to `sink` chunk by chunk until it ends, `sink` has had enough
/// (`Ok(false)`: the caller drops the call), the deadline passes (`Timeout`)
/// or no byte comes for `stall_ms` (`Stalled`).
async fn pump(
    stream: &mut ByteStream,
    deadline_ms: u64,
    stall_ms: u64,
    sink: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<bool, Transport> {
    loop {
        let left = deadline_ms.saturating_sub(now_ms());
        if left == 0 {
            return Err(Transport::Timeout);
        }
        let wait = left.min(stall_ms.max(1));
        match with_timeout(wait, stream.next()).await {
            Some(Some(Ok(bytes))) => {
                if !sink(&bytes) {
                    return Ok(false);
                }
            }
            Some(Some(Err(e))) => return Err(failed("the stream broke", e)),
            Some(None) => return Ok(true),
            None if wait < left => return Err(Transport::Stalled(stall_ms)),
            None => return Err(Transport::Timeout),
        }
    }
}

/// At most `limit` bytes of a body, as text (an error body is only summarised).
async fn capped_text(response: &mut worker::Response, limit: usize) -> worker::Result<String> {
    let mut stream = response.stream()?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn provider_request(call: &HttpCall) -> Result<Request, Transport> {
    let headers = Headers::new();
    for (name, value) in &call.headers {
        headers
            .set(name, value)
            .map_err(|_| Transport::Failed(format!("invalid header {name}")))?;
    }
    crate::http::outbound_request(&call.url, Some((&headers, &call.body.to_string())))
        .map_err(|_| Transport::Failed("invalid provider URL".into()))
}

/// A request is not sent with less time than this before its deadline.
const MIN_SEND_MS: u64 = 1_000;

/// The chain's I/O on Workers: every call it makes holds one of the
/// invocation's six slots for connections waiting for headers (`gate`).
pub struct WorkerRuntime<'a> {
    pub env: &'a Env,
    gate: HeaderGate,
}

impl<'a> WorkerRuntime<'a> {
    /// A runtime with a gate of its own: right when it is the invocation's
    /// only one (a request's run).
    pub fn new(env: &'a Env) -> WorkerRuntime<'a> {
        WorkerRuntime::with_gate(env, HeaderGate::new())
    }

    /// A runtime sharing `gate` with the invocation's other runs (a queue
    /// batch's jobs run at once in one invocation, under one limit).
    pub fn with_gate(env: &'a Env, gate: HeaderGate) -> WorkerRuntime<'a> {
        WorkerRuntime { env, gate }
    }
}

impl Runtime for WorkerRuntime<'_> {
    async fn http(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, Transport> {
        let request = provider_request(call)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let slot = self.gate.slot().await;
        let exchange = async {
            let sent = Fetch::Request(request).send_with_signal(&signal).await;
            drop(slot);
            let mut response = sent?;
            let status = response.status_code();
            let retry_after = response.headers().get("retry-after").ok().flatten();
            let limit = if (200..300).contains(&status) {
                MAX_ANSWER_BYTES
            } else {
                MAX_ERROR_BODY_BYTES
            };
            let body = capped_text(&mut response, limit).await?;
            Ok::<_, worker::Error>(HttpReply {
                status,
                retry_after,
                body,
            })
        };
        match with_timeout(timeout_ms, exchange).await {
            Some(Ok(reply)) => Ok(reply),
            // The error text can name the URL, never a key: keys travel in headers.
            Some(Err(e)) => Err(Transport::Failed(format!(
                "request failed: {}",
                e.to_string().chars().take(200).collect::<String>()
            ))),
            None => {
                controller.abort();
                Err(Transport::Timeout)
            }
        }
    }

    async fn workers_ai(
        &self,
        model: &str,
        input: &Value,
        timeout_ms: u64,
    ) -> Result<Value, Transport> {
        let ai = self
            .env
            .ai(AI)
            .map_err(|_| Transport::Failed("the AI binding is missing".into()))?;
        match with_timeout(timeout_ms, ai.run::<_, Value>(model, input)).await {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(failed("Workers AI failed", e)),
            None => Err(Transport::Timeout),
        }
    }

    async fn http_stream(
        &self,
        call: &HttpCall,
        timeout_ms: u64,
        total_ms: u64,
        stall_ms: u64,
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<HttpReply, Transport> {
        let deadline = now_ms() + total_ms.max(timeout_ms);
        let request = provider_request(call)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        // Waiting for headers holds one of the invocation's six slots;
        // streaming does not. The wait for a slot is bounded by the call's
        // time, and the call is asked again (a cancel, a drop) and timed
        // again before it is sent: never sent with less than
        // `MIN_SEND_MS` left, which a provider would start and bill for nothing.
        let Some(slot) = with_timeout(deadline.saturating_sub(now_ms()), self.gate.slot()).await
        else {
            return Err(Transport::Timeout);
        };
        if !sink(&[]) {
            return Err(Transport::NotSent);
        }
        let left = deadline.saturating_sub(now_ms());
        if left < MIN_SEND_MS {
            return Err(Transport::Timeout);
        }
        let opened = with_timeout(
            timeout_ms.min(left),
            Fetch::Request(request).send_with_signal(&signal),
        )
        .await;
        drop(slot);
        let mut response = match opened {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(failed("request failed", e)),
            None => {
                controller.abort();
                return Err(Transport::Timeout);
            }
        };
        let status = response.status_code();
        let retry_after = response.headers().get("retry-after").ok().flatten();
        if !(200..300).contains(&status) {
            let left = deadline.saturating_sub(now_ms()).max(1);
            let body = match with_timeout(
                left.min(timeout_ms),
                capped_text(&mut response, MAX_ERROR_BODY_BYTES),
            )
            .await
            {
                Some(Ok(body)) => body,
                Some(Err(_)) => String::new(),
                None => {
                    controller.abort();
                    return Err(Transport::Timeout);
                }
            };
            return Ok(HttpReply {
                status,
                retry_after,
                body,
            });
        }
        let mut stream = response
            .stream()
            .map_err(|e| failed("the answer has no body", e))?;
        let pumped = pump(&mut stream, deadline, stall_ms, sink).await;
        // Ended early (an error, or an answer past its byte limit): drop the call.
        if !matches!(pumped, Ok(true)) {
            controller.abort();
        }
        pumped.map(|_| HttpReply {
            status,
            retry_after,
            body: String::new(),
        })
    }

    async fn workers_ai_stream(
        &self,
        model: &str,
        input: &Value,
        timeout_ms: u64,
        total_ms: u64,
        stall_ms: u64,
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), Transport> {
        let deadline = now_ms() + total_ms.max(timeout_ms);
        let ai = self
            .env
            .ai(AI)
            .map_err(|_| Transport::Failed("the AI binding is missing".into()))?;
        let mut stream = match with_timeout(timeout_ms, ai.run_bytes(model, input)).await {
            Some(Ok(s)) => s,
            Some(Err(e)) => return Err(failed("Workers AI failed", e)),
            None => return Err(Transport::Timeout),
        };
        pump(&mut stream, deadline, stall_ms, sink)
            .await
            .map(|_| ())
    }

    async fn sleep(&self, ms: u64) {
        sleep(ms).await
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn random(&self) -> f64 {
        random()
    }
}
