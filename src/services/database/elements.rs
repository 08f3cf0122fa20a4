//! `structure_elements`: a finished outline flattened to one row per node,
//! written one depth at a time (a node finds its parent through the unique
//! `(job_id, path)`), read back in depth order to rebuild the structure.

use super::{i, t, Database};
use crate::services::outline::ElementRow;
use bitware_kit::error::{AppError, AppResult};
use serde::Deserialize;
use serde_json::Value;
use worker::D1PreparedStatement;

/// An element as D1 returns it: `key_points` and `metadata` are JSON text.
#[derive(Debug, Clone, Deserialize)]
struct ElementDbRow {
    path: String,
    parent_path: Option<String>,
    depth: u8,
    element_type: String,
    sequence_order: u32,
    title: String,
    content_outline: String,
    target_word_count: u32,
    content_type: String,
    generation_priority: u8,
    content_tone: String,
    key_points: String,
    metadata: String,
}

impl From<ElementDbRow> for ElementRow {
    fn from(r: ElementDbRow) -> ElementRow {
        ElementRow {
            path: r.path,
            parent_path: r.parent_path,
            depth: r.depth,
            element_type: r.element_type,
            sequence_order: r.sequence_order,
            title: r.title,
            content_outline: r.content_outline,
            target_word_count: r.target_word_count,
            content_type: r.content_type,
            generation_priority: r.generation_priority,
            content_tone: r.content_tone,
            key_points: serde_json::from_str(&r.key_points).unwrap_or_default(),
            metadata: serde_json::from_str(&r.metadata).unwrap_or(Value::Null),
        }
    }
}

impl Database {
    pub async fn elements(&self, job_id: i64) -> AppResult<Vec<ElementRow>> {
        let stmt = self.stmt(
            "SELECT e.path, p.path AS parent_path, e.depth, e.element_type, e.sequence_order, e.title, e.content_outline, e.target_word_count, \
             e.content_type, e.generation_priority, e.content_tone, e.key_points, e.metadata FROM structure_elements e \
             LEFT JOIN structure_elements p ON p.id = e.parent_id WHERE e.job_id = ?1 ORDER BY e.depth, e.id",
            &[i(job_id)],
        )?;
        let rows: Vec<ElementDbRow> = self.all("reading elements", stmt).await?;
        Ok(rows.into_iter().map(ElementRow::from).collect())
    }

    /// One INSERT per depth present, parents first.
    pub(super) fn element_statements(
        &self,
        job_id: i64,
        elements: &[ElementRow],
    ) -> AppResult<Vec<D1PreparedStatement>> {
        let mut statements = Vec::new();
        for depth in 0..3u8 {
            let rows: Vec<&ElementRow> = elements.iter().filter(|e| e.depth == depth).collect();
            if rows.is_empty() {
                continue;
            }
            let json =
                serde_json::to_string(&rows).map_err(|e| AppError::internal(e.to_string()))?;
            statements.push(self.stmt(
                "INSERT INTO structure_elements (job_id, element_type, parent_id, path, depth, sequence_order, title, content_outline, \
                 target_word_count, content_type, generation_priority, content_tone, key_points, metadata) \
                 SELECT ?1, json_extract(e.value, '$.element_type'), \
                 (SELECT p.id FROM structure_elements p WHERE p.job_id = ?1 AND p.path = json_extract(e.value, '$.parent_path')), \
                 json_extract(e.value, '$.path'), json_extract(e.value, '$.depth'), json_extract(e.value, '$.sequence_order'), \
                 json_extract(e.value, '$.title'), json_extract(e.value, '$.content_outline'), json_extract(e.value, '$.target_word_count'), \
                 json_extract(e.value, '$.content_type'), json_extract(e.value, '$.generation_priority'), json_extract(e.value, '$.content_tone'), \
                 json_extract(e.value, '$.key_points'), json_extract(e.value, '$.metadata') FROM json_each(?2) e",
                &[i(job_id), t(&json)],
            )?);
        }
        Ok(statements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_element_row_decodes_its_integers_and_json_text() {
        let row: ElementDbRow = serde_json::from_value(json!({
            "path": "1.2", "parent_path": "1", "depth": 1, "element_type": "lesson", "sequence_order": 2,
            "title": "T", "content_outline": "O", "target_word_count": 800, "content_type": "lesson",
            "generation_priority": 2, "content_tone": "clear", "key_points": "[\"a\",\"b\"]", "metadata": "{\"x\":1}"
        }))
        .unwrap();
        let e = ElementRow::from(row);
        assert_eq!(
            (e.depth, e.sequence_order, e.target_word_count),
            (1, 2, 800)
        );
        assert_eq!(e.key_points, vec!["a", "b"]);
        assert_eq!(e.metadata, json!({"x": 1}));
    }
}
