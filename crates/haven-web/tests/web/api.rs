//! The API at its edges, over real HTTP on loopback against a real server
//! core (SQLite store, catalog): every route with no token, a wrong token
//! and the right one, and every class of malformed request. Every answer
//! is JSON with a stable code, and a request without the token is refused
//! before anything of it is read.

use std::sync::Arc;
use std::time::Duration;

use haven_ops::clock::SystemClock;
use haven_ops::instance::load_catalog;
use haven_ops::instance::{Overrides, Settings, ensure_token};
use haven_ops::jobs::EngineRunner;
use haven_ops::server;
use haven_store::SqliteStore;
use haven_web::ErrorCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server core and its API on loopback, stopped on drop.
struct Api {
    address: String,
    token: String,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    _dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

const CATALOG: &str = r#"
[[service]]
id = "shop"
tier = 1
rpo = "1d"
rto = "4h"
mtd = "1d"
depends_on = ["web"]

[[system]]
id = "web"
kind = "file-server"
policy = "daily"

[[system.backup_set]]
paths = ["/srv/www"]

[[policy]]
id = "daily"
schedule = "0 3 * * *"
timezone = "UTC"
repository = "main"

[[repository]]
id = "main"
url = "/nonexistent/repo"
password = "env:HAVEN_TEST_NO_SUCH_PASSWORD"

[[channel]]
id = "log"
type = "command"
run = "cat > /dev/null"
"#;

async fn start() -> Api {
    start_with(None).await
}

/// The same, over TLS with `tls`.
async fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Api {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
    std::fs::write(data.join("catalog/catalog.toml"), CATALOG).expect("write");
    let settings = Settings::load(&data, &Overrides::default()).expect("settings");
    let store: Arc<dyn haven_store::Store> = Arc::new(
        SqliteStore::open(&settings.database)
            .await
            .expect("database"),
    );
    let catalog = load_catalog(&settings.catalog, jiff::Timestamp::now()).expect("catalog");
    let token = ensure_token(&data).expect("token");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (handle_tx, handle_rx) = tokio::sync::oneshot::channel();
    let mut core_stop = stopped.clone();
    tokio::spawn(async move {
        let result = server::run(
            settings,
            store,
            Arc::new(SystemClock),
            Arc::new(EngineRunner),
            catalog,
            async move {
                let _ = core_stop.wait_for(|s| *s).await;
            },
            move |handle| {
                let _ = handle_tx.send(handle);
            },
        )
        .await;
        result.expect("the server core runs");
    });
    let handle = handle_rx.await.expect("the core started");
    let mut api_stop = stopped;
    let api_token = token.clone();
    tokio::spawn(async move {
        haven_web::serve(listener, handle.audited(), api_token, tls, async move {
            let _ = api_stop.wait_for(|s| *s).await;
        })
        .await
        .expect("the API serves");
    });
    Api {
        address,
        token,
        stop: Some(stop),
        _dir: dir,
    }
}

/// An answer: status, content type, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One HTTP/1.1 request, written by hand so malformed ones can be sent.
async fn request(address: &str, head: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    // The server may answer (and close) before the body is sent: that is
    // what "refused before the body is read" looks like.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 30 s")
        .expect("read");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        body: body.to_string(),
    }
}

/// Which token a request carries.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Token {
    None,
    Wrong,
    Valid,
}

fn head(method: &str, path: &str, token: Token, api: &Api, extra: &str, length: usize) -> String {
    let auth = match token {
        Token::None => String::new(),
        Token::Wrong => format!("Authorization: Bearer {}x\r\n", &api.token[..10]),
        Token::Valid => format!("Authorization: Bearer {}\r\n", api.token),
    };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{auth}{extra}Content-Length: {length}\r\n\r\n",
        api.address
    )
}

/// A request and what must come back with the right token.
struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// Status and code with the right token (`None`: a success).
    expect: (u16, Option<ErrorCode>),
}

fn case(
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<(&'static str, Vec<u8>)>,
    expect: (u16, Option<ErrorCode>),
) -> Case {
    let (content_type, body) = match body {
        Some((t, b)) => (Some(t), b),
        None => (None, Vec::new()),
    };
    Case {
        what,
        method,
        path,
        content_type,
        body,
        expect,
    }
}

fn cases() -> Vec<Case> {
    use ErrorCode::*;
    let json = |text: &str| Some(("application/json", text.as_bytes().to_vec()));
    let window = r#"{"scope": {"services": [], "systems": [], "repositories": []}, "start": "2030-01-01T00:00:00Z", "end": "2030-01-01T02:00:00Z", "reason": "patching"}"#;
    vec![
        // Every route, well-formed.
        case("status", "GET", "/api/v1/status", None, (200, None)),
        case(
            "jobs",
            "GET",
            "/api/v1/jobs?limit=5&failed=true",
            None,
            (200, None),
        ),
        case(
            "a missing job",
            "GET",
            "/api/v1/jobs/42",
            None,
            (404, Some(NoSuchJob)),
        ),
        case("run", "POST", "/api/v1/systems/web/run", None, (202, None)),
        case(
            "run an unknown system",
            "POST",
            "/api/v1/systems/nope/run",
            None,
            (404, Some(NoSuchSystem)),
        ),
        case(
            "alerts",
            "GET",
            "/api/v1/alerts?open=true",
            None,
            (200, None),
        ),
        case(
            "a missing alert",
            "GET",
            "/api/v1/alerts/7",
            None,
            (404, Some(NoSuchAlert)),
        ),
        case(
            "ack a missing alert",
            "POST",
            "/api/v1/alerts/7/ack",
            None,
            (404, Some(NoSuchAlert)),
        ),
        case(
            "resolve a missing alert",
            "POST",
            "/api/v1/alerts/7/resolve",
            json(r#"{"reason": "fixed"}"#),
            (404, Some(NoSuchAlert)),
        ),
        case(
            "resolve without a body",
            "POST",
            "/api/v1/alerts/7/resolve",
            None,
            (404, Some(NoSuchAlert)),
        ),
        case(
            "maintenance",
            "GET",
            "/api/v1/maintenance",
            None,
            (200, None),
        ),
        // The documented body, exactly (regression: it lacked `by`).
        case(
            "add a window as documented",
            "POST",
            "/api/v1/maintenance",
            json(window),
            (201, None),
        ),
        case(
            "end a missing window",
            "POST",
            "/api/v1/maintenance/m999/end",
            None,
            (422, Some(InvalidWindow)),
        ),
        case(
            "test an unknown channel",
            "POST",
            "/api/v1/channels/nope/test",
            None,
            (404, Some(NoSuchChannel)),
        ),
        // Malformed paths and queries.
        case(
            "a job id that is not a number",
            "GET",
            "/api/v1/jobs/abc",
            None,
            (400, Some(BadPath)),
        ),
        case(
            "an alert id out of range",
            "POST",
            "/api/v1/alerts/99999999999999999999/ack",
            None,
            (400, Some(BadPath)),
        ),
        case(
            "a limit that is not a number",
            "GET",
            "/api/v1/jobs?limit=many",
            None,
            (400, Some(BadQuery)),
        ),
        case(
            "a time that is not one",
            "GET",
            "/api/v1/jobs?since=yesterday",
            None,
            (400, Some(BadQuery)),
        ),
        case(
            "a flag that is not a boolean",
            "GET",
            "/api/v1/alerts?open=maybe",
            None,
            (400, Some(BadQuery)),
        ),
        // Malformed bodies.
        case(
            "not JSON",
            "POST",
            "/api/v1/maintenance",
            json("{not json"),
            (400, Some(BadJson)),
        ),
        case(
            "JSON of the wrong shape",
            "POST",
            "/api/v1/maintenance",
            json(r#"{"start": 5}"#),
            (400, Some(BadJson)),
        ),
        case(
            "a body that is not an object",
            "POST",
            "/api/v1/alerts/7/resolve",
            json("[1, 2]"),
            (400, Some(BadJson)),
        ),
        case(
            "a body that is not JSON at all",
            "POST",
            "/api/v1/maintenance",
            Some(("text/plain", b"hello".to_vec())),
            (415, Some(UnsupportedMediaType)),
        ),
        case(
            "a body of 2 MiB",
            "POST",
            "/api/v1/maintenance",
            Some(("application/json", vec![b' '; 2 << 20])),
            (413, Some(PayloadTooLarge)),
        ),
        // Unknown routes and wrong methods.
        case(
            "an unknown route",
            "GET",
            "/api/v1/nope",
            None,
            (404, Some(NoRoute)),
        ),
        case(
            "a route outside the API",
            "GET",
            "/admin",
            None,
            (404, Some(NoRoute)),
        ),
        case(
            "a wrong method",
            "DELETE",
            "/api/v1/jobs",
            None,
            (405, Some(MethodNotAllowed)),
        ),
        case(
            "GET on an action",
            "GET",
            "/api/v1/systems/web/run",
            None,
            (405, Some(MethodNotAllowed)),
        ),
    ]
}

/// What the figures in the issue's note count.
#[derive(Debug, Default)]
struct Tally {
    requests: usize,
    non_json: usize,
    answered_before_auth: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_malformed_request_gets_a_json_answer_after_the_token() {
    let api = start().await;
    let mut tally = Tally::default();
    for case in cases() {
        for token in [Token::None, Token::Wrong, Token::Valid] {
            let extra = case
                .content_type
                .map(|t| format!("Content-Type: {t}\r\n"))
                .unwrap_or_default();
            let head = head(case.method, case.path, token, &api, &extra, case.body.len());
            let answer = request(&api.address, &head, &case.body).await;
            tally.requests += 1;
            if !answer.content_type.starts_with("application/json") {
                tally.non_json += 1;
            }
            let inside_api = case.path.starts_with("/api/");
            let (status, code) = match token {
                Token::Valid => case.expect,
                _ if inside_api => (401, Some(ErrorCode::Unauthorized)),
                _ => case.expect,
            };
            if token != Token::Valid && inside_api && answer.status != 401 {
                tally.answered_before_auth += 1;
            }
            assert_eq!(
                answer.status, status,
                "{} with {token:?}: {answer:?}",
                case.what
            );
            match code {
                Some(code) => assert_eq!(answer.code(), code.as_str(), "{}: {answer:?}", case.what),
                None => {
                    answer.json();
                }
            }
        }
    }
    eprintln!("{tally:?}");
    assert_eq!(tally.non_json, 0, "{tally:?}");
    assert_eq!(tally.answered_before_auth, 0, "{tally:?}");
}

/// Without the token, a request announcing a huge body is refused at once:
/// the server answers without waiting for a byte of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_is_refused_before_the_body_is_read() {
    let api = start().await;
    let head = format!(
        "POST /api/v1/maintenance HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n",
        api.address
    );
    let mut stream = TcpStream::connect(&api.address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut raw = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut raw))
        .await
        .expect("answered without the body")
        .expect("read");
    let answer = parse(&raw[..n]);
    assert_eq!(answer.status, 401, "{answer:?}");
}

/// A connection that sends nothing is closed after the idle timeout, and
/// one that is slow to send headers likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let api = start().await;
    let mut stream = TcpStream::connect(&api.address).await.expect("connect");
    stream
        .write_all(b"GET /api/v1/status HTTP/1.1\r\n")
        .await
        .expect("partial head");
    let mut raw = Vec::new();
    let closed = tokio::time::timeout(
        haven_web::IDLE_TIMEOUT + Duration::from_secs(20),
        stream.read_to_end(&mut raw),
    )
    .await;
    assert!(closed.is_ok(), "the connection stayed open");
}

/// A self-signed certificate for 127.0.0.1 and localhost, as PEM files
/// in `dir`: (certificate, key).
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).expect("a certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key");
    (cert, key)
}

/// With a certificate, the API speaks TLS only, and its answers carry
/// HSTS beside the headers every answer carries (a strict CSP, nosniff,
/// no framing, no referrer); a broken key file is explained.
#[tokio::test]
async fn over_tls_the_api_answers_with_hsts_and_refuses_plain_http() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = self_signed(dir.path());
    let config = haven_web::tls::server_config(&cert, &key).expect("config");
    let api = start_with(Some(config)).await;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).expect("cert")).expect("pem");
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .expect("client");
    let port = api.address.rsplit(':').next().expect("port");
    let answer = client
        .get(format!("https://localhost:{port}/api/v1/status"))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("an answer over TLS");
    assert_eq!(answer.status(), 200);
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("strict-transport-security"), "max-age=31536000");
    assert_eq!(
        header("content-security-policy"),
        haven_web::tls::CONTENT_SECURITY_POLICY
    );
    assert!(!header("content-security-policy").contains("unsafe-inline"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = raw(
        &api.address,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(!plain.starts_with("HTTP/1.1 200"), "{plain}");

    std::fs::write(&key, "not a key").expect("write");
    let broken = haven_web::tls::server_config(&cert, &key).expect_err("refused");
    assert!(
        broken.contains("key.pem") && broken.contains("not a PEM private key"),
        "{broken}"
    );
}

/// Without TLS the same headers are there, but no HSTS (it would pin a
/// name to HTTPS that does not speak it).
#[tokio::test]
async fn plain_answers_carry_the_security_headers_without_hsts() {
    let api = start().await;
    let answer = raw(
        &api.address,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .to_ascii_lowercase();
    assert!(
        answer.contains("content-security-policy: default-src 'self'"),
        "{answer}"
    );
    assert!(
        answer.contains("x-content-type-options: nosniff"),
        "{answer}"
    );
    assert!(!answer.contains("strict-transport-security"), "{answer}");
}

/// Send `request` as is; the whole answer as text (empty when the
/// connection closed without one).
async fn raw(address: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The OpenAPI document lists every route of the access table with its
/// method and no other, is OpenAPI 3.1, and every operation it lists is
/// answered by the server (never `no-route` or `method-not-allowed`).
#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let api = start().await;
    let answer = raw(
        &api.address,
        "GET /api/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let document: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["components"]["schemas"]["Error"].is_object());
    let documented: std::collections::BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("an item")
                .keys()
                .map(move |method| (method.to_ascii_uppercase(), path.clone()))
        })
        .collect();
    let table: std::collections::BTreeSet<(String, String)> = haven_web::access::ROUTES
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), format!("/api/v1{p}")))
        .collect();
    assert_eq!(documented, table);
    // Every route's success answer is typed, POST bodies too, and every
    // reference resolves to a component.
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    assert!(schemas.len() > 50, "{} schemas", schemas.len());
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            let responses = operation["responses"].as_object().expect("responses");
            let typed = responses
                .iter()
                .filter(|(status, _)| status.starts_with('2'))
                .map(|(_, r)| &r["content"]["application/json"]["schema"])
                .any(|schema| {
                    schema.get("items").is_some()
                        || schema
                            .get("$ref")
                            .is_some_and(|r| r != "#/components/schemas/Error")
                });
            assert!(typed, "{method} {path}: an untyped answer");
            if method == "post" && operation.get("requestBody").is_some() {
                let body = &operation["requestBody"]["content"]["application/json"]["schema"];
                assert!(
                    body.get("$ref").is_some(),
                    "{method} {path}: untyped body {body}"
                );
            }
        }
    }
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(
            schemas.contains_key(name),
            "{name} is referenced but not defined"
        );
    }
    for (method, path) in &documented {
        let path = path
            .replace("{id}", "1")
            .replace("{system}", "web")
            .replace("{name}", "nobody")
            .replace("{step}", "1");
        let body = if method == "POST" { "{}" } else { "" };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            api.token,
            body.len()
        );
        let answer = raw(&api.address, &request).await;
        assert!(
            !answer.contains("\"no-route\"") && !answer.contains("\"method-not-allowed\""),
            "{method} {path}: {answer}"
        );
    }
}
