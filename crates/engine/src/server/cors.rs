//! CORS for the polling transport, as the `cors` middleware Node's Socket.IO uses.

use http::header::{self, HeaderMap, HeaderValue};

/// Which origins may make cross-origin requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowOrigin {
    /// `Access-Control-Allow-Origin: *` (Node's `origin: "*"`). Browsers refuse it for
    /// requests with credentials.
    Any,
    /// Echo the request's `Origin`, whatever it is (Node's `origin: true`).
    Mirror,
    /// Echo the request's `Origin` when it is in the list (exact match, e.g.
    /// `https://app.example.com`), and send no CORS headers otherwise.
    List(Vec<String>),
}

/// CORS settings (Node's `cors` option). Only polling requests need them: browsers do not
/// apply CORS to WebSockets; check the `Origin` of those in an
/// [`AllowRequest`](crate::AllowRequest) hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cors {
    /// Allowed origins.
    pub origin: AllowOrigin,
    /// `Access-Control-Allow-Credentials: true` (cookies and auth headers). Default off.
    pub credentials: bool,
    /// Methods for preflight answers. Default `GET,HEAD,PUT,PATCH,POST,DELETE`, as the
    /// `cors` middleware.
    pub methods: String,
    /// `Access-Control-Allow-Headers` for preflight answers; `None` echoes the request's
    /// `Access-Control-Request-Headers`.
    pub allowed_headers: Option<String>,
    /// `Access-Control-Expose-Headers`, if any.
    pub exposed_headers: Option<String>,
    /// `Access-Control-Max-Age` in seconds for preflight answers, if any.
    pub max_age: Option<u32>,
}

impl Default for Cors {
    fn default() -> Self {
        Self {
            origin: AllowOrigin::List(Vec::new()),
            credentials: false,
            methods: "GET,HEAD,PUT,PATCH,POST,DELETE".into(),
            allowed_headers: None,
            exposed_headers: None,
            max_age: None,
        }
    }
}

impl Cors {
    /// CORS for any origin, echoed back, with credentials (`{origin: true, credentials: true}`).
    pub fn permissive() -> Self {
        Self {
            origin: AllowOrigin::Mirror,
            credentials: true,
            ..Self::default()
        }
    }

    /// CORS for these origins only.
    pub fn origins<I: IntoIterator<Item = S>, S: Into<String>>(origins: I) -> Self {
        Self {
            origin: AllowOrigin::List(origins.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request, or `None` when this origin
    /// gets no CORS headers.
    fn allow_origin(&self, request: &HeaderMap) -> Option<HeaderValue> {
        match &self.origin {
            AllowOrigin::Any => Some(HeaderValue::from_static("*")),
            AllowOrigin::Mirror => request.get(header::ORIGIN).cloned(),
            AllowOrigin::List(list) => {
                let origin = request.get(header::ORIGIN)?;
                let o = origin.to_str().ok()?;
                list.iter().any(|a| a == o).then(|| origin.clone())
            }
        }
    }

    /// Adds the headers of an actual (non-preflight) response.
    pub fn apply(&self, request: &HeaderMap, response: &mut HeaderMap) {
        self.common(request, response);
        if let Some(v) = self
            .exposed_headers
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
    }

    /// Adds the headers of a preflight (`OPTIONS`) answer; the caller answers 204 with an
    /// empty body, as the `cors` middleware does.
    pub fn apply_preflight(&self, request: &HeaderMap, response: &mut HeaderMap) {
        self.common(request, response);
        if let Ok(v) = HeaderValue::from_str(&self.methods) {
            response.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        match self.allowed_headers.as_deref() {
            Some(h) => {
                if let Ok(v) = HeaderValue::from_str(h) {
                    response.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
                }
            }
            None => {
                if let Some(v) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                    response.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
                    response.append(
                        header::VARY,
                        HeaderValue::from_static("Access-Control-Request-Headers"),
                    );
                }
            }
        }
        if let Some(age) = self.max_age {
            response.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
        response.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }

    fn common(&self, request: &HeaderMap, response: &mut HeaderMap) {
        // As the `cors` middleware: the credentials header does not depend on the origin.
        if let Some(origin) = self.allow_origin(request) {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        if self.credentials {
            response.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if self.origin != AllowOrigin::Any {
            response.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        h
    }

    #[test]
    fn list_echoes_only_listed_origins() {
        let cors = Cors::origins(["https://a.example"]);
        let mut out = HeaderMap::new();
        cors.apply(&req("https://a.example"), &mut out);
        assert_eq!(
            out[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://a.example"
        );
        let mut out = HeaderMap::new();
        cors.apply(&req("https://evil.example"), &mut out);
        assert!(out.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert_eq!(out[header::VARY], "Origin");
    }

    #[test]
    fn preflight_echoes_requested_headers() {
        let cors = Cors::permissive();
        let mut r = req("http://x");
        r.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("authorization"),
        );
        let mut out = HeaderMap::new();
        cors.apply_preflight(&r, &mut out);
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://x");
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_HEADERS], "authorization");
        assert_eq!(
            out[header::ACCESS_CONTROL_ALLOW_METHODS],
            "GET,HEAD,PUT,PATCH,POST,DELETE"
        );
    }
}
