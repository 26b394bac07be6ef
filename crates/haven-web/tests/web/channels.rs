//! Notification channels against real receivers on loopback: an SMTP
//! server (aiosmtpd) that requires STARTTLS and authentication and
//! parses the mail; an HTTP listener that verifies webhook signatures and
//! takes Slack and Teams payloads; failover from a channel that refuses
//! connections; syslog receivers over UDP, TCP and TLS.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use haven_model::alerts::Notification;
use haven_model::catalog::watch::{Channel, ChannelKind, MaybeSecret, SmtpSecurity};
use haven_model::catalog::{Located, Origin, SecretRef};
use haven_ops::clock::{Clock, SystemClock};
use haven_ops::delivery::{
    self, Message, MessageContext, Notifier, SIGNATURE_HEADER, TIMESTAMP_HEADER, Templates,
};
use haven_ops::delivery::{Event, Exporter};
use haven_ops::instance::{ExportSettings, SyslogTarget};
use haven_store::{SqliteStore, Store};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

fn channel(id: &str, kind: ChannelKind) -> Channel {
    Channel {
        id: Located::new(id.into(), Origin::default()),
        kind,
        retries: 1,
        retry_delay: SignedDuration::from_millis(50),
        timeout: SignedDuration::from_secs(10),
        subject: None,
        body: None,
    }
}

fn message() -> (Message, MessageContext) {
    let context = MessageContext::test("test", Timestamp::now());
    let message = Templates::default()
        .render(None, &context)
        .expect("renders");
    (message, context)
}

/// Python with aiosmtpd: the venv scripts/test.sh prepares, or python3.
fn python() -> String {
    std::env::var("HAVEN_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A test server written in Python (tests/support/): its first line is
/// JSON with `port` and `certificate`, then one JSON line per thing seen.
struct PythonServer {
    child: Child,
    lines: BufReader<ChildStdout>,
    port: u16,
    certificate: String,
}

impl PythonServer {
    fn start(name: &str, dir: &std::path::Path) -> PythonServer {
        let script = format!("{}/tests/support/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(python())
            .arg(&script)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {} (set HAVEN_TEST_PYTHON to a Python with aiosmtpd; scripts/test.sh does): {e}", python())
            });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        lines
            .read_line(&mut first)
            .expect("the test server's first line");
        let ready: Value = serde_json::from_str(&first).unwrap_or_else(|e| {
            panic!("{name} did not start ({e}): {first:?}; are aiosmtpd and cryptography installed for {}?", python())
        });
        PythonServer {
            child,
            lines,
            port: u16::try_from(ready["port"].as_u64().expect("port")).expect("port"),
            certificate: ready["certificate"].as_str().expect("certificate").into(),
        }
    }

    /// The next thing it saw (blocks until it comes or the server ends).
    fn next(&mut self) -> Value {
        let mut line = String::new();
        self.lines
            .read_line(&mut line)
            .expect("a line from the test server");
        serde_json::from_str(&line).expect("JSON from the test server")
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn email(server: &PythonServer, password_file: &std::path::Path, trust: bool) -> Channel {
    channel(
        "ops-mail",
        ChannelKind::Email {
            smtp: format!("127.0.0.1:{}", server.port),
            security: SmtpSecurity::Starttls,
            username: Some("haven".into()),
            password: Some(SecretRef::File(password_file.display().to_string())),
            from: "haven@example.org".into(),
            to: vec!["ops@example.org".into(), "oncall@example.org".into()],
            ca_file: trust.then(|| server.certificate.clone()),
        },
    )
}

#[tokio::test]
async fn mail_goes_over_starttls_with_authentication_and_is_parsed_by_a_real_server() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = PythonServer::start("smtp_server.py", dir.path());
    let password = dir.path().join("smtp.pw");
    std::fs::write(&password, "s3cret\n").expect("password");
    let (message, context) = message();

    delivery::deliver(
        &email(&server, &password, true),
        &message,
        &context,
        Timestamp::now(),
    )
    .await
    .expect("delivered");
    let mail = server.next();
    assert_eq!(mail["subject"], message.subject.as_str());
    assert!(
        mail["body"]
            .as_str()
            .expect("body")
            .contains("if you read this, the channel works")
    );
    assert_eq!(mail["from"], "haven@example.org");
    assert_eq!(
        mail["to"],
        serde_json::json!(["ops@example.org", "oncall@example.org"])
    );
    assert_eq!(mail["tls"], true, "STARTTLS was used");
    assert_eq!(mail["authenticated"], true);

    // A wrong password is refused, and the error does not echo it.
    let wrong = dir.path().join("wrong.pw");
    std::fs::write(&wrong, "hunter2\n").expect("password");
    let e = delivery::deliver(
        &email(&server, &wrong, true),
        &message,
        &context,
        Timestamp::now(),
    )
    .await
    .expect_err("refused");
    assert!(e.0.contains("535"), "the server's refusal: {e}");
    assert!(!e.0.contains("hunter2"), "{e}");
    // A certificate nobody vouches for is refused: STARTTLS verifies.
    let e = delivery::deliver(
        &email(&server, &password, false),
        &message,
        &context,
        Timestamp::now(),
    )
    .await
    .expect_err("untrusted certificate");
    assert!(
        e.0.to_lowercase().contains("certificate") || e.0.contains("TLS"),
        "{e}"
    );
}

#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>,
}

async fn receive(
    State(r): State<Received>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    r.requests
        .lock()
        .expect("lock")
        .push((uri.path().to_string(), headers, body));
    "ok"
}

async fn http_receiver() -> (String, Received) {
    let received = Received::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/slack", post(receive))
        .route("/teams", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}"), received)
}

/// Verify a webhook like a receiver would: HMAC-SHA256 over
/// `timestamp.body`, and a timestamp no older than five minutes.
fn verify(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let ts = headers
        .get(TIMESTAMP_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or("no timestamp")?;
    if (Timestamp::now().as_second() - ts).abs() > 300 {
        return Err("stale timestamp (replay?)".into());
    }
    let sig = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .ok_or("no signature")?;
    let tag = hex::decode(sig).map_err(|e| e.to_string())?;
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(body);
    aws_lc_rs::hmac::verify(&key, &signed, &tag).map_err(|_| "bad signature".to_string())
}

#[tokio::test]
async fn webhooks_are_signed_and_slack_and_teams_get_their_payloads() {
    let (base, received) = http_receiver().await;
    let dir = tempfile::tempdir().expect("dir");
    let key = dir.path().join("hook.key");
    std::fs::write(&key, "whsec-test-key\n").expect("key");
    let (message, context) = message();
    let hook = channel(
        "hook",
        ChannelKind::Webhook {
            url: MaybeSecret::Plain(format!("{base}/hook")),
            secret: Some(SecretRef::File(key.display().to_string())),
        },
    );
    let url_file = dir.path().join("slack.url");
    std::fs::write(&url_file, format!("{base}/slack\n")).expect("url");
    let slack = channel(
        "chat",
        ChannelKind::Slack {
            url: MaybeSecret::Secret(SecretRef::File(url_file.display().to_string())),
        },
    );
    let teams = channel(
        "teams",
        ChannelKind::Teams {
            url: MaybeSecret::Plain(format!("{base}/teams")),
        },
    );
    for c in [&hook, &slack, &teams] {
        delivery::deliver(c, &message, &context, Timestamp::now())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", c.id.value));
    }
    let requests = received.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 3);
    let (path, headers, body) = &requests[0];
    assert_eq!(path, "/hook");
    verify(b"whsec-test-key", headers, body).expect("the signature verifies");
    assert!(verify(b"another-key", headers, body).is_err());
    let mut tampered = body.to_vec();
    tampered[0] = b' ';
    assert!(verify(b"whsec-test-key", headers, &tampered).is_err());
    let doc: Value = serde_json::from_slice(body).expect("json");
    assert_eq!(doc["subject"], message.subject.as_str());
    assert_eq!(doc["alert"]["rule"], "notify-test");
    let slack_doc: Value = serde_json::from_slice(&requests[1].2).expect("json");
    assert!(
        slack_doc["text"]
            .as_str()
            .expect("text")
            .contains(&message.subject)
    );
    let teams_doc: Value = serde_json::from_slice(&requests[2].2).expect("json");
    assert_eq!(
        teams_doc["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(
        teams_doc["attachments"][0]["content"]["type"],
        "AdaptiveCard"
    );
}

#[tokio::test]
async fn a_channel_that_refuses_connections_fails_over_to_the_next_and_every_attempt_is_recorded() {
    let (base, received) = http_receiver().await;
    // A port nothing listens on: bound, then closed.
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}/hook", dead.local_addr().expect("address"));
    drop(dead);
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("haven.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("store"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut broken = channel(
        "pager",
        ChannelKind::Webhook {
            url: MaybeSecret::Plain(dead_url),
            secret: None,
        },
    );
    broken.retries = 2;
    let working = channel(
        "chat",
        ChannelKind::Slack {
            url: MaybeSecret::Plain(format!("{base}/slack")),
        },
    );
    let notifier = Notifier::new(
        Arc::clone(&store),
        clock,
        vec![broken, working],
        Templates::default(),
        Arc::new(Exporter::none()),
    );
    let started = Instant::now();
    let report = notifier
        .send(&Notification {
            alert: None,
            step: Some(0),
            channels: vec!["pager".into(), "chat".into()],
        })
        .await;
    assert_eq!(report.delivered_by.as_deref(), Some("chat"));
    let shape: Vec<(String, u32, bool)> = report
        .attempts
        .iter()
        .map(|a| (a.channel.clone(), a.attempt, a.ok))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("pager".into(), 1, false),
            ("pager".into(), 2, false),
            ("pager".into(), 3, false),
            ("chat".into(), 1, true),
        ]
    );
    let refused = report.attempts[0].error.as_deref().unwrap_or_default();
    assert!(refused.contains("onnect"), "{refused}");
    // Backoff: 50 ms, then 100 ms, before failing over.
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(received.requests.lock().expect("lock").len(), 1);
    let recorded = store.deliveries(None).await.expect("deliveries");
    assert_eq!(recorded.len(), 4, "every attempt is recorded");
}

fn syslog_event() -> Event {
    Event::new("alert-opened", "alert", "process", Timestamp::now())
        .message("backup of erp-db/db failed")
        .level("critical")
        .haven("alert", serde_json::json!({ "id": 42 }))
}

/// RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
fn check_rfc5424(message: &str) -> Value {
    let parts: Vec<&str> = message.splitn(8, ' ').collect();
    assert_eq!(parts.len(), 8, "{message}");
    assert_eq!(parts[0], "<130>1", "local0.crit: {message}");
    let t: Timestamp = parts[1]
        .parse()
        .unwrap_or_else(|e| panic!("{:?}: {e}", parts[1]));
    assert!(parts[1].ends_with('Z'), "UTC: {message}");
    assert!(Timestamp::now() - SignedDuration::from_mins(5) < t);
    assert_eq!(parts[3], "haven-test");
    assert_eq!(parts[5], "alert-opened");
    assert_eq!(parts[6], "-");
    let doc: Value = serde_json::from_str(parts[7]).expect("JSON message");
    assert_eq!(doc["haven"]["alert"]["id"], 42);
    doc
}

#[test]
fn events_reach_syslog_over_udp_and_tcp() {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    udp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let tcp = TcpListener::bind("127.0.0.1:0").expect("tcp");
    let settings = |target: SyslogTarget| ExportSettings {
        file: None,
        syslog: Some(target),
        app_name: "haven-test".into(),
        ca_file: None,
    };
    let mut exporter = Exporter::start(&settings(
        SyslogTarget::parse(&format!("udp://{}", udp.local_addr().expect("addr"))).expect("target"),
    ));
    exporter.emit(syslog_event());
    exporter.close();
    let mut buf = [0u8; 65_536];
    let (n, _) = udp.recv_from(&mut buf).expect("a datagram");
    check_rfc5424(std::str::from_utf8(&buf[..n]).expect("utf-8"));

    let mut exporter = Exporter::start(&settings(
        SyslogTarget::parse(&format!("tcp://{}", tcp.local_addr().expect("addr"))).expect("target"),
    ));
    exporter.emit(syslog_event());
    exporter.emit(syslog_event());
    exporter.close();
    let (mut stream, _) = tcp.accept().expect("a connection");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut all = String::new();
    stream.read_to_string(&mut all).expect("frames");
    assert_eq!(octet_counted_frames(&all), 2);
}

/// Check each octet-counted frame (RFC 6587 / RFC 5425: `LEN SP MSG`);
/// returns how many there were.
fn octet_counted_frames(all: &str) -> usize {
    let mut rest = all;
    let mut frames = 0;
    while !rest.is_empty() {
        let (len, tail) = rest.split_once(' ').expect("a length");
        let len: usize = len.parse().expect("a number");
        check_rfc5424(&tail[..len]);
        rest = &tail[len..];
        frames += 1;
    }
    frames
}

#[test]
fn events_reach_syslog_over_tls_only_when_the_receiver_is_trusted() {
    let dir = tempfile::tempdir().expect("dir");
    let mut receiver = PythonServer::start("syslog_tls_server.py", dir.path());
    let target =
        SyslogTarget::parse(&format!("tls://127.0.0.1:{}", receiver.port)).expect("target");
    let settings = |ca_file: Option<std::path::PathBuf>| ExportSettings {
        file: None,
        syslog: Some(target.clone()),
        app_name: "haven-test".into(),
        ca_file,
    };

    // A receiver signed by an unknown CA is refused: nothing is sent in
    // clear text instead (two attempts, both refused at the handshake).
    let mut exporter = Exporter::start(&settings(None));
    exporter.emit(syslog_event());
    exporter.close();
    for _ in 0..2 {
        let refused = receiver.next();
        assert!(
            refused["handshake_error"].is_string(),
            "the handshake must fail: {refused}"
        );
    }

    // Trusting the receiver's CA: two frames over one connection, ended
    // with close_notify (the receiver reads to a clean end).
    let mut exporter = Exporter::start(&settings(Some(receiver.certificate.clone().into())));
    exporter.emit(syslog_event());
    exporter.emit(syslog_event());
    exporter.close();
    let got = receiver.next();
    let all = got["received"]
        .as_str()
        .unwrap_or_else(|| panic!("frames over TLS: {got}"));
    assert_eq!(octet_counted_frames(all), 2);
}

#[test]
fn events_append_to_a_json_lines_file() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("events.jsonl");
    let mut exporter = Exporter::start(&ExportSettings {
        file: Some(file.clone()),
        syslog: None,
        app_name: "haven".into(),
        ca_file: None,
    });
    exporter.emit(syslog_event());
    exporter.emit(syslog_event().user("ana"));
    exporter.close();
    let text = std::fs::read_to_string(&file).expect("file");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["user"]["name"], "ana");
    assert_eq!(lines[0]["ecs"]["version"], "8.11.0");
}
