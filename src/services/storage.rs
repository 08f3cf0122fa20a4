//! Storage tiering of finished structures (seed §6.1), by UTF-8 size:
//! under 25 KiB inline in the response and D1; under 128 KiB in KV
//! (`structure:{jobId}`, 7-day TTL); larger in R2 (`structures/{jobId}.json`).

use crate::error::{AppError, AppResult};
use crate::types::env::{App, JOB_CACHE, STRUCTURE_STORAGE};
use serde::Serialize;
use serde_json::Value;

pub const INLINE_LIMIT: usize = 25 * 1024;
pub const KV_LIMIT: usize = 128 * 1024;
pub const KV_TTL_SECONDS: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Inline,
    Kv,
    R2,
}

impl Tier {
    pub fn for_size(bytes: usize) -> Tier {
        if bytes < INLINE_LIMIT {
            Tier::Inline
        } else if bytes < KV_LIMIT {
            Tier::Kv
        } else {
            Tier::R2
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Inline => "inline",
            Tier::Kv => "kv",
            Tier::R2 => "r2",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        [Tier::Inline, Tier::Kv, Tier::R2]
            .into_iter()
            .find(|t| t.as_str() == s)
    }

    pub fn location(self, job_id: i64) -> Option<String> {
        match self {
            Tier::Inline => None,
            Tier::Kv => Some(format!("structure:{job_id}")),
            Tier::R2 => Some(format!("structures/{job_id}.json")),
        }
    }
}

fn storage_error(what: &str, e: impl std::fmt::Display) -> AppError {
    crate::error::worker_log(&format!("storage error while {what}: {e}"));
    AppError::unavailable(
        "storage_unavailable",
        format!("structure storage is unavailable ({what})"),
    )
}

/// Write a structure that is too large to inline. Inline needs no write.
pub async fn store(app: &App, tier: Tier, job_id: i64, json: &str) -> AppResult<Option<String>> {
    let Some(location) = tier.location(job_id) else {
        return Ok(None);
    };
    match tier {
        Tier::Kv => {
            let kv = app
                .env
                .kv(JOB_CACHE)
                .map_err(|e| storage_error("opening KV", e))?;
            kv.put(&location, json)
                .map_err(|e| storage_error("writing KV", e))?
                .expiration_ttl(KV_TTL_SECONDS)
                .execute()
                .await
                .map_err(|e| storage_error("writing KV", e))?;
        }
        Tier::R2 => {
            let bucket = app
                .env
                .bucket(STRUCTURE_STORAGE)
                .map_err(|e| storage_error("opening R2", e))?;
            let metadata = worker::HttpMetadata {
                content_type: Some("application/json".into()),
                ..Default::default()
            };
            bucket
                .put(&location, json.as_bytes().to_vec())
                .http_metadata(metadata)
                .execute()
                .await
                .map_err(|e| storage_error("writing R2", e))?;
        }
        Tier::Inline => {}
    }
    Ok(Some(location))
}

/// Read a stored structure back; `None` when it is gone (KV entries expire).
pub async fn load(app: &App, tier: Tier, location: &str) -> AppResult<Option<Value>> {
    let text = match tier {
        Tier::Kv => {
            let kv = app
                .env
                .kv(JOB_CACHE)
                .map_err(|e| storage_error("opening KV", e))?;
            kv.get(location)
                .text()
                .await
                .map_err(|e| storage_error("reading KV", e))?
        }
        Tier::R2 => {
            let bucket = app
                .env
                .bucket(STRUCTURE_STORAGE)
                .map_err(|e| storage_error("opening R2", e))?;
            match bucket
                .get(location)
                .execute()
                .await
                .map_err(|e| storage_error("reading R2", e))?
            {
                Some(object) => match object.body() {
                    Some(body) => Some(
                        body.text()
                            .await
                            .map_err(|e| storage_error("reading R2", e))?,
                    ),
                    None => None,
                },
                None => None,
            }
        }
        Tier::Inline => None,
    };
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| storage_error("decoding a stored structure", e))
    })
    .transpose()
}

/// `/health`'s KV probe: a read of a key that need not exist (never a write).
pub async fn kv_reachable(app: &App, timeout_ms: u64) -> Result<(), String> {
    let kv = app
        .env
        .kv(JOB_CACHE)
        .map_err(|_| "binding missing".to_string())?;
    crate::services::timing::with_timeout(timeout_ms, kv.get("health:probe").text())
        .await
        .ok_or("timed out")?
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `/health`'s R2 probe: a HEAD of an object that need not exist.
pub async fn r2_reachable(app: &App, timeout_ms: u64) -> Result<(), String> {
    let bucket = app
        .env
        .bucket(STRUCTURE_STORAGE)
        .map_err(|_| "binding missing".to_string())?;
    crate::services::timing::with_timeout(timeout_ms, bucket.head("health/probe"))
        .await
        .ok_or("timed out")?
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_by_utf8_size() {
        assert_eq!(Tier::for_size(0), Tier::Inline);
        assert_eq!(Tier::for_size(INLINE_LIMIT - 1), Tier::Inline);
        assert_eq!(Tier::for_size(INLINE_LIMIT), Tier::Kv);
        assert_eq!(Tier::for_size(KV_LIMIT - 1), Tier::Kv);
        assert_eq!(Tier::for_size(KV_LIMIT), Tier::R2);
        assert_eq!(Tier::Kv.location(7).as_deref(), Some("structure:7"));
        assert_eq!(Tier::R2.location(7).as_deref(), Some("structures/7.json"));
        assert_eq!(Tier::parse("r2"), Some(Tier::R2));
    }
}
