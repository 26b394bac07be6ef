//! Who may do what, through a real server: every API route × every role
//! × scope (a service owner on its own team's service and on another's),
//! and four eyes from the command line acting with users' tokens against
//! the server — a tier 1 recovery that waits for a second person, runs
//! once approved and restores real data; a break-glass change that
//! stands as a critical alert until reviewed.

use std::path::PathBuf;

use haven_model::access::{Permission, Role, allowed, owner_may};
use haven_web::access::{ROUTES, Reach};
use serde_json::{Value, json};

use crate::helpers::{Workspace, parse_json};
use crate::server::{Server, api_send, start_server_in, wait_for};

/// A data dir whose catalog has two teams' services: `web` (team shop)
/// and `ledger` (team finance), tier 3, each on its own system whose
/// backup fails (its path does not exist: each opens an alert); and
/// `payments` (finance, tier 1) on a system with real files.
pub(crate) struct Estate {
    pub(crate) ws: Workspace,
    pub(crate) data: PathBuf,
}

impl Estate {
    pub(crate) fn new(settings: &str) -> Estate {
        let ws = Workspace::new();
        ws.init();
        let data = ws.path("data-dir");
        std::fs::create_dir_all(data.join("catalog")).expect("mkdir");
        std::fs::create_dir_all(ws.path("payments")).expect("mkdir");
        std::fs::write(ws.path("payments/ledger.csv"), "id,amount\n1,100\n").expect("write");
        std::fs::write(
            data.join("haven.toml"),
            format!("listen = \"127.0.0.1:0\"\nevaluate_every = \"1s\"\n{settings}"),
        )
        .expect("write");
        let catalog = format!(
            r#"
[[team]]
id = "shop"

[[team]]
id = "finance"

[[service]]
id = "web"
owner = "shop"
tier = 3
depends_on = ["web-files"]

[[service]]
id = "ledger"
owner = "finance"
tier = 3
depends_on = ["ledger-files"]

[[service]]
id = "payments"
owner = "finance"
tier = 1
rpo = "1d"
rto = "4h"
mtd = "1d"
depends_on = ["payments-files"]

[service.impact]
per_hour = 12500
currency = "EUR"

[[system]]
id = "web-files"
kind = "file-server"
policy = "daily"

[[system.backup_set]]
paths = ["{missing}/web"]

[[system]]
id = "ledger-files"
kind = "file-server"
policy = "daily"

[[system.backup_set]]
paths = ["{missing}/ledger"]

[[system]]
id = "payments-files"
kind = "file-server"
policy = "daily"

[[system.backup_set]]
paths = ["{payments}"]

[[policy]]
id = "daily"
schedule = "0 3 * * *"
timezone = "UTC"
repository = "main"

[[repository]]
id = "main"
url = "{repo}"
password = "env:HAVEN_PASSWORD"
"#,
            missing = ws.path("missing").display(),
            payments = ws.path("payments").display(),
            repo = ws.repo().display(),
        );
        std::fs::write(data.join("catalog/catalog.toml"), catalog).expect("write");
        Estate { ws, data }
    }

    /// `haven --data-dir DATA ARGS` (with `stdin`, and `HAVEN_TOKEN` when
    /// given).
    pub(crate) fn haven(
        &self,
        args: &[&str],
        stdin: &str,
        token: Option<&str>,
    ) -> std::process::Output {
        let mut cmd = self.ws.haven();
        cmd.arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .env_remove("HAVEN_TOKEN")
            .write_stdin(stdin.to_string());
        if let Some(token) = token {
            cmd.env("HAVEN_TOKEN", token);
        }
        cmd.output().expect("haven")
    }

    /// Add user `name` with `roles` and `teams`; its token's secret.
    pub(crate) fn user(&self, name: &str, roles: &[Role], teams: &[&str]) -> String {
        let mut args = vec!["--json", "user", "add", name, "--password-stdin"];
        for role in roles {
            args.extend(["--role", role.as_str()]);
        }
        for team in teams {
            args.extend(["--team", team]);
        }
        parse_json(&self.haven(&args, "a long enough passphrase\n", None), 0);
        let mut args = vec!["--json", "token", "create", "cli", "--user", name];
        for role in roles {
            args.extend(["--role", role.as_str()]);
        }
        let created = parse_json(&self.haven(&args, "", None), 0);
        created["secret"].as_str().expect("secret").to_string()
    }

    pub(crate) fn start(&self) -> (Server, String, String) {
        let server = start_server_in(&self.data, &self.ws.path("server.log"), "077", &[]);
        let address = std::fs::read_to_string(self.data.join("server.addr")).expect("addr");
        let token = std::fs::read_to_string(self.data.join("api-token")).expect("token");
        (server, address.trim().to_string(), token.trim().to_string())
    }
}

pub(crate) fn call(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> (u16, Value) {
    let body = if method == "POST" {
        body.to_string()
    } else {
        String::new()
    };
    let (status, answer) = api_send(address, method, &format!("/api/v1{path}"), token, &body);
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

/// Which scope a route is asked in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// A route on the instance as a whole.
    Instance,
    /// A service owner's own team's service (or its system).
    Own,
    /// Another team's.
    Other,
}

/// What each scope's request names: a system, a service, an open alert
/// and a recorded recovery run of it.
struct Subject {
    system: &'static str,
    service: &'static str,
    alert: i64,
    run: i64,
}

/// The path and body of `pattern` asked about `subject`.
fn request_for(method: &str, pattern: &str, subject: &Subject) -> (String, Value) {
    let id = if pattern.starts_with("/alerts/") {
        subject.alert
    } else if pattern.starts_with("/recoveries/") {
        subject.run
    } else {
        999_999
    };
    let id = if pattern.starts_with("/services/") {
        subject.service.to_string()
    } else {
        id.to_string()
    };
    let path = pattern
        .replace("{id}", &id)
        .replace("{system}", subject.system)
        .replace("{name}", "nobody")
        .replace("{step}", "1");
    let by = json!("ignored");
    let body = match (method, pattern) {
        ("POST", "/drills") => json!({"system": subject.system, "by": by}),
        ("POST", "/service-drills") => json!({"service": subject.service, "by": by}),
        ("POST", "/recoveries") => json!({
            "selection": {"services": [subject.service]},
            "target": {"kind": "original"},
            "by": by,
        }),
        ("POST", "/recoveries/{id}/resume") => json!({"run": 0, "by": by}),
        ("POST", "/recoveries/{id}/abandon") => json!({"run": 0, "by": by, "reason": "test"}),
        ("POST", "/recoveries/{id}/steps/{step}/decide") => {
            json!({"run": 0, "step": 1, "decision": "confirm", "by": by})
        }
        _ => json!({}),
    };
    (path, body)
}

/// Does `role` get past the access checks for a route needing `needs`,
/// reaching as `reach`, asked in `scope`?
fn expected(role: Role, needs: Permission, reach: Reach, scope: Scope) -> bool {
    allowed(&[role], needs)
        || (reach == Reach::Owned
            && role == Role::ServiceOwner
            && owner_may(needs)
            && scope == Scope::Own)
}

/// Every route × every role × scope: allowed where the table (and, for a
/// service owner, its team's ownership) says, refused with 403
/// everywhere else; the instance's own token passes everywhere.
#[test]
fn every_route_is_allowed_or_refused_by_role_and_scope_as_the_table_says() {
    let estate = Estate::new("");
    let tokens: Vec<(Role, String)> = Role::ALL
        .into_iter()
        .map(|role| {
            let name = format!("user-{}", role.as_str());
            (role, estate.user(&name, &[role], &["shop"]))
        })
        .collect();
    let (_server, address, instance) = estate.start();

    // Each service's backup fails (an alert) and a recovery of each is
    // recorded (refused by pre-flight: there is no snapshot).
    let mut subjects = Vec::new();
    for (system, service) in [("web-files", "web"), ("ledger-files", "ledger")] {
        let (status, _) = call(
            &address,
            "POST",
            &format!("/systems/{system}/run"),
            &instance,
            &json!({}),
        );
        assert_eq!(status, 202);
        let mut alert = None;
        wait_for(
            &format!("the failed backup of {system} to open an alert"),
            || {
                let (_, alerts) = call(&address, "GET", "/alerts", &instance, &Value::Null);
                alert = alerts.as_array().and_then(|all| {
                    all.iter()
                        .find(|a| a["subject"]["service"] == service && a["rule"] == "job-failed")
                        .and_then(|a| a["id"].as_i64())
                });
                alert.is_some()
            },
        );
        let (status, run) = call(
            &address,
            "POST",
            "/recoveries",
            &instance,
            &json!({"selection": {"services": [service]}, "target": {"kind": "original"}, "by": "x"}),
        );
        assert_eq!(status, 201, "{run}");
        subjects.push(Subject {
            system,
            service,
            alert: alert.expect("an alert"),
            run: run["id"].as_i64().expect("a run"),
        });
    }
    let (own, other) = (&subjects[0], &subjects[1]);

    let mut checked = 0;
    let mut samples = Vec::new();
    for (method, pattern, needs, reach) in ROUTES {
        let scopes: &[(Scope, &Subject)] = match reach {
            Reach::Owned => &[(Scope::Own, own), (Scope::Other, other)],
            Reach::Instance => &[(Scope::Instance, own)],
        };
        for (scope, subject) in scopes {
            let (path, body) = request_for(method, pattern, subject);
            for (role, token) in &tokens {
                let (status, answer) = call(&address, method, &path, token, &body);
                let what = format!("{} {method} {path} ({scope:?})", role.as_str());
                if expected(*role, *needs, *reach, *scope) {
                    assert_ne!(status, 403, "{what} is refused: {answer}");
                } else {
                    assert_eq!(status, 403, "{what} got {status}: {answer}");
                    assert_eq!(answer["error"]["code"], "forbidden", "{what}");
                }
                checked += 1;
            }
            let (status, answer) = call(&address, method, &path, &instance, &body);
            assert_ne!(status, 403, "the instance token: {method} {path}: {answer}");
            samples.push(
                json!({"method": method, "pattern": pattern, "status": status, "answer": answer}),
            );
        }
    }
    // Every answer holds to what the OpenAPI document says of its route.
    answers_match_the_openapi_document(&estate, &address, &samples);
    let owned = ROUTES.iter().filter(|r| r.3 == Reach::Owned).count();
    assert_eq!(checked, (ROUTES.len() + owned) * Role::ALL.len());
    assert!(owned >= 9, "the owned routes: {owned}");
}

/// Check the server's OpenAPI document (openapi-spec-validator) and
/// `samples` (real answers) against it, with the Python checker beside
/// this file.
fn answers_match_the_openapi_document(estate: &Estate, address: &str, samples: &[Value]) {
    let (status, document) = crate::server::api_send(address, "GET", "/api/openapi.json", "", "");
    assert_eq!(status, 200);
    let answered = samples
        .iter()
        .filter(|s| s["status"].as_u64().is_some_and(|c| c < 300))
        .count();
    assert!(answered >= 25, "{answered} routes answered with success");
    let document_file = estate.ws.path("openapi.json");
    let samples_file = estate.ws.path("answers.json");
    std::fs::write(&document_file, document).expect("write");
    std::fs::write(&samples_file, Value::Array(samples.to_vec()).to_string()).expect("write");
    let check = |samples: &std::path::Path| {
        let python = std::env::var("HAVEN_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let checker =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/openapi_check.py");
        std::process::Command::new(&python)
            .arg(&checker)
            .arg(&document_file)
            .arg(samples)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python} ({e}): scripts/test.sh installs openapi-spec-validator; or set HAVEN_TEST_PYTHON"))
    };
    let out = check(&samples_file);
    assert!(
        out.status.success(),
        "answers that do not hold to the OpenAPI document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The check is not blind: a status whose services are not a list,
    // and a job without its id, are found.
    let wrong = json!([
        {"method": "GET", "pattern": "/status", "status": 200, "answer": {"services": "all fine"}},
        {"method": "GET", "pattern": "/jobs/{id}", "status": 200, "answer": {"system": "web-files"}},
    ]);
    let wrong_file = estate.ws.path("wrong.json");
    std::fs::write(&wrong_file, wrong.to_string()).expect("write");
    let out = check(&wrong_file);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("GET /status (200)") && said.contains("GET /jobs/{id} (200)"),
        "{said}"
    );
}

/// A tier 1 recovery asked from the command line with a user's token
/// against the server waits for a second person; its requester cannot
/// approve it; another user's approval runs it, as its requester asked,
/// and the data comes back.
#[test]
fn a_tier_one_recovery_waits_for_a_second_person_and_runs_once_approved() {
    let estate = Estate::new("[access]\nfour_eyes = true\n");
    let ana = estate.user(
        "ana",
        &[Role::RestoreOperator, Role::Approver],
        &["finance"],
    );
    let bo = estate.user("bo", &[Role::Approver], &[]);
    let (_server, address, instance) = estate.start();
    let (status, _) = call(
        &address,
        "POST",
        "/systems/payments-files/run",
        &instance,
        &json!({}),
    );
    assert_eq!(status, 202);
    wait_for("the payments backup", || {
        let (_, jobs) = call(&address, "GET", "/jobs", &instance, &Value::Null);
        jobs.as_array().is_some_and(|all| {
            all.iter()
                .any(|j| j["system"] == "payments-files" && j["outcome"] == "success")
        })
    });
    let target = estate.ws.path("recovered");
    let alternate = format!("alternate:{}", target.display());
    let server = ["--server", &address];

    // Ana asks: it waits (exit 4), nothing is restored.
    let asked = estate.haven(
        &[
            &server[..],
            &[
                "recover",
                "--services",
                "payments",
                "--target",
                &alternate,
                "--reason",
                "ransomware drill",
            ],
        ]
        .concat(),
        "",
        Some(&ana),
    );
    let stderr = String::from_utf8_lossy(&asked.stderr);
    assert_eq!(asked.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("approval-required") || stderr.contains("second person"),
        "{stderr}"
    );
    assert!(stderr.contains("payments (tier 1)"), "{stderr}");
    assert!(!target.exists(), "nothing restored before approval");
    let listed = parse_json(
        &estate.haven(
            &[
                &server[..],
                &["--json", "request", "list", "--state", "pending"],
            ]
            .concat(),
            "",
            Some(&ana),
        ),
        0,
    );
    let request = &listed.as_array().expect("a list")[0];
    assert!(
        request["requested_by"]
            .as_str()
            .expect("by")
            .starts_with("user:ana"),
        "{request}"
    );
    let id = request["id"].as_i64().expect("id").to_string();

    // Not by Ana herself.
    let own = estate.haven(
        &[&server[..], &["request", "approve", &id]].concat(),
        "",
        Some(&ana),
    );
    assert_eq!(own.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&own.stderr).contains("different user"));

    // Bo approves: the recovery runs (the server executes it; the command
    // follows it to its end) and the file is back.
    let approved = estate.haven(
        &[
            &server[..],
            &["request", "approve", &id, "--note", "incident 42 confirmed"],
        ]
        .concat(),
        "",
        Some(&bo),
    );
    assert_eq!(
        approved.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let restored = target.join("payments-files").join(
        estate
            .ws
            .path("payments/ledger.csv")
            .strip_prefix("/")
            .expect("absolute"),
    );
    assert_eq!(
        std::fs::read_to_string(&restored).expect("restored"),
        "id,amount\n1,100\n"
    );
    let shown = parse_json(
        &estate.haven(
            &[&server[..], &["--json", "request", "show", &id]].concat(),
            "",
            Some(&ana),
        ),
        0,
    );
    assert_eq!(shown["state"], "approved");
    assert!(
        shown["decision"]["by"]
            .as_str()
            .expect("by")
            .starts_with("user:bo")
    );
    let run: i64 = shown["outcome"]
        .as_str()
        .and_then(|o| o.strip_prefix("recovery:"))
        .and_then(|n| n.parse().ok())
        .expect("the run it started");
    let (_, view) = call(
        &address,
        "GET",
        &format!("/recoveries/{run}"),
        &instance,
        &Value::Null,
    );
    assert!(
        view["by"].as_str().expect("by").starts_with("user:ana"),
        "the run is Ana's: {view}"
    );
    assert_eq!(view["state"], "completed");
}

/// An admin's break-glass change runs at once, marked in the audit log,
/// and stands as a critical alert until someone reviews it.
#[test]
fn break_glass_raises_a_critical_alert_until_reviewed() {
    let estate = Estate::new("[access]\nfour_eyes = true\n");
    let root = estate.user("root-admin", &[Role::Admin], &[]);
    let bo = estate.user("bo", &[Role::Approver], &[]);
    let victim = estate.user("cy", &[Role::Operator], &[]);
    let (_server, address, instance) = estate.start();
    let (_, tokens) = call(&address, "GET", "/tokens", &instance, &Value::Null);
    let victim_id = tokens
        .as_array()
        .and_then(|all| all.iter().find(|t| t["owner"]["name"] == "cy"))
        .and_then(|t| t["id"].as_str())
        .expect("cy's token")
        .to_string();
    let server = ["--server", &address];

    let revoked = estate.haven(
        &[
            &server[..],
            &[
                "--break-glass",
                "IdP down, token leaked",
                "token",
                "revoke",
                &victim_id,
            ],
        ]
        .concat(),
        "",
        Some(&root),
    );
    assert_eq!(
        revoked.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let (status, _) = call(&address, "GET", "/status", &victim, &Value::Null);
    assert_eq!(status, 401, "the token is revoked at once");

    let mut alert = Value::Null;
    wait_for("the break-glass alert", || {
        let (_, alerts) = call(&address, "GET", "/alerts", &instance, &Value::Null);
        alert = alerts
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|a| a["rule"] == "break-glass" && a["state"] != "resolved")
                    .cloned()
            })
            .unwrap_or(Value::Null);
        !alert.is_null()
    });
    assert_eq!(alert["severity"], "critical");
    let request = alert["facts"]["request"]
        .as_str()
        .expect("request")
        .to_string();
    let (_, entries) = call(&address, "GET", "/audit/entries", &instance, &Value::Null);
    let marked = entries
        .as_array()
        .and_then(|all| all.iter().find(|e| e["action"] == "break-glass").cloned())
        .expect("marked in the log");
    assert!(
        marked["actor"]
            .as_str()
            .expect("actor")
            .starts_with("user:root-admin")
    );
    assert_eq!(marked["role"], "admin");
    assert!(
        marked["origin"]
            .as_str()
            .expect("origin")
            .starts_with("api 127.0.0.1:")
    );

    let reviewed = estate.haven(
        &[
            &server[..],
            &[
                "request",
                "review",
                &request,
                "--note",
                "rotated every token of cy",
            ],
        ]
        .concat(),
        "",
        Some(&bo),
    );
    assert_eq!(
        reviewed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&reviewed.stderr)
    );
    wait_for("the break-glass alert to resolve", || {
        let (_, alerts) = call(&address, "GET", "/alerts", &instance, &Value::Null);
        alerts.as_array().is_some_and(|all| {
            all.iter()
                .filter(|a| a["rule"] == "break-glass")
                .all(|a| a["state"] == "resolved")
        })
    });
}

/// A raw HTTP exchange: the status, the response's headers and body.
pub(crate) fn http(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    let mut extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        extra.push_str("Content-Type: application/json\r\n");
    }
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    (status, head.to_string(), body.to_string())
}

/// A console login sets an HttpOnly, SameSite=Strict session cookie
/// (Secure over HTTPS); a change made with it needs the session's CSRF
/// token; logging out ends it; a burst of failed logins raises the
/// `security` alert; no password or session secret is left in the
/// server's log, the audit log or an answer.
#[test]
fn console_sessions_need_their_csrf_token_and_failed_logins_raise_a_security_alert() {
    let estate = Estate::new(
        "[access]\nfailure_burst = 3\nfailure_window = \"10m\"\ntotp = \"optional\"\n\n[export]\nfile = \"events.jsonl\"\n",
    );
    let password = "a long enough passphrase";
    estate.user("ana", &[Role::Operator], &[]);
    let (_server, address, instance) = estate.start();
    let login = json!({"name": "ana", "password": password}).to_string();

    let (status, head, body) = http(&address, "POST", "/auth/login", &[], &login);
    assert_eq!(status, 200, "{body}");
    let cookie_line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie_line.contains(attribute), "{cookie_line}");
    }
    assert!(!cookie_line.contains("Secure"), "plain HTTP: {cookie_line}");
    let secret = cookie_line
        .split_once("haven_session=")
        .and_then(|(_, rest)| rest.split(';').next())
        .expect("the secret")
        .to_string();
    assert!(!body.contains(&secret), "the secret is in the cookie only");
    let answer: Value = serde_json::from_str(&body).expect("json");
    let csrf = answer["csrf_token"].as_str().expect("csrf").to_string();
    let cookie = format!("haven_session={secret}");

    let (status, _, _) = http(
        &address,
        "GET",
        "/api/v1/status",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(status, 200, "a read needs the cookie only");
    let run = "/api/v1/systems/web-files/run";
    let (status, _, body) = http(&address, "POST", run, &[("Cookie", &cookie)], "{}");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("csrf-rejected"), "{body}");
    let forged = [("Cookie", cookie.as_str()), ("X-CSRF-Token", "0000")];
    assert_eq!(http(&address, "POST", run, &forged, "{}").0, 403);
    let good = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    assert_eq!(http(&address, "POST", run, &good, "{}").0, 202);

    let (_, head, _) = http(
        &address,
        "POST",
        "/auth/login",
        &[("X-Forwarded-Proto", "https")],
        &login,
    );
    assert!(head.contains("; Secure"), "over HTTPS: {head}");

    assert_eq!(
        http(&address, "POST", "/auth/logout", &[("Cookie", &cookie)], "").0,
        403
    );
    assert_eq!(http(&address, "POST", "/auth/logout", &good, "").0, 204);
    assert_eq!(
        http(
            &address,
            "GET",
            "/api/v1/status",
            &[("Cookie", &cookie)],
            ""
        )
        .0,
        401
    );

    // Three failed logins within the window: the security alert.
    for name in ["ana", "bo", "root"] {
        let wrong = json!({"name": name, "password": "guess guess guess"}).to_string();
        let (status, _, body) = http(&address, "POST", "/auth/login", &[], &wrong);
        assert!(matches!(status, 401 | 429), "{status} {body}");
    }
    wait_for("the security alert", || {
        let (_, alerts) = call(&address, "GET", "/alerts", &instance, &Value::Null);
        alerts.as_array().is_some_and(|all| {
            all.iter()
                .any(|a| a["rule"] == "security" && a["state"] == "open")
        })
    });

    // A TOTP seed is shown once, to the admin who enrols it.
    let enrolled = parse_json(
        &estate.haven(
            &["--server", &address, "--json", "user", "totp", "ana"],
            "",
            None,
        ),
        0,
    );
    let seed = enrolled["secret"].as_str().expect("seed").to_string();
    let (_, users) = call(&address, "GET", "/users", &instance, &Value::Null);
    assert_eq!(users[0]["totp"], true, "{users}");

    // Nothing secret is left behind: not in the audit log, the server's
    // log, the SIEM export, any other answer, or the database.
    let (_, entries) = call(&address, "GET", "/audit/entries", &instance, &Value::Null);
    let entries = entries.to_string();
    assert!(entries.contains("session.login") && entries.contains("session.logout"));
    assert!(entries.contains("user.totp"));
    let log = std::fs::read_to_string(estate.ws.path("server.log")).expect("log");
    let events = std::fs::read_to_string(estate.data.join("events.jsonl")).expect("events");
    assert!(events.contains("audit-checkpoint"), "the export is written");
    // The database file and its write-ahead log (pages not yet copied
    // back).
    let database: String = ["haven.db", "haven.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(estate.data.join(f)).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect();
    for (what, text) in [
        ("the audit log", &entries),
        ("the server's log", &log),
        ("the SIEM export", &events),
        ("the users", &users.to_string()),
        ("the database", &database),
    ] {
        for secret_text in [
            password,
            secret.as_str(),
            "guess guess guess",
            seed.as_str(),
        ] {
            assert!(!text.contains(secret_text), "{what} holds {secret_text}");
        }
    }
}

/// A real OpenID Connect provider on loopback (`oidc-provider-mock` from
/// PyPI, which scripts/test.sh installs), stopped on drop.
struct Provider {
    child: std::process::Child,
    address: String,
}

impl Provider {
    fn start() -> Provider {
        let python = std::env::var("HAVEN_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let port = free_port();
        let child = std::process::Command::new(&python)
            .args(["-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start oidc-provider-mock with {python} ({e}): scripts/test.sh installs it; or set HAVEN_TEST_PYTHON"));
        let mut provider = Provider {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        wait_for("the OpenID Connect provider", || {
            if let Ok(Some(status)) = provider.child.try_wait() {
                panic!("oidc-provider-mock exited with {status} (is it installed in {python}?)");
            }
            std::net::TcpStream::connect(&provider.address).is_ok()
                && http(
                    &provider.address,
                    "GET",
                    "/.well-known/openid-configuration",
                    &[],
                    "",
                )
                .0 == 200
        });
        provider
    }

    /// Let the provider know `sub`'s claims.
    fn user(&self, sub: &str, claims: &Value) {
        let path = format!("/users/{}", sub.replace('@', "%40"));
        let (status, _, body) = http(&self.address, "PUT", &path, &[], &claims.to_string());
        assert_eq!(status, 204, "{body}");
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
        .port()
}

/// A response header's value.
pub(crate) fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
}

/// Every cookie a response sets, as `name=value`.
pub(crate) fn cookies_of(head: &str) -> Vec<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.trim().split(';').next().map(str::to_string))
        .collect()
}

/// A browser's single sign-on through the provider as `sub`: Haven's
/// answer to the callback (status, headers, body).
fn sign_on(haven: &str, provider: &Provider, sub: &str) -> (u16, String, String) {
    let (status, head, body) = http(haven, "GET", "/auth/oidc/login", &[], "");
    assert_eq!(status, 303, "{body}");
    let to = header_of(&head, "location").expect("to the provider");
    let prefix = format!("http://{}", provider.address);
    let authorize = to
        .strip_prefix(&prefix)
        .expect("the provider's URL")
        .to_string();
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "PKCE: {authorize}"
    );
    let pending = cookies_of(&head)
        .into_iter()
        .find(|c| c.starts_with("haven_oidc="))
        .expect("the sign-on cookie");
    // The person picks who they are on the provider's form.
    let form = format!("sub={}", sub.replace('@', "%40"));
    let form_type = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, body) = http(&provider.address, "POST", &authorize, &form_type, &form);
    assert_eq!(status, 302, "{body}");
    let back = header_of(&head, "location").expect("back to Haven");
    let callback = back
        .split_once("/auth/oidc/callback")
        .map(|(_, query)| format!("/auth/oidc/callback{query}"))
        .expect("the callback");
    http(haven, "GET", &callback, &[("Cookie", &pending)], "")
}

/// Single sign-on against a real OpenID Connect provider: the
/// authorization code flow with PKCE; the provider's groups map to roles
/// and teams; a person whose groups have no role, a forged state and a
/// local account's name are refused.
#[test]
fn single_sign_on_maps_the_providers_groups_to_roles_and_teams() {
    let provider = Provider::start();
    let haven = format!("127.0.0.1:{}", free_port());
    let estate = Estate::new(&format!(
        r#"
[access.oidc]
issuer = "http://{provider}"
client_id = "haven"
client_secret = "env:HAVEN_TEST_OIDC_SECRET"
redirect_url = "http://{haven}/auth/oidc/callback"

[access.oidc.roles]
"haven-operators" = ["operator"]
"haven-auditors" = ["auditor"]

[access.oidc.teams]
"shop-people" = ["shop"]
"#,
        provider = provider.address,
    ));
    let settings = std::fs::read_to_string(estate.data.join("haven.toml")).expect("settings");
    std::fs::write(
        estate.data.join("haven.toml"),
        settings.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{haven}\"")),
    )
    .expect("settings");
    estate.user("bob", &[Role::Operator], &[]);
    provider.user(
        "alice@example.com",
        &json!({"email": "alice@example.com", "groups": ["haven-operators", "shop-people", "cafeteria"]}),
    );
    provider.user(
        "mallory@example.com",
        &json!({"email": "mallory@example.com", "groups": ["cafeteria"]}),
    );
    provider.user(
        "bob",
        &json!({"email": "bob", "groups": ["haven-operators"]}),
    );
    let _server = start_server_in(
        &estate.data,
        &estate.ws.path("server.log"),
        "077",
        &[("HAVEN_TEST_OIDC_SECRET", "client-secret-for-tests")],
    );
    let instance = std::fs::read_to_string(estate.data.join("api-token")).expect("token");
    let instance = instance.trim();

    let (status, head, body) = sign_on(&haven, &provider, "alice@example.com");
    assert_eq!(status, 303, "{body}");
    assert_eq!(header_of(&head, "location").as_deref(), Some("/"));
    let session = cookies_of(&head)
        .into_iter()
        .find(|c| c.starts_with("haven_session=hvs_"))
        .expect("a session");
    let (status, _, body) = http(&haven, "GET", "/auth/session", &[("Cookie", &session)], "");
    assert_eq!(status, 200, "{body}");
    let who: Value = serde_json::from_str(&body).expect("json");
    let actor = who["identity"]["actor"].as_str().expect("actor");
    assert!(actor.starts_with("user:alice@example.com (ses_"), "{actor}");
    assert_eq!(who["identity"]["roles"], json!(["operator"]));
    assert_eq!(who["identity"]["teams"], json!(["shop"]));
    assert_eq!(
        http(&haven, "GET", "/api/v1/status", &[("Cookie", &session)], "").0,
        200
    );
    let (_, users) = call(&haven, "GET", "/users", instance, &Value::Null);
    let alice = users
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|u| u["name"] == "alice@example.com")
                .cloned()
        })
        .expect("the account, made at sign-on");
    assert_eq!(alice["sso"], true);

    let (status, _, body) = sign_on(&haven, &provider, "mallory@example.com");
    assert_eq!(status, 401);
    assert!(body.contains("has a role in Haven"), "{body}");
    let (status, _, body) = sign_on(&haven, &provider, "bob");
    assert_eq!(status, 401);
    assert!(body.contains("local user"), "{body}");

    // A callback whose state is not the browser's own is refused.
    let (_, head, _) = http(&haven, "GET", "/auth/oidc/login", &[], "");
    let pending = cookies_of(&head)
        .into_iter()
        .find(|c| c.starts_with("haven_oidc="))
        .expect("the sign-on cookie");
    let forged = "/auth/oidc/callback?code=abc&state=not-the-state";
    let (status, _, body) = http(&haven, "GET", forged, &[("Cookie", &pending)], "");
    assert_eq!(status, 401);
    assert!(body.contains("state mismatch"), "{body}");

    let log = std::fs::read_to_string(estate.ws.path("server.log")).expect("log");
    assert!(!log.contains("client-secret-for-tests"));
}

/// A legal hold placed through the instance is lifted only once a second
/// person approves; until then the snapshot stays held.
#[test]
fn lifting_a_legal_hold_waits_for_a_second_person() {
    let estate = Estate::new("[access]\nfour_eyes = true\n");
    let ana = estate.user("ana", &[Role::Operator], &[]);
    let bo = estate.user("bo", &[Role::Approver], &[]);
    let (_server, address, instance) = estate.start();
    assert_eq!(
        call(
            &address,
            "POST",
            "/systems/payments-files/run",
            &instance,
            &json!({})
        )
        .0,
        202
    );
    wait_for("the payments backup", || {
        let (_, jobs) = call(&address, "GET", "/jobs", &instance, &Value::Null);
        jobs.as_array().is_some_and(|all| {
            all.iter()
                .any(|j| j["system"] == "payments-files" && j["outcome"] == "success")
        })
    });
    let server = ["--server", &address];
    let through = ["--repository", "main"];
    let run = |args: &[&str], token: &str| {
        estate.haven(&[&server[..], args, &through[..]].concat(), "", Some(token))
    };
    let placed = parse_json(
        &run(
            &["--json", "hold", "add", "latest", "--reason", "case 7"],
            &ana,
        ),
        0,
    );
    assert_eq!(placed[0]["reason"], "case 7");
    let asked = run(
        &["hold", "remove", "latest", "--reason", "case closed"],
        &ana,
    );
    assert_eq!(
        asked.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&asked.stderr)
    );
    let held = parse_json(&run(&["--json", "hold", "list"], &ana), 0);
    assert_eq!(held.as_array().map(Vec::len), Some(1), "still held: {held}");
    let listed = parse_json(
        &estate.haven(
            &[&server[..], &["--json", "request", "list"]].concat(),
            "",
            Some(&bo),
        ),
        0,
    );
    let request = listed
        .as_array()
        .and_then(|all| all.iter().find(|r| r["action"] == "hold.lift").cloned())
        .expect("the request");
    let id = request["id"].as_i64().expect("id").to_string();
    let approved = estate.haven(
        &[&server[..], &["--json", "request", "approve", &id]].concat(),
        "",
        Some(&bo),
    );
    let approved = parse_json(&approved, 0);
    assert_eq!(approved["state"], "approved");
    assert!(
        approved["outcome"]
            .as_str()
            .expect("outcome")
            .ends_with("lifted"),
        "{approved}"
    );
    let held = parse_json(&run(&["--json", "hold", "list"], &ana), 0);
    assert_eq!(held, json!([]), "lifted");
}

/// `/metrics` serves the instance's numbers to a scraper with a token,
/// in a text format a Prometheus parser reads: jobs by system and
/// outcome, RPO ages, compliance counts, open alerts, the API's own
/// requests and latencies.
#[test]
fn metrics_are_served_in_the_prometheus_text_format() {
    let estate = Estate::new("");
    let (_server, address, instance) = estate.start();
    for system in ["payments-files", "web-files"] {
        let path = format!("/systems/{system}/run");
        assert_eq!(call(&address, "POST", &path, &instance, &json!({})).0, 202);
    }
    wait_for("both backups to end", || {
        let (_, jobs) = call(&address, "GET", "/jobs", &instance, &Value::Null);
        jobs.as_array()
            .is_some_and(|all| all.len() >= 2 && all.iter().all(|j| j["outcome"] != "running"))
    });
    wait_for("the failed backup's alert", || {
        let (_, alerts) = call(&address, "GET", "/alerts", &instance, &Value::Null);
        alerts.as_array().is_some_and(|all| !all.is_empty())
    });
    assert_eq!(
        http(&address, "GET", "/metrics", &[], "").0,
        401,
        "a token is needed"
    );
    let bearer = format!("Bearer {instance}");
    let (status, head, body) = http(
        &address,
        "GET",
        "/metrics",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("openmetrics-text"), "{head}");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("the Prometheus text format");
    let value = |metric: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                other => panic!("{metric}: {other:?}"),
            })
    };
    let ok = [
        ("system", "payments-files"),
        ("kind", "backup"),
        ("outcome", "success"),
    ];
    assert_eq!(value("haven_jobs_total", &ok), Some(1.0), "{body}");
    let failed = [
        ("system", "web-files"),
        ("kind", "backup"),
        ("outcome", "failed"),
    ];
    assert!(
        value("haven_jobs_total", &failed).is_some_and(|n| n >= 1.0),
        "{body}"
    );
    let payments = [("system", "payments-files")];
    assert_eq!(value("haven_rpo_seconds", &payments), Some(86_400.0));
    let age = value("haven_last_good_backup_age_seconds", &payments).expect("an age");
    assert!((0.0..3600.0).contains(&age), "{age}");
    let services: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "haven_services_by_compliance")
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(services, 3.0, "every service counted once: {body}");
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "haven_alerts_open"),
        "{body}"
    );
    let jobs_route = [
        ("method", "GET"),
        ("route", "/api/v1/jobs"),
        ("status", "200"),
    ];
    assert!(
        value("haven_http_requests_total", &jobs_route).is_some_and(|n| n >= 2.0),
        "{body}"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "haven_http_request_duration_seconds"
                && matches!(s.value, prometheus_parse::Value::Histogram(_))),
        "{body}"
    );
    // The Grafana dashboard in examples/ asks only for metrics served.
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/grafana/haven-dashboard.json"),
    )
    .expect("the dashboard");
    let families = haven_web::metrics::FAMILIES;
    // Every family scraped is one of the list…
    for sample in &scrape.samples {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .fold(sample.metric.as_str(), |name, suffix| {
                name.trim_end_matches(suffix)
            });
        assert!(
            families.contains(&family),
            "{family} is served but not listed"
        );
    }
    // …the dashboard asks for those only…
    let asked: std::collections::BTreeSet<String> = dashboard
        .split("haven_")
        .skip(1)
        .map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            format!("haven_{}", name.trim_end_matches("_bucket"))
        })
        .collect();
    assert!(asked.len() >= 8, "{asked:?}");
    for name in &asked {
        assert!(
            families.contains(&name.as_str()),
            "the dashboard asks for {name}"
        );
    }
    // …and docs/server.md documents each.
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/server.md"),
    )
    .expect("docs");
    for family in families {
        assert!(
            docs.contains(&format!("`{family}`")),
            "docs/server.md: {family}"
        );
    }
}

/// With `[tls]`, the server speaks HTTPS (its address file says so) and
/// the command line reaches it, trusting the certificate the settings
/// name; a certificate that does not read stops the server with the
/// file's name.
#[test]
fn with_a_certificate_the_server_speaks_https_and_the_cli_follows() {
    let estate = Estate::new("[tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n");
    let tls = estate.data.join("tls");
    std::fs::create_dir_all(&tls).expect("mkdir");
    std::fs::write(tls.join("cert.pem"), "not a certificate").expect("write");
    let log = estate.ws.path("broken.log");
    let broken = std::process::Command::new(assert_cmd::cargo::cargo_bin("haven"))
        .args(["server", "--data-dir"])
        .arg(&estate.data)
        .stderr(std::fs::File::create(&log).expect("log"))
        .status()
        .expect("haven server");
    assert_eq!(broken.code(), Some(1));
    let said = std::fs::read_to_string(&log).expect("log");
    assert!(
        said.contains("[tls]") && said.contains("cert.pem"),
        "{said}"
    );

    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).expect("a certificate");
    std::fs::write(tls.join("cert.pem"), certified.cert.pem()).expect("cert");
    std::fs::write(tls.join("key.pem"), certified.signing_key.serialize_pem()).expect("key");
    let _server = start_server_in(&estate.data, &estate.ws.path("server.log"), "077", &[]);
    let address = std::fs::read_to_string(estate.data.join("server.addr")).expect("addr");
    assert!(address.starts_with("https://127.0.0.1:"), "{address}");
    let status = parse_json(&estate.haven(&["--json", "status"], "", None), 0);
    assert_eq!(status["source"], "server", "{status}");
}

/// The catalog's analyses through the API answer what the command line
/// answers from the catalog directory: the BIA, the recovery order, the
/// findings and the dependency graph.
#[test]
fn the_catalog_analyses_through_the_api_match_the_command_line() {
    let estate = Estate::new("");
    let (_server, address, instance) = estate.start();
    let catalog = estate.data.join("catalog");
    let cli = |args: &[&str]| {
        let out = estate
            .ws
            .haven()
            .arg("--json")
            .args(args)
            .arg(&catalog)
            .env_remove("HAVEN_TOKEN")
            .output()
            .expect("haven");
        parse_json(&out, 0)
    };
    let (status, bia) = call(&address, "GET", "/bia", &instance, &Value::Null);
    assert_eq!(status, 200, "{bia}");
    assert_eq!(bia, cli(&["bia"]));
    assert_eq!(bia[0]["id"], "payments", "the costliest first: {bia}");
    let (status, order) = call(
        &address,
        "GET",
        "/plan/order?services=payments",
        &instance,
        &Value::Null,
    );
    assert_eq!(status, 200, "{order}");
    assert_eq!(order, cli(&["plan", "order", "payments", "--catalog"]));
    let (status, missing) = call(
        &address,
        "GET",
        "/plan/order?services=nothing",
        &instance,
        &Value::Null,
    );
    assert_eq!(status, 404, "{missing}");
    let (status, findings) = call(
        &address,
        "GET",
        "/catalog/findings",
        &instance,
        &Value::Null,
    );
    assert_eq!(status, 200);
    let checked = cli(&["catalog", "check"]);
    let codes = |list: &Value| {
        let mut codes: Vec<String> = list
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| f["code"].as_str().expect("code").to_string())
            .collect();
        codes.sort();
        codes
    };
    assert_eq!(codes(&findings), codes(&checked["findings"]));
    assert!(!codes(&findings).is_empty(), "the estate has warnings");
    let (status, graph) = call(&address, "GET", "/catalog/graph", &instance, &Value::Null);
    assert_eq!(status, 200);
    let dot = estate
        .ws
        .haven()
        .args(["catalog", "graph"])
        .arg(&catalog)
        .output()
        .expect("graph");
    assert_eq!(
        graph["dot"],
        String::from_utf8_lossy(&dot.stdout).to_string()
    );
    assert!(
        graph["edges"]
            .as_array()
            .expect("edges")
            .contains(&json!(["payments", "payments-files"])),
        "{graph}"
    );
}
