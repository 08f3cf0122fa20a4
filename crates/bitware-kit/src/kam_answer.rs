//! What the Key Account Manager's answers mean (contracts §1), and the cache
//! key a positive answer is kept under. The calls live in `kam`.

use crate::auth::Principal;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A cache key that identifies a credential without containing it.
pub fn credential_hash(kind: &str, credential: &str) -> String {
    let digest = Sha256::digest(format!("{kind}:{credential}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What KAM said.
#[derive(Debug, Clone, PartialEq)]
pub enum KamVerdict {
    Valid(Principal),
    Invalid(String),
    /// KAM failed (5xx, garbage): the caller gets 503, never a pass.
    Unavailable(String),
}

/// contracts §1.1: `{"valid": true, "clientId", "tier", "permissions"}`.
pub fn read_key_validation(status: u16, body: &str) -> KamVerdict {
    read(status, body, |v| {
        let client_id = v["clientId"].as_str().or(v["client_id"].as_str())?;
        Some(Principal::Client {
            client_id: client_id.to_string(),
            tier: v["tier"].as_str().unwrap_or("basic").to_string(),
        })
    })
}

/// contracts §1.2; the client id may be `clientId`, `client_id` or `kamContext.client_id`.
pub fn read_session_validation(status: u16, body: &str) -> KamVerdict {
    read(status, body, |v| {
        let user = &v["user"];
        let client_id = [
            &v["clientId"],
            &v["client_id"],
            &v["kamContext"]["client_id"],
        ]
        .into_iter()
        .find_map(|c| c.as_str().map(str::to_string));
        Some(Principal::Session {
            user_id: user["id"]
                .as_str()
                .map(str::to_string)
                .or_else(|| user["id"].as_i64().map(|i| i.to_string()))?,
            email: user["email"].as_str().unwrap_or("").to_string(),
            role: user["role"].as_str().unwrap_or("client").to_string(),
            client_id,
        })
    })
}

fn read(status: u16, body: &str, principal: impl Fn(&Value) -> Option<Principal>) -> KamVerdict {
    match status {
        200 => {
            let Ok(value) = serde_json::from_str::<Value>(body) else {
                return KamVerdict::Unavailable("KAM answered with a body that is not JSON".into());
            };
            if value["valid"] != true {
                return KamVerdict::Invalid(
                    value["error"]
                        .as_str()
                        .unwrap_or("invalid credentials")
                        .to_string(),
                );
            }
            match principal(&value) {
                Some(p) => KamVerdict::Valid(p),
                None => KamVerdict::Unavailable("KAM's answer lacks the client or user".into()),
            }
        }
        401 | 403 => KamVerdict::Invalid("invalid or expired credentials".into()),
        s => KamVerdict::Unavailable(format!("KAM answered HTTP {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kam_answers_are_read_liberally_and_failures_are_unavailable() {
        let ok =
            r#"{"valid": true, "clientId": "dev-client", "tier": "standard", "permissions": []}"#;
        assert!(
            matches!(read_key_validation(200, ok), KamVerdict::Valid(Principal::Client { ref client_id, .. }) if client_id == "dev-client")
        );
        assert!(matches!(
            read_key_validation(401, "{}"),
            KamVerdict::Invalid(_)
        ));
        assert!(matches!(
            read_key_validation(403, ""),
            KamVerdict::Invalid(_)
        ));
        assert!(matches!(
            read_key_validation(500, "{}"),
            KamVerdict::Unavailable(_)
        ));
        assert!(matches!(
            read_key_validation(200, "<html>"),
            KamVerdict::Unavailable(_)
        ));
        assert!(matches!(
            read_key_validation(200, r#"{"valid": true}"#),
            KamVerdict::Unavailable(_)
        ));
        let session = r#"{"valid": true, "user": {"id": 7, "email": "a@b", "role": "admin"}, "kamContext": {"client_id": "k"}}"#;
        match read_session_validation(200, session) {
            KamVerdict::Valid(Principal::Session {
                user_id,
                role,
                client_id,
                ..
            }) => {
                assert_eq!(
                    (user_id.as_str(), role.as_str(), client_id.as_deref()),
                    ("7", "admin", Some("k"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cache_keys_do_not_contain_the_credential() {
        let h = credential_hash("key", "dev-client-key");
        assert_eq!(h.len(), 64);
        assert!(!h.contains("dev-client-key"));
        assert_ne!(h, credential_hash("session", "dev-client-key"));
    }
}
