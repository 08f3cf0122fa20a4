//! Three-tier authentication (seed §3, contracts §1), the pure part: which
//! credential a request carries and who may do what. What KAM's answers
//! mean is `kam_answer`; the calls to KAM live in `kam` (`worker` feature).

use crate::error::{AppError, AppResult};
use crate::routes::Access;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const MAX_CREDENTIAL_LEN: usize = 512;

/// A credential a request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Worker {
        token: String,
        worker_id: String,
        acting_for: Option<String>,
    },
    Session(String),
    ApiKey(String),
    None,
}

/// The precedence of the credential headers, highest first: worker
/// credentials (`Authorization` with `X-Worker-ID`), a dashboard session
/// (`x-bitware-session-token`), a client API key (`X-API-Key`).
pub const CREDENTIAL_HEADERS: [&str; 3] = ["Authorization", "x-bitware-session-token", "X-API-Key"];

impl Credentials {
    /// Every credential a request presents, highest precedence first, each
    /// with the header that carries it (a blank one is refused). The
    /// rule (the front door applies it): **every** credential presented must
    /// be valid, else the request is a 401 naming the header that failed;
    /// when all are valid the request acts as the first one. A wrong key
    /// beside a valid session is therefore refused, not ignored.
    pub fn presented(
        header: impl Fn(&str) -> Option<String>,
    ) -> AppResult<Vec<(&'static str, Credentials)>> {
        let get = |name: &str| {
            header(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        for name in [
            "authorization",
            "x-bitware-session-token",
            "x-api-key",
            "x-worker-id",
            "x-client-id",
        ] {
            if get(name).is_some_and(|v| v.len() > MAX_CREDENTIAL_LEN) {
                return Err(refused(name, format!("{name} is too long")));
            }
        }
        // A credential header sent blank is a credential that fails, not
        // one left out.
        for name in CREDENTIAL_HEADERS {
            if header(&name.to_ascii_lowercase()).is_some_and(|v| v.trim().is_empty()) {
                return Err(refused(name, format!("{name} is empty")));
            }
        }
        let mut presented = Vec::new();
        if let Some(auth) = get("authorization") {
            let token = bearer_token(&auth);
            let worker = match (token, get("x-worker-id")) {
                (Some(token), Some(worker_id)) => Credentials::Worker {
                    token: token.to_string(),
                    worker_id,
                    acting_for: get("x-client-id"),
                },
                (None, _) => {
                    return Err(refused(
                        "Authorization",
                        "Authorization must be `Bearer <shared secret>`",
                    ))
                }
                (Some(_), None) => {
                    return Err(refused(
                        "X-Worker-ID",
                        "worker authentication needs X-Worker-ID with Authorization",
                    ))
                }
            };
            presented.push((CREDENTIAL_HEADERS[0], worker));
        }
        if let Some(token) = get("x-bitware-session-token") {
            presented.push((CREDENTIAL_HEADERS[1], Credentials::Session(token)));
        }
        if let Some(key) = get("x-api-key") {
            presented.push((CREDENTIAL_HEADERS[2], Credentials::ApiKey(key)));
        }
        Ok(presented)
    }

    /// The credential a request acts as: the first of [`Credentials::presented`].
    pub fn from_headers(header: impl Fn(&str) -> Option<String>) -> AppResult<Credentials> {
        Ok(Credentials::presented(header)?
            .into_iter()
            .next()
            .map_or(Credentials::None, |(_, c)| c))
    }
}

/// A 401 naming the credential header that failed (`details.header`).
fn refused(header: &str, message: impl Into<String>) -> AppError {
    AppError::unauthorized(message).with_details(serde_json::json!({"header": header}))
}

/// A credential's validation failed: a 401 becomes one naming its header;
/// any other failure (KAM unavailable: 503) stays as it is.
pub fn credential_failed(header: &str, error: AppError) -> AppError {
    if error.kind == crate::error::Kind::Unauthorized {
        refused(header, format!("{header}: {}", error.message))
    } else {
        error
    }
}

/// The token of an `Authorization: Bearer <token>` header. The scheme name
/// is case-insensitive (RFC 7235 §2.1), so `bearer x` is `Bearer x`.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    Worker {
        worker_id: String,
        acting_for: Option<String>,
    },
    Session {
        user_id: String,
        email: String,
        role: String,
        client_id: Option<String>,
    },
    Client {
        client_id: String,
        tier: String,
    },
}

/// Whose data a job belongs to. Clients, users with no client and workers
/// acting on their own are separate namespaces: a user id can never name a
/// client's data, whatever the two ids look like (contracts §1.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tenant {
    Client(String),
    User(String),
    Worker(String),
}

const USER_PREFIX: &str = "user:";
const WORKER_PREFIX: &str = "worker:";
const CLIENT_PREFIX: &str = "client:";

impl Tenant {
    /// The key stored in `client_id` columns. Client ids are stored as they
    /// are (existing rows keep their meaning) unless they start with one of
    /// the reserved prefixes, which are escaped with `client:`: the mapping
    /// is injective, and no client key starts with `user:` or `worker:`.
    pub fn key(&self) -> String {
        match self {
            Tenant::Client(id)
                if [USER_PREFIX, WORKER_PREFIX, CLIENT_PREFIX]
                    .iter()
                    .any(|p| id.starts_with(p)) =>
            {
                format!("{CLIENT_PREFIX}{id}")
            }
            Tenant::Client(id) => id.clone(),
            Tenant::User(id) => format!("{USER_PREFIX}{id}"),
            Tenant::Worker(id) => format!("{WORKER_PREFIX}{id}"),
        }
    }
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        match self {
            Principal::Worker { .. } => true,
            Principal::Session { role, .. } => role == "admin",
            Principal::Client { .. } => false,
        }
    }

    /// The one place that decides the tenant a caller acts as: its jobs are
    /// recorded under it, and (unless it is an administrator) it reads only it.
    pub fn tenant(&self) -> Tenant {
        match self {
            Principal::Worker {
                acting_for: Some(client),
                ..
            } => Tenant::Client(client.clone()),
            Principal::Worker { worker_id, .. } => Tenant::Worker(worker_id.clone()),
            Principal::Session {
                client_id: Some(client),
                ..
            } => Tenant::Client(client.clone()),
            Principal::Session { user_id, .. } => Tenant::User(user_id.clone()),
            Principal::Client { client_id, .. } => Tenant::Client(client_id.clone()),
        }
    }

    /// The tenant whose data this caller sees; `None` means every tenant
    /// (administrators, and workers not acting for a client).
    pub fn scope(&self) -> Option<String> {
        match self {
            Principal::Worker {
                acting_for: None, ..
            } => None,
            Principal::Session { role, .. } if role == "admin" => None,
            _ => Some(self.tenant().key()),
        }
    }

    /// The tenant key a job is recorded under.
    pub fn client_id(&self) -> String {
        self.tenant().key()
    }

    /// KAM's tier for API keys; sessions and workers carry none and get
    /// the configured default (`DEFAULT_TIER`).
    pub fn kam_tier(&self) -> Option<&str> {
        match self {
            Principal::Client { tier, .. } => Some(tier),
            _ => None,
        }
    }

    pub fn tier_name(&self) -> &'static str {
        match self {
            Principal::Worker { .. } => "worker",
            Principal::Session { .. } => "session",
            Principal::Client { .. } => "client",
        }
    }
}

/// The one place that decides who may use a route.
pub fn authorize(access: Access, principal: Option<&Principal>) -> AppResult<()> {
    match (access, principal) {
        (Access::Public, _) => Ok(()),
        (_, None) => Err(AppError::unauthorized(
            "authentication required: X-API-Key, x-bitware-session-token, or worker credentials",
        )),
        (Access::Authenticated, Some(_)) => Ok(()),
        (Access::Admin, Some(p)) if p.is_admin() => Ok(()),
        (Access::Admin, Some(_)) => Err(AppError::forbidden(
            "this route needs worker credentials or an admin session",
        )),
    }
}

/// Constant-time comparison of a presented secret with the configured one.
/// Both are hashed first so neither length nor content leaks through timing.
pub fn secret_matches(presented: &str, expected: Option<&str>) -> bool {
    let Some(expected) = expected.filter(|e| !e.is_empty()) else {
        return false;
    };
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn creds(pairs: &[(&str, &str)]) -> AppResult<Credentials> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Credentials::from_headers(|name| map.get(name).cloned())
    }

    #[test]
    fn worker_credentials_win_and_need_a_worker_id() {
        let c = creds(&[
            ("authorization", "Bearer s3cret"),
            ("x-worker-id", "rm"),
            ("x-api-key", "k"),
            ("x-client-id", "acme"),
        ])
        .unwrap();
        assert_eq!(
            c,
            Credentials::Worker {
                token: "s3cret".into(),
                worker_id: "rm".into(),
                acting_for: Some("acme".into())
            }
        );
        assert_eq!(
            creds(&[("authorization", "Bearer s3cret")])
                .unwrap_err()
                .status(),
            401
        );
        assert_eq!(
            creds(&[("authorization", "Basic x"), ("x-worker-id", "rm")])
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn every_credential_presented_is_listed_in_precedence_order() {
        let map: HashMap<String, String> = [
            ("x-api-key", "k"),
            ("x-bitware-session-token", "t"),
            ("authorization", "Bearer s"),
            ("x-worker-id", "rm"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let all = Credentials::presented(|name| map.get(name).cloned()).unwrap();
        let headers: Vec<&str> = all.iter().map(|(h, _)| *h).collect();
        assert_eq!(headers, CREDENTIAL_HEADERS);
        assert_eq!(all[1].1, Credentials::Session("t".into()));
        assert_eq!(all[2].1, Credentials::ApiKey("k".into()));
        let none = Credentials::presented(|_| None).unwrap();
        assert!(none.is_empty());
        // A malformed worker credential is refused whatever else is sent.
        let e = creds(&[("authorization", "Basic x"), ("x-api-key", "k")]).unwrap_err();
        assert_eq!(e.details.unwrap()["header"], "Authorization");
    }

    #[test]
    fn a_failed_credential_names_its_header_and_an_outage_stays_an_outage() {
        let e = credential_failed(
            "X-API-Key",
            AppError::unauthorized("invalid credentials: revoked"),
        );
        assert_eq!(e.status(), 401);
        assert_eq!(e.message, "X-API-Key: invalid credentials: revoked");
        assert_eq!(e.details.unwrap()["header"], "X-API-Key");
        let outage = AppError::unavailable("kam_unavailable", "down");
        assert_eq!(credential_failed("X-API-Key", outage.clone()), outage);
    }

    #[test]
    fn session_before_api_key_and_blank_credentials_refused() {
        assert_eq!(
            creds(&[("x-bitware-session-token", "t"), ("x-api-key", "k")]).unwrap(),
            Credentials::Session("t".into())
        );
        assert_eq!(
            creds(&[("x-api-key", " k ")]).unwrap(),
            Credentials::ApiKey("k".into())
        );
        for header in ["x-api-key", "x-bitware-session-token", "authorization"] {
            let e = creds(&[(header, "  "), ("x-worker-id", "rm")]).unwrap_err();
            assert_eq!(e.status(), 401, "{header}");
        }
        // 512 characters is the longest credential accepted.
        let longest = "k".repeat(MAX_CREDENTIAL_LEN);
        assert_eq!(
            creds(&[("x-api-key", &longest)]).unwrap(),
            Credentials::ApiKey(longest.clone())
        );
        assert_eq!(
            creds(&[("x-api-key", &"k".repeat(600))])
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn secrets_compare_exactly_and_an_unset_secret_refuses_everyone() {
        assert!(secret_matches(
            "dev-shared-secret",
            Some("dev-shared-secret")
        ));
        assert!(!secret_matches(
            "dev-shared-secre",
            Some("dev-shared-secret")
        ));
        assert!(!secret_matches("", None));
        assert!(!secret_matches("", Some("")));
    }

    #[test]
    fn authorisation_table() {
        let client = Principal::Client {
            client_id: "c".into(),
            tier: "basic".into(),
        };
        let admin = Principal::Session {
            user_id: "u".into(),
            email: String::new(),
            role: "admin".into(),
            client_id: None,
        };
        let worker = Principal::Worker {
            worker_id: "rm".into(),
            acting_for: None,
        };
        assert!(authorize(Access::Public, None).is_ok());
        assert_eq!(
            authorize(Access::Authenticated, None).unwrap_err().status(),
            401
        );
        assert!(authorize(Access::Authenticated, Some(&client)).is_ok());
        assert_eq!(
            authorize(Access::Admin, Some(&client))
                .unwrap_err()
                .status(),
            403
        );
        assert!(authorize(Access::Admin, Some(&admin)).is_ok());
        assert!(authorize(Access::Admin, Some(&worker)).is_ok());
    }

    #[test]
    fn scopes_and_client_ids() {
        let user = Principal::Session {
            user_id: "u1".into(),
            email: String::new(),
            role: "client".into(),
            client_id: Some("dev-client".into()),
        };
        assert_eq!(user.scope().as_deref(), Some("dev-client"));
        assert_eq!(
            Principal::Worker {
                worker_id: "rm".into(),
                acting_for: Some("acme".into())
            }
            .client_id(),
            "acme"
        );
        assert_eq!(
            Principal::Worker {
                worker_id: "rm".into(),
                acting_for: None
            }
            .scope(),
            None
        );
        assert_eq!(
            Principal::Worker {
                worker_id: "rm".into(),
                acting_for: Some("acme".into())
            }
            .scope()
            .as_deref(),
            Some("acme")
        );
    }

    fn session(user_id: &str, role: &str, client_id: Option<&str>) -> Principal {
        Principal::Session {
            user_id: user_id.into(),
            email: String::new(),
            role: role.into(),
            client_id: client_id.map(str::to_string),
        }
    }

    #[test]
    fn a_session_without_a_client_reads_and_records_under_one_user_tenant() {
        // The deployed KAM sends no client id for dashboard users (contracts §1.2).
        let user = session("dev-client", "client", None);
        assert_eq!(user.client_id(), "user:dev-client");
        assert_eq!(user.scope().as_deref(), Some("user:dev-client"));
        let client = Principal::Client {
            client_id: "dev-client".into(),
            tier: "standard".into(),
        };
        assert_eq!(client.client_id(), "dev-client");
        assert_eq!(client.scope().as_deref(), Some("dev-client"));
        assert_ne!(user.scope(), client.scope());
        // Recording and reading agree for every kind of caller.
        for p in [
            user.clone(),
            client,
            session("u", "client", Some("acme")),
            Principal::Worker {
                worker_id: "rm".into(),
                acting_for: Some("acme".into()),
            },
        ] {
            assert_eq!(p.scope(), Some(p.client_id()), "{p:?}");
        }
        // Administrators read everything and record under their own tenant.
        let admin = session("u-admin", "admin", None);
        assert_eq!(admin.scope(), None);
        assert_eq!(admin.client_id(), "user:u-admin");
    }

    #[test]
    fn no_client_id_can_impersonate_a_user_or_worker_tenant() {
        let keys: Vec<String> = [
            Tenant::Client("user:42".into()),
            Tenant::Client("worker:rm".into()),
            Tenant::Client("client:user:42".into()),
            Tenant::Client("42".into()),
            Tenant::User("42".into()),
            Tenant::Worker("rm".into()),
        ]
        .iter()
        .map(Tenant::key)
        .collect();
        let distinct: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
        assert_eq!(Tenant::Client("user:42".into()).key(), "client:user:42");
        assert_eq!(Tenant::Client("42".into()).key(), "42");
        assert_eq!(Tenant::User("42".into()).key(), "user:42");
        assert_eq!(Tenant::Worker("rm".into()).key(), "worker:rm");
    }

    #[test]
    fn tier_names_label_the_kind_of_caller() {
        let names: Vec<&str> = [
            Principal::Worker {
                worker_id: "rm".into(),
                acting_for: None,
            },
            session("u", "client", None),
            Principal::Client {
                client_id: "c".into(),
                tier: "basic".into(),
            },
        ]
        .iter()
        .map(Principal::tier_name)
        .collect();
        assert_eq!(names, ["worker", "session", "client"]);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret "] {
            assert_eq!(
                creds(&[("authorization", header), ("x-worker-id", "rm")]).unwrap(),
                Credentials::Worker {
                    token: "s3cret".into(),
                    worker_id: "rm".into(),
                    acting_for: None
                },
                "{header}"
            );
        }
        for header in ["Bearer", "Bearer   ", "Bearers3cret", "Basic s3cret"] {
            assert_eq!(
                creds(&[("authorization", header), ("x-worker-id", "rm")])
                    .unwrap_err()
                    .status(),
                401,
                "{header}"
            );
        }
    }
}
