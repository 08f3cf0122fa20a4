//! bitware-kit: what every AI Factory worker shares, so the Content Granulator,
//! the Content Generator and the Content Packager cannot drift apart.
//!
//! - [`auth`]: the three credential tiers (seed §3), principals and tenants,
//!   the access rule, constant-time secret checks; [`kam_answer`]: what KAM's
//!   answers mean; [`kam`]: the KAM client with its 60 s KV cache (`worker`).
//! - [`config`]: the kit's parts of a worker's configuration read from the
//!   environment the same way in every worker (`worker`).
//! - [`d1`]: the D1 handle (round trips counted, typed rows, binds only,
//!   batches, the guarded batch that writes nothing unless its condition
//!   holds).
//! - [`error`]: the one error type and its JSON body; [`contain`]: a panic
//!   answered in JSON, the instance reset (`worker`).
//! - [`front`]: the front door: route, authenticate, authorise, answer and
//!   log one JSON line (`worker`).
//! - [`routes`]: the route table a worker declares, matched with 404 / 405 +
//!   `Allow` from the same list that `/help` and OpenAPI read.
//! - [`openapi`]: the OpenAPI 3.1 document and `/help`'s route
//!   list from a worker's route table and one `RouteDoc` per route.
//! - [`http`]: JSON responses, CORS, request ids, bounded JSON bodies;
//!   [`log`]: one structured JSON line per request.
//! - [`storage`]: inline / KV / R2 tiering of large results.
//! - [`ai`]: the provider chain (OpenAI, Anthropic, Workers AI wire formats,
//!   streaming, retries, fallback, per-job budget) behind a `Runtime` trait,
//!   its Workers implementation (`worker`); [`pricing`], [`provider`],
//!   [`provider_setup`]: prices per model, provider settings, which
//!   providers are configured and the chain a call runs with. The worker names its call purposes.
//! - [`jobs`]: the job lifecycle behind ports with kit-owned types, their
//!   D1 implementations (`worker`), in-memory twins and contract suite
//!   (`twins`); so far the daily spend ledger.
//! - [`limits`]: KAM tiers, per-job ceiling, daily caps by tier, who pays
//!   and the tier's rate limit (`worker`).
//! - [`timing`]: the platform clock, timeouts, a `Clock` trait for tests.
//! - [`testing`]: the end-to-end harness (every credential tier of the KAM
//!   stand-in, the error model's assertions), `test-support` feature.
//!
//! Test support beside the crate: `dev/kam/` (the KAM stand-in, a JS worker
//! run next to the worker by `wrangler dev -c`), `scripts/kit.sh` (ports,
//! process groups, `start_worker`, migrations) and `scripts/new-worker.sh`
//! (the scaffold of the next worker).
//!
//! Worker-specific names (worker id, bindings, key prefixes, routes) are
//! parameters. Everything that calls Workers bindings sits behind the
//! `worker` feature; without it the crate is pure and tests natively.

// No unwrap, expect or panic in library code: a panic poisons the wasm instance
// (every request in flight on it fails). Tests may (clippy.toml).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod ai;
pub mod auth;
#[cfg(feature = "worker")]
pub mod config;
#[cfg(feature = "worker")]
pub mod contain;
pub mod d1;
#[cfg(feature = "worker")]
pub mod entry;
pub mod error;
#[cfg(feature = "worker")]
pub mod front;
pub mod http;
pub mod jobs;
#[cfg(feature = "worker")]
pub mod kam;
pub mod kam_answer;
pub mod limits;
pub mod log;
pub mod openapi;
#[cfg(feature = "worker")]
pub mod peer;
pub mod pricing;
pub mod provider;
pub mod provider_setup;
pub mod routes;
pub mod storage;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod timing;

/// For the kit's macros (`delegate_job_store!`), so a worker needs no
/// `serde_json` of its own to use them.
#[doc(hidden)]
pub use serde_json as __serde_json;
