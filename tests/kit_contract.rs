//! The kit's contract suite end to end: every case of `bitware_kit::jobs`'
//! contract, run by the kit's contract worker (`crates/bitware-kit/dev/contract`)
//! on its D1 implementation under `wrangler dev`, on the kit's own
//! migrations, must hold, and must be the very cases the in-memory twins
//! pass natively (`cargo test -p bitware-kit`). Needs `KIT_CONTRACT_URL`
//! (`kit_start_contract` in crates/bitware-kit/scripts/kit.sh); without it
//! the test fails, never skips.

use bitware_kit::jobs::contract::{spend_ledger, Outcome};
use bitware_kit::jobs::memory::MemoryLedger;
use serde_json::Value;

#[tokio::test]
async fn the_d1_ledger_keeps_every_case_the_twin_keeps() {
    let url = std::env::var("KIT_CONTRACT_URL")
        .expect("KIT_CONTRACT_URL: start the kit's contract worker (kit_start_contract)");
    let body: Value = reqwest::Client::new()
        .post(format!("{url}/run"))
        .send()
        .await
        .expect("the contract worker answers")
        .error_for_status()
        .expect("POST /run is a 200")
        .json()
        .await
        .expect("a JSON body");
    assert_eq!(body["suite"], "spend_ledger");
    let on_d1: Vec<Outcome> =
        serde_json::from_value(body["outcomes"].clone()).expect("outcomes as the kit writes them");
    let failures: Vec<&Outcome> = on_d1.iter().filter(|o| o.failure.is_some()).collect();
    assert!(failures.is_empty(), "D1 breaks the contract: {failures:#?}");

    let twin = MemoryLedger::default();
    let in_memory = spend_ledger(&twin, &twin, "twin").await;
    let names = |o: &[Outcome]| o.iter().map(|o| o.case.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&on_d1),
        names(&in_memory),
        "the same cases on both sides"
    );
    assert!(
        in_memory.iter().all(|o| o.failure.is_none()),
        "{in_memory:#?}"
    );
}
