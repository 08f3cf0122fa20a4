//! Templates (seed §10): the stored row, the API shape, and validation of
//! what an admin submits.

use crate::types::placeholders::{check_template, MAX_TEMPLATE_CHARS};
use crate::types::rules::StructureRules;
use crate::types::structure::StructureType;
use bitware_kit::error::{AppError, AppResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A field left out takes its value from `ValidationRules::default()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ValidationRules {
    pub min_quality_score: f64,
    /// Accuracy (0-100) a validation must reach to pass.
    pub validation_threshold: f64,
    pub validation_level: u8,
}

impl Default for ValidationRules {
    fn default() -> Self {
        ValidationRules {
            min_quality_score: 0.7,
            validation_threshold: 75.0,
            validation_level: 1,
        }
    }
}

/// A template's provider preferences (the kit's: `bitware_kit::provider_setup`).
pub use bitware_kit::provider_setup::AiProviderConfig;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostOptimization {
    #[serde(default)]
    pub max_cost_per_job: Option<f64>,
}

impl ValidationRules {
    /// The ranges an admin may set; a problem is a 400 naming the field.
    pub fn validate(&self) -> AppResult<()> {
        if !(0.0..=1.0).contains(&self.min_quality_score) {
            return Err(AppError::invalid_field(
                "template.validationRules.minQualityScore",
                "must be between 0 and 1",
            ));
        }
        if !(0.0..=100.0).contains(&self.validation_threshold) {
            return Err(AppError::invalid_field(
                "template.validationRules.validationThreshold",
                "must be between 0 and 100",
            ));
        }
        if !(1..=3).contains(&self.validation_level) {
            return Err(AppError::invalid_field(
                "template.validationRules.validationLevel",
                "must be 1, 2 or 3",
            ));
        }
        Ok(())
    }
}

impl CostOptimization {
    pub fn validate(&self) -> AppResult<()> {
        if self
            .max_cost_per_job
            .is_some_and(|c| !(c > 0.0 && c <= 100.0))
        {
            return Err(AppError::invalid_field(
                "template.costOptimization.maxCostPerJob",
                "must be above 0 and at most 100",
            ));
        }
        Ok(())
    }
}

/// A template as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub id: i64,
    pub template_name: String,
    pub structure_type: StructureType,
    pub description: String,
    pub template_schema: Value,
    pub ai_prompt_template: String,
    pub placeholders: Vec<String>,
    pub validation_rules: ValidationRules,
    pub structure_rules: StructureRules,
    pub complexity_level: u8,
    pub target_audience: String,
    pub ai_provider_config: AiProviderConfig,
    pub cost_optimization: CostOptimization,
    pub usage_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A `granulation_templates` row as D1 returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateRow {
    pub id: i64,
    pub template_name: String,
    pub structure_type: String,
    pub description: String,
    pub template_schema: String,
    pub ai_prompt_template: String,
    pub validation_rules: String,
    pub structure_rules: String,
    pub complexity_level: u8,
    pub target_audience: String,
    pub ai_provider_config: String,
    pub cost_optimization: String,
    pub usage_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl TryFrom<TemplateRow> for Template {
    type Error = String;
    fn try_from(row: TemplateRow) -> Result<Template, String> {
        let bad = |col: &str, e: serde_json::Error| {
            format!("template {} has invalid {col}: {e}", row.template_name)
        };
        Ok(Template {
            id: row.id,
            structure_type: StructureType::parse(&row.structure_type).ok_or_else(|| {
                format!("template {} has unknown structure_type", row.template_name)
            })?,
            description: row.description.clone(),
            template_schema: serde_json::from_str(&row.template_schema)
                .map_err(|e| bad("template_schema", e))?,
            placeholders: check_template(&row.ai_prompt_template).unwrap_or_default(),
            ai_prompt_template: row.ai_prompt_template.clone(),
            validation_rules: serde_json::from_str(&row.validation_rules)
                .map_err(|e| bad("validation_rules", e))?,
            structure_rules: serde_json::from_str(&row.structure_rules)
                .map_err(|e| bad("structure_rules", e))?,
            complexity_level: row.complexity_level,
            target_audience: row.target_audience.clone(),
            ai_provider_config: serde_json::from_str(&row.ai_provider_config)
                .map_err(|e| bad("ai_provider_config", e))?,
            cost_optimization: serde_json::from_str(&row.cost_optimization)
                .map_err(|e| bad("cost_optimization", e))?,
            usage_count: row.usage_count,
            created_at: row.created_at.clone(),
            updated_at: row.updated_at.clone(),
            template_name: row.template_name,
        })
    }
}

/// The canonical `templateSchema` of a type: its root fields and levels.
pub fn default_template_schema(structure_type: StructureType) -> Value {
    let spec = structure_type.spec();
    json!({
        "root": spec.root_fields.iter().map(|f| f.name).collect::<Vec<_>>(),
        "levels": spec.levels.iter().map(|l| l.key).collect::<Vec<_>>(),
    })
}

/// What `POST /api/admin/templates` may say about a template, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateInput {
    pub template_name: String,
    pub structure_type: StructureType,
    pub description: String,
    pub template_schema: Value,
    pub ai_prompt_template: String,
    pub validation_rules: ValidationRules,
    pub structure_rules: StructureRules,
    pub complexity_level: u8,
    pub target_audience: String,
    pub ai_provider_config: AiProviderConfig,
    pub cost_optimization: CostOptimization,
}

pub fn valid_template_name(name: &str) -> bool {
    (3..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase())
}

/// A template body as sent to `POST /api/admin/templates`: every field may
/// be left out (an update names only what changes; `null` counts as left
/// out). serde names the fields; each section's check below reads its own
/// and names the field it refuses. The values stay JSON until then, so a
/// value of the wrong type is that field's 400, not the whole body's (and
/// the wasm carries one deserializer, not one per field type).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TemplateBody {
    template_name: Option<Value>,
    structure_type: Option<Value>,
    description: Option<Value>,
    template_schema: Option<Value>,
    ai_prompt_template: Option<Value>,
    structure_rules: Option<Value>,
    validation_rules: Option<Value>,
    ai_provider_config: Option<Value>,
    cost_optimization: Option<Value>,
    complexity_level: Option<Value>,
    target_audience: Option<Value>,
}

fn refused(name: &str, why: impl Into<String>) -> AppError {
    AppError::invalid_field(&format!("template.{name}"), why)
}

/// A text field: trimmed, at most `max` characters; left out, the current.
fn text(
    sent: Option<Value>,
    name: &str,
    max: usize,
    current: Option<&str>,
) -> AppResult<Option<String>> {
    match sent {
        None => Ok(current.map(str::to_string)),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.trim().to_string())),
        Some(Value::String(_)) => Err(refused(name, format!("must be at most {max} characters"))),
        Some(_) => Err(refused(name, "must be a string")),
    }
}

/// `v` with every integral float (`3.0`) as the integer it is: JSON Schema's
/// `integer` counts `3.0` as one, so a document-valid rule must parse.
fn integral(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, integral(v))).collect())
        }
        other => other,
    }
}

/// An object read with serde: the one sent, else `current`.
fn object<T: serde::de::DeserializeOwned>(
    sent: Option<Value>,
    name: &str,
    current: Option<T>,
) -> AppResult<Option<T>> {
    match sent {
        None => Ok(current),
        Some(v) => serde_json::from_value(integral(v))
            .map(Some)
            .map_err(|e| refused(name, format!("is not valid: {e}"))),
    }
}

/// A settings object (validation rules, provider config, cost limits): the
/// one sent, else the current, else the default.
fn settings<T: serde::de::DeserializeOwned + Clone + Default>(
    sent: Option<Value>,
    name: &str,
    current: Option<&T>,
) -> AppResult<T> {
    Ok(object(sent, name, current.cloned())?.unwrap_or_default())
}

impl TemplateInput {
    /// Validate a template object (camelCase fields). Every problem is a 400
    /// naming the field; `base` supplies the current values on update.
    pub fn parse(value: &Value, base: Option<&Template>) -> AppResult<TemplateInput> {
        if !value.is_object() {
            return Err(AppError::invalid_field("template", "must be an object"));
        }
        let body: TemplateBody = serde_json::from_value(value.clone())
            .map_err(|e| AppError::invalid_field("template", format!("is not valid: {e}")))?;
        // Both depend on the type: an update that replaces one names it.
        if base.is_some() && body.structure_type.is_none() {
            for (name, sent) in [
                ("templateSchema", &body.template_schema),
                ("structureRules", &body.structure_rules),
            ] {
                if sent.is_some() {
                    return Err(refused(
                        name,
                        "needs template.structureType beside it (it belongs to one type)",
                    ));
                }
            }
        }
        let (template_name, structure_type) =
            Self::identity(body.template_name, body.structure_type, base)?;
        let ai_prompt_template = Self::prompt(body.ai_prompt_template, base)?;
        // A new type starts from its own contract; otherwise the stored
        // template's schema and rules stay unless replaced.
        let kept = base.filter(|b| b.structure_type == structure_type);
        let template_schema = Self::schema(body.template_schema, structure_type, kept)?;
        let structure_rules = Self::rules(body.structure_rules, structure_type, kept)?;
        let validation_rules = settings(
            body.validation_rules,
            "validationRules",
            base.map(|b| &b.validation_rules),
        )?;
        validation_rules.validate()?;
        let ai_provider_config = settings(
            body.ai_provider_config,
            "aiProviderConfig",
            base.map(|b| &b.ai_provider_config),
        )?;
        ai_provider_config.validate()?;
        let cost_optimization = settings(
            body.cost_optimization,
            "costOptimization",
            base.map(|b| &b.cost_optimization),
        )?;
        cost_optimization.validate()?;
        let complexity_level = match body.complexity_level {
            None => base.map_or(3, |b| b.complexity_level),
            Some(v) => crate::types::request::integer_in("template.complexityLevel", &v, 1, 5)
                .map_err(|_| refused("complexityLevel", "must be an integer 1-5"))?
                as u8,
        };
        Ok(TemplateInput {
            template_name,
            structure_type,
            description: text(
                body.description,
                "description",
                500,
                base.map(|b| b.description.as_str()),
            )?
            .unwrap_or_default(),
            template_schema,
            ai_prompt_template,
            validation_rules,
            structure_rules,
            complexity_level,
            target_audience: text(
                body.target_audience,
                "targetAudience",
                200,
                base.map(|b| b.target_audience.as_str()),
            )?
            .unwrap_or_else(|| "general audience".into()),
            ai_provider_config,
            cost_optimization,
        })
    }

    /// Name and structure type: required on create, kept on update.
    fn identity(
        name: Option<Value>,
        structure_type: Option<Value>,
        base: Option<&Template>,
    ) -> AppResult<(String, StructureType)> {
        let name = text(
            name,
            "templateName",
            64,
            base.map(|b| b.template_name.as_str()),
        )?
        .ok_or_else(|| refused("templateName", "is required"))?;
        if !valid_template_name(&name) {
            return Err(refused(
                "templateName",
                "must be 3-64 characters of a-z, 0-9 and _, starting with a letter",
            ));
        }
        let structure_type = match structure_type {
            Some(Value::String(s)) => StructureType::parse(&s).ok_or_else(|| {
                refused(
                    "structureType",
                    format!("must be one of {}", StructureType::names().join(", ")),
                )
            })?,
            Some(_) => return Err(refused("structureType", "must be a string")),
            None => base
                .map(|b| b.structure_type)
                .ok_or_else(|| refused("structureType", "is required"))?,
        };
        Ok((name, structure_type))
    }

    /// The prompt template: required, and its placeholders must be known.
    fn prompt(sent: Option<Value>, base: Option<&Template>) -> AppResult<String> {
        let prompt = text(
            sent,
            "aiPromptTemplate",
            MAX_TEMPLATE_CHARS,
            base.map(|b| b.ai_prompt_template.as_str()),
        )?
        .ok_or_else(|| refused("aiPromptTemplate", "is required"))?;
        check_template(&prompt).map_err(|e| refused("aiPromptTemplate", e))?;
        Ok(prompt)
    }

    /// `templateSchema`: an object whose levels are the type's own.
    fn schema(
        sent: Option<Value>,
        structure_type: StructureType,
        kept: Option<&Template>,
    ) -> AppResult<Value> {
        let expected = default_template_schema(structure_type);
        match sent {
            None => Ok(kept.map_or(expected, |b| b.template_schema.clone())),
            Some(schema)
                if schema.is_object() && schema.get("levels") == expected.get("levels") =>
            {
                Ok(schema)
            }
            Some(_) => Err(refused(
                "templateSchema",
                format!(
                    "must be an object whose levels are {} for {structure_type}",
                    expected["levels"]
                ),
            )),
        }
    }

    /// `structureRules`: well-formed and within the type's contract.
    fn rules(
        sent: Option<Value>,
        structure_type: StructureType,
        kept: Option<&Template>,
    ) -> AppResult<StructureRules> {
        let rules = object(
            sent,
            "structureRules",
            kept.map(|b| b.structure_rules.clone()),
        )?
        .unwrap_or_else(|| StructureRules::contract(structure_type));
        rules
            .check(structure_type)
            .map_err(|e| refused("structureRules", e))?;
        Ok(rules)
    }
}

#[cfg(test)]
mod tests;
