//! The floor: the least a granulate must do, on the granulator's runtime
//! (workers-rs, wasm32, local D1 with the granulator's schema), so that
//! `./bench.sh` can report the granulator's figures as ratios to it.
//!
//! - `GET /`: a JSON liveness answer.
//! - `POST /write` `{"perDepth": [a, b, c], "topic": "…"}`: claim a job row
//!   (one INSERT … RETURNING id), write its elements (`a` at depth 0, `b` at
//!   depth 1, `c` at depth 2) and complete the job with its result stored
//!   inline in one D1 batch, read the elements back, answer them as JSON. No
//!   auth, no model call, no scoring.

// The floor reads the platform clock and randomness itself: it is the least a
// granulate must do, without the kit's timing module.
#![allow(clippy::disallowed_methods)]

use serde::Deserialize;
use serde_json::{json, Value};
use worker::wasm_bindgen::JsValue;
use worker::{event, js_sys, Context, Date, Env, Method, Request, Response, Result};

const LEVELS: [&str; 3] = ["module", "lesson", "section"];

#[derive(Deserialize)]
struct WriteBody {
    #[serde(rename = "perDepth")]
    per_depth: Vec<u32>,
    #[serde(default)]
    topic: String,
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match (req.method(), req.path().as_str()) {
        (Method::Get, "/") => Response::from_json(
            &json!({"status": "healthy", "service": "floor", "timestamp": Date::now().as_millis()}),
        ),
        (Method::Post, "/write") => match write(&mut req, &env).await {
            Ok(response) => Ok(response),
            Err(e) => Response::error(format!("floor: {e}"), 500),
        },
        _ => Response::error("not found", 404),
    }
}

/// `(path, parent path, depth, sequence)` of every element, parents first.
fn paths(per_depth: &[u32]) -> Vec<(String, Option<String>, usize, u32)> {
    let mut out: Vec<(String, Option<String>, usize, u32)> = Vec::new();
    let mut parents: Vec<String> = Vec::new();
    for (depth, &count) in per_depth.iter().take(3).enumerate() {
        let mut level = Vec::new();
        for n in 0..count {
            let (parent, seq) = if depth == 0 {
                (None, n + 1)
            } else if parents.is_empty() {
                break;
            } else {
                let p = &parents[n as usize % parents.len()];
                (Some(p.clone()), n / parents.len() as u32 + 1)
            };
            let path = match &parent {
                Some(p) => format!("{p}.{seq}"),
                None => seq.to_string(),
            };
            level.push(path.clone());
            out.push((path, parent, depth, seq));
        }
        parents = level;
    }
    out
}

async fn write(req: &mut Request, env: &Env) -> Result<Response> {
    let body: WriteBody = req.json().await?;
    let db = env.d1("DB")?;
    let execution_id = format!(
        "floor-{}-{}",
        Date::now().as_millis(),
        (js_sys::Math::random() * 1e12) as u64
    );
    let topic = if body.topic.is_empty() {
        "floor"
    } else {
        body.topic.as_str()
    };
    let claim = db
        .prepare(
            "INSERT INTO granulation_jobs (client_id, execution_id, topic, structure_type, granularity_level, target_audience, request_params, deadline_at) \
             VALUES ('floor', ?1, ?2, 'course', 3, 'general', ?3, ?4) ON CONFLICT (client_id, execution_id) DO NOTHING RETURNING id",
        )
        .bind(&[
            execution_id.as_str().into(),
            topic.into(),
            "{}".into(),
            JsValue::from_f64(Date::now().as_millis() as f64 + 600_000.0),
        ])?;
    let job_id: f64 = claim
        .first::<Value>(None)
        .await?
        .and_then(|row| row["id"].as_f64())
        .ok_or_else(|| worker::Error::RustError("the job row was not claimed".into()))?;
    let elements = paths(&body.per_depth);
    let mut batch = Vec::new();
    let mut all_rows = Vec::new();
    for depth in 0..3 {
        let rows: Vec<Value> = elements
            .iter()
            .filter(|e| e.2 == depth)
            .map(|(path, parent, depth, seq)| {
                json!({"path": path, "parent_path": parent, "depth": depth, "sequence_order": seq,
                    "element_type": LEVELS[*depth], "title": format!("{topic} {path}"),
                    "content_outline": format!("What {path} of {topic} covers, in a sentence or two."),
                    "target_word_count": 800, "content_type": "lesson", "generation_priority": 2, "content_tone": "clear",
                    "key_points": ["one", "two", "three"], "metadata": {}})
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        batch.push(
            db.prepare(
                "INSERT INTO structure_elements (job_id, element_type, parent_id, path, depth, sequence_order, title, content_outline, \
                 target_word_count, content_type, generation_priority, content_tone, key_points, metadata) \
                 SELECT ?1, json_extract(e.value, '$.element_type'), \
                 (SELECT p.id FROM structure_elements p WHERE p.job_id = ?1 AND p.path = json_extract(e.value, '$.parent_path')), \
                 json_extract(e.value, '$.path'), json_extract(e.value, '$.depth'), json_extract(e.value, '$.sequence_order'), \
                 json_extract(e.value, '$.title'), json_extract(e.value, '$.content_outline'), json_extract(e.value, '$.target_word_count'), \
                 json_extract(e.value, '$.content_type'), json_extract(e.value, '$.generation_priority'), json_extract(e.value, '$.content_tone'), \
                 json_extract(e.value, '$.key_points'), json_extract(e.value, '$.metadata') FROM json_each(?2) e",
            )
            .bind(&[JsValue::from_f64(job_id), Value::Array(rows.clone()).to_string().into()])?,
        );
        all_rows.extend(rows);
    }
    batch.push(
        db.prepare("UPDATE granulation_jobs SET status = 'completed', stage = 'done', total_elements = ?2, \
             storage_type = 'inline', result_json = ?3 WHERE id = ?1")
            .bind(&[
                JsValue::from_f64(job_id),
                JsValue::from_f64(elements.len() as f64),
                Value::Array(all_rows).to_string().into(),
            ])?,
    );
    db.batch(batch).await?;
    let read = db
        .prepare(
            "SELECT path, depth, element_type, sequence_order, title, content_outline, target_word_count, key_points \
             FROM structure_elements WHERE job_id = ?1 ORDER BY depth, id",
        )
        .bind(&[JsValue::from_f64(job_id)])?;
    let rows: Vec<Value> = read.all().await?.results()?;
    Response::from_json(&json!({"jobId": job_id, "elements": rows}))
}

#[cfg(test)]
mod tests {
    use super::paths;

    #[test]
    fn every_element_has_a_parent_one_level_up() {
        let all = paths(&[3, 6, 12]);
        assert_eq!(all.len(), 21);
        for (path, parent, depth, _) in &all {
            assert_eq!(path.split('.').count(), depth + 1);
            assert_eq!(parent.is_some(), *depth > 0);
        }
        let unique: std::collections::HashSet<_> = all.iter().map(|e| &e.0).collect();
        assert_eq!(unique.len(), all.len());
    }
}
