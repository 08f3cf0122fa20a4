//! What each granulator route takes and answers beyond the route table:
//! its query parameters, request body, success body and extra answers.

use super::builder::*;
use super::components::*;
use crate::routes::RouteId;
use serde_json::{json, Value};

pub const UNDOCUMENTED: &str = "not yet described in src/openapi/paths.rs";

fn days_query() -> Vec<(&'static str, Value, &'static str)> {
    vec![(
        "days",
        json!({"type": "integer", "minimum": 1, "maximum": 365, "default": 30}),
        "period in days",
    )]
}

/// A route's schemas, with the answers and headers only some routes have.
pub fn route_doc(id: RouteId) -> RouteDoc {
    let mut doc = schemas(id);
    match id {
        RouteId::AdminTemplates => doc.responses.push((
            "201",
            json!({"description": "created", "content": {"application/json": {"schema": doc.ok.1}}}),
        )),
        RouteId::Execute => {
            doc.responses.push(("202", json!({
                "description": "accepted (`config.async: true` or `Prefer: respond-async`): follow the job at its URLs",
                "headers": {"Location": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": reference("Accepted")}},
            })));
            doc.responses.push((
                "422",
                error_response("refused for what is stored, whatever the body's form: the X-Request-ID (or executionId) is bound to another body (`idempotency_key_reused`), the job would exceed a budget, or the model has no price while a budget applies"),
            ));
            // RFC 7240 §2: preferences the server does not know are ignored,
            // so any value is valid; only `respond-async` changes the answer.
            doc.headers.push(json!({"name": "Prefer", "in": "header", "required": false,
                "schema": {"type": "string", "examples": ["respond-async"]}, "description": "`respond-async`: answer 202 at once; the job runs on the queue (other preferences are ignored, RFC 7240)"}));
            doc.headers.push(json!({"name": "X-Request-ID", "in": "header", "required": false,
                "schema": {"type": "string", "minLength": 1, "maxLength": crate::types::api::MAX_EXECUTION_ID_LEN, "pattern": crate::types::api::REQUEST_ID_PATTERN},
                "description": "the idempotency key (a repeated key joins or replays the job)"}));
        }
        RouteId::JobEvents => doc.responses.push((
            "429",
            json!({
                "description": "`too_many_streams`: the caller's tenant already holds `EVENT_STREAMS_PER_TENANT` (10 by default) events streams open; try again after `Retry-After` seconds, or follow `GET /api/jobs/{id}/status` (docs/limits.md)",
                "headers": {"Retry-After": {"description": "seconds until a lease of the tenant's may have expired", "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
                "content": {"application/json": {"schema": reference("Error")}},
            }),
        )),
        RouteId::JobCancel => doc.responses.push((
            "409",
            error_response("the job has ended: `job_not_cancellable` (details.status: completed or failed)"),
        )),
        RouteId::Health => doc.responses.push((
            "503",
            json!({"description": "degraded: a dependency check failed", "content": {"application/json": {"schema": doc.ok.1}}}),
        )),
        _ => {}
    }
    if matches!(id, RouteId::Execute | RouteId::JobRetry) {
        doc.ok_headers = Some(
            json!({"Idempotent-Replay": {"description": "`true` when a completed job is replayed", "schema": {"type": "string"}}}),
        );
    }
    doc
}

/// The routes a job id or a template name leads to.
const JOB_ROUTES: [&str; 6] = [
    "Job",
    "JobStatus",
    "JobEvents",
    "JobStructure",
    "JobRetry",
    "JobCancel",
];

/// OpenAPI links (`responses.<status>.links`): the job id an execute or the
/// job list answers leads to the `{id}` routes, a template an admin
/// creates or updates to `GET /api/templates/{name}`, so a client (and
/// Schemathesis' stateful phase) follows real ids, not made-up ones.
pub fn add_links(doc: &mut Value) {
    let job_links = |id: &str| -> Value {
        JOB_ROUTES
            .iter()
            .map(|op| {
                (
                    format!("{op}ById"),
                    json!({"operationId": op, "parameters": {"id": id}}),
                )
            })
            .collect::<serde_json::Map<String, Value>>()
            .into()
    };
    let template_link = json!({"Template": {"operationId": "Template",
        "parameters": {"name": "$response.body#/template/templateName"}}});
    for (path, status, links) in [
        (
            "/api/execute",
            "200",
            job_links("$response.body#/output/jobId"),
        ),
        ("/api/execute", "202", job_links("$response.body#/jobId")),
        ("/api/jobs", "200", job_links("$response.body#/jobs/0/id")),
        (
            "/api/jobs/{id}/retry",
            "200",
            job_links("$response.body#/output/jobId"),
        ),
        ("/api/admin/templates", "201", template_link.clone()),
        ("/api/admin/templates", "200", template_link),
    ] {
        let method = if path == "/api/jobs" { "get" } else { "post" };
        doc["paths"][path][method]["responses"][status]["links"] = links;
    }
}

/// A job with its attempts (`GET /api/jobs/{id}`, and a cancel's answer).
fn job_detail() -> Value {
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
    ])
}

/// Query, body and success body of each route.
fn schemas(id: RouteId) -> RouteDoc {
    let none = Vec::new;
    let doc = RouteDoc::new;
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
        RouteId::Job | RouteId::JobCancel => doc(none(), None, job_detail()),
        RouteId::JobStatus => doc(none(), None, reference("JobStatus")),
        RouteId::JobEvents => RouteDoc {
            query: none(),
            body: None,
            media: "text/event-stream",
            ok: (
                200,
                json!({
                    "type": "object",
                    "description": "One Server-Sent Event (Schemathesis checks each): `progress` while the job runs, `branch` for each level-1 branch as it becomes final (those already final first when the stream opens on a running job), then `completed`, `failed` or `cancelled`; `error` or `timeout` end a stream early. `data` is the JobStatus object as JSON, or for `branch` a PartialBranch (`position`, `total`, `title`, `node`).",
                    "properties": {
                        "event": {"type": "string", "enum": ["progress", "branch", "completed", "failed", "cancelled", "error", "timeout"]},
                        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {"anyOf": [{"$ref": "#/components/schemas/JobStatus"}, {"$ref": "#/components/schemas/PartialBranch"}]}},
                    },
                    "required": ["event", "data"],
                }),
            ),
            ..RouteDoc::new(none(), None, Value::Null)
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
                ("complete", boolean()),
                ("structure?", object_any()),
                ("branches?", array(reference("PartialBranch"))),
            ]),
        ),
        RouteId::JobRetry => doc(none(), None, reference("Envelope")),
        RouteId::Validate => doc(
            none(),
            Some(validate_body()),
            object(&[
                ("jobId", integer()),
                ("validationResult", reference("ValidationResult")),
            ]),
        ),
        RouteId::ValidationHistory => doc(
            vec![
                (
                    "job_id",
                    json!({"type": "integer", "minimum": 1, "maximum": i64::MAX}),
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
        RouteId::EconomyEstimate => doc(none(), Some(estimate_body()), reference("Estimate")),
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
            body: Some(admin_templates_body()),
            // 201 for create, 200 for update and delete.
            ok: (
                200,
                object(&[("action", one_of_strings(&["create", "update", "delete"]))]),
            ),
            ..RouteDoc::new(none(), None, Value::Null)
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
        RouteId::AdminAlerts => doc(
            vec![(
                "window",
                json!({"type": "integer", "minimum": 1, "maximum": crate::services::alerts::MAX_WINDOW_SECONDS, "default": crate::services::alerts::DEFAULT_WINDOW_SECONDS}),
                "window in seconds (default ALERT_WINDOW_SECONDS)",
            )],
            None,
            alerts_report(),
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
