//! The requests and answers of the instance interface: plain data, the
//! same in process and over HTTP (where they are the JSON documents of
//! `docs/server.md` and `docs/json.md`).

use std::sync::{Arc, RwLock};

use haven_model::actor::Actor;
use haven_model::alerts::{Alert, Delivery};
use haven_model::catalog::watch::Scope;
use haven_model::jobs::{Job, Outcome};
use haven_store::{AlertFilter, JobFilter};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Which jobs (`haven jobs`, `GET /api/v1/jobs`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobsQuery {
    /// Only this system's jobs.
    pub system: Option<String>,
    /// Only failed and interrupted jobs.
    #[serde(default)]
    pub failed: bool,
    /// Only jobs due at or after this time (RFC 3339).
    pub since: Option<Timestamp>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

impl JobsQuery {
    /// The store filter.
    pub fn filter(&self) -> JobFilter {
        JobFilter {
            system: self.system.clone(),
            kind: None,
            outcomes: if self.failed {
                vec![Outcome::Failed, Outcome::Interrupted]
            } else {
                Vec::new()
            },
            since: self.since,
            limit: self.limit.unwrap_or(100),
        }
    }
}

/// Which alerts (`haven alerts`, `GET /api/v1/alerts`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertsQuery {
    /// Only open and acknowledged alerts.
    #[serde(default)]
    pub open: bool,
    /// Only this service's.
    pub service: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

impl AlertsQuery {
    /// The store filter.
    pub fn filter(&self) -> AlertFilter {
        AlertFilter {
            active: self.open,
            service: self.service.clone(),
            limit: self.limit.unwrap_or(100),
        }
    }
}

/// Back a system up now.
#[derive(Clone, Debug, Serialize)]
pub struct RunRequest {
    /// The system.
    pub system: String,
    /// Who asks.
    pub by: Actor,
}

/// What a server queued for `haven run SYSTEM`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunNow {
    /// Tasks queued.
    pub queued: Vec<String>,
    /// Tasks already running or waiting.
    pub busy: Vec<String>,
}

/// What `haven run SYSTEM` did: a server queues the backups; without
/// one they ran in the foreground.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RunOutcome {
    /// Queued by the server.
    Queued(RunNow),
    /// Ran here, in order.
    Ran(Vec<Job>),
}

/// An alert with its delivery attempts.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertDetail {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// Every delivery attempt, oldest first.
    pub deliveries: Vec<Delivery>,
}

/// The reason of a resolution nobody explained.
pub const RESOLVED_BY_HAND: &str = "resolved by hand";

/// Acknowledge or resolve an alert.
#[derive(Clone, Debug, Serialize)]
pub struct AlertAction {
    /// The alert.
    pub id: i64,
    /// Who acts.
    pub by: Actor,
    /// Why it is resolved (resolving only; default "resolved by hand").
    pub reason: Option<String>,
}

/// A maintenance window to add (the body of `POST /api/v1/maintenance`).
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewWindow {
    /// What it covers.
    pub scope: Scope,
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One window as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowView {
    /// Its id: the catalog id, or `m<N>` for windows added at run time.
    pub id: String,
    /// `catalog` or `added`.
    pub source: String,
    /// Why.
    pub reason: Option<String>,
    /// What it covers (empty: everything).
    pub scope: Scope,
    /// On now?
    pub active: bool,
    /// Start of the current or next occurrence.
    pub start: Option<Timestamp>,
    /// Its end.
    pub end: Option<Timestamp>,
    /// For recurring windows: the schedule, duration and time zone.
    pub recurrence: Option<String>,
}

/// Add a maintenance window.
#[derive(Clone, Debug, Serialize)]
pub struct AddWindow {
    /// The window.
    pub window: NewWindow,
    /// Who adds it.
    pub by: Actor,
}

/// End a maintenance window now.
#[derive(Clone, Debug, Serialize)]
pub struct EndWindow {
    /// The window (a catalog id, or `m<N>` for one added at run time).
    pub id: String,
    /// Who ends it.
    pub by: Actor,
}

/// What `/healthz` and the heartbeat report (documented in
/// `docs/server.md`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// `ok`, or `degraded` while the store cannot be written.
    pub status: String,
    /// What is wrong with the store, while something is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreTrouble>,
    /// Events the exporter dropped since the start (its queue was full).
    pub events_dropped: u64,
}

impl HealthReport {
    /// Is everything well?
    pub fn is_ok(&self) -> bool {
        self.store.is_none()
    }
}

/// A store that cannot be written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreTrouble {
    /// The last error (redacted).
    pub error: String,
    /// Since when the store fails.
    pub since: Timestamp,
    /// Failed attempts so far.
    pub failures: u32,
    /// Job results held in memory until they can be written.
    pub pending_records: usize,
}

/// The report as the API and the heartbeat read it, written by the loop.
pub type SharedHealth = Arc<RwLock<HealthReport>>;

/// A new shared report saying `ok`.
pub fn shared() -> SharedHealth {
    Arc::new(RwLock::new(HealthReport {
        status: "ok".into(),
        ..HealthReport::default()
    }))
}

/// Which drills to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DrillsQuery {
    /// Only this drill.
    #[serde(default)]
    pub id: Option<i64>,
    /// Only this system's drills.
    pub system: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

/// Which service drills to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceDrillsQuery {
    /// Only this service's drills.
    pub service: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

/// Which audit entries to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditQuery {
    /// From this entry on (default 0).
    pub from: Option<u64>,
    /// At most this many (default 1000).
    pub limit: Option<u64>,
    /// Only entries whose actor contains this (any case).
    #[serde(default)]
    pub actor: Option<String>,
    /// Only entries whose action starts with this (`recovery.`).
    #[serde(default)]
    pub action: Option<String>,
    /// Only entries whose target contains this (any case).
    #[serde(default)]
    pub target: Option<String>,
    /// Only entries with this outcome (`success`, `refused`, `failed`).
    #[serde(default)]
    pub outcome: Option<String>,
    /// The newest matches, newest first, looked for among the newest
    /// [`crate::audit::SEARCH_SCAN`] entries (`from` is then ignored).
    #[serde(default)]
    pub newest: bool,
}

impl AuditQuery {
    /// The filter it asks for.
    pub fn filter(&self) -> crate::audit::AuditFilter {
        let given = |f: &Option<String>| f.clone().filter(|v| !v.trim().is_empty());
        crate::audit::AuditFilter {
            actor: given(&self.actor),
            action: given(&self.action),
            target: given(&self.target),
            outcome: given(&self.outcome),
        }
    }
}

/// Which audit entries to export with proofs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditExportQuery {
    /// From this entry on (default 0).
    pub from: Option<u64>,
    /// Up to (not including) this entry (default: the end).
    pub to: Option<u64>,
}

/// What `haven audit verify` checks against besides the database and
/// the export file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditVerifyRequest {
    /// The anchors in these repositories (`all`: every repository).
    #[serde(default)]
    pub against: Vec<String>,
}

/// How the BIA ranks services.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BiaQuery {
    /// `quantitative` (by money per hour, the default) or `qualitative`
    /// (by the mean of the 1–5 ratings).
    #[serde(default)]
    pub scoring: Option<String>,
}

/// Which services to order for recovery.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderQuery {
    /// Comma-separated service ids (none: the whole catalog).
    #[serde(default)]
    pub services: Option<String>,
}

impl OrderQuery {
    /// The services asked for.
    pub fn services(&self) -> Vec<String> {
        self.services
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// The catalog views every instance answers alike from its catalog.
pub(crate) mod views {
    use super::{BiaQuery, OrderQuery};
    use crate::api::InstanceError;
    use haven_model::catalog::Catalog;
    use haven_model::errors::ErrorCode;

    /// The BIA, ranked as asked.
    pub fn bia(
        catalog: &Catalog,
        query: &BiaQuery,
        now: jiff::Timestamp,
    ) -> Result<Vec<haven_model::catalog::bia::BiaRow>, InstanceError> {
        use haven_model::catalog::bia::Scoring;
        let scoring = match query.scoring.as_deref() {
            None | Some("quantitative") => Scoring::Quantitative,
            Some("qualitative") => Scoring::Qualitative,
            Some(other) => {
                return Err(InstanceError::new(
                    ErrorCode::InvalidArgument,
                    format!("scoring {other:?}: `quantitative` or `qualitative`"),
                ));
            }
        };
        let findings = haven_model::catalog::analysis::analyse(catalog, now);
        Ok(haven_model::catalog::bia::bia(catalog, &findings, scoring))
    }

    /// The recovery order, or why there is none.
    pub fn order(
        catalog: &Catalog,
        query: &OrderQuery,
    ) -> Result<haven_model::catalog::plan::RecoveryOrder, InstanceError> {
        haven_model::catalog::plan::recovery_order(catalog, &query.services())
            .map_err(|e| InstanceError::new(ErrorCode::NoSuchService, e))
    }
}
