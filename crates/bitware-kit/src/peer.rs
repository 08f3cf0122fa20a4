//! Another worker of the chain, asked through its service binding as a
//! worker (contracts §1.4): `Authorization: Bearer <SHARED_SECRET>`,
//! `X-Worker-ID`, the request's `X-Request-ID`, and `X-Client-ID` when the
//! call acts for a client (the peer then scopes what it answers to that
//! client's). The next worker of a chain reads the stage before it this way
//! (the Content Generator the granulator's stored outline), never from that
//! worker's KV or R2. What an answer means is the caller's to say; what
//! kept it from coming is a [`PeerFault`].

use crate::timing::with_timeout;
use worker::Env;

/// A peer worker behind a service binding (the URL's host is ignored by a
/// binding; `name` only makes the URL readable in logs).
pub struct Peer<'a> {
    pub env: &'a Env,
    pub binding: &'a str,
    pub name: &'a str,
    /// This worker's id (`X-Worker-ID`).
    pub worker_id: &'a str,
    pub shared_secret: Option<&'a str>,
    pub timeout_ms: u64,
}

/// The peer's answer: its status and body, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReply {
    pub status: u16,
    pub body: String,
}

/// Why no answer came. None of them carries the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerFault {
    /// `SHARED_SECRET` is not set: worker credentials cannot be sent.
    NoSecret,
    /// The service binding is missing.
    NoBinding,
    /// The fetch failed (the peer is not deployed, or threw).
    Unreachable,
    /// No answer within `timeout_ms`.
    Timeout,
}

impl PeerFault {
    /// A sentence for an operator (no secret, no peer internals).
    pub fn describe(self, peer: &str, timeout_ms: u64) -> String {
        match self {
            PeerFault::NoSecret => {
                format!("SHARED_SECRET is not configured, so {peer} cannot be asked as a worker")
            }
            PeerFault::NoBinding => format!("the service binding to {peer} is missing"),
            PeerFault::Unreachable => format!("{peer} could not be reached"),
            PeerFault::Timeout => format!("{peer} did not answer within {timeout_ms} ms"),
        }
    }
}

impl Peer<'_> {
    /// `GET path` as this worker, acting for `client_id` when given.
    pub async fn get(
        &self,
        path: &str,
        request_id: &str,
        client_id: Option<&str>,
    ) -> Result<PeerReply, PeerFault> {
        let secret = self
            .shared_secret
            .filter(|s| !s.is_empty())
            .ok_or(PeerFault::NoSecret)?;
        let fetcher = self
            .env
            .service(self.binding)
            .map_err(|_| PeerFault::NoBinding)?;
        let request = (|| -> worker::Result<worker::Request> {
            let headers = worker::Headers::new();
            headers.set("Authorization", &format!("Bearer {secret}"))?;
            headers.set("X-Worker-ID", self.worker_id)?;
            headers.set("X-Request-ID", request_id)?;
            if let Some(client) = client_id {
                headers.set("X-Client-ID", client)?;
            }
            let mut init = worker::RequestInit::new();
            init.with_method(worker::Method::Get).with_headers(headers);
            worker::Request::new_with_init(&format!("https://{}{path}", self.name), &init)
        })()
        .map_err(|_| PeerFault::Unreachable)?;
        let call = async {
            let mut response = fetcher.fetch_request(request).await?;
            let status = response.status_code();
            let body = response.text().await.unwrap_or_default();
            Ok::<_, worker::Error>(PeerReply { status, body })
        };
        match with_timeout(self.timeout_ms, call).await {
            None => Err(PeerFault::Timeout),
            Some(Err(_)) => Err(PeerFault::Unreachable),
            Some(Ok(reply)) => Ok(reply),
        }
    }

    /// `/health`: any answer below 500 to `GET /` (public, no credentials)
    /// within the timeout counts.
    pub async fn reachable(&self) -> Result<(), String> {
        let fetcher = self
            .env
            .service(self.binding)
            .map_err(|_| "binding missing".to_string())?;
        let url = format!("https://{}/", self.name);
        match with_timeout(self.timeout_ms, async {
            let request = crate::http::outbound_request(&url, None)?;
            fetcher.fetch_request(request).await
        })
        .await
        {
            None => Err(format!("no answer within {} ms", self.timeout_ms)),
            Some(Err(_)) => Err("unreachable".into()),
            Some(Ok(r)) if r.status_code() >= 500 => Err(format!("HTTP {}", r.status_code())),
            Some(Ok(_)) => Ok(()),
        }
    }
}
