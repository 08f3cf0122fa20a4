//! A batch's answer, checked before it is kept: every path of the batch
//! exactly once, none outside it, content that is not blank. The problems
//! are listed for the model (they go back to it on a re-ask).

use super::plan::Batch;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The answer normalised (`{"elements": [{"path", "content"}]}` in the
/// batch's order, content trimmed), or what is wrong with it.
pub fn check_batch(batch: &Batch, answer: &Value) -> Result<Value, Vec<String>> {
    let Some(items) = answer.get("elements").and_then(Value::as_array) else {
        return Err(vec![
            "the answer must be an object with an `elements` list of {\"path\", \"content\"}"
                .into(),
        ]);
    };
    let mut problems = Vec::new();
    let mut seen: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        match (
            item.get("path").and_then(Value::as_str),
            item.get("content").and_then(Value::as_str),
        ) {
            (Some(path), Some(content)) => seen.entry(path).or_default().push(content.trim()),
            (None, _) => problems.push(format!("elements[{i}]: `path` must be a string")),
            (Some(path), None) => problems.push(format!("{path}: `content` must be a string")),
        }
    }
    for (path, contents) in &seen {
        if !batch.paths.iter().any(|p| p == path) {
            problems.push(format!(
                "{path}: not an element of this batch; write only the paths asked for"
            ));
        } else if contents.len() > 1 {
            problems.push(format!(
                "{path}: answered {} times; answer each path exactly once",
                contents.len()
            ));
        } else if contents[0].is_empty() {
            problems.push(format!("{path}: the content is empty"));
        }
    }
    for path in &batch.paths {
        if !seen.contains_key(path.as_str())
            && !problems.iter().any(|p| p.starts_with(&format!("{path}: ")))
        {
            problems.push(format!("{path}: missing; write its content"));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let elements: Vec<Value> = batch
        .paths
        .iter()
        .filter_map(|p| {
            let content = seen.get(p.as_str())?.first()?;
            Some(json!({"path": p, "content": content}))
        })
        .collect();
    Ok(json!({"elements": elements}))
}
