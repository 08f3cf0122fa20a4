//! The route table a worker declares: the router, the 405 `Allow` header,
//! the access rule of every route, `/help` and `/openapi.json` all read one
//! list, so they cannot drift. The worker names its routes (`Id`, usually an
//! enum) and the kit matches them.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// No credentials.
    Public,
    /// A client API key, a dashboard session or worker credentials.
    Authenticated,
    /// Worker credentials or an admin session.
    Admin,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Authenticated => "authenticated",
            Access::Admin => "admin",
        }
    }
}

#[derive(Debug, PartialEq)]
pub struct Route<Id: 'static> {
    pub id: Id,
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    /// The documentation texts (empty in the wasm, see [`route!`](crate::route)).
    pub summary: &'static str,
    pub request: &'static str,
    pub response: &'static str,
}

/// One row of a route table:
/// `route!(RouteId::Health, "GET", "/health", Public, "summary", "request", "response")`.
/// The three texts feed the documents generated natively (`openapi`); in the
/// wasm they are empty, so the module does not carry them (issue 11).
#[macro_export]
macro_rules! route {
    ($id:path, $method:literal, $path:literal, $access:ident, $summary:literal, $request:literal, $response:literal) => {
        $crate::routes::Route {
            id: $id,
            method: $method,
            path: $path,
            access: $crate::routes::Access::$access,
            summary: $crate::route_text!($summary),
            request: $crate::route_text!($request),
            response: $crate::route_text!($response),
        }
    };
}

/// A route's documentation text: itself natively, "" in the wasm.
#[doc(hidden)]
#[macro_export]
macro_rules! route_text {
    ($text:literal) => {
        if cfg!(target_arch = "wasm32") {
            ""
        } else {
            $text
        }
    };
}

#[derive(Debug, PartialEq)]
pub enum Match<Id: 'static> {
    Found(&'static Route<Id>, Vec<(&'static str, String)>),
    MethodNotAllowed(Vec<&'static str>),
    /// A method the server does not know at all (501), whatever the path.
    NotImplemented,
    NotFound,
}

/// The methods the server recognises (RFC 9110 §9, PATCH and QUERY): any of
/// them on a known path that does not declare it is a 405 with `Allow`; any
/// other method is a 501. Method names are case-sensitive (RFC 9110 §9.1).
pub const RECOGNISED_METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY",
];

/// Match a request against `routes`; `{name}` segments capture one
/// non-empty path segment, and a trailing `/` is ignored. `method` is the
/// method as sent (not workers-rs' `Method`, which reads every method it
/// does not know as GET).
pub fn match_route<Id>(routes: &'static [Route<Id>], method: &str, path: &str) -> Match<Id> {
    if !RECOGNISED_METHODS.contains(&method) {
        return Match::NotImplemented;
    }
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let mut allowed = Vec::new();
    for route in routes {
        if let Some(params) = match_path(route.path, path) {
            if route.method == method {
                return Match::Found(route, params);
            }
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        Match::NotFound
    } else {
        allowed.push("OPTIONS");
        Match::MethodNotAllowed(allowed)
    }
}

fn match_path(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut pattern_parts = pattern.split('/');
    let mut path_parts = path.split('/');
    let mut params = Vec::new();
    loop {
        match (pattern_parts.next(), path_parts.next()) {
            (None, None) => return Some(params),
            (Some(p), Some(s)) if p.starts_with('{') && p.ends_with('}') && !s.is_empty() => {
                params.push((&p[1..p.len() - 1], s.to_string()));
            }
            (Some(p), Some(s)) if p == s => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Id {
        Root,
        Item,
        Create,
    }

    static TABLE: &[Route<Id>] = &[
        route!(Id::Root, "GET", "/", Public, "root", "-", "-"),
        route!(
            Id::Item,
            "GET",
            "/api/items/{id}",
            Authenticated,
            "one",
            "-",
            "-"
        ),
        route!(Id::Create, "POST", "/api/items", Admin, "create", "-", "-"),
    ];

    #[test]
    fn parameters_are_captured_and_a_trailing_slash_is_ignored() {
        let Match::Found(r, params) = match_route(TABLE, "GET", "/api/items/7/") else {
            panic!()
        };
        assert_eq!((&r.id, r.access), (&Id::Item, Access::Authenticated));
        assert_eq!(params, vec![("id", "7".to_string())]);
        assert!(matches!(match_route(TABLE, "GET", "/"), Match::Found(r, _) if r.id == Id::Root));
    }

    #[test]
    fn a_known_path_with_another_method_is_405_with_the_allowed_ones() {
        assert_eq!(
            match_route(TABLE, "GET", "/api/items"),
            Match::MethodNotAllowed(vec!["POST", "OPTIONS"])
        );
        assert_eq!(
            match_route(TABLE, "GET", "/api/items//"),
            Match::MethodNotAllowed(vec!["POST", "OPTIONS"])
        );
        assert_eq!(match_route(TABLE, "GET", "/api/items/7/x"), Match::NotFound);
        assert_eq!(Access::Admin.as_str(), "admin");
    }

    #[test]
    fn a_recognised_method_no_route_declares_is_405_and_an_unknown_one_501() {
        for method in ["QUERY", "HEAD", "PATCH", "TRACE", "PUT"] {
            assert_eq!(
                match_route(TABLE, method, "/"),
                Match::MethodNotAllowed(vec!["GET", "OPTIONS"]),
                "{method}"
            );
        }
        for method in ["FOO", "get", "Query", ""] {
            assert_eq!(
                match_route(TABLE, method, "/"),
                Match::NotImplemented,
                "{method}"
            );
            assert_eq!(
                match_route(TABLE, method, "/nope"),
                Match::NotImplemented,
                "{method}"
            );
        }
    }
}
