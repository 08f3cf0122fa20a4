//! The OpenAPI 3.1 document (`GET /openapi.json`) and `/help` (its routes
//! from the same source, the rest in `help.rs`), generated from one source: the route table
//! (`routes::ROUTES`: method, path, access tier, summary) plus the request
//! and response schema of each route (`paths.rs`, with the shared shapes of
//! `components.rs`), assembled by the route-table-generic builder (`bitware_kit::openapi`). A
//! route added to the table appears in both documents, and a unit test fails
//! until its schemas are declared.
//!
//! The worker serves what that code generated: `api/openapi.json` and
//! `api/help.json` (all of `/help` but what a deployment configures, see
//! `help.rs`) at the top of the repository (checked in, to be read and
//! diffed), embedded at build time without their whitespace (`build.rs`), so
//! the code that builds them stays out of the wasm (native only). A unit test
//! regenerates both and fails when a checked-in copy is stale; refresh them
//! with `UPDATE_OPENAPI=1 cargo test --lib openapi`.

/// The route-table-generic builder is the kit's (`bitware_kit::openapi`).
#[cfg(not(target_arch = "wasm32"))]
pub use bitware_kit::openapi as builder;
#[cfg(not(target_arch = "wasm32"))]
pub mod components;
#[cfg(not(target_arch = "wasm32"))]
pub mod help;
#[cfg(not(target_arch = "wasm32"))]
pub mod paths;

/// The generated document, compact; `info.version` is [`VERSION_SLOT`].
pub const DOCUMENT: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));
/// `/help` (its `routes[]` generated from the same source) without what a
/// deployment configures, compact.
pub const HELP: &str = include_str!(concat!(env!("OUT_DIR"), "/help.json"));
/// Stands for the deployment's version in [`DOCUMENT`].
pub const VERSION_SLOT: &str = "\"@VERSION@\"";

/// The document with this deployment's version.
pub fn document(version: &str) -> String {
    let version = serde_json::Value::from(version).to_string();
    DOCUMENT.replacen(VERSION_SLOT, &version, 1)
}

/// The document as generated from the route table and the schemas, with
/// the OpenAPI links that chain its answers to the routes they name.
#[cfg(not(target_arch = "wasm32"))]
pub fn generate_document(version: &str) -> serde_json::Value {
    let mut doc = builder::document(
        crate::routes::ROUTES,
        paths::route_doc,
        builder::Info {
            title: crate::types::env::SERVICE_NAME,
            version,
            description: "Turns a topic into a validated, hierarchical outline. Generated from the route table (src/routes.rs) and src/openapi/. Every response carries X-Request-ID; every error is the Error schema.",
            components: components::components(),
        },
    );
    paths::add_links(&mut doc);
    doc
}

/// `/help`'s `routes[]` as generated from the same source.
#[cfg(not(target_arch = "wasm32"))]
pub fn generate_help_routes() -> serde_json::Value {
    serde_json::Value::Array(builder::help_routes(
        crate::routes::ROUTES,
        paths::route_doc,
        &components::components(),
    ))
}

#[cfg(test)]
mod tests {
    use super::components::execute_body;
    use super::paths::{route_doc, UNDOCUMENTED};
    use super::*;
    use crate::routes::{Access, ROUTES};
    use serde_json::Value;

    /// The checked-in copies are what the code generates today, and the
    /// embedded ones are the same JSON, compact.
    #[test]
    fn the_served_documents_are_current() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/api/");
        let generated = [
            ("openapi.json", DOCUMENT, generate_document("@VERSION@")),
            ("help.json", HELP, help::help_static()),
        ];
        for (file, served, value) in generated {
            let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
            if std::env::var_os("UPDATE_OPENAPI").is_some() {
                std::fs::write(format!("{dir}{file}"), &text).unwrap();
            } else {
                let checked_in = std::fs::read_to_string(format!("{dir}{file}")).unwrap();
                assert!(
                    served == serde_json::to_string(&value).unwrap(),
                    "the embedded api/{file} is not its compact form (build.rs)"
                );
                assert!(
                    checked_in == text,
                    "api/{file} is stale: run `UPDATE_OPENAPI=1 cargo test --lib openapi` and commit it"
                );
            }
        }
    }

    #[test]
    fn the_served_document_carries_the_deployment_version() {
        let doc: Value = serde_json::from_str(&document("1.2.3 \"q\"")).unwrap();
        assert_eq!(doc["info"]["version"], "1.2.3 \"q\"");
        assert_eq!(doc["openapi"], "3.1.0");
        let help: Value = serde_json::from_str(HELP).unwrap();
        assert!(help["routes"]
            .as_array()
            .is_some_and(|r| r.len() == ROUTES.len()));
    }

    #[test]
    fn every_route_of_the_table_is_in_the_document_with_its_tier() {
        let doc = generate_document("test");
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
        let timeout = &body["oneOf"][0]["properties"]["timeout"];
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
        let doc = generate_document("test");
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }

    #[test]
    fn help_lists_fields_as_the_api_returns_them() {
        let routes = generate_help_routes();
        let routes = routes.as_array().unwrap();
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
