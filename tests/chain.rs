//! The chain end to end (issue 26): the granulator and the Content Generator
//! under two `wrangler dev` processes (`start_chain_stack` in scripts/lib.sh;
//! the generator binds the granulator and KAM through wrangler's dev
//! registry), the mock AI provider streaming at a real token rate, both
//! stages called the way the Resource Manager calls them (contracts §2):
//! worker credentials acting for the client, an `X-Request-ID` per stage,
//! each try raced against the body's 30-s timeout without cancelling it, up
//! to 3 tries 1 s apart with the same id.
//!
//! Run alone (`--test-threads 1`): the stage figures are the mock's totals,
//! reset before each stage. The wall clock of a course through both stages
//! is printed, never asserted.

mod support;

use bitware_kit::pricing::{Pricing, TokenUsage};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{http, mock, mock_calls, script, unique};

/// The Resource Manager's timing (contracts §2).
const RM_TIMEOUT_MS: u64 = 30_000;
const RM_TRIES: usize = 3;
const RM_PAUSE: Duration = Duration::from_secs(1);
/// The stack's SHARED_SECRET (scripts/lib.sh).
const SECRET: &str = "dev-shared-secret";

fn granulator() -> String {
    std::env::var("GRANULATOR_URL")
        .expect("GRANULATOR_URL: run through ./test.sh's chain layer (start_chain_stack)")
}

fn generator() -> String {
    std::env::var("GENERATOR_URL")
        .expect("GENERATOR_URL: run through ./test.sh's chain layer (start_chain_stack)")
}

/// One HTTP answer: status and JSON body (`null` when it is not JSON).
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: Value,
}

/// A call with worker credentials as the Resource Manager sends them.
async fn as_rm(
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
    client: &str,
    request_id: Option<&str>,
    extra: &[(&str, &str)],
) -> Result<Answer, String> {
    let mut req = http()
        .request(method, url)
        .header("Authorization", format!("Bearer {SECRET}"))
        .header("X-Worker-ID", "bitware-resource-manager")
        .header("X-Client-ID", client)
        .header("X-Priority", "normal");
    if let Some(id) = request_id {
        req = req.header("X-Request-ID", id);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    })
}

/// A stage as the Resource Manager runs it: `POST {base}/api/execute`, each
/// try raced against 30 s (the try goes on when the race is lost), up to 3
/// tries 1 s apart with the same `X-Request-ID`, on any error or non-2xx.
/// The last answer, and what every try ended with.
async fn rm_stage(
    base: &str,
    mut body: Value,
    client: &str,
    request_id: &str,
) -> (Answer, Vec<String>) {
    body["timeout"] = json!(RM_TIMEOUT_MS);
    let mut tries = Vec::new();
    let mut last = Answer {
        status: 0,
        body: Value::Null,
    };
    for n in 0..RM_TRIES {
        if n > 0 {
            tokio::time::sleep(RM_PAUSE).await;
        }
        let call = tokio::spawn({
            let (url, body, client, rid) = (
                format!("{base}/api/execute"),
                body.clone(),
                client.to_string(),
                request_id.to_string(),
            );
            async move {
                as_rm(
                    reqwest::Method::POST,
                    url,
                    Some(body),
                    &client,
                    Some(&rid),
                    &[],
                )
                .await
            }
        });
        match tokio::time::timeout(Duration::from_millis(RM_TIMEOUT_MS), call).await {
            Err(_) => tries.push("lost the 30-s race".to_string()),
            Ok(Err(e)) => tries.push(format!("task: {e}")),
            Ok(Ok(Err(e))) => tries.push(format!("error: {e}")),
            Ok(Ok(Ok(a))) => {
                tries.push(a.status.to_string());
                let ok = (200..300).contains(&a.status);
                last = a;
                if ok {
                    break;
                }
            }
        }
    }
    (last, tries)
}

/// What the mock served since its totals were last reset.
async fn mock_totals() -> Value {
    http()
        .get(format!("{}/__mock/totals", mock()))
        .send()
        .await
        .expect("mock")
        .json()
        .await
        .expect("json")
}

async fn reset_mock_totals() {
    let r = http()
        .delete(format!("{}/__mock/totals", mock()))
        .send()
        .await
        .expect("mock");
    assert!(r.status().is_success());
}

/// The stage's envelope bills exactly what the mock served for it: tokens,
/// and their cost at the envelope's model.
async fn assert_billed_as_served(stage: &str, envelope: &Value) {
    let served = mock_totals().await;
    let tokens = &envelope["usage"]["tokens"];
    assert_eq!(
        (tokens["input"].as_u64(), tokens["output"].as_u64()),
        (
            served["tokensInput"].as_u64(),
            served["tokensOutput"].as_u64()
        ),
        "{stage}: envelope tokens vs the mock's totals {served}"
    );
    let model = envelope["model"]
        .as_str()
        .expect("the envelope names its model");
    let usage = TokenUsage {
        input: served["tokensInput"].as_u64().unwrap_or(0),
        output: served["tokensOutput"].as_u64().unwrap_or(0),
        cached: 0,
        cache_write: 0,
    };
    let want = Pricing::default()
        .cost(model, &usage)
        .expect("a priced model");
    assert_eq!(
        envelope["cost"].as_f64(),
        Some(want),
        "{stage}: cost of {model}"
    );
}

/// `GET {base}/api/jobs/{id}`'s `job` (the granulator says `runs`, the kit's view `run`).
async fn job_of(base: &str, id: i64, client: &str) -> Value {
    let a = as_rm(
        reqwest::Method::GET,
        format!("{base}/api/jobs/{id}"),
        None,
        client,
        None,
        &[],
    )
    .await
    .expect("job");
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["job"].clone()
}

fn runs(job: &Value) -> Option<u64> {
    job["runs"].as_u64().or(job["run"].as_u64())
}

/// The content calls the mock has seen, whoever made them: the tests run one
/// at a time, so the difference over a stage is that stage's (the batch
/// prompts need not hold the topic).
async fn content_calls() -> usize {
    mock_calls("")
        .await
        .iter()
        .filter(|c| c["kind"] == "content")
        .count()
}

/// Every call the mock has seen.
async fn all_calls() -> usize {
    mock_calls("").await.len()
}

/// Every model call of the stage (the tests run one at a time) was answered
/// once and in full: none failed, none was asked again.
async fn assert_each_call_answered_once(stage: &str, calls_before: usize) {
    let made = all_calls().await - calls_before;
    assert!(made > 0, "{stage}: no model call");
    assert_eq!(
        mock_totals().await["answered"].as_u64(),
        Some(made as u64),
        "{stage}: calls answered in full vs calls made"
    );
}

/// The level keys of a course (contracts §4).
const COURSE_LEVELS: [&str; 3] = ["modules", "lessons", "activities"];

/// Every element of `structure` (a course), as its path
/// (`modules.0.lessons.2`) and node.
fn elements<'a>(node: &'a Value, depth: usize, prefix: &str, out: &mut Vec<(String, &'a Value)>) {
    let Some(key) = COURSE_LEVELS.get(depth) else {
        return;
    };
    for (i, child) in node[*key].as_array().into_iter().flatten().enumerate() {
        let path = format!("{prefix}{key}.{i}");
        out.push((path.clone(), child));
        elements(child, depth + 1, &format!("{path}."), out);
    }
}

/// The node at `path` in `tree`.
fn at<'a>(tree: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(tree, |v, part| match part.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[part],
        })
}

/// Every element of the granulator's outline has content in the
/// generator's `output.content` tree (`generated.text`); the count.
fn assert_every_element_written(structure: &Value, output: &Value) -> usize {
    let mut all = Vec::new();
    elements(structure, 0, "", &mut all);
    assert!(!all.is_empty(), "an outline with elements: {structure}");
    let content = &output["content"];
    let missing: Vec<&String> = all
        .iter()
        .filter(|(path, _)| {
            at(content, path)["generated"]["text"]
                .as_str()
                .is_none_or(|t| t.trim().is_empty())
        })
        .map(|(path, _)| path)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} elements without content: {missing:?}",
        missing.len(),
        all.len()
    );
    all.len()
}

fn course(topic: &str, granularity: u8) -> Value {
    json!({"action": "granulate", "input": {"topic": topic, "structureType": "course", "granularityLevel": granularity}})
}

/// The granulator's stage, asserted 2xx; its envelope.
async fn granulate(body: Value, client: &str) -> Answer {
    let (a, tries) = rm_stage(&granulator(), body, client, &unique("rm-granulate")).await;
    assert_eq!(a.status, 200, "granulator tries {tries:?}: {}", a.body);
    a
}

#[tokio::test]
async fn the_generator_reaches_the_granulator_through_its_service_binding() {
    let a = as_rm(
        reqwest::Method::GET,
        format!("{}/health", generator()),
        None,
        "chain-health",
        None,
        &[],
    )
    .await
    .expect("health");
    assert_eq!(a.status, 200, "{}", a.body);
    for check in ["granulator", "kam", "database"] {
        assert_eq!(a.body["checks"][check]["ok"], true, "{check}: {}", a.body);
    }
}

#[tokio::test]
async fn a_client_s_course_goes_granulator_to_generator_once_and_billed_as_served() {
    let topic = unique("chain-course");
    let client = unique("chain-client");
    let started = Instant::now();

    reset_mock_totals().await;
    let calls_before = all_calls().await;
    let g = granulate(course(&topic, 3), &client).await;
    assert_billed_as_served("granulator", &g.body).await;
    let gran_job = g.body["output"]["granulatorJobId"]
        .as_i64()
        .expect("granulatorJobId");
    assert_eq!(
        runs(&job_of(&granulator(), gran_job, &client).await),
        Some(1)
    );
    assert_each_call_answered_once("granulator", calls_before).await;
    let granulated = started.elapsed();

    reset_mock_totals().await;
    let calls_before = all_calls().await;
    let content_before = content_calls().await;
    let body = json!({"action": "generate", "input": g.body["output"]});
    let (c, tries) = rm_stage(&generator(), body, &client, &unique("rm-generate")).await;
    assert_eq!(c.status, 200, "generator tries {tries:?}: {}", c.body);
    assert_billed_as_served("generator", &c.body).await;
    let gen_job = c.body["metadata"]["jobId"]
        .as_i64()
        .or(c.body["output"]["jobId"].as_i64())
        .expect("metadata.jobId or output.jobId");
    let job = job_of(&generator(), gen_job, &client).await;
    assert_eq!(
        (job["status"].as_str(), runs(&job)),
        (Some("completed"), Some(1)),
        "{job}"
    );
    assert!(
        content_calls().await > content_before,
        "the generator asked the mock for content"
    );
    assert_each_call_answered_once("generator", calls_before).await;
    // The granulator's job was not run again by the second stage.
    assert_eq!(
        runs(&job_of(&granulator(), gran_job, &client).await),
        Some(1)
    );
    let n = assert_every_element_written(&g.body["output"]["structure"], &c.body["output"]);
    let total = started.elapsed();
    eprintln!(
        "chain: granularity-3 course, {n} elements at 100 tokens/s: granulator {:.1} s, generator {:.1} s, total {:.1} s (generator tries: {tries:?})",
        granulated.as_secs_f64(),
        total.saturating_sub(granulated).as_secs_f64(),
        total.as_secs_f64()
    );
}

#[tokio::test]
async fn a_generation_longer_than_the_rm_race_is_joined_by_its_retry_and_billed_once() {
    let topic = unique("chain-long");
    let client = unique("chain-client");
    let g = granulate(course(&topic, 3), &client).await;
    // The batch that writes module 0 streams 3,500 tokens (35 s at 100
    // tokens/s): the generation outlasts the first try's 30-s race. Its
    // element line is in no other prompt (the granulator's included).
    script(
        &format!("{topic} && - modules.0 | "),
        json!([{"kind": "valid", "usage": {"input": 800, "output": 3500}}]),
    )
    .await;
    reset_mock_totals().await;
    let calls_before = all_calls().await;
    let (c, tries) = rm_stage(
        &generator(),
        json!({"action": "generate", "input": g.body["output"]}),
        &client,
        &unique("rm-generate"),
    )
    .await;
    assert_eq!(c.status, 200, "generator tries {tries:?}: {}", c.body);
    assert!(
        tries.len() >= 2,
        "the first try should lose its race: {tries:?}"
    );
    assert_ne!(tries[0], "200", "{tries:?}");
    assert_billed_as_served("generator", &c.body).await;
    assert_each_call_answered_once("generator", calls_before).await;
    let id = c.body["metadata"]["jobId"]
        .as_i64()
        .or(c.body["output"]["jobId"].as_i64())
        .expect("metadata.jobId or output.jobId");
    let job = job_of(&generator(), id, &client).await;
    assert_eq!(
        (job["status"].as_str(), runs(&job)),
        (Some("completed"), Some(1)),
        "{job}"
    );
    assert_every_element_written(&g.body["output"]["structure"], &c.body["output"]);
}

#[tokio::test]
async fn a_kv_tier_outline_sent_by_reference_is_fetched_through_the_binding_and_written() {
    let topic = unique("chain-by-reference");
    let client = unique("chain-client");
    // Long descriptions put the outline in the KV tier (25-128 KiB).
    script(
        &topic,
        json!([{"kind": "valid", "counts": [6, 3, 2], "pad": 600}]),
    )
    .await;
    let mut body = course(&topic, 5);
    body["config"] = json!({"strategy": "single"});
    let g = granulate(body, &client).await;
    let mut output = g.body["output"].clone();
    assert_eq!(
        output["structureReference"]["type"], "kv",
        "{}",
        output["structureReference"]
    );
    let structure = output
        .as_object_mut()
        .and_then(|o| o.remove("structure"))
        .expect("the outline inline as well");
    // Another client cannot have it written: the granulator scopes the
    // reference to the client the generator acts for (no model call).
    let foreign = as_rm(
        reqwest::Method::POST,
        format!("{}/api/execute", generator()),
        Some(json!({"action": "generate", "input": output})),
        &unique("chain-other-client"),
        Some(&unique("rm-generate")),
        &[],
    )
    .await
    .expect("execute");
    assert_error(&foreign, 422, "structure_reference_not_found");
    let (c, tries) = rm_stage(
        &generator(),
        json!({"action": "generate", "input": output}),
        &client,
        &unique("rm-generate"),
    )
    .await;
    assert_eq!(c.status, 200, "generator tries {tries:?}: {}", c.body);
    assert_every_element_written(&structure, &c.body["output"]);
}

/// The error model: `{error, status, code}` with this status and code.
fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(
        (a.status, a.body["status"].as_u64(), a.body["code"].as_str()),
        (status, Some(u64::from(status)), Some(code)),
        "{}",
        a.body
    );
    assert!(
        a.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        a.body
    );
    assert!(
        !a.body.to_string().contains(SECRET),
        "no secret in {}",
        a.body
    );
}

#[tokio::test]
async fn a_reference_to_a_job_the_granulator_does_not_have_is_422_naming_it() {
    let topic = unique("chain-missing-reference");
    let client = unique("chain-client");
    let g = granulate(course(&topic, 3), &client).await;
    let mut output = g.body["output"].clone();
    let missing = 9_000_000_000_i64;
    output["granulatorJobId"] = json!(missing);
    output["structureReference"] = json!({"type": "kv", "location": format!("structure:{missing}"),
        "url": format!("/api/jobs/{missing}/structure")});
    if let Some(o) = output.as_object_mut() {
        o.remove("structure");
    }
    let a = as_rm(
        reqwest::Method::POST,
        format!("{}/api/execute", generator()),
        Some(json!({"action": "generate", "input": output})),
        &client,
        Some(&unique("rm-generate")),
        &[],
    )
    .await
    .expect("execute");
    assert_error(&a, 422, "structure_reference_not_found");
    assert!(
        a.body["error"]
            .as_str()
            .unwrap_or("")
            .contains(&missing.to_string()),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn a_reference_to_a_granulation_still_running_is_409_not_ready() {
    let client = unique("chain-client");
    let done = granulate(course(&unique("chain-done"), 3), &client).await;
    // A second granulation streams 20 s (2,000 tokens at 100 tokens/s).
    let topic = unique("chain-running");
    script(
        &topic,
        json!([{"kind": "valid", "usage": {"input": 500, "output": 2000}}]),
    )
    .await;
    let accepted = as_rm(
        reqwest::Method::POST,
        format!("{}/api/execute", granulator()),
        Some(course(&topic, 3)),
        &client,
        Some(&unique("rm-granulate")),
        &[("Prefer", "respond-async")],
    )
    .await
    .expect("submit");
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let running = accepted.body["jobId"].as_i64().expect("jobId");
    // The finished job's output, pointed at the running one.
    let mut output = done.body["output"].clone();
    output["granulatorJobId"] = json!(running);
    output["structureReference"] = json!({"type": "kv", "location": format!("structure:{running}"),
        "url": format!("/api/jobs/{running}/structure")});
    if let Some(o) = output.as_object_mut() {
        o.remove("structure");
    }
    let a = as_rm(
        reqwest::Method::POST,
        format!("{}/api/execute", generator()),
        Some(json!({"action": "generate", "input": output})),
        &client,
        Some(&unique("rm-generate")),
        &[],
    )
    .await
    .expect("execute");
    assert_error(&a, 409, "structure_not_ready");
    let job = job_of(&granulator(), running, &client).await;
    assert_eq!(job["status"], "processing", "still running: {job}");
    // Stopped, so its stream does not count in a later test's totals.
    let stop = as_rm(
        reqwest::Method::POST,
        format!("{}/api/jobs/{running}/cancel", granulator()),
        None,
        &client,
        None,
        &[],
    )
    .await
    .expect("cancel");
    assert_eq!(stop.status, 200, "{}", stop.body);
}

#[tokio::test]
async fn a_generation_cancelled_while_it_streams_ends_cancelled_and_the_rm_gets_no_success() {
    let topic = unique("chain-cancel");
    let client = unique("chain-client");
    let g = granulate(course(&topic, 3), &client).await;
    let before = content_calls().await;
    let rid = unique("rm-generate");
    let body = json!({"action": "generate", "input": g.body["output"], "timeout": RM_TIMEOUT_MS});
    let accepted = as_rm(
        reqwest::Method::POST,
        format!("{}/api/execute", generator()),
        Some(body.clone()),
        &client,
        Some(&rid),
        &[("Prefer", "respond-async")],
    )
    .await
    .expect("submit");
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let job = accepted.body["jobId"].as_i64().expect("jobId");
    // Until the first content call streams (the mock at 100 tokens/s).
    let mut streaming = false;
    for _ in 0..120 {
        if content_calls().await > before {
            streaming = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(streaming, "no content call started");
    let cancelled = as_rm(
        reqwest::Method::POST,
        format!("{}/api/jobs/{job}/cancel", generator()),
        None,
        &client,
        None,
        &[],
    )
    .await
    .expect("cancel");
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    let view = job_of(&generator(), job, &client).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    // The Resource Manager's stage for that id never reads a success.
    let (last, tries) = rm_stage(&generator(), body, &client, &rid).await;
    assert!(
        !(200..300).contains(&last.status),
        "tries {tries:?}: {}",
        last.body
    );
    assert_eq!(last.status, 409, "tries {tries:?}: {}", last.body);
}
