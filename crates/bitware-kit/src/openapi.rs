//! The generic part of a worker's API documents: small JSON-Schema builders,
//! what a route declares beyond the route table (`RouteDoc`), and the
//! OpenAPI 3.1 document and `/help`'s route list built from a worker's route
//! table + one `RouteDoc` per route. Nothing here names a worker's route: the
//! worker declares its schemas (the granulator: `src/openapi/components.rs`
//! and `paths.rs`).
//!
//! The granulator runs it natively only and serves the documents it
//! generated (embedded JSON), keeping it out of its wasm; a small worker may
//! build its document per request.

use crate::routes::{Access, Route};
use serde_json::{json, Map, Value};
use std::fmt::Debug;

// ---- schema builders ------------------------------------------------------

pub fn string() -> Value {
    json!({"type": "string"})
}
pub fn integer() -> Value {
    json!({"type": "integer"})
}
pub fn number() -> Value {
    json!({"type": "number"})
}
pub fn boolean() -> Value {
    json!({"type": "boolean"})
}
pub fn any() -> Value {
    json!({})
}
pub fn object_any() -> Value {
    json!({"type": "object"})
}
pub fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}
pub fn one_of_strings(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}
/// The schema, or JSON null.
pub fn nullable(schema: Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some(t) if schema.as_object().is_some_and(|o| !o.contains_key("enum")) => {
            let mut s = schema.clone();
            s["type"] = json!([t, "null"]);
            s
        }
        _ => json!({"anyOf": [schema, {"type": "null"}]}),
    }
}
pub fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// An object: `fields` are `(name, schema)`; a name ending in `?` is optional.
/// Other properties are allowed (answers may grow without breaking clients).
pub fn object(fields: &[(&str, Value)]) -> Value {
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

pub const JSON: &str = "application/json";

/// What one route takes and answers, beyond the route table.
pub struct RouteDoc {
    pub query: Vec<(&'static str, Value, &'static str)>,
    pub body: Option<Value>,
    /// The success body's media type.
    pub media: &'static str,
    /// The success status and its body.
    pub ok: (u16, Value),
    /// Headers of the success answer (`{name: {description, schema}}`).
    pub ok_headers: Option<Value>,
    /// Other answers a route documents besides `ok` and the errors
    /// (`"201"`, `"202"`, `"503"`…), as OpenAPI response objects.
    pub responses: Vec<(&'static str, Value)>,
    /// Request header parameters, in order, after the path and query ones.
    pub headers: Vec<Value>,
}

impl RouteDoc {
    /// A route answering `ok` with 200 and `media`, taking `query` and `body`.
    pub fn new(
        query: Vec<(&'static str, Value, &'static str)>,
        body: Option<Value>,
        ok: Value,
    ) -> RouteDoc {
        RouteDoc {
            query,
            body,
            media: JSON,
            ok: (200, ok),
            ok_headers: None,
            responses: Vec::new(),
            headers: Vec::new(),
        }
    }
}

/// What the document says besides its routes.
pub struct Info<'a> {
    pub title: &'a str,
    pub version: &'a str,
    pub description: &'a str,
    pub components: Value,
}

/// The `Error` schema every error answer has (`crate::error`).
pub fn error_schema() -> Value {
    object(&[
        ("error", string()),
        ("status", integer()),
        ("code", string()),
        ("details?", any()),
    ])
}

/// `components.securitySchemes`: the three credential tiers, as [`security`] names them.
pub fn security_schemes() -> Value {
    json!({
        "clientKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
            "description": "A client API key, validated by the Key Account Manager."},
        "session": {"type": "apiKey", "in": "header", "name": "x-bitware-session-token",
            "description": "A dashboard session, validated by the Key Account Manager; role admin reaches admin routes."},
        "workerSecret": {"type": "http", "scheme": "bearer",
            "description": "Worker-to-worker: Authorization: Bearer <SHARED_SECRET>, always with X-Worker-ID."},
        "workerId": {"type": "apiKey", "in": "header", "name": "X-Worker-ID",
            "description": "The calling worker's name (with the bearer secret); X-Client-ID names the client it acts for."},
    })
}

pub fn security(access: Access) -> Value {
    match access {
        Access::Public => json!([]),
        Access::Authenticated => {
            json!([{"clientKey": []}, {"session": []}, {"workerSecret": [], "workerId": []}])
        }
        Access::Admin => json!([{"session": []}, {"workerSecret": [], "workerId": []}]),
    }
}

pub fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": reference("Error")}}})
}

/// The whole document.
pub fn document<Id: Copy + Debug>(
    routes: &[Route<Id>],
    route_doc: impl Fn(Id) -> RouteDoc,
    info: Info<'_>,
) -> Value {
    let mut paths = Map::new();
    for route in routes {
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
        parameters.extend(doc.headers.iter().cloned());
        if let Some(headers) = &doc.ok_headers {
            ok["headers"] = headers.clone();
        }
        for (status, response) in &doc.responses {
            responses.insert(status.to_string(), response.clone());
        }
        responses.insert(doc.ok.0.to_string(), ok);
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
            "title": info.title,
            "version": info.version,
            "description": info.description,
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "public", "description": "no credentials"},
            {"name": "authenticated", "description": "a client API key, a dashboard session, or worker credentials"},
            {"name": "admin", "description": "an admin session or worker credentials"},
        ],
        "paths": paths,
        "components": info.components,
    })
}

pub fn fields(schema: &Value, components: &Value, depth: usize) -> String {
    let schema = resolve(schema, components);
    let alternatives = schema.get("anyOf").or_else(|| schema.get("oneOf"));
    if let Some(alternatives) = alternatives.and_then(Value::as_array) {
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

pub fn resolve(schema: &Value, components: &Value) -> Value {
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
pub fn help_routes<Id: Copy>(
    routes: &[Route<Id>],
    route_doc: impl Fn(Id) -> RouteDoc,
    components: &Value,
) -> Vec<Value> {
    routes
        .iter()
        .map(|r| {
            let doc = route_doc(r.id);
            let query: Vec<String> = doc.query.iter().map(|(n, _, _)| format!("{n}?")).collect();
            let request = match (&doc.body, query.is_empty()) {
                (Some(body), _) => fields(body, components, 2),
                (None, false) => format!("query: {}", query.join(", ")),
                (None, true) => "-".to_string(),
            };
            json!({
                "method": r.method,
                "path": r.path,
                "auth": r.access,
                "summary": r.summary,
                "request": request,
                "response": fields(&doc.ok.1, components, 2),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Id {
        Health,
        Item,
    }

    static TABLE: &[Route<Id>] = &[
        crate::route!(
            Id::Health,
            "GET",
            "/health",
            Public,
            "health",
            "-",
            "status"
        ),
        crate::route!(
            Id::Item,
            "GET",
            "/api/items/{id}",
            Admin,
            "one item",
            "-",
            "item"
        ),
    ];

    fn doc(id: Id) -> RouteDoc {
        match id {
            Id::Health => RouteDoc::new(Vec::new(), None, object(&[("status", string())])),
            Id::Item => RouteDoc::new(
                vec![("fields", string(), "which fields")],
                None,
                object(&[("item", object(&[("id", integer()), ("name?", string())]))]),
            ),
        }
    }

    #[test]
    fn the_document_has_every_route_with_its_tier_parameters_and_errors() {
        let components =
            json!({"schemas": {"Error": error_schema()}, "securitySchemes": security_schemes()});
        let d = document(
            TABLE,
            doc,
            Info {
                title: "t",
                version: "1",
                description: "d",
                components,
            },
        );
        let health = &d["paths"]["/health"]["get"];
        assert_eq!(health["security"], json!([]));
        assert!(health["responses"].get("401").is_none());
        let item = &d["paths"]["/api/items/{id}"]["get"];
        assert_eq!(item["x-access"], "admin");
        assert_eq!(item["operationId"], "Item");
        assert_eq!(item["parameters"][0]["in"], "path");
        assert_eq!(item["parameters"][1]["name"], "fields");
        assert!(item["responses"]["403"]["content"].is_object());
        assert_eq!(
            d["components"]["securitySchemes"]["clientKey"]["name"],
            "X-API-Key"
        );
    }

    #[test]
    fn help_lists_fields_with_optional_ones_marked() {
        let rows = help_routes(TABLE, doc, &json!({}));
        assert_eq!(rows[1]["request"], "query: fields?");
        assert_eq!(rows[1]["response"], "item{id, name?}");
        assert_eq!(rows[0]["auth"], "public");
    }
}
