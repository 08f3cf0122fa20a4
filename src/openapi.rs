//! The OpenAPI 3.1 document (`GET /openapi.json`) and the route part of
//! `/help`, both generated from one source: the route table
//! (`routes::ROUTES`: method, path, access tier, summary) plus the request
//! and response schema of each route, declared here next to the types that
//! produce them. Nothing is a hand-kept JSON file: a route added to the table
//! appears in both documents, and a unit test fails until its schemas are
//! declared here.
//!
//! Schemas are built with a few small functions rather than a derive crate:
//! most answers are assembled as JSON, and a schema crate in the wasm would
//! cost more than this module (see README, Bundle).

use crate::routes::{Access, RouteId, ROUTES};
use crate::types::api::Action;
use crate::types::provider::ProviderKind;
use crate::types::structure::StructureType;
use serde_json::{json, Map, Value};

// ---- schema builders ------------------------------------------------------

fn string() -> Value {
    json!({"type": "string"})
}
fn integer() -> Value {
    json!({"type": "integer"})
}
fn number() -> Value {
    json!({"type": "number"})
}
fn boolean() -> Value {
    json!({"type": "boolean"})
}
fn any() -> Value {
    json!({})
}
fn object_any() -> Value {
    json!({"type": "object"})
}
fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}
fn one_of_strings(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}
/// The schema, or JSON null.
fn nullable(schema: Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some(t) if schema.as_object().is_some_and(|o| !o.contains_key("enum")) => {
            let mut s = schema.clone();
            s["type"] = json!([t, "null"]);
            s
        }
        _ => json!({"anyOf": [schema, {"type": "null"}]}),
    }
}
fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// An object: `fields` are `(name, schema)`; a name ending in `?` is optional.
/// Other properties are allowed (answers may grow without breaking clients).
fn object(fields: &[(&str, Value)]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, schema) in fields {
        let (name, optional) = match name.strip_suffix('?') {
            Some(n) => (n, true),
            None => (*name, false),
        };
        if !optional {
            required.push(json!(name));
        }
        properties.insert(name.to_string(), schema.clone());
    }
    json!({"type": "object", "properties": properties, "required": required})
}

// ---- shared shapes --------------------------------------------------------

fn tokens() -> Value {
    object(&[
        ("input", integer()),
        ("output", integer()),
        ("cached?", integer()),
    ])
}

fn structure_types() -> Vec<&'static str> {
    StructureType::ALL.iter().map(|t| t.as_str()).collect()
}

fn providers() -> Vec<&'static str> {
    ProviderKind::ALL.iter().map(|p| p.as_str()).collect()
}

fn components() -> Value {
    json!({
        "schemas": {
            "Error": object(&[
                ("error", string()),
                ("status", integer()),
                ("code", string()),
                ("details?", any()),
            ]),
            "Tokens": tokens(),
            "Envelope": envelope(),
            "Job": job(),
            "JobStatus": job_status(),
            "Accepted": object(&[
                ("success", boolean()),
                ("status", one_of_strings(&["accepted"])),
                ("jobId", integer()),
                ("statusUrl", string()),
                ("eventsUrl", string()),
                ("resultUrl", string()),
            ]),
            "Template": object(&[
                ("id", integer()),
                ("templateName", string()),
                ("structureType", one_of_strings(&structure_types())),
                ("description", string()),
                ("aiPromptTemplate", string()),
                ("validationRules", object_any()),
                ("structureRules", object_any()),
                ("aiProviderConfig?", object_any()),
            ]),
            "ValidationResult": object(&[
                ("level", integer()),
                ("accuracyPercentage", number()),
                ("threshold", number()),
                ("passed", boolean()),
                ("criteria?", any()),
                ("issues?", any()),
                ("aiFeedback?", nullable(any())),
            ]),
            "Estimate": object(&[
                ("estimate", object(&[
                    ("structureType", one_of_strings(&structure_types())),
                    ("templateName", string()),
                    ("granularityLevel", integer()),
                    ("expectedElements", integer()),
                    ("tokens", object(&[("input", integer()), ("output", integer()), ("total", integer())])),
                    ("provider", one_of_strings(&providers())),
                    ("model", string()),
                    ("costUsd", nullable(number())),
                    ("timeMs", integer()),
                    ("pricingDate", string()),
                ])),
                ("alternatives", array(object(&[
                    ("provider", one_of_strings(&providers())),
                    ("model", string()),
                    ("costUsd", nullable(number())),
                    ("timeMs", integer()),
                ]))),
            ]),
        },
        "securitySchemes": {
            "clientKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                "description": "A client API key, validated by the Key Account Manager."},
            "session": {"type": "apiKey", "in": "header", "name": "x-bitware-session-token",
                "description": "A dashboard session, validated by the Key Account Manager; role admin reaches admin routes."},
            "workerSecret": {"type": "http", "scheme": "bearer",
                "description": "Worker-to-worker: Authorization: Bearer <SHARED_SECRET>, always with X-Worker-ID."},
            "workerId": {"type": "apiKey", "in": "header", "name": "X-Worker-ID",
                "description": "The calling worker's name (with the bearer secret); X-Client-ID names the client it acts for."},
        },
    })
}

/// The Resource Manager envelope of every `/api/execute` action.
fn envelope() -> Value {
    object(&[
        ("success", boolean()),
        ("model", nullable(string())),
        ("output", object_any()),
        ("usage", object(&[("tokens", reference("Tokens"))])),
        ("duration", integer()),
        ("cost", nullable(number())),
        ("metadata", object(&[("workerChain", object_any())])),
    ])
}

fn job() -> Value {
    object(&[
        ("id", integer()),
        ("clientId", string()),
        ("executionId", string()),
        ("topic", string()),
        ("structureType", string()),
        ("granularityLevel", integer()),
        (
            "status",
            one_of_strings(&["processing", "completed", "failed"]),
        ),
        ("stage", string()),
        ("runs", integer()),
        ("provider", nullable(string())),
        ("model", nullable(string())),
        ("tokensUsed", reference("Tokens")),
        ("costUsd", nullable(number())),
        ("qualityScore", nullable(number())),
        ("createdAt", string()),
        ("updatedAt", string()),
    ])
}

fn job_status() -> Value {
    let counts = object(&[("received", integer()), ("expected", integer())]);
    object(&[
        ("jobId", integer()),
        (
            "status",
            one_of_strings(&["processing", "completed", "failed"]),
        ),
        ("stage", string()),
        (
            "percent",
            json!({"type": "integer", "minimum": 0, "maximum": 100}),
        ),
        (
            "progress",
            json!({"type": "integer", "minimum": 0, "maximum": 100}),
        ),
        ("elements", counts.clone()),
        ("tokens", counts),
        (
            "branches",
            nullable(object(&[("done", integer()), ("total", integer())])),
        ),
        ("elapsedMs", nullable(integer())),
        ("estimatedRemainingMs", nullable(integer())),
        ("runMode", string()),
        ("abandoned", boolean()),
        ("failureCode", nullable(string())),
        ("failureReason", nullable(string())),
        ("updatedAt", string()),
        ("statusUrl", string()),
        ("eventsUrl", string()),
        ("resultUrl", string()),
    ])
}

fn consumption_row(extra: &[(&str, Value)]) -> Value {
    let mut fields = vec![
        ("attempts", integer()),
        ("tokensInput", nullable(integer())),
        ("tokensOutput", nullable(integer())),
        ("costUsd", nullable(number())),
    ];
    fields.extend(extra.iter().cloned());
    object(&fields)
}

fn efficiency() -> Value {
    object(&[
        ("tokensPerSecond", number()),
        ("outputTokensPerSecond", number()),
        ("costPerToken", nullable(number())),
        (
            "rating",
            one_of_strings(&["free", "low", "medium", "high", "instant"]),
        ),
    ])
}

fn template_performance() -> Value {
    object(&[
        ("templateName", string()),
        ("structureType", string()),
        ("jobs", integer()),
        ("completed", integer()),
        ("failed", integer()),
        ("successRate", nullable(number())),
        ("averageQualityScore", nullable(number())),
        ("averageCostUsd", nullable(number())),
    ])
}

fn job_stats() -> Value {
    object(&[
        ("scope", string()),
        ("days", integer()),
        (
            "jobs",
            object(&[
                ("total", integer()),
                (
                    "byStatus",
                    object(&[
                        ("completed", integer()),
                        ("failed", integer()),
                        ("processing", integer()),
                    ]),
                ),
            ]),
        ),
        ("successRate", nullable(number())),
        ("averageQualityScore", nullable(number())),
        (
            "processingTimeMs",
            object(&[
                ("p50", nullable(number())),
                ("p90", nullable(number())),
                ("p99", nullable(number())),
            ]),
        ),
        (
            "tokens",
            object(&[("input", integer()), ("output", integer())]),
        ),
        ("costUsd", nullable(number())),
        ("jobsWithUnknownCost", integer()),
    ])
}

fn provider_row() -> Value {
    consumption_row(&[
        ("provider", string()),
        ("successes", nullable(integer())),
        ("successRate", nullable(number())),
        ("averageLatencyMs", nullable(number())),
    ])
}

// ---- per route ------------------------------------------------------------

/// What one route takes and answers, beyond the route table.
pub struct RouteDoc {
    pub query: Vec<(&'static str, Value, &'static str)>,
    pub body: Option<Value>,
    /// The success body's media type.
    pub media: &'static str,
    /// The success status and its body.
    pub ok: (u16, Value),
}

fn days_query() -> Vec<(&'static str, Value, &'static str)> {
    vec![(
        "days",
        json!({"type": "integer", "minimum": 1, "maximum": 365, "default": 30}),
        "period in days",
    )]
}

/// Text the edge accepts: no control characters but tab, LF and CR.
const TEXT: &str = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$";
/// The same, with at least one character that is not white space.
const NON_BLANK: &str = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$";

fn text(max: usize) -> Value {
    json!({"type": "string", "maxLength": max, "pattern": TEXT})
}

/// `input` / `params` of a granulation (contracts §2: either may carry them).
fn granulate_params(required: bool) -> Value {
    let topic = json!({"type": "string", "minLength": 1, "maxLength": crate::types::api::MAX_TOPIC_CHARS, "pattern": NON_BLANK});
    let structure_type = one_of_strings(&structure_types());
    let mut fields = vec![
        (if required { "topic" } else { "topic?" }, topic),
        (
            if required {
                "structureType"
            } else {
                "structureType?"
            },
            structure_type,
        ),
        ("templateName?", text(64)),
        (
            "granularityLevel?",
            json!({"type": "integer", "minimum": 1, "maximum": 5}),
        ),
        (
            "targetAudience?",
            text(crate::types::api::MAX_AUDIENCE_CHARS),
        ),
        (
            "constraints?",
            object(&[
                (
                    "maxElements?",
                    json!({"type": "integer", "minimum": 1, "maximum": crate::types::api::MAX_ELEMENTS_LIMIT}),
                ),
                (
                    "counts?",
                    json!({"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}}),
                ),
            ]),
        ),
        (
            "executionId?",
            json!({"type": "string", "minLength": 1, "maxLength": crate::types::api::MAX_EXECUTION_ID_LEN, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}),
        ),
    ];
    fields.push(("options?", object_any()));
    object(&fields)
}

fn exec_config() -> Value {
    object(&[
        ("aiProvider?", one_of_strings(&providers())),
        (
            "aiModel?",
            json!({"type": "string", "minLength": 1, "maxLength": 100, "pattern": NON_BLANK}),
        ),
        (
            "temperature?",
            json!({"type": "number", "minimum": 0, "maximum": 2}),
        ),
        (
            "maxTokens?",
            json!({"type": "integer", "minimum": 256, "maximum": 64000}),
        ),
        ("validation?", boolean()),
        ("async?", boolean()),
        (
            "validationLevel?",
            json!({"type": "integer", "minimum": 1, "maximum": 3}),
        ),
        (
            "validationThreshold?",
            json!({"type": "number", "minimum": 0, "maximum": 100}),
        ),
        (
            "maxCostUsd?",
            json!({"type": "number", "exclusiveMinimum": 0}),
        ),
        ("strategy?", one_of_strings(&["single", "fanout", "auto"])),
    ])
}

/// One shape per action; `config.aiModel` needs `config.aiProvider`, and a
/// model without a price is refused (422) while a budget applies.
fn execute_body() -> Value {
    let timeout = json!({"type": "integer", "minimum": crate::types::api::MIN_TIMEOUT_MS, "maximum": crate::types::api::MAX_TIMEOUT_MS});
    let granulate = object(&[
        ("action", one_of_strings(&["granulate", "process"])),
        ("input", granulate_params(true)),
        ("params?", granulate_params(false)),
        ("config?", exec_config()),
        ("timeout?", timeout.clone()),
    ]);
    let validate = object(&[
        ("action", one_of_strings(&["validate"])),
        (
            "input",
            object(&[
                ("jobId", json!({"type": "integer", "minimum": 1})),
                (
                    "validationLevel?",
                    json!({"type": "integer", "minimum": 1, "maximum": 3}),
                ),
                (
                    "threshold?",
                    json!({"type": "number", "minimum": 0, "maximum": 100}),
                ),
            ]),
        ),
        ("config?", exec_config()),
    ]);
    let estimate = object(&[
        ("action", one_of_strings(&["estimate"])),
        (
            "input",
            object(&[
                ("structureType", one_of_strings(&structure_types())),
                (
                    "granularityLevel?",
                    json!({"type": "integer", "minimum": 1, "maximum": 5}),
                ),
                ("topic?", text(crate::types::api::MAX_TOPIC_CHARS)),
            ]),
        ),
        ("config?", exec_config()),
    ]);
    json!({"anyOf": [granulate, validate, estimate], "description": format!("action: one of {}", Action::NAMES.join(", "))})
}

const JSON: &str = "application/json";
const UNDOCUMENTED: &str = "not yet described in src/openapi.rs";

pub fn route_doc(id: RouteId) -> RouteDoc {
    let none = Vec::new;
    let doc = |query, body, ok: Value| RouteDoc {
        query,
        body,
        media: JSON,
        ok: (200, ok),
    };
    match id {
        RouteId::Root => doc(
            none(),
            None,
            object(&[
                ("status", string()),
                ("service", string()),
                ("version", string()),
                ("environment", string()),
                ("timestamp", string()),
            ]),
        ),
        RouteId::Health => doc(
            none(),
            None,
            object(&[
                ("status", one_of_strings(&["healthy", "degraded"])),
                ("service", string()),
                ("version", string()),
                (
                    "checks",
                    object(&[
                        ("database", object_any()),
                        ("kv", object_any()),
                        ("r2", object_any()),
                        ("kam", object_any()),
                    ]),
                ),
                ("aiProviders", object_any()),
                ("warnings", array(string())),
                ("config", object_any()),
                ("capabilities", object_any()),
                ("timestamp", string()),
            ]),
        ),
        RouteId::Help => doc(
            none(),
            None,
            object(&[
                ("service", string()),
                ("version", string()),
                ("auth", object_any()),
                ("routes", array(object_any())),
            ]),
        ),
        RouteId::OpenApi => doc(
            none(),
            None,
            object(&[
                ("openapi", string()),
                ("info", object_any()),
                ("paths", object_any()),
            ]),
        ),
        RouteId::Execute => doc(none(), Some(execute_body()), reference("Envelope")),
        RouteId::Templates => doc(
            vec![(
                "structure_type",
                one_of_strings(&structure_types()),
                "only templates of this type",
            )],
            None,
            object(&[
                ("templates", array(reference("Template"))),
                ("count", integer()),
            ]),
        ),
        RouteId::Template => doc(none(), None, object(&[("template", reference("Template"))])),
        RouteId::Stats => doc(days_query(), None, job_stats()),
        RouteId::Jobs => doc(
            vec![
                (
                    "status",
                    one_of_strings(&["processing", "completed", "failed"]),
                    "only jobs in this status",
                ),
                (
                    "structure_type",
                    one_of_strings(&structure_types()),
                    "only jobs of this type",
                ),
                (
                    "from",
                    json!({"type": "string", "format": "date"}),
                    "created at or after (YYYY-MM-DD or ISO-8601 UTC)",
                ),
                (
                    "to",
                    json!({"type": "string", "format": "date"}),
                    "created before (YYYY-MM-DD or ISO-8601 UTC)",
                ),
                (
                    "limit",
                    json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
                    "page size",
                ),
                (
                    "offset",
                    json!({"type": "integer", "minimum": 0, "maximum": 1000000, "default": 0}),
                    "page start",
                ),
            ],
            None,
            object(&[
                ("jobs", array(reference("Job"))),
                ("total", integer()),
                ("limit", integer()),
                ("offset", integer()),
            ]),
        ),
        RouteId::Job => doc(
            none(),
            None,
            object(&[
                ("job", reference("Job")),
                (
                    "attempts",
                    array(object(&[
                        ("provider", string()),
                        ("model", string()),
                        ("purpose", string()),
                        ("status", string()),
                        ("httpStatus", nullable(integer())),
                        ("latencyMs", integer()),
                        ("tokens", reference("Tokens")),
                        ("costUsd", nullable(number())),
                        ("error", nullable(string())),
                        ("branch", nullable(string())),
                        ("createdAt", string()),
                    ])),
                ),
            ]),
        ),
        RouteId::JobStatus => doc(none(), None, reference("JobStatus")),
        RouteId::JobEvents => RouteDoc {
            query: none(),
            body: None,
            media: "text/event-stream",
            ok: (
                200,
                json!({
                    "type": "object",
                    "description": "One Server-Sent Event (Schemathesis checks each): `progress` while the job runs, then `completed` or `failed`; `error` or `timeout` end a stream early. `data` is the JobStatus object as JSON.",
                    "properties": {
                        "event": {"type": "string", "enum": ["progress", "completed", "failed", "error", "timeout"]},
                        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {"$ref": "#/components/schemas/JobStatus"}},
                    },
                    "required": ["event", "data"],
                }),
            ),
        },
        RouteId::JobStructure => doc(
            vec![(
                "source",
                one_of_strings(&["storage", "elements"]),
                "stored copy, or rebuilt from the element rows",
            )],
            None,
            object(&[
                ("jobId", integer()),
                ("structureType", string()),
                ("source", string()),
                ("structure", object_any()),
            ]),
        ),
        RouteId::JobRetry => doc(none(), None, reference("Envelope")),
        RouteId::Validate => doc(
            none(),
            Some(object(&[
                ("jobId", json!({"type": "integer", "minimum": 1})),
                (
                    "validationLevel?",
                    json!({"type": "integer", "minimum": 1, "maximum": 3}),
                ),
                (
                    "threshold?",
                    json!({"type": "number", "minimum": 0, "maximum": 100}),
                ),
            ])),
            object(&[
                ("jobId", integer()),
                ("validationResult", reference("ValidationResult")),
            ]),
        ),
        RouteId::ValidationHistory => doc(
            vec![
                (
                    "job_id",
                    json!({"type": "integer", "minimum": 1}),
                    "only this job's results",
                ),
                (
                    "limit",
                    json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
                    "at most this many",
                ),
            ],
            None,
            object(&[("results", array(object_any())), ("count", integer())]),
        ),
        RouteId::AiProviders => doc(
            none(),
            None,
            object(&[
                (
                    "providers",
                    array(object(&[
                        ("name", one_of_strings(&providers())),
                        ("configured", boolean()),
                        ("model", string()),
                        ("inDefaultChain", boolean()),
                    ])),
                ),
                ("order", array(one_of_strings(&providers()))),
                ("problems", array(string())),
                ("settings", object_any()),
                ("pricingDate", string()),
            ]),
        ),
        RouteId::EconomyStats => doc(
            days_query(),
            None,
            object(&[
                ("scope", string()),
                ("days", integer()),
                (
                    "totals",
                    object(&[
                        ("attempts", integer()),
                        ("jobs", integer()),
                        (
                            "tokens",
                            object(&[
                                ("input", integer()),
                                ("output", integer()),
                                ("cached", integer()),
                                ("total", integer()),
                            ]),
                        ),
                        ("costUsd", number()),
                        ("unpricedAttempts", integer()),
                    ]),
                ),
                ("daily", array(consumption_row(&[("date", string())]))),
                ("byProvider", array(provider_row())),
                (
                    "byModel",
                    array(consumption_row(&[
                        ("provider", string()),
                        ("model", string()),
                    ])),
                ),
                ("costPerJob", nullable(number())),
                ("efficiency", efficiency()),
            ]),
        ),
        RouteId::EconomyEstimate => doc(
            none(),
            Some(object(&[
                ("structureType?", one_of_strings(&structure_types())),
                ("templateName?", string()),
                (
                    "granularityLevel?",
                    json!({"type": "integer", "minimum": 1, "maximum": 5}),
                ),
                ("topic?", string()),
                ("aiProvider?", one_of_strings(&providers())),
                ("aiModel?", string()),
                (
                    "validationLevel?",
                    json!({"type": "integer", "minimum": 1, "maximum": 3}),
                ),
            ])),
            reference("Estimate"),
        ),
        RouteId::EconomyPricing => doc(
            none(),
            None,
            object(&[
                ("date", string()),
                ("currency", string()),
                ("unit", string()),
                (
                    "models",
                    json!({"type": "object", "additionalProperties": object(&[("input", number()), ("output", number())])}),
                ),
                (
                    "examples",
                    array(object(&[
                        ("model", string()),
                        ("costUsd", nullable(number())),
                    ])),
                ),
            ]),
        ),
        RouteId::AdminStats => doc(
            days_query(),
            None,
            object(&[
                ("days", integer()),
                ("jobs", job_stats()),
                ("templates", array(template_performance())),
                ("providers", array(provider_row())),
                (
                    "clients",
                    array(object(&[
                        ("clientId", string()),
                        ("jobs", integer()),
                        ("costUsd", nullable(number())),
                    ])),
                ),
            ]),
        ),
        RouteId::AdminTemplates => RouteDoc {
            media: JSON,
            query: none(),
            body: Some(object(&[
                ("action", one_of_strings(&["create", "update", "delete"])),
                (
                    "template",
                    object(&[
                        ("templateName", string()),
                        ("newTemplateName?", string()),
                        ("structureType?", one_of_strings(&structure_types())),
                        ("description?", string()),
                        ("aiPromptTemplate?", string()),
                        ("templateSchema?", object_any()),
                        ("structureRules?", object_any()),
                        ("validationRules?", object_any()),
                        ("complexityLevel?", integer()),
                        ("targetAudience?", string()),
                        ("aiProviderConfig?", object_any()),
                        ("costOptimization?", object_any()),
                    ]),
                ),
            ])),
            // 201 for create, 200 for update and delete.
            ok: (
                200,
                object(&[("action", one_of_strings(&["create", "update", "delete"]))]),
            ),
        },
        RouteId::AdminAnalytics => doc(
            days_query(),
            None,
            object(&[
                ("days", integer()),
                ("templates", array(template_performance())),
                (
                    "daily",
                    array(object(&[
                        ("date", string()),
                        ("jobs", integer()),
                        ("completed", integer()),
                        ("failed", integer()),
                    ])),
                ),
                (
                    "structureTypes",
                    array(object(&[
                        ("structureType", string()),
                        ("jobs", integer()),
                        ("completed", nullable(integer())),
                    ])),
                ),
                (
                    "providers",
                    array(object(&[
                        ("provider", string()),
                        ("attempts", integer()),
                        ("successRate", nullable(number())),
                    ])),
                ),
                ("recommendations", array(string())),
            ]),
        ),
        // A route added to the table without its schemas here still appears
        // (generic body) and the build stays green for a merge; the unit test
        // `every_route_has_its_own_schemas` fails until it is declared.
        #[allow(unreachable_patterns)]
        _ => doc(
            none(),
            None,
            json!({"type": "object", "description": UNDOCUMENTED}),
        ),
    }
}

fn security(access: Access) -> Value {
    match access {
        Access::Public => json!([]),
        Access::Authenticated => {
            json!([{"clientKey": []}, {"session": []}, {"workerSecret": [], "workerId": []}])
        }
        Access::Admin => json!([{"session": []}, {"workerSecret": [], "workerId": []}]),
    }
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": reference("Error")}}})
}

/// The whole document.
pub fn document(version: &str) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let doc = route_doc(route.id);
        let mut parameters: Vec<Value> = Vec::new();
        for segment in route.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let schema = if name == "id" {
                    json!({"type": "integer", "minimum": 1})
                } else {
                    json!({"type": "string", "minLength": 1})
                };
                parameters
                    .push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
            }
        }
        for (name, schema, description) in &doc.query {
            parameters.push(json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description}));
        }
        let mut responses = Map::new();
        let mut content = Map::new();
        content.insert(doc.media.to_string(), json!({"schema": doc.ok.1}));
        let mut ok = json!({"description": "success", "content": content});
        if route.id == RouteId::AdminTemplates {
            responses.insert("201".into(), json!({"description": "created", "content": {"application/json": {"schema": doc.ok.1}}}));
        }
        if route.id == RouteId::Execute {
            responses.insert("202".into(), json!({
                "description": "accepted (`config.async: true` or `Prefer: respond-async`): follow the job at its URLs",
                "headers": {"Location": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": reference("Accepted")}},
            }));
            parameters.push(json!({"name": "Prefer", "in": "header", "required": false,
                "schema": {"type": "string", "enum": ["respond-async"]}, "description": "answer 202 at once; the job runs on the queue"}));
            parameters.push(json!({"name": "X-Request-ID", "in": "header", "required": false,
                "schema": {"type": "string", "minLength": 1, "maxLength": crate::types::api::MAX_EXECUTION_ID_LEN, "pattern": "^[\\x21-\\x7e]+$"},
                "description": "the idempotency key (a repeated key joins or replays the job)"}));
        }
        if matches!(route.id, RouteId::Execute | RouteId::JobRetry) {
            ok["headers"] = json!({"Idempotent-Replay": {"description": "`true` when a completed job is replayed", "schema": {"type": "string"}}});
        }
        responses.insert(doc.ok.0.to_string(), ok);
        if route.id == RouteId::Health {
            responses.insert("503".into(), json!({"description": "degraded: a dependency check failed", "content": {"application/json": {"schema": route_doc(RouteId::Health).ok.1}}}));
        }
        if route.access != Access::Public {
            responses.insert(
                "401".into(),
                error_response("missing or invalid credentials"),
            );
            responses.insert("403".into(), error_response("not allowed for this caller"));
        }
        responses.insert(
            "default".into(),
            error_response("an error (see README: Errors); every error has this body"),
        );
        let mut operation = json!({
            "operationId": format!("{:?}", route.id),
            "summary": route.summary,
            "description": format!("Request: {}\n\nResponse: {}", route.request, route.response),
            "tags": [route.access.as_str()],
            "x-access": route.access.as_str(),
            "security": security(route.access),
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(body) = doc.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        let item = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        item[route.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "bitware-content-granulator",
            "version": version,
            "description": "Turns a topic into a validated, hierarchical outline. Generated from the route table (src/routes.rs) and src/openapi.rs. Every response carries X-Request-ID; every error is the Error schema.",
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "public", "description": "no credentials"},
            {"name": "authenticated", "description": "a client API key, a dashboard session, or worker credentials"},
            {"name": "admin", "description": "an admin session or worker credentials"},
        ],
        "paths": paths,
        "components": components(),
    })
}

/// `/help`'s one-line view of a schema: field names, `?` when optional,
/// nested objects in braces, arrays as `name[]`.
pub fn fields(schema: &Value, components: &Value, depth: usize) -> String {
    let schema = resolve(schema, components);
    if let Some(alternatives) = schema.get("anyOf").and_then(Value::as_array) {
        return alternatives
            .iter()
            .map(|a| fields(a, components, depth))
            .filter(|f| !f.is_empty())
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return String::new();
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    properties
        .iter()
        .map(|(name, s)| {
            let s = resolve(s, components);
            let optional = if required.contains(&name.as_str()) {
                ""
            } else {
                "?"
            };
            let (suffix, inner) = match s.get("type").and_then(Value::as_str) {
                Some("array") => ("[]", resolve(&s["items"], components)),
                _ => ("", s.clone()),
            };
            let nested = if depth > 0 {
                fields(&inner, components, depth - 1)
            } else {
                String::new()
            };
            if nested.is_empty() {
                format!("{name}{suffix}{optional}")
            } else {
                format!("{name}{suffix}{optional}{{{nested}}}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn resolve(schema: &Value, components: &Value) -> Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .rsplit('/')
            .next()
            .and_then(|name| components["schemas"].get(name))
            .cloned()
            .unwrap_or_else(|| json!({})),
        None => schema.clone(),
    }
}

/// `/help`'s `routes[]`: the same route table and schemas as the document.
pub fn help_routes() -> Vec<Value> {
    let components = components();
    ROUTES
        .iter()
        .map(|r| {
            let doc = route_doc(r.id);
            let query: Vec<String> = doc.query.iter().map(|(n, _, _)| format!("{n}?")).collect();
            let request = match (&doc.body, query.is_empty()) {
                (Some(body), _) => fields(body, &components, 2),
                (None, false) => format!("query: {}", query.join(", ")),
                (None, true) => "-".to_string(),
            };
            json!({
                "method": r.method,
                "path": r.path,
                "auth": r.access,
                "summary": r.summary,
                "request": request,
                "response": fields(&doc.ok.1, &components, 2),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_table_is_in_the_document_with_its_tier() {
        let doc = document("test");
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} is missing", route.method, route.path);
            assert_eq!(op["x-access"], route.access.as_str());
            assert_eq!(
                op["security"].as_array().unwrap().is_empty(),
                route.access == Access::Public
            );
            assert!(op["responses"]["default"].is_object());
        }
    }

    #[test]
    fn the_document_states_the_timeout_bounds() {
        let body = execute_body();
        let timeout = &body["anyOf"][0]["properties"]["timeout"];
        assert_eq!(timeout["minimum"], crate::types::api::MIN_TIMEOUT_MS);
        assert_eq!(timeout["maximum"], crate::types::api::MAX_TIMEOUT_MS);
    }

    #[test]
    fn every_route_has_its_own_schemas() {
        for route in ROUTES {
            assert_ne!(
                route_doc(route.id).ok.1["description"],
                UNDOCUMENTED,
                "{} {}: declare its schemas in route_doc",
                route.method,
                route.path
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document("test");
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }

    #[test]
    fn help_lists_fields_as_the_api_returns_them() {
        let routes = help_routes();
        let providers = routes
            .iter()
            .find(|r| r["path"] == "/api/ai-providers")
            .unwrap();
        assert!(providers["response"]
            .as_str()
            .unwrap()
            .contains("inDefaultChain"));
        let execute = routes.iter().find(|r| r["path"] == "/api/execute").unwrap();
        let body = execute["request"].as_str().unwrap();
        assert!(
            body.contains("topic?") && body.contains("config?{aiModel?, aiProvider?"),
            "{body}"
        );
        let response = execute["response"].as_str().unwrap();
        for field in [
            "success",
            "model",
            "output",
            "usage{tokens{",
            "duration",
            "cost",
            "metadata{workerChain",
        ] {
            assert!(response.contains(field), "{field}: {response}");
        }
    }
}
