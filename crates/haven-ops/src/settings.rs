//! Instance settings: `<data dir>/haven.toml`, overridden by `HAVEN_*`
//! environment variables and flags (the CLI resolves those two and hands
//! them over as [`Overrides`]). Every key is documented in
//! `docs/server.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use haven_model::catalog::parse_duration;
use haven_model::catalog::schedule::parse_cron;
use haven_model::compliance::Thresholds;
use haven_model::jobs::RetryPolicy;
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

/// The resolved settings of one Haven instance.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The data dir.
    pub data_dir: PathBuf,
    /// The catalog directory.
    pub catalog: PathBuf,
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
    /// When each repository is pruned (cron, UTC).
    pub prune_schedule: String,
    /// Prune's grace period between marking and deleting.
    pub prune_grace: SignedDuration,
    /// How often compliance is re-evaluated besides at every job end.
    pub evaluate_every: SignedDuration,
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
        let at = |key: &str, problem: String| {
            SettingsError(format!("{}: `{key}`: {problem}", path.display()))
        };
        let duration = |key: &str, value: &Option<String>, default: SignedDuration| {
            value
                .as_deref()
                .map_or(Ok(default), parse_duration)
                .map_err(|e| at(key, e))
        };
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
            at(
                "listen",
                format!("{listen_text:?} is not an address (use e.g. 127.0.0.1:8080)"),
            )
        })?;
        let share = |key: &str, value: Option<f64>, default: f64| match value {
            None => Ok(default),
            Some(v) if v.is_finite() && v > 0.0 => Ok(v),
            Some(v) => Err(at(key, format!("{v} must be a positive number"))),
        };
        let thresholds = Thresholds {
            at_risk: share("at_risk_share", file.at_risk_share, 0.8)?,
            quarantine: share("quarantine_share", file.quarantine_share, 1.5)?,
        };
        if thresholds.at_risk >= 1.0 || thresholds.quarantine <= 1.0 {
            return Err(at(
                "at_risk_share",
                format!(
                    "at_risk_share ({}) must be below 1 and quarantine_share ({}) above 1",
                    thresholds.at_risk, thresholds.quarantine
                ),
            ));
        }
        let defaults = RetryPolicy::default();
        let retry = RetryPolicy {
            attempts: file.retry_attempts.unwrap_or(defaults.attempts).max(1),
            base: duration("retry_delay", &file.retry_delay, defaults.base)?,
            max: duration("retry_max_delay", &file.retry_max_delay, defaults.max)?,
        };
        let prune_schedule = file
            .prune_schedule
            .clone()
            .unwrap_or_else(|| "0 4 * * *".into());
        parse_cron(&prune_schedule).map_err(|e| at("prune_schedule", e))?;
        let positive = |key: &str, value: Option<u32>, default: u32| match value {
            None => Ok(default as usize),
            Some(0) => Err(at(key, "must be at least 1".into())),
            Some(v) => Ok(v as usize),
        };
        Ok(Settings {
            data_dir: data_dir.to_path_buf(),
            catalog,
            database,
            listen,
            max_jobs: positive("max_jobs", file.max_jobs, 4)?,
            max_jobs_per_repository: positive(
                "max_jobs_per_repository",
                file.max_jobs_per_repository,
                2,
            )?,
            thresholds,
            retry,
            systemic_after: positive("systemic_after", file.systemic_after, 3)? as u32,
            shutdown_timeout: duration(
                "shutdown_timeout",
                &file.shutdown_timeout,
                SignedDuration::from_mins(5),
            )?
            .unsigned_abs(),
            prune_schedule,
            prune_grace: duration(
                "prune_grace",
                &file.prune_grace,
                SignedDuration::from_hours(24),
            )?,
            evaluate_every: duration(
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
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = token_file(data_dir);
    if let Ok(token) = read_token(data_dir) {
        return Ok(token);
    }
    let token = hex_token();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(file, "{token}")?;
    file.sync_all()?;
    Ok(token)
}

fn hex_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Read a data dir's API token.
pub fn read_token(data_dir: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(token_file(data_dir))?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the api-token file is empty",
        ));
    }
    Ok(token)
}

/// Where a running server of a data dir listens (written at start: the
/// listen setting may have been overridden, or been port 0).
pub fn server_address_file(data_dir: &Path) -> PathBuf {
    data_dir.join("server.addr")
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
        ];
        for (text, expected) in cases {
            write(dir.path(), text);
            let err = Settings::load(dir.path(), &Overrides::default())
                .expect_err(text)
                .to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains("haven.toml"), "{err}");
        }
    }
}
