//! Standard HTTP responses (seed §5.1): JSON bodies, CORS, request ids, and
//! reading a JSON body within limits. The rules are pure; the response
//! builders and body reading use `worker` types (`worker` feature).

use crate::error::{AppError, AppResult, Kind};
use serde_json::Value;
#[cfg(feature = "worker")]
use worker::{Request, Response};

pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const CORS_ALLOW_ORIGIN: &str = "*";
pub const CORS_ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
pub const CORS_ALLOW_HEADERS: &str =
    "Content-Type, X-API-Key, Authorization, X-Worker-ID, X-Client-ID, X-Request-ID, x-bitware-session-token, Prefer";
pub const CORS_EXPOSE_HEADERS: &str =
    "X-Request-ID, Idempotent-Replay, X-D1-Round-Trips, Location, Preference-Applied";

/// Extra response headers a handler may add.
pub type Headers = Vec<(&'static str, String)>;

/// A handler's JSON answer: status, body, extra headers.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Headers,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            body,
            headers: Headers::new(),
        }
    }

    /// A typed answer as its JSON body.
    pub fn json<T: serde::Serialize>(body: &T) -> AppResult<Reply> {
        serde_json::to_value(body)
            .map(Reply::ok)
            .map_err(|e| AppError::internal(format!("shaping a reply: {e}")))
    }

    #[must_use]
    pub fn status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }

    #[must_use]
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

#[cfg(feature = "worker")]
pub fn json_response(
    status: u16,
    body: &Value,
    request_id: &str,
    extra: &Headers,
) -> worker::Result<Response> {
    let mut response = Response::from_json(body)?.with_status(status);
    let headers = response.headers_mut();
    headers.set("Content-Type", "application/json")?;
    set_common(headers, request_id)?;
    for (name, value) in extra {
        headers.set(name, value)?;
    }
    Ok(response)
}

/// A JSON body that is already text (the embedded OpenAPI document): sent as
/// it is, with the headers of every answer.
#[cfg(feature = "worker")]
pub fn json_text_response(body: String, request_id: &str) -> worker::Result<Response> {
    let mut response = Response::ok(body)?;
    let headers = response.headers_mut();
    headers.set("Content-Type", "application/json")?;
    set_common(headers, request_id)?;
    Ok(response)
}

/// A Server-Sent Events stream (`text/event-stream`), never cached or buffered.
#[cfg(feature = "worker")]
pub fn event_stream_response<S>(stream: S, request_id: &str) -> worker::Result<Response>
where
    S: futures_util::TryStream + 'static,
    S::Ok: Into<Vec<u8>>,
    S::Error: Into<worker::Error>,
{
    let mut response = Response::from_stream(stream)?;
    let headers = response.headers_mut();
    headers.set("Content-Type", "text/event-stream; charset=utf-8")?;
    set_common(headers, request_id)?;
    headers.set("Cache-Control", "no-cache, no-store")?;
    headers.set("X-Accel-Buffering", "no")?;
    Ok(response)
}

#[cfg(feature = "worker")]
pub fn error_response(error: &AppError, request_id: &str) -> worker::Result<Response> {
    json_response(
        error.status(),
        &error.body(),
        request_id,
        &error_headers(error),
    )
}

/// The headers an error answer carries: `Allow` on a 405, `Retry-After` on a
/// 503 or when the error says when to retry.
pub fn error_headers(error: &AppError) -> Headers {
    let mut extra = Headers::new();
    if error.kind == Kind::MethodNotAllowed {
        if let Some(allow) = error.details.as_ref().and_then(|d| d["allow"].as_array()) {
            let methods: Vec<&str> = allow.iter().filter_map(Value::as_str).collect();
            extra.push(("Allow", methods.join(", ")));
        }
    }
    if error.kind == Kind::Unavailable {
        extra.push(("Retry-After", "5".into()));
    }
    if let Some(seconds) = error
        .details
        .as_ref()
        .and_then(|d| d["retryAfterSeconds"].as_u64())
    {
        extra.push(("Retry-After", seconds.to_string()));
    }
    extra
}

#[cfg(feature = "worker")]
pub fn preflight(request_id: &str) -> worker::Result<Response> {
    let mut response = Response::empty()?.with_status(204);
    let headers = response.headers_mut();
    set_common(headers, request_id)?;
    headers.set("Access-Control-Max-Age", "86400")?;
    Ok(response)
}

#[cfg(feature = "worker")]
pub(crate) fn set_common(headers: &mut worker::Headers, request_id: &str) -> worker::Result<()> {
    headers.set("Access-Control-Allow-Origin", CORS_ALLOW_ORIGIN)?;
    headers.set("Access-Control-Allow-Methods", CORS_ALLOW_METHODS)?;
    headers.set("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS)?;
    headers.set("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS)?;
    headers.set("X-Request-ID", request_id)?;
    headers.set("Cache-Control", "no-store")
}

/// The host and the decoded query pairs of a request URL as the runtime
/// serialises it (WHATWG: scheme, `://`, host already lowercased and
/// IDNA-encoded). Read without a URL parser: `worker::Request::url` parses
/// with the `url` crate, whose IDNA tables were ~85 KB of the wasm, and the
/// runtime has already validated the URL. Query pairs decode as
/// `application/x-www-form-urlencoded`, as `Url::query_pairs` did.
pub fn url_parts(url: &str) -> (String, Vec<(String, String)>) {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.find(']').map_or(host_port, |i| &host_port[..=i])
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let rest = &after_scheme[authority_end..];
    let rest = rest.split('#').next().unwrap_or("");
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let pairs = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (host.to_string(), pairs)
}

/// An outbound request built on the runtime's own `RequestInit`:
/// `worker::RequestInit` converts itself to JS through serde (its `cf` image
/// and cache options), code this worker never needs in its wasm.
#[cfg(feature = "worker")]
pub fn outbound_request(
    url: &str,
    post: Option<(&worker::Headers, &str)>,
) -> worker::Result<Request> {
    let init = worker::web_sys::RequestInit::new();
    if let Some((headers, body)) = post {
        init.set_method("POST");
        init.set_headers(&headers.0);
        init.set_body(&worker::wasm_bindgen::JsValue::from_str(body));
    }
    let request = worker::web_sys::Request::new_with_str_and_init(url, &init)?;
    Ok(Request::from(request))
}

/// The caller's request id when it is printable and short, else a new uuid.
#[cfg(feature = "worker")]
pub fn request_id(req: &Request) -> String {
    request_id_from(req.headers().get("X-Request-ID").ok().flatten())
}

/// `X-Request-ID` as sent when it is printable and at most 128 characters, else a new uuid.
pub fn request_id_from(header: Option<String>) -> String {
    header
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Read a JSON body: 415 unless `application/json`, 413 over the limit,
/// 400 when it does not parse.
#[cfg(feature = "worker")]
pub async fn read_json(req: &mut Request) -> AppResult<Value> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let declared = header("Content-Length").and_then(|l| l.parse::<usize>().ok());
    check_json_headers(&header("Content-Type").unwrap_or_default(), declared)?;
    let bytes = req
        .bytes()
        .await
        .map_err(|_| AppError::bad_request("unreadable_body", "the body could not be read"))?;
    parse_json_body(&bytes)
}

fn too_large() -> AppError {
    AppError::new(
        Kind::PayloadTooLarge,
        "payload_too_large",
        format!("the body must be at most {MAX_BODY_BYTES} bytes"),
    )
}

/// Before the body is read: 415 unless `application/json`, 413 when the
/// declared length is over the limit.
pub fn check_json_headers(content_type: &str, declared: Option<usize>) -> AppResult<()> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" {
        return Err(AppError::new(
            Kind::UnsupportedMediaType,
            "unsupported_media_type",
            "Content-Type must be application/json",
        ));
    }
    if declared.is_some_and(|l| l > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    Ok(())
}

/// The body read: 413 over the limit, 400 when empty, not JSON, or holding NUL.
pub fn parse_json_body(bytes: &[u8]) -> AppResult<Value> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::bad_request(
            "empty_body",
            "the body is empty; send a JSON object",
        ));
    }
    let body: Value = serde_json::from_slice(bytes).map_err(|e| {
        AppError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    if let Some(path) = find_nul(&body, "body") {
        return Err(AppError::bad_request(
            "invalid_text",
            format!("{path}: text must not contain NUL (U+0000)"),
        )
        .with_details(serde_json::json!({"field": path})));
    }
    Ok(body)
}

/// The path of the first string (value or key) holding a NUL character. No
/// text with NUL reaches D1: SQLite's `length()` stops at it, so a CHECK
/// would fail and the client would see a database outage instead of a 400.
pub fn find_nul(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(path.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_nul(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = format!("{path}.{k}");
            if k.contains('\0') {
                Some(here)
            } else {
                find_nul(v, &here)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod nul_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_are_json_objects_within_the_limit() {
        assert_eq!(
            check_json_headers("text/plain", None).unwrap_err().status(),
            415
        );
        assert!(check_json_headers("Application/JSON; charset=utf-8", Some(10)).is_ok());
        assert_eq!(
            check_json_headers("application/json", Some(MAX_BODY_BYTES + 1))
                .unwrap_err()
                .status(),
            413
        );
        assert_eq!(parse_json_body(b"  ").unwrap_err().code, "empty_body");
        assert_eq!(parse_json_body(b"{").unwrap_err().code, "malformed_json");
        assert_eq!(
            parse_json_body(br#"{"a":"\u0000"}"#).unwrap_err().code,
            "invalid_text"
        );
        assert_eq!(parse_json_body(br#"{"a":1}"#).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn request_ids_are_kept_when_printable_and_short() {
        assert_eq!(request_id_from(Some(" abc-1 ".into())), "abc-1");
        assert_eq!(request_id_from(Some("a b".into())).len(), 36);
        assert_eq!(request_id_from(Some("x".repeat(129))).len(), 36);
        assert_eq!(request_id_from(None).len(), 36);
    }

    #[test]
    fn errors_carry_allow_and_retry_after() {
        let e = AppError::new(Kind::MethodNotAllowed, "method_not_allowed", "no")
            .with_details(json!({"allow": ["GET", "OPTIONS"]}));
        assert_eq!(
            error_headers(&e),
            vec![("Allow", "GET, OPTIONS".to_string())]
        );
        let e = AppError::unavailable("kam_unavailable", "down");
        assert_eq!(error_headers(&e), vec![("Retry-After", "5".to_string())]);
    }

    #[test]
    fn nul_is_found_in_any_string_or_key_and_named_by_its_path() {
        assert_eq!(find_nul(&json!({"input": {"topic": "Rust"}}), "body"), None);
        assert_eq!(
            find_nul(&json!({"input": {"topic": "\u{0}Rust"}}), "body").as_deref(),
            Some("body.input.topic")
        );
        assert_eq!(
            find_nul(&json!({"a": [1, "ok", {"b": "x\u{0}"}]}), "body").as_deref(),
            Some("body.a[2].b")
        );
        assert_eq!(
            find_nul(&json!({"k\u{0}": 1}), "body").as_deref(),
            Some("body.k\u{0}")
        );
    }
}

#[cfg(test)]
mod url_tests {
    use super::url_parts;

    #[test]
    fn url_parts_read_the_host_and_decode_the_query() {
        let (host, query) = url_parts(
            "http://127.0.0.1:8787/api/jobs?status=failed&structure_type=knowledge_map&x=a+b%2Fc#frag",
        );
        assert_eq!(host, "127.0.0.1");
        assert_eq!(
            query,
            vec![
                ("status".to_string(), "failed".to_string()),
                ("structure_type".to_string(), "knowledge_map".to_string()),
                ("x".to_string(), "a b/c".to_string()),
            ]
        );
        assert_eq!(
            url_parts("https://user:pw@granulator.example.com/").0,
            "granulator.example.com"
        );
        assert_eq!(url_parts("http://[::1]:8787/health").0, "[::1]");
        assert_eq!(url_parts("https://example.com").1, vec![]);
        assert_eq!(
            url_parts("https://example.com/?a").1,
            vec![("a".to_string(), String::new())]
        );
    }
}
