//! The API client the CLI uses when a server runs on the data dir.

use haven_model::alerts::Alert;
use haven_model::jobs::Job;
use haven_model::maintenance::Recorded;
use haven_ops::delivery::notify::Report;
use haven_ops::server::core::RunNow;
use haven_ops::server::{AlertDetail, NewWindow};
use haven_ops::status::StatusReport;
use haven_ops::watch::windows::WindowView;
use serde::de::DeserializeOwned;

use crate::{AlertsQuery, ApiError, JobsQuery, ResolveBody, USER_HEADER};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No server answered.
    #[error("cannot reach the Haven server at {address}: {source}")]
    Unreachable {
        /// Where it was expected.
        address: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The server said no.
    #[error("the server answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its error message.
        message: String,
    },
    /// The answer was not what this client understands.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

/// How long connecting to the server may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a request may take (a channel test waits for its deliveries,
/// retries included, and has longer: [`NOTIFY_TEST_TIMEOUT`]).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a channel test may take.
pub const NOTIFY_TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// A client for one server.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    token: String,
    user: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the server at `address` (`127.0.0.1:8080`).
    pub fn new(address: &str, token: String) -> Self {
        // reqwest is built without a default TLS provider (Haven's one
        // provider is aws-lc-rs); first install wins, repeating is safe.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // A server that does not answer must not hang the command.
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Client {
            base: format!("http://{address}"),
            token,
            user: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
            http,
        }
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

    /// Who acts (recorded with acknowledgements and other actions).
    pub fn acting_as(mut self, user: &str) -> Self {
        self.user = user.to_string();
        self
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = request
            .bearer_auth(&self.token)
            .header(USER_HEADER, &self.user)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                address: self.base.clone(),
                source,
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ApiError>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(ClientError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// `GET /api/v1/status`.
    pub async fn status(&self) -> Result<StatusReport, ClientError> {
        self.send(self.http.get(self.url(&["status"]))).await
    }

    /// `GET /api/v1/jobs`.
    pub async fn jobs(&self, query: &JobsQuery) -> Result<Vec<Job>, ClientError> {
        self.send(self.http.get(self.url(&["jobs"])).query(query))
            .await
    }

    /// `GET /api/v1/jobs/ID`.
    pub async fn job(&self, id: i64) -> Result<Job, ClientError> {
        self.send(self.http.get(self.url(&["jobs", &id.to_string()])))
            .await
    }

    /// `POST /api/v1/systems/SYSTEM/run`.
    pub async fn run(&self, system: &str) -> Result<RunNow, ClientError> {
        self.send(self.http.post(self.url(&["systems", system, "run"])))
            .await
    }

    /// `GET /api/v1/alerts`.
    pub async fn alerts(&self, query: &AlertsQuery) -> Result<Vec<Alert>, ClientError> {
        self.send(self.http.get(self.url(&["alerts"])).query(query))
            .await
    }

    /// `GET /api/v1/alerts/ID`.
    pub async fn alert(&self, id: i64) -> Result<AlertDetail, ClientError> {
        self.send(self.http.get(self.url(&["alerts", &id.to_string()])))
            .await
    }

    /// `POST /api/v1/alerts/ID/ack`.
    pub async fn acknowledge(&self, id: i64) -> Result<Alert, ClientError> {
        self.send(
            self.http
                .post(self.url(&["alerts", &id.to_string(), "ack"])),
        )
        .await
    }

    /// `POST /api/v1/alerts/ID/resolve`.
    pub async fn resolve(&self, id: i64, reason: Option<&str>) -> Result<Alert, ClientError> {
        self.send(
            self.http
                .post(self.url(&["alerts", &id.to_string(), "resolve"]))
                .json(&ResolveBody {
                    reason: reason.map(String::from),
                }),
        )
        .await
    }

    /// `GET /api/v1/maintenance`.
    pub async fn windows(&self) -> Result<Vec<WindowView>, ClientError> {
        self.send(self.http.get(self.url(&["maintenance"]))).await
    }

    /// `POST /api/v1/maintenance`.
    pub async fn add_window(&self, window: &NewWindow) -> Result<Recorded, ClientError> {
        self.send(self.http.post(self.url(&["maintenance"])).json(window))
            .await
    }

    /// `POST /api/v1/maintenance/ID/end`.
    pub async fn end_window(&self, id: &str) -> Result<Recorded, ClientError> {
        self.send(self.http.post(self.url(&["maintenance", id, "end"])))
            .await
    }

    /// `POST /api/v1/channels/ID/test`.
    pub async fn notify_test(&self, channel: &str) -> Result<Report, ClientError> {
        self.send(
            self.http
                .post(self.url(&["channels", channel, "test"]))
                .timeout(NOTIFY_TEST_TIMEOUT),
        )
        .await
    }
}
