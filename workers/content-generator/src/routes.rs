//! The route table: the router (`bitware_kit::routes`), the 405 `Allow`
//! header, the access rule of every route, `/help` and `/openapi.json` all
//! read this list. A route added here needs its handler in `lib.rs`, its
//! `RouteDoc` in `openapi.rs` and a row in the auth matrix of `tests/e2e.rs`.

pub use bitware_kit::routes::Access;

pub type Route = bitware_kit::routes::Route<RouteId>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    Root,
    Health,
    Help,
    OpenApi,
    Execute,
    Job,
    JobStatus,
    JobEvents,
    JobCancel,
    JobContent,
    AdminStats,
}

pub static ROUTES: &[Route] = &[
    bitware_kit::route!(RouteId::Root, "GET", "/", Public, "Liveness: the worker answers.", "-", "status, service, version, timestamp"),
    bitware_kit::route!(RouteId::Health, "GET", "/health", Public,
        "Dependency health (D1, KV, R2, KAM), read-only; 503 when degraded.", "-", "status, service, version, checks{database,kv,r2,kam}"),
    bitware_kit::route!(RouteId::Help, "GET", "/help", Public, "This document: every route, its auth tier and fields.", "-",
        "service, version, auth, routes[{method,path,auth,summary,request,response}], actions"),
    bitware_kit::route!(RouteId::OpenApi, "GET", "/openapi.json", Public, "This API as an OpenAPI 3.1 document, generated from the route table.", "-",
        "openapi, info, paths, components{schemas, securitySchemes}"),
    bitware_kit::route!(RouteId::Execute, "POST", "/api/execute", Authenticated,
        "Resource Manager entry point. Action `generate` (alias `process`): content for every element of a granulator outline (input: the granulator's output; the outline inline in `structure`, or by `structureReference`, fetched from the granulator), as a long job (idempotent per X-Request-ID; 202 + Location with `Prefer: respond-async`; 504 with links past `timeout`).",
        "action, input{granulatorJobId, topic, structureType, structure | structureReference, wordCountEstimates, contentMetadata}, params?, config?, maxCostUsd?, timeout?, async?",
        "success, model, output{generatorJobId, granulatorJobId, topic, structureType, content | contentReference, summary, qualityScore, qualityReport, readyForNext, contentMetadata{workerChain}}, usage.tokens{input,output,cached}, duration, cost, metadata{jobId, executionId, worker, provider, model, workerChain}"),
    bitware_kit::route!(RouteId::Job, "GET", "/api/jobs/{id}", Authenticated,
        "A job and, once completed, the result its request answered (what a replay returns).", "-", "job (as /status), result?"),
    bitware_kit::route!(RouteId::JobStatus, "GET", "/api/jobs/{id}/status", Authenticated,
        "A job's status: stage, percent done, usage, cost, failure or cancel, timings.", "-",
        "jobId, executionId, status, stage, runMode, run, percent, progress, tokens, costUsd, failure?, cancelledBy?, timings, statusUrl, eventsUrl, cancelUrl"),
    bitware_kit::route!(RouteId::JobEvents, "GET", "/api/jobs/{id}/events", Authenticated,
        "A job as Server-Sent Events: `progress` while it runs, then `completed`, `failed` or `cancelled` (or `timeout` with `retry:`).", "-", "text/event-stream"),
    bitware_kit::route!(RouteId::JobCancel, "POST", "/api/jobs/{id}/cancel", Authenticated,
        "Cancel a queued or running job: no model call starts after it; it settles what it spent. Idempotent; 409 once completed or failed.", "-",
        "the job's status once its run settled"),
    bitware_kit::route!(RouteId::JobContent, "GET", "/api/jobs/{id}/content", Authenticated,
        "The content a completed generation wrote, from KV or R2 where it was kept, else its result's inline copy; 409 until it completed.", "-",
        "jobId, source, content"),
    bitware_kit::route!(RouteId::AdminStats, "GET", "/api/admin/stats", Admin, "Generations recorded, per tenant and structure type, with the words written.", "-",
        "generations, words, tenants[{tenant, structureType, generations, words}]"),
];

/// KAM tiers this worker knows (for the request log); others log as `standard`.
pub fn known_tier(tier: &str) -> Option<&'static str> {
    ["basic", "standard", "premium", "enterprise"]
        .into_iter()
        .find(|t| *t == tier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitware_kit::routes::{match_route, Match};

    #[test]
    fn every_route_matches_itself_and_admin_routes_are_admin() {
        for route in ROUTES {
            assert!(
                matches!(match_route(ROUTES, route.method, route.path), Match::Found(r, _) if r.id == route.id)
            );
            assert_eq!(
                route.path.starts_with("/api/admin/"),
                route.access == Access::Admin,
                "{}",
                route.path
            );
            assert_eq!(
                route.path.starts_with("/api/"),
                route.access != Access::Public,
                "{}",
                route.path
            );
        }
    }
}
