//! Economy and statistics from real data: stats and consumption report
//! exactly what happened, estimates without model calls, dated pricing and
//! admin analytics counted from recorded jobs.
//! Run through `./test.sh` (against the stack it starts); each test uses its
//! own topic marker (and, where it counts rows, its own client), so tests run
//! in parallel.

mod support;

use serde_json::{json, Value};
use support::*;

// ---- economy and statistics from real data ---------------------------------------------

#[tokio::test]
async fn stats_and_economy_report_exactly_what_happened() {
    let client = unique("ledger");
    let who = Who::WorkerFor(client.clone());
    let (a, b, c) = (unique("ledger-a"), unique("ledger-b"), unique("ledger-c"));
    script(&b, json!([{"kind": "invalid"}])).await;
    script(
        &c,
        json!([{"kind": "status", "code": 400}, {"kind": "status", "code": 400}]),
    )
    .await;
    assert_eq!(
        execute(&who, granulate(&a, "quiz", 1), None).await.status,
        200
    );
    assert_eq!(
        execute(&who, granulate(&b, "quiz", 1), None).await.status,
        200
    );
    assert_eq!(
        execute(&who, granulate(&c, "quiz", 1), None).await.status,
        502
    );

    let stats = get("/api/stats", &who).await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert_eq!(stats.body["scope"], client.as_str());
    assert_eq!(
        stats.body["jobs"],
        json!({"total": 3, "byStatus": {"completed": 2, "failed": 1, "processing": 0, "cancelled": 0}})
    );
    assert_eq!(stats.body["successRate"], 0.6667);
    assert_eq!(stats.body["averageQualityScore"], 1);
    assert_eq!(stats.body["tokens"], json!({"input": 3000, "output": 1500}));
    assert!(
        approx(&stats.body["costUsd"], 3.0 * DEFAULT_CALL_COST),
        "{}",
        stats.body
    );

    let economy = get("/api/economy/stats?days=7", &who).await;
    assert_eq!(economy.status, 200, "{}", economy.body);
    let totals = &economy.body["totals"];
    assert_eq!(totals["attempts"], 5);
    assert_eq!(totals["jobs"], 3);
    assert_eq!(totals["tokens"]["total"], 4500);
    assert!(approx(&totals["costUsd"], 0.00135));
    assert!(approx(&economy.body["costPerJob"], 0.00045));
    let providers = economy.body["byProvider"].as_array().unwrap();
    assert_eq!(
        providers
            .iter()
            .map(|p| (
                p["provider"].as_str().unwrap(),
                p["attempts"].as_u64().unwrap()
            ))
            .collect::<Vec<_>>(),
        vec![("anthropic", 1), ("openai", 4)]
    );
    assert_eq!(providers[1]["successRate"], 0.5);

    // Another client's view does not include these.
    let other = get("/api/stats", &Who::WorkerFor(unique("empty"))).await;
    assert_eq!(other.body["jobs"]["total"], 0);
}

#[tokio::test]
async fn estimates_price_a_job_without_calling_a_model() {
    let r = post(
        "/api/economy/estimate",
        &Who::Client,
        json!({"templateName": "educational_course_basic", "granularityLevel": 3}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let e = &r.body["estimate"];
    assert_eq!(e["model"], "gpt-4o-mini");
    assert_eq!(e["expectedElements"], 50);
    let (input, output) = (
        e["tokens"]["input"].as_f64().unwrap(),
        e["tokens"]["output"].as_f64().unwrap(),
    );
    assert!(approx(
        &e["costUsd"],
        ((input * 0.15 + output * 0.60) / 1e6 * 1e6).round() / 1e6
    ));
    assert!(r.body["alternatives"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["costUsd"].as_f64().unwrap() < e["costUsd"].as_f64().unwrap()));
    let bigger = post(
        "/api/economy/estimate",
        &Who::Client,
        json!({"structureType": "course", "granularityLevel": 5}),
    )
    .await;
    assert!(
        bigger.body["estimate"]["tokens"]["output"]
            .as_f64()
            .unwrap()
            > output
    );
    assert_error(
        &post(
            "/api/economy/estimate",
            &Who::Client,
            json!({"granularityLevel": 3}),
        )
        .await,
        400,
        "invalid_field",
    );
}

#[tokio::test]
async fn pricing_is_dated_and_admin_analytics_come_from_recorded_jobs() {
    let p = get("/api/economy/pricing", &Who::Client).await;
    assert_eq!(p.status, 200);
    // The stack's PRICING override (scripts/lib.sh) names no date: the kit's stays.
    assert_eq!(p.body["date"], bitware_kit::pricing::PRICING_DATE);
    assert_eq!(
        (&p.body["currency"], &p.body["unit"]),
        (&json!("USD"), &json!("per 1M tokens")),
        "{}",
        p.body
    );
    assert_eq!(
        p.body["models"]["gpt-4o-mini"],
        json!({"input": 0.15, "output": 0.6, "cachedInput": 0.075})
    );
    // Anthropic bills cache writes at 1.25x input and reads at 0.1x.
    assert_eq!(
        p.body["models"]["claude-haiku-4-5"],
        json!({"input": 1.0, "output": 5.0, "cachedInput": 0.1, "cacheWrite": 1.25})
    );
    // The override's models are priced as it says.
    assert_eq!(
        p.body["models"]["claude-3-5-haiku-latest"],
        json!({"input": 0.8, "output": 4.0}),
        "{}",
        p.body
    );
    let example = p.body["examples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["model"] == "gpt-4o-mini")
        .expect("an example for gpt-4o-mini")
        .clone();
    assert!(
        approx(&example["costUsd"], (2_000.0 * 0.15 + 4_000.0 * 0.6) / 1e6),
        "{example}"
    );

    // Analytics before and after one novel job: no other test of this file
    // runs a novel, so its template's row grows by exactly that job; the
    // day's, the provider's and the admin totals (which the file's other
    // tests share) by at least it.
    let novel_row = |a: &Value| {
        a["templates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["templateName"] == "three_act_novel")
            .cloned()
            .unwrap_or_else(|| json!({"jobs": 0, "completed": 0, "failed": 0}))
    };
    let today = bitware_kit::timing::day_of(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    );
    let count = |a: &Value, list: &str, key: &str, value: &str, field: &str| {
        a[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row[key] == value)
            .map_or(0, |row| row[field].as_u64().unwrap())
    };
    let before = get("/api/admin/analytics", &Who::AdminSession).await;
    assert_eq!(before.status, 200, "{}", before.body);
    let stats_before = get("/api/admin/stats", &Who::Worker).await.body["jobs"]["jobs"]["total"]
        .as_u64()
        .unwrap();
    let r = execute(
        &Who::Client,
        granulate(&unique("analytics"), "novel", 1),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["output"]["templateName"], "three_act_novel",
        "{}",
        r.body["output"]
    );
    let a = get("/api/admin/analytics", &Who::AdminSession).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (was, now) = (novel_row(&before.body), novel_row(&a.body));
    assert_eq!(now["structureType"], "novel", "{now}");
    for (field, grew) in [("jobs", 1), ("completed", 1), ("failed", 0)] {
        assert_eq!(
            now[field].as_u64().unwrap(),
            was[field].as_u64().unwrap() + grew,
            "three_act_novel {field}: {was} -> {now}"
        );
    }
    assert!(
        now["tokens"].as_u64().unwrap() > was["tokens"].as_u64().unwrap_or(0),
        "{was} -> {now}"
    );
    for (list, key, value, field) in [
        ("daily", "date", today.as_str(), "jobs"),
        ("daily", "date", today.as_str(), "completed"),
        ("structureTypes", "structureType", "novel", "jobs"),
        ("providers", "provider", "openai", "attempts"),
    ] {
        let (b, n) = (
            count(&before.body, list, key, value, field),
            count(&a.body, list, key, value, field),
        );
        assert!(
            n > b,
            "{list}[{key} = {value}].{field}: {b} -> {n}: {}",
            a.body[list]
        );
    }
    assert!(a.body["recommendations"].is_array());
    let s = get("/api/admin/stats", &Who::Worker).await;
    assert_eq!(s.status, 200);
    let total = s.body["jobs"]["jobs"]["total"].as_u64().unwrap();
    assert!(
        total > stats_before,
        "admin stats total: {stats_before} -> {total}"
    );
}

#[tokio::test]
async fn analytics_count_a_templates_jobs_exactly() {
    let name = format!("t{}", unique("analytic").replace('-', "_"));
    assert_eq!(create_quiz_template(&name).await.status, 201);
    let (a, b, c) = (unique("an-a"), unique("an-b"), unique("an-c"));
    script(&b, json!([{"kind": "valid"}, {"kind": "review", "scores": [10, 10]}, {"kind": "valid"}, {"kind": "review", "scores": [10, 10]}])).await;
    script(
        &c,
        json!([{"kind": "status", "code": 400}, {"kind": "status", "code": 400}]),
    )
    .await;
    let job = |topic: &str, config: Value| json!({"input": {"topic": topic, "templateName": name}, "config": config});
    assert_eq!(
        execute(&Who::Client, job(&a, json!({})), None).await.status,
        200
    );
    let failed_validation = execute(
        &Who::Client,
        job(&b, json!({"validationLevel": 2, "validationThreshold": 80})),
        None,
    )
    .await;
    assert_eq!(
        failed_validation.body["output"]["validationResult"]["passed"],
        false
    );
    assert_eq!(
        execute(&Who::Client, job(&c, json!({})), None).await.status,
        502
    );

    let analytics = get("/api/admin/analytics?days=1", &Who::AdminSession).await;
    let row = analytics.body["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["templateName"] == name.as_str())
        .expect("the template's row")
        .clone();
    assert_eq!(
        (
            row["jobs"].clone(),
            row["completed"].clone(),
            row["failed"].clone()
        ),
        (json!(3), json!(2), json!(1)),
        "{row}"
    );
    assert_eq!(row["successRate"], 0.6667);
    assert_eq!(row["validationFailureRate"], 0.5);
    assert_eq!(row["averageQualityScore"], 1);
    // a: 1 call; b: 2 outlines + 2 reviews; c: two refused calls at no cost.
    assert!(
        approx(&row["averageCostUsd"], 5.0 * DEFAULT_CALL_COST / 3.0),
        "{row}"
    );
    assert_eq!(row["tokens"], 5 * 1500);
    let stats = get("/api/admin/stats?days=1", &Who::Worker).await;
    let same = stats.body["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["templateName"] == name.as_str())
        .expect("row")
        .clone();
    assert_eq!(same, row);
    assert_error(
        &get("/api/admin/analytics", &Who::Client).await,
        403,
        "forbidden",
    );
}
