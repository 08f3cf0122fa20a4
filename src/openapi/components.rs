//! The granulator's shared schemas: `components.schemas` (Error, Envelope,
//! Job, JobStatus, Template…), the security schemes, and the request bodies
//! of `/api/execute` with the limits the edge enforces.

use super::builder::*;
use crate::types::api::Action;
use crate::types::provider::ProviderKind;
use crate::types::structure::StructureType;
use serde_json::{json, Value};

// ---- shared shapes --------------------------------------------------------

pub fn tokens() -> Value {
    object(&[
        ("input", integer()),
        ("output", integer()),
        ("cached?", integer()),
    ])
}

pub fn structure_types() -> Vec<&'static str> {
    StructureType::ALL.iter().map(|t| t.as_str()).collect()
}

pub fn providers() -> Vec<&'static str> {
    ProviderKind::ALL.iter().map(|p| p.as_str()).collect()
}

pub fn components() -> Value {
    json!({
        "schemas": {
            "Error": error_schema(),
            "Tokens": tokens(),
            "Envelope": envelope(),
            "Job": job(),
            "JobStatus": job_status(),
            "PartialBranch": partial_branch(),
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
        "securitySchemes": security_schemes(),
    })
}

/// The Resource Manager envelope of every `/api/execute` action.
pub fn envelope() -> Value {
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

pub fn job() -> Value {
    object(&[
        ("id", integer()),
        ("clientId", string()),
        ("executionId", string()),
        ("topic", string()),
        ("structureType", string()),
        ("granularityLevel", integer()),
        (
            "status",
            one_of_strings(&["processing", "completed", "failed", "cancelled"]),
        ),
        ("stage", string()),
        ("runs", integer()),
        ("provider", nullable(string())),
        ("model", nullable(string())),
        ("tokensUsed", reference("Tokens")),
        ("costUsd", nullable(number())),
        ("qualityScore", nullable(number())),
        ("cancelledBy", nullable(string())),
        ("cancelledAt", nullable(string())),
        ("createdAt", string()),
        ("updatedAt", string()),
    ])
}

pub fn job_status() -> Value {
    let counts = object(&[("received", integer()), ("expected", integer())]);
    object(&[
        ("jobId", integer()),
        (
            "status",
            one_of_strings(&["processing", "completed", "failed", "cancelled"]),
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

/// A level-1 branch of a running job, final (issue 24): the events
/// stream's `branch` data and an item of a partial structure's `branches`.
pub fn partial_branch() -> Value {
    let mut schema = object(&[
        ("position", json!({"type": "integer", "minimum": 1})),
        ("total", json!({"type": "integer", "minimum": 1})),
        ("title", string()),
        ("node", object_any()),
    ]);
    schema["description"] = json!("position: 1-based, in skeleton order, of total level-1 nodes; node: the branch's canonical subtree, as it appears in the completed structure");
    schema
}

pub fn consumption_row(extra: &[(&str, Value)]) -> Value {
    let mut fields = vec![
        ("attempts", integer()),
        ("tokensInput", nullable(integer())),
        ("tokensOutput", nullable(integer())),
        ("costUsd", nullable(number())),
    ];
    fields.extend(extra.iter().cloned());
    object(&fields)
}

pub fn efficiency() -> Value {
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

pub fn template_performance() -> Value {
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

pub fn job_stats() -> Value {
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
                        ("cancelled", integer()),
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

pub fn provider_row() -> Value {
    consumption_row(&[
        ("provider", string()),
        ("successes", nullable(integer())),
        ("successRate", nullable(number())),
        ("averageLatencyMs", nullable(number())),
    ])
}

const TEXT: &str = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$";
/// The same, with at least one character that is not white space.
const NON_BLANK: &str = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$";

pub fn text(max: usize) -> Value {
    json!({"type": "string", "maxLength": max, "pattern": TEXT})
}

use crate::types::api::{
    MAX_AUDIENCE_CHARS, MAX_CONFIG_NAME_CHARS, MAX_COST_USD, MAX_ELEMENTS_LIMIT,
    MAX_EXECUTION_ID_LEN, MAX_TEMPLATE_NAME_CHARS, MAX_TIMEOUT_MS, MAX_TOPIC_CHARS, MIN_TIMEOUT_MS,
};

fn non_blank(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": NON_BLANK})
}

fn range(kind: &str, min: impl Into<Value>, max: impl Into<Value>) -> Value {
    json!({"type": kind, "minimum": min.into(), "maximum": max.into()})
}

/// An object whose fields are all optional and may be null (the API reads
/// null as not sent, `types::request`), besides `required` ones (never null).
fn loose_object(required: &[(&str, Value)], optional: &[(&str, Value)]) -> Value {
    let mut fields: Vec<(String, Value)> = required
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    fields.extend(
        optional
            .iter()
            .map(|(n, v)| (format!("{n}?"), nullable(v.clone()))),
    );
    let refs: Vec<(&str, Value)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    object(&refs)
}

/// `input` / `params` of a granulation or estimate (contracts §2: either may
/// carry a field, `params` wins): every field optional here; which ones a
/// body needs somewhere is [`somewhere`].
fn granulate_params(with_execution_id: bool) -> Value {
    let mut fields = vec![
        ("topic", text(MAX_TOPIC_CHARS)),
        ("structureType", one_of_strings(&structure_types())),
        ("templateName", text(MAX_TEMPLATE_NAME_CHARS)),
        ("granularityLevel", range("integer", 1, 5)),
        ("targetAudience", text(MAX_AUDIENCE_CHARS)),
        (
            "constraints",
            loose_object(
                &[],
                &[
                    ("maxElements", range("integer", 1, MAX_ELEMENTS_LIMIT)),
                    (
                        "counts",
                        json!({"type": "object", "additionalProperties": range("integer", 1, 50)}),
                    ),
                ],
            ),
        ),
        ("options", object_any()),
    ];
    if with_execution_id {
        fields.push((
            "executionId",
            json!({"type": "string", "maxLength": MAX_EXECUTION_ID_LEN, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}),
        ));
    }
    loose_object(&[], &fields)
}

/// `field` sent (not null, not blank) in `input` or in `params`: one
/// alternative per place, for an `anyOf`.
fn somewhere(field: &str, schema: &Value) -> Vec<Value> {
    ["input", "params"]
        .iter()
        .map(|place| {
            json!({"required": [place], "properties": {*place: {
                "type": "object", "required": [field], "properties": {field: schema}}}})
        })
        .collect()
}

/// `structureType`, or else a `templateName`, somewhere.
fn a_type_somewhere() -> Value {
    let mut alternatives = somewhere("structureType", &one_of_strings(&structure_types()));
    alternatives.extend(somewhere(
        "templateName",
        &non_blank(MAX_TEMPLATE_NAME_CHARS),
    ));
    json!({"anyOf": alternatives})
}

fn config_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("aiProvider", one_of_strings(&providers())),
        ("aiModel", non_blank(MAX_CONFIG_NAME_CHARS)),
        ("temperature", range("number", 0, 2)),
        ("maxTokens", range("integer", 256, 64000)),
        ("validation", boolean()),
        ("async", boolean()),
        ("validationLevel", range("integer", 1, 3)),
        ("validationThreshold", range("number", 0, 100)),
        (
            "maxCostUsd",
            json!({"type": "number", "exclusiveMinimum": 0, "maximum": MAX_COST_USD}),
        ),
        ("strategy", one_of_strings(&["single", "fanout", "auto"])),
    ]
}

/// `config`: a model belongs to one provider, so `aiModel` needs `aiProvider`.
fn exec_config() -> Value {
    let mut config = loose_object(&[], &config_fields());
    config["dependentSchemas"] = json!({"aiModel": {"anyOf": [
        {"properties": {"aiModel": {"type": "null"}}},
        {"required": ["aiProvider"], "properties": {"aiProvider": one_of_strings(&providers())}},
    ]}});
    config
}

/// One shape per action (`action` tells them apart); a model without a
/// price is refused (422) while a budget applies.
pub fn execute_body() -> Value {
    let timeout = range("integer", MIN_TIMEOUT_MS, MAX_TIMEOUT_MS);
    let shape = |actions: &[&str], params: Value, needs: Vec<Value>| {
        let mut shape = loose_object(
            &[("action", one_of_strings(actions))],
            &[
                ("input", params.clone()),
                ("params", params),
                ("config", exec_config()),
                ("timeout", timeout.clone()),
            ],
        );
        shape["allOf"] = json!(needs);
        shape
    };
    let granulate = shape(
        &["granulate", "process"],
        granulate_params(true),
        vec![
            json!({"anyOf": somewhere("topic", &non_blank(MAX_TOPIC_CHARS))}),
            a_type_somewhere(),
        ],
    );
    let job_id = json!({"type": "integer", "minimum": 1});
    let validate = shape(
        &["validate"],
        loose_object(&[], &[("jobId", job_id.clone())]),
        vec![json!({"anyOf": somewhere("jobId", &job_id)})],
    );
    let estimate = shape(
        &["estimate"],
        granulate_params(false),
        vec![a_type_somewhere()],
    );
    json!({"oneOf": [granulate, validate, estimate], "description": format!("action: one of {}; validate reads config.validationLevel and config.validationThreshold", Action::NAMES.join(", "))})
}

/// `POST /api/economy/estimate`: a granulation's fields (topic optional)
/// with `aiProvider`, `aiModel` and `validationLevel` beside them; a model
/// alone names its provider.
pub fn estimate_body() -> Value {
    let params = granulate_params(false);
    let mut fields: Vec<(&str, Value)> = params["properties"]
        .as_object()
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .collect();
    let config = config_fields();
    for name in ["aiProvider", "aiModel", "validationLevel"] {
        if let Some((_, schema)) = config.iter().find(|(n, _)| *n == name) {
            fields.push((name, nullable(schema.clone())));
        }
    }
    let mut body = object(&[]);
    for (name, schema) in fields {
        body["properties"][name] = schema;
    }
    body["anyOf"] = json!([
        {"required": ["structureType"], "properties": {"structureType": one_of_strings(&structure_types())}},
        {"required": ["templateName"], "properties": {"templateName": non_blank(MAX_TEMPLATE_NAME_CHARS)}},
    ]);
    body
}

/// `POST /api/validate` (`types::bodies::parse_validate`).
pub fn validate_body() -> Value {
    loose_object(
        &[(
            "jobId",
            json!({"type": "integer", "minimum": 1, "maximum": i64::MAX}),
        )],
        &[
            ("validationLevel", range("integer", 1, 3)),
            ("threshold", range("number", 0, 100)),
        ],
    )
}

/// A template name as `types::template::valid_template_name` checks it.
pub const TEMPLATE_NAME_PATTERN: &str = "^[a-z][a-z0-9_]{2,63}$";

/// A prompt template as `types::placeholders::check_template` checks it:
/// known `{placeholder}`s only, `{{`/`}}` for braces, and `{topic}` in it.
fn prompt_template() -> Value {
    use crate::types::placeholders::{MAX_TEMPLATE_CHARS, PLACEHOLDERS};
    let names: Vec<&str> = PLACEHOLDERS.iter().map(|(n, _)| *n).collect();
    let piece = format!(
        "(?:[^{{}}]|\\{{\\{{|\\}}\\}}|\\{{(?:{})\\}})",
        names.join("|")
    );
    json!({"type": "string", "minLength": 7, "maxLength": MAX_TEMPLATE_CHARS,
        "pattern": format!("^{piece}*\\{{topic\\}}{piece}*$")})
}

/// A level rule `{level, min, max}` within the contract's `lo..=hi` and
/// with `min <= max`: one alternative per `min`, so a schema-valid rule is
/// one `StructureRules::check` takes.
fn level_rule(key: &str, lo: u32, hi: u32) -> Value {
    let alternatives: Vec<Value> = (lo..=hi)
        .map(|min| {
            json!({"type": "object", "required": ["level", "min", "max"], "properties": {
                "level": {"const": key},
                "min": {"const": min},
                "max": {"type": "integer", "minimum": min, "maximum": hi},
            }})
        })
        .collect();
    json!({"oneOf": alternatives})
}

/// What a template of one structure type may carry that depends on the
/// type: `templateSchema` (its levels are the type's) and `structureRules`.
fn typed_template_fields(t: StructureType) -> Vec<(String, Value)> {
    let spec = t.spec();
    let levels: Vec<&str> = spec.levels.iter().map(|l| l.key).collect();
    let rules: Vec<Value> = spec
        .levels
        .iter()
        .map(|l| level_rule(l.key, l.min, l.max))
        .collect();
    vec![
        (
            "templateSchema?".into(),
            json!({"type": "object", "required": ["levels"], "properties": {"levels": {"const": levels}}}),
        ),
        (
            "structureRules?".into(),
            json!({"type": "object", "required": ["levels"], "properties": {"levels": {
                "type": "array", "prefixItems": rules, "minItems": levels.len(), "maxItems": levels.len(), "items": false}}}),
        ),
    ]
}

/// The fields of a template every type shares (all optional here).
fn template_fields() -> Vec<(String, Value)> {
    let provider = one_of_strings(&providers());
    vec![
        (
            "description?".into(),
            json!({"type": "string", "maxLength": 500}),
        ),
        ("aiPromptTemplate?".into(), prompt_template()),
        (
            "validationRules?".into(),
            object(&[
                (
                    "minQualityScore?",
                    json!({"type": "number", "minimum": 0, "maximum": 1}),
                ),
                (
                    "validationThreshold?",
                    json!({"type": "number", "minimum": 0, "maximum": 100}),
                ),
                (
                    "validationLevel?",
                    json!({"type": "integer", "minimum": 1, "maximum": 3}),
                ),
            ]),
        ),
        (
            "complexityLevel?".into(),
            json!({"type": "integer", "minimum": 1, "maximum": 5}),
        ),
        (
            "targetAudience?".into(),
            json!({"type": "string", "maxLength": 200}),
        ),
        (
            "aiProviderConfig?".into(),
            object(&[
                ("preferredProvider?", nullable(provider.clone())),
                ("fallbackProviders?", array(provider.clone())),
                (
                    "modelPreferences?",
                    json!({"type": "object", "propertyNames": provider, "additionalProperties": {"type": "string"}}),
                ),
                (
                    "temperature?",
                    json!({"type": ["number", "null"], "minimum": 0, "maximum": 2}),
                ),
                (
                    "maxTokens?",
                    json!({"type": ["integer", "null"], "minimum": 256, "maximum": 64000}),
                ),
            ]),
        ),
        (
            "costOptimization?".into(),
            object(&[(
                "maxCostPerJob?",
                json!({"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 100}),
            )]),
        ),
    ]
}

/// What of a template depends on its type, one alternative per type (told
/// apart by `structureType`): `templateSchema` and `structureRules`. With
/// `untyped`, one more: no type, and so neither of them (an update).
fn typed_template(untyped: bool) -> Value {
    let mut alternatives: Vec<Value> = StructureType::ALL
        .iter()
        .map(|t| {
            let mut fields = vec![("structureType".to_string(), json!({"const": t.as_str()}))];
            fields.extend(
                typed_template_fields(*t)
                    .into_iter()
                    .map(|(n, v)| (n, nullable(v))),
            );
            let refs: Vec<(&str, Value)> = fields
                .iter()
                .map(|(n, v)| (n.as_str(), v.clone()))
                .collect();
            object(&refs)
        })
        .collect();
    if untyped {
        alternatives.push(json!({"type": "object", "properties": {
            "structureType": {"type": "null"},
            "templateSchema": {"type": "null"},
            "structureRules": {"type": "null"},
        }}));
    }
    json!({"oneOf": alternatives})
}

/// `template` of an action: the fields every type shares (`required` named
/// bare, the rest optional and nullable), with what depends on the type.
fn template_of(required: &[&str], typed: Option<Value>, rename: bool) -> Value {
    let mut fields: Vec<(String, Value)> = vec![(
        "templateName".into(),
        json!({"type": "string", "pattern": TEMPLATE_NAME_PATTERN}),
    )];
    fields.extend(template_fields());
    if rename {
        fields.push((
            "newTemplateName?".into(),
            json!({"type": "string", "pattern": TEMPLATE_NAME_PATTERN}),
        ));
    }
    // Null counts as left out (`TemplateBody`): every optional field may be null.
    let fields: Vec<(String, Value)> = fields
        .into_iter()
        .map(|(n, v)| match n.strip_suffix('?') {
            Some(bare) if required.contains(&bare) => (bare.to_string(), v),
            Some(_) => (n, nullable(v)),
            None => (n, v),
        })
        .collect();
    let refs: Vec<(&str, Value)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    let shared = object(&refs);
    match typed {
        Some(typed) => json!({"allOf": [shared, typed]}),
        None => shared,
    }
}

/// `POST /api/admin/templates`: one shape per action. Create names the
/// type and a prompt; an update that changes `templateSchema` or
/// `structureRules` names the type they belong to (they depend on it);
/// delete needs only the name.
pub fn admin_templates_body() -> Value {
    let with_action = |action: &str, template: Value| {
        object(&[("action", json!({"const": action})), ("template", template)])
    };
    let create = with_action(
        "create",
        template_of(&["aiPromptTemplate"], Some(typed_template(false)), false),
    );
    let update = with_action("update", template_of(&[], Some(typed_template(true)), true));
    let delete = with_action(
        "delete",
        object(&[("templateName", json!({"type": "string", "minLength": 1}))]),
    );
    json!({"oneOf": [create, update, delete], "description": "action: create, update or delete; create needs templateName, structureType and aiPromptTemplate; update needs templateName (and structureType with templateSchema or structureRules)"})
}

/// `GET /api/admin/alerts` (issue 27; `services::alerts::Report`).
pub fn alerts_report() -> Value {
    let state = || one_of_strings(&["ok", "warning", "firing"]);
    let signal = object(&[
        ("name", string()),
        ("subject?", string()),
        ("state", state()),
        ("value", nullable(number())),
        ("unit", string()),
        ("samples", integer()),
        (
            "threshold",
            object(&[("warning", number()), ("firing", number())]),
        ),
    ]);
    object(&[
        ("windowSeconds", integer()),
        ("since", string()),
        ("generatedAt", string()),
        ("state", state()),
        ("firing", array(string())),
        ("warning", array(string())),
        ("signals", array(signal)),
    ])
}
