//! Every status, header and JSON shape the server answers with, and that each decision is the
//! one `autheona verify` makes on the same store at the same moment.

use super::harness::*;
use crate::common::*;

const CHALLENGE: &str = r#"Bearer realm="autheona""#;
const INVALID_TOKEN: &str = r#"Bearer realm="autheona", error="invalid_token""#;

#[test]
fn a_valid_token_is_200_with_its_id_and_project_and_an_empty_body() {
    let (env, token) = demo();
    let server = Server::start(&env, &[]);
    for project in [None, Some("demo")] {
        let response = server.auth(&token, project);
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(response.header("x-autheona-token-id"), Some(id_of(&token)));
        assert_eq!(response.header("x-autheona-project"), Some("demo"));
        assert_eq!(response.header("content-length"), Some("0"));
        assert!(response.body.is_empty());
        assert_eq!(response.header("www-authenticate"), None);
        assert_eq!(response.header("x-autheona-warning"), None, "30 days left");
    }
    // Any method: proxies forward the original one. (A HEAD answer has no body to delimit:
    // the connection's close ends it.)
    for method in ["POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"] {
        let response = server.send(&request(
            method,
            "/v1/auth",
            &[
                &format!("Authorization: Bearer {token}"),
                "Connection: close",
            ],
        ));
        assert_eq!(response.status, 200, "{method}: {response:?}");
    }
}

/// As `autheona verify` warns on stderr, serve warns the API (for its logs) of a token that
/// expires within 7 days, on both endpoints; the token is valid all the same.
#[test]
fn a_token_that_expires_within_7_days_is_valid_with_a_warning_to_rotate_it() {
    let (env, _) = demo();
    let token = token_at(&env, "-25d", "demo", "30");
    let expires_at = listed(&env, id_of(&token))["expires_at"]
        .as_str()
        .expect("an expiry")
        .to_owned();
    let expected = format!(
        "token {} expires at {expires_at}; rotate it in time",
        id_of(&token)
    );
    let server = Server::start(&env, &[]);
    let response = server.auth(&token, Some("demo"));
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("x-autheona-warning"),
        Some(expected.as_str())
    );
    let response = server.verify(&serde_json::json!({ "token": token }));
    assert_eq!(response.json()["valid"], true);
    assert_eq!(
        response.header("x-autheona-warning"),
        Some(expected.as_str())
    );
}

#[test]
fn another_projects_token_is_403() {
    let (env, token) = demo();
    let server = Server::start(&env, &[]);
    let response = server.auth(&token, Some("other"));
    assert_eq!(response.status, 403, "{response:?}");
    assert_eq!(
        response.header("www-authenticate"),
        Some(r#"Bearer realm="autheona", error="insufficient_scope""#)
    );
    assert_eq!(response.header("x-autheona-token-id"), None);
    // A project that does not exist: no token is of it.
    assert_eq!(server.auth(&token, Some("nowhere")).status, 403);
}

#[test]
fn no_token_is_401_with_a_plain_challenge_and_a_bad_one_says_invalid_token() {
    let (env, token) = demo();
    let server = Server::start(&env, &[]);
    for headers in [
        &[][..],
        &["Authorization: Basic dXNlcjpwYXNz"],
        &["Authorization: Bearer"],
    ] {
        let response = server.get("/v1/auth", headers);
        assert_eq!(response.status, 401, "{headers:?}: {response:?}");
        assert_eq!(response.header("www-authenticate"), Some(CHALLENGE));
    }
    let unknown = forge("AAAAAAAAAAAA", secret_of(&token));
    let wrong_secret = forge(id_of(&token), &"x".repeat(43));
    let mut mangled = token.clone();
    mangled.pop();
    for bad in [unknown.as_str(), &wrong_secret, &mangled, "aut_nothing"] {
        let response = server.auth(bad, None);
        assert_eq!(response.status, 401, "{bad}: {response:?}");
        assert_eq!(response.header("www-authenticate"), Some(INVALID_TOKEN));
        assert_eq!(response.header("x-autheona-token-id"), None);
    }
}

#[test]
fn revoked_and_expired_tokens_are_401() {
    let (env, token) = demo();
    let expired = token_at(&env, "-31d", "demo", "30");
    let server = Server::start(&env, &[]);
    assert_eq!(server.auth(&expired, None).status, 401);
    assert_eq!(server.auth(&token, None).status, 200);
    env.run(&["token", "revoke", id_of(&token), "--yes"])
        .success();
    let response = server.auth(&token, None);
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(response.header("www-authenticate"), Some(INVALID_TOKEN));
}

#[test]
fn verify_json_is_what_autheona_verify_json_prints_for_every_reason() {
    let (env, token) = demo();
    let expired = token_at(&env, "-31d", "demo", "30");
    let unknown = forge("AAAAAAAAAAAA", secret_of(&token));
    // As verify reads its input: around the token, whitespace and a byte order mark are not
    // the token's.
    let padded = format!(" {token}\n");
    let marked = format!("\u{feff}{token}");
    let server = Server::start(&env, &[]);
    let cases: Vec<(&str, Option<&str>)> = vec![
        (&token, None),
        (&padded, None),
        (&marked, Some("demo")),
        (&token, Some("demo")),
        (&token, Some("other")),
        (&expired, None),
        (&unknown, None),
        ("aut_malformed", None),
        ("", None),
    ];
    for (given, project) in cases {
        let mut body = serde_json::json!({ "token": given });
        let mut args = vec!["--json"];
        if let Some(project) = project {
            body["project"] = project.into();
            args.extend(["--project", project]);
        }
        let response = server.verify(&body);
        assert_eq!(response.status, 200, "{given} {project:?}: {response:?}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        let cli = env.verify(given, &args);
        assert_eq!(
            response.text(),
            stdout(&cli),
            "{given} {project:?}: the same bytes as verify --json"
        );
    }
    // "project": null is no project required.
    let response = server.verify(&serde_json::json!({"token": token, "project": null}));
    assert_eq!(response.json()["valid"], true);
}

#[test]
fn verify_refuses_a_body_that_is_not_its_json_with_400() {
    let (env, token) = demo();
    let server = Server::start(&env, &[]);
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        br#"{"token": 5}"#.to_vec(),
        format!(r#"{{"token": "{token}", "extra": 1}}"#).into_bytes(),
        format!(r#"{{"token": "{token}", "project": 7}}"#).into_bytes(),
        b"{\"token\": \"\xff\xfe\"}".to_vec(),
    ];
    for body in bodies {
        let response = server.send(&post("/v1/verify", &body));
        assert_eq!(
            response.status,
            400,
            "{:?}: {response:?}",
            String::from_utf8_lossy(&body)
        );
        let error = response.json()["error"].as_str().unwrap().to_owned();
        assert!(error.starts_with("the body must be"), "{error}");
        assert!(!error.contains(secret_of(&token)), "{error}");
    }
    let response = server.get("/v1/verify", &[]);
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("POST"));
}

#[test]
fn a_body_over_4_kib_is_413_before_it_is_read() {
    let (env, _token) = demo();
    let server = Server::start(&env, &[]);
    // Declared too long, and nothing of it sent: answered at once.
    let mut connection = Connection::open(&server.addr);
    connection
        .send(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n")
        .unwrap();
    let response = connection.receive().expect("an answer without the body");
    assert_eq!(response.status, 413, "{response:?}");
    assert!(connection.closed_within(std::time::Duration::from_secs(10)));
    // Chunked, with no length declared: refused once 4 KiB have come.
    let mut connection = Connection::open(&server.addr);
    connection
        .send(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = format!("1000\r\n{}\r\n", "a".repeat(0x1000));
    let _ = connection.send(chunk.as_bytes());
    let _ = connection.send(chunk.as_bytes());
    let response = connection.receive().expect("an answer");
    assert_eq!(response.status, 413, "{response:?}");
    // Exactly 4 KiB is read, and answered.
    let body = format!(r#"{{"token": "{}"}}"#, " ".repeat(4096 - 13)).into_bytes();
    assert_eq!(body.len(), 4096);
    assert_eq!(server.send(&post("/v1/verify", &body)).status, 200);
    assert_eq!(server.get("/healthz", &[]).status, 200, "still serving");
}

#[test]
fn healthz_says_whether_the_store_answers() {
    let (env, _token) = demo();
    let server = Server::start(&env, &[]);
    let response = server.get("/healthz", &[]);
    assert_eq!(response.status, 200, "{response:?}");
    let body = response.json();
    assert_eq!(body["status"], "ok");
    match backend() {
        Backend::Postgres => {
            let offset = body["clock_offset_seconds"].as_i64().expect("an offset");
            assert!(offset.abs() <= 2, "{body}");
        }
        Backend::Sqlite => assert_eq!(keys(&body), ["status"]),
    }
    assert_eq!(server.send(&request("POST", "/healthz", &[])).status, 405);
}

/// The store's connections cut by the server (PostgreSQL only: an SQLite file has no server to
/// go away): each request that meets a dead connection gets 503, never a decision, and the
/// next ones work on new connections.
#[test]
fn a_store_that_cannot_answer_is_503_and_the_server_recovers() {
    if backend() != Backend::Postgres {
        return;
    }
    let (env, token) = demo();
    let server = Server::start(&env, &["--store-connections", "2"]);
    assert_eq!(server.auth(&token, None).status, 200);
    let mut sql = env.sql();
    let others =
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
    sql.value(&format!("SELECT count(pg_terminate_backend(pid)) {others}"));
    let started = std::time::Instant::now();
    while sql.count(&format!("SELECT count(*) {others}")) > 0 {
        assert!(started.elapsed() < HANG_GUARD, "the backends did not end");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = if statuses.len() % 2 == 0 {
            server.auth(&token, None)
        } else {
            server.get("/healthz", &[])
        };
        if response.status == 503 {
            assert!(
                response.header("retry-after").is_some()
                    || response.json()["status"] == "unavailable",
                "{response:?}"
            );
        }
        statuses.push(response.status);
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&503), "{statuses:?}");
    assert_eq!(statuses[4..], [200, 200], "{statuses:?}");
    let stopped = server.stop();
    assert!(
        stopped.stderr.contains("the store cannot answer"),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains("the store answers again"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn metrics_count_each_result_cache_hits_and_misses() {
    let (env, token) = demo();
    let expired = token_at(&env, "-31d", "demo", "30");
    let server = Server::start(&env, &[]);
    server.auth(&token, None);
    server.auth(&token, None);
    server.auth(&token, Some("other"));
    server.auth(&expired, None);
    server.auth(&forge("AAAAAAAAAAAA", secret_of(&token)), None);
    server.auth("aut_x", None);
    let response = server.get("/metrics", &[]);
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{response:?}"
    );
    let text = response.text();
    for line in [
        r#"autheona_verifications_total{result="valid"} 2"#,
        r#"autheona_verifications_total{result="wrong_project"} 1"#,
        r#"autheona_verifications_total{result="expired"} 1"#,
        r#"autheona_verifications_total{result="unknown"} 1"#,
        r#"autheona_verifications_total{result="malformed"} 1"#,
        "autheona_verification_duration_seconds_count 6",
        // token: a miss, then hits; expired: a miss; the unknown id has no row to miss.
        "autheona_cache_misses_total 2",
        "autheona_cache_hits_total 2",
        "autheona_overload_refused_total 0",
        "autheona_last_used_pending 1",
    ] {
        // Last-used may have been written already.
        if line.starts_with("autheona_last_used_pending") {
            assert!(
                text.lines()
                    .any(|l| l == line || l == "autheona_last_used_pending 0"),
                "{text}"
            );
            continue;
        }
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
}

#[test]
fn a_token_in_the_url_is_refused_with_400_and_never_echoed() {
    let (env, token) = demo();
    let server = Server::start(&env, &["--access-log"]);
    let encoded = token.replacen('_', "%5F", 2);
    for target in [
        format!("/v1/auth?token={token}"),
        format!("/v1/auth?project=demo&access_token={encoded}"),
        format!("/v1/auth/{token}"),
        format!("/{}", secret_of(&token)),
        format!("/healthz?{token}"),
    ] {
        let response = server.get(&target, &[&format!("Authorization: Bearer {token}")]);
        assert_eq!(response.status, 400, "{target}: {response:?}");
        assert!(!response.text().contains(secret_of(&token)));
        assert!(response.json()["error"].as_str().unwrap().contains("URL"));
    }
    // In an absolute-form target's user part too.
    let response = server.get(&format!("http://{token}@127.0.0.1/v1/auth"), &[]);
    assert_eq!(response.status, 400, "{response:?}");
    assert!(!response.text().contains(secret_of(&token)));
    let stopped = server.stop();
    assert!(
        !stopped.stderr.contains(secret_of(&token)),
        "{}",
        stopped.stderr
    );
}

#[test]
fn unknown_paths_are_404_and_a_misspelt_query_is_refused() {
    let (env, token) = demo();
    let server = Server::start(&env, &[]);
    assert_eq!(server.get("/", &[]).status, 404);
    // Under /v1/auth/ is forward auth too (Envoy appends the client's path): no token, 401.
    assert_eq!(server.get("/v1/auth/extra", &[]).status, 401);
    // A misspelt `project` must not let every project's tokens through.
    let response = server.get(
        "/v1/auth?projcet=other",
        &[&format!("Authorization: Bearer {token}")],
    );
    assert_eq!(response.status, 400, "{response:?}");
    let response = server.get(
        "/v1/auth?project=a&project=b",
        &[&format!("Authorization: Bearer {token}")],
    );
    assert_eq!(response.status, 400, "{response:?}");
    // Percent-encoded project names work.
    assert_eq!(server.auth(&token, Some("%64emo")).status, 200);
    assert_eq!(server.auth(&token, Some("%6Fther")).status, 403);
}

#[test]
fn last_used_is_written_within_about_a_second() {
    let (env, token) = demo();
    let server = Server::start(&env, &[]);
    assert!(listed(&env, id_of(&token))["last_used_at"].is_null());
    assert_eq!(server.auth(&token, None).status, 200);
    let started = std::time::Instant::now();
    while listed(&env, id_of(&token))["last_used_at"].is_null() {
        assert!(started.elapsed() < HANG_GUARD, "last-used never written");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Written behind, so the request did not wait for it; one flush a second at most.
    let stopped = server.stop();
    assert!(stopped.status.success(), "{stopped:?}");
}

/// Envoy's ext_authz asks with its prefix and the client's own path and query appended, and
/// says which project is required in a header.
#[test]
fn forward_auth_under_a_longer_path_ignores_the_clients_path_and_query() {
    let (env, token) = demo();
    let server = Server::start(&env, &[]);
    let bearer = format!("Authorization: Bearer {token}");
    let ask = |target: &str, headers: &[&str]| {
        let mut all = vec![bearer.as_str()];
        all.extend_from_slice(headers);
        server.get(target, &all).status
    };
    assert_eq!(ask("/v1/auth/orders/7?page=2&sort=asc", &[]), 200);
    // A client's random strings are not tokens: a base64 cursor, a JWT, an IPFS hash.
    for client in [
        "/v1/auth/orders?cursor=eyJpZCI6MTIzNDU2Nzg5MCwidHMiOjE3MDAwMDAwMDB9",
        "/v1/auth/me?id_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.\
         SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "/v1/auth/files/QmXoypizjW3WknFiJnKLwHCnL72vedxjQkDDP1mXWo6uco",
    ] {
        assert_eq!(ask(client, &[]), 200, "{client}");
    }
    // A token with its prefix is one there too.
    assert_eq!(ask(&format!("/v1/auth/orders?key={token}"), &[]), 400);
    assert_eq!(ask("/v1/auth/", &[]), 200);
    assert_eq!(
        ask("/v1/auth/orders", &["X-Autheona-Require-Project: demo"]),
        200
    );
    assert_eq!(
        ask("/v1/auth/orders", &["X-Autheona-Require-Project: other"]),
        403
    );
    // The client's query cannot require or lift anything there.
    assert_eq!(ask("/v1/auth/x?project=other", &[]), 200);
    // But `/v1/auth/?project=NAME`, a stray slash in a proxy's URL, still requires NAME; the
    // other parameters there are the client's.
    assert_eq!(ask("/v1/auth/?project=other", &[]), 403);
    assert_eq!(ask("/v1/auth/?page=2&project=demo", &[]), 200);
    assert_eq!(ask("/v1/auth/?page=2", &[]), 200);
    assert_eq!(ask("/v1/auth/?project=demo&project=other", &[]), 400);
    assert_eq!(ask("/v1/auth//?project=other", &[]), 403);
    // Spelt in another case or percent-encoded, it is refused as on /v1/auth, not ignored.
    assert_eq!(ask("/v1/auth/?Project=demo", &[]), 400);
    assert_eq!(ask("/v1/auth/?%70roject=demo", &[]), 400);
    assert_eq!(
        ask(
            "/v1/auth/x?project=demo",
            &["X-Autheona-Require-Project: other"]
        ),
        403
    );
    // On /v1/auth itself, query and header must agree; a header never lifts a requirement.
    assert_eq!(
        ask(
            "/v1/auth?project=demo",
            &["X-Autheona-Require-Project: demo"]
        ),
        200
    );
    assert_eq!(
        ask(
            "/v1/auth?project=other",
            &["X-Autheona-Require-Project: demo"]
        ),
        400
    );
    assert_eq!(
        ask(
            "/v1/auth",
            &[
                "X-Autheona-Require-Project: demo",
                "X-Autheona-Require-Project: other"
            ]
        ),
        400
    );
    // A token in the client's URL is refused there too.
    assert_eq!(ask(&format!("/v1/auth/x?t={token}"), &[]), 400);
}
