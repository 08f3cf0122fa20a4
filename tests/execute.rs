//! `POST /api/execute` end to end: every bad field is a 400 that writes
//! nothing; every type granulates at granularity 1, 3 and 5 and reads back;
//! the offline provider; storage tiers; constraints and rule violations;
//! validation and re-validation.
//! Run through `./test.sh` (against the stack it starts); each test uses its
//! own topic marker (and, where it counts rows, its own client), so tests run
//! in parallel.

mod support;

use serde_json::{json, Value};
use support::*;

#[tokio::test]
async fn every_bad_execute_field_is_a_400_naming_it_and_writes_nothing() {
    let client = unique("bad-input");
    let who = Who::WorkerFor(client.clone());
    let cases = [
        (
            json!({"action": "delete_everything", "input": {"topic": "x"}}),
            "action",
        ),
        (json!({"input": {"structureType": "course"}}), "input.topic"),
        (
            json!({"input": {"topic": "x", "structureType": "poem"}}),
            "input.structureType",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "params": {"granularityLevel": 9}}),
            "params.granularityLevel",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course", "constraints": {"counts": {"questions": 3}}}}),
            "constraints.counts.questions",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"aiProvider": "workers_ai"}}),
            "config.aiProvider",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"temperature": "hot"}}),
            "config.temperature",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "timeout": 5}),
            "timeout",
        ),
    ];
    for (body, field) in cases {
        let r = execute(&who, body.clone(), None).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["details"]["field"], field, "{body}: {}", r.body);
    }
    // Well-formed, but naming no template (404), or one of another type
    // (409): what is stored decides, not the request's form.
    for (body, status, code, field) in [
        (
            json!({"input": {"topic": "x", "templateName": "no_such_template"}}),
            404,
            "not_found",
            "input.templateName",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "quiz", "templateName": "educational_course_basic"}}),
            409,
            "structure_type_mismatch",
            "input.structureType",
        ),
    ] {
        let r = execute(&who, body.clone(), None).await;
        assert_error(&r, status, code);
        assert_eq!(r.body["details"]["field"], field, "{body}: {}", r.body);
    }
    let jobs = get("/api/jobs", &who).await;
    assert_eq!(
        jobs.body["total"], 0,
        "a refused request must not create a job"
    );
}

/// `X-Request-ID`, sent, must match the document's pattern (1-128 printable
/// ASCII characters, no space) for every action: an empty one is a 400, not
/// a request without a key.
#[tokio::test]
async fn a_request_id_off_its_pattern_is_a_400_for_every_action() {
    let who = Who::WorkerFor(unique("bad-request-id"));
    let long = "x".repeat(129);
    for body in [
        granulate(&unique("rid"), "quiz", 1),
        json!({"action": "estimate", "input": {"structureType": "quiz"}}),
    ] {
        for id in ["", "a b", long.as_str()] {
            let r = execute(&who, body.clone(), Some(id)).await;
            assert_eq!(r.status, 400, "{id:?} {body}: {}", r.body);
            assert_eq!(r.body["details"]["field"], "X-Request-ID", "{}", r.body);
        }
    }
    let ok = execute(
        &who,
        json!({"action": "estimate", "input": {"structureType": "quiz"}}),
        Some(&"~".repeat(128)),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(get("/api/jobs", &who).await.body["total"], 0);
}

// ---- the pipeline --------------------------------------------------------------

fn count_elements(structure: &Value, keys: &[&str]) -> usize {
    let Some((first, rest)) = keys.split_first() else {
        return 0;
    };
    structure[*first].as_array().map_or(0, |items| {
        items.len() + items.iter().map(|i| count_elements(i, rest)).sum::<usize>()
    })
}

const LEVELS: [(&str, &[&str]); 6] = [
    ("course", &["modules", "lessons", "activities"]),
    ("quiz", &["categories", "questions"]),
    ("novel", &["acts", "chapters", "scenes"]),
    ("workflow", &["phases", "steps", "tasks"]),
    ("knowledge_map", &["concepts", "subconcepts", "details"]),
    ("learning_path", &["milestones", "skills", "activities"]),
];

#[tokio::test]
async fn every_type_granulates_at_granularity_1_3_and_5_and_reads_back() {
    let marker = unique("six-types");
    let mut handles = Vec::new();
    for (structure_type, keys) in LEVELS {
        let marker = marker.clone();
        handles.push(tokio::spawn(async move {
            let mut sizes = Vec::new();
            for g in [1u8, 3, 5] {
                let r = execute(
                    &Who::Client,
                    granulate(&format!("{marker} {structure_type}"), structure_type, g),
                    None,
                )
                .await;
                assert_eq!(r.status, 200, "{structure_type} g{g}: {}", r.body);
                let out = &r.body["output"];
                for field in [
                    "granulatorJobId",
                    "topic",
                    "structureType",
                    "wordCountEstimates",
                    "contentMetadata",
                    "readyForNext",
                ] {
                    assert!(!out[field].is_null(), "{structure_type} g{g}: no {field}");
                }
                assert!(
                    out["summary"]["wordCountEstimates"]["total"]
                        .as_u64()
                        .unwrap()
                        > 0
                );
                assert_eq!(
                    out["contentMetadata"]["workerChain"]["currentWorker"],
                    "bitware-content-granulator"
                );
                assert_eq!(
                    out["qualityScore"], 1.0,
                    "{structure_type} g{g}: {}",
                    out["qualityReport"]
                );
                assert_eq!(out["provider"], "openai");
                // One call, or under `auto` a large outline fanned out (a skeleton,
                // its branches and its root fields): each call is the mock's usage.
                let calls = r.body["metadata"]["attempts"].as_u64().unwrap();
                assert_eq!(
                    calls == 1,
                    r.body["metadata"]["strategy"] == "single",
                    "{structure_type} g{g}: {calls} calls"
                );
                assert!(approx(&r.body["cost"], DEFAULT_CALL_COST * calls as f64));
                assert_eq!(
                    r.body["usage"]["tokens"],
                    json!({"input": 1000 * calls, "output": 500 * calls, "cached": 0})
                );
                let id = out["jobId"].as_i64().unwrap();
                let stored = get(&format!("/api/jobs/{id}/structure"), &Who::Client).await;
                assert_eq!(stored.status, 200);
                let structure = stored.body["structure"].clone();
                if out["structureReference"].is_null() {
                    assert_eq!(out["structure"], structure);
                }
                let elements = count_elements(&structure, keys);
                assert_eq!(out["summary"]["totalElements"], elements);
                let depth = keys
                    .iter()
                    .scan(structure.clone(), |node, k| {
                        let next = node[*k].get(0).cloned();
                        next.map(|n| {
                            *node = n;
                            1
                        })
                    })
                    .count();
                assert_eq!(
                    depth,
                    [1, keys.len(), keys.len()][[1u8, 3, 5].iter().position(|x| *x == g).unwrap()],
                    "{structure_type} g{g}"
                );
                // The hierarchy read back from D1 rows is the same outline.
                let rebuilt = get(
                    &format!("/api/jobs/{id}/structure?source=elements"),
                    &Who::Client,
                )
                .await;
                assert_eq!(rebuilt.body["source"], "elements");
                assert_eq!(
                    rebuilt.body["structure"], structure,
                    "{structure_type} g{g}"
                );
                sizes.push(elements);
            }
            assert!(
                sizes.windows(2).all(|w| w[0] < w[1]),
                "{structure_type}: {sizes:?}"
            );
        }));
    }
    for h in handles {
        h.await.expect("a type failed");
    }
}

#[tokio::test]
async fn the_offline_provider_granulates_every_type_at_zero_cost() {
    let key = unique("offline");
    for (structure_type, _) in LEVELS {
        let mut sizes = Vec::new();
        for g in [1u8, 3, 5] {
            let body = json!({"input": {"topic": format!("{key} {structure_type}"), "structureType": structure_type, "granularityLevel": g}, "config": {"aiProvider": "offline"}});
            let r = execute(&Who::Client, body, None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.body["output"]["provider"], "offline");
            assert_eq!(r.body["output"]["qualityScore"], 1.0);
            assert_eq!(r.body["cost"], 0.0);
            assert_eq!(r.body["usage"]["tokens"]["input"], 0);
            // The next worker will not write with the offline model: its estimate uses a real one.
            let estimate = &r.body["output"]["contentMetadata"]["resourceEstimates"];
            assert_eq!(estimate["pricedWithModel"], "gpt-4o-mini");
            assert!(estimate["estimatedCostUsd"].as_f64().unwrap() > 0.0);
            sizes.push(
                r.body["output"]["summary"]["totalElements"]
                    .as_u64()
                    .unwrap(),
            );
        }
        assert!(
            sizes.windows(2).all(|w| w[0] < w[1]),
            "{structure_type}: {sizes:?}"
        );
    }
    assert!(
        mock_calls(&key).await.is_empty(),
        "the offline provider needs no network"
    );
}

#[tokio::test]
async fn storage_tiers_follow_the_size_of_the_outline() {
    let mut tiers = std::collections::BTreeSet::new();
    for (counts, pad) in [
        (json!([3, 2, 1]), 0usize),
        (json!([12, 5, 4]), 0),
        (json!([12, 5, 4]), 600),
    ] {
        let key = unique("tier");
        script(
            &key,
            json!([{"kind": "valid", "counts": counts, "pad": pad}]),
        )
        .await;
        // One call, so the scripted answer is the outline (a granularity-5 course fans out under auto).
        let mut body = granulate(&key, "course", 5);
        body["config"] = json!({"strategy": "single"});
        let r = execute(&Who::Client, body, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let out = &r.body["output"];
        let id = out["jobId"].as_i64().unwrap();
        let tier = r.body["metadata"]["storageTier"]
            .as_str()
            .unwrap()
            .to_string();
        let stored = get(&format!("/api/jobs/{id}/structure"), &Who::Client).await;
        assert_eq!(stored.body["source"], tier.as_str());
        let size = stored.body["structure"].to_string().len();
        let expected = if size < 25 * 1024 {
            "inline"
        } else if size < 128 * 1024 {
            "kv"
        } else {
            "r2"
        };
        assert_eq!(tier, expected, "{size} bytes");
        let rebuilt = get(
            &format!("/api/jobs/{id}/structure?source=elements"),
            &Who::Client,
        )
        .await;
        assert_eq!(rebuilt.body["structure"], stored.body["structure"]);
        if tier == "inline" {
            assert_eq!(out["structure"], stored.body["structure"]);
        } else {
            let reference = &out["structureReference"];
            assert_eq!(reference["type"], tier.as_str());
            let location = if tier == "kv" {
                format!("structure:{id}")
            } else {
                format!("structures/{id}.json")
            };
            assert_eq!(reference["location"], location.as_str());
            assert_eq!(reference["sizeBytes"], size);
            // Inline too (under 512 KiB): the next worker never reads our storage.
            assert_eq!(out["structure"], stored.body["structure"]);
        }
        let c: Vec<u64> = counts
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(
            out["summary"]["totalElements"],
            c[0] + c[0] * c[1] + c[0] * c[1] * c[2]
        );
        tiers.insert(tier);
    }
    assert_eq!(
        tiers.into_iter().collect::<Vec<_>>(),
        vec!["inline", "kv", "r2"]
    );
}

#[tokio::test]
async fn constraints_are_enforced_not_just_mentioned() {
    let key = unique("constraints");
    let r = execute(
        &Who::Client,
        json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 3,
        "constraints": {"maxElements": 20, "counts": {"modules": 4}}}}),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let out = &r.body["output"];
    assert_eq!(out["structure"]["modules"].as_array().unwrap().len(), 4);
    assert_eq!(out["summary"]["totalElements"], 20);
    let calls = mock_calls(&key).await;
    assert!(calls[0]["user"]
        .as_str()
        .unwrap()
        .contains("at most 20 elements in total"));
    assert_eq!(calls.len(), 2, "the violation went back to the model once");
}

#[tokio::test]
async fn rule_violations_go_back_to_the_model_once() {
    let key = unique("repair");
    script(&key, json!([{"kind": "valid", "counts": [2, 2, 1]}])).await;
    let r = execute(&Who::Client, granulate(&key, "course", 3), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let calls = mock_calls(&key).await;
    assert_eq!(calls.len(), 2);
    let feedback = calls[1]["user"].as_str().unwrap();
    assert!(
        feedback.contains("Your previous outline")
            && feedback.contains("has 2 modules, needs 3-12"),
        "{feedback}"
    );
    assert!(
        r.body["output"]["structure"]["modules"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
    assert_eq!(r.body["output"]["qualityScore"], 1.0);
    assert!(approx(&r.body["cost"], 2.0 * DEFAULT_CALL_COST));
}

// ---- validation ---------------------------------------------------------------------

#[tokio::test]
async fn a_failed_validation_regranulates_once_then_reports_the_result() {
    let key = unique("validation");
    // Review 1 fails, the second outline's review passes.
    script(&key, json!([{"kind": "valid"}, {"kind": "review", "scores": [40, 50]}, {"kind": "valid"}, {"kind": "review", "scores": [95, 95]}])).await;
    let r = execute(&Who::Client, json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 2}, "config": {"validationLevel": 2, "validationThreshold": 80}}), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = &r.body["output"]["validationResult"];
    assert_eq!(v["passed"], true);
    assert_eq!(v["accuracyPercentage"], 97.5);
    assert_eq!(r.body["output"]["readyForContentGeneration"], true);
    let kinds: Vec<String> = mock_calls(&key)
        .await
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, vec!["course", "review", "course", "review"]);
    assert!(approx(&r.body["cost"], 4.0 * DEFAULT_CALL_COST));

    let key = unique("validation-fails");
    script(&key, json!([{"kind": "valid"}, {"kind": "review", "scores": [20, 20]}, {"kind": "valid"}, {"kind": "review", "scores": [30, 30]}])).await;
    let r = execute(&Who::Client, json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 2}, "config": {"validationLevel": 2, "validationThreshold": 80}}), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["output"]["validationResult"]["passed"], false);
    assert_eq!(r.body["output"]["readyForContentGeneration"], false);
    assert_eq!(r.body["output"]["readyForNext"], false);
    assert_eq!(
        mock_calls(&key).await.len(),
        4,
        "re-granulated at most once"
    );
}

#[tokio::test]
async fn jobs_can_be_validated_again_and_history_is_client_scoped() {
    let key = unique("revalidate");
    let done = execute(&Who::Client, granulate(&key, "learning_path", 2), None).await;
    let id = done.body["output"]["jobId"].as_i64().unwrap();
    let v = post(
        "/api/validate",
        &Who::Client,
        json!({"jobId": id, "validationLevel": 3, "threshold": 60}),
    )
    .await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.body["validationResult"]["level"], 3);
    assert_eq!(v.body["validationResult"]["passed"], true);
    assert_eq!(
        v.body["validationResult"]["criteria"]
            .as_array()
            .unwrap()
            .len(),
        5 + 4
    );
    let via_execute = execute(
        &Who::Client,
        json!({"action": "validate", "input": {"jobId": id}}),
        None,
    )
    .await;
    assert_eq!(via_execute.status, 200, "{}", via_execute.body);
    let history = get(
        &format!("/api/validation/history?job_id={id}"),
        &Who::Client,
    )
    .await;
    assert_eq!(history.body["count"], 2);
    assert_eq!(
        get(
            &format!("/api/validation/history?job_id={id}"),
            &Who::OtherClient
        )
        .await
        .body["count"],
        0
    );
    assert_error(
        &post("/api/validate", &Who::OtherClient, json!({"jobId": id})).await,
        404,
        "not_found",
    );
    assert_error(
        &post(
            "/api/validate",
            &Who::Client,
            json!({"jobId": id, "validationLevel": 7}),
        )
        .await,
        400,
        "invalid_field",
    );
}
