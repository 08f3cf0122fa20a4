//! `/help` as generated natively (`api/help.json`), without what a deployment
//! configures: the worker embeds it and adds its version and money limits.

use crate::services::storage;
use crate::services::validation::{minimum_outline, WEIGHTS};
use crate::types::api::{
    DEFAULT_TIMEOUT_MS, MAX_AUDIENCE_CHARS, MAX_ELEMENTS_LIMIT, MAX_TIMEOUT_MS, MAX_TOPIC_CHARS,
};
use crate::types::env::SERVICE_NAME;
use crate::types::placeholders::PLACEHOLDERS;
use crate::types::rules::{Constraints, StructureRules};
use crate::types::structure::{Granularity, StructureType};
use serde_json::{json, Value};

/// `/help` without what a deployment configures (its version and money
/// limits, `handlers::monitoring::help` adds them): generated natively into `api/help.json` and
/// embedded, so the code that builds it stays out of the wasm (issue 11).
pub fn help_static() -> Value {
    // The same source as /openapi.json: the route table and its schemas.
    let routes = super::generate_help_routes();
    let types: Vec<Value> = StructureType::ALL
        .iter()
        .map(|t| {
            let spec = t.spec();
            let rules = StructureRules::contract(*t);
            let g = |n| Granularity::new(n).map(|g| json!({"depth": g.depth(spec), "expectedElements": spec.expected_elements(g),
                "minimumElements": minimum_outline(*t, g, &rules, &Constraints::default()).0}));
            json!({
                "name": t,
                "rootFields": spec.root_fields.iter().map(|f| f.name).collect::<Vec<_>>(),
                "levels": spec.levels.iter().map(|l| json!({"key": l.key, "elementType": l.element_type, "min": l.min, "max": l.max,
                    "fields": l.fields.iter().map(|f| f.name).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                "granularity": (1..=5).map(g).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "service": SERVICE_NAME,
        "auth": {
            "client": "X-API-Key: <client key>, validated by KAM",
            "session": "x-bitware-session-token: <token>, validated by KAM; role admin reaches admin routes",
            "worker": "Authorization: Bearer <SHARED_SECRET> + X-Worker-ID: <caller>; X-Client-ID names the client acted for",
            "errors": "401 missing/invalid credentials, 403 not allowed, 503 KAM unavailable",
        },
        "routes": routes,
        "structureTypes": types,
        "granularity": {
            "range": "1-5, default 3",
            "meaning": (1..=5).map(|n| json!({"level": n, "description": Granularity::new(n).map(|g| g.describe())})).collect::<Vec<_>>(),
            "rule": "depth: 1 level at 1, 2 at 2, all from 3; children per parent climb from each level's minimum towards the middle of its range",
        },
        "qualityScore": {
            "range": "0-1, deterministic",
            "weights": WEIGHTS.iter().map(|(k, w)| json!({"component": k, "weight": w})).collect::<Vec<_>>(),
        },
        "validation": {
            "1": "structural checks only (accuracy = quality score x 100)",
            "2": "plus an AI review of logical_flow and completeness (accuracy = mean of structural and AI scores)",
            "3": "plus audience_fit and progression",
            "retry": "a job that fails validation is re-granulated once with the feedback",
            "reviewUnavailable": "when the level-2/3 AI review cannot be had (every provider failed, budget, deadline), the paid outline is kept: the job completes with validationResult.passed false, reason review_unavailable, readyForContentGeneration false and metadata.warnings saying so",
        },
        "constraints": {
            "maxElements": "a hard cap: an outline over it goes back to the model once, then is trimmed without breaking a level rule or an exact count (levels beyond the granularity first, then the last item of the largest group above its minimum, deepest level first)",
            "conflict": "a maxElements below the smallest complete outline at the granularity (structureTypes[].granularity[].minimumElements, raised by exact counts) is a 400 constraints_conflict naming both numbers, before any model call",
            "counts": "exact children per parent for a level, inside its rule range",
        },
        "modelOutput": {
            "recovered": "code fences, prose and XML-style tags around the JSON, BOM/CRLF, JSON5 (comments, single quotes, unquoted keys, trailing commas), raw line breaks in strings, a document sent as a JSON string or in a one-element array, nested wrapper objects, snake_case keys and field aliases, numbers as strings, a single object or string where a list is expected, a list wrapped in an object",
            "refused": "truncated or elided (...) JSON, YAML, Markdown, no JSON, a wrong shape, no top-level items, items without names: asked again once with the problem, then the next provider; the job fails with nothing stored",
        },
        "offlineProvider": "deterministic numbered skeletons with template text: output.placeholder true and a placeholder warning; never readyForContentGeneration in production (ENVIRONMENT=production), in development ready follows the quality score so local chains run end to end",
        "promptPlaceholders": PLACEHOLDERS.iter().map(|(k, d)| json!({"name": k, "meaning": d})).collect::<Vec<_>>(),
        "storage": {"inlineBelowBytes": storage::INLINE_LIMIT, "kvBelowBytes": storage::KV_LIMIT, "kvTtlSeconds": storage::KV_TTL_SECONDS},
        "idempotency": "X-Request-ID (or input.executionId) per client, bound to the request: a completed job is replayed (Idempotent-Replay: true), a request for one still running joins it (waits up to its own timeout, then 504 with statusUrl), a failed one runs again; the same id with a different request is 422 idempotency_key_reused",
        "tenants": "a job belongs to one tenant: a client id (API key, a session's client, or X-Client-ID of a worker), a user with no client (`user:<id>`), or a worker acting for nobody (`worker:<id>`); callers read only their tenant's jobs, administrators and workers without X-Client-ID read all",
        "money": {
            "unpricedModels": "refused while a budget applies (always); declare a price in PRICING (0 is valid for a self-hosted model)",
            "paidRoutes": ["POST /api/execute", "POST /api/validate", "POST /api/jobs/{id}/retry"],
            "overLimit": "429 rate_limited (Retry-After: 60) or 429 spend_cap_exceeded (Retry-After: seconds to 00:00 UTC); a job reserves its budget against the tenant's daily cap before its first call and settles to its real cost when it ends",
        },
        "text": "NUL (U+0000) anywhere in a body is a 400 invalid_text; other control characters (U+0001-U+001F, U+007F-U+009F) in text fields are a 400 invalid_field, except tab, line feed and carriage return, which are allowed (prompts fold them to spaces); ids (executionId, X-Request-ID) allow no control characters",
        "limits": {
            "bodyBytes": crate::helpers::http::MAX_BODY_BYTES,
            "topicChars": MAX_TOPIC_CHARS,
            "audienceChars": MAX_AUDIENCE_CHARS,
            "maxElements": MAX_ELEMENTS_LIMIT,
            "timeoutMs": {"default": DEFAULT_TIMEOUT_MS, "min": crate::types::api::MIN_TIMEOUT_MS, "max": MAX_TIMEOUT_MS},
            "jobsPageSize": 100,
        },
    })
}
