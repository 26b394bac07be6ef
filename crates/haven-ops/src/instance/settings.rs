//! Instance settings: `<data dir>/haven.toml`, overridden by `HAVEN_*`
//! environment variables and flags (the CLI resolves those two and hands
//! them over as [`Overrides`]). Every key is documented in
//! `docs/server.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use haven_model::catalog::schedule::{CRON_EXAMPLE, CronSchedule};
use haven_model::catalog::watch::MaybeSecret;
use haven_model::catalog::{SecretRef, parse_duration};
use haven_model::compliance::Thresholds;
use haven_model::jobs::RetryPolicy;
use haven_model::tasks::PruneSettings;
use jiff::SignedDuration;
use serde::Deserialize;

/// The file inside the data dir.
pub const SETTINGS_FILE: &str = "haven.toml";

/// The keys of `haven.toml`, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    catalog: Option<String>,
    database: Option<String>,
    listen: Option<String>,
    max_jobs: Option<u32>,
    max_jobs_per_repository: Option<u32>,
    at_risk_share: Option<f64>,
    quarantine_share: Option<f64>,
    retry_attempts: Option<u32>,
    retry_delay: Option<String>,
    retry_max_delay: Option<String>,
    systemic_after: Option<u32>,
    shutdown_timeout: Option<String>,
    prune_schedule: Option<String>,
    prune_grace: Option<String>,
    evaluate_every: Option<String>,
    alerts: Option<AlertsFile>,
    export: Option<ExportFile>,
    heartbeat: Option<HeartbeatFile>,
    access: Option<AccessFile>,
    tls: Option<TlsFile>,
}

/// `[tls]` of `haven.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
}

/// HTTPS for the API and the console (`[tls]`): PEM files, the
/// certificate chain and its private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// The certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8 or PKCS#1/SEC1); keep it 0600.
    pub key: PathBuf,
}

/// `[access]` of `haven.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    four_eyes: Option<bool>,
    request_expiry: Option<String>,
    lockout_after: Option<u32>,
    lockout_for: Option<String>,
    failure_burst: Option<u32>,
    failure_window: Option<String>,
    session_idle: Option<String>,
    session_max: Option<String>,
    totp: Option<String>,
    oidc: Option<OidcFile>,
}

/// `[access.oidc]` of `haven.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcFile {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    redirect_url: Option<String>,
    username_claim: Option<String>,
    groups_claim: Option<String>,
    roles: Option<std::collections::BTreeMap<String, Vec<String>>>,
    teams: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// `[alerts]` of `haven.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsFile {
    baseline_runs: Option<u32>,
    baseline_min_runs: Option<u32>,
    duration_mads: Option<f64>,
    volume_mads: Option<f64>,
    start_delay: Option<String>,
    capacity_share: Option<f64>,
    capacity_horizon: Option<String>,
    capacity_history: Option<String>,
    capacity_min_history: Option<String>,
    checkpoint_wait: Option<String>,
}

/// `[export]` of `haven.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportFile {
    file: Option<String>,
    syslog: Option<String>,
    syslog_app_name: Option<String>,
    syslog_ca_file: Option<String>,
}

/// `[heartbeat]` of `haven.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeartbeatFile {
    url: Option<String>,
    every: Option<String>,
    timeout: Option<String>,
}

pub use haven_model::alert_rules::AlertSettings;

/// Who may do what, and how people log in (`[access]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessSettings {
    /// Gated changes wait for a second person's approval.
    pub four_eyes: bool,
    /// How long a request may wait for a decision.
    pub request_expiry: SignedDuration,
    /// Failed logins in a row that lock an account.
    pub lockout_after: u32,
    /// How long a locked account stays locked (doubling each time).
    pub lockout_for: SignedDuration,
    /// Failed logins (any account) within `failure_window` that raise a
    /// `security` alert.
    pub failure_burst: u32,
    /// The window `failure_burst` counts in.
    pub failure_window: SignedDuration,
    /// A console session ends after this long unused.
    pub session_idle: SignedDuration,
    /// A console session ends this long after login, used or not.
    pub session_max: SignedDuration,
    /// Admins and restore operators must give a TOTP code to log in.
    pub totp_required: bool,
    /// Single sign-on with an OpenID Connect provider.
    pub oidc: Option<OidcSettings>,
}

/// Single sign-on with an OpenID Connect provider (`[access.oidc]`):
/// the authorization code flow with PKCE; the provider's groups map to
/// Haven's roles and teams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSettings {
    /// The provider's issuer URL (its discovery document is under it).
    pub issuer: String,
    /// Haven's client id at the provider.
    pub client_id: String,
    /// Its secret, by reference (`env:VAR`, `file:PATH`).
    pub client_secret: Option<SecretRef>,
    /// Where the provider sends the browser back:
    /// `https://HAVEN/auth/oidc/callback`.
    pub redirect_url: String,
    /// The claim that names the user (`email`).
    pub username_claim: String,
    /// The claim that lists the user's groups (`groups`).
    pub groups_claim: String,
    /// Group → roles.
    pub roles: std::collections::BTreeMap<String, Vec<haven_model::access::Role>>,
    /// Group → teams.
    pub teams: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for AccessSettings {
    fn default() -> Self {
        AccessSettings {
            four_eyes: false,
            request_expiry: SignedDuration::from_hours(24),
            lockout_after: 5,
            lockout_for: SignedDuration::from_mins(15),
            failure_burst: 20,
            failure_window: SignedDuration::from_mins(10),
            session_idle: SignedDuration::from_mins(30),
            session_max: SignedDuration::from_hours(12),
            totp_required: false,
            oidc: None,
        }
    }
}

/// Where events go for a SIEM (`[export]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSettings {
    /// A JSON-lines file (appended to).
    pub file: Option<PathBuf>,
    /// A syslog receiver.
    pub syslog: Option<SyslogTarget>,
    /// APP-NAME of syslog messages.
    pub app_name: String,
    /// Extra CA certificates (PEM) to trust for `tls://`, besides the
    /// system's.
    pub ca_file: Option<PathBuf>,
}

/// A syslog receiver (RFC 5424).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogTarget {
    /// How messages travel.
    pub transport: SyslogTransport,
    /// `host:port`.
    pub address: String,
}

/// How syslog messages travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogTransport {
    /// One datagram each (RFC 5426).
    Udp,
    /// Octet-counted frames over TCP (RFC 6587).
    Tcp,
    /// Octet-counted frames over TLS (RFC 5425); the receiver's
    /// certificate is verified.
    Tls,
}

impl SyslogTarget {
    /// `udp://host:port`, `tcp://host:port` or `tls://host:port`.
    pub fn parse(text: &str) -> Result<SyslogTarget, String> {
        let (transport, rest) = if let Some(rest) = text.strip_prefix("tcp://") {
            (SyslogTransport::Tcp, rest)
        } else if let Some(rest) = text.strip_prefix("udp://") {
            (SyslogTransport::Udp, rest)
        } else if let Some(rest) = text.strip_prefix("tls://") {
            (SyslogTransport::Tls, rest)
        } else {
            return Err(format!(
                "{text:?} is not a syslog address (use udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT)"
            ));
        };
        if rest
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(format!(
                "{text:?}: give a host and a port, e.g. udp://127.0.0.1:514 or tls://siem.example.com:6514"
            ));
        }
        Ok(SyslogTarget {
            transport,
            address: rest.to_string(),
        })
    }

    /// The host part (for TLS server name checks), without IPv6 brackets.
    pub fn host(&self) -> &str {
        let host = self
            .address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// Values given on the command line or in the environment; they win over
/// the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--catalog` / `HAVEN_CATALOG`.
    pub catalog: Option<PathBuf>,
    /// `--database-url` / `HAVEN_DATABASE_URL`.
    pub database: Option<String>,
    /// `--listen` / `HAVEN_LISTEN`.
    pub listen: Option<String>,
}

/// `[heartbeat]` of `haven.toml`.
#[derive(Clone, Debug)]
pub struct HeartbeatSettings {
    /// Where to call (often a secret: push URLs carry their token).
    pub url: MaybeSecret,
    /// How often.
    pub every: SignedDuration,
    /// How long one call may take.
    pub timeout: Duration,
}

/// The resolved settings of one Haven instance.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The data dir.
    pub data_dir: PathBuf,
    /// The catalog directory.
    pub catalog: PathBuf,
    /// Whether `--catalog` / `HAVEN_CATALOG` chose it (then nothing else
    /// may: see [`Settings::with_server_catalog`]).
    pub catalog_overridden: bool,
    /// The database URL (`sqlite://…`).
    pub database: String,
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// Jobs running at once, in all.
    pub max_jobs: usize,
    /// Jobs running at once per repository.
    pub max_jobs_per_repository: usize,
    /// Where RPO states begin.
    pub thresholds: Thresholds,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Failures of one class in a row that make a failure systemic.
    pub systemic_after: u32,
    /// How long running jobs may take to finish on shutdown.
    pub shutdown_timeout: Duration,
    /// When each repository is pruned (cron, UTC) and the grace period
    /// between marking and deleting.
    pub prune: PruneSettings,
    /// How often compliance is re-evaluated besides at every job end.
    pub evaluate_every: SignedDuration,
    /// How the watch rules judge evidence.
    pub alerts: AlertSettings,
    /// Event export for a SIEM.
    pub export: ExportSettings,
    /// The dead man's switch: an outside monitor called regularly.
    pub heartbeat: Option<HeartbeatSettings>,
    /// Access control: four eyes, logins, sessions.
    pub access: AccessSettings,
    /// HTTPS, when configured.
    pub tls: Option<TlsSettings>,
}

/// A settings problem, with the file and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// Read `<data_dir>/haven.toml` (missing is fine: defaults) and apply
    /// the overrides.
    pub fn load(data_dir: &Path, overrides: &Overrides) -> Result<Settings, SettingsError> {
        let (path, file) = read_file(data_dir)?;
        let r = Reader { path: &path };
        let catalog = match (&overrides.catalog, &file.catalog) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => data_dir.join(dir),
            (None, None) => data_dir.join("catalog"),
        };
        let database = match (&overrides.database, &file.database) {
            (Some(url), _) => url.clone(),
            (None, Some(url)) => relative_sqlite(url, data_dir),
            (None, None) => format!("sqlite://{}", data_dir.join("haven.db").display()),
        };
        let listen_text = overrides
            .listen
            .clone()
            .or(file.listen.clone())
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            r.at(
                "listen",
                format!("{listen_text:?} is not an address (use e.g. 127.0.0.1:8080)"),
            )
        })?;
        let (prune_schedule, prune_grace) = r.prune(&file)?;
        Ok(Settings {
            alerts: r.alerts(file.alerts.as_ref())?,
            export: r.export(data_dir, file.export.as_ref())?,
            access: r.access(file.access.as_ref())?,
            tls: file.tls.as_ref().map(|t| r.tls(data_dir, t)).transpose()?,
            heartbeat: file
                .heartbeat
                .as_ref()
                .map(|h| r.heartbeat(h))
                .transpose()?,
            data_dir: data_dir.to_path_buf(),
            catalog,
            catalog_overridden: overrides.catalog.is_some(),
            database,
            listen,
            max_jobs: r.positive("max_jobs", file.max_jobs, 4)?,
            max_jobs_per_repository: r.positive(
                "max_jobs_per_repository",
                file.max_jobs_per_repository,
                2,
            )?,
            thresholds: r.thresholds(&file)?,
            retry: r.retry(&file)?,
            systemic_after: r.positive("systemic_after", file.systemic_after, 3)? as u32,
            shutdown_timeout: r
                .duration(
                    "shutdown_timeout",
                    &file.shutdown_timeout,
                    SignedDuration::from_mins(5),
                )?
                .unsigned_abs(),
            prune: PruneSettings {
                schedule: prune_schedule,
                grace: prune_grace,
            },
            evaluate_every: r.duration(
                "evaluate_every",
                &file.evaluate_every,
                SignedDuration::from_mins(1),
            )?,
        })
    }

    /// The file holding the API token.
    pub fn token_file(&self) -> PathBuf {
        token_file(&self.data_dir)
    }
}

/// `haven.toml` of a data dir, parsed (defaults when there is none).
fn read_file(data_dir: &Path) -> Result<(PathBuf, SettingsFile), SettingsError> {
    let path = data_dir.join(SETTINGS_FILE);
    let file = match std::fs::read_to_string(&path) {
        Ok(text) => {
            toml::from_str(&text).map_err(|e| SettingsError(format!("{}: {e}", path.display())))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => SettingsFile::default(),
        Err(e) => {
            return Err(SettingsError(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    Ok((path, file))
}

/// Reads typed values out of `haven.toml`; every problem names the file
/// and the key.
struct Reader<'a> {
    path: &'a Path,
}

impl Reader<'_> {
    fn at(&self, key: &str, problem: String) -> SettingsError {
        SettingsError(format!("{}: `{key}`: {problem}", self.path.display()))
    }

    fn duration(
        &self,
        key: &str,
        value: &Option<String>,
        default: SignedDuration,
    ) -> Result<SignedDuration, SettingsError> {
        value
            .as_deref()
            .map_or(Ok(default), parse_duration)
            .map_err(|e| self.at(key, e))
    }

    /// A positive number (a share, a number of MADs).
    fn share(&self, key: &str, value: Option<f64>, default: f64) -> Result<f64, SettingsError> {
        match value {
            None => Ok(default),
            Some(v) if v.is_finite() && v > 0.0 => Ok(v),
            Some(v) => Err(self.at(key, format!("{v} must be a positive number"))),
        }
    }

    /// A count of at least 1.
    fn positive(
        &self,
        key: &str,
        value: Option<u32>,
        default: u32,
    ) -> Result<usize, SettingsError> {
        match value {
            None => Ok(default as usize),
            Some(0) => Err(self.at(key, "must be at least 1".into())),
            Some(v) => Ok(v as usize),
        }
    }

    fn thresholds(&self, file: &SettingsFile) -> Result<Thresholds, SettingsError> {
        let thresholds = Thresholds {
            at_risk: self.share("at_risk_share", file.at_risk_share, 0.8)?,
            quarantine: self.share("quarantine_share", file.quarantine_share, 1.5)?,
        };
        if thresholds.at_risk >= 1.0 || thresholds.quarantine <= 1.0 {
            return Err(self.at(
                "at_risk_share",
                format!(
                    "at_risk_share ({}) must be below 1 and quarantine_share ({}) above 1",
                    thresholds.at_risk, thresholds.quarantine
                ),
            ));
        }
        Ok(thresholds)
    }

    fn retry(&self, file: &SettingsFile) -> Result<RetryPolicy, SettingsError> {
        let defaults = RetryPolicy::default();
        Ok(RetryPolicy {
            attempts: file.retry_attempts.unwrap_or(defaults.attempts).max(1),
            base: self.duration("retry_delay", &file.retry_delay, defaults.base)?,
            max: self.duration("retry_max_delay", &file.retry_max_delay, defaults.max)?,
        })
    }

    /// The prune schedule and grace. The server's backups run while it
    /// prunes: the grace period must outlast a backup (the engine refuses
    /// one shorter than the longest it has seen), and never be below the
    /// margin backups check with.
    fn prune(&self, file: &SettingsFile) -> Result<(CronSchedule, SignedDuration), SettingsError> {
        let grace = self.duration(
            "prune_grace",
            &file.prune_grace,
            SignedDuration::from_hours(24),
        )?;
        let margin = haven_engine::prune::PRUNE_RACE_MARGIN;
        if grace < margin {
            return Err(self.at(
                "prune_grace",
                format!(
                    "{grace:#} is shorter than {margin:#}: backups run while the server prunes, so the grace period must outlast the longest of them (e.g. \"24h\")"
                ),
            ));
        }
        let text = file.prune_schedule.as_deref().unwrap_or("0 4 * * *");
        let schedule = CronSchedule::parse(text)
            .map_err(|e| self.at("prune_schedule", format!("{e}; e.g. {CRON_EXAMPLE}")))?;
        Ok((schedule, grace))
    }

    /// `[tls]`: both files, relative to the data dir unless absolute.
    fn tls(&self, data_dir: &Path, t: &TlsFile) -> Result<TlsSettings, SettingsError> {
        let path = |k: &str, v: &Option<String>| {
            v.as_deref().map(|p| data_dir.join(p)).ok_or_else(|| {
                self.at(
                    &format!("tls.{k}"),
                    "is missing: give the PEM file's path".into(),
                )
            })
        };
        Ok(TlsSettings {
            cert: path("cert", &t.cert)?,
            key: path("key", &t.key)?,
        })
    }

    /// `[access]`.
    fn access(&self, a: Option<&AccessFile>) -> Result<AccessSettings, SettingsError> {
        let d = AccessSettings::default();
        let key = |k: &str| format!("access.{k}");
        let count = |k: &str, v: Option<u32>, default: u32| match v {
            None => Ok(default),
            Some(0) => Err(self.at(&key(k), "must be at least 1".into())),
            Some(v) => Ok(v),
        };
        let span = |k: &str, v: Option<&String>, default: SignedDuration| {
            let value = self.duration(&key(k), &v.cloned(), default)?;
            if value <= SignedDuration::ZERO {
                return Err(self.at(&key(k), "must be longer than nothing".into()));
            }
            Ok(value)
        };
        let totp_required = match a.and_then(|a| a.totp.as_deref()) {
            None | Some("optional") => false,
            Some("required") => true,
            Some(other) => {
                return Err(self.at(
                    &key("totp"),
                    format!("{other:?}: use \"required\" (admins and restore operators give a code) or \"optional\""),
                ));
            }
        };
        Ok(AccessSettings {
            four_eyes: a.and_then(|a| a.four_eyes).unwrap_or(d.four_eyes),
            request_expiry: span(
                "request_expiry",
                a.and_then(|a| a.request_expiry.as_ref()),
                d.request_expiry,
            )?,
            lockout_after: count(
                "lockout_after",
                a.and_then(|a| a.lockout_after),
                d.lockout_after,
            )?,
            lockout_for: span(
                "lockout_for",
                a.and_then(|a| a.lockout_for.as_ref()),
                d.lockout_for,
            )?,
            failure_burst: count(
                "failure_burst",
                a.and_then(|a| a.failure_burst),
                d.failure_burst,
            )?,
            failure_window: span(
                "failure_window",
                a.and_then(|a| a.failure_window.as_ref()),
                d.failure_window,
            )?,
            session_idle: span(
                "session_idle",
                a.and_then(|a| a.session_idle.as_ref()),
                d.session_idle,
            )?,
            session_max: span(
                "session_max",
                a.and_then(|a| a.session_max.as_ref()),
                d.session_max,
            )?,
            totp_required,
            oidc: a
                .and_then(|a| a.oidc.as_ref())
                .map(|o| self.oidc(o))
                .transpose()?,
        })
    }

    /// `[access.oidc]`.
    fn oidc(&self, o: &OidcFile) -> Result<OidcSettings, SettingsError> {
        let key = |k: &str| format!("access.oidc.{k}");
        let url = |k: &str, v: &Option<String>| match v.as_deref() {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => Ok(u.to_string()),
            Some(u) => Err(self.at(&key(k), format!("{u:?} is not an http:// or https:// URL"))),
            None => Err(self.at(&key(k), "is missing".into())),
        };
        let client_secret = match o.client_secret.as_deref() {
            None => None,
            Some(text) => Some(SecretRef::parse(text).ok_or_else(|| {
                self.at(
                    &key("client_secret"),
                    "give it by reference: env:VAR or file:PATH (never in haven.toml)".into(),
                )
            })?),
        };
        let mut roles = std::collections::BTreeMap::new();
        for (group, names) in o.roles.clone().unwrap_or_default() {
            let parsed = names
                .iter()
                .map(|n| haven_model::access::Role::parse(n))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.at(&key(&format!("roles.{group}")), e))?;
            roles.insert(group, parsed);
        }
        if roles.is_empty() {
            return Err(self.at(
                &key("roles"),
                "maps no group to a role: nobody could log in (e.g. [access.oidc.roles] \"haven-admins\" = [\"admin\"])".into(),
            ));
        }
        Ok(OidcSettings {
            issuer: url("issuer", &o.issuer)?,
            client_id: o
                .client_id
                .clone()
                .ok_or_else(|| self.at(&key("client_id"), "is missing".into()))?,
            client_secret,
            redirect_url: url("redirect_url", &o.redirect_url)?,
            username_claim: o.username_claim.clone().unwrap_or_else(|| "email".into()),
            groups_claim: o.groups_claim.clone().unwrap_or_else(|| "groups".into()),
            roles,
            teams: o.teams.clone().unwrap_or_default(),
        })
    }

    /// `[alerts]`.
    fn alerts(&self, a: Option<&AlertsFile>) -> Result<AlertSettings, SettingsError> {
        let d = AlertSettings::default();
        let key = |k: &str| format!("alerts.{k}");
        let count = |k: &str, v: Option<u32>, default: usize| match v {
            None => Ok(default),
            Some(0) => Err(self.at(&key(k), "must be at least 1".into())),
            Some(v) => Ok(v as usize),
        };
        let alerts = AlertSettings {
            baseline_runs: count(
                "baseline_runs",
                a.and_then(|a| a.baseline_runs),
                d.baseline_runs,
            )?,
            baseline_min_runs: count(
                "baseline_min_runs",
                a.and_then(|a| a.baseline_min_runs),
                d.baseline_min_runs,
            )?,
            duration_mads: self.share(
                &key("duration_mads"),
                a.and_then(|a| a.duration_mads),
                d.duration_mads,
            )?,
            volume_mads: self.share(
                &key("volume_mads"),
                a.and_then(|a| a.volume_mads),
                d.volume_mads,
            )?,
            start_delay: self.duration(
                &key("start_delay"),
                &a.and_then(|a| a.start_delay.clone()),
                d.start_delay,
            )?,
            capacity_share: self.share(
                &key("capacity_share"),
                a.and_then(|a| a.capacity_share),
                d.capacity_share,
            )?,
            capacity_horizon: self.duration(
                &key("capacity_horizon"),
                &a.and_then(|a| a.capacity_horizon.clone()),
                d.capacity_horizon,
            )?,
            capacity_history: self.duration(
                &key("capacity_history"),
                &a.and_then(|a| a.capacity_history.clone()),
                d.capacity_history,
            )?,
            capacity_min_history: self.duration(
                &key("capacity_min_history"),
                &a.and_then(|a| a.capacity_min_history.clone()),
                d.capacity_min_history,
            )?,
            checkpoint_wait: self.duration(
                &key("checkpoint_wait"),
                &a.and_then(|a| a.checkpoint_wait.clone()),
                d.checkpoint_wait,
            )?,
        };
        if alerts.capacity_share > 1.0 {
            return Err(self.at(
                "alerts.capacity_share",
                "must be at most 1 (a share of the capacity)".into(),
            ));
        }
        Ok(alerts)
    }

    /// `[export]`.
    fn export(
        &self,
        data_dir: &Path,
        e: Option<&ExportFile>,
    ) -> Result<ExportSettings, SettingsError> {
        let export = ExportSettings {
            file: e.and_then(|e| e.file.as_ref()).map(|f| data_dir.join(f)),
            syslog: e
                .and_then(|e| e.syslog.as_deref())
                .map(SyslogTarget::parse)
                .transpose()
                .map_err(|problem| self.at("export.syslog", problem))?,
            app_name: e
                .and_then(|e| e.syslog_app_name.clone())
                .unwrap_or_else(|| "haven".into()),
            ca_file: e
                .and_then(|e| e.syslog_ca_file.as_ref())
                .map(|f| data_dir.join(f)),
        };
        if let Some(ca_file) = &export.ca_file {
            if export.syslog.as_ref().map(|t| t.transport) != Some(SyslogTransport::Tls) {
                return Err(self.at(
                    "export.syslog_ca_file",
                    "only applies to a tls:// syslog address".into(),
                ));
            }
            if !ca_file.is_file() {
                return Err(self.at(
                    "export.syslog_ca_file",
                    format!("{} is not a readable file", ca_file.display()),
                ));
            }
        }
        Ok(export)
    }

    /// `[heartbeat]`.
    fn heartbeat(&self, h: &HeartbeatFile) -> Result<HeartbeatSettings, SettingsError> {
        let text = h.url.as_deref().ok_or_else(|| {
            self.at(
                "heartbeat.url",
                "is missing: give the monitor's URL, e.g. url = \"env:HAVEN_HEARTBEAT_URL\"".into(),
            )
        })?;
        let url = match SecretRef::parse(text) {
            Some(reference) => MaybeSecret::Secret(reference),
            // Not echoed: a push URL carries its token.
            None if text.starts_with("http://") || text.starts_with("https://") => {
                MaybeSecret::Plain(text.to_string())
            }
            None => {
                return Err(self.at(
                    "heartbeat.url",
                    "is not an http:// or https:// URL, nor env:VAR or file:PATH".into(),
                ));
            }
        };
        let every = self.duration("heartbeat.every", &h.every, SignedDuration::from_mins(1))?;
        let timeout = self.duration(
            "heartbeat.timeout",
            &h.timeout,
            SignedDuration::from_secs(10),
        )?;
        if every < SignedDuration::from_secs(1) || timeout < SignedDuration::from_secs(1) {
            return Err(self.at(
                "heartbeat.every",
                "`every` and `timeout` must be at least 1s".into(),
            ));
        }
        Ok(HeartbeatSettings {
            url,
            every,
            timeout: timeout.unsigned_abs(),
        })
    }
}

/// The catalog directory `haven.toml` names (relative to the data dir),
/// if it names one. The catalog commands fall back to `./catalog`
/// without it; the server to `<data dir>/catalog`.
pub fn configured_catalog(data_dir: &Path) -> Result<Option<PathBuf>, SettingsError> {
    let (_, file) = read_file(data_dir)?;
    Ok(file.catalog.map(|dir| data_dir.join(dir)))
}

/// The file holding a data dir's API token.
pub fn token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("api-token")
}

/// The API token of a data dir, created (random, readable by the owner
/// only) when there is none yet.
pub fn ensure_token(data_dir: &Path) -> std::io::Result<String> {
    let path = token_file(data_dir);
    if let Ok(token) = read_token(data_dir) {
        return Ok(token);
    }
    if path.exists() {
        // A token file that exists but cannot be used is not replaced
        // silently (it may be exposed, or a client may rely on it).
        read_token(data_dir)?;
    }
    let token = hex_token();
    super::files::write_private(&path, format!("{token}\n").as_bytes())?;
    super::redact::remember(&token);
    Ok(token)
}

fn hex_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Read a data dir's API token. One other users could read is refused,
/// with the `chmod` that fixes it.
pub fn read_token(data_dir: &Path) -> std::io::Result<String> {
    let path = token_file(data_dir);
    super::files::refuse_exposed(&path)?;
    let text = std::fs::read_to_string(&path)?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the api-token file is empty",
        ));
    }
    super::redact::remember(&token);
    Ok(token)
}

/// Where a running server of a data dir listens (written at start: the
/// listen setting may have been overridden, or been port 0).
pub fn server_address_file(data_dir: &Path) -> PathBuf {
    data_dir.join("server.addr")
}

/// The file where a server records the catalog it uses (it stays after
/// the server stops, so reports without it read the same catalog).
pub fn server_catalog_file(data_dir: &Path) -> PathBuf {
    data_dir.join("server.catalog")
}

impl Settings {
    /// The catalog the last server used, unless `--catalog` chose one: a
    /// report without a server (`haven status`) reads what the server
    /// read, even when it was started with `--catalog`.
    pub fn with_server_catalog(mut self) -> Settings {
        if self.catalog_overridden {
            return self;
        }
        let recorded = std::fs::read_to_string(server_catalog_file(&self.data_dir))
            .ok()
            .map(|text| PathBuf::from(text.trim_end_matches('\n')))
            .filter(|dir| dir.is_dir());
        if let Some(dir) = recorded {
            self.catalog = dir;
        }
        self
    }
}

/// `sqlite://haven.db` in the file means a path relative to the data dir.
fn relative_sqlite(url: &str, data_dir: &Path) -> String {
    match url.strip_prefix("sqlite://") {
        Some(path) if !path.starts_with('/') && !path.starts_with(':') => {
            format!("sqlite://{}", data_dir.join(path).display())
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) {
        std::fs::write(dir.join(SETTINGS_FILE), text).expect("write");
    }

    #[test]
    fn defaults_file_and_overrides_in_that_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let defaults = Settings::load(dir.path(), &Overrides::default()).expect("defaults");
        assert_eq!(defaults.catalog, dir.path().join("catalog"));
        assert_eq!(
            defaults.database,
            format!("sqlite://{}", dir.path().join("haven.db").display())
        );
        assert_eq!(defaults.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(defaults.thresholds, Thresholds::default());
        write(
            dir.path(),
            "catalog = \"cat\"\ndatabase = \"sqlite://db/h.db\"\nlisten = \"127.0.0.1:9000\"\nat_risk_share = 0.5\nretry_attempts = 5\n",
        );
        let file = Settings::load(dir.path(), &Overrides::default()).expect("file");
        assert_eq!(file.catalog, dir.path().join("cat"));
        assert_eq!(
            file.database,
            format!("sqlite://{}", dir.path().join("db/h.db").display())
        );
        assert_eq!(file.listen.port(), 9000);
        assert_eq!(file.thresholds.at_risk, 0.5);
        assert_eq!(file.retry.attempts, 5);
        let overridden = Settings::load(
            dir.path(),
            &Overrides {
                catalog: Some("/elsewhere".into()),
                database: Some("sqlite:///tmp/x.db".into()),
                listen: Some("127.0.0.1:9100".into()),
            },
        )
        .expect("overrides");
        assert_eq!(overridden.catalog, PathBuf::from("/elsewhere"));
        assert_eq!(overridden.database, "sqlite:///tmp/x.db");
        assert_eq!(overridden.listen.port(), 9100);
    }

    #[test]
    fn bad_settings_name_the_file_key_and_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            ("listn = \"x\"\n", "unknown field `listn`"),
            (
                "listen = \"localhost\"\n",
                "`listen`: \"localhost\" is not an address",
            ),
            (
                "retry_delay = \"soon\"\n",
                "`retry_delay`: \"soon\" is not a duration",
            ),
            ("prune_schedule = \"every day\"\n", "`prune_schedule`"),
            ("at_risk_share = 1.2\n", "must be below 1"),
            ("max_jobs = 0\n", "`max_jobs`: must be at least 1"),
            ("max_jobs = \"four\"\n", "invalid type"),
            (
                "[heartbeat]\nevery = \"1m\"\n",
                "`heartbeat.url`: is missing",
            ),
            (
                "[heartbeat]\nurl = \"hc-ping.example/token-123\"\n",
                "`heartbeat.url`: is not an http:// or https:// URL",
            ),
            (
                "[export]\nsyslog = \"ssl://siem:6514\"\n",
                "`export.syslog`: \"ssl://siem:6514\" is not a syslog address",
            ),
            (
                "[export]\nsyslog = \"tcp://siem:514\"\nsyslog_ca_file = \"ca.pem\"\n",
                "only applies to a tls:// syslog address",
            ),
            (
                "[export]\nsyslog = \"tls://siem:6514\"\nsyslog_ca_file = \"ca.pem\"\n",
                "ca.pem is not a readable file",
            ),
            (
                "[heartbeat]\nurl = \"env:HB\"\nevery = \"0s\"\n",
                "must be at least 1s",
            ),
        ];
        for (text, expected) in cases {
            write(dir.path(), text);
            let err = Settings::load(dir.path(), &Overrides::default())
                .expect_err(text)
                .to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains("haven.toml"), "{err}");
            assert!(!err.contains("token-123"), "a URL is never echoed: {err}");
        }
    }

    #[test]
    fn the_heartbeat_url_may_be_a_reference_and_has_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "[heartbeat]\nurl = \"file:/etc/haven/heartbeat\"\n",
        );
        let settings = Settings::load(dir.path(), &Overrides::default()).expect("load");
        let heartbeat = settings.heartbeat.expect("heartbeat");
        assert!(matches!(
            heartbeat.url,
            MaybeSecret::Secret(SecretRef::File(ref p)) if p == "/etc/haven/heartbeat"
        ));
        assert_eq!(heartbeat.every, SignedDuration::from_mins(1));
        assert_eq!(heartbeat.timeout, Duration::from_secs(10));
        write(dir.path(), "");
        let settings = Settings::load(dir.path(), &Overrides::default()).expect("load");
        assert!(settings.heartbeat.is_none());
    }
}
