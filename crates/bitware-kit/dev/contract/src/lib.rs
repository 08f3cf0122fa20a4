//! The kit's contract worker: `POST /run` runs every case of the contract
//! suite of `bitware_kit::jobs` on its D1 implementation (the kit's tables,
//! from the kit's migrations) and answers their outcomes; `GET /` answers
//! once it is up. The same cases run natively on the in-memory twins
//! (`cargo test -p bitware-kit`); `tests/kit_contract.rs` compares the two.
//! Test-only: started on loopback by the suite, never deployed.

use bitware_kit::d1::bind::{n, t};
use bitware_kit::d1::D1;
use bitware_kit::error::AppResult;
use bitware_kit::jobs::contract::{self, LedgerFixture};
use bitware_kit::jobs::{D1Ledger, Tables};
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
            let ledger = D1Ledger::new(&db, Tables::KIT);
            let run = uuid::Uuid::new_v4().to_string();
            let outcomes = contract::spend_ledger(&ledger, &Jobs { db: &db }, &run).await;
            Response::from_json(&json!({"suite": "spend_ledger", "outcomes": outcomes}))
        }
        _ => Response::error("not found", 404),
    }
}
