pub mod error;
pub mod helpers;
pub mod routes;
pub mod services;
pub mod types;

use worker::*;

#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    Response::from_json(&serde_json::json!({"status": "healthy"}))
}
