//! Authentication through the Key Account Manager service binding (contracts §1).
//! The worker says who it is and where its bindings are in a [`Kam`].
//!
//! Worker credentials are checked here against `SHARED_SECRET` in constant
//! time. API keys and sessions are asked of KAM with a capped timeout; a
//! positive answer is cached for 60 s in KV under a hash of the credential,
//! a negative one never. KAM down, slow or talking garbage → 503, never a pass.

use crate::auth::{secret_matches, Credentials, Principal};
use crate::error::{AppError, AppResult};
use crate::http::outbound_request;
use crate::kam_answer::{
    credential_hash, read_key_validation, read_session_validation, KamVerdict,
};
use crate::timing::with_timeout;
use serde_json::json;
use worker::{Env, Headers};

/// The service binding every worker of the system binds KAM under.
pub const KEY_ACCOUNT_MANAGER: &str = "KEY_ACCOUNT_MANAGER";
const CACHE_TTL_SECONDS: u64 = 60;

/// One worker's view of KAM: who it is, its shared secret, where it caches.
pub struct Kam<'a> {
    pub env: &'a Env,
    /// Sent as `X-Worker-ID` (e.g. `bitware-content-granulator`).
    pub worker_id: &'a str,
    /// `SHARED_SECRET`: checks worker credentials and authenticates to KAM.
    pub shared_secret: Option<&'a str>,
    /// The KV binding positive answers are cached in for 60 s.
    pub cache_kv: &'a str,
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
    if let Some(kv) = &cache {
        if let Ok(Some(principal)) = kv.get(&cache_key).json::<Principal>().await {
            return Ok(Some(principal));
        }
    }
    match ask_kam(kam, kind, &credential).await {
        KamVerdict::Valid(principal) => {
            if let Some(kv) = &cache {
                // Best effort: a failed cache write only costs the next request a KAM call.
                if let Ok(put) = kv.put(&cache_key, &principal) {
                    let _ = put.expiration_ttl(CACHE_TTL_SECONDS).execute().await;
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
