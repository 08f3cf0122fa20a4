//! The granulator's own columns of a job's row. Claims, re-runs, takeovers
//! and their spend are the kit's (`bitware_kit::jobs::D1Jobs` on
//! `granulation_jobs`, `SCHEMA` in `spend.rs`); these columns go with them.

use crate::types::structure::StructureType;
use bitware_kit::jobs::Column;
use serde_json::{json, Value};

/// What a granulation is of, written with its claim and again by a re-run
/// (which also clears the verdict of the run before).
pub fn outline_columns(
    topic: &str,
    structure_type: StructureType,
    granularity: u8,
    target_audience: &str,
    template_id: i64,
    template_name: &str,
) -> Vec<Column<'static>> {
    vec![
        ("topic", json!(topic)),
        ("structure_type", json!(structure_type.as_str())),
        ("granularity_level", json!(granularity)),
        ("target_audience", json!(target_audience)),
        ("template_id", json!(template_id)),
        ("template_name", json!(template_name)),
        ("quality_score", Value::Null),
        ("validation_passed", Value::Null),
    ]
}
