//! The kit's contract suites end to end: every case of `bitware_kit::jobs`'
//! contract (the spend ledger, the job store), run by the kit's contract
//! worker (`crates/bitware-kit/dev/contract`) on the D1 implementations
//! under `wrangler dev`, on the kit's own migrations, must hold, and must
//! be the very cases the in-memory twins pass natively (`cargo test -p
//! bitware-kit`). Needs `KIT_CONTRACT_URL` (`kit_start_contract` in
//! crates/bitware-kit/scripts/kit.sh); without it the test fails, never skips.

use bitware_kit::jobs::contract::{job_store, spend_ledger, Outcome};
use bitware_kit::jobs::memory::MemoryLedger;
use bitware_kit::jobs::memory_jobs::MemoryJobs;
use serde_json::Value;

async fn on_d1() -> Value {
    let url = std::env::var("KIT_CONTRACT_URL")
        .expect("KIT_CONTRACT_URL: start the kit's contract worker (kit_start_contract)");
    reqwest::Client::new()
        .post(format!("{url}/run"))
        .send()
        .await
        .expect("the contract worker answers")
        .error_for_status()
        .expect("POST /run is a 200")
        .json()
        .await
        .expect("a JSON body")
}

fn holds(suite: &str, on_d1: &Value, in_memory: &[Outcome]) {
    let on_d1: Vec<Outcome> = serde_json::from_value(on_d1["suites"][suite].clone())
        .unwrap_or_else(|e| panic!("{suite}: outcomes as the kit writes them: {e}"));
    let failures: Vec<&Outcome> = on_d1.iter().filter(|o| o.failure.is_some()).collect();
    assert!(
        failures.is_empty(),
        "D1 breaks the {suite} contract: {failures:#?}"
    );
    let names = |o: &[Outcome]| o.iter().map(|o| o.case.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&on_d1),
        names(in_memory),
        "{suite}: the same cases on both sides"
    );
    assert!(
        in_memory.iter().all(|o| o.failure.is_none()),
        "{in_memory:#?}"
    );
    assert!(!on_d1.is_empty(), "{suite}: no case ran");
}

#[tokio::test]
async fn d1_keeps_every_case_the_twins_keep() {
    let body = on_d1().await;
    let ledger = MemoryLedger::default();
    holds(
        "spend_ledger",
        &body,
        &spend_ledger(&ledger, &ledger, "twin").await,
    );
    let jobs = MemoryJobs::default();
    holds(
        "job_store",
        &body,
        &job_store(&jobs, &jobs.ledger, "twin").await,
    );
}
