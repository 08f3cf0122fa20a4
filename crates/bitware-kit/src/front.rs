//! The front door every worker shares (`worker` feature): a request is
//! matched against the worker's route table (404, 405 + `Allow`), its
//! credentials are checked with KAM before its body is read, the access
//! rule is applied, and the answer goes out as JSON (or a stream) with
//! CORS and the request id, logged as one JSON line.

use crate::auth::{authorize, credential_failed, Credentials, Principal};
use crate::error::{AppError, AppResult, Kind};
use crate::http::{self, Reply};
use crate::kam::{self, Kam};
use crate::log::RequestLog;
use crate::routes::{match_route, Access, Match, Route};
use serde_json::json;
use std::collections::HashMap;
use worker::{Request, Response};

/// What a route answers: JSON, or a response its handler built (a stream of
/// Server-Sent Events, an embedded document).
pub enum Answer {
    Json(Reply),
    Built(Response),
}

/// A request the route table and the access rule let through.
pub struct Admitted<Id: 'static> {
    pub route: &'static Route<Id>,
    pub params: Vec<(&'static str, String)>,
    pub query: HashMap<String, String>,
    /// The request URL's host (a deployed worker is not on loopback).
    pub host: String,
    /// `None` on public routes.
    pub principal: Option<Principal>,
}

/// Route, authenticate, authorise. `tier` names a principal's billing tier
/// for the log (the worker's own tier policy).
pub async fn admit<Id>(
    req: &Request,
    routes: &'static [Route<Id>],
    kam_client: &Kam<'_>,
    log: &mut RequestLog,
    tier: impl Fn(&Principal) -> &'static str,
) -> AppResult<Admitted<Id>> {
    let path = req.path();
    // The method as sent: workers-rs' `Method` reads any method it does not
    // know (QUERY, FOO…) as GET, which would answer `QUERY /` as `GET /`.
    let method = req.inner().method();
    let (route, params) = match match_route(routes, &method, &path) {
        Match::Found(route, params) => (route, params),
        Match::MethodNotAllowed(allow) => {
            return Err(AppError::new(
                Kind::MethodNotAllowed,
                "method_not_allowed",
                format!("{method} is not allowed on {path}"),
            )
            .with_details(json!({"allow": allow})))
        }
        Match::NotImplemented => {
            return Err(AppError::new(
                Kind::NotImplemented,
                "not_implemented",
                format!("{method} is not a method this server implements"),
            ))
        }
        Match::NotFound => {
            return Err(AppError::not_found(format!("no route for {method} {path}")))
        }
    };
    log.route = route.path.to_string();
    log.access = Some(route.access.as_str());
    // Credentials are checked before the body is read: an unauthenticated
    // caller learns nothing about what the route would accept. Every
    // credential presented must be valid (a 401 names the one that is not);
    // the request acts as the first by precedence (`Credentials::presented`).
    let principal = match route.access {
        Access::Public => None,
        _ => {
            let headers = req.headers();
            let mut principal = None;
            for (header, credentials) in
                Credentials::presented(|name| headers.get(name).ok().flatten())?
            {
                let valid = kam::authenticate(kam_client, credentials)
                    .await
                    .map_err(|e| credential_failed(header, e))?;
                principal = principal.or(valid);
            }
            principal
        }
    };
    if let Some(p) = principal.as_ref() {
        log.caller = Some(p.tier_name());
        log.tier = Some(tier(p));
    }
    authorize(route.access, principal.as_ref())?;
    // The runtime's serialised URL, read without a URL parser (http::url_parts).
    let (host, query) = http::url_parts(&req.inner().url());
    Ok(Admitted {
        route,
        params,
        query: query.into_iter().collect(),
        host,
        principal,
    })
}

/// The response of a request, and its one log line (never a header value or
/// a body, so never a credential). `started_ms` is when it arrived.
pub fn respond(
    result: AppResult<Answer>,
    request_id: &str,
    log: &mut RequestLog,
    started_ms: u64,
) -> worker::Result<Response> {
    let response = match result {
        Ok(Answer::Json(reply)) => {
            log.note_body(&reply.body);
            http::json_response(reply.status, &reply.body, request_id, &reply.headers)
        }
        Ok(Answer::Built(response)) => Ok(response),
        Err(e) => {
            log.error_code = Some(e.code);
            http::error_response(&e, request_id)
        }
    };
    let status = response.as_ref().map(|r| r.status_code()).unwrap_or(500);
    let ms = crate::timing::now_ms().saturating_sub(started_ms);
    worker::console_log!("{}", log.line(status, ms));
    response
}
