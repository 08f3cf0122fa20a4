//! The restore drill's steps against `wrangler dev` (driven by tests/dr.sh,
//! the `dr` layer of ./test.sh; `DR_PHASE` names the step, and without it
//! the test fails rather than pass having done nothing):
//!
//! - `fill`: on top of the ledger's jobs (tests/ledger.rs, run first), an
//!   outline in every storage tier (inline, KV, R2) by every credential tier;
//! - `snapshot`: every stats, economy and analytics figure of every scope,
//!   every job and every stored outline, written to `DR_SNAPSHOT`;
//! - `compare`: the same read again after the restore, which must equal the
//!   snapshot. With `DR_STORAGE_LOST=1` (KV and R2 destroyed too) outlines
//!   stored in KV or R2 must come back rebuilt from D1's elements, equal to
//!   what storage held.

mod support;

use serde_json::{json, Map, Value};
use support::*;

fn scopes() -> Vec<(&'static str, Who)> {
    vec![
        ("client-standard", Who::Client),
        ("client-basic", Who::OtherClient),
        (
            "client-enterprise",
            Who::ApiKey("dev-enterprise-key".into()),
        ),
        ("user-session", Who::UserSession),
        ("worker-for-rm", Who::WorkerFor("rm-client".into())),
        ("worker", Who::Worker),
        ("admin-session", Who::AdminSession),
    ]
}

async fn fill() {
    // A single call whose scripted answer is the outline: 3x2x1 stays inline,
    // 12x5x4 goes to KV, and padded to R2 (tests/execute.rs measures the sizes).
    let shapes = [
        ("inline", json!([3, 2, 1]), 0usize),
        ("kv", json!([12, 5, 4]), 0),
        ("r2", json!([12, 5, 4]), 600),
    ];
    for (name, who) in scopes() {
        if name == "user-session" || name == "worker" {
            continue; // the same tenants as client-standard and admin
        }
        for (tier, counts, pad) in &shapes {
            let key = unique(&format!("dr-{name}-{tier}"));
            script(
                &key,
                json!([{"kind": "valid", "counts": counts, "pad": pad}]),
            )
            .await;
            let mut body = granulate(&key, "course", 5);
            body["config"] = json!({"strategy": "single"});
            let r = execute(&who, body, None).await;
            assert_eq!(r.status, 200, "{name} {tier}: {}", r.body);
            assert_eq!(r.body["metadata"]["storageTier"], *tier, "{name}");
        }
    }
}

/// Everything the restore must give back, keyed by scope and path.
async fn snapshot() -> Map<String, Value> {
    let mut all = Map::new();
    let mut read = |key: String, reply: Reply| {
        assert_eq!(reply.status, 200, "{key}: {}", reply.body);
        all.insert(key, reply.body);
    };
    for (name, who) in scopes() {
        for path in [
            "/api/stats",
            "/api/economy/stats",
            "/api/jobs?limit=100",
            "/api/validation/history?limit=100",
        ] {
            read(format!("{name} {path}"), get(path, &who).await);
        }
    }
    for path in ["/api/admin/stats", "/api/admin/analytics"] {
        read(
            format!("admin-session {path}"),
            get(path, &Who::AdminSession).await,
        );
    }
    let jobs = get("/api/jobs?limit=100", &Who::AdminSession).await.body;
    let jobs = jobs["jobs"].as_array().cloned().unwrap_or_default();
    assert!(
        jobs.len() >= 18,
        "the ledger's jobs and the drill's: {}",
        jobs.len()
    );
    for job in jobs {
        let id = job["id"]
            .as_i64()
            .or_else(|| job["jobId"].as_i64())
            .expect("id");
        read(
            format!("job {id}"),
            get(&format!("/api/jobs/{id}"), &Who::AdminSession).await,
        );
        if job["status"] == "completed" {
            let path = format!("/api/jobs/{id}/structure");
            read(
                format!("structure {id}"),
                get(&path, &Who::AdminSession).await,
            );
        }
    }
    all
}

fn snapshot_file() -> String {
    std::env::var("DR_SNAPSHOT").expect("DR_SNAPSHOT names the snapshot file")
}

#[tokio::test]
async fn drill_phase() {
    let phase = std::env::var("DR_PHASE")
        .expect("DR_PHASE is fill, snapshot or compare: run through tests/dr.sh");
    match phase.as_str() {
        "fill" => fill().await,
        "snapshot" => {
            let snap = snapshot().await;
            let tiers: Vec<&str> = snap
                .iter()
                .filter(|(k, _)| k.starts_with("structure "))
                .filter_map(|(_, v)| v["source"].as_str())
                .collect();
            for tier in ["inline", "kv", "r2"] {
                assert!(
                    tiers.contains(&tier),
                    "no outline stored in {tier}: {tiers:?}"
                );
            }
            std::fs::write(
                snapshot_file(),
                serde_json::to_string_pretty(&Value::Object(snap)).unwrap(),
            )
            .expect("write the snapshot");
        }
        "compare" => {
            let before: Map<String, Value> = serde_json::from_str(
                &std::fs::read_to_string(snapshot_file()).expect("the snapshot"),
            )
            .expect("snapshot JSON");
            let storage_lost = std::env::var("DR_STORAGE_LOST").is_ok_and(|v| v == "1");
            let after = snapshot().await;
            let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(
                keys(&after),
                keys(&before),
                "the same scopes, jobs and outlines"
            );
            let (mut same, mut rebuilt) = (0, 0);
            for (key, want) in &before {
                let mut got = after[key].clone();
                if storage_lost && key.starts_with("structure ") && want["source"] != "inline" {
                    assert_eq!(got["source"], "elements", "{key}: rebuilt from D1");
                    got["source"] = want["source"].clone();
                    rebuilt += 1;
                }
                assert_eq!(&got, want, "{key} differs after the restore");
                same += 1;
            }
            println!("dr: {same} answers identical after the restore ({rebuilt} outlines rebuilt from D1 elements)");
        }
        other => panic!("unknown DR_PHASE {other}"),
    }
}
