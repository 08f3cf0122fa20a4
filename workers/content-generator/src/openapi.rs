//! `GET /openapi.json` and `/help`'s route list, both from the route table
//! plus one `RouteDoc` per route (the builder is `bitware_kit::openapi`). A
//! route added to the table without a `RouteDoc` here does not compile.

use crate::routes::{RouteId, ROUTES};
use crate::types::env::SERVICE_NAME;
use crate::types::request::ACTIONS;
use bitware_kit::openapi::{
    array, boolean, error_schema, help_routes, integer, number, object, object_any, one_of_strings,
    security_schemes, string, Info, RouteDoc,
};
use serde_json::{json, Value};

/// The six structure types (contracts §4).
const STRUCTURE_TYPES: [&str; 6] = [
    "course",
    "quiz",
    "novel",
    "workflow",
    "knowledge_map",
    "learning_path",
];

pub fn route_doc(id: RouteId) -> RouteDoc {
    let ok = |body| RouteDoc::new(Vec::new(), None, body);
    match id {
        RouteId::Root => ok(object(&[
            ("status", string()),
            ("service", string()),
            ("version", string()),
            ("environment", string()),
            ("timestamp", string()),
        ])),
        RouteId::Health => {
            let check = object(&[("ok", boolean()), ("error?", string())]);
            let body = object(&[
                ("status", one_of_strings(&["healthy", "degraded"])),
                ("service", string()),
                ("version", string()),
                (
                    "checks",
                    object(&[
                        ("database", check.clone()),
                        ("kv", check.clone()),
                        ("r2", check.clone()),
                        ("kam", check),
                    ]),
                ),
                ("timestamp", string()),
            ]);
            let mut doc = ok(body.clone());
            doc.responses.push((
                "503",
                json!({"description": "degraded: a dependency check failed",
                "content": {"application/json": {"schema": body}}}),
            ));
            doc
        }
        RouteId::Help => ok(object(&[
            ("service", string()),
            ("version", string()),
            ("auth", object_any()),
            (
                "routes",
                array(object(&[
                    ("method", string()),
                    ("path", string()),
                    ("auth", string()),
                    ("summary", string()),
                    ("request", string()),
                    ("response", string()),
                ])),
            ),
            ("actions", array(string())),
        ])),
        RouteId::OpenApi => ok(object(&[
            ("openapi", string()),
            ("info", object_any()),
            ("paths", object_any()),
            ("components", object_any()),
        ])),
        RouteId::Execute => {
            let mut doc = RouteDoc::new(
                Vec::new(),
                Some(object(&[
                    ("action", one_of_strings(&ACTIONS)),
                    (
                        "input",
                        object(&[
                            ("granulatorJobId", integer()),
                            ("topic", string()),
                            ("structureType", one_of_strings(&STRUCTURE_TYPES)),
                            ("structure?", object_any()),
                            ("structureReference?", object_any()),
                            ("wordCountEstimates", object_any()),
                            ("contentMetadata", object_any()),
                        ]),
                    ),
                    ("params?", object_any()),
                    ("config?", object_any()),
                    ("maxCostUsd?", number()),
                    ("timeout?", integer()),
                    ("async?", boolean()),
                ])),
                object(&[
                    ("success", boolean()),
                    ("model", string()),
                    (
                        "output",
                        object(&[
                            ("generatorJobId", integer()),
                            ("jobId", integer()),
                            ("granulatorJobId", integer()),
                            ("topic", string()),
                            ("structureType", one_of_strings(&STRUCTURE_TYPES)),
                            ("content?", object_any()),
                            ("contentReference?", object_any()),
                            ("summary", object_any()),
                            ("qualityScore", number()),
                            ("qualityReport", object_any()),
                            ("readyForNext", boolean()),
                            ("nextWorkerRecommendation", string()),
                            ("contentMetadata", object_any()),
                            ("storageTier", one_of_strings(&["inline", "kv", "r2"])),
                        ]),
                    ),
                    (
                        "usage",
                        object(&[(
                            "tokens",
                            object(&[
                                ("input", integer()),
                                ("output", integer()),
                                ("cached", integer()),
                            ]),
                        )]),
                    ),
                    ("duration", integer()),
                    ("cost", number()),
                    ("metadata", object_any()),
                ]),
            );
            doc.responses.push((
                "202",
                json!({"description": "accepted: follow Location (Prefer: respond-async, or async: true)",
                "content": {"application/json": {"schema": object(&[("success", boolean()), ("status", string()),
                ("jobId", integer()), ("statusUrl", string()), ("eventsUrl", string()), ("resultUrl", string()), ("cancelUrl", string())])}}}),
            ));
            doc
        }
        RouteId::Job => ok(object(&[("job", job_view()), ("result?", object_any())])),
        RouteId::JobStatus | RouteId::JobCancel => ok(job_view()),
        RouteId::JobEvents => ok(string()),
        RouteId::JobContent => ok(object(&[
            ("jobId", integer()),
            ("source", one_of_strings(&["inline", "kv", "r2"])),
            ("content", object_any()),
        ])),
        RouteId::AdminStats => ok(object(&[
            ("generations", integer()),
            ("words", integer()),
            (
                "tenants",
                array(object(&[
                    ("tenant", string()),
                    ("structureType", string()),
                    ("generations", integer()),
                    ("words", integer()),
                ])),
            ),
        ])),
    }
}

/// A job's view (`bitware_kit::jobs::view::JobView`).
fn job_view() -> Value {
    object(&[
        ("jobId", integer()),
        ("executionId", string()),
        (
            "status",
            one_of_strings(&["processing", "completed", "failed", "cancelled"]),
        ),
        ("stage", string()),
        ("runMode", string()),
        ("run", integer()),
        ("percent", integer()),
        ("progress", object_any()),
        ("tokens", object_any()),
        ("costUsd?", number()),
        ("failure?", object_any()),
        ("cancelledBy?", string()),
        ("cancelledAt?", string()),
        ("timings", object_any()),
        ("statusUrl", string()),
        ("eventsUrl", string()),
        ("cancelUrl", string()),
    ])
}

fn components() -> Value {
    json!({"schemas": {"Error": error_schema()}, "securitySchemes": security_schemes()})
}

pub fn document(version: &str) -> Value {
    bitware_kit::openapi::document(ROUTES, route_doc, Info {
        title: SERVICE_NAME,
        version,
        description: "The Content Generator of the AI Factory: content for every element of a Content Granulator outline. Generated from the route table (src/routes.rs) and src/openapi.rs; every error is the Error schema.",
        components: components(),
    })
}

/// `/help`'s `routes[]`: fields as the API spells them, `?` when optional.
pub fn help() -> Vec<Value> {
    help_routes(ROUTES, route_doc, &components())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_with_its_tier() {
        let doc = document("test");
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert_eq!(
                op["x-access"],
                route.access.as_str(),
                "{} {}",
                route.method,
                route.path
            );
        }
        assert_eq!(help().len(), ROUTES.len());
    }
}
