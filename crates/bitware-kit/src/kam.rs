//! Authentication through the Key Account Manager service binding (contracts §1).
//! The worker says who it is and where its bindings are in a [`Kam`].
//!
//! Worker credentials are checked here against `SHARED_SECRET` in constant
//! time. API keys and sessions are asked of KAM with a capped timeout; a
//! positive answer is cached in KV under a hash of the credential for the
//! worker's window (`cache_seconds`, 60 s by default; 0 turns the cache off),
//! a negative one never. The entry carries its own expiry, so a window under
//! KV's 60-s minimum TTL holds: a session ended at KAM stops working here
//! within the window. KAM down, slow or talking garbage → 503, never a pass.

use crate::auth::{secret_matches, Credentials, Principal};
use crate::error::{AppError, AppResult};
use crate::http::outbound_request;
use crate::kam_answer::{
    credential_hash, read_key_validation, read_session_validation, KamVerdict,
};
use crate::limits::Tier;
use crate::timing::with_timeout;
use serde_json::json;
use worker::{Env, Headers};

/// The service binding every worker of the system binds KAM under.
pub const KEY_ACCOUNT_MANAGER: &str = "KEY_ACCOUNT_MANAGER";
/// The positive-answer cache window unless a worker sets its own.
pub const DEFAULT_CACHE_SECONDS: u64 = 60;
/// KV's shortest TTL: an entry lives at least this long, and its own
/// `until` says when it stops counting.
const KV_MIN_TTL_SECONDS: u64 = 60;

/// A cached positive answer and when it stops counting (epoch ms).
#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    principal: Principal,
    until: u64,
}

/// One worker's view of KAM: who it is, its shared secret, where it caches.
pub struct Kam<'a> {
    pub env: &'a Env,
    /// Sent as `X-Worker-ID` (e.g. `bitware-content-granulator`).
    pub worker_id: &'a str,
    /// `SHARED_SECRET`: checks worker credentials and authenticates to KAM.
    pub shared_secret: Option<&'a str>,
    /// The KV binding positive answers are cached in.
    pub cache_kv: &'a str,
    /// How long a positive answer is trusted (0: always ask KAM).
    pub cache_seconds: u64,
    /// How long KAM may take (`KAM_TIMEOUT_MS`).
    pub timeout_ms: u64,
}

pub async fn authenticate(kam: &Kam<'_>, credentials: Credentials) -> AppResult<Option<Principal>> {
    let (kind, credential) = match credentials {
        Credentials::None => return Ok(None),
        Credentials::Worker {
            token,
            worker_id,
            acting_for,
        } => {
            return if secret_matches(&token, kam.shared_secret) {
                Ok(Some(Principal::Worker {
                    worker_id,
                    acting_for,
                }))
            } else {
                Err(AppError::unauthorized("invalid worker credentials"))
            };
        }
        Credentials::Session(token) => ("session", token),
        Credentials::ApiKey(key) => ("key", key),
    };
    let cache_key = format!("auth:{}", credential_hash(kind, &credential));
    let cache = kam.env.kv(kam.cache_kv).ok();
    let now = crate::timing::now_ms();
    if let (Some(kv), true) = (&cache, kam.cache_seconds > 0) {
        if let Ok(Some(hit)) = kv.get(&cache_key).json::<Cached>().await {
            if now < hit.until {
                return Ok(Some(hit.principal));
            }
        }
    }
    match ask_kam(kam, kind, &credential).await {
        KamVerdict::Valid(principal) => {
            remember_tier(cache.as_ref(), &principal).await;
            if let (Some(kv), true) = (&cache, kam.cache_seconds > 0) {
                let entry = Cached {
                    principal: principal.clone(),
                    until: now + kam.cache_seconds * 1_000,
                };
                // Best effort: a failed cache write only costs the next request a KAM call.
                if let Ok(put) = kv.put(&cache_key, &entry) {
                    let ttl = kam.cache_seconds.max(KV_MIN_TTL_SECONDS);
                    let _ = put.expiration_ttl(ttl).execute().await;
                }
            }
            Ok(Some(principal))
        }
        KamVerdict::Invalid(reason) => Err(AppError::unauthorized(format!(
            "invalid credentials: {reason}"
        ))),
        KamVerdict::Unavailable(reason) => {
            crate::error::worker_log(&format!("KAM unavailable: {reason}"));
            Err(AppError::unavailable(
                "kam_unavailable",
                format!("authentication service unavailable: {reason}"),
            ))
        }
    }
}

/// How long the tier KAM gave for a client's key is remembered: refreshed at
/// every KAM answer for that key, so a client that keeps using its key is
/// always known; a tier change at KAM shows at its key's next validation.
const TIER_MEMORY_SECONDS: u64 = 30 * 24 * 3600;

fn tier_key(tenant: &str) -> String {
    format!("tier:{tenant}")
}

/// Remember the tier of a client KAM just validated a key of (best effort:
/// the cache binding missing or failing only forgets it).
async fn remember_tier(cache: Option<&worker::kv::KvStore>, principal: &Principal) {
    let (Some(kv), Principal::Client { tier, .. }) = (cache, principal) else {
        return;
    };
    // As `Limits::tier_of` reads it: a tier KAM names but we do not know is basic.
    let tier = Tier::parse(tier).unwrap_or(Tier::Basic);
    if let Ok(put) = kv.put(&tier_key(&principal.client_id()), tier.as_str()) {
        let _ = put.expiration_ttl(TIER_MEMORY_SECONDS).execute().await;
    }
}

/// The tier KAM last gave for the key of the client stored as `tenant`, if
/// it is remembered.
pub async fn remembered_tier(kam: &Kam<'_>, tenant: &str) -> Option<Tier> {
    let kv = kam.env.kv(kam.cache_kv).ok()?;
    let tier = kv.get(&tier_key(tenant)).text().await.ok().flatten()?;
    Tier::parse(&tier)
}

async fn ask_kam(kam_config: &Kam<'_>, kind: &str, credential: &str) -> KamVerdict {
    let Some(secret) = kam_config.shared_secret.filter(|s| !s.is_empty()) else {
        return KamVerdict::Unavailable(
            "SHARED_SECRET is not configured, so KAM cannot be asked".into(),
        );
    };
    let Ok(kam) = kam_config.env.service(KEY_ACCOUNT_MANAGER) else {
        return KamVerdict::Unavailable("the KEY_ACCOUNT_MANAGER binding is missing".into());
    };
    let headers = Headers::new();
    let (path, body) = if kind == "session" {
        let _ = headers.set("x-bitware-session-token", credential);
        (
            "https://kam/auth/validate",
            json!({"sessionToken": credential}),
        )
    } else {
        (
            "https://kam/auth/validate-key",
            json!({"apiKey": credential}),
        )
    };
    let built = (|| -> worker::Result<worker::Request> {
        headers.set("Authorization", &format!("Bearer {secret}"))?;
        headers.set("X-Worker-ID", kam_config.worker_id)?;
        headers.set("Content-Type", "application/json")?;
        outbound_request(path, Some((&headers, &body.to_string())))
    })();
    let Ok(request) = built else {
        return KamVerdict::Unavailable("could not build the KAM request".into());
    };
    let call = async {
        let mut response = kam.fetch_request(request).await?;
        let status = response.status_code();
        let text = response.text().await.unwrap_or_default();
        Ok::<_, worker::Error>((status, text))
    };
    match with_timeout(kam_config.timeout_ms, call).await {
        None => KamVerdict::Unavailable(format!(
            "KAM did not answer within {} ms",
            kam_config.timeout_ms
        )),
        Some(Err(_)) => KamVerdict::Unavailable("KAM could not be reached".into()),
        Some(Ok((status, text))) if kind == "session" => read_session_validation(status, &text),
        Some(Ok((status, text))) => read_key_validation(status, &text),
    }
}

/// Reachability for /health: any answer below 500 counts; nothing is validated.
pub async fn reachable(kam_config: &Kam<'_>) -> Result<(), String> {
    let kam = kam_config
        .env
        .service(KEY_ACCOUNT_MANAGER)
        .map_err(|_| "binding missing".to_string())?;
    match with_timeout(kam_config.timeout_ms, async {
        let request = outbound_request("https://kam/health", None)?;
        kam.fetch_request(request).await
    })
    .await
    {
        None => Err(format!("no answer within {} ms", kam_config.timeout_ms)),
        Some(Err(_)) => Err("unreachable".into()),
        Some(Ok(r)) if r.status_code() >= 500 => Err(format!("HTTP {}", r.status_code())),
        Some(Ok(_)) => Ok(()),
    }
}
