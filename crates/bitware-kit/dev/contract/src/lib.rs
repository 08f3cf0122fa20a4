//! The kit's contract worker: `POST /run` runs every case of the contract
//! suites of `bitware_kit::jobs` (the spend ledger, the job store) on their
//! D1 implementations (the kit's tables,
//! from the kit's migrations) and answers their outcomes; `GET /` answers
//! once it is up. The same cases run natively on the in-memory twins
//! (`cargo test -p bitware-kit`); `tests/kit_contract.rs` compares the two.
//! Test-only: started on loopback by the suite, never deployed.

use bitware_kit::d1::bind::{n, t};
use bitware_kit::d1::D1;
use bitware_kit::error::AppResult;
use bitware_kit::jobs::contract::{self, LedgerFixture};
use bitware_kit::jobs::{D1Jobs, D1Ledger, JobSchema};
use serde_json::json;
use worker::{event, Context, Env, Request, Response};

/// Jobs on the kit's `jobs` table, for cases that bound a reservation by one.
struct Jobs<'a> {
    db: &'a D1,
}

impl LedgerFixture for Jobs<'_> {
    async fn job_costing(&self, tenant: &str, cost_usd: f64) -> AppResult<i64> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: i64,
        }
        let db = self.db;
        let stmt = db.stmt(
            "INSERT INTO jobs (client_id, execution_id, request_params, deadline_at, cost_usd) \
             VALUES (?1, ?2, '{}', 0, ?3) RETURNING id",
            &[t(tenant), t(&uuid::Uuid::new_v4().to_string()), n(cost_usd)],
        )?;
        let row: Option<Id> = db.first("making a job", stmt).await?;
        row.map(|r| r.id)
            .ok_or_else(|| bitware_kit::error::AppError::internal("no job id returned"))
    }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    match (req.method(), req.path().as_str()) {
        (worker::Method::Get, "/") => Response::from_json(&json!({"worker": "kit-contract"})),
        (worker::Method::Post, "/run") => {
            let db = match D1::open(&env, "DB") {
                Ok(db) => db,
                Err(e) => return Response::error(e.to_string(), 503),
            };
            let ledger = D1Ledger::new(&db, JobSchema::KIT);
            let store = D1Jobs::new(&db, JobSchema::KIT);
            let run = uuid::Uuid::new_v4().to_string();
            let spend_ledger = contract::spend_ledger(&ledger, &Jobs { db: &db }, &run).await;
            let job_store = contract::job_store(&store, &ledger, &run).await;
            Response::from_json(&json!({
                "suites": {"spend_ledger": spend_ledger, "job_store": job_store}
            }))
        }
        _ => Response::error("not found", 404),
    }
}
