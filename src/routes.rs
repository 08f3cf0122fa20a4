//! The granulator's route table: the router, the 405 `Allow` header, the
//! access rule of every route, `/help` and `/openapi.json` (with the schemas
//! of `crate::openapi`) all read this one list, so they cannot drift. The
//! matching is `bitware_kit::routes`.

pub use bitware_kit::routes::Access;

/// A route of this worker's table, and the result of matching a request against it.
pub type Route = bitware_kit::routes::Route<RouteId>;
pub type Match = bitware_kit::routes::Match<RouteId>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    Root,
    Health,
    Help,
    OpenApi,
    Execute,
    Templates,
    Template,
    Stats,
    Jobs,
    Job,
    JobStatus,
    JobEvents,
    JobStructure,
    JobRetry,
    JobCancel,
    Validate,
    ValidationHistory,
    AiProviders,
    EconomyStats,
    EconomyEstimate,
    EconomyPricing,
    AdminStats,
    AdminTemplates,
    AdminAnalytics,
    AdminAlerts,
}

/// `route!(Id, ...)`: a row of the table, `Id` a `RouteId` variant.
macro_rules! route {
    ($id:ident, $($rest:tt)*) => {
        bitware_kit::route!(RouteId::$id, $($rest)*)
    };
}

pub static ROUTES: &[Route] = &[
    route!(Root, "GET", "/", Public, "Liveness: the worker answers.", "-", "status, service, version, timestamp"),
    route!(Health, "GET", "/health", Public,
        "Dependency health (D1, KV, R2, KAM) without writes or paid AI calls; 503 when degraded.", "-",
        "status (healthy|degraded), service, version, checks{database,kv,r2,kam}, aiProviders[], capabilities, timestamp"),
    route!(Help, "GET", "/help", Public, "This document: every route, its auth tier and fields.", "-",
        "service, version, auth, routes[{method,path,auth,summary,request,response}], structureTypes, granularity, qualityScore, limits"),
    route!(OpenApi, "GET", "/openapi.json", Public, "This API as an OpenAPI 3.1 document, generated from the route table.", "-",
        "openapi, info, paths, components{schemas, securitySchemes}"),
    route!(Execute, "POST", "/api/execute", Authenticated,
        "Resource Manager entry point: granulate (alias process), validate or estimate. X-Request-ID is the idempotency key (bound to the request: another body is a 422); a repeated id of a running job waits for it. `Prefer: respond-async` or config.async → 202 with jobId, statusUrl, eventsUrl; past `timeout` → 504 deadline_exceeded with statusUrl while the job goes on.",
        "action, input{topic, structureType?, templateName?, granularityLevel?, targetAudience?, constraints{maxElements?, counts?}, options?, executionId?, jobId?}, params{same fields; wins over input}, config{aiProvider?, aiModel?, temperature?, maxTokens?, validation?, validationLevel?, validationThreshold?, maxCostUsd?, async?}, timeout? (ms: how long this request waits)",
        "success, output{granulatorJobId, jobId, topic, structureType, structure | structureReference{type,location}, summary, wordCountEstimates, contentMetadata, qualityScore, readyForContentGeneration, readyForNext, tokensUsed, costUsd, validationResult?}, usage.tokens{input,output}, duration, cost, metadata{workerChain, …}"),
    route!(Templates, "GET", "/api/templates", Authenticated, "Active templates, optionally of one structure type.",
        "query: structure_type?", "templates[], count"),
    route!(Template, "GET", "/api/templates/{name}", Authenticated, "One active template by exact name.", "-", "template"),
    route!(Stats, "GET", "/api/stats", Authenticated, "The caller's jobs: totals by status, success rate, quality, time percentiles, cost.",
        "-", "scope, jobs{total, byStatus}, successRate, averageQualityScore, processingTimeMs{p50,p90,p99}, tokens, costUsd"),
    route!(Jobs, "GET", "/api/jobs", Authenticated, "The caller's jobs, newest first.",
        "query: status?, structure_type?, from?, to? (ISO dates), limit? (1-100, default 20), offset?", "jobs[], total, limit, offset"),
    route!(Job, "GET", "/api/jobs/{id}", Authenticated, "One job with its attempts.", "-", "job{…}, attempts[]"),
    route!(JobStatus, "GET", "/api/jobs/{id}/status", Authenticated,
        "A job's live status: stage (queued|generating|refining|validating|storing|done|failed|cancelled), percent from tokens and elements received while the model streams.", "-",
        "jobId, status, stage, percent, elements{received, expected}, tokens{received, expected}, elapsedMs, estimatedRemainingMs, runMode, failureCode?, failureReason?, updatedAt, statusUrl, eventsUrl, resultUrl"),
    route!(JobEvents, "GET", "/api/jobs/{id}/events", Authenticated,
        "Server-Sent Events (text/event-stream) of the job's status: `progress` at least every second while it runs and on every stage change, `branch` for each level-1 branch as it becomes final, then `completed`, `failed` or `cancelled`.", "-",
        "event: progress|branch|completed|failed|cancelled; data: the status object (branch: position, total, title, node)"),
    route!(JobStructure, "GET", "/api/jobs/{id}/structure", Authenticated,
        "The hierarchical structure of a completed job (complete: true), from inline/KV/R2 storage or rebuilt from D1; of a running job, the level-1 branches final so far (complete: false, source: partial).", "query: source? (storage|elements)",
        "jobId, structureType, source, complete, structure | branches[{position, total, title, node}]"),
    route!(JobRetry, "POST", "/api/jobs/{id}/retry", Authenticated, "Run a failed job again with its original parameters.", "-",
        "the execute response of the new run"),
    route!(JobCancel, "POST", "/api/jobs/{id}/cancel", Authenticated,
        "Stop a queued or running job: it ends `cancelled` with who cancelled it and when, having spent only what its model calls had used (no model call starts after the cancel; a streaming one is dropped within about 1.5 s). Idempotent: a cancelled job answers as it is. A completed or failed job: 409 job_not_cancellable.",
        "-", "job{…, status: cancelled, cancelledBy, cancelledAt, costUsd}, attempts[]"),
    route!(Validate, "POST", "/api/validate", Authenticated, "Validate a completed job again.",
        "jobId, validationLevel? (1-3), threshold? (0-100)", "validationResult{accuracyPercentage, passed, threshold, level, criteria, issues, aiFeedback?}"),
    route!(ValidationHistory, "GET", "/api/validation/history", Authenticated, "Validation results, optionally of one job.",
        "query: job_id?, limit?", "results[]"),
    route!(AiProviders, "GET", "/api/ai-providers", Authenticated, "Configured AI providers and their models (no calls are made).", "-",
        "providers[{name, configured, model, inDefaultChain}], order, problems, settings, pricingDate"),
    route!(EconomyStats, "GET", "/api/economy/stats", Authenticated, "Resource consumption from recorded attempts.",
        "query: days? (1-365, default 30)", "totals, daily[], byProvider[], byModel[], costPerJob, efficiency"),
    route!(EconomyEstimate, "POST", "/api/economy/estimate", Authenticated, "Tokens, cost and time of a would-be job; no AI call.",
        "structureType | templateName, granularityLevel?, topic?, aiProvider?, aiModel?", "estimate{tokens, costUsd, timeMs, model}, alternatives[]"),
    route!(EconomyPricing, "GET", "/api/economy/pricing", Authenticated, "The price map with its date and per-model examples.", "-",
        "date, currency, unit, models{}, examples[]"),
    route!(AdminStats, "GET", "/api/admin/stats", Admin, "Across clients: jobs, success, quality, cost, per template.", "query: days?",
        "jobs, templates[], providers[], clients"),
    route!(AdminTemplates, "POST", "/api/admin/templates", Admin, "Create, update or (soft) delete a template.",
        "action (create|update|delete), template{templateName, structureType, description?, aiPromptTemplate, templateSchema?, structureRules?, validationRules?, complexityLevel?, targetAudience?, aiProviderConfig?, costOptimization?}",
        "template | deleted"),
    route!(AdminAnalytics, "GET", "/api/admin/analytics", Admin, "Per-template performance, daily trend, type distribution, provider comparison, recommendations.",
        "query: days?", "templates[], daily[], structureTypes[], providers[], recommendations[]"),
    route!(AdminAlerts, "GET", "/api/admin/alerts", Admin,
        "The operator's signals over a window (5xx rate, provider error rate by provider, p95 job duration, abandoned and dead-lettered jobs, spend against each tier's daily cap, KAM failures), each against its warning and firing threshold (ALERT_THRESHOLDS).",
        "query: window? (seconds, 1-604800, default ALERT_WINDOW_SECONDS or 3600)",
        "windowSeconds, since, generatedAt, state (ok|warning|firing), firing[], warning[], signals[{name, subject?, state, value, unit, samples, threshold{warning, firing}}]"),
];

/// Match a request against this worker's table (`bitware_kit::routes::match_route`).
pub fn match_route(method: &str, path: &str) -> Match {
    bitware_kit::routes::match_route(ROUTES, method, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_static_and_parameterised_routes() {
        let Match::Found(r, params) = match_route("GET", "/api/jobs/42/status") else {
            panic!()
        };
        assert_eq!(r.id, RouteId::JobStatus);
        assert_eq!(params, vec![("id", "42".to_string())]);
        let Match::Found(r, _) = match_route("GET", "/api/jobs/42/events") else {
            panic!()
        };
        assert_eq!(r.id, RouteId::JobEvents);
        let Match::Found(r, _) = match_route("POST", "/api/jobs/42/cancel") else {
            panic!()
        };
        assert_eq!(r.id, RouteId::JobCancel);
        let Match::Found(r, _) = match_route("GET", "/api/templates/") else {
            panic!()
        };
        assert_eq!(r.id, RouteId::Templates);
        assert!(matches!(match_route("GET", "/"), Match::Found(r, _) if r.id == RouteId::Root));
    }

    #[test]
    fn wrong_method_lists_the_allowed_ones() {
        assert_eq!(
            match_route("GET", "/api/execute"),
            Match::MethodNotAllowed(vec!["POST", "OPTIONS"])
        );
        assert_eq!(
            match_route("DELETE", "/health"),
            Match::MethodNotAllowed(vec!["GET", "OPTIONS"])
        );
    }

    #[test]
    fn unknown_paths_and_empty_segments_are_not_found() {
        assert_eq!(match_route("GET", "/nope"), Match::NotFound);
        assert_eq!(match_route("GET", "/api/jobs//status"), Match::NotFound);
        assert_eq!(match_route("GET", "/api/templates/a/b"), Match::NotFound);
    }

    #[test]
    fn no_two_routes_share_method_and_path_and_admin_routes_are_admin() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {}",
                    a.method,
                    a.path
                );
            }
            assert_eq!(
                a.path.starts_with("/api/admin/"),
                a.access == Access::Admin,
                "{}",
                a.path
            );
            assert_eq!(
                a.path.starts_with("/api/"),
                a.access != Access::Public,
                "{}",
                a.path
            );
        }
    }
}
