//! Storage tiering of a worker's results (seed §6.1), by UTF-8 size:
//! under 25 KiB inline in the response and D1; under 128 KiB in KV
//! (`{kv_prefix}{id}`, 7-day TTL); larger in R2 (`{r2_prefix}{id}.json`).
//! Which bindings and key names is the worker's [`Shelf`].

use crate::error::AppError;
#[cfg(feature = "worker")]
use crate::error::AppResult;
use serde::Serialize;
#[cfg(feature = "worker")]
use serde_json::Value;
#[cfg(feature = "worker")]
use worker::Env;

pub const INLINE_LIMIT: usize = 25 * 1024;
pub const KV_LIMIT: usize = 128 * 1024;
pub const KV_TTL_SECONDS: u64 = 7 * 24 * 3600;
/// A worker's answer carries its result inline up to this size, whatever
/// tier stores it: the next worker of the chain reads the inline copy and
/// never another worker's KV or R2, and the Resource Manager keeps each
/// result in a D1 row (2 MB at most), so this stays well under that. A
/// larger result travels by reference only (its URL, or a binding of the
/// producer's KV namespace / R2 bucket: see the deploy docs).
pub const ANSWER_INLINE_LIMIT: usize = 512 * 1024;

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
}

/// Where a worker keeps results too large to inline: its KV and R2 bindings
/// and the key names under them.
#[derive(Debug, Clone, Copy)]
pub struct Shelf {
    pub kv_binding: &'static str,
    pub r2_binding: &'static str,
    /// KV key prefix, e.g. `structure:` → `structure:7`.
    pub kv_prefix: &'static str,
    /// R2 key prefix, e.g. `structures/` → `structures/7.json`.
    pub r2_prefix: &'static str,
}

impl Shelf {
    /// Where a result of `tier` is kept; `None` inline.
    pub fn location(&self, tier: Tier, id: i64) -> Option<String> {
        match tier {
            Tier::Inline => None,
            Tier::Kv => Some(format!("{}{id}", self.kv_prefix)),
            Tier::R2 => Some(format!("{}{id}.json", self.r2_prefix)),
        }
    }
}

#[cfg_attr(not(feature = "worker"), allow(dead_code))]
fn storage_error(what: &str, e: impl std::fmt::Display) -> AppError {
    crate::error::worker_log(&format!("storage error while {what}: {e}"));
    AppError::unavailable(
        "storage_unavailable",
        format!("structure storage is unavailable ({what})"),
    )
}

/// Write a result that is too large to inline. Inline needs no write.
#[cfg(feature = "worker")]
pub async fn store(
    env: &Env,
    shelf: &Shelf,
    tier: Tier,
    id: i64,
    json: &str,
) -> AppResult<Option<String>> {
    let Some(location) = shelf.location(tier, id) else {
        return Ok(None);
    };
    match tier {
        Tier::Kv => {
            let kv = env
                .kv(shelf.kv_binding)
                .map_err(|e| storage_error("opening KV", e))?;
            kv.put(&location, json)
                .map_err(|e| storage_error("writing KV", e))?
                .expiration_ttl(KV_TTL_SECONDS)
                .execute()
                .await
                .map_err(|e| storage_error("writing KV", e))?;
        }
        Tier::R2 => {
            let bucket = env
                .bucket(shelf.r2_binding)
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

/// Read a stored result back; `None` when it is gone (KV entries expire).
#[cfg(feature = "worker")]
pub async fn load(
    env: &Env,
    shelf: &Shelf,
    tier: Tier,
    location: &str,
) -> AppResult<Option<Value>> {
    let text = match tier {
        Tier::Kv => {
            let kv = env
                .kv(shelf.kv_binding)
                .map_err(|e| storage_error("opening KV", e))?;
            kv.get(location)
                .text()
                .await
                .map_err(|e| storage_error("reading KV", e))?
        }
        Tier::R2 => {
            let bucket = env
                .bucket(shelf.r2_binding)
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
#[cfg(feature = "worker")]
pub async fn kv_reachable(env: &Env, binding: &str, timeout_ms: u64) -> Result<(), String> {
    let kv = env.kv(binding).map_err(|_| "binding missing".to_string())?;
    crate::timing::with_timeout(timeout_ms, kv.get("health:probe").text())
        .await
        .ok_or("timed out")?
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `/health`'s R2 probe: a HEAD of an object that need not exist.
#[cfg(feature = "worker")]
pub async fn r2_reachable(env: &Env, binding: &str, timeout_ms: u64) -> Result<(), String> {
    let bucket = env
        .bucket(binding)
        .map_err(|_| "binding missing".to_string())?;
    crate::timing::with_timeout(timeout_ms, bucket.head("health/probe"))
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
        let shelf = Shelf {
            kv_binding: "JOB_CACHE",
            r2_binding: "STRUCTURE_STORAGE",
            kv_prefix: "structure:",
            r2_prefix: "structures/",
        };
        assert_eq!(shelf.location(Tier::Kv, 7).as_deref(), Some("structure:7"));
        assert_eq!(
            shelf.location(Tier::R2, 7).as_deref(),
            Some("structures/7.json")
        );
        assert_eq!(shelf.location(Tier::Inline, 7), None);
        assert_eq!(Tier::parse("r2"), Some(Tier::R2));
    }
}
