//! The HTTP interface: routes, the answers for each, and what a request may not hold.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use serde::Deserialize;

use super::App;
use super::verify::{Answer, Unanswered};
use crate::ops::verify::{Reason, VerifiedToken};
use crate::text;
use crate::ui;

/// The most a `POST /v1/verify` body may hold: far more than a token and a project name.
pub const MAX_BODY: usize = 4096;

pub type Body = Full<Bytes>;

/// What the access log says of a request's answer besides its status.
#[derive(Default)]
pub struct Noted {
    pub token_id: Option<String>,
}

pub async fn handle(app: &App, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    // Never a query in the log: it may hold anything.
    let logged = app
        .access_log
        .then(|| (logged_method(request.method()), logged_path(request.uri())));
    let mut noted = Noted::default();
    let response = route(app, request, &mut noted).await;
    if let Some((method, path)) = logged {
        app.log_request(method, &path, response.status(), &noted, started.elapsed());
    }
    response
}

/// The request's method as the access log shows it: any method is served on `/v1/auth`, and
/// one that is not HTTP's own may be any word a client sent, a token too.
fn logged_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// The request's path as the access log shows it (never its query): a path with any
/// percent-escape is not shown, since decoding it, once or more, may give back a token that
/// no check of its text could find.
fn logged_path(uri: &Uri) -> String {
    let path = uri.path();
    match path.contains('%') {
        true => "<percent-encoded path>".to_owned(),
        false => path.to_owned(),
    }
}

async fn route(app: &App, request: Request<Incoming>, noted: &mut Noted) -> Response<Body> {
    if holds_token(request.uri()) {
        return error(
            StatusCode::BAD_REQUEST,
            "a token was found in the URL, where logs keep it: send it in the Authorization \
             header (Bearer) or a POST /v1/verify body, and revoke this one",
        );
    }
    let method = request.method();
    let path = request.uri().path();
    if path.starts_with("/v1/auth/") {
        // Envoy's ext_authz appends the client's own path and query: neither is serve's. At
        // `/v1/auth/` (or `//`) a `project` is still read, so that a stray slash in a proxy's
        // URL (`/v1/auth/?project=billing`) cannot pass every project's tokens; a client's
        // own `?project=` there can only narrow what it is let through.
        let projects = match path.trim_end_matches('/') {
            "/v1/auth" => request.uri().query().map(project_parameters),
            _ => None,
        };
        return auth(app, &request, projects.as_deref(), noted).await;
    }
    match path {
        "/v1/auth" => auth(app, &request, request.uri().query(), noted).await,
        "/v1/verify" if method == Method::POST => verify(app, request, noted).await,
        "/v1/verify" => not_allowed("POST"),
        "/healthz" if is_get(method) => health(app).await,
        "/metrics" if is_get(method) => metrics(app),
        "/healthz" | "/metrics" => not_allowed("GET, HEAD"),
        _ => error(
            StatusCode::NOT_FOUND,
            "no such endpoint: /v1/auth, /v1/verify, /healthz and /metrics are served",
        ),
    }
}

fn is_get(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// Whether the path or query holds anything shaped like a token, as it is or percent-decoded.
fn holds_token(uri: &Uri) -> bool {
    // An absolute-form target's user part (`http://aut_...@host/v1/auth`) is in the URL too.
    if uri
        .authority()
        .is_some_and(|authority| text::has_token_shape(authority.as_str()))
    {
        return true;
    }
    let Some(whole) = uri.path_and_query().map(|pq| pq.as_str()) else {
        return false;
    };
    // Under /v1/auth/ the path and query are a client's (Envoy appends them), whose base64
    // cursors and JWTs are runs that a secret without its prefix would be: there only a token
    // with its prefix counts. The access log redacts both kinds wherever they are.
    let shaped = match uri.path().starts_with("/v1/auth/") {
        true => text::has_prefixed_token_shape,
        false => text::has_token_shape,
    };
    let decoded = percent_encoding::percent_decode_str(whole).decode_utf8_lossy();
    shaped(whole) || shaped(&decoded)
}

/// The request header that may name the project a token must belong to, for a proxy that
/// cannot put it in the query (Envoy's ext_authz `headers_to_add`).
pub const REQUIRE_PROJECT: &str = "x-autheona-require-project";

/// The response header that says a valid token was replaced and when it stops.
pub const WARNING: &str = "x-autheona-warning";

/// Forward auth: the token from `Authorization: Bearer`, the required project from `query`
/// (`?project=NAME`) or the [`REQUIRE_PROJECT`] header; both given must agree.
async fn auth(
    app: &App,
    request: &Request<Incoming>,
    query: Option<&str>,
    noted: &mut Noted,
) -> Response<Body> {
    let project = match required_project(query)
        .and_then(|project| with_required_header(project, request.headers()))
    {
        Ok(project) => project,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let token = match bearer(request.headers()) {
        Credential::None => return unauthorized(None),
        Credential::Ambiguous => return unauthorized(Some("invalid_request")),
        Credential::Token(token) => token,
    };
    let answer = match app.verifier.verify(token, project.as_deref()).await {
        Ok(answer) => answer,
        Err(failure) => return unanswered(&failure),
    };
    noted.token_id = answer.token().map(|t| t.id.clone());
    match &answer {
        Answer::Valid(token, left) => {
            let mut response = empty(StatusCode::OK);
            let headers = response.headers_mut();
            headers.insert("x-autheona-token-id", header_text(&token.id));
            headers.insert("x-autheona-project", header_text(&token.project));
            warn(headers, token, *left);
            response
        }
        Answer::Invalid(Reason::WrongProject, _) => {
            let mut response = empty(StatusCode::FORBIDDEN);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="autheona", error="insufficient_scope""#),
            );
            response
        }
        Answer::Invalid(..) => unauthorized(Some("invalid_token")),
    }
}

/// The parameters of `query` named `project`, in any case or percent-encoding (so that
/// [`required_project`] refuses a `Project=`), without the others (a client's own, behind
/// Envoy).
fn project_parameters(query: &str) -> String {
    let projects: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .eq_ignore_ascii_case("project")
        })
        .collect();
    projects.join("&")
}

/// The project `?project=NAME` requires; any other parameter is an error in the proxy's
/// configuration (a misspelt `project` must not pass every project's tokens).
fn required_project(query: Option<&str>) -> Result<Option<String>, String> {
    let mut project = None;
    for pair in query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
            .decode_utf8()
            .map(|value| value.into_owned());
        match (name, value) {
            ("project", Ok(value)) if project.is_none() && !value.is_empty() => {
                project = Some(value);
            }
            ("project", _) => {
                return Err(
                    "the query must give one project, percent-encoded UTF-8: ?project=NAME".into(),
                );
            }
            (other, _) => {
                return Err(format!(
                    "unknown query parameter '{}': /v1/auth takes only ?project=NAME",
                    ui::safe(&text::redact(other))
                ));
            }
        }
    }
    Ok(project)
}

/// The project the query requires, and the one the [`REQUIRE_PROJECT`] header does, as one;
/// a header can add a requirement, never lift one.
fn with_required_header(
    project: Option<String>,
    headers: &HeaderMap,
) -> Result<Option<String>, String> {
    let mut values = headers.get_all(REQUIRE_PROJECT).iter();
    let header = match (values.next(), values.next()) {
        (None, _) => return Ok(project),
        (Some(value), None) => value
            .to_str()
            .ok()
            .filter(|value| !value.is_empty())
            .ok_or_else(|| format!("{REQUIRE_PROJECT} must name one project"))?,
        (Some(_), Some(_)) => return Err(format!("{REQUIRE_PROJECT} given more than once")),
    };
    match project {
        Some(project) if project != header => Err(format!(
            "the query and {REQUIRE_PROJECT} require different projects"
        )),
        _ => Ok(Some(header.to_owned())),
    }
}

enum Credential<'a> {
    /// No bearer token given.
    None,
    /// More than one Authorization header.
    Ambiguous,
    Token(&'a str),
}

/// The bearer token in the request's one Authorization header (the scheme's name in any case,
/// as RFC 9110 has it). Anything after the scheme is the token's to be judged: junk makes it
/// malformed, never another token.
fn bearer(headers: &HeaderMap) -> Credential<'_> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match headers.contains_key(header::AUTHORIZATION) {
            true => Credential::Ambiguous,
            false => Credential::None,
        };
    };
    let bytes = value.as_bytes();
    let Some(scheme_end) = bytes.iter().position(|&b| b == b' ' || b == b'\t') else {
        return Credential::None;
    };
    if !bytes[..scheme_end].eq_ignore_ascii_case(b"bearer") {
        return Credential::None;
    }
    // Not visible ASCII cannot be a token: malformed, as any other junk.
    let rest = std::str::from_utf8(&bytes[scheme_end..]).unwrap_or("\u{fffd}");
    match rest.trim_matches([' ', '\t']) {
        "" => Credential::None,
        token => Credential::Token(token),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    token: String,
    #[serde(default)]
    project: Option<String>,
}

/// `POST /v1/verify`: the JSON `autheona verify --json` prints.
async fn verify(app: &App, request: Request<Incoming>, noted: &mut Noted) -> Response<Body> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return too_large();
    }
    let body = Limited::new(request.into_body(), MAX_BODY).collect();
    let body = match tokio::time::timeout(app.read_timeout, body).await {
        Err(_) => return closing(error(StatusCode::REQUEST_TIMEOUT, "the body took too long")),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Ok(Err(_)) => {
            return closing(error(StatusCode::BAD_REQUEST, "the body could not be read"));
        }
        Ok(Ok(body)) => zeroize::Zeroizing::new(body.to_bytes().to_vec()),
    };
    let asked: VerifyRequest = match serde_json::from_slice(&body) {
        Ok(asked) => asked,
        Err(err) => {
            let what = match err.classify() {
                serde_json::error::Category::Data => "wrong fields or types",
                _ => "not valid JSON",
            };
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the body must be {{\"token\": \"...\", \"project\": \"...\"}} (project \
                     optional, no other fields): {what} at line {} column {}",
                    err.line(),
                    err.column()
                ),
            );
        }
    };
    let token = zeroize::Zeroizing::new(asked.token);
    let given = crate::token::given(&token);
    let answer = match app.verifier.verify(given, asked.project.as_deref()).await {
        Ok(answer) => answer,
        Err(failure) => return unanswered(&failure),
    };
    noted.token_id = answer.token().map(|t| t.id.clone());
    let shown = ui::json::VerificationJson::new(answer.reason(), answer.token());
    match ui::json::encode(&shown) {
        Ok(json) => {
            let mut response = json_response(StatusCode::OK, json.to_vec());
            if let Answer::Valid(token, left) = &answer {
                warn(response.headers_mut(), token, *left);
            }
            response
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the answer could not be encoded",
        ),
    }
}

/// `GET /healthz`: whether the store answers a query, and on a server, how far its clock is
/// from this host's.
async fn health(app: &App) -> Response<Body> {
    let clock = app.verifier.stores.clock().await;
    let server = match clock {
        Ok(Ok(server)) => server,
        Ok(Err(err)) => {
            return json_value(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"status": "unavailable", "error": text::redact(err.message())}),
            );
        }
        Err(_) => {
            return json_value(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"status": "unavailable", "error": "overloaded"}),
            );
        }
    };
    match server {
        None => json_value(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        Some(server) => {
            let Ok(host) = crate::environment::clock::now() else {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "this host's clock cannot be read",
                );
            };
            let host = host.timestamp();
            app.clock_checked(host, server);
            json_value(
                StatusCode::OK,
                &serde_json::json!({"status": "ok", "clock_offset_seconds": host - server}),
            )
        }
    }
}

fn metrics(app: &App) -> Response<Body> {
    let text = app.verifier.metrics.render(app.verifier.uses.pending());
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::metrics::CONTENT_TYPE),
    );
    response
}

/// 503, so that every proxy refuses the request: the store could not answer, or too much
/// work waits (then with Retry-After).
fn unanswered(failure: &Unanswered) -> Response<Body> {
    let message = match failure {
        Unanswered::Busy => "overloaded: too many verifications wait; retry in a second".to_owned(),
        Unanswered::Store(_) => "the store cannot answer now".to_owned(),
        Unanswered::Clock(err) => err.message().to_owned(),
    };
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, &message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn unauthorized(error: Option<&'static str>) -> Response<Body> {
    let mut response = empty(StatusCode::UNAUTHORIZED);
    let challenge = match error {
        None => HeaderValue::from_static(r#"Bearer realm="autheona""#),
        Some("invalid_request") => {
            HeaderValue::from_static(r#"Bearer realm="autheona", error="invalid_request""#)
        }
        Some(_) => HeaderValue::from_static(r#"Bearer realm="autheona", error="invalid_token""#),
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}

/// `X-Autheona-Warning`, for the API's logs, on a valid token that will soon stop working, as
/// `autheona verify` warns on stderr: one in its grace period (its replacement should be
/// deployed before the time given), or else one that expires within 7 days (`left`: it
/// should be rotated).
fn warn(headers: &mut HeaderMap, token: &VerifiedToken, left: Option<TimeDelta>) {
    let warning = match (&token.ends, token.expires_at) {
        (Some(end), _) => format!(
            "token {} was replaced by token {} and stops working at {}",
            token.id,
            end.replaced_by,
            ui::time::rfc3339(end.stops_at)
        ),
        (None, Some(expires_at)) if left.is_some() => format!(
            "token {} expires at {}; rotate it in time",
            token.id,
            ui::time::rfc3339(expires_at)
        ),
        _ => return,
    };
    headers.insert(WARNING, header_text(&warning));
}

/// A header value for a name or id: as it is when it can be (UTF-8 goes as the bytes it is),
/// else percent-encoded.
fn header_text(text: &str) -> HeaderValue {
    HeaderValue::from_bytes(text.as_bytes()).unwrap_or_else(|_| {
        let encoded =
            percent_encoding::utf8_percent_encode(text, percent_encoding::CONTROLS).to_string();
        HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
    })
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_response(status: StatusCode, json: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(json)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_value(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    json_response(
        status,
        ui::json::encode(value)
            .map(|json| json.to_vec())
            .unwrap_or_default(),
    )
}

/// An error as `{"error": "..."}`.
fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_value(status, &serde_json::json!({ "error": message }))
}

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn too_large() -> Response<Body> {
    closing(error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is over {MAX_BODY} bytes"),
    ))
}

/// Closes the connection after the answer: the rest of the request is not read.
fn closing(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// How long the access log says a request took: in milliseconds, to the microsecond.
pub fn millis(took: Duration) -> String {
    format!("{:.3}", took.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn token_of(values: &[&[u8]]) -> Option<String> {
        match bearer(&headers(values)) {
            Credential::Token(token) => Some(token.to_owned()),
            Credential::None => None,
            Credential::Ambiguous => Some("<ambiguous>".to_owned()),
        }
    }

    #[test]
    fn the_bearer_token_of_one_header() {
        assert_eq!(token_of(&[]), None);
        assert_eq!(token_of(&[b"Bearer abc"]).as_deref(), Some("abc"));
        assert_eq!(
            token_of(&[b"bearer abc"]).as_deref(),
            Some("abc"),
            "any case"
        );
        assert_eq!(token_of(&[b"BEARER  abc "]).as_deref(), Some("abc"));
        assert_eq!(token_of(&[b"Bearer"]), None);
        assert_eq!(token_of(&[b"Bearer "]), None);
        assert_eq!(token_of(&[b"Basic dXNlcjpwYXNz"]), None);
        assert_eq!(token_of(&[b"Bearer abc junk"]).as_deref(), Some("abc junk"));
        assert_eq!(token_of(&[b"Bearer \xff"]).as_deref(), Some("\u{fffd}"));
        assert_eq!(
            token_of(&[b"Bearer a", b"Bearer b"]).as_deref(),
            Some("<ambiguous>")
        );
    }

    #[test]
    fn the_project_a_query_requires() {
        assert_eq!(required_project(None), Ok(None));
        assert_eq!(required_project(Some("")), Ok(None));
        assert_eq!(
            required_project(Some("project=billing")),
            Ok(Some("billing".to_owned()))
        );
        assert_eq!(
            required_project(Some("project=caf%C3%A9+bar")),
            Ok(Some("café bar".to_owned()))
        );
        for wrong in [
            "projcet=billing",
            "project=a&project=b",
            "project=",
            "project=%ff",
            "x",
        ] {
            assert!(required_project(Some(wrong)).is_err(), "{wrong}");
        }
    }

    #[test]
    fn tokens_in_urls_are_found_encoded_or_not() {
        let token = crate::token::Token::generate(&mut rand::rng()).reveal();
        let token = token.expose();
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert!(holds_token(&uri(&format!("/v1/auth?token={token}"))));
        assert!(holds_token(&uri(&format!("/v1/auth/{token}"))));
        let encoded = token.replacen('_', "%5F", 2);
        assert!(holds_token(&uri(&format!("/v1/auth?t={encoded}"))));
        assert!(!holds_token(&uri("/v1/auth?project=aut_payments")));
        assert!(!holds_token(&uri("/v1/auth")));
    }
}
