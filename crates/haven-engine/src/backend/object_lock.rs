//! The S3 Object Lock calls (see `crate::object_lock` for what they are
//! for). OpenDAL has no Object Lock operations, so these few calls are signed
//! (AWS SigV4, `reqsign`) and sent through OpenDAL's HTTP transport.

use std::str::FromStr;

use jiff::Timestamp;
use md5::Digest;
use opendal::{Buffer, HttpTransporter};
use reqsign_aws_v4::{Credential, DefaultCredentialProvider, RequestSigner};
use reqsign_core::{Context, OsEnv, Signer};

use crate::error::{Error, Result};

/// Object Lock retention mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may still shorten or
    /// remove the retention.
    #[default]
    Governance,
    /// Nobody, not even the account root, can shorten it or delete the
    /// object before the date.
    Compliance,
}

impl LockMode {
    fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

impl FromStr for LockMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "governance" => Ok(LockMode::Governance),
            "compliance" => Ok(LockMode::Compliance),
            _ => Err(format!(
                "{s:?} is not an Object Lock mode (governance or compliance)"
            )),
        }
    }
}

/// Signed Object Lock requests against one bucket.
pub(crate) struct ObjectLockApi {
    endpoint: String,
    bucket: String,
    prefix: String,
    signer: Signer<Credential>,
    http: HttpTransporter,
}

impl ObjectLockApi {
    pub(crate) fn new(endpoint: &str, bucket: &str, prefix: &str, region: &str) -> Self {
        let ctx = Context::new()
            .with_env(OsEnv)
            .with_file_read(reqsign_file_read_tokio::TokioFileRead);
        ObjectLockApi {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            signer: Signer::new(
                ctx,
                DefaultCredentialProvider::new(),
                RequestSigner::new("s3", region),
            ),
            http: HttpTransporter::default(),
        }
    }

    /// Does the bucket have Object Lock enabled?
    pub(crate) async fn enabled(&self) -> Result<bool> {
        let response = self
            .send(http::Method::GET, None, "object-lock", Vec::new())
            .await?;
        match response.status {
            200 => Ok(response
                .body
                .contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled>")),
            404 => Ok(false),
            status => Err(self.error(
                "read the Object Lock configuration of",
                "",
                status,
                &response.body,
            )),
        }
    }

    /// The retention date of `key` (relative to the repository root),
    /// from the object's `x-amz-object-lock-retain-until-date` header
    /// (HEAD is more widely implemented than GetObjectRetention).
    pub(crate) async fn retention(&self, key: &str) -> Result<Option<Timestamp>> {
        let response = self
            .send(http::Method::HEAD, Some(key), "", Vec::new())
            .await?;
        match response.status {
            200 => Ok(response
                .headers
                .get("x-amz-object-lock-retain-until-date")
                .and_then(|v| v.to_str().ok())
                .and_then(|date| date.parse().ok())),
            status => Err(self.error("read the retention of", key, status, &response.body)),
        }
    }

    /// Set `key`'s retention to `until` in `mode`.
    pub(crate) async fn set_retention(
        &self,
        key: &str,
        mode: LockMode,
        until: Timestamp,
    ) -> Result<()> {
        let until = until.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>",
            mode.as_str()
        );
        let response = self
            .send(http::Method::PUT, Some(key), "retention", body.into_bytes())
            .await?;
        if response.status == 200 {
            Ok(())
        } else {
            Err(self.error("set the retention of", key, response.status, &response.body))
        }
    }

    async fn send(
        &self,
        method: http::Method,
        key: Option<&str>,
        query: &str,
        body: Vec<u8>,
    ) -> Result<S3Response> {
        let mut path = format!("/{}", self.bucket);
        if let Some(key) = key {
            let full = if self.prefix.is_empty() {
                key.to_string()
            } else {
                format!("{}/{key}", self.prefix)
            };
            // Repository keys are hex names and slashes: nothing to escape.
            path.push('/');
            path.push_str(&full);
        }
        let uri = if query.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{query}", self.endpoint)
        };
        let md5 = base64_md5(&body);
        let request = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("content-md5", md5)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .header("content-length", body.len())
            .body(Buffer::from(body))
            .map_err(|e| Error::InvalidArgument(format!("S3 request {uri}: {e}")))?;
        let (mut parts, body) = request.into_parts();
        self.signer.sign(&mut parts, None).await.map_err(|e| {
            Error::InvalidArgument(format!("cannot sign the S3 request (credentials?): {e}"))
        })?;
        let response = self
            .http
            .send(http::Request::from_parts(parts, body))
            .await
            .map_err(|source| Error::object_storage(&path, source))?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        Ok(S3Response {
            status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body.to_vec()).into_owned(),
        })
    }

    fn error(&self, action: &str, key: &str, status: u16, body: &str) -> Error {
        let code = between(body, "<Code>", "</Code>").unwrap_or("no error code");
        Error::InvalidArgument(format!(
            "cannot {action} {}/{key} on {}: HTTP {status} ({code})",
            self.bucket, self.endpoint
        ))
    }
}

struct S3Response {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

fn base64_md5(body: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}
