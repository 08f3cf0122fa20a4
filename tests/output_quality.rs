//! Honest outputs, end to end against `wrangler dev` and the mock provider:
//! a paid outline is never thrown away when its review fails, constraints no
//! complete outline can meet are refused up front, a tight `maxElements` gives
//! a smaller outline valid by its own rules, and the offline provider's
//! outlines say they are placeholders and hang together.

mod support;

use serde_json::{json, Value};
use support::*;

fn attempts(job: &Value) -> Vec<String> {
    job["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}:{}:{}",
                a["provider"].as_str().unwrap(),
                a["purpose"].as_str().unwrap(),
                a["status"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_failed_review_keeps_the_paid_outline_marked_review_unavailable() {
    let key = unique("review-down");
    script(
        &key,
        json!([{"kind": "valid"}, {"kind": "status", "code": 401}, {"kind": "status", "code": 401}]),
    )
    .await;
    let body = json!({"input": {"topic": key, "structureType": "quiz", "granularityLevel": 2},
        "config": {"validation": true, "validationLevel": 2}});
    let r = execute(&Who::Client, body, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let out = &r.body["output"];
    assert!(out["structure"]["categories"].as_array().unwrap().len() >= 2);
    let v = &out["validationResult"];
    assert_eq!(v["passed"], false, "{v}");
    assert_eq!(v["reason"], "review_unavailable");
    assert_eq!(v["level"], 2);
    assert!(v["issues"][0]
        .as_str()
        .unwrap()
        .starts_with("review_unavailable: the level-2 AI review could not be obtained"));
    assert_eq!(out["readyForContentGeneration"], false);
    assert_eq!(out["readyForNext"], false);
    assert_eq!(
        r.body["metadata"]["warnings"][0]["code"],
        "review_unavailable"
    );
    // Only the outline was billed; the refused review calls cost nothing.
    assert!(
        approx(&r.body["cost"], DEFAULT_CALL_COST),
        "{}",
        r.body["cost"]
    );
    let calls = mock_calls(&key).await;
    let kinds: Vec<&str> = calls.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["quiz", "review", "review"], "no second outline");

    let id = out["jobId"].as_i64().unwrap();
    let job = get(&format!("/api/jobs/{id}"), &Who::Client).await.body;
    assert_eq!(job["job"]["status"], "completed", "{job}");
    assert_eq!(
        attempts(&job),
        vec![
            "openai:granulate:success",
            "openai:validate:http_error",
            "anthropic:validate:http_error"
        ]
    );
    let stored = get(&format!("/api/jobs/{id}/structure"), &Who::Client).await;
    assert_eq!(stored.status, 200);
    assert_eq!(stored.body["structure"], out["structure"]);
    let history = get(
        &format!("/api/validation/history?job_id={id}"),
        &Who::Client,
    )
    .await;
    assert_eq!(history.status, 200, "{}", history.body);
    assert_eq!(
        history.body["results"][0]["passed"], false,
        "{}",
        history.body
    );
    assert!(history.body["results"][0]["issues"][0]
        .as_str()
        .unwrap()
        .starts_with("review_unavailable"));
}

#[tokio::test]
async fn a_max_elements_no_complete_outline_can_meet_is_a_400_naming_the_conflict() {
    let key = unique("too-few");
    let body = json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 5,
        "constraints": {"maxElements": 10}}});
    let r = execute(&Who::Client, body, None).await;
    assert_error(&r, 400, "constraints_conflict");
    assert_eq!(r.body["details"]["field"], "constraints.maxElements");
    let message = r.body["error"].as_str().unwrap();
    assert!(
        message.contains("maxElements 10 cannot hold a complete course at granularity 5")
            && message.contains("at least 15 or lower granularityLevel to 2"),
        "{message}"
    );
    assert!(mock_calls(&key).await.is_empty(), "no model call");
    let jobs = get("/api/jobs?limit=100", &Who::Client).await;
    assert!(
        !jobs.body.to_string().contains(&key),
        "no job is created for a refused request"
    );
}

#[tokio::test]
async fn a_tight_max_elements_gives_a_smaller_outline_valid_by_its_own_rules() {
    let key = unique("tight");
    let body = json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 5,
        "constraints": {"maxElements": 15}}});
    let r = execute(&Who::Client, body, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let out = &r.body["output"];
    assert_eq!(
        out["summary"]["elementsByLevel"],
        json!({"modules": 3, "lessons": 6, "activities": 6})
    );
    assert_eq!(out["qualityReport"]["violations"], json!([]));
    assert_eq!(out["qualityScore"], 1.0);
    assert_eq!(out["readyForContentGeneration"], true);
    for module in out["structure"]["modules"].as_array().unwrap() {
        for lesson in module["lessons"].as_array().unwrap() {
            assert_eq!(lesson["activities"].as_array().unwrap().len(), 1);
        }
    }
}

/// An offline granulation's envelope, with `output.structure` filled in from
/// storage when the outline was too large to travel inline.
async fn offline(structure_type: &str, granularity: u8, topic: &str) -> Value {
    let body = json!({"input": {"topic": topic, "structureType": structure_type, "granularityLevel": granularity},
        "config": {"aiProvider": "offline"}});
    let mut r = execute(&Who::Client, body, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    if r.body["output"]["structure"].is_null() {
        let id = r.body["output"]["jobId"].as_i64().unwrap();
        let stored = get(&format!("/api/jobs/{id}/structure"), &Who::Client).await;
        r.body["output"]["structure"] = stored.body["structure"].clone();
    }
    r.body
}

#[tokio::test]
async fn offline_outlines_are_marked_placeholders_and_hang_together() {
    let key = unique("offline-honest");
    for g in 1..=5u8 {
        let r = offline("quiz", g, &key).await;
        let out = &r["output"];
        assert_eq!(out["placeholder"], true);
        assert!(r["metadata"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "placeholder"));
        // Development: ready follows the score (production never: unit-tested).
        assert_eq!(out["readyForContentGeneration"], true);
        let quiz = &out["structure"];
        let questions: Vec<&Value> = quiz["categories"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["questions"].as_array().into_iter().flatten())
            .collect();
        assert_eq!(quiz["totalQuestions"], questions.len(), "g{g}");
        for q in &questions {
            assert!(
                q["options"].as_array().unwrap().contains(&q["answer"]),
                "{q}"
            );
        }
        if questions.len() > 3 {
            assert!(questions
                .iter()
                .any(|q| q["answer"] != questions[0]["answer"]));
        }
    }
    let workflow = offline("workflow", 3, &key).await;
    for phase in workflow["output"]["structure"]["phases"]
        .as_array()
        .unwrap()
    {
        let names: Vec<&Value> = phase["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["name"])
            .collect();
        for step in phase["steps"].as_array().unwrap() {
            for dep in step["dependsOn"].as_array().unwrap() {
                assert!(names.contains(&dep), "{dep} is not a step of its phase");
            }
        }
    }
    for g in [1u8, 3, 5] {
        let novel = offline("novel", g, &key).await;
        assert_eq!(novel["output"]["templateName"], "three_act_novel");
        assert_eq!(
            novel["output"]["structure"]["acts"]
                .as_array()
                .unwrap()
                .len(),
            3,
            "g{g}"
        );
    }
    // A model's outline is not a placeholder.
    let r = execute(&Who::Client, granulate(&key, "course", 2), None).await;
    assert_eq!(r.body["output"]["placeholder"], false);
    assert_eq!(r.body["metadata"]["warnings"], json!([]));
}

#[tokio::test]
async fn help_documents_recovery_conflicts_unavailable_reviews_and_placeholders() {
    let r = get("/help", &Who::Nobody).await;
    assert_eq!(r.status, 200);
    let course = r.body["structureTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "course")
        .unwrap();
    assert_eq!(course["granularity"][4]["minimumElements"], 15);
    assert_eq!(course["granularity"][0]["minimumElements"], 3);
    for (section, needle) in [
        ("constraints", "constraints_conflict"),
        ("validation", "review_unavailable"),
        ("modelOutput", "JSON5"),
        ("offlineProvider", "placeholder"),
    ] {
        assert!(
            r.body[section].to_string().contains(needle),
            "/help {section} does not mention {needle}"
        );
    }
}
