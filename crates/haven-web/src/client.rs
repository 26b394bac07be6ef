//! The instance interface over HTTP: what the CLI uses when a server
//! runs on the data dir. Every answer is the server's, every error the
//! server's code (or `server-unreachable` when none answers).

use async_trait::async_trait;
use haven_model::alerts::Alert;
use haven_model::errors::{ErrorCode, ErrorDocument};
use haven_model::jobs::Job;
use haven_model::maintenance::Recorded;
use haven_model::recovery::run::{RecoveryRun, RunView};
use haven_ops::api::{
    AddWindow, AlertAction, AlertDetail, AlertsQuery, EndWindow, HealthReport, Instance,
    InstanceError, JobsQuery, RunOutcome, RunRequest, WindowView,
};
use haven_ops::delivery::Report;
use haven_ops::status::StatusReport;
use serde::de::DeserializeOwned;

use crate::{ResolveBody, USER_HEADER};

/// How long connecting to the server may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a request may take (a channel test waits for its deliveries,
/// retries included, and has longer: [`NOTIFY_TEST_TIMEOUT`]).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a channel test may take.
pub const NOTIFY_TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// A server reached through its API.
#[derive(Clone, Debug)]
pub struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
    break_glass: Option<String>,
}

impl Remote {
    /// The server at `address` (`127.0.0.1:8080`, or a URL:
    /// `https://haven.example.com:8443`), with the API token.
    pub fn new(address: &str, token: String) -> Self {
        Remote::trusting(address, token, None)
    }

    /// The same, trusting the certificates of `ca` (PEM) besides the
    /// system's: a server with a private CA's or its own certificate.
    pub fn trusting(address: &str, token: String, ca: Option<&[u8]>) -> Self {
        // reqwest is built without a default TLS provider (Haven's one
        // provider is aws-lc-rs); first install wins, repeating is safe.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // A server that does not answer must not hang the command.
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        for certificate in ca
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(pem).ok())
            .unwrap_or_default()
        {
            builder = builder.add_root_certificate(certificate);
        }
        let base = if address.starts_with("http://") || address.starts_with("https://") {
            address.trim_end_matches('/').to_string()
        } else {
            format!("http://{address}")
        };
        Remote {
            base,
            token,
            http: builder.build().unwrap_or_default(),
            break_glass: None,
        }
    }

    /// Act with an admin's break-glass reason (four eyes bypassed, the
    /// change kept for review). Sent as a header: characters a header
    /// cannot carry become `?`.
    pub fn break_glass(mut self, reason: Option<String>) -> Self {
        self.break_glass = reason.map(|r| {
            r.chars()
                .map(|c| {
                    if c.is_ascii_graphic() || c == ' ' {
                        c
                    } else {
                        '?'
                    }
                })
                .collect()
        });
        self
    }

    /// The URL of an API path, each segment percent-encoded (a system
    /// or channel id is data, never path syntax).
    fn url(&self, segments: &[&str]) -> String {
        let mut url = format!("{}/api/v1", self.base);
        for segment in segments {
            url.push('/');
            for byte in segment.bytes() {
                if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    url.push(byte as char);
                } else {
                    url.push_str(&format!("%{byte:02X}"));
                }
            }
        }
        url
    }

    /// Send a request; `as_who` is the name a person declares (the token
    /// is what authenticates: the server records that).
    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        as_who: Option<&haven_model::actor::Actor>,
    ) -> Result<T, InstanceError> {
        let declared = as_who
            .and_then(|by| by.declared.clone())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "cli".into());
        let request = match &self.break_glass {
            Some(reason) => request.header(crate::access::BREAK_GLASS_HEADER, reason),
            None => request,
        };
        let response =
            request
                .bearer_auth(&self.token)
                .header(USER_HEADER, declared)
                .send()
                .await
                .map_err(|e| {
                    InstanceError::new(
                    ErrorCode::ServerUnreachable,
                    format!("cannot reach the Haven server at {}: {}", self.base, e.without_url()),
                )
                .hint("is it running? `haven status` works on the data dir when no server holds it")
                })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| protocol(e.to_string()))?;
        // A change kept for a second person's approval is accepted (202)
        // with the error document that says so.
        let deferred = status == reqwest::StatusCode::ACCEPTED
            && serde_json::from_slice::<ErrorDocument>(&body).is_ok();
        if !status.is_success() || deferred {
            return Err(match serde_json::from_slice::<ErrorDocument>(&body) {
                Ok(document) => InstanceError::from_document(document),
                Err(_) => protocol(format!("HTTP {status}: {}", String::from_utf8_lossy(&body))),
            });
        }
        serde_json::from_slice(&body).map_err(|e| protocol(e.to_string()))
    }
}

fn protocol(detail: String) -> InstanceError {
    InstanceError::new(
        ErrorCode::Failed,
        format!("unexpected answer from the server: {detail}"),
    )
}

#[async_trait]
impl Instance for Remote {
    fn describe(&self) -> String {
        format!("the server at {}", self.base)
    }

    async fn health(&self) -> Result<HealthReport, InstanceError> {
        let response = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .map_err(|e| {
                InstanceError::new(
                    ErrorCode::ServerUnreachable,
                    format!(
                        "cannot reach the Haven server at {}: {}",
                        self.base,
                        e.without_url()
                    ),
                )
            })?;
        let body = response
            .bytes()
            .await
            .map_err(|e| protocol(e.to_string()))?;
        // `503` with a report is an answer (degraded), not an error.
        serde_json::from_slice(&body).map_err(|e| protocol(e.to_string()))
    }

    async fn status(&self) -> Result<StatusReport, InstanceError> {
        self.send(self.http.get(self.url(&["status"])), None).await
    }

    async fn jobs(&self, query: &JobsQuery) -> Result<Vec<Job>, InstanceError> {
        self.send(self.http.get(self.url(&["jobs"])).query(query), None)
            .await
    }

    async fn job(&self, id: i64) -> Result<Job, InstanceError> {
        self.send(self.http.get(self.url(&["jobs", &id.to_string()])), None)
            .await
    }

    async fn run(&self, request: &RunRequest) -> Result<RunOutcome, InstanceError> {
        self.send(
            self.http
                .post(self.url(&["systems", &request.system, "run"])),
            Some(&request.by),
        )
        .await
    }

    async fn alerts(&self, query: &AlertsQuery) -> Result<Vec<Alert>, InstanceError> {
        self.send(self.http.get(self.url(&["alerts"])).query(query), None)
            .await
    }

    async fn alert(&self, id: i64) -> Result<AlertDetail, InstanceError> {
        self.send(self.http.get(self.url(&["alerts", &id.to_string()])), None)
            .await
    }

    async fn acknowledge(&self, action: &AlertAction) -> Result<Alert, InstanceError> {
        self.send(
            self.http
                .post(self.url(&["alerts", &action.id.to_string(), "ack"])),
            Some(&action.by),
        )
        .await
    }

    async fn resolve(&self, action: &AlertAction) -> Result<Alert, InstanceError> {
        self.send(
            self.http
                .post(self.url(&["alerts", &action.id.to_string(), "resolve"]))
                .json(&ResolveBody {
                    reason: action.reason.clone(),
                }),
            Some(&action.by),
        )
        .await
    }

    async fn windows(&self) -> Result<Vec<WindowView>, InstanceError> {
        self.send(self.http.get(self.url(&["maintenance"])), None)
            .await
    }

    async fn add_window(&self, request: &AddWindow) -> Result<Recorded, InstanceError> {
        self.send(
            self.http
                .post(self.url(&["maintenance"]))
                .json(&request.window),
            Some(&request.by),
        )
        .await
    }

    async fn end_window(&self, request: &EndWindow) -> Result<Recorded, InstanceError> {
        self.send(
            self.http
                .post(self.url(&["maintenance", &request.id, "end"])),
            Some(&request.by),
        )
        .await
    }

    async fn notify_test(&self, channel: &str) -> Result<Report, InstanceError> {
        self.send(
            self.http
                .post(self.url(&["channels", channel, "test"]))
                .timeout(NOTIFY_TEST_TIMEOUT),
            None,
        )
        .await
    }

    async fn drill(
        &self,
        request: &haven_ops::api::DrillRequest,
    ) -> Result<haven_ops::api::DrillOutcome, InstanceError> {
        self.send(self.http.post(self.url(&["drills"])).json(request), None)
            .await
    }

    async fn drills(
        &self,
        query: &haven_ops::api::DrillsQuery,
    ) -> Result<Vec<haven_model::drills::Drill>, InstanceError> {
        self.send(self.http.get(self.url(&["drills"])).query(query), None)
            .await
    }

    async fn drill_service(
        &self,
        request: &haven_ops::api::ServiceDrillRequest,
    ) -> Result<haven_ops::api::ServiceDrillOutcome, InstanceError> {
        self.send(
            self.http.post(self.url(&["service-drills"])).json(request),
            None,
        )
        .await
    }

    async fn service_drills(
        &self,
        query: &haven_ops::api::ServiceDrillsQuery,
    ) -> Result<Vec<haven_model::drills::ServiceDrill>, InstanceError> {
        self.send(
            self.http.get(self.url(&["service-drills"])).query(query),
            None,
        )
        .await
    }

    async fn recover(
        &self,
        request: &haven_ops::api::RecoverRequest,
    ) -> Result<RunView, InstanceError> {
        self.send(
            self.http.post(self.url(&["recoveries"])).json(request),
            None,
        )
        .await
    }

    async fn resume_recovery(
        &self,
        request: &haven_ops::api::ResumeRequest,
    ) -> Result<RunView, InstanceError> {
        let id = request.run.to_string();
        self.send(
            self.http
                .post(self.url(&["recoveries", &id, "resume"]))
                .json(request),
            None,
        )
        .await
    }

    async fn recovery(&self, id: i64) -> Result<RunView, InstanceError> {
        self.send(
            self.http.get(self.url(&["recoveries", &id.to_string()])),
            None,
        )
        .await
    }

    async fn recoveries(&self) -> Result<Vec<RecoveryRun>, InstanceError> {
        self.send(self.http.get(self.url(&["recoveries"])), None)
            .await
    }

    async fn decide_step(
        &self,
        decision: &haven_ops::api::StepDecision,
    ) -> Result<RunView, InstanceError> {
        let (run, step) = (decision.run.to_string(), decision.step.to_string());
        self.send(
            self.http
                .post(self.url(&["recoveries", &run, "steps", &step, "decide"]))
                .json(decision),
            None,
        )
        .await
    }

    async fn audit_verify(
        &self,
        request: &haven_ops::api::AuditVerifyRequest,
    ) -> Result<haven_ops::api::AuditReport, InstanceError> {
        self.send(
            self.http.post(self.url(&["audit", "verify"])).json(request),
            None,
        )
        .await
    }

    async fn audit_anchor(&self) -> Result<Vec<haven_ops::audit::Anchoring>, InstanceError> {
        self.send(self.http.post(self.url(&["audit", "anchor"])), None)
            .await
    }

    async fn user_add(
        &self,
        request: &haven_ops::api::NewUser,
    ) -> Result<haven_model::access::User, InstanceError> {
        self.send(self.http.post(self.url(&["users"])).json(request), None)
            .await
    }

    async fn users(&self) -> Result<Vec<haven_model::access::User>, InstanceError> {
        self.send(self.http.get(self.url(&["users"])), None).await
    }

    async fn user_change(
        &self,
        change: &haven_ops::api::UserChange,
    ) -> Result<haven_model::access::User, InstanceError> {
        self.send(
            self.http
                .post(self.url(&["users", &change.name, "change"]))
                .json(change),
            None,
        )
        .await
    }

    async fn user_totp(&self, name: &str) -> Result<haven_ops::api::TotpEnrolment, InstanceError> {
        self.send(self.http.post(self.url(&["users", name, "totp"])), None)
            .await
    }

    async fn token_create(
        &self,
        request: &haven_ops::api::NewToken,
    ) -> Result<haven_ops::api::CreatedToken, InstanceError> {
        self.send(self.http.post(self.url(&["tokens"])).json(request), None)
            .await
    }

    async fn tokens(&self) -> Result<Vec<haven_model::access::Token>, InstanceError> {
        self.send(self.http.get(self.url(&["tokens"])), None).await
    }

    async fn token_revoke(
        &self,
        request: &haven_ops::api::TokenRevocation,
    ) -> Result<haven_model::access::Token, InstanceError> {
        self.send(
            self.http
                .post(self.url(&["tokens", &request.id, "revoke"]))
                .json(request),
            None,
        )
        .await
    }

    async fn audit_export(
        &self,
        query: &haven_ops::api::AuditExportQuery,
    ) -> Result<haven_model::audit::Export, InstanceError> {
        self.send(
            self.http.get(self.url(&["audit", "export"])).query(query),
            None,
        )
        .await
    }

    async fn service(&self, id: &str) -> Result<haven_ops::status::ServiceDetail, InstanceError> {
        self.send(self.http.get(self.url(&["services", id])), None)
            .await
    }

    async fn findings(&self) -> Result<Vec<haven_ops::status::FindingView>, InstanceError> {
        self.send(self.http.get(self.url(&["catalog", "findings"])), None)
            .await
    }

    async fn bia(
        &self,
        _query: &haven_ops::api::BiaQuery,
    ) -> Result<Vec<haven_model::catalog::bia::BiaRow>, InstanceError> {
        Err(catalog_locally("haven bia"))
    }

    async fn recovery_order(
        &self,
        _query: &haven_ops::api::OrderQuery,
    ) -> Result<haven_model::catalog::plan::RecoveryOrder, InstanceError> {
        Err(catalog_locally("haven plan order"))
    }

    async fn graph(&self) -> Result<haven_ops::status::CatalogGraph, InstanceError> {
        Err(catalog_locally("haven catalog graph"))
    }

    async fn metrics(&self) -> Result<haven_ops::metrics::MetricsSnapshot, InstanceError> {
        Err(InstanceError::new(
            ErrorCode::Failed,
            "the metrics are served as text at /metrics (Prometheus), not through the API",
        ))
    }

    async fn holds(
        &self,
        query: &haven_ops::api::HoldsQuery,
    ) -> Result<Vec<haven_ops::api::HoldView>, InstanceError> {
        self.send(self.http.get(self.url(&["holds"])).query(query), None)
            .await
    }

    async fn hold_add(
        &self,
        request: &haven_ops::api::HoldRequest,
    ) -> Result<haven_ops::api::HoldView, InstanceError> {
        self.send(self.http.post(self.url(&["holds"])).json(request), None)
            .await
    }

    async fn hold_lift(
        &self,
        request: &haven_ops::api::HoldRequest,
    ) -> Result<haven_ops::api::HoldView, InstanceError> {
        self.send(
            self.http.post(self.url(&["holds", "lift"])).json(request),
            None,
        )
        .await
    }

    async fn requests(
        &self,
        query: &haven_ops::api::RequestsQuery,
    ) -> Result<Vec<haven_model::approval::ApprovalRequest>, InstanceError> {
        self.send(self.http.get(self.url(&["requests"])).query(query), None)
            .await
    }

    async fn request(
        &self,
        id: i64,
    ) -> Result<haven_model::approval::ApprovalRequest, InstanceError> {
        self.send(
            self.http.get(self.url(&["requests", &id.to_string()])),
            None,
        )
        .await
    }

    async fn decide_request(
        &self,
        decision: &haven_ops::api::RequestDecision,
    ) -> Result<haven_model::approval::ApprovalRequest, InstanceError> {
        let body = crate::DecideBody {
            verdict: decision.verdict,
            note: decision.note.clone(),
        };
        self.send(
            self.http
                .post(self.url(&["requests", &decision.id.to_string(), "decide"]))
                .json(&body),
            None,
        )
        .await
    }

    async fn audit_entries(
        &self,
        query: &haven_ops::api::AuditQuery,
    ) -> Result<Vec<haven_model::audit::Entry>, InstanceError> {
        self.send(
            self.http.get(self.url(&["audit", "entries"])).query(query),
            None,
        )
        .await
    }

    async fn abandon_recovery(
        &self,
        request: &haven_ops::api::AbandonRequest,
    ) -> Result<RunView, InstanceError> {
        let id = request.run.to_string();
        self.send(
            self.http
                .post(self.url(&["recoveries", &id, "abandon"]))
                .json(request),
            None,
        )
        .await
    }

    async fn recovery_forecast(
        &self,
        request: &haven_ops::api::ForecastRequest,
    ) -> Result<haven_model::recovery::Forecast, InstanceError> {
        self.send(
            self.http
                .post(self.url(&["recovery", "forecast"]))
                .json(request),
            None,
        )
        .await
    }

    async fn preflight(&self) -> Result<haven_ops::api::PreflightReport, InstanceError> {
        self.send(self.http.get(self.url(&["preflight"])), None)
            .await
    }
}

/// The catalog's analyses are answered as JSON for other programs; the
/// command line reads the catalog itself.
fn catalog_locally(command: &str) -> InstanceError {
    InstanceError::new(
        ErrorCode::Failed,
        format!(
            "`{command}` reads the catalog directory; through a server, GET its route under /api/v1 (docs/server.md)"
        ),
    )
}
